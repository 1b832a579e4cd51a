"""A reference-model test of native Linux's process life cycle and scheduler (Linux 2.0's
kernel/fork.c, kernel/exit.c, kernel/sched.c, fs/exec.c; the lab's scheduling policy of
lab/mono/sched.py's docstring).

hypothesis draws random *process trees*: programs of getpid, getppid, fork (a child running
its own program), exit, wait4, sched_yield, open and execve.  An interpreter runs each on
`boot("linux")` and records one global trace, in the order things happen (only one process
runs at a time, so the order is the scheduler's): who did what and what it got (pids, errno
names, status words, argv).  `Oracle` -- plain Python written from the rules below, sharing
no code with lab.mono's sched, process or syscalls -- runs the same tree on its own FIFO run
queue and predicts the trace, the order in which zombies are reaped, and that every frame
comes back once all processes are gone.

Rules the model states:
  * pids: get_pid hands out last_pid + 1; the first process spawned after boot is 2 (init is
    1), and no pid is handed out twice in a run (Linux 2.0 wraps at PID_MAX = 32768; no
    drawn run gets near it).  getpid is the pid, getppid the parent's pid, 1
    once the parent has exited (orphans are reparented to init).
  * fork returns the child's pid in the parent; the child starts its own program (its
    "return value 0").  It shares the parent's open files (descriptors kept).
  * exit(n) / returning n from the program: the status word is (n & 0xFF) << 8 (exit's
    argument is truncated to 8 bits: exit(256) is 0, exit(-1) 255); a process killed by a
    signal (a load at address 0: SIGSEGV) has the signal's number as its status word.
  * wait4(pid, WNOHANG?): the children considered are all (pid -1), the one whose pid is
    given, those in the caller's process group (pid 0) or in group -pid (pid < -1; the
    spawned process leads a group, its descendants inherit it: there is no setpgid); none
    is ECHILD (a pid that is not a child -- oneself, the parent, a reaped child,
    a pid never used -- included).  Among them Linux 2.0 scans its children list from the
    youngest (p_cptr, then p_osptr) and reaps the first zombie: (its pid, its status), and
    the zombie is gone (a second wait4 for it is ECHILD).  None a zombie: WNOHANG returns
    (0, 0), else the caller sleeps until a child exits and scans again.
    Options other than WNOHANG, WUNTRACED and __WCLONE are EINVAL (after the status word's
    check, before any child is looked at); WUNTRACED changes nothing (no process is ever
    stopped); __WCLONE waits for clone()d children only, and there are none: ECHILD.
  * A child that exits before its parent waits stays a zombie (holding its kernel stack)
    until the wait4; a process whose parent is gone is reaped by init at once; a zombie
    whose parent exits is reaped by init then.
  * Scheduling (lab policy, sched.py): one FIFO run queue, no preemption.  fork puts the
    child at the tail and the parent keeps running; sched_yield puts the caller at the tail
    and runs the head (itself again if nobody else is runnable); wait4 that sleeps runs the
    head; a child's exit wakes its parent if it sleeps in wait4 (the parent joins the tail),
    then the head runs.
  * execve: a missing file is ENOENT, a directory or a device EACCES (not a regular file), a
    regular file that is no executable image ENOEXEC (an empty one too); on success the pid
    stays, the open descriptors stay, the new program gets argv as passed.  (Specific
    tests: copy_strings takes the file name and the arguments into MAX_ARG_PAGES = 32
    pages, E2BIG when they do not fit, checked before ENOEXEC; a single argument may be
    longer than PATH_MAX.)
  * NR_TASKS = 512 task slots (the idle task and init hold two; zombies keep theirs): a fork
    with all taken is EAGAIN and uses up no pid.  (Specific test: a fork that finds no
    frame is ENOMEM and gives back all it took.)
  * pid wrap (specific test): past PID_MAX - 1 get_pid starts again from the bottom and
    skips every pid in use as a process's or as a process group's.
"""
import os
from collections import deque

import pytest
from hypothesis import event, example, given, settings, strategies as st

from lab.errors import KernelError
from lab.linux import boot
from lab.mono.programs import ProgramImage, image_contents
from mono_helpers import allocated_frames, kept_frames

EXAMPLES = int(os.environ.get("PROCMODEL_EXAMPLES", 250))
MAIN_PID = 2                    # the first process spawned after boot (init is 1)
GHOST = 30000                   # a pid never handed out in these runs
MODEL_BIN = "/bin/model"        # an executable whose main interprets a program of the tree
DATA_FILE = "/tmp/data"         # a regular file that is not an executable image
EXEC_TARGETS = {"model": MODEL_BIN, "simple": "/bin/simple", "missing": "/bin/nope",
                "dir": "/tmp", "dev": "/dev/null", "data": DATA_FILE, "empty": "/tmp/empty"}
MAX_FD_PROBE = 8
SIGSEGV = 11
WNOHANG, WUNTRACED, WCLONE = 1, 2, 0x80000000     # wait4's options (WCLONE: __WCLONE)
NR_TASKS = 512                  # Linux 2.0's task[] slots (the idle task and init hold two)


def _status(n):
    return (n & 0xFF) << 8


# ====================================================================== the model
class MProc:
    def __init__(self, pid, parent, fds):
        self.pid, self.parent = pid, parent
        self.pgrp = parent.pgrp if parent else pid      # no setpgid: one group per spawn
        self.children = []              # oldest first (the model scans them reversed)
        self.state = "runnable"
        self.status = None
        self.fds = set(fds)
        self.forked = []                # pids this process forked, in order
        self.gen = None


class Oracle:
    """Linux 2.0's process life cycle and the lab's FIFO scheduler as plain Python."""

    def __init__(self):
        self.last_pid = 1
        self.procs = {}
        self.runq = deque()
        self.trace = []
        self.reaped = []

    def spawn(self, ops):
        p = self._new(None, {0, 1, 2})
        p.gen = self._body(p, ops, ("m",))
        self.runq.append(p)

    def _new(self, parent, fds):
        self.last_pid += 1
        p = MProc(self.last_pid, parent, fds)
        self.procs[p.pid] = p
        return p

    def run(self):
        while self.runq:
            cur = self.runq.popleft()
            cur.state = "running"
            for _ in cur.gen:           # it yielded (sched_yield: it is at the tail) or slept
                if cur.state == "running":
                    continue            # yield with nobody else runnable: itself again
                break
        assert not [p for p in self.procs.values() if p.state != "zombie"]

    def _yield(self, p):
        """sched_yield: to the tail; the head runs (True if that is someone else)."""
        self.runq.append(p)
        p.state = "runnable"
        head = self.runq.popleft()
        if head is p:
            p.state = "running"
            return False
        self.runq.appendleft(head)
        return True

    def _log(self, key, what, result):
        self.trace.append((key, what, result))

    def _body(self, p, ops, key, argv=None, code=0):
        if argv is not None:
            self._log(key, "argv", tuple(argv))
        for i, op in enumerate(ops):
            name, a = op[0], op[1:]
            if name == "getpid":
                self._log(key, name, p.pid)
            elif name == "getppid":
                self._log(key, name, p.parent.pid if p.parent else 1)
            elif name == "open":
                fd = min(set(range(300)) - p.fds)
                p.fds.add(fd)
                self._log(key, name, fd)
            elif name == "fds":
                self._log(key, name, tuple(sorted(f for f in p.fds if f < MAX_FD_PROBE)))
            elif name == "yield":
                if self._yield(p):
                    p.state = "yielded"
                    yield
                self._log(key, name, 0)     # (traced when the call returns)
            elif name == "fork":
                sub, ret = a
                c = self._fork(p, sub, ret, key + (i,))
                self._log(key, name, c.pid if c else ("error", "EAGAIN"))
            elif name == "flood":
                n, made = a[0], 0
                for j in range(n):
                    if not self._fork(p, (), j, key + (i, j)):
                        break
                    made += 1
                self._log(key, name, (made, None if made == n else "EAGAIN"))
            elif name == "exit":
                self._log(key, name, None)
                self._exit(p, a[0])
                return
            elif name == "segv":
                self._log(key, name, None)
                self._exit(p, 0, signal=SIGSEGV)
                return
            elif name == "wait":
                pid = _wait_pid(a[0], p.pid, p.parent.pid if p.parent else 1, p.forked,
                                p.pgrp)
                while True:
                    opts = _options(a[1]) & 0xFFFFFFFF
                    if opts & ~(WNOHANG | WUNTRACED | WCLONE):
                        self._log(key, name, ("error", "EINVAL"))
                        break
                    kids = [c for c in reversed(p.children)
                            if (pid == -1 or c.pid == pid
                                or (pid == 0 and c.pgrp == p.pgrp) or c.pgrp == -pid)
                            and not opts & WCLONE]          # (no clone()d child here)
                    if not kids:
                        self._log(key, name, ("error", "ECHILD"))
                        break
                    z = next((c for c in kids if c.state == "zombie"), None)
                    if z is not None:
                        p.children.remove(z)
                        self._reap(z)
                        self._log(key, name, ("ok", z.pid, z.status))
                        break
                    if opts & WNOHANG:
                        self._log(key, name, ("ok", 0, 0))
                        break
                    p.state = "sleeping"
                    yield
            elif name == "exec":
                target, extra, sub = a
                if target == "missing":
                    self._log(key, name, ("error", "ENOENT"))
                elif target in ("dir", "dev"):
                    self._log(key, name, ("error", "EACCES"))
                elif target in ("data", "empty"):
                    self._log(key, name, ("error", "ENOEXEC"))
                elif target == "simple":
                    self._exit(p, 0)
                    return
                else:
                    argv = ["model", *extra]
                    yield from self._body(p, sub, key + ("x",), argv)
                    return
            else:
                raise AssertionError(name)
        self._exit(p, code)     # the program returned: exit with what it returned

    def _fork(self, p, sub, ret, key):
        """The child (at the tail of the run queue), or None: task[] is full (EAGAIN)."""
        if len(self.procs) + 2 >= NR_TASKS:     # zombies hold slots; + idle task and init
            return None
        c = self._new(p, p.fds)
        c.gen = self._child(c, sub, ret, key)
        p.children.append(c)
        p.forked.append(c.pid)
        self.runq.append(c)
        return c

    def _child(self, c, sub, ret, key):
        yield from self._body(c, sub, key, code=ret)

    def _exit(self, p, code, signal=0):
        """do_exit: orphans to init (their zombies reaped), wake the waiting parent."""
        p.status = signal & 0x7F if signal else _status(code)
        p.state = "zombie"
        for c in p.children:
            c.parent = None
            if c.state == "zombie":
                self._reap(c)
        p.children = []
        if p.parent is None:
            self._reap(p)
        elif p.parent.state == "sleeping":
            p.parent.state = "runnable"
            self.runq.append(p.parent)

    def _reap(self, z):
        self.reaped.append(z.pid)
        del self.procs[z.pid]


def _options(o):
    """A wait op's options: True/False for WNOHANG or not, else the int itself."""
    return (WNOHANG if o else 0) if isinstance(o, bool) else o


def _wait_pid(sel, me, parent, forked, pgrp):
    """The pid a wait op asks for."""
    if sel == "any":
        return -1
    if sel == "group":
        return 0
    if sel == "mygroup":
        return -pgrp
    if sel == "othergroup":
        return -GHOST
    if sel == "self":
        return me
    if sel == "parent":
        return parent
    if sel == "ghost":
        return GHOST
    return forked[sel % len(forked)] if forked else GHOST


def run_model(prog):
    o = Oracle()
    o.spawn(prog)
    o.run()
    return o.trace, o.reaped


# ====================================================================== the kernel side
# The child's program's return value for fork ops lives in the op: ("fork", sub, ret); the
# child program ends by returning it (process_main exits with it).
def _body_kernel(p, ops, key, trace, argv=None):
    if argv is not None:
        trace.append((key, "argv", tuple(argv)))
    for i, op in enumerate(ops):
        name, a = op[0], op[1:]
        if name == "getpid":
            trace.append((key, name, p.getpid()))
        elif name == "getppid":
            trace.append((key, name, p.getppid()))
        elif name == "open":
            trace.append((key, name, p.open("/dev/null")))
        elif name == "fds":
            trace.append((key, name, tuple(fd for fd in range(MAX_FD_PROBE) if _is_open(p, fd))))
        elif name == "yield":
            trace.append((key, name, p.sched_yield()))
        elif name == "fork":
            sub, ret = a
            try:
                pid = p.fork(_child_kernel, sub, ret, key + (i,), trace)
            except KernelError as e:
                trace.append((key, name, ("error", e.code)))
                continue
            trace.append((key, name, pid))
            _FORKED.setdefault(p.proc.pid, []).append(pid)
        elif name == "flood":
            n, made, err = a[0], 0, None
            for j in range(n):
                try:
                    pid = p.fork(_child_kernel, (), j, key + (i, j), trace)
                except KernelError as e:
                    err = e.code
                    break
                _FORKED.setdefault(p.proc.pid, []).append(pid)
                made += 1
            trace.append((key, name, (made, err)))
        elif name == "exit":
            trace.append((key, name, None))
            p.exit(a[0])
        elif name == "segv":
            trace.append((key, name, None))
            p.load(0, 4)                        # SIGSEGV kills the process: no return
            raise AssertionError("a load at address 0 returned")
        elif name == "wait":
            pid = _wait_pid(a[0], p.proc.pid, _true_ppid(p), _FORKED.get(p.proc.pid, []),
                            MAIN_PID)       # (every process is in the spawned one's group)
            try:
                got = p.wait4(pid, _options(a[1]))
                trace.append((key, name, ("ok", *got)))
            except KernelError as e:
                trace.append((key, name, ("error", e.code)))
        elif name == "exec":
            target, extra, sub = a
            _PENDING[p.proc.pid] = (sub, key + ("x",), trace)
            try:
                p.execve(EXEC_TARGETS[target], ["model", *extra])
            except KernelError as e:
                _PENDING.pop(p.proc.pid)
                trace.append((key, name, ("error", e.code)))
        else:
            raise AssertionError(name)
    return 0


def _true_ppid(p):
    """The parent's pid as the model knows it (no system call: getppid is traced)."""
    par = p.proc.parent
    return par.pid if par is not None else 1


def _is_open(p, fd):
    try:
        p.fstat(fd)
        return True
    except KernelError:
        return False


def _child_kernel(p, sub, ret, key, trace):
    _body_kernel(p, sub, key, trace)
    return ret


_PENDING = {}                   # pid -> (program, key, trace) for the exec'd /bin/model
_FORKED = {}                    # pid -> pids it forked (kept across execve, as the model)


def _model_main(p, argv):
    sub, key, trace = _PENDING.pop(p.proc.pid)
    _body_kernel(p, sub, key, trace, argv)
    return 0


def _install(k):
    simple = k.images["/bin/simple"]
    img = ProgramImage(MODEL_BIN, simple.text_bytes, simple.data_bytes, simple.bss_bytes,
                       simple.text_touched, simple.data_touched, simple.startup_instructions,
                       _model_main)
    k.fs.create(MODEL_BIN, image_contents(img, k.m.fmt.page_size), image=img)
    k.fs.create(DATA_FILE, b"plain data, no binary format knows it\n" * 10)
    k.fs.create(EXEC_TARGETS["empty"], b"")


def run_kernel(prog, system="linux"):
    """Run `prog` on `system` (native Linux by default); (trace, reaped pids in order, frames
    lost)."""
    k = boot(system, log_syscalls=False)
    _install(k)
    before = allocated_frames(k)
    trace = []
    _FORKED.clear()
    k.spawn(_body_kernel, prog, ("m",), trace, name="prog")
    k.run()
    assert not k.procs.live(), k.ps()
    assert not list(k.procs), k.ps()            # zombies too: all reaped
    reaped = [e.args["pid"] for e in k.m.events.find("reap", kernel="linux")]
    lost = sorted(allocated_frames(k) - before - kept_frames(k))
    return trace, reaped, lost


def check(prog, system="linux"):
    expect, ereaped = run_model(prog)
    got, reaped, lost = run_kernel(prog, system)
    for i, (m, g) in enumerate(zip(expect, got)):
        assert m == g, f"step {i}: kernel {g!r}, model {m!r}\nkernel {got}\nmodel {expect}"
    assert len(got) == len(expect), (got, expect)
    assert reaped == ereaped, (reaped, ereaped)
    assert lost == [], f"frames lost: {lost}"
    event(f"processes: {'1' if len(reaped) == 1 else '2-5' if len(reaped) <= 5 else '6+'}")
    for _k, what, r in expect:
        if what == "flood" or (what == "fork" and isinstance(r, tuple)):
            event(f"fork: {'EAGAIN (task[] full)' if (r[1] if what == 'flood' else r) else 'ok'}")
        if what == "argv":
            event("exec: ok")
        if what in ("wait", "exec"):
            event(f"{what}: {r[0]} {r[1] if r[0] == 'error' else ('0' if r[1] == 0 else 'pid')}")
    return expect


# ====================================================================== strategies
exit_codes = st.one_of(st.integers(0, 3), st.sampled_from([255, 256, 257, 511, -1, -256, 1000]))
wait_sels = st.one_of(st.just("any"), st.integers(0, 3),
                      st.sampled_from(["self", "parent", "ghost", "group", "mygroup",
                                       "othergroup"]))
leaf_ops = st.one_of(
    st.tuples(st.just("getpid")), st.tuples(st.just("getppid")),
    st.tuples(st.just("yield")), st.tuples(st.just("yield")),
    st.tuples(st.just("wait"), wait_sels, st.booleans()),
    st.tuples(st.just("wait"), st.just("any"), st.just(False)),
    st.tuples(st.just("wait"), st.sampled_from(["any", 0]), st.just(True)),
    st.tuples(st.just("wait"), wait_sels,
              st.sampled_from([WUNTRACED, WNOHANG | WUNTRACED, WCLONE, WCLONE | WNOHANG, 4,
                               8, -1, 1 << 30])),
    st.tuples(st.just("open")), st.tuples(st.just("fds")),
    st.tuples(st.just("flood"), st.sampled_from([2] + [4] * 24 + [520])),
    st.tuples(st.just("exit"), exit_codes),
    st.tuples(st.just("segv")),
    st.tuples(st.just("exec"), st.sampled_from(["missing", "dir", "dev", "data", "empty",
                                                 "simple"]),
              st.just(()), st.just(())),
)


def _extend(inner):
    prog = st.lists(inner, max_size=5).map(tuple)
    forks = [st.tuples(st.just("fork"), prog, exit_codes) for _ in range(6)]
    return st.one_of(
        *forks,                                 # (a successful exec ends its program)
        st.tuples(st.just("exec"), st.just("model"),
                  st.lists(st.sampled_from(["a", "-c", "x y", "", "arg"]), max_size=3).map(tuple),
                  prog),
    )


ops = st.recursive(leaf_ops, _extend, max_leaves=30)
programs = st.lists(ops, min_size=1, max_size=9).map(tuple)


# ====================================================================== the tests
@settings(derandomize=True, max_examples=EXAMPLES, deadline=None)
@given(programs)
@example((("fork", (("getppid",), ("yield",), ("getppid",)), 3),       # run order, zombie
          ("getpid",), ("yield",), ("wait", "any", True), ("wait", 0, False),
          ("wait", 0, False), ("wait", "any", True)))
@example((("fork", (("fork", (("yield",), ("yield",), ("getppid",)), 4),   # orphan to init
                    ("exit", 257)), 9),
          ("wait", "any", False), ("yield",), ("yield",), ("wait", "any", False)))
@example((("fork", (), 1), ("fork", (), 2), ("fork", (("yield",),), 3),  # youngest zombie first
          ("yield",), ("yield",), ("wait", "any", False), ("wait", "any", False),
          ("wait", "any", False), ("wait", "any", False)))
@example((("open",), ("exec", "missing", (), ()), ("exec", "dir", (), ()),  # execve
          ("exec", "data", (), ()), ("exec", "model", ("-c", "x y"),
                                     (("getpid",), ("fds",), ("fork", (("getppid",),), -1),
                                      ("wait", "any", False))),))
@example((("fork", (("fork", (("fork", (("fork", (("fork", (("fork", (("getppid",),), 6),  # deep
                                                      ("wait", "any", True)), 5),
                                            ("yield",), ("getpid",)), 4),
                                  ("wait", "group", False), ("getppid",)), 3),
                        ("exit", 1000)), 2),
           ("wait", 0, False), ("getppid",)), 1),
          ("wait", "mygroup", False), ("flood", 4), ("wait", "othergroup", True),
          ("wait", "any", WUNTRACED), ("wait", 2, WCLONE | WNOHANG), ("wait", "any", -1)))
def test_linux_processes_follow_the_model(prog):
    """Random process trees over fork/exit/wait4/getpid/getppid/sched_yield/execve give the
    global trace (what each process got, in the order the scheduler ran them) and the order
    of reaping that the model of Linux 2.0's rules and the lab's FIFO scheduler predicts
    (module docstring); every pid is reaped once and every frame comes back."""
    check(prog)


@pytest.mark.parametrize("system", ["l4linux", "mklinux_user"])
@settings(derandomize=True, max_examples=60, deadline=None)
@given(prog=programs.filter(lambda p: "flood" not in repr(p)))
def test_the_microkernel_platforms_run_process_trees_as_the_model_says(system, prog):
    """The same trees on L4Linux and user-level MkLinux: Linux's scheduler decides the order
    there too (the platform only switches as told), so the trace, the order of reaping and
    the frame count are the model's (no task[] floods: hundreds of tasks are slow here)."""
    check(prog, system)


# ====================================================================== specific cases
def _run(program, *args):
    k = boot("linux", log_syscalls=False)
    _install(k)
    proc = k.spawn(program, *args)
    k.run()
    return k, proc


def test_wait4_any_reaps_the_youngest_zombie_first():
    """Linux 2.0's sys_wait4 walks the children list from p_cptr, the youngest child, along
    p_osptr: with several zombies, wait4(-1) returns the most recently forked one first
    (the lab returned the oldest)."""
    def prog(p):
        pids = [p.fork(lambda c, n: n, n) for n in (1, 2, 3)]
        p.sched_yield()                         # all three run and exit: three zombies
        got = [p.wait4(-1) for _ in pids]
        return pids, got

    _k, proc = _run(prog)
    pids, got = proc.result
    assert got == [(pids[2], 3 << 8), (pids[1], 2 << 8), (pids[0], 1 << 8)]


def test_fork_with_task_slots_full_is_eagain_and_consumes_no_pid():
    """Linux 2.0 has NR_TASKS = 512 task slots; the idle task and init hold two, zombies keep
    theirs until reaped.  A root process's fork with every slot taken is EAGAIN
    (find_empty_process runs before get_pid: no pid is used up); once a zombie is reaped
    the next fork succeeds with the next pid."""
    def prog(p):
        pids = []
        while True:
            try:
                pids.append(p.fork(lambda c: 0))
            except KernelError as e:
                err = e.code
                break
        p.sched_yield()                         # every child runs and becomes a zombie
        again = _errno(p.fork, lambda c: 0)
        reaped = p.wait4(pids[0])[0]
        nxt = p.fork(lambda c: 0)
        while True:
            try:
                p.wait4(-1)
            except KernelError:
                break
        return len(pids), err, again, reaped, pids[-1], nxt

    k, proc = _run(prog)
    made, err, again, reaped, last, nxt = proc.result
    assert made == NR_TASKS - 3                 # idle, init and this process hold three
    assert err == again == "EAGAIN"
    assert reaped == MAIN_PID + 1 and nxt == last + 1
    assert not list(k.procs)


def _errno(fn, *args):
    try:
        return fn(*args)
    except KernelError as e:
        return e.code


def test_execve_passes_an_argument_longer_than_path_max():
    """PATH_MAX bounds a file name (getname), not an argument: 2.0's copy_strings copies each
    argument whole, bounded only by the total (the lab said ENAMETOOLONG)."""
    long_arg = "x" * 3000

    def prog(p):
        _PENDING[p.proc.pid] = ((), ("t",), [])
        p.execve(MODEL_BIN, ["model", long_arg, "b"])

    k, proc = _run(prog)
    exe = k.m.events.find("exec", kernel="linux")
    assert [e.args["argv"] for e in exe] == [("model", long_arg, "b")]
    assert proc.exit_status == 0


def _big_exec(p, path, sizes):
    """execve(path, argv) with argv strings of the given lengths built in the heap (more
    than the C library's argument page holds): the errno, or None if it succeeded."""
    buf = p.malloc(sum(sizes) + len(sizes) + 16)
    vas, at = [], buf
    for i, n in enumerate(sizes):
        p.store(at, bytes([97 + i % 26]) * n + b"\0")
        vas.append(at)
        at += n + 1
    p._reset_args()
    pva = p.string(path, keep=True)
    try:
        p._sys("execve", pva, vas)
    except KernelError as e:
        return e.code
    except BaseException:       # the ExecImage marker: the new image would run
        return None


def test_execve_with_128k_of_strings_is_e2big_before_enoexec():
    """do_execve copies the file name and then the arguments into MAX_ARG_PAGES = 32 pages
    (128 KB less the 4-byte argv pointer) before it looks for a binary format: a total of
    131068 bytes or more (each string with its NUL) is E2BIG, a byte less fits; a regular
    file that is no image gives E2BIG, not ENOEXEC, when the strings do not fit; the process
    lives on."""
    room = 32 * 4096 - 4

    def over(path):                             # exactly `room` bytes in all
        return [4000] * 32 + [room - (len(path) + 1) - 32 * 4001 - 1]

    def prog(p):
        return (_big_exec(p, DATA_FILE, over(DATA_FILE)), _big_exec(p, DATA_FILE, [10]),
                _big_exec(p, MODEL_BIN, over(MODEL_BIN)),
                _big_exec(p, MODEL_BIN, over(MODEL_BIN)[:-1] + [10 ** 5]), p.getpid())

    k, proc = _run(prog)
    assert proc.result == ("E2BIG", "ENOEXEC", "E2BIG", "E2BIG", MAIN_PID)
    assert _total(over(DATA_FILE), len(DATA_FILE) + 1) == room
    assert not k.m.events.find("exec", kernel="linux")


def _total(sizes, name):
    return name + sum(n + 1 for n in sizes)


def test_execve_just_under_128k_of_strings_runs_the_image():
    """131067 bytes of file name and arguments (with NULs) fit in MAX_ARG_PAGES: the exec
    succeeds and the new program gets every argument."""
    room = 32 * 4096 - 4
    name = len(MODEL_BIN) + 1
    sizes = [4000] * 32 + [room - 1 - name - 32 * 4001 - 1]

    def prog(p):
        _PENDING[p.proc.pid] = ((), ("t",), [])
        return _big_exec(p, MODEL_BIN, sizes)

    k, proc = _run(prog)
    exe = k.m.events.find("exec", kernel="linux")
    assert len(exe) == 1 and [len(a) for a in exe[0].args["argv"]] == sizes
    assert _total(sizes, name) == room - 1 and proc.exit_status == 0


def test_wait4_zero_and_minus_pgrp_wait_for_the_process_group():
    """sys_wait4(0) waits for a child in the caller's process group, wait4(-g) for one in
    group g (fork inherits the group; the spawned process leads its own): both reap the
    child here (the lab said ECHILD to 0 and to every negative pid but -1); a group
    nobody is in is ECHILD."""
    def prog(p):
        a = p.fork(lambda c: 5)
        b = p.fork(lambda c: 6)
        return (p.wait4(0), p.wait4(-p.proc.pid), _errno(p.wait4, -GHOST),
                _errno(p.wait4, 0), (b, a))

    _k, proc = _run(prog)
    first, second, other, none, (b, a) = proc.result
    assert first == (b, 6 << 8) and second == (a, 5 << 8)
    assert other == none == "ECHILD"


def test_get_pid_wraps_to_the_lowest_free_pid_skipping_pids_and_groups_in_use():
    """get_pid: last_pid + 1; past PID_MAX - 1 = 32767 it starts again from the bottom
    (pid 1 is init), skipping every pid in use as a process's pid or as a process group's
    (a group outlives its leader while members remain)."""
    k = boot("linux", log_syscalls=False)
    leader = k.spawn(_leave_a_member)       # pid 2, group 2: forks pid 4 and exits

    def prog(p):
        p.kernel.procs.last_pid = 32766
        return [p.fork(lambda c: 0) for _ in range(2)], p.proc.pid

    main = k.spawn(prog)                    # pid 3
    k.run()
    got, me = main.result
    assert (leader.pid, me) == (MAIN_PID, MAIN_PID + 1)
    # 2: the leader is gone but its member (pid 4) is still in group 2; 3: this process;
    # 4: the member
    assert got == [32767, MAIN_PID + 3]
    assert not list(k.procs)


def _leave_a_member(c):
    c.fork(_linger)
    return 0


def _linger(c):
    for _ in range(6):
        c.sched_yield()
    return 0


def test_wait4_refuses_unknown_options_and_wclone_finds_no_child():
    """sys_wait4 accepts WNOHANG, WUNTRACED and __WCLONE only (anything else, -1 too, is
    EINVAL, even with a zombie to reap); __WCLONE looks only for clone()d children, and this
    lab makes none: ECHILD; WUNTRACED reaps as usual (the lab ignored every option but
    WNOHANG)."""
    def prog(p):
        a = p.fork(lambda c: 1)
        p.sched_yield()
        return (_errno(p.wait4, -1, 4), _errno(p.wait4, a, -1), _errno(p.wait4, -1, WCLONE),
                p.wait4(-1, WUNTRACED | WNOHANG), a)

    _k, proc = _run(prog)
    bad, minus1, wclone, reaped, a = proc.result
    assert (bad, minus1, wclone) == ("EINVAL", "EINVAL", "ECHILD")
    assert reaped == (a, 1 << 8)


def test_wait4_checks_the_status_word_first_and_accepts_none():
    """sys_wait4 verifies the status word's address before anything else: an unmapped one
    is EFAULT even with no child or bad options (not ECHILD, not EINVAL); a NULL status
    pointer is allowed and the child is reaped all the same."""
    def prog(p):
        bad = 0x1000                            # below the text: no mapping
        first = (_errno(p._sys, "wait4", -1, bad, 0), _errno(p._sys, "wait4", -1, bad, 4))
        a = p.fork(lambda c: 3)
        p.sched_yield()
        return first, _errno(p._sys, "wait4", a, bad, 0), p._sys("wait4", -1, 0, 0), a

    _k, proc = _run(prog)
    first, with_child, reaped, a = proc.result
    assert first == ("EFAULT", "EFAULT") and with_child == "EFAULT"
    assert reaped == (a, 3 << 8)


def test_fork_without_memory_is_enomem_and_gives_every_frame_back():
    """do_fork that finds no frame (page directory, kernel stack, page tables of the copy)
    fails with ENOMEM and its bad_fork_cleanup gives back everything it took: the parent
    runs on, no half-made child stays in the process table, every frame comes back (the lab
    raised the engine's OutOfFrames and left a runnable ghost: a deadlock)."""
    from lab.mono.abi import MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE

    def prog(p, leave):
        mem = p.kernel.m.memory
        va = p.mmap(0, 4000 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
        i = 0
        while mem.free_frames > leave:          # eat frames until `leave` are free
            p.touch(va + i * 4096, 1, write=True)
            i += 1
        r = _errno(p.fork, lambda c: 0)
        return r, (p.wait4(r)[0] if isinstance(r, int) else None), p.getpid()

    outcomes = set()
    for leave in range(8):
        k = boot("linux", log_syscalls=False, memory_bytes=12 << 20)
        before = allocated_frames(k)
        proc = k.spawn(prog, leave)
        k.run()
        r, reaped, pid = proc.result
        assert r == "ENOMEM" or r == reaped == pid + 1, (leave, proc.result)
        outcomes.add(r if r == "ENOMEM" else "ok")
        assert not list(k.procs)
        assert sorted(allocated_frames(k) - before - kept_frames(k)) == []
    assert outcomes == {"ENOMEM", "ok"}
