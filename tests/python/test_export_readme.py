"""The README's PyTorch example ("From Python": export, load, torch.autograd, score), run verbatim:
its code blocks between `<!-- example: torch -->` and `<!-- /example -->` run in order in an empty
directory (sh blocks with bash -e, python blocks with this interpreter), with attrlab on PATH and
import attrlab working (build/python on PYTHONPATH, as ctest sets it), as the README states. The torch-written gradient × input must then score
what the built-in input-x-gradient scores."""

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from export_helpers import ROOT, attrlab_binary

import torch  # noqa: E402,F401  (python3-torch, installed by scripts/setup.sh)


def example_blocks():
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- example: torch -->\n(.*?)<!-- /example -->", text, re.S)
    assert match, "README.md has no <!-- example: torch --> block"
    blocks = re.findall(r"```(sh|python)\n(.*?)```", match.group(1), re.S)
    assert [lang for lang, _ in blocks] == ["sh", "python", "sh"]
    return blocks


def test_readme_torch_example_runs_and_scores_like_input_x_gradient(tmp_path):
    env = dict(os.environ)
    env["PATH"] = str(Path(attrlab_binary()).parent) + os.pathsep + env.get("PATH", "")
    for lang, code in example_blocks():
        command = ["bash", "-e", "-c", code] if lang == "sh" else [sys.executable, "-c", code]
        r = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert r.returncode == 0, f"README {lang} block failed ({r.returncode}):\n{code}\n{r.stderr}"

    with open(tmp_path / "results.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["sample"] == "all"]
    means = {(r["method"], r["metric"], r["variant"]): float(r["value"]) for r in rows}
    torch_rows = {k: v for k, v in means.items() if k[0] == "torch-gxi"}
    assert {k[1] for k in torch_rows} == {"gt", "insertion"}
    for (_, metric, variant), value in torch_rows.items():
        builtin = means[("input-x-gradient", metric, variant)]
        assert value == pytest.approx(builtin, abs=1e-6), f"{metric} {variant}: torch {value}, built-in {builtin}"
    assert ("integrated-gradients", "gt", "f1-overall") in means
