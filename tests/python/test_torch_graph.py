"""attrlab.torch loads graph archives (lab/io/export.h): each layer record's `inputs` wires the
nodes, `shares` gives a node the module of an earlier one (one object, as in the network), and the
graph layer kinds (max-pool2d, batch-norm, add, concat, multiply) compute what attrlab computes.
The archive is written here in the layout export_torch writes (tests/datasets/test_export.cpp
checks that layout from the C++ side); the reference is torch.nn.functional, node by node."""

import io
import json
import zipfile

import numpy as np

from export_helpers import cli  # noqa: F401  (also puts python/ on sys.path)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
import attrlab.torch  # noqa: E402


def npy_bytes(a):
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(a, dtype=np.float32))
    return buffer.getvalue()


def test_graph_archive_wires_nodes_shares_modules_and_computes_every_kind(tmp_path):
    rng = np.random.default_rng(5)
    w1, b1 = rng.uniform(-1, 1, (4, 2, 3, 3)), rng.uniform(-0.1, 0.1, 4)
    gamma, beta = rng.uniform(0.5, 2, 4), rng.uniform(-1, 1, 4)
    mean, var = rng.uniform(-1, 1, 4), rng.uniform(0.1, 1, 4)
    wf, bf = rng.uniform(-1, 1, (3, 128)), rng.uniform(-0.1, 0.1, 3)
    conv = {"kind": "conv2d", "in-channels": 2, "out-channels": 4, "kernel": [3, 3], "stride": [1, 1],
            "padding": [1, 1], "groups": 1, "bias": True}
    layers = [
        dict(conv, name="c1", inputs=["input"]),
        {"name": "bn", "kind": "batch-norm", "channels": 4, "eps": 1e-3, "inputs": ["c1"]},
        {"name": "a", "kind": "relu", "inputs": ["bn"]},
        {"name": "a2", "kind": "relu", "inputs": ["c1"], "shares": "a"},
        {"name": "gated", "kind": "multiply", "inputs": ["a", "a2"]},
        {"name": "sum", "kind": "add", "inputs": ["gated", "a", "c1"]},
        {"name": "pool", "kind": "max-pool2d", "kernel": [2, 2], "stride": [2, 2], "padding": [0, 0], "inputs": ["sum"]},
        {"name": "side", "kind": "max-pool2d", "kernel": [3, 3], "stride": [2, 2], "padding": [1, 1], "inputs": ["a"]},
        {"name": "both", "kind": "concat", "dim": 1, "inputs": ["pool", "side"]},
        {"name": "flatten", "kind": "flatten", "start-dim": 1, "inputs": ["both"]},
        {"name": "fc", "kind": "linear", "in-features": 128, "out-features": 3, "bias": True, "inputs": ["flatten"]},
        {"name": "softmax", "kind": "softmax", "dim": 1, "inputs": ["fc"]},
    ]
    architecture = {"format": "attrlab-network", "version": 1, "attrlab-version": "test", "input-shape": [2, 8, 8],
                    "output": "probabilities", "metadata": {}, "layers": layers}
    path = tmp_path / "graph.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("architecture.json", json.dumps(architecture))
        for name, a in [("c1.weight", w1), ("c1.bias", b1), ("bn.weight", gamma), ("bn.bias", beta),
                        ("bn.running_mean", mean), ("bn.running_var", var), ("fc.weight", wf), ("fc.bias", bf)]:
            z.writestr(f"{name}.npy", npy_bytes(a))
    net = attrlab.torch.load(path)
    assert net.layer("a") is net.layer("a2")
    assert net.has_softmax

    t = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in
         dict(w1=w1, b1=b1, gamma=gamma, beta=beta, mean=mean, var=var, wf=wf, bf=bf).items()}
    x = torch.from_numpy(rng.uniform(-1, 1, (5, 2, 8, 8)).astype(np.float32))
    c1 = F.conv2d(x, t["w1"], t["b1"], padding=1)
    a = F.relu(F.batch_norm(c1, t["mean"], t["var"], t["gamma"], t["beta"], eps=1e-3))
    a2 = F.relu(c1)
    s = a * a2 + a + c1
    both = torch.cat([F.max_pool2d(s, 2, 2), F.max_pool2d(a, 3, 2, padding=1)], dim=1)
    logits = F.linear(both.flatten(1), t["wf"], t["bf"])
    with torch.no_grad():
        assert torch.allclose(net.logits(x), logits, atol=1e-5)
        assert torch.allclose(net(x), torch.softmax(logits, dim=1), atol=1e-6)
