"""The PyTorch export is the exact network (the ONNX/PyTorch export): attrlab.torch.load of the archive
`attrlab export --format torch` writes reproduces attrlab's logits to 1e-5 (relative to the
logit scale) and torch.autograd's input gradients equal attrlab's signed `saliency` maps to 1e-4
(relative to the largest gradient), for multi-color-sum (ude on and off, uniform and non-uniform
accumulators) and single-color-modulo. Random-colour images, which reach the unseen-data wires,
are compared through `attrlab predict --inputs`. Computation is float32 on both sides."""

import csv
import json

import numpy as np
import pytest

from export_helpers import cli  # noqa: F401  (the fixture; also puts python/ on sys.path)

import torch  # noqa: E402  (python3-torch, installed by scripts/setup.sh)
import attrlab.torch  # noqa: E402

SETTINGS = [
    ("multi-color-sum", ["size=32", "ude=on", "accumulator=nonuniform"]),
    ("multi-color-sum", ["size=32", "ude=off", "accumulator=nonuniform"]),
    ("multi-color-sum", ["size=32", "ude=on", "accumulator=uniform"]),
    ("multi-color-sum", ["size=32", "ude=off", "accumulator=uniform"]),
    ("single-color-modulo", ["size=32", "modulus=7", "accumulator=nonuniform"]),
    ("single-color-modulo", ["size=32", "accumulator=uniform"]),
]
LOGIT_TOL = 1e-5
GRAD_TOL = 1e-4


def options(items):
    return [a for o in items for a in ("-o", o)]


def read_csv_columns(path, prefix):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    keys = [k for k in rows[0] if k.startswith(prefix)]
    return np.array([[float(r[k]) for k in keys] for r in rows], np.float32)


def close(got, want, tol):
    scale = max(1.0, float(np.abs(want).max()))
    return float(np.abs(got - want).max()) <= tol * scale, float(np.abs(got - want).max()), scale


@pytest.fixture(scope="module", params=SETTINGS, ids=lambda s: s[0] + " " + " ".join(s[1]))
def exported(request, tmp_path_factory, cli):
    env, items = request.param
    d = tmp_path_factory.mktemp("export")
    cli("generate", "--env", env, *options(items), "--count", 6, "--seed", 3, "--out", d / "data")
    cli("export", "--data", d / "data", "--format", "torch", "--out", d / "net.npz")
    return env, items, d, attrlab.torch.load(d / "net.npz")


def test_logits_equal_attrlab_predict(exported, cli):
    env, _, d, model = exported
    cli("predict", "--data", d / "data", "--out", d / "predict.csv")
    images, labels, ids = attrlab.torch.read_images(d / "data")
    x = model.to_input(images)
    prefix = "logit_" if model.has_softmax else "output_"
    ok, diff, scale = close(model.logits(x).numpy(), read_csv_columns(d / "predict.csv", prefix), LOGIT_TOL)
    assert ok, f"{env}: logits differ by {diff} (scale {scale})"
    if model.has_softmax:
        ok, diff, _ = close(model(x).numpy(), read_csv_columns(d / "predict.csv", "prob_"), LOGIT_TOL)
        assert ok, f"{env}: probabilities differ by {diff}"
        assert np.array_equal(model(x).argmax(1).numpy(), labels)


def test_logits_on_random_images_equal_predict_inputs(exported, cli):
    env, items, d, model = exported
    c, h, w = model.input_shape
    rng = np.random.default_rng(5)
    if c == 3:
        images = rng.integers(0, 256, size=(4, h, w, 3), dtype=np.uint8)
    else:
        images = (255 * rng.integers(0, 2, size=(4, h, w, 1))).astype(np.uint8)
    np.save(d / "random.npy", images)
    cli("predict", "--inputs", d / "random.npy", "--env", env, *options(items), "--out", d / "random.csv")
    prefix = "logit_" if model.has_softmax else "output_"
    want = read_csv_columns(d / "random.csv", prefix)
    ok, diff, scale = close(model.logits(model.to_input(images)).numpy(), want, LOGIT_TOL)
    assert ok, f"{env}: logits on random images differ by {diff} (scale {scale})"


@pytest.mark.parametrize("output", ["logit", "probability"])
def test_autograd_gradient_equals_saliency(exported, cli, output):
    env, _, d, model = exported
    maps = d / f"saliency-{output}"
    cli("attribute", "--data", d / "data", "--method", "saliency", "-p", f"output={output}", "--out", maps)
    record = json.loads((maps / "maps.json").read_text())
    images, _, ids = attrlab.torch.read_images(d / "data")
    x = model.to_input(images).requires_grad_(True)
    y = model.logits(x) if output == "logit" else model(x)
    targets = torch.tensor([s["target"] for s in record["samples"]])
    y[torch.arange(len(ids)), targets].sum().backward()
    got = x.grad.numpy()
    assert got.dtype == np.float32
    for i, s in enumerate(record["samples"]):
        assert s["id"] == ids[i]
        want = np.load(maps / s["map"])
        ok, diff, scale = close(got[i], want, GRAD_TOL)
        assert ok, f"{env} sample {s['id']}: gradient differs from saliency by {diff} (scale {scale})"


def test_layers_are_named_and_the_archive_is_checked(exported, tmp_path):
    env, _, d, model = exported
    assert model.env == env
    assert "accumulator.layers.5" in model.layer_names
    assert isinstance(model.layer("accumulator.layers.0"), torch.nn.Conv2d)
    with pytest.raises(ValueError, match="unknown layer 'no-such-layer'"):
        model.layer("no-such-layer")
    with pytest.raises(ValueError, match="expected uint8"):
        model.to_input(np.zeros((1, 32, 32, 3), np.float32))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not an attrlab network archive"):
        attrlab.torch.load(tmp_path / "bad.npz")


@pytest.mark.parametrize("fmt, suffix", [("onnx", "onnx"), ("torch", "npz")])
def test_model_export_writes_the_bytes_attrlab_export_writes(cli, tmp_path, fmt, suffix):
    import attrlab

    model = attrlab.Environment("multi-color-sum", size=32, ude=False, accumulator="uniform").model()
    model.export(tmp_path / f"python.{suffix}", format=fmt)
    cli("export", "--env", "multi-color-sum", "-o", "size=32", "-o", "ude=false", "-o", "accumulator=uniform",
        "--format", fmt, "--out", tmp_path / f"cli.{suffix}")
    assert (tmp_path / f"python.{suffix}").read_bytes() == (tmp_path / f"cli.{suffix}").read_bytes()
    with pytest.raises(ValueError, match="onnx"):
        model.export(tmp_path / "x.bin", format="tflite")
