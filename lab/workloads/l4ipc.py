"""Pipes and RPC directly on L4 IPC (S97 Table 4), beside the Linux pipes of lmbench.

Three L4-native programs, each measured as a 1-byte ping-pong latency (per round trip) and as
a bandwidth (64 KB blocks, after a warm-up block, like lmbench's bw_pipe):

    "L4 pipe (user-level, on L4 IPC)"   a pipe server task: one thread per pipe holds a buffer
        of PIPE_BUF bytes (4 KB, as Linux 2.0's pipe) and runs Linux 2.0's pipe_read and
        pipe_write logic (their path lengths from lab/profiles/linux.json, executed as user code
        in the server's own 4 KB pages).  write() is an IPC call carrying the data as a string
        (copied into the server's buffer), read() an IPC call whose reply carries the data
        (copied out of it): two copies per byte, as in Linux.  Flow control is L4's own: while
        the buffer holds data the pipe thread receives only from its reader (closed receive),
        so a writer's call waits in the kernel until the reader has drained it.
    "synchronous L4 RPC"   the client calls, the server replies; the data travel as strings
        copied by long IPC (one copy).  Ping-pong: 1 byte each way.
    "synchronous mapping RPC"   the data pages travel as a map item (a flexpage of the
        client's buffer) instead of being copied; the receiver unmaps them (fpage_unmap of
        its own mapping) when done.  Ping-pong: one page mapped each way and unmapped.

Every task's memory comes from a user-level pager (`FramePager`) that places the data buffers
in the physically indexed L2: "disjoint" gives the communicating buffers different L2 colours,
"conflicting" the same ones (a direct-mapped L2 then evicts one with the other).  The paper
gives ranges for the L4 bandwidths; the model's range is the spread over these placements.

The five Linux rows are lmbench's programs on `lab.linux.boot` systems (`linux_pipe`): lat_pipe
with a 1-byte token (`lat_pipe` here: lmbench's loop with the echo child's exit kept out of
the timed rounds) and `lab.workloads.lmbench.bw_pipe` with 64 KB blocks.

    measure("synchronous L4 RPC", "latency", quick=True).value       # -> µs
"""
from dataclasses import dataclass, field
from enum import Enum

from engine import Machine, ops as O
from lab.mono.examples import lat_pipe as _example_lat_pipe
from lab.image import KernelImage
from lab.kprofile import load_kernel_profile
from lab.l4 import (L4Kernel, Pager, Fpage, Message, StringItem, StringBuffer, MapItem,
                    InvalidArgument, ipc_call, ipc_wait, ipc_receive, ipc_send,
                    ipc_reply_and_wait, compute)
from lab.mono.abi import PIPE_BUF

KB = 1024
MB = 1024 * 1024
BLOCK = 64 * KB                 # the benchmark's block (S97 Table 4: "64 KB blocks")
PAGE = 4096

# user virtual addresses (every task is a large space of its own)
CLIENT_BUF = 0x00100000         # the sender's data (aligned for a 64 KB flexpage)
REPLY_BUF = 0x00200000          # where the client receives replies / the reader's buffer
WINDOW = 0x00400000             # receive window for mapped pages (64 KB aligned)
SERVER_BUF = 0x00600000         # the server's receive buffer (RPC) or a pipe's buffer
PIPE_TEXT = 0x01000000          # the pipe server's code (Linux's pipe paths, as user code)
PIPE_DATA = 0x01400000

WRITE, READ, ECHO, SINK = 1, 2, 3, 4      # request words
PATTERN = bytes(range(256)) * (BLOCK // 256)   # what the senders' buffers hold

L4_VARIANTS = ("L4 pipe (user-level, on L4 IPC)", "synchronous L4 RPC",
               "synchronous mapping RPC (maps pages instead of copying; includes unmap)")
LINUX_PIPES = {"Linux pipe": "linux", "L4Linux pipe": "l4linux",
               "L4Linux (trampoline) pipe": "l4linux_trampoline",
               "MkLinux (user) pipe": "mklinux_user",
               "MkLinux (in-kernel) pipe": "mklinux_in_kernel"}
WHATS = ("latency", "bandwidth")


class Placement(Enum):
    DISJOINT = "disjoint"           # the communicating buffers in different L2 colours
    CONFLICTING = "conflicting"     # ... in the same L2 colours


def _placement(p):
    try:
        return p if isinstance(p, Placement) else Placement(p)
    except ValueError:
        raise ValueError(f"placement {p!r} unknown; allowed: "
                         f"{', '.join(x.value for x in Placement)}") from None


def cache_colours(m):
    """Page colours of the machine's last-level cache (1 without caches)."""
    caches = [c for c in m.cache_config if c.get("kind", "unified") != "instr"]
    if not caches:
        return 1
    c = max(caches, key=lambda c: (c.get("level", 1), c["size"]))
    return max(1, c["size"] // c["ways"] // m.fmt.page_size)


# ---------------------------------------------------------------------- memory
class FramePager(Pager):
    """The benchmark tasks' pager: maps a frame for every page a task touches.  Pages of a
    registered buffer (`place`) get frames of consecutive L2 colours from a chosen first
    colour; any other page the next free frame in the machine's order (lowest first, or
    `placement_seed`'s).  Frames come from sigma0 (idempotent: the pager's page at va X is
    frame X)."""

    def __init__(self, kernel):
        super().__init__(kernel, "frames")
        self.colours = cache_colours(kernel.m)
        self.places = []            # (task number, first page, end, first colour)

    def place(self, task, base, nbytes, colour):
        self.places.append((task.number, base, base + nbytes, colour))

    def colour_of(self, task, page):
        for number, lo, hi, c0 in self.places:
            if number == task.number and lo <= page < hi:
                return (c0 + (page - lo) // PAGE) % self.colours
        return None

    def page_fault(self, thread, va, write):
        page = va & ~(PAGE - 1)
        colour = self.colour_of(thread.task, page)
        m = self.k.m
        pa = m.alloc_page() if colour is None else m.alloc_page(colour, self.colours)
        self.acquire(pa)
        return self.map_item(pa, "rwx", send_base=page)     # code too (no-execute formats)


class World:
    """An L4 kernel on a fresh machine with the frame pager; tasks are its clients.
    `placement` colours the registered buffers; `placement_seed` is the Machine's order of
    every other frame (None: lowest first)."""

    def __init__(self, cpu_profile="pentium-133", seed=1, placement="disjoint",
                 placement_seed=None):
        self.placement = _placement(placement)
        self.k = L4Kernel(Machine(cpu_profile, seed=seed, placement_seed=placement_seed))
        self.m = self.k.m
        self.pager = FramePager(self.k)
        self._slot = 0

    def task(self, name, program=None):
        return self.k.task_new(name, pager=self.pager, program=program)

    def buffer(self, task, base, nbytes):
        """Register a data buffer: each one gets its own colours (disjoint) or colour 0 on
        (conflicting)."""
        first = 0
        if self.placement is Placement.DISJOINT:
            first = self._slot
            self._slot += -(-nbytes // PAGE)
        self.pager.place(task, base, nbytes, first)

    def touch(self, task, base, nbytes):
        """Fault the buffer in (set-up, before anything is timed)."""
        self.k.execute(task.thread, O.access("w", O.lines(base, nbytes, PAGE)))

    def fill(self, task, base, nbytes):
        """Fault the buffer in and store the sender's data (PATTERN) into it (set-up)."""
        self.k.store(task.thread, base, PATTERN[:nbytes])


# ---------------------------------------------------------------------- measuring
@dataclass
class Outcome:
    """One measurement: `value` in `unit` (µs per round trip, or MB/s), and where the
    cycles went and what the kernel did (IPCs, string bytes copied, pages mapped, flushes),
    per round trip or per 64 KB block."""
    value: float
    unit: str
    cycles: float
    by_category: dict = field(default_factory=dict)
    events: dict = field(default_factory=dict)


class Clock:
    """Start and stop marks taken by a program (free, like rdtsc)."""

    def __init__(self, m):
        self.m = m
        self.start = self.stop = None

    def mark(self):
        return self.m.by_category()

    def span(self):
        return {k: self.stop[k] - self.start.get(k, 0) for k in self.stop}


def _outcome(w, clock, what, ops, nbytes):
    if clock.start is None or clock.stop is None:
        crashes = [f"{e.args['thread']}: {e.args['error']}"
                   for e in w.m.events.find("thread_crash", kernel="l4")]
        raise RuntimeError(f"{what}: the benchmark did not finish "
                           f"({'; '.join(crashes) or 'no crash logged'})")
    span = clock.span()
    cycles = sum(span.values())
    mhz = w.m.profile["clock_mhz"]
    per_op = ops if what == "latency" else nbytes / BLOCK
    lo, hi = sum(clock.start.values()), sum(clock.stop.values())
    inside = [e for e in w.m.events if lo < e.cycle <= hi and e.kernel == "l4"]
    ev = {"ipc": sum(e.operation == "ipc" for e in inside) / per_op,
          "string_bytes": sum(e.args["string_bytes"] for e in inside
                              if e.operation == "ipc") / per_op,
          "pages_mapped": sum(e.operation == "map" for e in inside) / per_op,
          "flushes": sum(e.operation == "flush" for e in inside) / per_op}
    per = {k: v / per_op for k, v in span.items() if v}
    if what == "latency":
        return Outcome(cycles / ops / mhz, "us", cycles / ops, per, ev)
    return Outcome(nbytes / MB / (cycles / mhz / 1e6), "MB/s", cycles / per_op, per, ev)


def _fpage_for(base, nbytes, rights="r"):
    """The flexpage of `nbytes` from an aligned `base` (a power-of-two number of pages)."""
    k = 12
    while (1 << k) < nbytes:
        k += 1
    if base % (1 << k):
        raise ValueError(f"buffer 0x{base:x} is not aligned to its flexpage of 2**{k} bytes")
    return Fpage(base, k, rights)


# ---------------------------------------------------------------------- synchronous RPC
def _rpc_server(t):
    """Receive a request with its data string; reply with the same bytes (ECHO) or a word."""
    bufs = [StringBuffer(SERVER_BUF, BLOCK)]
    msg = yield ipc_wait(buffers=bufs)
    while True:
        op, n = msg.words[0], msg.words[1]
        reply = Message(n, strings=[StringItem(SERVER_BUF, n)]) if op == ECHO else Message(n)
        msg = yield ipc_reply_and_wait(msg.sender, reply, buffers=bufs)


def _rpc_client(server, size, n, echo, clock):
    def client(t):
        bufs = [StringBuffer(REPLY_BUF, size)] if echo else []
        for i in range(n + 1):
            if i == 1:
                clock.start = clock.mark()
            r = yield ipc_call(server, Message(ECHO if echo else SINK, size,
                                               strings=[StringItem(CLIENT_BUF, size)]),
                               buffers=bufs)
            if r.words[0] != size:
                raise AssertionError(f"rpc: server answered {r.words[0]} bytes of {size}")
        clock.stop = clock.mark()
    return client


def rpc(w, size, n, echo):
    """n synchronous RPCs carrying `size` bytes (after one warm-up call)."""
    srv = w.task("rpc-server", program=_rpc_server)
    w.buffer(srv, SERVER_BUF, BLOCK)
    clock = Clock(w.m)
    cli = w.task("rpc-client")
    w.buffer(cli, CLIENT_BUF, max(size, PAGE))
    w.buffer(cli, REPLY_BUF, max(size, PAGE))
    w.touch(srv, SERVER_BUF, BLOCK)
    w.fill(cli, CLIENT_BUF, max(size, PAGE))
    w.touch(cli, REPLY_BUF, max(size, PAGE))
    w.k.thread_new(cli, "rpc-client.main", pager=w.pager,
                   program=_rpc_client(srv.thread, size, n, echo, clock))
    w.k.run()
    return clock


# ---------------------------------------------------------------------- mapping RPC
def _map_server(t):
    """Receive mapped pages in the window, 'use' them, unmap them (fpage_unmap of its own
    mapping), and reply: with a page of its own mapped back (ECHO) or a word."""
    k = t.kernel
    window = Fpage(WINDOW, 16)
    msg = yield ipc_wait(window=window)
    while True:
        op, n = msg.words[0], msg.words[1]
        for _base, fp in msg.mapped:
            k.fpage_unmap(t.task, fp, rights="rwx", own=True)
        reply = Message(n, items=[MapItem(_fpage_for(SERVER_BUF, n))]) if op == ECHO \
            else Message(n)
        msg = yield ipc_reply_and_wait(msg.sender, reply, window=window)


def _map_client(server, size, n, echo, clock):
    def client(t):
        k = t.kernel
        item = MapItem(_fpage_for(CLIENT_BUF, size))
        window = Fpage(WINDOW, 16) if echo else None
        for i in range(n + 1):
            if i == 1:
                clock.start = clock.mark()
            r = yield ipc_call(server, Message(ECHO if echo else SINK, size, items=[item]),
                               window=window)
            for _base, fp in r.mapped:
                k.fpage_unmap(t.task, fp, rights="rwx", own=True)
        clock.stop = clock.mark()
    return client


def mapping_rpc(w, size, n, echo):
    """n RPCs whose `size` bytes travel as mapped pages, unmapped by the receiver."""
    srv = w.task("map-server", program=_map_server)
    w.buffer(srv, SERVER_BUF, max(size, PAGE))
    cli = w.task("map-client")
    w.buffer(cli, CLIENT_BUF, max(size, PAGE))
    w.fill(srv, SERVER_BUF, max(size, PAGE))
    w.fill(cli, CLIENT_BUF, max(size, PAGE))
    clock = Clock(w.m)
    w.k.thread_new(cli, "map-client.main", pager=w.pager,
                   program=_map_client(srv.thread, size, n, echo, clock))
    w.k.run()
    return clock


# ---------------------------------------------------------------------- the user-level pipe
class PipeState(Enum):
    EMPTY = "empty"         # open wait: a write (its data into the buffer) or a read (waits)
    HOLDING = "holding"     # data in the buffer: only the reader is received (closed receive)


class UserPipe:
    """One pipe of the pipe server: a thread in the server task, a PIPE_BUF buffer, and the
    reader it serves while it holds data (`open_reader`).  One reader and one writer per pipe,
    as in the benchmarks."""

    def __init__(self, w, server_task, index, capacity=PIPE_BUF):
        self.w, self.k = w, w.k
        self.cap = capacity
        self.buf = SERVER_BUF + index * 0x100000
        self.reader = None
        self.state = PipeState.EMPTY
        self.avail = self.off = 0
        w.buffer(server_task, self.buf, self.cap)
        w.touch(server_task, self.buf, self.cap)
        image = KernelImage(w.m, load_kernel_profile("linux"), PIPE_TEXT, PIPE_DATA)
        self.write_ops = image.path_ops("pipe_write", "server")
        self.read_ops = image.path_ops("pipe_read", "server")
        for ops in (self.write_ops, self.read_ops):       # fault the code in (set-up)
            self.k.execute(server_task.thread, ops, category="server")
        self.thread = self.k.thread_new(server_task, f"pipe{index}", program=self._serve,
                                         pager=w.pager)

    def open_reader(self, thread):
        """The read end is opened by `thread`: the only one received while data is held."""
        self.reader = thread

    def _serve(self, t):
        bufs = [StringBuffer(self.buf, self.cap)]
        pending = None                           # a reader waiting for data: (thread, wanted)
        msg = yield ipc_wait(buffers=bufs)
        while True:
            op, n = msg.words[0], msg.words[1]
            if op == WRITE:
                yield compute(self.write_ops, "server")
                writer = msg.sender
                self.avail, self.off = msg.strings[0][1] if msg.strings else 0, 0
                if pending is not None:
                    reader, pending = pending, None
                    yield from self._give(*reader, reply=False)
                msg = yield from self._answer(writer, Message(n), bufs)
            elif op == READ:
                if self.avail == 0:
                    pending = (msg.sender, n)
                    msg = yield ipc_wait(buffers=bufs)
                else:
                    msg = yield from self._give(msg.sender, n, reply=True, bufs=bufs)
            else:
                msg = yield ipc_reply_and_wait(msg.sender, Message(0), buffers=bufs)

    def _give(self, reader, wanted, reply, bufs=None):
        """pipe_read: up to `wanted` bytes of the buffer to the reader (a string)."""
        yield compute(self.read_ops, "server")
        k = min(wanted, self.avail)
        data = Message(k, strings=[StringItem(self.buf + self.off, k)])
        self.off += k
        self.avail -= k
        if not reply:
            yield ipc_send(reader, data, timeout=0)
            return None
        return (yield from self._answer(reader, data, bufs))

    def _enter(self, state):
        if state is not self.state:
            self.state = state
            self.k.m.events.log("pipe-server", "pipe_state", pipe=self.thread.name,
                                state=state.value, avail=self.avail)

    def _answer(self, dest, msg, bufs):
        """Reply to `dest`, then wait for the next request the state allows."""
        self._enter(PipeState.EMPTY if self.avail == 0 else PipeState.HOLDING)
        if self.state is PipeState.EMPTY:
            return (yield ipc_reply_and_wait(dest, msg, buffers=bufs))
        if self.reader is None:
            raise InvalidArgument(f"{self.thread.name}: holds {self.avail} bytes but no reader "
                                  "has opened the read end (open_reader)")
        yield ipc_send(dest, msg, timeout=0)
        return (yield ipc_receive(self.reader))


def pipe_write(pipe, buf, n):
    """The pipe library's write: calls of at most the pipe's capacity (a generator)."""
    done = 0
    while done < n:
        k = min(n - done, pipe.cap)
        r = yield ipc_call(pipe.thread, Message(WRITE, k, strings=[StringItem(buf + done, k)]))
        done += r.words[0]
    return done


def pipe_read(pipe, buf, n):
    """The pipe library's read: one call; returns the bytes received (at most n)."""
    r = yield ipc_call(pipe.thread, Message(READ, n), buffers=[StringBuffer(buf, n)])
    return r.words[0]


def _pipe_world(w, npipes):
    srv = w.task("pipe-server")
    pipes = [UserPipe(w, srv, i) for i in range(npipes)]
    return srv, pipes


def pipe_latency(w, n, size=1):
    """lat_pipe on the user-level pipe: a token ping-pongs through two pipes."""
    _srv, (p1, p2) = _pipe_world(w, 2)
    clock = Clock(w.m)

    def a(t):
        for i in range(n + 1):
            if i == 1:
                clock.start = clock.mark()
            yield from pipe_write(p1, CLIENT_BUF, size)
            got = yield from pipe_read(p2, REPLY_BUF, size)
            if got != size:
                raise AssertionError(f"pipe ping-pong: {got} bytes back of {size}")
        clock.stop = clock.mark()

    def b(t):
        for _ in range(n + 1):
            got = yield from pipe_read(p1, REPLY_BUF, size)
            yield from pipe_write(p2, REPLY_BUF, got)
    ta, tb = _two_ends(w, a, b)
    p1.open_reader(tb)
    p2.open_reader(ta)
    w.k.run()
    return clock


def pipe_bandwidth(w, total):
    """bw_pipe on the user-level pipe: `total` bytes in 64 KB blocks after one warm-up block."""
    _srv, (p,) = _pipe_world(w, 1)
    clock = Clock(w.m)
    got = {"n": 0}

    def writer(t):
        for _ in range((total + BLOCK) // BLOCK):
            yield from pipe_write(p, CLIENT_BUF, BLOCK)

    def reader(t):
        n = 0
        while n < BLOCK:                         # warm-up: the first block
            n += yield from pipe_read(p, REPLY_BUF, BLOCK - n)
        clock.start = clock.mark()
        n = 0
        while n < total:
            n += yield from pipe_read(p, REPLY_BUF, min(BLOCK, total - n))
        clock.stop = clock.mark()
        got["n"] = n
    tw, tr = _two_ends(w, writer, reader)
    p.open_reader(tr)
    w.k.run()
    return clock, got["n"]


def _two_ends(w, prog_a, prog_b):
    """Two tasks with their buffers (CLIENT_BUF to send from, REPLY_BUF to receive into),
    faulted in; their program threads created last (they start when the kernel runs)."""
    tasks = []
    for name in ("end-a", "end-b"):
        t = w.task(name)
        for base in (CLIENT_BUF, REPLY_BUF):
            w.buffer(t, base, BLOCK)
        w.fill(t, CLIENT_BUF, BLOCK)
        w.touch(t, REPLY_BUF, BLOCK)
        tasks.append(t)
    return [w.k.thread_new(t, f"{t.name}.main", program=prog, pager=w.pager)
            for t, prog in zip(tasks, (prog_a, prog_b))]


# ---------------------------------------------------------------------- the table
def sizes(quick):
    """(round trips timed, bytes moved for a bandwidth)."""
    return (3, 256 * KB) if quick else (20, 4 * MB)


def _sizes(quick, n, total):
    dn, dt = sizes(quick)
    n, total = n or dn, total or dt
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"round trips {n!r} must be an integer >= 1")
    if not isinstance(total, int) or total < BLOCK or total % BLOCK:
        raise ValueError(f"total {total!r} must be a positive multiple of {BLOCK} bytes")
    return n, total


def measure(variant, what, cpu_profile="pentium-133", seed=1, quick=False,
            placement="disjoint", n=None, total=None, placement_seed=None):
    """One L4-native row of Table 4: `what` is "latency" (1-byte ping-pong, µs per round
    trip) or "bandwidth" (MB/s in 64 KB blocks).  `n` round trips and `total` bytes default
    to `sizes(quick)`; `placement_seed` as for `World`."""
    if variant not in L4_VARIANTS:
        raise ValueError(f"variant {variant!r} unknown; allowed: {', '.join(L4_VARIANTS)}")
    if what not in WHATS:
        raise ValueError(f"what {what!r} unknown; allowed: {', '.join(WHATS)}")
    n, total = _sizes(quick, n, total)
    w = World(cpu_profile, seed, placement, placement_seed)
    if variant == L4_VARIANTS[0]:
        if what == "latency":
            return _outcome(w, pipe_latency(w, n), what, n, 0)
        clock, got = pipe_bandwidth(w, total)
        return _outcome(w, clock, what, 0, got)
    fn = rpc if variant == L4_VARIANTS[1] else mapping_rpc
    if what == "latency":
        return _outcome(w, fn(w, 1, n, echo=True), what, n, 0)
    blocks = total // BLOCK
    return _outcome(w, fn(w, BLOCK, blocks, echo=False), what, 0, blocks * BLOCK)


def lat_pipe(p, n, size=1):
    """lmbench's lat_pipe with a 1-byte token (`lab.mono.examples.lat_pipe`: the echo child's
    exit kept out of the timed rounds)."""
    return _example_lat_pipe(p, n, size)


def linux_pipe(system, what, cpu_profile="pentium-133", seed=1, quick=False, n=None,
               total=None, placement_seed=None):
    """lmbench's pipe programs on a Linux system (`LINUX_PIPES` name or system key): 1-byte
    lat_pipe (µs per round trip; `lat_pipe` here) or lmbench's bw_pipe with 64 KB blocks
    (MB/s).  `placement_seed`: the Machine's frame order (None: lowest first)."""
    from lab.linux import boot
    from . import lmbench
    system = LINUX_PIPES.get(system, system)
    if system not in LINUX_PIPES.values():
        raise ValueError(f"system {system!r} unknown; allowed: {', '.join(LINUX_PIPES)}")
    if what not in WHATS:
        raise ValueError(f"what {what!r} unknown; allowed: {', '.join(WHATS)}")
    n, total = _sizes(quick, n, total)
    k = boot(system, cpu_profile=cpu_profile, seed=seed, log_syscalls=False,
             placement_seed=placement_seed)
    mhz = k.m.profile["clock_mhz"]
    out = {}

    def prog(p):
        if what == "latency":
            out["cycles"] = lat_pipe(p, n, size=1)
        else:
            out["cycles"], out["bytes"] = lmbench.bw_pipe(p, total, chunk=BLOCK)
    k.spawn(prog, name=f"{what}_pipe")
    k.run()
    if what == "latency":
        return Outcome(out["cycles"] / mhz, "us", out["cycles"])
    return Outcome(out["bytes"] / MB / (out["cycles"] / mhz / 1e6), "MB/s",
                   out["cycles"] / (out["bytes"] / BLOCK))
