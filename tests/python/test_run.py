"""Outside methods join a study (README, "Methods from outside the lab"): attrlab.run with a
Python method, and maps written by numpy (float64, H×W, no maps.json) scored through
`attrlab run --stage data` then `--resume` — their rows are the built-in method's, and they are
ranked and correlated in the tables and the report. Maps of other data are refused."""
import csv
import json

import numpy as np
import pytest

import attrlab
from conftest import run_cli

GRADCAM = {"label": "GradCAM", "name": "gradcam"}
IG = {"label": "IG", "name": "integrated-gradients", "params": {"baseline": "zero", "steps": 16}}
SMALL = {"count": 4, "size": 32, "unit": 2, "methods": [GRADCAM, IG]}


def _rows(results, method):
    """{(model, sample, metric, variant): value text} of one method, without the method's own rows."""
    with open(results, newline="") as f:
        return {(r["model"], r["sample"], r["metric"], r["variant"]): r["value"]
                for r in csv.DictReader(f) if r["method"] == method and r["metric"] != "method"}


def _check_joined(run_dir, name):
    ig, mine = _rows(run_dir / "results.csv", "IG"), _rows(run_dir / "results.csv", name)
    assert len(mine) > 2 * 4 * 5
    assert mine == ig
    for table in ("study2-with-ude", "study3-without-ude"):
        rankings = (run_dir / "tables" / f"{table}-rankings.md").read_text()
        assert f"| {name} " in rankings
        assert "| Spearman ρ vs GT F1 (positive) |" in rankings
        assert f"| {name} " in (run_dir / "tables" / f"{table}-values.md").read_text()
    report = (run_dir / "report.md").read_text()
    assert f"| {name} " in report
    assert "over these 3 methods" in report  # ρ ranks the outside method with the built-in ones


def test_run_with_a_python_method_scores_it_like_the_builtin(tmp_path):
    calls = []

    def mine(model, x, target):
        calls.append(len(x))
        return attrlab.attribute(model, x, target, "integrated-gradients", baseline="zero", steps=16)

    out = tmp_path / "run"
    summary = attrlab.run("unseen-data-effect", out=out, extra_methods={"Mine": mine}, options=SMALL, quiet=True)
    assert calls == [2, 2, 2, 2]  # once per unit of 2 samples, on both models' data
    assert summary["results"] == str(out / "results.csv")
    _check_joined(out, "Mine")
    # The maps are in the outside layout, with the data's fingerprint.
    maps = out / "outside-maps" / "Mine" / "with-ude"
    record = json.loads((maps / "maps.json").read_text())
    manifest = json.loads((out / "data" / "with-ude" / "manifest.json").read_text())
    assert record["data-manifest"]["fingerprint"] == manifest["fingerprint"]
    assert np.load(maps / "000000.npy").dtype == np.float32
    assert summary["maps"] == {"Mine": str(out / "outside-maps" / "Mine")}

    # Called again on the finished run: refused, as `attrlab run` without --resume.
    with pytest.raises(attrlab.Error, match="already holds a run"):
        attrlab.run("unseen-data-effect", out=out, extra_methods={"Mine": mine}, options=SMALL, quiet=True)
    with pytest.raises(attrlab.Error, match="extra_methods Bad"):
        attrlab.run("unseen-data-effect", out=tmp_path / "bad", extra_methods={"Bad": 3}, options=SMALL)


def test_numpy_float64_maps_without_maps_json_join_the_study(tmp_path):
    mine = tmp_path / "mine"
    config = tmp_path / "exp.json"
    config.write_text(json.dumps({"extends": "unseen-data-effect", "count": 4, "size": 32, "unit": 2,
                                  "methods": [GRADCAM, IG, {"name": "Mine", "maps": str(mine)}]}))
    out = tmp_path / "run"
    run_cli("run", config, "--quiet", "--stage", "data", "--out", out)
    for model in ("with-ude", "without-ude"):
        data = attrlab.read_data(out / "data" / model)
        maps = attrlab.attribute(data.env.model(), data, "label", "integrated-gradients", baseline="zero", steps=16)
        (mine / model).mkdir(parents=True)
        for i, sample in enumerate(data.ids):
            channel_sum = maps[i, 0].copy()
            for c in range(1, maps.shape[1]):
                channel_sum = channel_sum + maps[i, c]  # the metrics' channel sum, in float32
            np.save(mine / model / f"{sample}.npy", channel_sum.astype(np.float64))  # H×W float64
    _, err = run_cli("run", config, "--quiet", "--resume", "--out", out)
    for model in ("with-ude", "without-ude"):
        directory = str(mine / model)
        assert err.count(f"{directory}: no data fingerprint") == 1
        assert err.count(f"{directory}: 4 map file(s) of dtype float64 converted to float32") == 1
    _check_joined(out, "Mine")

    # Maps of the same environment but another seed's data: refused naming both fingerprints,
    # nothing written.
    other = tmp_path / "other"
    run_cli("generate", "--env", "multi-color-sum", "-o", "size=32", "--count", 4, "--seed", 99, "--out", other)
    ig_other = tmp_path / "ig-other"
    run_cli("attribute", "--data", other, "--method", "saliency", "--out", ig_other)
    theirs = json.loads((ig_other / "maps.json").read_text())["data-manifest"]["fingerprint"]
    ours = json.loads((out / "data" / "with-ude" / "manifest.json").read_text())["fingerprint"]
    assert theirs != ours
    p = run_cli("evaluate", "--data", out / "data" / "with-ude", "--maps", ig_other, "--metric", "gt",
                "--out", tmp_path / "scores.csv", code=1)
    line = p[1].strip()
    assert theirs in line and ours in line
    assert not (tmp_path / "scores.csv").exists() and not (tmp_path / "scores.json").exists()
    assert not (tmp_path / "scores.csv.units").exists()
