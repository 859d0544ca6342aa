"""The module against the command line: same listings, data bytes, logits, maps and scores on
the same seeds; and errors as Python exceptions carrying the command line's message."""
import csv
import filecmp
import json
import os

import numpy as np
import pytest

import attrlab
from conftest import cli_error, run_cli


def same_tree(a, b):
    """Every file under a and b, byte for byte (names and contents)."""
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    _, mismatch, errors = filecmp.cmpfiles(a, b, [str(f) for f in files_a], shallow=False)
    assert mismatch == [] and errors == []


# ------------------------------------------------------------------------------------------------
# Listings


@pytest.mark.parametrize("listing,command", [(attrlab.environments, "envs"), (attrlab.methods, "methods"),
                                             (attrlab.metrics, "metrics")])
def test_listings_are_the_clis(listing, command):
    out, _ = run_cli(command, "--json")
    assert listing() == json.loads(out)


def test_every_registered_name_is_listed():
    names = [m["name"] for m in attrlab.methods()]
    assert "integrated-gradients" in names and "input-x-gradient" in names
    assert {"gt", "insertion"} <= {m["name"] for m in attrlab.metrics()}
    traps = {"residual", "reused-relu", "max-pool", "batch-norm", "saturation", "interaction", "position"}
    assert {"multi-color-sum", "single-color-modulo"} | traps == {e["name"] for e in attrlab.environments()}
    assert "lrp-epsilon" in attrlab.rules()


# ------------------------------------------------------------------------------------------------
# Data


@pytest.mark.parametrize("env,options,count,seed", [
    ("multi-color-sum", {"size": 32}, 6, 5),
    ("multi-color-sum", {"size": 32, "ude": True, "accumulator": "uniform"}, 3, 11),
    ("single-color-modulo", {"size": 32}, 4, 2),
])
def test_write_data_is_byte_identical_to_generate(tmp_path, env, options, count, seed):
    cli_dir = tmp_path / "cli"
    flags = [f for k, v in options.items() for f in ("-o", f"{k}={'on' if v is True else v}")]
    run_cli("generate", "--env", env, *flags, "--count", count, "--seed", seed, "--out", cli_dir)
    data = attrlab.Environment(env, **options).generate(count, seed=seed)
    attrlab.write_data(data, tmp_path / "py")
    same_tree(cli_dir, tmp_path / "py")


def test_read_data_gives_the_files(multi, multi_dir):
    n = len(multi)
    assert n == 6 and multi.ids == [f"{i:06d}" for i in range(n)]
    manifest = json.loads((multi_dir / "manifest.json").read_text())
    assert multi.manifest == manifest
    assert list(multi.labels) == [s["label"] for s in manifest["samples"]]
    assert multi.inputs.shape == (n, 3, 32, 32) and multi.inputs.dtype == np.float32
    assert multi.images.shape == (n, 32, 32, 3) and multi.images.dtype == np.uint8
    # The multi-color-sum network input is the RGB image in 0..255.
    assert np.array_equal(multi.inputs, multi.images.transpose(0, 3, 1, 2).astype(np.float32))
    for i, sid in enumerate(multi.ids):
        assert np.array_equal(multi.gt["pixel"][i], np.load(multi_dir / "gt" / f"{sid}.npy"))
        assert np.array_equal(multi.gt["smooth"][i], np.load(multi_dir / "gt" / f"{sid}.smooth.npy"))
        assert np.array_equal(multi.patches[i], np.load(multi_dir / "patches" / f"{sid}.npy"))
    assert np.array_equal(multi.gt["positive"], (multi.gt["pixel"] > 0).astype(np.float32))
    assert np.array_equal(multi.gt["negative"], (multi.gt["pixel"] < 0).astype(np.float32))
    assert multi.gt["positive"].sum() > 0 and multi.gt["negative"].sum() > 0
    assert multi.env.name == "multi-color-sum" and multi.env.options["size"] == 32
    assert multi.seed == 5 and multi.path == str(multi_dir)


def test_modulo_images_are_gray_over_three_channels(modulo):
    assert modulo.inputs.shape == (4, 1, 32, 32)
    images = modulo.images
    assert np.array_equal(images[..., 0], images[..., 2])
    assert np.array_equal(modulo.inputs[:, 0], (images[..., 0] == 255).astype(np.float32))
    assert list(modulo.targets) == [0] * 4


def test_generated_data_equals_read_data(multi):
    data = attrlab.Environment("multi-color-sum", size=32).generate(6, seed=5)
    assert data.path is None
    assert np.array_equal(data.inputs, multi.inputs)
    assert np.array_equal(data.gt["smooth"], multi.gt["smooth"])
    assert list(data.labels) == list(multi.labels)


# ------------------------------------------------------------------------------------------------
# Models


def column(row, prefix, k):
    """Values prefix_0..prefix_{k-1} of a predictions row (shortest float32 text) as float32."""
    return np.array([np.float32(row[f"{prefix}_{j}"]) for j in range(k)], dtype=np.float32)


def predictions(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("which", ["multi", "modulo"])
def test_forward_equals_predict(which, request, tmp_path):
    data = request.getfixturevalue(which)
    data_dir = request.getfixturevalue(which + "_dir")
    run_cli("predict", "--data", data_dir, "--out", tmp_path / "p.csv")
    rows = predictions(tmp_path / "p.csv")
    model = data.env.model()
    logits, probabilities = model.forward(data.inputs)
    k = model.outputs
    for i, row in enumerate(rows):
        if probabilities is not None:
            assert np.array_equal(column(row, "logit", k), logits[i])
            assert np.array_equal(column(row, "prob", k), probabilities[i])
        else:
            assert np.array_equal(column(row, "output", k), logits[i])
        assert int(row["predicted"]) == model.predict(data.inputs)[i]
    assert (which == "multi") == (probabilities is not None)


def test_layers_and_summary(multi):
    model = multi.env.model()
    layers = model.layers()
    assert len(layers) > 3 and len(set(layers)) == len(layers)
    x = multi.inputs[:2]
    first = model.forward(x, layer=layers[0])
    assert first.shape == (2,) + model.layer_shape(layers[0])[1:]
    last = model.forward(x, layer=layers[-1])
    assert np.array_equal(last, model.forward(x)[1])
    out, _ = run_cli("summary", "--env", "multi-color-sum", "-o", "size=32")
    # Equal but for the line that says how long building took ("built in 0.2 ms").
    strip = lambda text: [l for l in text.splitlines() if not l.startswith("built in ")]
    assert len(strip(out)) == len(out.splitlines()) - 1
    assert strip(model.summary()) == strip(out)


def test_gradient_and_rules(multi):
    model = multi.env.model()
    x, t = multi.inputs, multi.targets
    g = model.gradient(x, t)
    assert g.shape == x.shape and g.dtype == np.float32
    # The gradient is the saliency method's map, byte for byte.
    assert np.array_equal(g, attrlab.attribute(model, x, t, "saliency"))
    assert np.array_equal(model.gradient(x, t, output="logit"), attrlab.attribute(model, x, t, "saliency", output="logit"))
    # LRP through backward() is the lrp method.
    for composite in ("lrp-epsilon", "lrp-zplus"):
        assert np.array_equal(model.backward(x, t, rule=composite, output="logit"),
                              attrlab.attribute(model, x, t, "lrp", composite=composite))
    guided = model.backward(x, t, rule="guided-backprop")
    assert np.array_equal(guided, attrlab.attribute(model, x, t, "guided-backprop"))
    # A gradient at a hidden layer has the layer's shape.
    layer = multi.env._env.default_layers["gradcam"]
    assert model.gradient(x, t, layer=layer).shape == (len(x),) + model.layer_shape(layer)[1:]
    with pytest.raises(attrlab.Error, match="reference"):
        model.backward(x, t, rule="deeplift-rescale")
    dl = model.backward(x, t, rule="deeplift-rescale", reference=np.zeros(x.shape[1:], np.float32))
    assert dl.shape == x.shape and np.isfinite(dl).all()


# ------------------------------------------------------------------------------------------------
# Methods: the command line's maps, byte for byte


CASES = [
    ("saliency", {}, "label", 0),
    ("integrated-gradients", {"steps": 8, "baseline": "background"}, "label", 0),
    ("lime", {"samples": 40}, "label", 7),
    ("occlusion", {}, "predicted", 0),
    ("gradcam", {}, "1", 0),
    ("rise", {"masks": 30}, "label", 123),
    ("lime", {"segmentation": "oracle", "samples": 40}, "label", 0),
]


@pytest.mark.parametrize("method,params,target,seed", CASES)
def test_attribute_equals_cli(multi, multi_dir, tmp_path, method, params, target, seed):
    flags = [f for k, v in params.items() for f in ("-p", f"{k}={v}")]
    run_cli("attribute", "--data", multi_dir, "--method", method, *flags, "--target", target, "--seed", seed,
            "--out", tmp_path / "maps")
    record = json.loads((tmp_path / "maps" / "maps.json").read_text())
    model = multi.env.model()
    py_target = int(target) if target.isdigit() else target
    maps, info = attrlab.attribute(model, multi, py_target, method, seed=seed, details=True, **params)
    assert maps.shape == multi.inputs.shape
    for i, sid in enumerate(multi.ids):
        assert np.load(tmp_path / "maps" / f"{sid}.npy").tobytes() == maps[i].tobytes(), f"{method} sample {sid}"
    assert info["params"] == record["params"]
    assert list(info["target"]) == [s["target"] for s in record["samples"]]
    if params.get("segmentation") != "oracle":
        # The same inputs as an array (targets given per sample, reference = the first inputs).
        again = attrlab.attribute(model, multi.inputs, info["target"], method, seed=seed, **params)
        assert again.tobytes() == maps.tobytes()


def test_attribute_modulo_equals_cli(modulo, modulo_dir, tmp_path):
    run_cli("attribute", "--data", modulo_dir, "--method", "integrated-gradients", "-p", "quadrature=exact",
            "--out", tmp_path / "maps")
    maps = attrlab.attribute(modulo.env.model(), modulo, "label", "integrated-gradients", quadrature="exact")
    for i, sid in enumerate(modulo.ids):
        assert np.load(tmp_path / "maps" / f"{sid}.npy").tobytes() == maps[i].tobytes()


def test_convergence_delta_is_reported(multi, multi_dir, tmp_path):
    run_cli("attribute", "--data", multi_dir, "--method", "integrated-gradients", "-p", "steps=4",
            "--out", tmp_path / "maps")
    record = json.loads((tmp_path / "maps" / "maps.json").read_text())
    _, info = attrlab.attribute(multi.env.model(), multi, "label", "integrated-gradients", steps=4, details=True)
    assert list(info["convergence_delta"]) == [s["convergence-delta"] for s in record["samples"]]


def test_python_method_scores_like_the_builtin(multi):
    model = multi.env.model()

    def gradient_x_input(model, x, target):
        return x * model.gradient(x, target)

    maps = attrlab.attribute(model, multi, "label", gradient_x_input)
    builtin = attrlab.attribute(model, multi, "label", "input-x-gradient")
    assert maps.tobytes() == builtin.tobytes()
    results = attrlab.evaluate([gradient_x_input, "input-x-gradient"], multi, metrics=["gt", "insertion"])
    s = results["scores"]
    mine, theirs = s["method"] == "gradient_x_input", s["method"] == "input-x-gradient"
    assert mine.sum() == theirs.sum() > 0
    assert np.array_equal(s["value"][mine], s["value"][theirs])
    assert np.array_equal(s["variant"][mine], s["variant"][theirs])
    c = results["curves"]
    assert np.array_equal(c["y"][c["method"] == "gradient_x_input"], c["y"][c["method"] == "input-x-gradient"])
    assert results.value("gradient_x_input", "gt", "f1-positive") == results.value("input-x-gradient", "gt",
                                                                                     "f1-positive")


# ------------------------------------------------------------------------------------------------
# Metrics: the command line's scores


def read_results(path):
    with open(path, newline="") as f:
        return {(r["sample"], r["metric"], r["variant"]): float(r["value"]) for r in csv.DictReader(f)}


def test_evaluate_equals_cli(multi, multi_dir, tmp_path):
    run_cli("attribute", "--data", multi_dir, "--method", "saliency", "--out", tmp_path / "maps")
    run_cli("evaluate", "--data", multi_dir, "--maps", tmp_path / "maps", "--metric", "gt", "--metric", "insertion",
            "--metric", "deletion", "-p", "pixels-per-step=16", "--out", tmp_path / "results.csv")
    cli = read_results(tmp_path / "results.csv")
    maps = np.stack([np.load(tmp_path / "maps" / f"{sid}.npy") for sid in multi.ids])
    results = attrlab.evaluate({"saliency": maps}, multi, metrics=["gt", "insertion", "deletion"], pixels_per_step=16)
    s, a = results["scores"], results["aggregates"]
    mine = {(r, m, v): x for r, m, v, x in zip(s["sample"], s["metric"], s["variant"], s["value"])}
    mine.update({("all", m, v): x for m, v, x in zip(a["metric"], a["variant"], a["value"])})
    assert mine == cli
    # The same maps given by name are attributed first, and N×H×W maps score like N×C×H×W.
    by_name = attrlab.evaluate("saliency", multi, metrics=["gt"])
    summed = attrlab.evaluate({"saliency": maps.sum(axis=1)}, multi, metrics=["gt"])
    assert np.array_equal(by_name["scores"]["value"], summed["scores"]["value"])
    assert set(results["curves"]["metric"]) == {"insertion", "deletion"}
    assert results["directions"][("gt", "f1-positive")] == "higher-is-better"
    table = results.table(["gt/f1-positive", "insertion/auc"])
    assert table.splitlines()[1].startswith("saliency")


def test_completeness_gap_is_aggregated(multi):
    results = attrlab.evaluate("integrated-gradients", multi, metrics=["gt"])
    a = results["aggregates"]
    gap = (a["metric"] == "method") & (a["variant"] == "completeness-gap")
    assert gap.sum() == 1 and np.isfinite(a["value"][gap]).all()


# ------------------------------------------------------------------------------------------------
# Errors: exceptions with the command line's message, never a crash


def test_parameter_errors_carry_the_cli_message(multi, multi_dir, tmp_path):
    model = multi.env.model()
    for params, flags in [({"steps": 0}, ["-p", "steps=0"]), ({"quadrature": "simpson"}, ["-p", "quadrature=simpson"]),
                          ({"stepz": 3}, ["-p", "stepz=3"])]:
        message = cli_error("attribute", "--data", multi_dir, "--method", "integrated-gradients", *flags,
                            "--out", tmp_path / "m")
        with pytest.raises(ValueError) as e:
            attrlab.attribute(model, multi, "label", "integrated-gradients", **params)
        assert str(e.value) == message
    message = cli_error("attribute", "--data", multi_dir, "--method", "no-such-method", "--out", tmp_path / "m")
    with pytest.raises(attrlab.Error) as e:
        attrlab.attribute(model, multi, "label", "no-such-method")
    assert str(e.value) == message
    message = cli_error("generate", "--env", "multi-color-sum", "-o", "size=1", "--count", 1, "--out", tmp_path / "d")
    with pytest.raises(attrlab.Error) as e:
        attrlab.Environment("multi-color-sum", size=1)
    assert str(e.value) == message
    message = cli_error("generate", "--env", "no-such-env", "--count", 1, "--out", tmp_path / "d")
    with pytest.raises(attrlab.Error) as e:
        attrlab.Environment("no-such-env")
    assert str(e.value) == message
    (tmp_path / "maps").mkdir()
    message = cli_error("evaluate", "--data", multi_dir, "--maps", tmp_path / "maps", "--metric", "gt", "-p",
                        "no-key=1", "--out", tmp_path / "r.csv")
    with pytest.raises(attrlab.Error) as e:
        attrlab.evaluate(multi.inputs.sum(axis=1), multi, metrics=["gt"], no_key=1)
    assert str(e.value) == message


def test_bad_arrays_and_targets_raise(multi):
    model = multi.env.model()
    x = multi.inputs
    with pytest.raises(attrlab.Error, match="float64"):
        model.forward(x.astype(np.float64))
    with pytest.raises(attrlab.Error, match="int64"):
        model.gradient(x.astype(np.int64), 0)
    with pytest.raises(attrlab.Error, match="do not fit"):
        model.forward(x[:, :2])
    with pytest.raises(attrlab.Error, match="expected N×C×H×W"):
        model.forward(x[0])
    with pytest.raises(attrlab.Error, match="list"):
        model.forward(x.tolist())
    with pytest.raises(attrlab.Error, match="x: holds NaN or Inf"):
        model.gradient(np.where(x > 100, np.inf, x).astype(np.float32), 0)
    with pytest.raises(attrlab.Error, match="target 9 is not an output unit"):
        model.gradient(x, 9)
    with pytest.raises(attrlab.Error, match="target -1 is not an output unit"):
        attrlab.attribute(model, x, -1, "saliency")
    with pytest.raises(attrlab.Error, match="3 targets for 6 inputs"):
        model.gradient(x, [0, 1, 2])
    with pytest.raises(attrlab.Error, match="target 7: expected label, predicted or an output unit"):
        attrlab.attribute(model, multi, 7, "saliency")
    with pytest.raises(attrlab.Error, match="only a Dataset has labels"):
        attrlab.attribute(model, x, "label", "saliency")
    with pytest.raises(attrlab.Error, match="unknown layer|no layer|layer"):
        model.forward(x, layer="no.such.layer")
    with pytest.raises(attrlab.Error, match="seed"):
        multi.env.generate(2, seed=-1)
    with pytest.raises(attrlab.Error, match="count"):
        multi.env.generate(0)
    with pytest.raises(attrlab.Error, match="maps of m: shape"):
        attrlab.evaluate({"m": x[:2]}, multi, metrics=["gt"])
    with pytest.raises(attrlab.Error, match="NaN or Inf"):
        attrlab.evaluate({"m": np.full(x.shape, np.nan, np.float32)}, multi, metrics=["gt"])
    with pytest.raises(attrlab.Error, match="unknown metric"):
        attrlab.evaluate({"m": x}, multi, metrics=["no-such-metric"])
    with pytest.raises(attrlab.Error, match="dtype float64"):
        attrlab.attribute(model, multi, "label", lambda model, x, t: np.zeros(x.shape))
    with pytest.raises(attrlab.Error, match="shape"):
        attrlab.attribute(model, multi, "label", lambda model, x, t: x[:1])
    with pytest.raises(attrlab.Error, match="no such data directory"):
        attrlab.read_data("/nonexistent/attrlab-data")


def test_a_pth_file_naming_build_python_makes_it_importable(tmp_path):
    """What scripts/setup.sh installs: a .pth file holding the absolute path of build/python."""
    import subprocess
    import sys
    build_python = os.path.dirname(os.path.dirname(os.path.abspath(attrlab.__file__)))
    (tmp_path / "attrlab.pth").write_text(build_python + "\n")
    code = f"import site; site.addsitedir({str(tmp_path)!r}); import attrlab; print(attrlab.__file__)"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == os.path.join(build_python, "attrlab", "__init__.py")
