"""Calibration fits only the knobs it is given, to the targets it is given (DESIGN.md §4)."""
import json

import pytest

from engine import Machine
from lab.calibrate import Knob, Target, fit, write_profiles
from lab.image import KernelImage
from lab.kprofile import load_kernel_profile


def _profile(tmp_path, instructions=50):
    e = lambda v: {"value": v, "unit": "u", "description": "d", "source": "estimate: test"}  # noqa: E731
    data = {"kernel": "toy", "values": {},
            "paths": {"work": {"instructions": e(instructions), "code_bytes": e(256),
                               "data_bytes": e(128)}}}
    path = tmp_path / "toy.json"
    path.write_text(json.dumps(data))
    return str(path)


def _measure(path):
    """Cycles of one warm execution of the toy path on the Pentium: instructions + misses."""
    def run():
        m = Machine("pentium-133")
        s = m.new_space()
        img = KernelImage(m, load_kernel_profile(path), 0x400000, 0x800000)
        img.map_into(s)
        m.switch(s)
        img.run("work")
        with m.measure() as r:
            img.run("work")
        return r.cycles
    return run


def test_fit_reaches_the_paper_value_through_the_mechanism(tmp_path):
    """The fitted path length makes the *simulated* cost match; nothing else is touched."""
    path = _profile(tmp_path)
    knob = Knob(path, "work.instructions")
    t = Target("toy row", 300.0, knob, _measure(path))
    res = fit([t])
    assert abs(res.rows[0]["error"]) < 0.01
    assert res.values[knob] != 50
    write_profiles(res)
    data = json.loads(open(path).read())
    entry = data["paths"]["work"]["instructions"]
    assert entry["value"] == res.values[knob]
    assert entry["source"] == "calibrated on toy row"
    assert entry["prior_source"] == "estimate: test"
    assert data["paths"]["work"]["code_bytes"]["value"] == 256


def test_a_knob_at_its_upper_bound_can_come_down(tmp_path):
    """The fitter probes downwards from a knob's upper bound (symptom guarded: a knob started
    at its bound never moved, whatever its row said)."""
    path = _profile(tmp_path, instructions=400)
    knob = Knob(path, "work.instructions", lo=0, hi=400)
    t = Target("toy row", 300.0, knob, _measure(path))
    res = fit([t])
    assert res.values[knob] < 400 and abs(res.rows[0]["error"]) < 0.01


@pytest.mark.parametrize("argv, says", [
    (["--iterations", "0"], "argument --iterations: 0 is not allowed: must be an integer >= 1"),
    (["--iterations", "-1"], "argument --iterations: -1 is not allowed: must be an integer >= 1"),
    (["--iterations", "two"], "argument --iterations: 'two' is not an integer"),
    (["--check", "--write"], "argument --write: not allowed with argument --check"),
    (["--check", "--iterations", "3"], "argument --iterations: not allowed with argument --check"),
    (["--write", "--quick"], "argument --quick: not allowed with argument --write"),
])
def test_calibration_command_rejects_what_it_would_ignore(argv, says, capsys):
    """`python -m lab.calibration`: a sweep count below 1 (which fitted nothing and printed
    the table as if fitted), options that --check would ignore, or --write at quick sizes
    (which wrote values fitted to numbers that are not the reference ones) are one line
    naming the value, exit 2, before any simulation."""
    from lab.calibration import main
    with pytest.raises(SystemExit) as e:
        main(argv)
    out, err = capsys.readouterr()
    assert e.value.code == 2 and out == ""
    assert err.splitlines() == [err.strip()]
    assert err.startswith(f"python -m lab.calibration: error: {says}")


@pytest.mark.parametrize("kw", [{"iterations": 0}, {"iterations": -1}, {"iterations": 2.5},
                                {"steps": 0}, {"rtol": -0.1}, {"rtol": float("nan")}])
def test_fit_rejects_a_count_or_tolerance_it_cannot_use(kw, tmp_path):
    """fit() with no sweep, no step or a negative tolerance would return the starting values
    as the fit: it raises ValueError naming the argument and what is allowed instead."""
    path = _profile(tmp_path)
    t = Target("toy row", 300.0, Knob(path, "work.instructions"), _measure(path))
    (name, value), = kw.items()
    with pytest.raises(ValueError, match=rf"fit: {name} {value!r} must be "):
        fit([t], **kw)


def test_a_row_out_of_reach_stops_the_fit_after_one_sweep(tmp_path):
    """A row the knob cannot reach (the path costs more at its lowest allowed length than the
    paper's row) pins the knob at its bound; the next sweep would repeat the last, so the fit
    stops and says why -- instead of sweeping `iterations` times for nothing."""
    path = _profile(tmp_path)
    knob = Knob(path, "work.instructions", lo=40)
    lines = []
    res = fit([Target("toy row", 1.0, knob, _measure(path))], iterations=10, log=lines.append)
    assert res.values[knob] == 40 and res.iterations == 2     # 50 -> 40, then no move
    assert lines[-1] == "sweep 2: no knob moved; the rows outside rtol have their knob at a bound"
    assert Knob(path, "work.instructions").prior() == "estimate: test"
