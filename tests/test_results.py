"""lab.results: the result.json contract (DESIGN.md §6), the published numbers, progress steps."""
import json
import math
import os
from pathlib import Path

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings, strategies as st  # noqa: E402

from lab import results  # noqa: E402
from lab.results import (Result, ResultError, published, read_result, step,  # noqa: E402
                         systems, validate_result)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "published.json"
PARAMS = {"seed": 1, "quick": False, "cpu_profile": "pentium-133"}
DESIGN_EXAMPLE = {
    "experiment": "getpid", "title": "...", "source": "S97 Table 2",
    "parameters": {"seed": 1, "quick": False, "cpu_profile": "pentium-133"},
    "rows": [{"benchmark": "getpid", "system": "l4linux", "unit": "cycles",
              "simulated": 531.0, "paper": 526, "role": "calibration"}],
    "figures": ["getpid.png"], "stats": {"tlb.misses": 0}}


def small_figure(values=(1, 3, 2)):
    fig, ax = plt.subplots(figsize=(2, 1.5))
    ax.plot(values)
    ax.set_title("getpid")
    return fig


def getpid_result():
    r = Result("getpid", "null system call", "S97 Table 2", parameters=dict(PARAMS, rounds=10))
    r.add_row("getpid", "linux", "cycles", 231.0, 223, "calibration")
    r.add_row("getpid", "l4linux", "cycles", np.float64(0.1) + 0.2, 526, "prediction")
    r.stats["tlb.misses"] = np.int64(7)
    r.stats["by category"] = {"kernel": 3.0, "ipc": 1.5}
    return r


# --- the file -----------------------------------------------------------------------------

def test_the_design_example_is_a_valid_result():
    """The example of DESIGN.md §6 satisfies the contract that validate_result checks."""
    assert validate_result(DESIGN_EXAMPLE) is DESIGN_EXAMPLE


def test_write_gives_the_contract_layout(tmp_path):
    """result.json has the keys of §6 in the order of §6; rows keep the notebook's order and
    each row has benchmark, system, unit, simulated, paper, role in that order."""
    path = getpid_result().write(tmp_path)
    d = json.loads(path.read_text())
    assert path == tmp_path / "result.json"
    assert list(d) == ["experiment", "title", "source", "parameters", "rows", "figures", "stats"]
    assert [list(r) for r in d["rows"]] == [list(results.ROW_KEYS)] * 2
    assert [r["system"] for r in d["rows"]] == ["linux", "l4linux"]
    assert d["parameters"] == {"cpu_profile": "pentium-133", "quick": False, "rounds": 10, "seed": 1}
    assert list(d["stats"]) == ["by category", "tlb.misses"]       # sorted
    assert read_result(path) == d


def test_numbers_are_plain_and_rounded(tmp_path):
    """NumPy scalars become JSON numbers; floats lose last-bit noise (0.1 + 0.2 -> 0.3) so that
    the text is the same whenever the computation is; simulated is always a float."""
    d = json.loads(getpid_result().write(tmp_path).read_text())
    assert d["rows"][1]["simulated"] == 0.3
    assert d["stats"]["tlb.misses"] == 7 and isinstance(d["stats"]["tlb.misses"], int)
    r = Result("getpid", "t", "s", PARAMS)
    assert r.add_row("b", "linux", "us", 5, None, "prediction")["simulated"] == 5.0


def test_writing_twice_gives_identical_bytes(tmp_path):
    """Identical content gives byte-identical result.json and PNG files (no timestamps)."""
    for d in ("a", "b"):
        r = getpid_result()
        r.add_figure(small_figure(), "getpid")
        r.write(tmp_path / d)
    for name in ("result.json", "getpid.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    png = (tmp_path / "a" / "getpid.png").read_bytes()
    assert png.startswith(b"\x89PNG") and b"tIME" not in png and b"Software" not in png


def test_figures_are_written_beside_the_result(tmp_path):
    """add_figure(fig, name) lists NAME.png in "figures" and writes it next to result.json."""
    r = getpid_result()
    assert r.add_figure(small_figure(), "walk") == "walk.png"
    r.add_figure(small_figure((2, 1)), "cycles.png")
    d = json.loads(r.write(tmp_path).read_text())
    assert d["figures"] == ["cycles.png", "walk.png"]
    assert all((tmp_path / f).is_file() for f in d["figures"])


def test_out_dir_is_not_a_parameter():
    """out_dir says where files go, not what was computed: it is not recorded."""
    r = Result("vm", "t", "S97 Table 5", dict(PARAMS, out_dir="/tmp/x"))
    assert "out_dir" not in r.to_dict()["parameters"]


# --- broken contracts ---------------------------------------------------------------------

@pytest.mark.parametrize("args, word", [
    (("getpid", "linux", "cycles", 1.0, 223, "fitted"), "role"),
    (("getpid", "linux", "cycles", float("nan"), 223, "prediction"), "simulated"),
    (("getpid", "linux", "cycles", None, 223, "prediction"), "simulated"),
    (("getpid", "linux", "cycles", 1.0, "223", "prediction"), "paper"),
    (("", "linux", "cycles", 1.0, 223, "prediction"), "benchmark"),
    (("getpid", "linux", 3, 1.0, 223, "prediction"), "unit"),
])
def test_add_row_rejects_what_breaks_the_contract(args, word):
    """A row breaking §6 is refused when it is added, naming the bad field."""
    with pytest.raises(ResultError, match=word):
        Result("getpid", "t", "s", PARAMS).add_row(*args)


def test_a_row_appears_once():
    """Each (benchmark, system, unit) has one row: a second one is a mistake, not an update."""
    r = Result("getpid", "t", "s", PARAMS)
    r.add_row("getpid", "linux", "cycles", 1.0, 223, "calibration")
    with pytest.raises(ResultError, match="already has a row"):
        r.add_row("getpid", "linux", "cycles", 2.0, 223, "calibration")
    r.add_row("getpid", "linux", "us", 2.0, 1.68, "calibration")        # another unit is fine
    assert [(row["unit"], row["simulated"]) for row in r.rows] == [("cycles", 1.0), ("us", 2.0)]


@pytest.mark.parametrize("params, word", [
    ({"quick": False, "cpu_profile": "pentium-133"}, "seed"),
    ({"seed": -1, "quick": False, "cpu_profile": "pentium-133"}, "seed"),
    ({"seed": 1, "quick": "no", "cpu_profile": "pentium-133"}, "quick"),
    ({"seed": True, "quick": False, "cpu_profile": "pentium-133"}, "seed"),
])
def test_parameters_need_seed_quick_cpu_profile(params, word):
    """Every result records at least seed (int >= 0), quick (bool) and cpu_profile (str)."""
    with pytest.raises(ResultError, match=word):
        Result("getpid", "t", "s", params)


@pytest.mark.parametrize("change, word", [
    (lambda d: d.pop("stats"), "missing stats"),
    (lambda d: d.update(extra=1), "unknown key"),
    (lambda d: d["rows"][0].update(simualted=1.0), "simualted"),
    (lambda d: d["rows"].append(dict(d["rows"][0])), "twice"),
    (lambda d: d.update(figures=["getpid.svg"]), "figures"),
    (lambda d: d.update(title=""), "title"),
    (lambda d: d["rows"][0].update(paper=float("inf")), "paper"),
])
def test_validate_result_names_the_problem(change, word):
    """validate_result refuses a result that breaks §6 and says what is wrong."""
    d = json.loads(json.dumps(DESIGN_EXAMPLE))
    change(d)
    with pytest.raises(ResultError, match=word):
        validate_result(d)


def test_figure_names_are_plain_file_names():
    """A figure is a file beside result.json: no directories, no duplicates."""
    r = Result("getpid", "t", "s", PARAMS)
    with pytest.raises(ResultError, match="plain file name"):
        r.add_figure(small_figure(), "../up")
    r.add_figure(small_figure(), "a")
    with pytest.raises(ResultError, match="already added"):
        r.add_figure(small_figure(), "a.png")


@settings(max_examples=100, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_rounding_is_stable(x):
    """Rounding is idempotent and changes a value by less than one part in 10^9."""
    y = results.round_float(x)
    assert results.round_float(y) == y
    assert math.isclose(x, y, rel_tol=1e-9, abs_tol=0.0) or x == y


# --- published numbers -------------------------------------------------------------------

def _need(path):
    """The shared folder beside the repository: CI always has it (a missing one fails there,
    loudly); a clone on its own skips the comparison, and pytest -ra says so."""
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing: CI copies ../shared beside the repository")
        pytest.skip(f"no {path} beside the repository")


def test_package_copy_equals_the_shared_file():
    """lab/data/published.json (used by an installed package) is a copy of
    ../shared/reference/published.json: refresh it when the shared file changes."""
    _need(SHARED)
    assert results.PACKAGE_COPY.read_bytes() == SHARED.read_bytes()


def test_published_reads_the_shared_file(monkeypatch):
    """Beside the repository, published() reads ../shared/reference/published.json itself."""
    _need(SHARED)
    monkeypatch.delenv(results.SHARED_ENV, raising=False)
    assert published() == json.loads(SHARED.read_text())


def test_published_falls_back_to_the_package_copy(monkeypatch):
    """Without ../shared (an installed package) the numbers come from the package's copy."""
    monkeypatch.delenv(results.SHARED_ENV, raising=False)
    monkeypatch.setattr(results, "shared_published_path", lambda: None)
    assert published() == json.loads(results.PACKAGE_COPY.read_text())
    assert published()["table2_getpid"]["rows"][0]["l4linux"] == 526


def test_microlab_shared_points_elsewhere(tmp_path, monkeypatch):
    """$MICROLAB_SHARED names the shared directory; one without the file is an error."""
    data = json.loads(results.PACKAGE_COPY.read_text())
    data["about"] = "a test copy"
    (tmp_path / "reference").mkdir()
    (tmp_path / "reference" / "published.json").write_text(json.dumps(data))
    monkeypatch.setenv(results.SHARED_ENV, str(tmp_path))
    assert published()["about"] == "a test copy"
    monkeypatch.setenv(results.SHARED_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="MICROLAB_SHARED"):
        published()


def test_published_returns_a_fresh_copy():
    """A caller changing the numbers cannot change them for the next caller."""
    published()["table2_getpid"]["rows"][0]["l4linux"] = 0
    assert published()["table2_getpid"]["rows"][0]["l4linux"] == 526


def test_systems_are_the_papers_five_columns():
    """systems() lists the five columns of S97's tables, in the papers' order."""
    assert systems() == ("linux", "l4linux", "l4linux_trampoline", "mklinux_in_kernel",
                         "mklinux_user")


# --- progress ----------------------------------------------------------------------------

def test_step_appends_one_line_per_step(tmp_path, monkeypatch):
    """Under the runner, step(name) appends NAME as one line to $MICROLAB_PROGRESS."""
    path = tmp_path / "progress"
    monkeypatch.setenv(results.PROGRESS_ENV, str(path))
    step("native Linux")
    step("L4Linux\nwith the trampoline")
    assert path.read_text() == "native Linux\nL4Linux with the trampoline\n"


def test_step_outside_the_runner_does_nothing(tmp_path, monkeypatch):
    """Without $MICROLAB_PROGRESS (outside the runner) step() writes no file anywhere."""
    monkeypatch.delenv(results.PROGRESS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    step("anything")
    assert list(tmp_path.iterdir()) == []


def test_paper_numbers_are_scored_only_on_the_papers_machine():
    """A 1997 number is a calibration target or a prediction only for the simulated Pentium;
    on another CPU profile the row is shown beside it as an illustration, and says why."""
    on = Result("getpid", "t", "S97 Table 2", parameters=PARAMS)
    off = Result("getpid", "t", "S97 Table 2", parameters=dict(PARAMS, cpu_profile="x86-64-modern"))
    for r in (on, off):
        r.add_row("getpid", "linux", "cycles", 300.0, 223, "calibration")
        r.add_row("getpid", "l4linux", "cycles", 600.0, 526, "prediction", note="n")
        r.add_row("ctx", "l4linux", "us", 1.0, None, "prediction")
    assert [r["role"] for r in on.rows] == ["calibration", "prediction", "prediction"]
    assert [r["role"] for r in off.rows] == ["illustration", "illustration", "prediction"]
    assert "x86-64-modern" in off.rows[0]["note"] and off.rows[1]["note"].startswith("n; ")
    assert "note" not in off.rows[2]


DESIGN = SHARED.parents[1] / "DESIGN.md"


def test_the_design_card_in_docs_is_the_shared_one():
    """docs/DESIGN.md, which the notebooks and the README cite as "DESIGN §N", is a copy of
    ../shared/DESIGN.md, so that a clone on its own has it: refresh it when that changes."""
    _need(DESIGN)
    mine = Path(__file__).resolve().parents[1] / "docs" / "DESIGN.md"
    assert mine.read_bytes() == DESIGN.read_bytes()
