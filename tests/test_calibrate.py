"""Calibration fits only the knobs it is given, to the targets it is given (DESIGN.md §4)."""
import json

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
