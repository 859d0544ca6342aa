"""Every trap environment (datasets/traps.h) exports to a PyTorch archive that attrlab.torch loads:
its outputs equal `attrlab predict` (the designed scores, which are the labels) and torch.autograd's
input gradients equal attrlab's `saliency` maps, node types of the graph runtime included (residual
sums, a shared ReLU, max-pool with ties, batch-norm)."""

import csv
import json

import numpy as np
import pytest

from export_helpers import cli  # noqa: F401  (the fixture; also puts python/ on sys.path)

import torch  # noqa: E402
import attrlab.torch  # noqa: E402

TRAPS = ["residual", "reused-relu", "max-pool", "batch-norm", "saturation", "interaction", "position"]


@pytest.mark.parametrize("trap", TRAPS)
def test_trap_archive_computes_attrlab_scores_and_gradients(trap, cli, tmp_path):
    cli("generate", "--env", trap, "-o", "size=16", "--count", 6, "--seed", 2, "--out", tmp_path / "data")
    cli("export", "--data", tmp_path / "data", "--format", "torch", "--out", tmp_path / "net.npz")
    cli("predict", "--data", tmp_path / "data", "--out", tmp_path / "predict.csv")
    model = attrlab.torch.load(tmp_path / "net.npz")
    assert model.env == trap
    images, labels, ids = attrlab.torch.read_images(tmp_path / "data")
    x = model.to_input(images).requires_grad_(True)
    y = model.logits(x)
    with open(tmp_path / "predict.csv") as f:
        rows = list(csv.DictReader(f))
    want = np.array([[float(r[k]) for k in r if k.startswith("output_")] for r in rows], np.float32)
    assert np.array_equal(y.detach().numpy(), want)
    assert np.array_equal(y.detach().numpy()[:, 0], np.asarray(labels, np.float32))

    maps = tmp_path / "saliency"
    cli("attribute", "--data", tmp_path / "data", "--method", "saliency", "-p", "output=logit", "--out", maps)
    record = json.loads((maps / "maps.json").read_text())
    y[:, 0].sum().backward()
    for i, s in enumerate(record["samples"]):
        assert s["id"] == ids[i]
        np.testing.assert_allclose(x.grad.numpy()[i], np.load(maps / s["map"]), atol=1e-5)
