"""`-p placement_seed=N`: every experiment but the calibration can be rerun at the engine's
seeded scattered frame placement N (0: lowest first, as after boot -- the placement the
calibration was fitted at).  With the Pentium's direct-mapped L2, placement decides which
lines evict each other (DESIGN §4), so a user must be able to move every simulated number of
a notebook to another placement, and nothing measured at one placement may be reused at
another."""
import contextlib
import functools
import io
import json
import re
from pathlib import Path

import pytest

from engine import Machine
from lab import calibration
from lab.cli import main
from lab.linux import breakdown, SYSTEMS
from lab.mach import breakdown as mach_breakdown
from lab.runner.params import parse_cell, read_parameters
from lab.workloads import aim, appel, compile as cc, l4ipc, lmbench, mach_objects, tlbtag

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SOURCES = sorted((NOTEBOOKS / "src").glob("*.py"))
CALIBRATION = "01_calibration"
CELL = re.compile(r'^# %% tags=\["parameters"\]\n(.*?)^# %%', re.S | re.M)
K = 3                       # a scattered placement


# --- (a) the parameter is declared everywhere but in the calibration ---------------------------

def _declared(source):
    return parse_cell(CELL.search(source.read_text()).group(1), str(source))


@pytest.mark.parametrize("source", SOURCES, ids=[s.stem for s in SOURCES])
def test_every_notebook_but_the_calibration_declares_placement_seed(source):
    """placement_seed is 1..4294967295 or 0 (0: lowest first) in every notebook's parameters
    cell, in the source and in the built notebook the runner reads; the calibration, fitted at
    lowest-first only, has no such parameter."""
    for params in (_declared(source), read_parameters(NOTEBOOKS / f"{source.stem}.ipynb")):
        p = params.get("placement_seed")
        if source.stem == CALIBRATION:
            assert p is None
            continue
        assert (p.kind, p.default, p.lo, p.hi, p.also) == ("int", 0, 1, 2 ** 32 - 1, 0)
        assert p.parse("0") == 0 and p.parse("4294967295") == 4294967295


# --- (b) the runner refuses a bad value, and the key for the calibration alone ------------------

def _microlab(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main([str(a) for a in argv])
    return rc, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("argv, message", [
    (["getpid", "-p", "placement_seed=-1"],
     "-p placement_seed=-1: placement_seed must be an int in 1..4294967295, or 0"),
    (["lmbench", "-p", "placement_seed=4294967296"],
     "-p placement_seed=4294967296: placement_seed must be an int in 1..4294967295, or 0"),
    (["vm", "-p", "placement_seed=x"],
     "-p placement_seed=x: placement_seed must be an int in 1..4294967295, or 0"),
    (["calibration", "-p", "placement_seed=3"],
     "-p placement_seed=3: no selected experiment has a parameter 'placement_seed'"),
], ids=["negative", "2**32", "not-an-int", "calibration"])
def test_a_bad_placement_seed_is_refused_before_anything_runs(argv, message, tmp_path):
    """Exit 2 and one line naming the value and what is allowed; the calibration alone does
    not take the key (its fit is defined at lowest-first).  No notebook starts."""
    out = tmp_path / "results"
    rc, stdout, stderr = _microlab("reproduce", *argv, "--out", out)
    assert rc == 2 and stdout == "" and len(stderr.splitlines()) == 1
    assert message in stderr and not out.exists()


# --- (c) every workload entry point hands the seed to every machine it builds ------------------

@pytest.fixture
def placements(monkeypatch):
    """The placement_seed of every Machine built while the fixture is active."""
    seen = []
    init = Machine.__init__

    @functools.wraps(init)          # boot() checks its options against this signature
    def spy(self, *args, **kw):
        init(self, *args, **kw)
        seen.append(self.memory.placement_seed)
    monkeypatch.setattr(Machine, "__init__", spy)
    return seen


CFG = tlbtag.configs()[0]
LINUX_CFG = tlbtag.linux_configs()[1]
ENTRY_POINTS = {
    "lmbench.measure": lambda s: lmbench.measure("pipe@lmbench", "linux", quick=True,
                                                 placement_seed=s),
    "lmbench.ctx_parts": lambda s: lmbench.ctx_parts("linux", quick=True, placement_seed=s),
    "compile.measure": lambda s: cc.measure("linux", units=1, placement_seed=s).seconds,
    "aim.run_load": lambda s: aim.run_load("linux", 1, placement_seed=s).cpu_cycles,
    "l4ipc.measure": lambda s: l4ipc.measure(l4ipc.L4_VARIANTS[1], "latency", quick=True,
                                             placement_seed=s).cycles,
    "l4ipc.linux_pipe": lambda s: l4ipc.linux_pipe("linux", "latency", quick=True,
                                                   placement_seed=s).cycles,
    "appel.measure l4": lambda s: appel.measure("Trap", "l4", quick=True,
                                                placement_seed=s).cycles,
    "appel.measure linux": lambda s: appel.measure("Trap", "linux", quick=True,
                                                   placement_seed=s).cycles,
    "mach_objects.table": lambda s: [mach_objects.table(x, memory_mb=16, quick=True,
                                                        placement_seed=s)["samples"]["fork"].cycles
                                     for x in mach_objects.SYSTEMS],
    "mach_objects.read_twice": lambda s: [
        mach_objects.read_twice(x, 65536, memory_mb=16, placement_seed=s)[1].cycles
        for x in mach_objects.SYSTEMS],
    "mach_objects.compile_job": lambda s: [
        mach_objects.compile_job(x, memory_mb=16, units=1, placement_seed=s)["passes"][1].cycles
        for x in mach_objects.SYSTEMS],
    "tlbtag.full_reload": lambda s: tlbtag.full_reload(placement_seed=s)[1].cycles,
    "tlbtag.switch_costs": lambda s: tlbtag.switch_costs(placement_seed=s),
    "tlbtag.sweep": lambda s: tlbtag.sweep(CFG, [8], n=2, placement_seed=s),
    "tlbtag.round_trip_snapshots": lambda s: [
        m for _p, _o, m in tlbtag.round_trip_snapshots(CFG, 8, placement_seed=s)],
    "tlbtag.linux_op": lambda s: tlbtag.linux_op("getpid", LINUX_CFG, n=2,
                                                 placement_seed=s)["cycles"],
    "breakdown.measure": lambda s: breakdown.measure("l4linux", placement_seed=s),
    "breakdown.breakdown": lambda s: breakdown.breakdown(placement_seed=s),
    "mach.breakdown.null_rpc": lambda s: mach_breakdown.null_rpc(placement_seed=s).cycles,
    "calibration.l4_one_way_ipc": lambda s: calibration.l4_one_way_ipc(placement_seed=s),
    "calibration.getpid": lambda s: calibration.getpid("l4linux", placement_seed=s),
}


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_an_entry_point_builds_every_machine_at_the_placement_given(name, placements):
    """Called after a lowest-first run (so a result remembered for lowest-first would show),
    the entry point builds its machines -- every one of them -- at placement K, and gives the
    same result twice."""
    run = ENTRY_POINTS[name]
    run(None)
    placements.clear()
    first = run(K)
    assert placements and set(placements) == {K}, placements
    assert run(K) == first


@pytest.mark.parametrize("name", ["lmbench.measure", "lmbench.ctx_parts", "l4ipc.linux_pipe",
                                  "tlbtag.linux_op", "mach_objects.read_twice"])
def test_placement_moves_the_numbers(name):
    """Placement is not a label: at placement K these measurements come out other than at
    lowest-first (lines that evict each other in the direct-mapped L2 move)."""
    run = ENTRY_POINTS[name]
    assert run(K) != run(None)


# --- (d) a notebook through the runner ---------------------------------------------------------

def test_getpid_notebook_runs_at_the_placement_given(tmp_path):
    """`microlab reproduce getpid --quick -p placement_seed=3` records placement_seed 3 and its
    Table 2 rows are the getpids at placement 3 -- at least one of them other than at
    lowest-first; the Figure 5 placement section keeps its own seeds 1..placements."""
    out = tmp_path / "results"
    rc, _stdout, stderr = _microlab("reproduce", "getpid", "--quick", "--jobs", 1,
                                    "-p", f"placement_seed={K}", "--out", out)
    assert rc == 0, stderr
    d = json.loads((out / "getpid" / "result.json").read_text())
    assert d["parameters"]["placement_seed"] == K
    rows = {r["system"]: r["simulated"] for r in d["rows"]
            if r["benchmark"] == "getpid" and r["unit"] == "cycles"}
    at_k = {s: sum(breakdown.measure(s, placement_seed=K).values()) for s in SYSTEMS}
    lowest = {s: sum(breakdown.measure(s).values()) for s in SYSTEMS}
    assert rows == at_k
    assert any(at_k[s] != lowest[s] for s in SYSTEMS)
    assert d["stats"]["fig5.placements"] == 2


def test_sigma0_pages_keep_their_own_frames_at_a_scattered_placement():
    """sigma0 maps page X at frame X (S95 §3.2).  At a scattered placement the L4 kernel's own
    frames could land among the round trip's working-set frames (sigma0 would refuse them as
    kernel memory), so the round trip keeps those frames from the kernel: it runs, and each
    page is mapped at its own frame."""
    rt = tlbtag.RoundTrip(CFG, 64, placement_seed=K)
    rt.measure(1)
    page = rt.m.fmt.page_size
    for i in range(64):
        va = tlbtag.CLIENT_BASE + i * page
        assert rt.m.translate(rt.client.sid, va)[0] == va
