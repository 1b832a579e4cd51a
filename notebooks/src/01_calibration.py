# %% [markdown]
# # Calibration: the only numbers that may be fitted (DESIGN.md §4)
#
# > Calibration may fit a small, listed set of parameters — kernel path lengths and workload
# > characteristics — using only the rows whose role is `calibration`: the machine facts, the
# > getpid breakdown, Table 2 (getpid) and the native-Linux column of Table 3.
#
# This notebook lists every calibration row, the one knob each row determines (or none: a
# *check*), fits the knobs by simulating the rows again and again, and compares the result with
# the values committed in `lab/profiles/*.json` (which `python -m lab.calibration --write`
# produced, each marked "calibrated on …").  Every other number in this lab is a prediction
# made with these values.

# %% tags=["parameters"]
seed = 1
quick = False
cpu_profile = "pentium-133"  # choices: pentium-133, x86-64-modern; the rows are pentium-133's: fitted only there
iterations = 10  # range: 1..50; fitting sweeps (no change when already calibrated)

# %%
from lab import calibration
from lab.calibrate import fit
from lab.results import REFERENCE_PROFILE, Result, step

# The calibration rows were measured on the papers' Pentium: only there may they be fitted.  On
# another machine this notebook fits nothing; it shows what the same kernels, with the path
# lengths calibrated on the Pentium, cost there (rows demoted to illustrations).
fitting_here = cpu_profile == REFERENCE_PROFILE
if not fitting_here:
    print(f"cpu_profile {cpu_profile}: the calibration rows are {REFERENCE_PROFILE}'s; nothing is "
          "fitted here, the rows show the calibrated kernels on this machine")

res = Result("calibration", "fit kernel path lengths and workload counts to the calibration rows only",
             "S97 §5, Fig. 5, Table 2, Table 3 (linux column); H97",
             parameters={"seed": seed, "quick": quick, "cpu_profile": cpu_profile,
                         "iterations": iterations})

# %% [markdown]
# ## The rows, simulated with the committed profile values

# %%
step("simulate the calibration rows")
committed = calibration.check(cpu_profile=cpu_profile, seed=seed, quick=quick)
print(calibration.format_rows(committed))

# %% [markdown]
# ## Fitting again from the committed values
# The fitter starts from the committed values and sweeps over the knobs, solving each one for
# its own rows with the others held (secant steps, then regula falsi once the row is
# bracketed); knobs that interact -- the switch path and the pipe path both sit in a pipe's
# round trip -- settle over the sweeps.  Knobs that reach their rows stay put; knobs pinned at
# a bound (a path of zero instructions that still costs more than the paper's row) are
# findings: the mechanism around that path already costs more than the real system did.  A
# knob that moves far means the profiles and the mechanism have drifted apart (rerun
# `python -m lab.calibration --write`).

# %%
fitted_values = {}
if fitting_here:
    step("fit")
    ts = calibration.targets(cpu_profile, seed, quick)
    # a quick run's rows are not the reference ones (fewer iterations): one sweep shows the fit
    fitted = fit(ts, iterations=1 if quick else iterations)
    fitted_values = fitted.values
    moved = {k.label: (k.current(), v) for k, v in fitted_values.items()
             if abs(v - k.current()) > 0.05 * max(abs(k.current()), 1)}
    pinned = [k.label for k, v in fitted_values.items() if v <= k.lo]
    print(f"{len(fitted_values)} knobs, {len(ts)} rows, {fitted.iterations} iteration(s)")
    print("knobs that moved by more than 5%:", moved or "none")
    print("knobs pinned at their lower bound:", pinned or "none")
else:
    print(f"no fit on {cpu_profile}: fitting the Pentium's rows on it would give path lengths "
          "that mean nothing")

# %% [markdown]
# ## Result rows
# Rows driving a knob are reported with role `calibration`; checks too (they are calibration
# rows of the paper that no knob was allowed to absorb).

# %%
import math
for r in committed:
    bench = r["target"]
    res.add_row(bench, r["system"], r["unit"], round(r["simulated"], 4), r["paper"], "calibration",
                note=("fits " + r["knob"]) if r["knob"] else "check: drives no knob")
fitting = [r for r in committed if r["knob"]]
checks = [r for r in committed if not r["knob"]]
within = sum(abs(r["error"]) <= 0.05 for r in fitting)
print(f"rows that drive a knob: {len(fitting)}, within 5% of the paper: {within}")
print(f"checks: {len(checks)}; their errors: " +
      ", ".join(f"{r['target'].split(': ')[-1]} {r['error']*100:+.0f}%" for r in checks))
res.stats["rows.fitting"] = len(fitting)
res.stats["rows.fitting_within_5pct"] = within
res.stats["rows.checks"] = len(checks)

# %%
import matplotlib.pyplot as plt
import numpy as np
fig, ax = plt.subplots(figsize=(7, 6))
labels = [r["target"].replace("S97 Table 3 ", "").replace("(hbench:OS) ", "")[:48] for r in committed]
err = [r["error"] * 100 for r in committed]
colors = ["#1f77b4" if r["knob"] else "#ff7f0e" for r in committed]
y = np.arange(len(labels))
ax.barh(y, err, color=colors)
ax.axvline(-5, color="grey", lw=0.5, ls="--")
ax.axvline(5, color="grey", lw=0.5, ls="--")
ax.set_yticks(y, labels, fontsize=6)
ax.invert_yaxis()
ax.set_xlabel("simulated / paper - 1 (%)   blue: fitted row, orange: check")
ax.set_title(f"Calibration rows on {cpu_profile}")
fig.tight_layout()
res.add_figure(fig, "calibration.png")
res.write()

# %% [markdown]
# **Reading the fit.**  A row that drives a knob alone lands within a fraction of a percent;
# where an lmbench and an hbench row share a knob, the fit splits their difference (up to a
# few percent each way: the mmap reread rows).
# The rows outside 5 % (listed below) are findings: a check, where the mechanism alone
# decides, or a row whose knob is pinned at a bound -- the mechanism around the path already
# costs more (or, for a bandwidth, less) than the real system did, or the knob would need an
# implausible value.  A fitted knob whose value is implausible (a path of tens of thousands of
# instructions) is a finding too, not a success: it marks work the model does not represent.

# %%
outside = [r for r in committed if abs(r["error"]) > 0.05]
bound = {k.label: ("lower" if v <= k.lo else "upper") for k, v in fitted_values.items()
         if v <= k.lo or v >= k.hi}
print(f"{len(committed) - len(outside)} of {len(committed)} calibration rows within 5 %; outside:")
for r in outside:
    why = "check" if not r["knob"] else \
        (f"{r['knob']} pinned at its {bound[r['knob']]} bound" if r["knob"] in bound else r["knob"])
    print(f"  {r['target'][:60]:60} {r['error'] * 100:+6.1f}%  {why}")
res.stats["rows.within_5pct"] = len(committed) - len(outside)

# %% [markdown]
# Each fitted value beside the estimate it started from (the profile's `prior_source`): a value
# far from its prior marks work the model does not represent, or represents elsewhere.

# %%
import textwrap
for k, v in sorted(fitted_values.items(), key=lambda kv: kv[0].label):
    print(f"{k.label:48} {v!s:>10}")
    print(textwrap.fill(k.prior(), 96, initial_indent="    prior: ", subsequent_indent="      "))

# %%
# NBVAL_IGNORE_OUTPUT
from lab.views import ComparisonView
ComparisonView([r["target"][-24:] for r in fitting[:12]], [r["paper"] for r in fitting[:12]],
               [r["simulated"] for r in fitting[:12]], title="fitted rows: paper vs simulated")
