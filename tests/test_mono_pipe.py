"""Pipes: one page of buffer, real bytes in order, blocking readers and writers, SIGPIPE."""
from lab.mono.abi import PIPE_BUF, WIFEXITED, WTERMSIG
from lab.mono.errors import BrokenPipe
from mono_helpers import run_program, events

DATA = bytes((i * 31 + 7) & 0xFF for i in range(3 * PIPE_BUF + 1000))


def _writer(c, rfd, wfd):
    c.close(rfd)
    buf = c.malloc(len(DATA))
    c.store(buf, DATA)
    n = c.write(wfd, buf, len(DATA))            # more than PIPE_BUF: sleeps while full
    c.close(wfd)
    return n == len(DATA)


def _reader(p):
    rfd, wfd = p.pipe()
    pid = p.fork(_writer, rfd, wfd)
    p.close(wfd)
    buf, got = p.malloc(1000), b""
    while True:
        n = p.read(rfd, buf, 1000)
        if n == 0:                              # end of file: the writer closed
            break
        got += p.peek(buf, n)
    p.wait4(pid)
    return got


def test_pipe_carries_real_bytes_in_order_across_blocking():
    """A write larger than the pipe's page fills it, wakes the reader and sleeps until there
    is room again; reads take what is there; every byte arrives, in order, then EOF."""
    linux, proc = run_program(_reader)
    assert proc.result == DATA
    sleeps = [(e.args["pid"], e.args["on"]) for e in events(linux, "sleep")]
    writer = events(linux, "fork")[0].args["child"]
    assert (proc.pid, "pipe_read") in sleeps and (writer, "pipe_write") in sleeps
    assert sum(1 for s in sleeps if s == (writer, "pipe_write")) >= 3


def _trace(linux):
    return [(e.operation, tuple(sorted(e.args.items()))) for e in linux.m.events
            if e.operation in ("sleep", "wakeup", "switch", "syscall")]


def test_blocking_and_waking_is_deterministic():
    """The same program gives the same interleaving of sleeps, wake-ups and switches, and
    the same cycle count, every time (no wall clock decides anything)."""
    a, pa = run_program(_reader)
    b, pb = run_program(_reader)
    assert _trace(a) == _trace(b) and a.m.cycles == b.m.cycles
    assert pa.result == pb.result == DATA


def test_write_without_reader_kills_with_sigpipe():
    """Writing to a pipe whose read end is closed sends SIGPIPE (Linux 2.0 pipe_write), and
    its default action kills the writer: the EPIPE the call returns is never seen, a program
    that catches the error dies all the same, and wait4 reports termination by signal 13.
    What a writer put in before the last reader left stays in the pipe."""
    def writer(p, w, buf, n, caught):
        try:
            p.write(w, buf, n)
        except BrokenPipe:
            caught.append(True)
        return 0                                # never the exit status: killed

    def prog(p, caught):
        rfd, wfd = p.pipe()
        p.close(rfd)
        buf = p.malloc(8)
        pid = p.fork(writer, wfd, buf, 8, caught)
        return p.wait4(pid)

    caught = []
    linux, proc = run_program(prog, caught)
    pid, status = proc.result
    assert not WIFEXITED(status) and WTERMSIG(status) == 13 and caught == [True]
    assert [e.args["pid"] for e in events(linux, "sigpipe")] == [pid]


def test_a_pipe_round_trip_is_four_calls_four_copies_two_switches():
    """lmbench lat_pipe: one round trip of a token = write and read in each process (four
    system calls, four copies of the token through the pipe's page) and two switches."""
    def echo(c, r, w):
        buf = c.malloc(4)
        for _ in range(2):
            c.read(r, buf, 4)
            c.write(w, buf, 4)

    def prog(p):
        down, up = p.pipe(), p.pipe()
        pid = p.fork(echo, down[0], up[1])
        buf = p.malloc(4)
        p.store(buf, b"ping")
        log = p.kernel.m.events
        for _ in range(2):                      # warm-up, then the measured round trip
            n0 = len(log)
            with p.measure() as r:
                p.write(down[1], buf, 4)
                p.read(up[0], buf, 4)
        p.wait4(pid)
        return [e.operation for e in log.events[n0:]], r.by_category["copy"], p.peek(buf, 4)
    linux, proc = run_program(prog)
    ops, copy_cycles, token = proc.result
    window = ops[:ops.index("switch", ops.index("switch") + 1) + 1]
    assert window.count("syscall") == 4 and window.count("switch") == 2
    assert copy_cycles == 4 * 4 / linux.m.profile["copy_bytes_per_cycle"]
    assert token == b"ping"


def test_a_switch_pushes_and_pops_the_next_tasks_kernel_stack():
    """Linux's switch and the system calls around it push onto the next task's kernel stack
    and pop off it: stores, then loads, on the same lines of that task's frame (on the
    Pentium a push to a line not in L1 allocates nothing, so the pop misses again)."""
    def echo(c, r, w):
        buf = c.malloc(4)
        c.read(r, buf, 4)
        c.write(w, buf, 4)

    touched = []

    def prog(p):
        arch = p.kernel.arch
        real = arch.touch_kernel_data
        arch.touch_kernel_data = lambda pa, n, kind="r": (touched.append((pa, n, kind)),
                                                          real(pa, n, kind))[1]
        down, up = p.pipe(), p.pipe()
        pid = p.fork(echo, down[0], up[1])
        buf = p.malloc(4)
        stacks = {q.kstack for q in p.kernel.procs if q.kstack}
        p.write(down[1], buf, 4)
        p.read(up[0], buf, 4)
        p.wait4(pid)
        del arch.touch_kernel_data
        return stacks
    linux, proc = run_program(prog)
    n = linux.image_profile["kernel_stack_bytes"]
    stacks = [t for t in touched if t[0] in proc.result]
    assert len(stacks) >= 4
    for w, r in zip(stacks[::2], stacks[1::2]):
        assert w == (w[0], n, "w") and r == (w[0], n, "r")


def test_a_write_of_exactly_pipe_buf_bytes_is_atomic():
    """A write of at most PIPE_BUF bytes -- PIPE_BUF itself included -- is atomic (Linux
    2.0 pipe_write: it waits until that much is free, then copies it all): with one byte
    already in the pipe, a PIPE_BUF write sleeps instead of putting in the PIPE_BUF - 1
    bytes that fit, so the reader never sees part of it next to other data."""
    def reader(c, rfd, wfd, seen):
        c.close(wfd)
        buf = c.malloc(2 * PIPE_BUF)
        while True:
            n = c.read(rfd, buf, 2 * PIPE_BUF)
            if n == 0:
                return
            seen.append(c.peek(buf, n))

    def prog(p, seen):
        rfd, wfd = p.pipe()
        buf = p.malloc(PIPE_BUF)
        p.store(buf, b"a")
        assert p.write(wfd, buf, 1) == 1
        pid = p.fork(reader, rfd, wfd, seen)
        p.close(rfd)
        p.store(buf, b"b" * PIPE_BUF)
        n = p.write(wfd, buf, PIPE_BUF)          # 4095 bytes free: sleeps, all or nothing
        p.close(wfd)
        p.wait4(pid)
        return n

    seen = []
    linux, proc = run_program(prog, seen)
    assert proc.result == PIPE_BUF
    assert seen == [b"a", b"b" * PIPE_BUF]


def test_a_writer_waiting_on_a_full_pipe_gets_sigpipe_when_no_reader_is_left():
    """pipe_write checks for readers inside its wait loop too: a write to a full pipe whose
    read end is closed does not sleep (nobody would ever make room) -- it sends SIGPIPE and
    the writer dies of it (Linux 2.0 fs/pipe.c: `if (!PIPE_READERS(*inode))` before
    interruptible_sleep_on)."""
    def writer(c, rfd, wfd):
        c.close(rfd)
        buf = c.malloc(PIPE_BUF)
        assert c.write(wfd, buf, PIPE_BUF) == PIPE_BUF         # fills the page
        c.sched_yield()                                         # the parent closes its end
        c.write(wfd, buf, 1)                                    # full, no reader: SIGPIPE
        return 0

    def prog(p):
        rfd, wfd = p.pipe()
        pid = p.fork(writer, rfd, wfd)
        p.close(wfd)
        p.sched_yield()                                         # the child fills the pipe
        p.close(rfd)
        return p.wait4(pid)

    linux, proc = run_program(prog)
    pid, status = proc.result
    assert not WIFEXITED(status) and WTERMSIG(status) == 13
    assert [e.args["pid"] for e in events(linux, "sigpipe")] == [pid]
    assert not events(linux, "sleep", pid=pid)


def test_a_reader_sleeping_on_an_empty_pipe_wakes_to_eof_when_the_last_writer_closes():
    """Closing a pipe end wakes the pipe's wait queue (pipe_release): a reader asleep on an
    empty pipe wakes when the last writer goes and its read returns 0, end of file --
    it does not sleep forever."""
    def writer(c, rfd, wfd):
        c.close(rfd)
        c.close(wfd)                            # the last writer: no byte written
        return 0

    def prog(p):
        rfd, wfd = p.pipe()
        pid = p.fork(writer, rfd, wfd)
        p.close(wfd)
        buf = p.malloc(16)
        n = p.read(rfd, buf, 16)                # sleeps: empty, the child still writes
        p.wait4(pid)
        return n

    linux, proc = run_program(prog)
    assert proc.result == 0
    assert (proc.pid, "pipe_read") in [(e.args["pid"], e.args["on"])
                                       for e in events(linux, "sleep")]
    assert events(linux, "wakeup", pid=proc.pid)
