"""Shared by the Python export tests (imported by them, so it does not clash with other conftest.py files): the attrlab binary (ATTRLAB_BINARY, set by ctest,
else build/attrlab). The package (attrlab.torch among it) comes from build/python, which ctest
puts on PYTHONPATH."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("ATTRLAB_SOURCE_DIR", Path(__file__).resolve().parents[2]))


def attrlab_binary():
    return os.environ.get("ATTRLAB_BINARY", str(ROOT / "build" / "attrlab"))


@pytest.fixture(scope="session")
def cli():
    """Runs `attrlab ARGS...`; a non-zero exit fails the test with attrlab's stderr."""
    binary = attrlab_binary()
    if not Path(binary).exists():
        pytest.fail(f"attrlab binary not found at {binary}; build it or set ATTRLAB_BINARY")

    def run(*args, cwd=None):
        r = subprocess.run([binary, *map(str, args)], cwd=cwd, capture_output=True, text=True)
        assert r.returncode == 0, f"attrlab {' '.join(map(str, args))} exited {r.returncode}: {r.stderr}"
        return r

    return run
