"""Every experiment notebook runs through papermill with quick=True and writes a result.json
that keeps the contract of DESIGN.md §6 (the main job, in seconds)."""
import json

import pytest

from lab.cli import main
from lab.results import validate_result
from lab.runner.registry import BY_NAME, EXPERIMENTS


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
    and simulated side by side and the figures it lists; its title is the one `microlab
    list` shows."""
    _status, out = quick_run
    d = json.loads((out / name / "result.json").read_text())
    validate_result(d)
    assert d["experiment"] == name
    assert d["title"] == BY_NAME[name].title
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


def test_aims_slowdown_at_another_top_load_than_140_is_shown_not_scored(quick_run):
    """S97 Fig. 9 gives the slowdown at 140 users; a quick run's top load is 4, so its
    "slowdown at load 4" rows are illustrations with a note (another number than the paper's),
    while the average over loads stays a prediction."""
    _status, out = quick_run
    rows = json.loads((out / "aim" / "result.json").read_text())["rows"]
    at = [r for r in rows if r["benchmark"].startswith("slowdown vs Linux, at load")]
    assert at and all(r["benchmark"].endswith("load 4") for r in at)
    assert all(r["role"] == "illustration" and "not scored" in r["note"] for r in at)
    assert {r["role"] for r in rows if "average over loads" in r["benchmark"]} == {"prediction"}


def test_every_experiment_accepts_the_present_day_profile(tmp_path):
    """Issue 4: every experiment also runs with the present-day cpu_profile -- the runner's
    check of `-p cpu_profile=x86-64-modern` passes for all of them (nothing runs here)."""
    import argparse
    from lab.runner.cli import add_reproduce_arguments, plan
    parser = argparse.ArgumentParser()
    add_reproduce_arguments(parser)
    jobs = plan(parser.parse_args(["-p", "cpu_profile=x86-64-modern", "--out",
                                   str(tmp_path / "out")])).jobs
    assert {e.name for e, *_ in jobs} == {e.name for e in EXPERIMENTS}
    assert all(p["cpu_profile"] == "x86-64-modern" for _e, _d, p in jobs)


def test_calibration_and_then_and_now_on_the_present_day_profile(tmp_path):
    """On x86-64-modern the calibration notebook fits nothing (the rows are the Pentium's) and
    shows them as illustrations; then-and-now compares the Pentium with that machine."""
    out = tmp_path / "modern"
    status = main(["reproduce", "calibration", "then-and-now", "--quick", "--jobs", "2",
                   "-p", "cpu_profile=x86-64-modern", "--out", str(out)])
    assert status == 0, (out / "summary.md").read_text()
    cal = json.loads((out / "calibration" / "result.json").read_text())
    assert cal["parameters"]["cpu_profile"] == "x86-64-modern"
    assert {r["role"] for r in cal["rows"]} == {"illustration"}
    nb = (out / "calibration" / "calibration.ipynb").read_text()
    assert "no fit on x86-64-modern" in nb
    tn = json.loads((out / "then-and-now" / "result.json").read_text())
    names = {r["benchmark"] for r in tn["rows"]}
    assert "pipe slowdown (pentium-133)" in names and "pipe slowdown (x86-64-modern)" in names
