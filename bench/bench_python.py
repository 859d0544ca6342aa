#!/usr/bin/python3
"""Per-call overhead of the Python module: Model.forward on 1 and 64 images (multi-color-sum,
224×224, the paper's size) from Python against the same C++ work timed inside the extension
(no numpy conversion, no Python call), and against `attrlab predict` on a data directory of the
same images (a whole process: start-up, reading and decoding the PNGs, building the network).
Python and C++ calls alternate, so that a change of the machine's load hits both alike.

Run by hand, never by the test suite (timings depend on the machine and its load):
    PYTHONPATH=build/python /usr/bin/python3 bench/bench_python.py [--binary build/attrlab] [--runs 30]
Prints medians in milliseconds.
"""
import argparse
import os
import subprocess
import tempfile
import time

import attrlab
from attrlab import _attrlab


def median_seconds(work, runs):
    work()  # warm-up: primitive creation, first touch
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        work()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="build/attrlab", help="the attrlab command (skipped if missing)")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()

    env = attrlab.Environment("multi-color-sum", size=args.size)
    data = env.generate(64, seed=0)
    model = env.model()
    print(f"multi-color-sum {args.size}×{args.size}, forward (logits and probabilities), median of {args.runs} calls")
    print(f"{'images':>6}  {'python ms':>10}  {'c++ ms':>10}  {'overhead ms':>11}  {'overhead %':>10}  {'cli predict ms':>14}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (1, 64):
            x = data.inputs[:n].copy()
            # Interleaved, so that a change of the machine's load hits both alike.
            model.forward(x)
            py_times, cpp_times = [], []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                model.forward(x)
                py_times.append(time.perf_counter() - t0)
                cpp_times.append(_attrlab.forward_seconds(model._model, x, 1))
            py, cpp = sorted(py_times)[args.runs // 2], sorted(cpp_times)[args.runs // 2]
            cli = float("nan")
            if os.path.exists(args.binary):
                sub = attrlab.Environment("multi-color-sum", size=args.size).generate(n, seed=0)
                attrlab.write_data(sub, os.path.join(tmp, f"d{n}"))
                command = [args.binary, "predict", "--data", os.path.join(tmp, f"d{n}"), "--batch", str(n),
                           "--out", os.path.join(tmp, f"p{n}.csv")]
                cli = median_seconds(lambda: subprocess.run(command, check=True, capture_output=True),
                                     max(3, args.runs // 5))
            print(f"{n:>6}  {py * 1e3:>10.3f}  {cpp * 1e3:>10.3f}  {(py - cpp) * 1e3:>11.3f}  "
                  f"{(py - cpp) / cpp * 100:>10.1f}  {cli * 1e3:>14.1f}")


if __name__ == "__main__":
    main()
