"""Shared fixtures of the Python module's tests: the attrlab binary (ATTRLAB_BINARY, set by
ctest) and small data sets generated once per session."""
import os
import pathlib
import subprocess

import pytest

import attrlab

SOURCE = pathlib.Path(os.environ.get("ATTRLAB_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
BINARY = os.environ.get("ATTRLAB_BINARY", str(SOURCE / "build" / "attrlab"))


def _binary():
    assert pathlib.Path(BINARY).exists(), f"attrlab binary not found at {BINARY}; build it or set ATTRLAB_BINARY"
    return BINARY


def run_cli(*args, code=0):
    """Runs `attrlab ARGS`; checks the exit code and returns (stdout, stderr)."""
    p = subprocess.run([_binary(), *map(str, args)], capture_output=True, text=True)
    assert p.returncode == code, f"attrlab {' '.join(map(str, args))} exited {p.returncode}: {p.stderr}"
    return p.stdout, p.stderr


def cli_error(*args):
    """The one-line message `attrlab ARGS` prints after 'attrlab: error: ' (exit code 1 or 2)."""
    p = subprocess.run([_binary(), *map(str, args)], capture_output=True, text=True)
    assert p.returncode in (1, 2), p.stderr
    line = p.stderr.strip().splitlines()[-1]
    assert line.startswith("attrlab: error: "), line
    return line[len("attrlab: error: "):]


@pytest.fixture(scope="session")
def multi_dir(tmp_path_factory):
    """A CLI-generated multi-color-sum data directory (size 32, 6 samples, seed 5)."""
    path = tmp_path_factory.mktemp("data") / "multi"
    run_cli("generate", "--env", "multi-color-sum", "-o", "size=32", "--count", 6, "--seed", 5, "--out", path)
    return path


@pytest.fixture(scope="session")
def modulo_dir(tmp_path_factory):
    """A CLI-generated single-color-modulo data directory (size 32, 4 samples, seed 2)."""
    path = tmp_path_factory.mktemp("data") / "modulo"
    run_cli("generate", "--env", "single-color-modulo", "-o", "size=32", "--count", 4, "--seed", 2, "--out", path)
    return path


@pytest.fixture(scope="session")
def multi(multi_dir):
    return attrlab.read_data(multi_dir)


@pytest.fixture(scope="session")
def modulo(modulo_dir):
    return attrlab.read_data(modulo_dir)
