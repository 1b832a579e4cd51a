"""The AIM VII-like multiuser workload (S97 §5.2, Figs. 8-9): job mix, users, disk overlap."""
import pytest
from hypothesis import given, settings, strategies as st

from lab.kprofile import overrides
from lab.workloads import aim

NONE = {f"weight_{k}": 0 for k in aim.KINDS}


def mix(**weights):
    """An aim profile override with only the given task kinds (weights per job)."""
    return {"aim": dict(NONE, **{f"weight_{k}": v for k, v in weights.items()})}


def load(system, users, jobs=1, profile_override=None, **kw):
    with overrides(profile_override or {}):
        return aim.run_load(system, users, jobs=jobs, **kw)


# ---------------------------------------------------------------------- pure parts
@settings(max_examples=200, deadline=None)
@given(cpu=st.floats(1.0, 1e9), disk=st.floats(0.0, 1e9), users=st.integers(1, 150))
def test_mva_throughput_rises_with_users_up_to_the_bottleneck(cpu, disk, users):
    """One user cannot overlap CPU and disk: X(1) = 1/(D_cpu + D_disk).  More users never
    lower the throughput, which stays below the bottleneck's 1/max(D)."""
    x1, xn = aim.mva(cpu, disk, 1), aim.mva(cpu, disk, users)
    assert x1 == pytest.approx(1 / (cpu + disk))
    assert x1 <= xn * (1 + 1e-12)
    assert xn <= (1 / max(cpu, disk)) * (1 + 1e-9)


def test_mva_rejects_impossible_demands():
    """Bad input fails loudly, naming the values."""
    with pytest.raises(ValueError, match="users 0"):
        aim.mva(1.0, 1.0, 0)
    with pytest.raises(ValueError, match="-1"):
        aim.mva(-1.0, 1.0, 3)


@settings(max_examples=100, deadline=None)
@given(users=st.integers(1, 150), tasks=st.integers(1, 300), seed=st.integers(0, 100))
def test_deal_hands_out_every_task_once_evenly(users, tasks, seed):
    """The sample's tasks come from whole shuffled copies of the mix and are dealt
    round-robin: every task goes to one user, shares differ by at most one task."""
    c = aim.characteristics()
    shares = aim.deal(c, users, tasks, seed)
    assert len(shares) == users and sum(len(s) for s in shares) == tasks
    assert max(map(len, shares)) - min(map(len, shares)) <= 1
    full = (tasks // len(aim.job_mix(c))) * aim.job_mix(c)
    dealt = sorted(t for s in shares for t in s)
    for kind in set(full):
        assert dealt.count(kind) >= full.count(kind)


def test_mix_has_one_task_per_aim_subtest_plus_a_compile():
    """The default job mix: one task per AIM VII subtest (53 of them, the IPC/disk/shell
    groups included) and one compilation."""
    c = aim.characteristics()
    m = aim.job_mix(c)
    assert len(m) == 57 and m.count("compile") == 1 and m.count("sync_disk") == 3


def test_slowdown_is_the_ratio_of_run_times():
    """S97's slowdown is X_linux / X_system - 1 (how much longer a run takes), averaged over
    the loads 1..max and at the largest load."""
    pt = lambda s, n, cpu: aim.LoadPoint(s, n, 57, 1.0, cpu, 0.0, 100.0)
    curves = {"linux": [pt("linux", 1, 100.0), pt("linux", 4, 100.0)],
              "mklinux_user": [pt("mklinux_user", 1, 150.0), pt("mklinux_user", 4, 150.0)]}
    avg, top = aim.slowdowns(curves)["mklinux_user"]
    assert avg == pytest.approx(0.5) and top == pytest.approx(0.5)


# ---------------------------------------------------------------------- the simulation
def test_fsync_blocks_are_the_disk_demand():
    """A sync_disk task's fsync writes each dirty block as one disk request, waited for in
    the caller's time: the disk demand is those requests, and the CPU demand keeps only CPU
    work (the bwrite paths among it)."""
    pt = load("linux", 1, profile_override=mix(sync_disk=2))
    c = aim.characteristics()
    blocks = 2 * -(-c["file_bytes"] // 4096)
    per_request = 12.0 * 1000 * 133
    assert pt.disk_cycles == pytest.approx(blocks * per_request)
    assert 0 < pt.cpu_cycles < pt.disk_cycles


def test_forks_per_job_follow_the_mix():
    """Process creation is real: a pipe task forks a reader, a fork task its children, an
    exec task forks and execs, a shell forks the shell, which forks the command."""
    ov = mix(pipe=1, fork=1, exec=1, shell=1)
    pt = load("linux", 2, profile_override=ov)
    with overrides(ov):
        c = aim.characteristics()
    assert pt.counts["forks"] == 1 + c["fork_children"] + c["exec_count"] + 2
    assert pt.counts["execs"] == c["exec_count"] + 2


def test_throughput_rises_from_one_user_then_flattens():
    """With one user the disk and the CPU take turns; with several, one user's fsync
    overlaps another's computing: jobs per minute rise, then level off below the bottleneck."""
    ov = mix(compute=4, sync_disk=1, pipe=1)
    pts = [load("linux", n, profile_override=ov) for n in (1, 4)]
    x1, x4 = (p.jobs_per_minute for p in pts)
    assert x4 > 1.2 * x1
    bottleneck = 60 * 133e6 / max(pts[1].cpu_cycles, pts[1].disk_cycles)
    assert x4 <= bottleneck


def test_null_round_cancels_the_idle_users():
    """Users without a task only wake and report; the null round takes that out, so the
    demand per job at a load above the number of tasks equals the demand at that number."""
    ov = mix(compute=2, pipe=1)
    a, b = load("linux", 3, profile_override=ov), load("linux", 6, profile_override=ov)
    assert b.cpu_cycles == pytest.approx(a.cpu_cycles, rel=0.02)
    assert b.counts["syscalls"] == pytest.approx(a.counts["syscalls"], abs=1)


def test_mklinux_user_needs_more_cpu_per_job_than_linux():
    """The same job on MkLinux (user server) makes the same system calls but each goes
    through Mach IPC to the server task: the CPU demand per job is higher."""
    ov = mix(pipe=1, fork=1, files=1)
    nat, mk = load("linux", 1, profile_override=ov), load("mklinux_user", 1, profile_override=ov)
    assert mk.counts["syscalls"] == nat.counts["syscalls"]
    assert mk.cpu_cycles > 1.2 * nat.cpu_cycles


def test_bad_jobs_and_users_are_rejected():
    """Bad input fails loudly, naming the value."""
    with pytest.raises(ValueError, match="jobs 0"):
        aim.run_load("linux", 1, jobs=0)
    with pytest.raises(ValueError, match="users 0"):
        aim.deal(aim.characteristics(), 0, 5, 1)


def test_l4linux_runs_more_users_than_the_default_tcbs():
    """Under L4Linux every Linux process is an L4 task of one thread (S97 §4); a real L4 has
    thousands of thread numbers, so a load beyond the simulated L4's default 256 TCBs (the
    notebook allows 300 users) runs: the kernel is given TCBs for every process alive at once,
    not a failure deep in thread_new."""
    ov = mix(fork=1)
    with overrides(ov):
        c = aim.characteristics()
    assert aim.l4_threads(c, 260, 1) > 260
    pt = load("l4linux", 260, profile_override=ov)
    assert pt.users == 260 and pt.counts["forks"] == c["fork_children"]


def test_a_load_that_does_not_fit_in_memory_is_enomem_naming_the_load():
    """No swapping is modelled: when the users' processes exhaust the machine's frames (a
    user killed by oom() never reports, so the driver would wait forever), the run fails
    with ENOMEM naming the load, the memory and the system -- not an engine OutOfFrames or
    a deadlock report."""
    from lab.mono.errors import ENOMEM
    with pytest.raises(ENOMEM, match="300 users .* 16 MB of vax-8200 on mklinux_user"):
        load("mklinux_user", 300, profile_override=mix(compute=1), cpu_profile="vax-8200")
