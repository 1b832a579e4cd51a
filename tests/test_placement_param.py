"""`-p placement_seed=N`: every experiment but the calibration can be rerun at the engine's
seeded scattered frame placement N (0: lowest first, as after boot -- the placement the
calibration was fitted at).  With the Pentium's direct-mapped L2, placement decides which
lines evict each other (DESIGN §4), so a user must be able to move every simulated number of
a notebook to another placement, and nothing measured at one placement may be reused at
another."""
import ast
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
    """The placement_seed of every Machine built while the fixture is active (the calibration's
    memo starts empty, so an earlier test's run at K cannot stand in for building one)."""
    monkeypatch.setattr(calibration, "_cache", {})
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
    """`microlab reproduce getpid --quick -p placement_seed=3` records placement_seed 3, its
    Table 2 rows are the getpids at placement 3 -- at least one of them other than at
    lowest-first -- and so are its Figure 5 rows; the Figure 5 placement section keeps its own
    seeds 1..placements (2 when quick), whatever the placement given."""
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
    fig5 = [r["simulated"] for r in d["rows"] if r["benchmark"].startswith("Fig. 5")]
    _total, steps = calibration.getpid("l4linux", placement_seed=K)
    assert fig5 == [steps[s] for s in calibration.FIG5_STEPS[:5]]
    assert d["stats"]["fig5.placements"] == 2
    dearer = 0
    for seed in (1, 2):
        _total, st = calibration.getpid("l4linux", placement_seed=seed)
        dearer += st["receive"] > st["send"]
    assert d["stats"]["fig5.placements.reply_dearer"] == dearer


def test_the_round_trip_runs_at_a_scattered_placement():
    """sigma0 maps page X at frame X (S95 §3.2).  At a scattered placement the L4 kernel's own
    frames can land among the round trip's working-set frames, which sigma0 refuses as kernel
    memory (without the round trip's reservation placement 3 fails with L4_IPC_REMAPFAILED):
    the round trip keeps those frames from the kernel, so it runs, with every page of both
    sides at its own frame."""
    rt = tlbtag.RoundTrip(CFG, 64, placement_seed=K)
    rt.measure(1)
    page = rt.m.fmt.page_size
    for base, space in ((tlbtag.CLIENT_BASE, rt.client.sid), (tlbtag.SERVER_BASE, rt.server.sid)):
        for i in range(64):
            va = base + i * page
            assert rt.m.translate(space, va)[0] == va


@pytest.mark.parametrize("cfg", tlbtag.configs(), ids=lambda c: c.label)
def test_at_lowest_first_the_reservation_moves_nothing(cfg):
    """At lowest-first the kernel's frames all lie below the round trip's lowest working-set
    frame, at the largest working set the notebook allows (96 pages a side): the reservation
    takes frames nobody else would have taken, so lowest-first results are those of a round
    trip without it."""
    rt = tlbtag.RoundTrip(cfg, 96)
    rt.measure(1)
    page, mem = rt.m.fmt.page_size, rt.m.memory
    reserved = {(base + i * page) // page for base in (tlbtag.CLIENT_BASE, tlbtag.SERVER_BASE)
                for i in range(96)}
    others = [f for f in range(mem.nframes) if mem.is_allocated(f) and f not in reserved]
    assert others and max(others) < min(reserved)


# --- (e) every notebook call that builds machines passes the placement -------------------------

# the entry points of lab/ that build a Machine (directly or through lab.linux.boot)
BUILDERS = {"Machine", "boot", "measure", "ctx_parts", "run_load", "linux_pipe", "table",
            "read_twice", "compile_job", "make_system", "full_reload", "switch_costs", "sweep",
            "round_trip_snapshots", "linux_op", "breakdown", "null_rpc", "l4_one_way_ipc",
            "getpid", "RoundTrip", "World", "L4Appel"}


def _passes_placement(call):
    """A call hands the placement on: a placement_seed= keyword, or the notebook's `place`
    (the parameter as the engine takes it) among its arguments."""
    if any(k.arg == "placement_seed" for k in call.keywords):
        return True
    return any(isinstance(a, ast.Name) and a.id == "place" for a in call.args)


@pytest.mark.parametrize("source", [s for s in SOURCES if s.stem != CALIBRATION],
                         ids=lambda s: s.stem)
def test_every_machine_a_notebook_builds_gets_the_placement(source):
    """Every call in a notebook to something that builds a machine passes the placement on, so
    that no simulated number of the notebook comes from lowest-first when another placement
    was asked for (constants come from the CPU profile, not from a machine)."""
    tree = ast.parse(source.read_text())
    # lab's functions are reached through imported names (a method like m.measure() is not one)
    imported = {a.asname or a.name.split(".")[0] for n in ast.walk(tree)
                if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    missing, seen = [], 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name):
                name, base = f.attr, f.value.id
            else:
                name = base = getattr(f, "id", None)
            if name in BUILDERS and base in imported:
                seen += 1
                if not _passes_placement(node):
                    missing.append(f"line {node.lineno}: {ast.unparse(node)[:80]}")
    assert seen and not missing, missing
