# %% [markdown]
# # AIM Multiuser Benchmark Suite VII: throughput under load (S97 §5.2, Figs. 8–9)
#
# > "AIM Benchmark Suite VII simulates 'different application loads' using 'Load Mix
# > Modeling'."  "L4Linux is 5% - 10% slower than native for macrobenchmarks.  User mode
# > MkLinux is 49% slower (averaged over all loads).  In-kernel MkLinux is 29% slower
# > (averaged over all loads)."  — the lecture, on Härtig et al. 1997, Fig. 9
#
# > Fig. 9: jobs completed per minute vs simulated load 0..140: Linux plateaus at ~120–130
# > from load ~30; L4Linux ~122–123; MkLinux in-kernel ~93–95; MkLinux user ~80–81.
# > (published.json `figure8_9_aim`)
#
# N simulated users run a job mix on each system: the tasks of `lab/profiles/aim.json` — one
# per AIM VII subtest (compute, brk/page, pipes, loopback datagrams, cached and synchronous
# file writes, file creation, fork, exec, shell) plus a compilation with the tool chain of the
# compile experiment.  This kernel waits for the disk *synchronously* (the CPU idles, no other
# user runs), so the driver separates each job's CPU demand from its disk demand and computes
# the throughput at N users by mean value analysis of a closed CPU + disk network
# (`lab.workloads.aim`'s docstring says exactly how, and how the load points are sampled).

# %% tags=["parameters"]
seed = 1
quick = False
cpu_profile = "pentium-133"
loads = [1, 5, 20, 140]  # range: 1..300; simulated users at which the demands are measured, in any order (quick: 1, 4)
jobs = 1  # range: 1..4; jobs' worth of tasks simulated at each load
placement_seed = 0  # range: 1..4294967295 or 0; 0: frames lowest first, as after boot (the calibration's placement); N: the engine's seeded scattered order N

# %%
import matplotlib.pyplot as plt
import numpy as np
from lab.results import Result, published, step
from lab.workloads import aim

paper = published()["figure8_9_aim"]
place = placement_seed or None  # the engine's placement_seed (None: frames lowest first)
SYSTEMS = ("linux", "l4linux", "mklinux_in_kernel", "mklinux_user")
grid = [1, 4] if quick else sorted(set(loads))     # the loads as run (the parameter is kept)
c = aim.characteristics()
res = Result("aim", "AIM multiuser benchmark: throughput under load", paper["source"],
             parameters={"seed": seed, "quick": quick, "cpu_profile": cpu_profile,
                         "loads": loads, "jobs": jobs,
                         "placement_seed": placement_seed})
res.stats["loads_run"] = grid
print(f"job mix: {len(aim.job_mix(c))} tasks per job: " +
      ", ".join(f"{k} {int(c['weight_' + k])}" for k in aim.KINDS))

# %% [markdown]
# The demands per job, measured at each load on each system (the same users, tasks and seed
# everywhere):

# %%
from lab.errors import KernelError
curves = {}
for s in SYSTEMS:
    try:
        pts = []
        for n in grid:
            step(f"{s}, {n} users")
            pts.append(aim.run_load(s, n, jobs=jobs, cpu_profile=cpu_profile, seed=seed,
                                    placement_seed=place))
        curves[s] = pts
    except KernelError as e:        # on a profile other than the paper's: reported, left out
        if cpu_profile == "pentium-133" or s == "linux":
            raise
        print(f"{s} fails on {cpu_profile} and is left out: {type(e).__name__}: {e}")
        res.stats[f"{s}.failed"] = f"{type(e).__name__}: {e}"
SYSTEMS = tuple(s for s in SYSTEMS if s in curves)
mhz = curves["linux"][0].mhz
print(f"{'system':18} {'users':>5} {'CPU ms/job':>10} {'disk ms/job':>11} {'jobs/min':>9}")
for s in SYSTEMS:
    for pt in curves[s]:
        print(f"{s:18} {pt.users:5} {pt.cpu_cycles / mhz / 1e3:10.1f} "
              f"{pt.disk_cycles / mhz / 1e3:11.1f} {pt.jobs_per_minute:9.1f}")

# %% [markdown]
# Paper and simulation side by side: the maximum throughput, and the slowdown relative to
# Linux (how much longer a run takes: X_linux / X − 1), averaged over the loads 1..max and at
# the largest load.

# %%
sd = aim.slowdowns(curves)
pct = lambda x: "-" if x is None else f"{x:.1%}"
top = {s: float(aim.curve(curves[s])[1].max()) for s in SYSTEMS}
print(f"{'system':18} {'max jobs/min':>12} {'paper':>6} {'avg slowdown':>13} {'paper':>6} "
      f"{'at max load':>12} {'paper':>6}")
for s in SYSTEMS:
    avg, last = sd.get(s, (0.0, 0.0))
    pa = paper["slowdown_vs_linux_average_over_loads"].get(s)
    pm = paper["slowdown_vs_linux_at_max_load"].get(s)
    print(f"{s:18} {top[s]:12.1f} {paper['max_jobs_per_minute'][s]:6} {avg:13.1%} "
          f"{pct(pa):>6} {last:12.1%} {pct(pm):>6}")
for s in SYSTEMS:
    res.add_row("max jobs per minute", s, "jobs/min", top[s], paper["max_jobs_per_minute"][s],
                "prediction")
for s in SYSTEMS[1:]:
    res.add_row("slowdown vs Linux, average over loads", s, "fraction", sd[s][0],
                paper["slowdown_vs_linux_average_over_loads"][s], "prediction")
    # at another top load than the paper's 140 it is another number: shown, not scored
    at_140 = grid[-1] == 140
    res.add_row(f"slowdown vs Linux, at load {grid[-1]}", s, "fraction", sd[s][1],
                paper["slowdown_vs_linux_at_max_load"][s],
                "prediction" if at_140 else "illustration",
                note=None if at_140 else "paper's value is at load 140: shown, not scored")
for s in SYSTEMS:
    for pt in curves[s]:
        res.add_row(f"jobs per minute at {pt.users} users", s, "jobs/min", pt.jobs_per_minute,
                    None, "prediction")
        res.stats[f"{s}.users{pt.users}.cpu_ms_per_job"] = pt.cpu_cycles / mhz / 1e3
        res.stats[f"{s}.users{pt.users}.disk_ms_per_job"] = pt.disk_cycles / mhz / 1e3
for k, v in curves["linux"][-1].counts.items():
    res.stats[f"per_job.{k}"] = v

# %%
fig, (a8, a9) = plt.subplots(1, 2, figsize=(10.5, 3.8))
colours = {"linux": "#333333", "l4linux": "#1f77b4", "mklinux_in_kernel": "#d62728",
           "mklinux_user": "#ff7f0e"}
names = {"linux": "Linux", "l4linux": "L4Linux", "mklinux_in_kernel": "MkLinux (in-kernel)",
         "mklinux_user": "MkLinux (user)"}
for s in SYSTEMS:
    n, jpm = aim.curve(curves[s])
    a9.plot(n, jpm, color=colours[s], label=names[s])
    a9.plot([p.users for p in curves[s]], [p.jobs_per_minute for p in curves[s]], "o",
            color=colours[s], ms=4)
    a9.axhline(paper["max_jobs_per_minute"][s], color=colours[s], ls=":", lw=1)
    a8.plot(n, n / jpm * 60, color=colours[s], label=names[s])
a9.set_xlabel("AIM load (simulated users)")
a9.set_ylabel("jobs per minute")
a9.set_ylim(0, None)
a9.set_title("Fig. 9: throughput (dotted: paper's maximum)")
a9.legend(fontsize=8, loc="lower right")
a8.set_xlabel("AIM load (simulated users)")
a8.set_ylabel("real time for one job per user (s)")
a8.set_title(f"Fig. 8: real time per run ({cpu_profile})")
a8.legend(fontsize=8)
fig.tight_layout()
res.add_figure(fig, "aim.png")
res.write()

# %% [markdown]
# Where a job's CPU time goes at the largest load, in milliseconds per job, and what each
# system adds to Linux's (the same system calls, faults and processes on every system):

# %%
last = {s: curves[s][-1] for s in SYSTEMS}
print("per job: " + ", ".join(f"{k} {v:.0f}" for k, v in last["linux"].counts.items()))
cats = sorted({k for s in SYSTEMS for k in last[s].by_category if k != "disk"})
print(f"{'category':14}" + "".join(f"{s[:14]:>16}" for s in SYSTEMS))
for k in cats:
    vals = [last[s].by_category.get(k, 0) / mhz / 1e3 for s in SYSTEMS]
    if max(vals) >= 0.05:
        print(f"{k:14}" + "".join(f"{v:16.1f}" for v in vals))
user = last["linux"].by_category.get("user", 0)
print(f"user instructions: {user / last['linux'].cpu_cycles:.0%} of Linux's CPU demand")
for s in SYSTEMS[1:]:
    print(f"{s:18} adds {(last[s].cpu_cycles - last['linux'].cpu_cycles) / mhz / 1e3:6.1f} ms "
          f"per job ({last[s].cpu_cycles / last['linux'].cpu_cycles - 1:.1%} CPU)")
x1 = {s: aim.curve(curves[s], [1])[1][0] for s in SYSTEMS}
print("at one user (disk and CPU take turns): " +
      ", ".join(f"{s} {x1['linux'] / x1[s] - 1:.1%}" for s in SYSTEMS[1:]))
print("simulated slowdown at the largest load below the paper's:",
      {s: sd[s][1] < paper["slowdown_vs_linux_at_max_load"][s] for s in SYSTEMS[1:]})
order = lambda v: sorted(SYSTEMS, key=lambda s: -v[s])
print("same order of the systems as the paper:", order(top) == order(paper["max_jobs_per_minute"]))

# %% [markdown]
# **Reading the result.**  The check above compares the order of the systems with the paper's:
# Linux first, L4Linux close behind, the two MkLinux variants well below, the user-level server
# last.  The shape differs: in the model the throughput reaches its plateau within a few users,
# where the paper's Linux needs about 30.  With two queueing centres and no think time, mean
# value analysis saturates as soon as one user's disk wait can be covered by another's
# computing; real AIM users also wait for the disk queue (seeks grow with it), for the inode
# and bitmap writes a synchronous write adds, for each other's locks and for the timer, and a
# run ends only when its slowest user is done — none of which this model has.  Where the
# slowdowns are smaller than the paper's (checked above), the reason is the one of the compile
# experiment: a job's CPU demand is dominated by user instructions (printed above), and the
# kernel-side share, built from path lengths fitted on micro-benchmarks or estimated, is
# small; what the kernel does not
# model — timer interrupts, the process switch on every disk wait, bdflush — costs the
# microkernel systems most (each is an address-space switch and a TLB flush on L4Linux, a Mach
# message on MkLinux).  In the paper the MkLinux slowdowns averaged over loads are smaller than
# at the largest load: at low load the disk, equally slow on every system, takes part of each
# job's time.  The model dilutes the slowdown the same way, but only at the first few loads
# (printed above: the slowdown at one user), because its plateau comes so early; averaged over
# 1..max the two hardly differ.  The absolute jobs per minute
# rest on the estimated size of a job (AIM's own job normalisation is not reproduced), so only
# the ratios between systems are predictions worth comparing.

# %%
# NBVAL_IGNORE_OUTPUT
aim.ThroughputView(curves, paper_max=paper["max_jobs_per_minute"])
