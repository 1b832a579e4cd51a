"""`microlab list` and `microlab reproduce` (DESIGN.md §5) on tiny fake notebooks.

tests/data/runner_notebooks/ holds stand-ins with the registry's file names: 02_getpid and
03_lmbench write results (simulated = paper x known factors), 04_compile raises, 05_aim sleeps
past any timeout; 01_calibration is missing.  Two runs of the real runner (papermill, kernels,
threads) feed most tests; parameter checking is tested without kernels.
"""
import contextlib
import io
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import example, given, settings, strategies as st

from lab.cli import main
from lab.results import published
from lab.runner import registry
from lab.runner.execute import Outcome, Status
from lab.runner.params import NotebookError, make_param, parse_cell, read_parameters, resolve
from lab.runner.progress import Display, ProgressTail
from lab.runner.summary import accuracy, fmt, order_checks, render_markdown

NB = Path(__file__).parent / "data" / "runner_notebooks"
FIVE = ("linux", "l4linux", "l4linux_trampoline", "mklinux_in_kernel", "mklinux_user")
# what the fake notebooks compute (see their code cells)
GETPID_FACTORS = {"linux": 1.0, "l4linux": 2.0, "l4linux_trampoline": 1.5,
                  "mklinux_in_kernel": 0.4, "mklinux_user": 1.0}
LMBENCH_FACTOR = 3.0
SEED = 3


def microlab(*argv):
    """Run the dispatcher in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def first(tmp_path_factory):
    """Everything at once: a missing notebook, two good ones, one raising, one hanging past
    the notebook timeout (its per-cell timeout is longer), two at a time."""
    out = tmp_path_factory.mktemp("first") / "results"
    rc, stdout, stderr = microlab("reproduce", "calibration", "getpid", "lmbench", "compile", "aim",
                                  "--notebooks", NB, "--out", out, "--jobs", 2, "--timeout", 5,
                                  "--cell-timeout", 60, "-p", f"seed={SEED}")
    return {"out": out, "rc": rc, "stdout": stdout, "stderr": stderr}


@pytest.fixture(scope="module")
def second(first, tmp_path_factory):
    """The same getpid again into a directory holding an earlier lmbench result and a stale
    aim result; aim now hits the per-cell timeout."""
    out = tmp_path_factory.mktemp("second") / "results"
    shutil.copytree(first["out"] / "lmbench", out / "lmbench")
    (out / "aim").mkdir()
    shutil.copy(first["out"] / "getpid" / "result.json", out / "aim" / "result.json")
    rc, stdout, stderr = microlab("reproduce", "getpid", "aim", "--notebooks", NB, "--out", out,
                                  "--jobs", 2, "--cell-timeout", 2, "-p", f"seed={SEED}")
    return {"out": out, "rc": rc, "stdout": stdout, "stderr": stderr}


def load(path):
    return json.loads(Path(path).read_text())


# --- microlab list -----------------------------------------------------------------------------

def test_registry_holds_the_contract_names():
    """The experiment names are a contract (DESIGN.md §7), each with notebook NN_name.ipynb."""
    assert registry.NAMES == ("calibration", "getpid", "lmbench", "compile", "aim", "pipes-rpc",
                              "vm", "cache-partitioning", "mach-memory-objects", "tlb-tagging",
                              "then-and-now")
    for i, e in enumerate(registry.EXPERIMENTS, 1):
        assert e.notebook == f"{i:02d}_{e.name}.ipynb" and e.title and e.source


def test_list_shows_every_experiment_and_its_notebook():
    """`microlab list`: one line per experiment with title, source and whether the notebook
    exists."""
    rc, out, err = microlab("list", "--notebooks", NB)
    lines = out.splitlines()
    assert rc == 0 and err == "" and len(lines) == len(registry.NAMES)
    by_name = {ln.split()[0]: ln for ln in lines}
    assert "ready" in by_name["getpid"] and "S97 Table 2" in by_name["getpid"]
    assert "no notebook" in by_name["calibration"]


# --- parameters cells ------------------------------------------------------------------------

CELL = '''seed = 1
quick = False
cpu_profile = "pentium-133"
rounds = 100          # range: 1..1000; how often
scale: float = 1.0    # range: 0.5..
system = "l4linux"    # choices: linux, l4linux
loads = [1, 10]
size_kb = 64
offset = -3           # range: -10..10
label = None
'''


def test_parameters_come_from_the_cell():
    """Types come from the defaults, allowed values from `# range:` / `# choices:` comments;
    without a range, sizes must be >= 0 and counts of work (loads, rounds...) >= 1."""
    p = parse_cell(CELL)
    assert list(p) == ["seed", "quick", "cpu_profile", "rounds", "scale", "system", "loads",
                       "size_kb", "offset", "label"]
    assert (p["rounds"].kind, p["rounds"].lo, p["rounds"].hi) == ("int", 1, 1000)
    assert (p["scale"].kind, p["scale"].lo, p["scale"].hi) == ("float", 0.5, None)
    assert p["system"].choices == ("linux", "l4linux")
    assert (p["loads"].kind, p["loads"].item, p["loads"].lo) == ("list", "int", 1)
    assert p["size_kb"].lo == 0 and p["offset"].lo == -10
    assert "pentium-133" in p["cpu_profile"].choices and p["seed"].lo == 0
    assert p["loads"].parse("1, 20") == [1, 20] and p["scale"].parse("2") == 2.0
    assert p["quick"].parse("True") is True and p["label"].parse("7") == 7
    assert p["offset"].parse("-4") == -4


@pytest.mark.parametrize("cell, word", [
    ("seed = 1\nquick = False\nimport os\ncpu_profile = 'x'", "only NAME = literal"),
    ("seed = 1\nquick = False\ncpu_profile = 'pentium-133'\nn = 2 * 3", "literal"),
    ("seed = 1\nquick = False\ncpu_profile = 'pentium-133'\nrounds = 0", "rounds"),
    ("seed = 1\nquick = False\ncpu_profile = 'pentium-133'\nx = 5  # range: 1..3", "x = 5"),
    ("seed = 1\nquick = False\ncpu_profile = 'pentium-999'", "cpu_profile"),
    ("seed = 1.5\nquick = False\ncpu_profile = 'pentium-133'", "seed"),
    ("seed = 1\nquick = False\ncpu_profile = 'pentium-133'\nd = {'a': 1}", "default must be"),
    ("seed = 1\nquick = False\ncpu_profile = 'pentium-133'\nv = []", "list parameter"),
])
def test_a_bad_parameters_cell_is_the_notebooks_fault(cell, word):
    """A parameters cell breaking the convention is a NotebookError (that experiment fails),
    not a usage error."""
    with pytest.raises(NotebookError, match=word):
        parse_cell(cell)


def test_fake_notebooks_declare_their_parameters():
    """read_parameters lists a notebook's parameters in the cell's order; a missing notebook is a
    NotebookError."""
    assert list(read_parameters(NB / "02_getpid.ipynb")) == ["seed", "quick", "cpu_profile",
                                                             "rounds", "system"]
    with pytest.raises(NotebookError, match="does not exist"):
        read_parameters(NB / "01_calibration.ipynb")


def test_values_go_only_to_notebooks_that_declare_them():
    """-p KEY=VALUE reaches every selected notebook declaring KEY; --quick sets quick=True;
    a notebook that cannot be read still gets the shared seed/quick/cpu_profile checked."""
    declared = {"getpid": read_parameters(NB / "02_getpid.ipynb"),
                "lmbench": read_parameters(NB / "03_lmbench.ipynb"),
                "calibration": NotebookError("missing")}
    got = resolve(declared, {"rounds": "7", "seed": "2"}, quick=True)
    assert got == {"getpid": {"rounds": 7, "seed": 2, "quick": True},
                   "lmbench": {"seed": 2, "quick": True},
                   "calibration": {"seed": 2, "quick": True}}


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.integers(-10**6, 10**6), st.integers(-5, 1005)))
@example(0)
@example(1)
@example(1000)
@example(1001)
def test_a_declared_range_accepts_exactly_its_values(n):
    """`# range: 1..1000` accepts 1 and 1000 and everything between, nothing else (the
    bounds are inclusive: the examples pin both edges, which random integers rarely hit)."""
    p = make_param("rounds", 100, "# range: 1..1000")
    if 1 <= n <= 1000:
        assert p.parse(str(n)) == n
    else:
        with pytest.raises(ValueError, match=r"an int in 1\.\.1000"):
            p.parse(str(n))


@settings(max_examples=100, deadline=None)
@given(st.integers(-100, 5000))
@example(-1)
@example(0)
@example(1)
@example(15)
@example(16)
@example(4096)
@example(4097)
def test_a_range_with_one_more_value_accepts_exactly_those(n):
    """`# range: 16..4096 or 0`: 0 means "the profile's"; 1..15 are refused before any run."""
    p = make_param("memory_mb", 0, "# range: 16..4096 or 0; machine memory in MB")
    if n == 0 or 16 <= n <= 4096:
        assert p.parse(str(n)) == n
    else:
        with pytest.raises(ValueError, match=r"an int in 16\.\.4096, or 0"):
            p.parse(str(n))


def _plan_real(tmp_path, *argv):
    import argparse
    from lab.runner.cli import add_reproduce_arguments, plan
    parser = argparse.ArgumentParser()
    add_reproduce_arguments(parser)
    return plan(parser.parse_args([*argv, "--out", str(tmp_path / "out")]))


@pytest.mark.parametrize("argv, key", [
    (["compile", "--quick", "-p", "units=5"], "units"),
    (["aim", "--quick", "-p", "loads=1,2"], "loads"),
    (["vm", "-p", "quick=true", "-p", "operations=50"], "operations"),
    (["pipes-rpc", "--quick", "-p", "round_trips=7"], "round_trips"),
    (["cache-partitioning", "--quick", "-p", "phases=8"], "phases"),
    (["mach-memory-objects", "--quick", "-p", "compile_units=50"], "compile_units"),
    (["tlb-tagging", "--quick", "-p", "round_trips=50"], "round_trips"),
])
def test_a_value_a_quick_run_would_not_use_is_refused(tmp_path, argv, key):
    """A parameter the notebook sets itself when quick (`(quick: ...)` in its comment) cannot
    also be given: the run would record or use another value than the one typed."""
    with pytest.raises(ValueError, match=rf"-p {key}=.*a quick run of .* sets {key} itself"):
        _plan_real(tmp_path, *argv)


@pytest.mark.parametrize("argv", [
    ["compile", "-p", "units=5"],
    ["aim", "-p", "loads=20,1,1"],
    ["mach-memory-objects", "-p", "compile_units=0", "-p", "memory_sweep_mb=64,16"],
])
def test_the_same_values_without_quick_are_passed_as_typed(tmp_path, argv):
    """Without --quick, the values a quick run would set itself reach the notebook exactly as
    typed."""
    jobs = _plan_real(tmp_path, *argv).jobs
    assert len(jobs) == 1
    typed = dict(a.split("=") for a in argv[2::2])
    assert {k: str(v).replace("[", "").replace("]", "").replace(" ", "")
            for k, v in jobs[0][2].items()} == typed


# --- bad input: exit 2, one line, nothing runs ------------------------------------------------

BAD = [
    (["getpidd"], "unknown experiment 'getpidd'"),
    (["getpid", "-p", "foo=1"], "no selected experiment has a parameter 'foo'"),
    (["getpid", "-p", "rounds=abc"], "rounds=abc: rounds must be an int in 1..1000"),
    (["getpid", "-p", "rounds=2.5"], "rounds must be an int"),
    (["getpid", "-p", "rounds=5000"], "rounds must be an int in 1..1000"),
    (["lmbench", "-p", "size_kb=-1"], "size_kb must be an int >= 0"),
    (["lmbench", "-p", "loads=1,0"], "loads must be an int >= 1"),
    (["lmbench", "-p", "scale=9"], "scale must be a number in 0.5..4"),
    (["lmbench", "-p", "scale=nan"], "scale must be a number"),
    (["getpid", "-p", "cpu_profile=pentium-999"], "cpu_profile must be one of: "),
    (["getpid", "-p", "quick=maybe"], "quick must be true or false"),
    (["getpid", "-p", "seed=-1"], "seed must be an int >= 0"),
    (["calibration", "-p", "seed=x"], "seed must be an int >= 0"),
    (["getpid", "-p", "system=mach"], "system must be one of: linux, l4linux"),
    (["getpid", "-p", "rounds"], "expected KEY=VALUE"),
    (["getpid", "-p", "seed=1", "-p", "seed=2"], "given twice"),
    (["getpid", "-p", "out_dir=/tmp"], "set by the runner"),
    (["getpid", "--quick", "-p", "quick=false"], "contradicts --quick"),
    (["getpid", "--jobs", "0"], "--jobs 0: must be an int >= 1"),
    (["getpid", "--jobs", "two"], "--jobs two: must be an int >= 1 or auto"),
    (["getpid", "--timeout", "-5"], "--timeout -5"),
    (["getpid", "--cell-timeout", "0"], "--cell-timeout 0"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_is_refused_before_anything_runs(argv, message, tmp_path):
    """A bad name, KEY or VALUE: exit 2, one line naming the value and what is allowed, no
    traceback, no output directory (no notebook started)."""
    out = tmp_path / "results"
    rc, stdout, stderr = microlab("reproduce", *argv, "--notebooks", NB, "--out", out)
    assert rc == 2 and stdout == ""
    assert len(stderr.splitlines()) == 1 and "Traceback" not in stderr
    assert message in stderr and not out.exists()


def test_bad_input_through_the_installed_command(tmp_path):
    """The same through a real process: one line on stderr, exit status 2."""
    p = subprocess.run([sys.executable, "-m", "lab.cli", "reproduce", "lmbench", "-p", "loads=0",
                        "--out", str(tmp_path / "r")], capture_output=True, text=True,
                       env={**os.environ, registry.NOTEBOOKS_ENV: str(NB)}, timeout=60)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.splitlines() == [
        "microlab reproduce: error: -p loads=0: loads must be an int >= 1 (experiment lmbench)"]


def test_an_unwritable_out_is_a_usage_error(tmp_path):
    """--out under a file (not a directory) is a usage error: exit 2, one line naming --out."""
    (tmp_path / "file").write_text("")
    rc, _, err = microlab("reproduce", "getpid", "--notebooks", NB, "--out", tmp_path / "file")
    assert rc == 2 and "--out" in err and len(err.splitlines()) == 1


# --- a real run ---------------------------------------------------------------------------------

def test_outputs_are_where_design_says(first):
    """DIR/NAME/NAME.ipynb (executed, parameters injected), DIR/NAME/result.json, the figures,
    DIR/summary.json and DIR/summary.md."""
    out = first["out"]
    for name in ("getpid", "lmbench"):
        assert (out / name / f"{name}.ipynb").is_file() and (out / name / "result.json").is_file()
    assert (out / "getpid" / "getpid.png").read_bytes().startswith(b"\x89PNG")
    assert (out / "summary.json").is_file() and (out / "summary.md").is_file()
    nb = load(out / "getpid" / "getpid.ipynb")
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and f"seed = {SEED}" in "".join(injected[0]["source"])


def test_the_notebook_gets_its_parameters_and_a_deterministic_kernel(first):
    """-p reaches the notebook; the kernel runs in DIR/NAME with a fixed PYTHONHASHSEED and
    one Numba thread."""
    r = load(first["out"] / "getpid" / "result.json")
    assert r["parameters"] == {"cpu_profile": "pentium-133", "quick": False, "rounds": 100,
                               "seed": SEED, "system": "l4linux"}
    assert r["stats"]["env"] == {"NUMBA_NUM_THREADS": "1", "PYTHONHASHSEED": "0", "cwd": "getpid"}
    paper = published()["table2_getpid"]["rows"][0]
    assert [row["simulated"] for row in r["rows"][:5]] == \
        [pytest.approx(paper[s] * (1 + SEED / 100)) for s in FIVE]


def test_a_failing_notebook_does_not_stop_the_others(first):
    """compile raises and calibration's notebook is missing: both are reported, the others
    still run, and the exit status is non-zero."""
    assert first["rc"] == 1
    lines = first["stdout"].splitlines()
    assert any("compile" in ln and "FAILED" in ln and "RuntimeError: boom" in ln for ln in lines)
    assert any("calibration" in ln and "FAILED" in ln and "does not exist" in ln for ln in lines)
    assert any("lmbench" in ln and " ok in " in ln for ln in lines)
    assert "failed: calibration, compile, aim" in lines[-1]
    assert first["stderr"] == ""


def test_a_hung_notebook_is_killed_and_reported(first):
    """aim sleeps past the 5 s notebook timeout: its kernel is killed and it is reported as
    timed out."""
    line = next(ln for ln in first["stdout"].splitlines() if "TIMED OUT" in ln)
    assert line.split()[0] == "aim"
    assert "did not finish within 5 s" in line
    pid = int((first["out"] / "aim" / "kernel.pid").read_text())
    status = Path(f"/proc/{pid}/status")
    assert not status.exists() or "zombie" in status.read_text()
    assert not (first["out"] / "aim" / "result.json").exists()


def test_jobs_run_side_by_side(first):
    """--jobs 2: getpid and lmbench both start before either finishes."""
    lines = first["stdout"].splitlines()
    start = {ln.split()[2]: i for i, ln in enumerate(lines) if ln.endswith(" started")}
    first_finish = min(i for i, ln in enumerate(lines) if " ok in " in ln)
    assert start["getpid"] < first_finish and start["lmbench"] < first_finish


def test_progress_steps_are_shown(first):
    """Steps a notebook reports with lab.results.step appear as lines (stdout is no tty)."""
    steps = [ln.split("·")[1].rsplit("(", 1)[0].strip() for ln in first["stdout"].splitlines()
             if "·" in ln and ln.split()[0] == "getpid"]
    assert steps == ["calibration rows", "prediction rows"]


def test_summary_json_holds_every_row_with_its_experiment(first):
    """summary.json holds every row of every result.json, in order, each with its experiment
    first."""
    out = first["out"]
    rows = load(out / "summary.json")["rows"]
    expected = [{"experiment": name, **r} for name in ("getpid", "lmbench")
                for r in load(out / name / "result.json")["rows"]]
    assert rows == expected and list(rows[0])[0] == "experiment"


def md_table(md, heading):
    """The rows of the first table after HEADING as lists of cells."""
    part = md.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [[c.strip() for c in ln.strip("|").split(" | ")] for ln in part.splitlines()
            if ln.startswith("| ") and not ln.startswith("| experiment |")]


def test_summary_md_rows_and_ratios(first):
    """Each row: experiment, benchmark, system, unit, paper, simulated, simulated/paper, role."""
    md = (first["out"] / "summary.md").read_text()
    rows = {(r[0], r[1], r[2]): r for r in md_table(md, "Rows")}
    assert rows[("getpid", "write /dev/null", "l4linux")][4:] == ["5.260", "10.52", "2.000",
                                                                   "prediction"]
    assert rows[("getpid", "getpid", "linux")][4:] == ["223", "229.7", "1.030", "calibration"]
    assert rows[("getpid", "getpid", "l4linux-small-spaces")][4:] == ["—", "400.0", "—",
                                                                     "prediction"]
    assert len(rows) == len(load(first["out"] / "summary.json")["rows"])


def test_summary_md_prediction_accuracy(first):
    """Per experiment and overall: the median and worst |ln(simulated/paper)| over prediction
    rows with a paper value (calibration rows and rows without a paper are left out)."""
    md = (first["out"] / "summary.md").read_text()
    acc = {r[0]: r for r in md_table(md, "Predictions against the paper")}
    getpid = [abs(math.log(f)) for f in GETPID_FACTORS.values()]
    both = getpid + [math.log(LMBENCH_FACTOR)]
    assert acc["getpid"][1] == "5" and acc["getpid"][3].startswith(f"{statistics.median(getpid):.3f}")
    assert acc["getpid"][4].startswith(f"{max(getpid):.3f}")
    assert acc["getpid"][5] == "getpid: write /dev/null / mklinux_in_kernel (us)"
    assert acc["all"][1] == "6" and acc["all"][3].startswith(f"{statistics.median(both):.3f}")
    assert acc["all"][5] == "lmbench: pipe / mklinux_user (us)"


def test_summary_md_order_of_the_five_systems(first):
    """For each benchmark on all five systems: does the simulation rank them as the paper?
    The fake write /dev/null puts mklinux_in_kernel (x0.4) below l4linux and the trampoline."""
    md = (first["out"] / "summary.md").read_text()
    order = {r[1]: r for r in md_table(md, "Order of the five systems")}
    assert set(order) == {"getpid", "write /dev/null"}
    assert order["getpid"][5] == "yes"
    assert order["write /dev/null"][5] == \
        "no: l4linux/mklinux_in_kernel, l4linux_trampoline/mklinux_in_kernel"
    assert order["write /dev/null"][4].startswith("linux < mklinux_in_kernel < l4linux")


def test_summary_md_lists_the_failures(first):
    """summary.md lists each failed experiment (missing, raising, timed out) with the reason."""
    md = (first["out"] / "summary.md").read_text()
    part = md.split("## Failed experiments\n", 1)[1].split("\n## ", 1)[0]
    assert [ln.split(":")[0] for ln in part.split("\n") if ln.startswith("- ")] == \
        ["- calibration", "- compile", "- aim"]
    assert "- aim: timed out: did not finish within 5 s" in part


def test_same_seed_gives_byte_identical_results(first, second):
    """Two runs with the same seed and parameters write identical result.json and figures."""
    for name in ("result.json", "getpid.png"):
        assert (first["out"] / "getpid" / name).read_bytes() == \
            (second["out"] / "getpid" / name).read_bytes()


def test_a_cell_timeout_is_reported(second):
    """A cell running past --cell-timeout is reported as timed out, and the exit status is 1."""
    line = next(ln for ln in second["stdout"].splitlines() if "TIMED OUT" in ln)
    assert line.split()[0] == "aim" and "a cell ran longer than 2 s" in line
    assert second["rc"] == 1


def test_a_failed_run_leaves_no_stale_result(second):
    """A result.json from an earlier run is removed before the notebook runs again, so a
    failure cannot pass for a success."""
    assert not (second["out"] / "aim" / "result.json").exists()


def test_results_of_earlier_runs_stay_in_the_summary(second):
    """summary.json covers every result.json in DIR: lmbench, not run now, is kept."""
    rows = load(second["out"] / "summary.json")["rows"]
    assert sorted({r["experiment"] for r in rows}) == ["getpid", "lmbench"]
    md = (second["out"] / "summary.md").read_text()
    assert "| lmbench | kept from an earlier run | 4 |" in md


# --- summary and display without kernels -------------------------------------------------------

def fake_outcome(name, factors, role="prediction"):
    rows = [{"benchmark": "b", "system": s, "unit": "us", "simulated": 10.0 * f, "paper": 10.0,
             "role": role} for s, f in factors.items()]
    return Outcome(name, Status.OK, None, {"rows": rows})


def test_summary_is_deterministic_and_orders_ties():
    """Rendering is a pure function of the outcomes; paper ties are not an ordering claim."""
    factors = dict(zip(FIVE, (1.0, 1.1, 0.9, 1.2, 1.3)))

    def make():
        return [fake_outcome("getpid", factors), Outcome("vm", Status.FAILED, "ValueError: x")]
    outcomes = make()
    md = render_markdown(outcomes)
    assert outcomes == make()                       # the outcomes are read, never changed
    assert render_markdown(make()) == md            # equal outcomes, the same text
    assert "| getpid | ok | 5 |" in md and "- vm: failed: ValueError: x" in md
    (check,) = order_checks([{"experiment": "getpid", **r} for r in outcomes[0].result["rows"]])
    assert check[3] == " = ".join(FIVE) and check[5] == []


def test_accuracy_counts_only_predictions_with_a_paper_value():
    """accuracy() scores prediction rows that have a paper value; calibration rows and rows without
    a paper do not count."""
    rows = [{"experiment": "e", **r} for r in fake_outcome("e", {"linux": 2.0}).result["rows"]]
    rows += [{"experiment": "e", **r} for r in fake_outcome("e", {"l4linux": 8.0}, "calibration")
             .result["rows"]]
    rows.append({"experiment": "e", "benchmark": "c", "system": "linux", "unit": "us",
                 "simulated": 1.0, "paper": None, "role": "prediction"})
    n, no_log, median, worst, row = accuracy(rows)
    assert (n, no_log, row["system"]) == (1, 0, "linux")
    assert median == worst == pytest.approx(math.log(2))


@pytest.mark.parametrize("x, text", [(None, "—"), (526, "526"), (531.0, "531.0"),
                                     (14710.0, "14710"), (5.26, "5.260"), (0.083, "0.08300"),
                                     (0.0, "0"), (2.5e8, "2.500e+08")])
def test_numbers_have_a_fixed_format(x, text):
    """Numbers in the summary: ints as they are; floats to 4 significant digits, but never
    fewer than their integer digits, and in exponent form beyond 1e7 or below 1e-3; None as a
    dash."""
    assert fmt(x) == text


def test_progress_tail_waits_for_whole_lines(tmp_path):
    """The progress file is read in whole lines: a partial last line waits until its newline
    arrives."""
    path = tmp_path / "p"
    tail = ProgressTail(path)
    assert tail.new_lines() == []                  # not yet created
    path.write_text("one\ntw")
    assert tail.new_lines() == ["one"]
    with open(path, "a") as f:
        f.write("o\n")
    assert tail.new_lines() == ["two"] and tail.new_lines() == []


def test_plain_display_prints_one_line_per_event():
    """Without a terminal the display prints one line per start, step and finish."""
    s = io.StringIO()
    d = Display(s, total=1, live=False)
    d.started("vm")
    d.step("vm", "Appel1")
    d.finished(Outcome("vm", Status.FAILED, "ValueError: x", None, 1.25))
    lines = s.getvalue().splitlines()
    assert lines[0].split() == ["[", "1/1]", "vm", "started"]
    assert "· Appel1" in lines[1] and lines[2].split()[:4] == ["vm", "FAILED", "in", "1.2"]
    assert lines[2].endswith("s: ValueError: x") and len(lines) == 3


# --- what a notebook must leave behind (checked without kernels) --------------------------------

def job_in(tmp_path, parameters=None):
    from lab.runner.execute import Job
    return Job("getpid", NB / "02_getpid.ipynb", tmp_path, parameters or {}, 60.0, 60.0,
               tmp_path / "progress")


def write_getpid(tmp_path, seed=1, figure=None):
    from lab.results import Result
    r = Result("getpid", "t", "S97 Table 2", {"seed": seed, "quick": False,
                                               "cpu_profile": "pentium-133"})
    r.add_row("getpid", "linux", "cycles", 230.0, 223, "calibration")
    path = r.write(tmp_path)
    if figure:                                   # list a figure that was never written
        d = load(path)
        d["figures"] = [figure]
        path.write_text(json.dumps(d))


@pytest.mark.parametrize("setup, message", [
    (lambda t: None, "no result.json written"),
    (lambda t: write_getpid(t, figure="gone.png"), "listed but not written: gone.png"),
    (lambda t: write_getpid(t, seed=1), "records seed=1 but the runner passed seed=2"),
    (lambda t: (t / "result.json").write_text("{"), "not JSON"),
    (lambda t: (t / "result.json").write_text('{"experiment": "getpid"}'), "missing"),
])
def test_a_notebook_must_leave_a_valid_result(tmp_path, setup, message):
    """A notebook that ran without error still fails if result.json is missing, invalid,
    lists figures it did not write, or records other parameter values than it was given."""
    from lab.results import ResultError
    from lab.runner.execute import check_outputs
    setup(tmp_path)
    with pytest.raises(ResultError, match=message):
        check_outputs(job_in(tmp_path, {"seed": 2}))


def test_a_result_for_another_experiment_is_refused(tmp_path):
    """A result.json whose experiment is not the notebook's is refused by name."""
    from lab.results import Result, ResultError
    from lab.runner.execute import check_outputs
    Result("vm", "t", "S97 Table 5", {"seed": 1, "quick": False, "cpu_profile": "pentium-133"}) \
        .write(tmp_path)
    with pytest.raises(ResultError, match="for experiment 'vm', not 'getpid'"):
        check_outputs(job_in(tmp_path))


def test_out_dir_is_passed_to_notebooks_that_declare_it(tmp_path):
    """Convention: a notebook writes into its working directory DIR/NAME; one that declares an
    `out_dir` parameter also gets DIR/NAME in it."""
    import argparse
    from lab.runner.cli import add_reproduce_arguments, plan
    nb = load(NB / "03_lmbench.ipynb")
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    cell["source"] = "".join(cell["source"]) + '\nout_dir = "."'
    (tmp_path / "nbs").mkdir()
    (tmp_path / "nbs" / "03_lmbench.ipynb").write_text(json.dumps(nb))
    parser = argparse.ArgumentParser()
    add_reproduce_arguments(parser)
    args = parser.parse_args(["lmbench", "getpid", "--notebooks", str(tmp_path / "nbs"),
                              "--out", str(tmp_path / "out")])
    jobs, out, *_ = plan(args)
    params = {e.name: p for e, _, p in jobs}
    assert params == {"getpid": {}, "lmbench": {"out_dir": str(tmp_path / "out" / "lmbench")}}


@pytest.mark.parametrize("argv, cpus, workers", [
    (["getpid", "lmbench", "vm"], 2, 2),            # default: one notebook per usable CPU
    (["getpid"], 2, 1),                             # ... but not more than there are notebooks
    (["getpid", "lmbench", "vm"], 1, 1),
    (["getpid", "lmbench", "vm", "--jobs", "auto"], 8, 3),
    (["getpid", "lmbench", "vm", "--jobs", "1"], 8, 1),
])
def test_jobs_default_to_the_usable_cpus(argv, cpus, workers, tmp_path, monkeypatch):
    """--jobs defaults to one notebook per usable CPU, never more workers than notebooks; auto and
    a number are honoured."""
    import argparse
    from lab.runner import cli
    monkeypatch.setattr(cli, "usable_cpus", lambda: cpus)
    parser = argparse.ArgumentParser()
    cli.add_reproduce_arguments(parser)
    args = parser.parse_args([*argv, "--notebooks", str(NB), "--out", str(tmp_path / "out")])
    assert cli.plan(args).workers == workers


def test_an_out_that_is_a_file_is_a_usage_error(tmp_path):
    """--out naming an existing file is a usage error: exit 2, one line, nothing on stdout."""
    f = tmp_path / "results"
    f.write_text("not a directory")
    rc, out, err = microlab("reproduce", "getpid", "--notebooks", NB, "--out", f)
    assert rc == 2 and out == "" and err.strip().endswith("exists and is not a directory")


def test_a_missing_notebook_directory_is_a_usage_error(tmp_path):
    """--notebooks naming a directory that does not exist is a usage error, before any output
    directory is made."""
    rc, _, err = microlab("reproduce", "getpid", "--notebooks", tmp_path / "nowhere",
                          "--out", tmp_path / "r")
    assert rc == 2 and "nowhere does not exist" in err and not (tmp_path / "r").exists()


def test_summary_says_on_which_machine_how_quick_and_at_which_placement():
    """Each experiment's line names its CPU profile, whether it was a quick run and its
    physical placement (lowest-first, as after boot, or placement_seed N); a quick run, a run
    off the papers' machine and a run at a scattered placement are said to be so above the
    numbers."""
    factors = dict(zip(FIVE, (1.0, 1.1, 0.9, 1.2, 1.3)))
    o = fake_outcome("getpid", factors)
    o.result["parameters"] = {"seed": 1, "quick": False, "cpu_profile": "pentium-133"}
    md = render_markdown([o])
    assert "| getpid | ok | 5 | pentium-133 | no | lowest-first |" in md
    assert "quick=True" not in md and "not scored" not in md and "scattered" not in md
    o.result["parameters"] = {"seed": 1, "quick": True, "cpu_profile": "x86-64-modern",
                              "placement_seed": 0}
    md = render_markdown([o])
    assert "| getpid | ok | 5 | x86-64-modern | yes | lowest-first |" in md
    assert "quick=True" in md and "not scored" in md and "scattered" not in md
    o.result["parameters"] = {"seed": 1, "quick": False, "cpu_profile": "pentium-133",
                              "placement_seed": 7}
    md = render_markdown([o])
    assert "| getpid | ok | 5 | pentium-133 | no | 7 |" in md and "scattered order" in md


def test_list_rejects_a_notebook_directory_that_is_not_one(tmp_path, monkeypatch):
    """`microlab list` checks a notebook directory the user named (--notebooks DIR or
    $MICROLAB_NOTEBOOKS) as `reproduce` does: missing, or a file, is one line naming it, exit
    2, nothing listed -- not "no notebook" on every line and exit 0."""
    (tmp_path / "file").write_text("")
    for where, what in (("nowhere", "does not exist"), ("file", "is not a directory")):
        for cmd in ("list", "reproduce"):
            rc, out, err = microlab(cmd, "--notebooks", tmp_path / where, "--out", tmp_path / "r") \
                if cmd == "reproduce" else microlab(cmd, "--notebooks", tmp_path / where)
            assert (rc, out) == (2, "") and err == (
                f"microlab {cmd}: error: notebook directory {tmp_path / where} {what} "
                f"(--notebooks DIR or ${registry.NOTEBOOKS_ENV} name another)\n")
    monkeypatch.setenv(registry.NOTEBOOKS_ENV, str(tmp_path / "nowhere"))
    rc, out, err = microlab("list")
    assert (rc, out) == (2, "") and "nowhere does not exist" in err
