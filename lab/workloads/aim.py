"""The AIM Multiuser Benchmark Suite VII (S97 §5.2, Figs. 8-9) as a job mix on the Linux user
layer.

AIM VII's "load mix modelling": N simulated users run concurrently, each a process doing jobs;
a job is a pass through the mix of tasks of lab/profiles/aim.json (weights: one task per AIM VII
subtest, grouped into kinds) -- compute, memory (a mapping grown, touched, removed), pipes to
a child, loopback datagrams,
file writes and reads through the buffer cache, synchronous file writes, file creation, fork,
exec, shell, and a compilation with the tool chain of `lab.workloads.compile`.  Throughput is
jobs completed per minute.

The disk.  This kernel charges a disk request as a synchronous wait *in the caller's time*
(`lab.mono.bcache.Disk._wait` adds `disk_ms_per_request` to the "disk" category): the CPU is
blocked and no other user runs meanwhile.  A real kernel overlaps one user's disk wait with
the others' computing.  The driver therefore measures, per job,

    D_cpu   = cycles of the measured window minus its "disk" cycles   (CPU demand)
    D_disk  = the window's "disk" cycles: the sync_disk tasks' fsync writes (one request per
              dirty data block; ext2 would write the inode's block too, which lives in memory
              here) and any write-back or read a full buffer cache causes

and computes the throughput at N users by exact mean value analysis of a closed network of two
queueing centres (CPU, disk) with N customers and no think time (`mva`).  The demands are
measured *at* load N, so what N does inside the kernel -- Linux 2.0's schedule() examines
every runnable task (one `schedule_goodness` path each), N address spaces and process-table
entries -- is in them.  The process switch a real disk wait causes is not (the kernel does
not switch on a disk wait), nor any timer preemption (the kernel has no timer).

Sampling.  Simulating every job of every user at 140 users is out of budget.  At load N the
driver forks N users; the tasks of `jobs` jobs (shuffled copies of the mix) are dealt
round-robin among them (at high load some users get none).  When every user is set up and
waits at the start barrier (a pipe, as AIM starts its users together), the driver runs two
rounds: a null round (every user wakes, reports on a second pipe, waits again) and the real
round (every user wakes, runs its share, reports).  The demand is the real round's cycles minus
the null round's: what remains is the jobs' work, done while all N users exist and the working
ones are runnable together; the start and report of the N users cancel out.  At loads above
the number of tasks the extra users only wake and report, so the demands stop changing there;
`curve` interpolates the demands between the simulated loads and runs MVA at every load.

    point = run_load("l4linux", users=30)          # -> LoadPoint (demands per job, counts)
    points = throughput_curve("linux", loads=(1, 10, 30))
    loads, jpm = curve(points)                      # jobs per minute at every load 1..max
"""
from dataclasses import dataclass, field

import numpy as np

from engine.errors import OutOfFrames
from lab.kprofile import load_kernel_profile
from lab.mono.errors import ENOMEM, Deadlock
from lab.mono.abi import (AF_INET, MAP_ANONYMOUS, MAP_PRIVATE, O_CREAT, O_TRUNC, O_WRONLY,
                          PROT_READ, PROT_WRITE, SOCK_DGRAM)
from lab.workloads import compile as cc
from lab.workloads.compile import Locality, work

PROFILE = "aim"
KINDS = ("compute", "memory", "pipe", "net", "disk", "sync_disk", "files", "fork", "exec",
         "shell", "compile")
ROOT = "/aim"
PORT_BASE = 20000


def characteristics(profile=PROFILE):
    return load_kernel_profile(profile)


def job_mix(c):
    """The tasks of one job, in the profile's order (kind repeated by its weight)."""
    return [k for k in KINDS for _ in range(int(c[f"weight_{k}"]))]


def deal(c, users, tasks, seed):
    """`tasks` tasks from shuffled copies of the mix, dealt round-robin to `users` users."""
    if not isinstance(users, int) or users < 1:
        raise ValueError(f"deal: users {users!r} must be an int >= 1")
    if not isinstance(tasks, int) or tasks < 1:
        raise ValueError(f"deal: tasks {tasks!r} must be an int >= 1")
    mix, rng = job_mix(c), np.random.default_rng([seed, 3])
    seq = []
    while len(seq) < tasks:
        seq += [mix[i] for i in rng.permutation(len(mix))]
    seq = seq[:tasks]
    return [seq[u::users] for u in range(users)]


def mva(d_cpu, d_disk, users):
    """Throughput (jobs per time unit of the demands) of a closed network with a CPU and a
    disk (queueing centres, demands per job) and `users` customers without think time:
    exact mean value analysis."""
    if users < 1 or d_cpu < 0 or d_disk < 0 or d_cpu + d_disk <= 0:
        raise ValueError(f"mva: users {users} >= 1 and demands {d_cpu}, {d_disk} >= 0, not both 0")
    q_c = q_d = 0.0
    x = 0.0
    for n in range(1, users + 1):
        r_c, r_d = d_cpu * (1 + q_c), d_disk * (1 + q_d)
        x = n / (r_c + r_d)
        q_c, q_d = x * r_c, x * r_d
    return x


# ---------------------------------------------------------------------- the tasks
def _exit0(c):
    return 0


def _drain(c, rfd, wfd, size):
    c.close(wfd)
    buf = c.malloc(size)
    while c.read(rfd, buf, size):
        pass


class Aim:
    """N users and their tasks on one booted LinuxKernel."""

    def __init__(self, kernel, users, tasks, seed=1, profile=PROFILE):
        self.k = kernel
        self.c = characteristics(profile)
        self.users, self.tasks, self.seed = users, tasks, seed
        self.shares = deal(self.c, users, tasks, seed)
        self.buf = int(self.c["stdio_buffer_bytes"])
        self.window = self.null = None
        self.counts = self.null_counts = None
        self.build = cc.Build(kernel, seed=seed)
        c = self.c
        self.loc = Locality(int(self.build.c["round_instructions"]),
                            int(c["compute_code_hot_bytes"]),
                            int(c["compute_code_pages"]), int(c["compute_data_hot_bytes"]),
                            int(c["compute_data_pages"]))

    def install(self):
        b = self.build
        b.install_tools()
        self.unit = b.add_unit(f"{ROOT}/src/util.c", int(self.c["compile_lines"]),
                               int(self.c["compile_headers"]))
        for u in range(self.users):
            self.k.fs.mkdir(f"{ROOT}/u{u}")
        # what the tasks read or exec: cached before the measurement, as in a running system
        self.files = ([cc.PROGRAMS[t] for t in ("gcc", "cpp", "cc1", "as")] +
                      ["/lib/libc.so.5", "/bin/sh", "/bin/simple", f"{cc.LIBEXEC}/specs",
                       self.unit.path] + list(self.unit.headers))

    # -- the user's tasks: t_<kind>(p, u, state) --
    def t_compute(self, p, u, s):
        code = (p.kernel.layout(p.proc)["text"][0], p.proc.image.text_touched)
        work(p, int(self.c["compute_instructions"]), self.loc, code, s["array"], rng=s["rng"])

    def t_memory(self, p, u, s):
        # brk_test/page_test grow and shrink the heap with brk; here an anonymous mapping is
        # made and removed instead, because this kernel's brk does not call the platform's
        # map_region hook when it grows (MkLinux would fault on a heap regrown after a shrink)
        n = int(self.c["memory_bytes"])
        a = p.mmap(0, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
        p.touch(a, n, write=True, stride=p.page)
        p.munmap(a, n)

    def t_pipe(self, p, u, s):
        r, w = p.pipe()
        pid = p.fork(_drain, r, w, self.buf)
        p.close(r)
        left = int(self.c["pipe_bytes"])
        while left > 0:
            left -= p.write(w, s["io"], min(self.buf, left))
        p.close(w)
        p.wait4(pid)

    def t_net(self, p, u, s):
        s["port"] += 1
        port = PORT_BASE + u * 100 + s["port"] % 100
        fd = p.socket(AF_INET, SOCK_DGRAM)
        p.bind(fd, port)
        n = int(self.c["net_message_bytes"])
        for _ in range(int(self.c["net_messages"])):
            p.sendto(fd, s["io"], n, port)
            p.recvfrom(fd, s["io"], n)
        p.close(fd)

    def _write_file(self, p, u, s):
        """Write the user's file (truncated) in stdio pieces; the descriptor, still open."""
        fd = p.open(f"{ROOT}/u{u}/file", O_WRONLY | O_CREAT | O_TRUNC)
        left = int(self.c["file_bytes"])
        while left > 0:
            left -= p.write(fd, s["io"], min(self.buf, left))
        return fd

    def t_disk(self, p, u, s):
        p.close(self._write_file(p, u, s))
        fd = p.open(f"{ROOT}/u{u}/file")
        while p.read(fd, s["io"], self.buf):
            pass
        p.close(fd)

    def t_sync_disk(self, p, u, s):
        fd = self._write_file(p, u, s)
        p.fsync(fd)                     # sync_disk_*: the data is on the disk before close
        p.close(fd)

    def t_files(self, p, u, s):
        for j in range(int(self.c["files_creates"])):
            path = f"{ROOT}/u{u}/f{j}"
            p.close(p.open(path, O_WRONLY | O_CREAT | O_TRUNC))
            p.stat(path)

    def t_fork(self, p, u, s):
        for _ in range(int(self.c["fork_children"])):
            p.wait4(p.fork(_exit0))

    def t_exec(self, p, u, s):
        for _ in range(int(self.c["exec_count"])):
            p.wait4(p.fork(cc._exec, "/bin/simple", ["/bin/simple"]))

    def t_shell(self, p, u, s):
        p.wait4(p.fork(cc._exec, "/bin/sh", ["/bin/sh", "-c", "/bin/simple"]))

    def t_compile(self, p, u, s):
        argv = self.build.gcc_argv(self.unit, obj=f"{ROOT}/u{u}/util.o")
        p.wait4(p.fork(cc._exec, cc.PROGRAMS["gcc"], argv))

    # -- the processes --
    def user(self, p, u, gos, done, leave):
        """One simulated user: set up, take part in the null round, run its share when the
        real round starts, report, wait to leave."""
        s = {"rng": np.random.default_rng([self.seed, 5, u]), "port": 0}
        s["io"] = p.malloc(self.buf)
        if self.shares[u]:                          # a user with tasks: its buffers in use
            n = int(self.c["compute_data_pages"]) * p.page
            a = p.malloc(n)
            p.touch(s["io"], self.buf, write=True)
            p.touch(a, n, write=True)
            s["array"] = (a, n)
        p.write(done, s["io"], 1)                   # ready
        for go, share in zip(gos, ((), self.shares[u])):   # the null round, then the real one
            p.read(go, s["io"], 1)
            for kind in share:
                getattr(self, f"t_{kind}")(p, u, s)
            p.write(done, s["io"], 1)
        p.read(leave, s["io"], 1)
        return 0

    def _round(self, p, go, done, buf):
        """Release every user (one byte each on `go`), wait until all have reported on `done`;
        returns the measurement and the event counts of the round."""
        m, n0, got = self.k.m, len(self.k.m.events), 0
        with p.measure() as r:
            p.write(go, buf, self.users)
            while got < self.users:
                got += p.read(done, buf, self.users - got)
        return r, cc.event_counts(m.events.events[n0:])

    def driver(self, p):
        """AIM's multitask: warm the cache, fork the users, start them together twice -- a null
        round (start and report only) and the real one.  The users' exits are not simulated
        (N exits through an O(N) scheduler cost wall time and measure nothing)."""
        buf = p.malloc(64 * 1024)
        for path in self.files:                     # the tools and programs are cached
            fd = p.open(path)
            while p.read(fd, buf, 64 * 1024):
                pass
            p.close(fd)
        # one start pipe per round: a user done early must not take a byte meant for another
        gos, done, leave = (p.pipe(), p.pipe()), p.pipe(), p.pipe()
        for u in range(self.users):
            p.fork(self.user, u, (gos[0][0], gos[1][0]), done[1], leave[0])
        p.store(buf, b"g" * self.users)
        got = 0
        while got < self.users:                     # every user set up and at the barrier
            got += p.read(done[0], buf, self.users - got)
        self.null, self.null_counts = self._round(p, gos[0][1], done[0], buf)
        self.window, self.counts = self._round(p, gos[1][1], done[0], buf)
        return 0            # the users stay parked on `leave`: run_load unwinds them


# ---------------------------------------------------------------------- the experiment
@dataclass
class LoadPoint:
    """One load: demands per job measured with `users` users running `tasks` tasks."""
    system: str
    users: int
    tasks: int
    jobs: float
    cpu_cycles: float               # per job
    disk_cycles: float              # per job (the kernel's disk waits, fsyncs among them)
    mhz: float
    counts: dict = field(default_factory=dict)        # per job
    by_category: dict = field(default_factory=dict)   # per job

    @property
    def jobs_per_minute(self):
        x = mva(self.cpu_cycles, self.disk_cycles, self.users)      # jobs per cycle
        return x * self.mhz * 1e6 * 60

    @property
    def seconds_per_run(self):
        """Fig. 8: real time for every user to do one job."""
        return self.users / (self.jobs_per_minute / 60)


FORKING = ("pipe", "fork", "exec", "shell", "compile")    # the tasks that fork children
CHILDREN_AT_ONCE = 4        # the compile task's gcc driver and its three tools
SYSTEM_THREADS = 8          # sigma0, the Linux server, init, the driver, ... (a margin)


def l4_threads(c, users, jobs):
    """The L4 threads alive at once at load `users` running `jobs` jobs' worth of tasks (an
    upper bound): under L4Linux every process is an L4 task of one thread -- the users, the
    driver, and the children of the forking tasks, at most CHILDREN_AT_ONCE for each user
    running one."""
    forking = jobs * sum(k in FORKING for k in job_mix(c))
    return SYSTEM_THREADS + users + CHILDREN_AT_ONCE * min(users, forking)


def run_load(system, users, jobs=1, cpu_profile="pentium-133", seed=1, profile=PROFILE,
             **boot_options):
    """Measure the demands per job at load `users`, running `jobs` jobs' worth of tasks.
    `boot_options` go to `lab.linux.boot` (e.g. placement_seed=N: frames in a scattered
    order).  On L4Linux the L4 kernel gets more than its default TCBs when the load needs
    them (`l4_threads`): a real L4 has thousands of thread numbers.  A load that fits the
    default keeps it, and so its frame layout and numbers."""
    from lab.l4.kernel import DEFAULT_MAX_THREADS
    from lab.linux import boot, platform_class
    from lab.linux.l4linux import L4LinuxArch
    if not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"run_load: jobs {jobs!r} must be an int >= 1")
    if not isinstance(users, int) or users < 1:
        raise ValueError(f"run_load: users {users!r} must be an int >= 1")
    c = characteristics(profile)
    mix = len(job_mix(c))
    need = l4_threads(c, users, jobs)
    if issubclass(platform_class(system), L4LinuxArch) and need > DEFAULT_MAX_THREADS:
        arch = dict(boot_options.get("arch_options") or {})
        arch.setdefault("max_threads", need)
        boot_options = {**boot_options, "arch_options": arch}
    k = boot(system, cpu_profile=cpu_profile, seed=seed, **boot_options)
    a = Aim(k, users, jobs * mix, seed=seed, profile=profile)
    try:
        a.install()
        drv = k.spawn(a.driver, name="multitask")
        k.run(until=drv)
    except (OutOfFrames, ENOMEM, Deadlock) as e:
        # a user killed by oom() never reports: the driver then waits forever (Deadlock)
        if isinstance(e, Deadlock) and not k.m.events.find("oom", kernel="linux"):
            raise
        raise ENOMEM(f"run_load: {users} users ({jobs} jobs) do not fit in the "
                     f"{k.m.memory.size >> 20} MB of {cpu_profile} on {system} (no swapping "
                     f"is modelled): {type(e).__name__}: {str(e)[:200]}") from e
    k.shutdown()                                    # the parked users' threads
    w, w0, prof = a.window, a.null, k.m.profile
    cats = {key: v - w0.by_category.get(key, 0) for key, v in w.by_category.items()}
    disk = cats.get("disk", 0)
    cpu = w.cycles - w0.cycles - disk
    return LoadPoint(system, users, jobs * mix, jobs, cpu / jobs, disk / jobs,
                     float(prof["clock_mhz"]),
                     {key: (v - a.null_counts[key]) / jobs for key, v in a.counts.items()},
                     {key: v / jobs for key, v in cats.items() if v})


def throughput_curve(system, loads=(1, 10, 30, 60, 100, 140), jobs=1, **kw):
    """LoadPoints of `system` at each load."""
    return [run_load(system, n, jobs=jobs, **kw) for n in loads]


def curve(points, loads=None):
    """(loads, jobs per minute): MVA at every load from 1 to the largest simulated one (or at
    `loads`), the demands interpolated linearly in N between the simulated loads (held
    constant beyond them)."""
    pts = sorted(points, key=lambda pt: pt.users)
    n = np.array([pt.users for pt in pts], float)
    loads = np.arange(1, int(n[-1]) + 1) if loads is None else np.asarray(loads)
    dc = np.interp(loads, n, [pt.cpu_cycles for pt in pts])
    dd = np.interp(loads, n, [pt.disk_cycles for pt in pts])
    per_min = pts[0].mhz * 1e6 * 60
    return loads, np.array([mva(c, d, int(u)) * per_min for c, d, u in zip(dc, dd, loads)])


def slowdowns(curves, base="linux"):
    """{system: (average over loads 1..max, at the largest load)} of X_base / X_system - 1
    (the time a run takes relative to the base system: S97's 'slowdown')."""
    ref = curve(curves[base])[1]
    out = {}
    for sysname, pts in curves.items():
        if sysname != base:
            s = ref / curve(pts)[1] - 1
            out[sysname] = (float(np.mean(s)), float(s[-1]))
    return out


# ---------------------------------------------------------------------- live view
def curve_data(curves):
    """Pure view data: {system: (loads, jobs per minute)} of every system's MVA curve."""
    return {s: curve(pts) for s, pts in curves.items()}


def ThroughputView(curves, paper_max=None, title="AIM: jobs per minute vs load"):
    """A bqplot figure like S97 Fig. 9: one line per system (MVA over the simulated demands),
    dots at the simulated loads, the paper's maximum as a dashed line in the same colour."""
    from bqplot import Axis, Figure, LinearScale, Lines, Scatter
    colours = ["#333333", "#1f77b4", "#d62728", "#ff7f0e", "#2ca02c"]
    x, y = LinearScale(min=0), LinearScale(min=0)
    marks = []
    for i, (s, (loads, jpm)) in enumerate(curve_data(curves).items()):
        col = colours[i % len(colours)]
        marks.append(Lines(x=loads, y=jpm, scales={"x": x, "y": y}, colors=[col], labels=[s],
                           display_legend=True))
        pts = curves[s]
        marks.append(Scatter(x=[p.users for p in pts], y=[p.jobs_per_minute for p in pts],
                             scales={"x": x, "y": y}, colors=[col], default_size=24))
        if paper_max and paper_max.get(s) is not None:
            marks.append(Lines(x=[0, loads[-1]], y=[paper_max[s]] * 2, scales={"x": x, "y": y},
                               colors=[col], line_style="dashed"))
    return Figure(marks=marks, title=title,
                  axes=[Axis(scale=x, label="load (simulated users)"),
                        Axis(scale=y, orientation="vertical", label="jobs per minute")])
