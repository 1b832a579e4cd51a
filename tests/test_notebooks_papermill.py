"""Every experiment notebook runs through papermill with quick=True and writes a result.json
that keeps the contract of DESIGN.md §6 (the main job, in seconds)."""
import json

import pytest

from lab.cli import main
from lab.results import validate_result
from lab.runner.registry import EXPERIMENTS


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    status = main(["reproduce", "--quick", "--jobs", "2", "--out", str(out)])
    return status, out


def test_every_experiment_runs_quick_and_succeeds(quick_run):
    """`microlab reproduce --quick` runs all experiments; none fails."""
    status, out = quick_run
    assert status == 0, (out / "summary.md").read_text()


@pytest.mark.parametrize("name", [e.name for e in EXPERIMENTS])
def test_result_json_keeps_the_contract(quick_run, name):
    """result.json names its experiment, records seed/quick/cpu_profile, has rows with paper
    and simulated side by side and the figures it lists."""
    _status, out = quick_run
    d = json.loads((out / name / "result.json").read_text())
    validate_result(d)
    assert d["experiment"] == name
    assert d["parameters"]["quick"] is True and "seed" in d["parameters"]
    assert d["rows"], name
    for fig in d["figures"]:
        assert (out / name / fig).stat().st_size > 1000
    assert (out / name / f"{name}.ipynb").exists()


def test_summary_has_every_row_and_every_published_table(quick_run):
    """summary.json holds every row of every result.json with its experiment; every table of
    published.json is represented by some experiment."""
    _status, out = quick_run
    rows = json.loads((out / "summary.json").read_text())["rows"]
    n = sum(len(json.loads((out / e.name / "result.json").read_text())["rows"]) for e in EXPERIMENTS)
    assert len(rows) == n and all("experiment" in r for r in rows)
    sources = {r["experiment"] for r in rows}
    assert {"getpid", "lmbench", "compile", "aim", "pipes-rpc", "vm", "cache-partitioning",
            "mach-memory-objects", "calibration"} <= sources
    md = (out / "summary.md").read_text()
    assert "| all |" in md
