#!/usr/bin/python3
"""attrlab vs PyTorch, method by method, on the same network and the same images: seconds per
image of each attribution method that has a plain PyTorch formulation, at 64×64 and 224×224,
on 1 and 2 threads, with the ratio attrlab ÷ PyTorch (< 1: attrlab is faster; the goal of issue
21 is ≤ 0.5), printed as one Markdown table. Not a test. Both wall-clock and CPU seconds (of the
process, every thread) are printed: on a machine other jobs load, wall-clock time measures them
as much as the work, and the CPU ratio at 1 thread is the steadier figure (at 2 threads it also
counts OpenMP threads spinning while they wait, which the two runtimes tune differently).

attrlab's side is build/bench/bench_torch_methods (the methods called from C++, the whole batch
in one call); it writes the images, targets, patches and its outputs, and PyTorch's side runs on
exactly those inputs with the network `attrlab export --format torch` wrote, loaded by
python/attrlab/torch.py. Rows are measured one after the other, attrlab then PyTorch, so a change
of the machine's load skews a row's two sides alike. Each output is compared (max abs diff, next
to the largest |value| of attrlab's output) so that both sides do the same computation.

PyTorch's side is written as a PyTorch user would: parameters frozen, torch.autograd.grad for
the input gradient only, batches of 32 network inputs, torch.no_grad() for forward-only work,
torch.set_num_threads(T):
- saliency, input-x-gradient: autograd on the softmax output (attrlab's default output).
- integrated-gradients: Gauss–Legendre nodes (attrlab's and Captum's default; 50 at 64×64, 16 at
  224×224), zero baseline, all path points of all images batched.
- guided-backprop, deconvnet: full backward hooks on every ReLU (as Captum does).
- gradcam: forward hook at accumulator.layers.5, autograd to that activation only, bilinear
  upsampling (F.interpolate, align_corners=False), spread over the 3 channels as attrlab does.
- lrp-epsilon: LRP-ε (ε = 1e-6) on the logits, written here for the exported layers: per affine
  layer s = R / (z + ε·sign z), c = Wᵀ s (conv2d_input / s @ W), R = x ⊙ c.
- occlusion: Captum's window layout (5×5 window, stride 3 at 64×64; 32×32, stride 16 at
  224×224), occluded copies built by slicing, batched forwards.
- lime, kernelshap: only the network evaluations of the same number of coalitions (100) over the
  same patches (attrlab's row also draws the coalitions and solves the regression), so this row
  is a lower bound on PyTorch's time.
- insertion, deletion: 64-step curves (H·W/64 pixels per step) on a fixed pixel order, the 65
  inputs built from one rank map and evaluated in batches.

    /usr/bin/python3 bench/bench_torch_methods.py [--build build] [--sizes 64,224] [--threads 1,2] [--only ROWS]
"""

import argparse
import importlib.util
import json
import math
import os
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
# The loader alone (it needs only numpy and torch), not the package's compiled extension.
_spec = importlib.util.spec_from_file_location("attrlab_torch", ROOT / "python" / "attrlab" / "torch.py")
attrlab_torch = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(attrlab_torch)

BATCH = 32  # network inputs per call, attrlab's Context::batch in bench_torch_methods.cpp
ROWS = ["saliency", "input-x-gradient", "integrated-gradients", "guided-backprop", "deconvnet", "gradcam",
        "lrp-epsilon", "occlusion", "lime", "kernelshap", "insertion", "deletion"]
IMAGES = {64: 2, 224: 1}


def seconds_of(work):
    """As bench_torch_methods.cpp: median wall and CPU seconds (CPU: the process, every thread)
    after one warm-up call, at least 3 runs (more while under 2 s); work that takes over a
    second is timed once after the warm-up."""
    t0 = time.perf_counter()
    work()
    long_run = time.perf_counter() - t0 > 1.0
    wall, cpu, start = [], [], time.perf_counter()
    while not wall or (not long_run and (len(wall) < 3 or (len(wall) < 15 and time.perf_counter() - start < 2.0))):
        c0, t0 = time.process_time(), time.perf_counter()
        work()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return sorted(wall)[len(wall) // 2], sorted(cpu)[len(cpu) // 2]


def chunks(total):
    for b in range(0, total, BATCH):
        yield b, min(total, b + BATCH)


class Methods:
    def __init__(self, model, x, targets, segments, order, size):
        self.model, self.x, self.t, self.segments, self.order = model, x, targets, segments, order
        self.n = x.shape[0]
        self.rows = torch.arange(self.n)
        self.size = size

    def _input_gradient(self, x, targets, f):
        xg = x.clone().requires_grad_(True)
        out = f(xg)
        (grad,) = torch.autograd.grad(out[torch.arange(x.shape[0]), targets].sum(), xg)
        return grad

    def saliency(self, p):
        return self._input_gradient(self.x, self.t, self.model)

    def input_x_gradient(self, p):
        return self.x * self._input_gradient(self.x, self.t, self.model)

    def integrated_gradients(self, p):
        nodes, weights = np.polynomial.legendre.leggauss(p["steps"])
        alphas = torch.tensor((nodes + 1) / 2, dtype=torch.float32)
        w = torch.tensor(weights / 2, dtype=torch.float32)
        steps = len(alphas)
        # All (image, node) pairs, batched.
        image = torch.arange(self.n).repeat_interleave(steps)
        node = torch.arange(steps).repeat(self.n)
        total = torch.zeros_like(self.x)
        for b, e in chunks(len(image)):
            xs = self.x[image[b:e]] * alphas[node[b:e]].view(-1, 1, 1, 1)
            g = self._input_gradient(xs, self.t[image[b:e]], self.model)
            total.index_add_(0, image[b:e], g * w[node[b:e]].view(-1, 1, 1, 1))
        return self.x * total

    def _hooked(self, hook):
        handles = [m.register_full_backward_hook(hook) for m in self.model.layers if isinstance(m, nn.ReLU)]
        try:
            return self._input_gradient(self.x, self.t, self.model)
        finally:
            for h in handles:
                h.remove()

    def guided_backprop(self, p):
        return self._hooked(lambda m, gin, gout: (torch.clamp(gin[0], min=0.0),))

    def deconvnet(self, p):
        return self._hooked(lambda m, gin, gout: (torch.clamp(gout[0], min=0.0),))

    def gradcam(self, p):
        kept = {}

        def keep(module, inputs, output):
            output.requires_grad_(True)
            kept["a"] = output

        handle = self.model.layer("accumulator.layers.5").register_forward_hook(keep)
        try:
            out = self.model.logits(self.x)
        finally:
            handle.remove()
        a = kept["a"]
        (g,) = torch.autograd.grad(out[self.rows, self.t].sum(), a)
        with torch.no_grad():
            cam = torch.relu((g.mean(dim=(2, 3), keepdim=True) * a).sum(dim=1, keepdim=True))
            cam = F.interpolate(cam, size=self.x.shape[2:], mode="bilinear", align_corners=False)
            return (cam / self.x.shape[1]).expand_as(self.x).contiguous()

    def lrp_epsilon(self, p):
        eps = 1e-6
        model = self.model
        with torch.no_grad():
            acts = [self.x]
            for layer in model.layers[:-1] if model.has_softmax else model.layers:
                acts.append(layer(acts[-1]))
            logits = acts[-1]
            r = torch.zeros_like(logits)
            r[self.rows, self.t] = logits[self.rows, self.t]
            for i in reversed(range(len(acts) - 1)):
                layer, x, z = model.layers[i], acts[i], acts[i + 1]
                if isinstance(layer, (nn.Conv2d, nn.Linear)):
                    d = z + torch.where(z >= 0, eps, -eps)
                    s = torch.where(d == 0, torch.zeros_like(d), r / d)
                    if isinstance(layer, nn.Conv2d):
                        c = torch.nn.grad.conv2d_input(x.shape, layer.weight, s, stride=layer.stride,
                                                       padding=layer.padding, groups=layer.groups)
                    else:
                        c = s @ layer.weight
                    r = x * c
                else:  # ReLU, Flatten: relevance passes (reshaped)
                    r = r.reshape(x.shape)
            return r

    def occlusion(self, p):
        _, wh, ww = p["window"]
        _, sh, sw = p["strides"]
        _, h, w = self.x.shape[1:]
        ys = [k * sh for k in range(math.ceil((h - wh) / sh) + 1)]
        xs = [k * sw for k in range(math.ceil((w - ww) / sw) + 1)]
        windows = [(y, x) for y in ys for x in xs]
        out = torch.zeros_like(self.x)
        count = torch.zeros(h, w)
        for (y, x) in windows:
            count[y:y + wh, x:x + ww] += 1
        with torch.no_grad():
            for i in range(self.n):
                xi, ti = self.x[i], self.t[i]
                f0 = self.model.logits(xi[None])[0, ti]
                delta = torch.empty(len(windows))
                for b, e in chunks(len(windows)):
                    batch = xi.repeat(e - b, 1, 1, 1)
                    for j, (y, x) in enumerate(windows[b:e]):
                        batch[j, :, y:y + wh, x:x + ww] = 0.0
                    delta[b:e] = f0 - self.model.logits(batch)[:, ti]
                total = torch.zeros(h, w)
                for k, (y, x) in enumerate(windows):
                    total[y:y + wh, x:x + ww] += delta[k]
                out[i] = (total / count).expand_as(xi)
        return out

    def _coalitions(self, p):
        """Scores of `evaluations` coalitions of the patches (a fixed random draw), batched."""
        gen = torch.Generator().manual_seed(0)
        scores = []
        with torch.no_grad():
            for i in range(self.n):
                seg = self.segments[i].long()
                m = int(seg.max()) + 1
                masks = torch.rand(p["evaluations"], m, generator=gen) < 0.5
                for b, e in chunks(p["evaluations"]):
                    keep = masks[b:e][:, seg]  # k×H×W
                    batch = self.x[i][None] * keep[:, None].to(self.x.dtype)  # zero baseline
                    scores.append(self.model(batch)[:, self.t[i]])
        return torch.cat(scores)

    def lime(self, p):
        return self._coalitions(p)

    def kernelshap(self, p):
        return self._coalitions(p)

    def _curve(self, insertion):
        _, c, h, w = self.x.shape
        plane = h * w
        per_step = plane // 64
        ys = []
        with torch.no_grad():
            for i in range(self.n):
                order = torch.argsort(self.order[i].flatten(), descending=True)
                rank = torch.empty(plane, dtype=torch.long)
                rank[order] = torch.arange(plane)
                counts = torch.arange(0, plane + 1, per_step)
                row = []
                for b, e in chunks(len(counts)):
                    changed = (rank[None] < counts[b:e, None]).view(-1, 1, h, w)  # k×1×H×W
                    keep = changed if insertion else ~changed
                    row.append(self.model(self.x[i][None] * keep.to(self.x.dtype))[:, self.t[i]])
                ys.append(torch.cat(row))
        return torch.stack(ys)

    def insertion(self, p):
        return self._curve(True)

    def deletion(self, p):
        return self._curve(False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=str(ROOT / "build"), help="build directory (attrlab, bench/bench_torch_methods)")
    parser.add_argument("--sizes", default="64,224")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--only", default=None, help="comma-separated rows (default: all)")
    args = parser.parse_args()
    build = Path(args.build)
    rows = args.only.split(",") if args.only else ROWS
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for size in [int(s) for s in args.sizes.split(",")]:
            archive = tmp / f"net-{size}.npz"
            subprocess.run([build / "attrlab", "export", "--env", "multi-color-sum", "-o", f"size={size}", "--format",
                            "torch", "--out", archive], check=True, capture_output=True)
            model = attrlab_torch.load(archive).eval()
            model.requires_grad_(False)
            for threads in [int(t) for t in args.threads.split(",")]:
                torch.set_num_threads(threads)
                for row in rows:
                    out = tmp / f"{size}-{threads}"
                    lab = json.loads(subprocess.run(
                        [build / "bench" / "bench_torch_methods", "--out", out, "--size", str(size), "--images",
                         str(IMAGES.get(size, 2)), "--threads", str(threads), "--only", row],
                        check=True, capture_output=True, text=True).stdout)
                    info = lab["rows"][row]
                    x = torch.from_numpy(np.load(out / "inputs.npy"))
                    targets = torch.from_numpy(np.load(out / "targets.npy")).long()
                    segments = torch.from_numpy(np.load(out / "segments.npy"))
                    order = torch.from_numpy(np.load(out / "order.npy"))
                    methods = Methods(model, x, targets, segments, order, size)
                    p = {"evaluations": info["evaluations"]}
                    for item in info["params"]:
                        key, value = item.split("=")
                        p[key] = [int(v) for v in value.split(",")] if "," in value else (
                            int(value) if value.isdigit() else value)
                    work = getattr(methods, row.replace("-", "_"))
                    result = {}
                    wall, cpu = seconds_of(lambda: result.__setitem__("v", work(p)))
                    wall, cpu = wall / methods.n, cpu / methods.n
                    lab_out = np.load(out / f"{row}.npy")
                    diff = "—"
                    if row not in ("lime", "kernelshap"):
                        mine = result["v"].detach().numpy().reshape(lab_out.shape)
                        diff = f"{np.abs(mine - lab_out).max():.1e} ({np.abs(lab_out).max():.1e})"
                    label = row + "".join(f" {k}" for k in info["params"] if not k.startswith("segmentation"))
                    line = (f"| {label} | {size}×{size} | {threads} | {info['evaluations']} | {info['seconds']:.4f} | "
                            f"{wall:.4f} | **{info['seconds'] / wall:.2f}** | {info['cpu-seconds']:.4f} | {cpu:.4f} | "
                            f"{info['cpu-seconds'] / cpu:.2f} | {diff} |")
                    print(line, flush=True)
                    lines.append(line)
    print()
    print(f"multi-color-sum, images per batch {IMAGES}, {BATCH} network inputs per call, torch {torch.__version__}, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
    print("| method | size | threads | evaluations / image | attrlab s/image | PyTorch s/image | attrlab ÷ PyTorch | "
          "attrlab CPU s/image | PyTorch CPU s/image | CPU ratio | max abs diff (max abs value) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
