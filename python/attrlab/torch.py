"""attrlab networks in PyTorch: ``attrlab.torch.load(PATH)`` builds the exact network that
``attrlab export --format torch --out PATH`` wrote, as a ``torch.nn.Module``.

Needs only numpy and torch (not the compiled ``attrlab`` module), so Captum, Zennit, shap or
the user's own code can run on the lab's hand-weighted networks.

The archive (lab/io/export.h) is an ``.npz``: ``architecture.json`` (format "attrlab-network",
version 1: input shape, metadata and the layers in order) and per affine layer
``<layer>.weight.npy`` / ``<layer>.bias.npy``. Every weight is float32, as attrlab computes.

``read_images(DIR)`` reads a data directory's PNGs and labels without OpenCV or PIL, and
``Network.to_input(images)`` turns uint8 images into network inputs exactly as the data
pipeline does (pixel value / the image-divisor recorded by ``attrlab export``).
"""

import json
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["Network", "load", "read_images"]

_FORMAT = "attrlab-network"
_VERSION = 1


class Network(nn.Module):
    """The exported network: ``forward(x)`` gives the network's own output (after its final
    softmax, if it has one: the probabilities), ``logits(x)`` the output before that softmax
    (the network output itself when there is none). Inputs are N×C×H×W float32 tensors.

    ``layer_names[i]`` is attrlab's name of ``layers[i]`` ("accumulator.layers.5");
    ``layer(name)`` returns that module, e.g. for a forward hook (GradCAM, IBA).
    """

    def __init__(self, architecture, layers, names):
        super().__init__()
        self.architecture = architecture
        self.layers = nn.ModuleList(layers)
        self.layer_names = list(names)
        self.input_shape = tuple(architecture["input-shape"])
        metadata = architecture.get("metadata", {})
        self.env = metadata.get("env")
        self.options = metadata.get("options", {})
        self.image_divisor = metadata.get("image-divisor")
        self.has_softmax = len(layers) > 0 and isinstance(layers[-1], nn.Softmax)

    def _run(self, x, count):
        # A graph archive names each node's inputs; a chain reads the previous node.
        specs = self.architecture["layers"]
        if not any("inputs" in s for s in specs):
            for layer in self.layers[:count]:
                x = layer(x)
            return x
        values = {"input": x}
        for spec, layer in zip(specs[:count], self.layers[:count]):
            x = layer(*[values[n] for n in spec["inputs"]])
            values[spec["name"]] = x
        return x

    def forward(self, x):
        return self._run(x, len(self.layers))

    def logits(self, x):
        return self._run(x, len(self.layers) - 1 if self.has_softmax else len(self.layers))

    def layer(self, name):
        try:
            return self.layers[self.layer_names.index(name)]
        except ValueError:
            raise ValueError(f"unknown layer '{name}'; layers: {', '.join(self.layer_names)}") from None

    def to_input(self, images):
        """N×H×W×C (or N×H×W, gray) uint8 images → N×C×H×W float32 network inputs."""
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise ValueError(f"images: dtype {images.dtype}; expected uint8")
        if images.ndim == 3:
            images = images[..., None]
        c, h, w = self.input_shape
        if images.ndim != 4 or images.shape[1:] != (h, w, c):
            raise ValueError(f"images: shape {list(images.shape)}; expected N×H×W×C [N, {h}, {w}, {c}]")
        if self.image_divisor is None:
            raise ValueError("this archive records no image-divisor (export it with `attrlab export`)")
        x = images.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(self.image_divisor)
        return torch.from_numpy(np.ascontiguousarray(x))


class BatchNorm(nn.modules.batchnorm._BatchNorm):
    """attrlab's ``batch-norm`` node (inference): per channel (dimension 1) of an input of any rank ≥ 2."""

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"batch-norm expects N×C×… input, got {input.dim()} dimensions")


class Add(nn.Module):
    """attrlab's ``add`` node: the sum of its inputs, in order."""

    def forward(self, *xs):
        y = xs[0]
        for x in xs[1:]:
            y = y + x
        return y


class Concat(nn.Module):
    """attrlab's ``concat`` node: concatenation along dimension 1."""

    def forward(self, *xs):
        return torch.cat(xs, dim=1)


class Multiply(nn.Module):
    """attrlab's ``multiply`` node: signal ⊙ gate."""

    def forward(self, signal, gate):
        return signal * gate


def _layer(spec, arrays, path):
    kind = spec["kind"]
    name = spec["name"]

    def weights(module):
        w = arrays[f"{name}.weight"]
        if tuple(module.weight.shape) != w.shape:
            raise ValueError(f"{path}: {name}.weight is shaped {list(w.shape)}; the layer needs {list(module.weight.shape)}")
        with torch.no_grad():
            module.weight.copy_(torch.from_numpy(w))
            if module.bias is not None:
                module.bias.copy_(torch.from_numpy(arrays[f"{name}.bias"]))
        return module

    if kind == "conv2d":
        return weights(nn.Conv2d(spec["in-channels"], spec["out-channels"], tuple(spec["kernel"]),
                                 stride=tuple(spec["stride"]), padding=tuple(spec["padding"]),
                                 groups=spec["groups"], bias=spec["bias"]))
    if kind == "linear":
        return weights(nn.Linear(spec["in-features"], spec["out-features"], bias=spec["bias"]))
    if kind == "relu":
        return nn.ReLU()
    if kind == "softmax":
        return nn.Softmax(dim=spec.get("dim", 1))
    if kind == "flatten":
        return nn.Flatten(spec.get("start-dim", 1))
    if kind == "max-pool2d":
        return nn.MaxPool2d(tuple(spec["kernel"]), stride=tuple(spec["stride"]), padding=tuple(spec["padding"]))
    if kind == "batch-norm":
        bn = weights(BatchNorm(spec["channels"], eps=spec["eps"]))
        with torch.no_grad():
            bn.running_mean.copy_(torch.from_numpy(arrays[f"{name}.running_mean"]))
            bn.running_var.copy_(torch.from_numpy(arrays[f"{name}.running_var"]))
        return bn
    if kind == "add":
        return Add()
    if kind == "concat":
        return Concat()
    if kind == "multiply":
        return Multiply()
    raise ValueError(f"{path}: layer '{name}' has unknown kind '{kind}'; expected conv2d, linear, relu, softmax, "
                     "flatten, max-pool2d, batch-norm, add, concat, multiply")


def load(path):
    """The ``torch.nn.Module`` of an archive written by ``attrlab export --format torch``
    (float32, evaluation mode, parameters without gradients: the network is fixed)."""
    path = str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            architecture = json.loads(archive.read("architecture.json"))
    except (OSError, zipfile.BadZipFile, KeyError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not an attrlab network archive ({e})") from None
    if architecture.get("format") != _FORMAT or architecture.get("version") != _VERSION:
        raise ValueError(f"{path}: format {architecture.get('format')!r} version {architecture.get('version')!r}; "
                         f"expected {_FORMAT!r} version {_VERSION}")
    with np.load(path) as npz:
        arrays = {key: npz[key] for key in npz.files if key != "architecture.json"}
    for key, a in arrays.items():
        if a.dtype != np.float32:
            raise ValueError(f"{path}: {key} has dtype {a.dtype}; expected float32")
    specs = architecture["layers"]
    modules = {}
    for s in specs:
        # A node that applies the same layer object as an earlier one gets that node's module.
        modules[s["name"]] = modules[s["shares"]] if "shares" in s else _layer(s, arrays, path)
    model = Network(architecture, [modules[s["name"]] for s in specs], [s["name"] for s in specs])
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _read_png(path):
    """An 8-bit gray (H×W) or RGB (H×W×3) non-interlaced PNG, as attrlab writes them."""
    data = Path(path).read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        elif kind == b"IEND":
            break
    width, height, depth, color, _, _, interlace = header
    channels = {0: 1, 2: 3}.get(color)
    if depth != 8 or channels is None or interlace != 0:
        raise ValueError(f"{path}: PNG of bit depth {depth}, colour type {color}, interlace {interlace}; "
                         "expected 8-bit gray or RGB, not interlaced")
    stride = width * channels
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8).reshape(height, stride + 1)
    out = np.zeros((height, stride), np.int32)
    prev = np.zeros(stride, np.int32)
    for y in range(height):
        kind, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if kind == 0:
            row = line
        elif kind == 1:
            row = (line.reshape(width, channels).cumsum(0) & 0xFF).reshape(stride).astype(np.int32)
        elif kind == 2:
            row = (line + prev) & 0xFF
        else:  # Sub, Average and Paeth depend on the pixel to the left: one pixel at a time.
            row = np.zeros(stride, np.int32)
            for x in range(0, stride, channels):
                left = row[x - channels:x] if x else np.zeros(channels, np.int32)
                up, up_left = prev[x:x + channels], (prev[x - channels:x] if x else np.zeros(channels, np.int32))
                if kind == 3:
                    pred = (left + up) // 2
                elif kind == 4:
                    pred = _paeth(left, up, up_left)
                else:
                    raise ValueError(f"{path}: unknown PNG filter {kind} in row {y}")
                row[x:x + channels] = (line[x:x + channels] + pred) & 0xFF
        out[y] = row
        prev = row
    image = out.astype(np.uint8).reshape(height, width, channels)
    return image[..., 0] if channels == 1 else image


def read_images(data_dir):
    """A data directory's samples: (images N×H×W×C uint8, RGB or gray with C = 1; labels int64;
    ids), in the manifest's order."""
    data_dir = Path(data_dir)
    manifest = json.loads((data_dir / "manifest.json").read_text())
    images, labels, ids = [], [], []
    for s in manifest["samples"]:
        image = _read_png(data_dir / s["image"])
        images.append(image if image.ndim == 3 else image[..., None])
        labels.append(s["label"])
        ids.append(s["id"])
    return np.stack(images), np.asarray(labels, np.int64), ids
