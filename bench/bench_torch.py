#!/usr/bin/python3
"""attrlab vs PyTorch on the same network: forward and forward+gradient of the network
`attrlab export --format torch` writes, on batches of 1, 16 and 64 images, each framework with the
same thread count. attrlab's times come from build/bench/bench_export (the runtime called from
C++, no process start or file I/O), PyTorch's from this script (torch.autograd, float32). Prints
median seconds per call and the ratio torch ÷ attrlab (> 1: attrlab is faster). Not a test.

    /usr/bin/python3 bench/bench_torch.py [--build build] [--threads T] [-o key=value ...] [--env NAME]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

import importlib.util  # noqa: E402

import torch  # noqa: E402

# The loader alone (python/attrlab/torch.py needs only numpy and torch), without the package's
# compiled extension, which this benchmark does not use.
_spec = importlib.util.spec_from_file_location("attrlab_torch", ROOT / "python" / "attrlab" / "torch.py")
_loader = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_loader)


def median_seconds(work):
    work()  # warm-up
    times, start = [], time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < 1.0:
        t0 = time.perf_counter()
        work()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--build", default=str(ROOT / "build"), help="build directory (attrlab, bench/bench_export)")
    parser.add_argument("--env", default="multi-color-sum")
    parser.add_argument("-o", action="append", default=None, help="environment option (default: size=64)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    items = args.o if args.o else ["size=64"]
    options = [a for o in items for a in ("-o", o)]
    build = Path(args.build)

    lab = json.loads(subprocess.run([build / "bench" / "bench_export", "--env", args.env, *options, "--threads",
                                     str(args.threads)], check=True, capture_output=True, text=True).stdout)
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "net.npz"
        subprocess.run([build / "attrlab", "export", "--env", args.env, *options, "--format", "torch", "--out",
                        archive], check=True, capture_output=True)
        model = _loader.load(archive)
    torch.set_num_threads(args.threads)
    c, h, w = model.input_shape
    print(f"{args.env} {' '.join(items)}: {len(model.layers)} layers, input {c}×{h}×{w}, {args.threads} threads "
          f"(torch {torch.__version__})")
    print(f"{'batch':>6}  {'fwd attrlab s':>14}  {'fwd torch s':>12}  {'ratio':>6}  {'grad attrlab s':>15}  "
          f"{'grad torch s':>13}  {'ratio':>6}")
    for batch in (1, 16, 64):
        x = torch.full((batch, c, h, w), float(model.options.get("background", [0])[0]) if c == 3 else 0.0)
        x.view(-1)[::7] = 255.0 if c == 3 else 1.0

        def forward():
            with torch.no_grad():
                model(x)

        def gradient():
            xg = x.clone().requires_grad_(True)
            model(xg)[:, 0].sum().backward()

        fwd, grad = median_seconds(forward), median_seconds(gradient)
        lab_fwd, lab_grad = lab["forward"][str(batch)], lab["gradient"][str(batch)]
        print(f"{batch:>6}  {lab_fwd:>14.6f}  {fwd:>12.6f}  {fwd / lab_fwd:>6.2f}  {lab_grad:>15.6f}  "
              f"{grad:>13.6f}  {grad / lab_grad:>6.2f}")
    print("ratio = torch seconds ÷ attrlab seconds on the same network and inputs (> 1: attrlab is faster).")


if __name__ == "__main__":
    main()
