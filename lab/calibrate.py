"""Calibration (DESIGN.md §4): fit a small, listed set of kernel-profile knobs to the rows of
published.json whose role is `calibration`, and nothing else.

A `Knob` names one value in a kernel profile (a path's instructions, say).  A `Target` is one
calibration row: the paper's number and a function that builds the system (inside
`kprofile.overrides`) and returns the simulated number in the paper's unit.  Each target names
the knob it determines; a knob may be determined by several targets (least squares on their
relative errors).  `fit` iterates a per-knob secant step: the simulated cost of a path is close
to affine in its length (instructions times CPI, plus misses that change slowly), so a few
iterations converge.  Everything is simulated anew at each step: no formula stands in for the
mechanism.
"""
import json
import math
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .kprofile import PROFILE_DIR, load_kernel_profile, overrides


@dataclass(frozen=True)
class Knob:
    profile: str            # kernel profile name, e.g. "l4"
    key: str                # "path.field" (instructions, code_bytes, data_bytes) or a value name
    lo: float = 0.0
    hi: float = 1e8
    integer: bool = True

    @property
    def label(self):
        return f"{self.name}:{self.key}"

    @property
    def name(self):
        """The profile's name as overrides know it (a file path counts by its stem)."""
        return Path(self.profile).stem if self.profile.endswith(".json") else self.profile

    def file(self, profile_dir=PROFILE_DIR):
        return Path(self.profile) if self.profile.endswith(".json") else \
            Path(profile_dir) / f"{self.profile}.json"

    def current(self):
        p = load_kernel_profile(self.profile)
        if "." in self.key:
            path, fld = self.key.rsplit(".", 1)
            return p.data["paths"][path][fld]["value"]
        return p[self.key]

    def prior(self):
        """The estimate the value had before any fit, with its reasoning (`prior_source`;
        the `source` while it was never fitted)."""
        data = load_kernel_profile(self.profile).data
        if "." in self.key:
            path, fld = self.key.rsplit(".", 1)
            entry = data["paths"][path][fld]
        else:
            entry = data["values"][self.key]
        return entry.get("prior_source", entry.get("source", ""))


@dataclass
class Target:
    """One calibration row.  `knob` None: the row is simulated and reported (a check), but
    drives no knob — a calibration row the listed knobs cannot reach by themselves."""
    name: str               # e.g. "S97 Table 2 getpid l4linux"
    paper: float
    knob: object            # Knob or None
    measure: Callable[[], float]
    unit: str = "cycles"
    system: str = ""        # the published.json system key the row belongs to


@dataclass
class FitResult:
    values: dict            # Knob -> fitted value
    rows: list              # dicts: target, paper, simulated, error
    iterations: int
    history: list = field(default_factory=list)

    def worst(self):
        return max(self.rows, key=lambda r: abs(r["error"]))


def _layers(values):
    out = {}
    for k, v in values.items():
        out.setdefault(k.name, {})[k.key] = v
    return out


def _clip(knob, x):
    x = min(max(x, knob.lo), knob.hi)
    return int(round(x)) if knob.integer else float(x)


def evaluate(targets, values):
    """Simulate every target with the knob values in force; returns {target name: simulated}."""
    with overrides(_layers(values)):
        return {t.name: float(t.measure()) for t in targets}


def _residual(knob_targets, sims):
    """Mean relative error of a knob's rows (simulated - paper) / paper."""
    return sum(sims[t.name] / t.paper - 1 for t in knob_targets) / len(knob_targets)


def _solve_one(knob, ts, values, rtol, steps):
    """Move one knob (the others held) until the mean relative error of its rows is within
    rtol: secant steps of either sign (bandwidth rows fall as a path grows), at most a factor
    of 4 at a time, regula falsi once the root is bracketed.  Returns (value, residual)."""
    def resid(x):
        return _residual(ts, evaluate(ts, values | {knob: x}))

    x0 = values[knob]
    r0 = resid(x0)
    best = (abs(r0), x0, r0)
    lo = hi = None                          # bracket: (x, r) with r < 0 and r > 0
    x1 = _clip(knob, x0 * 1.25 if x0 else 1.0)
    if x1 == x0:                            # an integer knob too small for 25 %: one unit
        x1 = _clip(knob, x0 + 1)
    if x1 == x0:                            # at the upper bound: probe downwards
        x1 = _clip(knob, x0 * 0.8)
    for _ in range(steps):
        if abs(best[0]) <= rtol or x1 == x0:
            break
        r1 = resid(x1)
        best = min(best, (abs(r1), x1, r1))
        for x, r in ((x0, r0), (x1, r1)):
            if r < 0 and (lo is None or abs(r) < abs(lo[1])):
                lo = (x, r)
            if r > 0 and (hi is None or r < hi[1]):
                hi = (x, r)
        if lo is not None and hi is not None:       # bracketed: interpolate inside
            (xa, ra), (xb, rb) = lo, hi
            nx = xa - ra * (xb - xa) / (rb - ra)
        elif r1 == r0:                              # no response: a bolder probe
            nx = max(x1 * 4, 16.0)
        else:
            nx = x1 - r1 * (x1 - x0) / (r1 - r0)
            nx = min(max(nx, x1 / 4), x1 * 4 + 1)
        x0, r0, x1 = x1, r1, _clip(knob, nx)
    return best[1], best[2]


def fit(targets, iterations=8, rtol=0.002, log=None, steps=10):
    """Fit each knob to its targets: sweeps (`iterations` at most) of one-dimensional solves
    (at most `steps` simulations each),
    knob after knob with the others held (Gauss-Seidel), until every knob's rows agree within
    rtol.  A knob moves only its own rows' error; knobs that interact (a switch path and the
    pipe path, say) settle over the sweeps.  Returns FitResult with the best values seen
    (least total |log(simulated/paper)| over the rows that drive knobs) and their rows."""
    for name, v, lo in (("iterations", iterations, 1), ("steps", steps, 1)):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < lo:
            raise ValueError(f"fit: {name} {v!r} must be an integer >= {lo}")
    if isinstance(rtol, bool) or not isinstance(rtol, numbers.Real) or not 0 <= rtol < 1:
        raise ValueError(f"fit: rtol {rtol!r} must be a number in [0, 1)")
    knobs = list(dict.fromkeys(t.knob for t in targets if t.knob is not None))
    own = {k: [t for t in targets if t.knob == k and t.paper] for k in knobs}
    values = {k: _clip(k, k.current()) for k in knobs}
    history = []
    best = None

    def score(sims):
        return sum(abs(math.log(max(sims[t.name], 1e-9) / t.paper))
                   for t in targets if t.knob is not None and t.paper)

    for it in range(1, iterations + 1):
        sims = evaluate(targets, values)
        history.append({k.label: values[k] for k in knobs} | {"_sims": dict(sims)})
        sc = score(sims)
        if best is None or sc < best[0]:
            best = (sc, dict(values), dict(sims))
        resid = {k: _residual(own[k], sims) for k in knobs if own[k]}
        worst = max((abs(r) for r in resid.values()), default=0.0)
        if log:
            log(f"sweep {it}: worst relative error {worst:.4f}")
        if worst <= rtol:
            break
        before = dict(values)
        for k in knobs:
            if own[k] and abs(resid[k]) > rtol:
                values[k], resid[k] = _solve_one(k, own[k], values, rtol, steps)
        if values == before:        # a fixed point (the rows left are at a bound): stop
            if log:
                log(f"sweep {it}: no knob moved; the rows outside rtol have their knob at a bound")
            break
    sims = evaluate(targets, values)
    if best is not None and best[0] < score(sims):
        _score, values, sims = best
    rows = [{"target": t.name, "knob": t.knob.label if t.knob else None, "paper": t.paper,
             "system": t.system, "simulated": sims[t.name],
             "unit": t.unit, "error": sims[t.name] / t.paper - 1 if t.paper else math.nan}
            for t in targets]
    return FitResult(values, rows, len(history), history)


def write_profiles(result, profile_dir=PROFILE_DIR):
    """Write fitted values into the kernel-profile files, each marked "calibrated on ..." with
    the targets that determined it (DESIGN.md §4).  Returns the files written."""
    by_knob = {}
    for r in result.rows:
        if r["knob"]:
            by_knob.setdefault(r["knob"], []).append(r["target"])
    written = set()
    for knob, value in result.values.items():
        path = knob.file(profile_dir)
        data = json.loads(path.read_text())
        if "." in knob.key:
            p, fld = knob.key.rsplit(".", 1)
            entry = data["paths"][p][fld]
        else:
            entry = data["values"][knob.key]
        prior = entry.get("prior_source", entry["source"])
        if not prior.startswith("calibrated on"):
            entry["prior_source"] = prior
        entry["value"] = value
        entry["source"] = "calibrated on " + "; ".join(by_knob[knob.label])
        path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
        written.add(path)
    return sorted(written)
