"""lmbench and hbench:OS, as programs on the Linux user layer (`lab.mono.user.Libc`).

Each benchmark is what the original program does (published.json "lmbench_programs"): the
same system calls, the same user work, timed with the simulated cycle counter after a warm-up
round.  The same program runs unchanged on all five systems (`lab.linux.boot`).  The
simulation is deterministic, so a few iterations give the steady state that lmbench's
repetitions average towards.

    measure("pipe", "l4linux")            -> microseconds (latency) or MB/s (bandwidth)
    BENCHMARKS["pipe"].unit               -> "us"
"""
from dataclasses import dataclass
from typing import Callable

from lab.kprofile import load_kernel_profile
from lab.mono.examples import lat_pipe as _example_lat_pipe
from lab.mono.abi import (O_RDONLY, O_WRONLY, O_CREAT, PROT_READ, MAP_SHARED, AF_INET,
                          SOCK_DGRAM, SOCK_STREAM)

KB = 1024
MB = 1024 * 1024
FILE = "/tmp/lmbench.data"


# ---------------------------------------------------------------------- helpers
def characteristic(name):
    """A workload characteristic from lab/profiles/workloads.json (overridable by calibration)."""
    return load_kernel_profile("workloads")[name]


def _harness(p, name):
    """The benchmark program's own work per iteration besides the calls it measures (its loop,
    timing and bookkeeping: hbench:OS and lmbench differ here), a workload characteristic."""
    if name:
        p.compute(characteristic(name))


def _timed(p, op, n, harness=""):
    """Cycles per call of op() over n calls, after one warm-up call."""
    def once():
        op()
        _harness(p, harness)
    once()
    t0 = p.clock()
    for _ in range(n):
        once()
    return (p.clock() - t0) / n


def _make_file(p, nbytes, chunk=64 * KB):
    """Create FILE with nbytes of data (written through the file system, so it is cached)."""
    fd = p.open(FILE, O_WRONLY | O_CREAT)
    buf = p.malloc(chunk)
    p.store(buf, bytes(range(256)) * (chunk // 256))
    left = nbytes
    while left > 0:
        p.write(fd, buf, min(chunk, left))
        left -= chunk
    p.close(fd)


def _dirty(c, pages):
    """The forked child writes one word in each of `pages` (inherited, copy-on-write)."""
    for va in pages:
        c.touch(va, 4, write=True)


def _child_exit(c, pages=()):
    _dirty(c, pages)
    return 0


def _child_exec(c, path, argv, pages=()):
    _dirty(c, pages)
    c.execve(path, argv)


# ---------------------------------------------------------------------- latencies
def lat_syscall(p, n, which, harness=""):
    """lat_syscall: write one byte to /dev/null, or getpid (hbench)."""
    if which == "getpid":
        return _timed(p, p.getpid, n, harness)
    fd = p.open("/dev/null", O_WRONLY)
    buf = p.malloc(1)
    p.store(buf, b"x")
    return _timed(p, lambda: p.write(fd, buf, 1), n, harness)


def lat_proc(p, n, how, harness=""):
    """lat_proc: fork+exit ("null"), fork+execve ("simple"), fork + /bin/sh -c ("sh").  The
    child writes `lat_proc_child_pages` pages of what it inherited before it exits or execs
    (its stack, libc's data, stdio buffers): each a copy-on-write fault, through whatever
    handles page faults on the system at hand."""
    size = characteristic("lat_proc_child_pages") * p.page
    heap = p.malloc(size) if size else 0
    if size:
        p.touch(heap, size, write=True, stride=p.page)        # present in the parent
    pages = tuple(range(heap, heap + size, p.page))
    if how == "null":
        child, args = _child_exit, (pages,)
    elif how == "simple":     # lmbench's hello is dynamically linked (ld.so maps libc.so)
        child, args = _child_exec, ("/bin/hello", ["/bin/hello"], pages)
    else:
        child, args = _child_exec, ("/bin/sh", ["/bin/sh", "-c", "/bin/hello"], pages)

    def once():
        p.wait4(p.fork(child, *args))
    return _timed(p, once, n, harness)


def lat_mmap(p, n, size, harness=""):
    """lat_mmap: map `size` bytes of a file, touch it every `mmap_touch_stride_kb` (at least
    once: each touch a page fault on a cached page), and unmap it again."""
    _make_file(p, max(size, 64 * KB))
    fd = p.open(FILE, O_RDONLY)
    stride = characteristic("mmap_touch_stride_kb") * KB
    offsets = range(0, size, max(stride - stride % p.page, p.page))

    def once():
        a = p.mmap(0, size, PROT_READ, MAP_SHARED, fd, 0)
        for off in offsets:
            p.touch(a + off, 1)
        p.munmap(a, size)
    return _timed(p, once, n, harness)


def _sum(c, arr, size, ipw):
    if size:
        c.compute(size // 4 * ipw)
        c.touch(arr, size)


def lat_ctx(p, n, nprocs, size, harness=""):
    """lat_ctx: `nprocs` processes pass a token around a ring of pipes; each sums an array of
    `size` bytes when it has the token.  Reported like lmbench: time per hop minus the time of
    the same pipe pass and array sum within one process (lmbench's 'overhead')."""
    per_lap, overhead = _ctx_runs(p, n, nprocs, size, harness, _timed)
    return per_lap / nprocs - overhead


def _ctx_runs(p, n, nprocs, size, harness, timer):
    """lat_ctx's two measurements, each as `timer(p, op, n)` returns it: (one lap around the
    ring, the overhead per hop that lmbench subtracts)."""
    instructions_per_word = characteristic("ctx_sum_instructions_per_word")
    pipes = [p.pipe() for _ in range(nprocs)]
    tok = p.malloc(4)
    p.proc.user["tok"] = tok
    p.store(tok, b"tokn")
    kids = []
    for i in range(1, nprocs):
        kids.append(p.fork(_ring_child, pipes[i - 1][0], pipes[i][1], n + 2, size,
                           instructions_per_word))
    arr = p.malloc(max(size, 4))

    def lap():
        _sum(p, arr, size, instructions_per_word)
        p.write(pipes[0][1], tok, 4)
        p.read(pipes[nprocs - 1][0], tok, 4)
        for _ in range(nprocs):         # per hop: the measured part only, not the overhead
            _harness(p, harness)
    per_lap = timer(p, lap, n)
    lap()                       # untimed: the ring members exit after this one
    for k in kids:
        p.wait4(k)
    # overhead: one process writes and reads its own pipe and sums its array, per hop
    own = p.pipe()

    def alone():
        _sum(p, arr, size, instructions_per_word)
        p.write(own[1], tok, 4)
        p.read(own[0], tok, 4)
    return per_lap, timer(p, alone, n)


def _timed_by_category(p, op, n):
    """Like _timed, with the cycles per call of each category: (cycles, {category: cycles})."""
    op()
    with p.measure() as r:
        for _ in range(n):
            op()
    return r.cycles / n, {c: v / n for c, v in r.by_category.items()}


def _ring_child(c, rfd, wfd, n, size, ipw):
    tok = c.malloc(4)
    arr = c.malloc(max(size, 4))
    for _ in range(n):
        c.read(rfd, tok, 4)
        _sum(c, arr, size, ipw)
        c.write(wfd, tok, 4)


def lat_pipe(p, n, size=4, harness=""):
    """lat_pipe: a token ping-pongs between two processes through two pipes; per round trip
    (the documented example of the user layer, `lab.mono.examples.lat_pipe`)."""
    t = _example_lat_pipe(p, n, size)
    if harness:
        t0 = p.clock()
        _harness(p, harness)
        t += p.clock() - t0
    return t


PORT = 7000


def _udp_server(c, n, size, rpc):
    s = c.socket(AF_INET, SOCK_DGRAM)
    c.bind(s, PORT)
    buf = c.malloc(max(size, 64))
    for _ in range(n):
        _rpc_work(c, rpc, server=True)
        _, port = c.recvfrom(s, buf, size)
        _rpc_work(c, rpc, server=True)
        c.sendto(s, buf, size, port)


def _tcp_server(c, n, size, rpc):
    s = c.socket(AF_INET, SOCK_STREAM)
    c.bind(s, PORT)
    c.listen(s)
    conn = c.accept(s)
    buf = c.malloc(max(size, 64))
    for _ in range(n):
        _rpc_work(c, rpc, server=True, proto="tcp")
        c.recv(conn, buf, size)
        _rpc_work(c, rpc, server=True, proto="tcp")
        c.send(conn, buf, size)


def _rpc_work(c, rpc, server, proto="udp"):
    """Sun RPC adds, per message and side, the library's marshalling (XDR, call/reply headers;
    over TCP also the record-marking stream, xdrrec) and a select(): workload characteristics
    (DESIGN §4), fitted on the native column."""
    if rpc:
        c.compute(characteristic("sunrpc_instructions" if proto == "udp"
                                 else "sunrpc_tcp_instructions") // 2)
        for _ in range(characteristic("sunrpc_syscalls")):
            c.getpid()          # stands for select(): a cheap system call of the same path class


def lat_net(p, n, proto, rpc=False, size=4, harness=""):
    """lat_udp / lat_tcp / lat_rpc: ping-pong of `size` bytes between two processes."""
    server = _udp_server if proto == "udp" else _tcp_server
    pid = p.fork(server, n + 2, size, rpc)
    p.sched_yield()                                 # let the server bind
    buf = p.malloc(max(size, 64))
    p.store(buf, bytes(size))
    if proto == "udp":
        s = p.socket(AF_INET, SOCK_DGRAM)

        def rt():
            _rpc_work(p, rpc, server=False)
            p.sendto(s, buf, size, PORT)
            p.recvfrom(s, buf, size)
            _rpc_work(p, rpc, server=False)
    else:
        s = p.socket(AF_INET, SOCK_STREAM)
        p.connect(s, PORT)

        def rt():
            _rpc_work(p, rpc, server=False, proto="tcp")
            p.send(s, buf, size)
            p.recv(s, buf, size)
            _rpc_work(p, rpc, server=False, proto="tcp")
    t = _timed(p, rt, n, harness)
    rt()                        # untimed: the server exits after this one
    p.wait4(pid)
    return t


# ---------------------------------------------------------------------- bandwidths
def _pipe_writer(c, wfd, total, chunk):
    buf = c.malloc(chunk)
    c.touch(buf, chunk, write=True)
    left = total
    while left > 0:
        c.write(wfd, buf, min(chunk, left))
        left -= chunk


def bw_pipe(p, total, chunk=64 * KB):
    """bw_pipe: `total` bytes through a pipe in `chunk` pieces; returns cycles for total."""
    r, w = p.pipe()
    buf = p.malloc(chunk)
    p.touch(buf, chunk, write=True)
    pid = p.fork(_pipe_writer, w, total + chunk, chunk)
    warm = 0
    while warm < chunk:                            # warm-up: the first chunk
        warm += p.read(r, buf, chunk - warm)
    t0 = p.clock()
    got = 0
    while got < total:
        got += p.read(r, buf, min(chunk, total - got))
    t = p.clock() - t0
    p.wait4(pid)
    return t, got


def _tcp_sink(c, total, chunk):
    s = c.socket(AF_INET, SOCK_STREAM)
    c.bind(s, PORT + 1)
    c.listen(s)
    conn = c.accept(s)
    buf = c.malloc(chunk)
    got = 0
    while got < total:
        got += c.recv(conn, buf, min(chunk, total - got))


def bw_tcp(p, total, chunk=64 * KB):
    """bw_tcp: `total` bytes over a loopback TCP connection in `chunk` pieces."""
    pid = p.fork(_tcp_sink, total + chunk, chunk)
    p.sched_yield()
    s = p.socket(AF_INET, SOCK_STREAM)
    p.connect(s, PORT + 1)
    buf = p.malloc(chunk)
    p.touch(buf, chunk, write=True)
    warm = 0
    while warm < chunk:                             # warm-up: the first chunk
        warm += p.send(s, buf, chunk - warm)
    t0 = p.clock()
    sent = 0
    while sent < total:
        sent += p.send(s, buf, min(chunk, total - sent))
    p.wait4(pid)                                    # the data has arrived
    return p.clock() - t0, sent


def bw_file_rd(p, total, chunk=64 * KB, size=None, harness=""):
    """bw_file_rd: reread a cached file of `size` bytes in `chunk` blocks until `total`.
    lmbench 1.x does not touch the data ("The data is not accessed in the user program; the
    benchmark relies on the operating system's read interface to have actually moved the
    data", bw_file_rd(8), bitmover.com/lmbench; later versions' manual pages add a summing
    loop).  hbench:OS's extra work per block is its harness characteristic."""
    size = size or min(total, 1 * MB)
    _make_file(p, size)
    fd = p.open(FILE, O_RDONLY)
    buf = p.malloc(chunk)
    p.touch(buf, chunk, write=True)
    while p.read(fd, buf, chunk):                   # warm the cache and the buffer
        pass
    t0 = p.clock()
    done = 0
    while done < total:
        p.lseek(fd, 0)
        while done < total:
            k = p.read(fd, buf, chunk)
            if not k:
                break
            _harness(p, harness)
            done += k
    return p.clock() - t0, done


def bw_mmap_rd(p, total, size=None):
    """bw_mmap_rd: map a cached file and read (sum) the mapping until `total` bytes."""
    size = size or min(total, 1 * MB)
    _make_file(p, size)
    fd = p.open(FILE, O_RDONLY)
    a = p.mmap(0, size, PROT_READ, MAP_SHARED, fd, 0)
    p.touch(a, size)                                # fault the pages in (warm-up)
    instructions_per_word = characteristic("sum_instructions_per_word")
    t0 = p.clock()
    done = 0
    while done < total:
        n = min(size, total - done)
        p.compute(n // 4 * instructions_per_word)
        p.touch(a, n)
        done += n
    t = p.clock() - t0
    p.munmap(a, size)
    return t, done


# ---------------------------------------------------------------------- the table
@dataclass(frozen=True)
class Benchmark:
    name: str               # the row name of published.json
    table: str              # "lmbench" or "hbench"
    unit: str               # "us" or "MB/s"
    run: Callable           # run(p, quick) -> cycles per op, or (cycles, bytes)


def _lat(fn, *args, n=(3, 10), harness=""):
    return lambda p, quick: fn(p, n[0] if quick else n[1], *args, harness=harness)


def _bw(fn, total=(256 * KB, 4 * MB), **kw):
    return lambda p, quick: fn(p, total[0] if quick else total[1], **kw)


# Where lmbench and hbench:OS report the same operation differently, the slower of the two
# carries its own harness work (lab/profiles/workloads.json, fitted on that row); the kernel
# path itself is fitted on the other row.
H = "_harness_instructions"


BENCHMARKS = {b.name + "@" + b.table: b for b in (
    Benchmark("write /dev/null", "lmbench", "us", _lat(lat_syscall, "write", n=(5, 50))),
    Benchmark("null process", "lmbench", "us", _lat(lat_proc, "null", n=(1, 3))),
    Benchmark("simple process", "lmbench", "us", _lat(lat_proc, "simple", n=(1, 3))),
    Benchmark("/bin/sh process", "lmbench", "us",
              _lat(lat_proc, "sh", n=(1, 2), harness="lmbench_sh" + H)),
    Benchmark("mmap", "lmbench", "us", _lat(lat_mmap, 8 * MB, n=(3, 10))),
    Benchmark("2-proc ctxsw", "lmbench", "us", _lat(lat_ctx, 2, 0)),
    Benchmark("8-proc ctxsw", "lmbench", "us", _lat(lat_ctx, 8, 0, n=(2, 5))),
    Benchmark("pipe", "lmbench", "us", _lat(lat_pipe)),
    Benchmark("UDP", "lmbench", "us", _lat(lat_net, "udp")),
    Benchmark("RPC/UDP", "lmbench", "us", _lat(lat_net, "udp", True)),
    Benchmark("TCP", "lmbench", "us", _lat(lat_net, "tcp")),
    Benchmark("RPC/TCP", "lmbench", "us", _lat(lat_net, "tcp", True)),
    Benchmark("pipe", "lmbench_bw", "MB/s", _bw(bw_pipe)),
    Benchmark("TCP", "lmbench_bw", "MB/s", _bw(bw_tcp)),
    Benchmark("file reread", "lmbench_bw", "MB/s", _bw(bw_file_rd)),
    Benchmark("mmap reread", "lmbench_bw", "MB/s", _bw(bw_mmap_rd)),
    Benchmark("getpid", "hbench", "us", _lat(lat_syscall, "getpid", n=(5, 50))),
    Benchmark("write /dev/null", "hbench", "us",
              _lat(lat_syscall, "write", n=(5, 50), harness="hbench_write" + H)),
    Benchmark("null process", "hbench", "us", _lat(lat_proc, "null", n=(1, 3))),
    Benchmark("simple process", "hbench", "us", _lat(lat_proc, "simple", n=(1, 3))),
    Benchmark("/bin/sh process", "hbench", "us", _lat(lat_proc, "sh", n=(1, 2))),
    Benchmark("mmap 4KB", "hbench", "us", _lat(lat_mmap, 4 * KB)),
    Benchmark("mmap 8MB", "hbench", "us", _lat(lat_mmap, 8 * MB)),
    Benchmark("ctx 0K 2", "hbench", "us", _lat(lat_ctx, 2, 0, harness="hbench_ctx" + H)),
    Benchmark("ctx2 0K 2", "hbench", "us", _lat(lat_ctx, 2, 0, harness="hbench_ctx2" + H)),
    Benchmark("pipe", "hbench", "us", _lat(lat_pipe, harness="hbench_pipe" + H)),
    Benchmark("UDP", "hbench", "us", _lat(lat_net, "udp")),
    Benchmark("RPC/UDP", "hbench", "us", _lat(lat_net, "udp", True)),
    Benchmark("TCP", "hbench", "us", _lat(lat_net, "tcp")),
    Benchmark("RPC/TCP", "hbench", "us", _lat(lat_net, "tcp", True)),
    Benchmark("pipe 64KB", "hbench_bw", "MB/s", _bw(bw_pipe)),
    Benchmark("TCP 64KB", "hbench_bw", "MB/s", _bw(bw_tcp)),
    Benchmark("file read 64/64", "hbench_bw", "MB/s", _bw(bw_file_rd, size=64 * KB,
                                                             harness="hbench_file_read" + H)),
    Benchmark("mmap reread 64KB", "hbench_bw", "MB/s", _bw(bw_mmap_rd, size=64 * KB)),
)}


def _run(key, name, program, system, cpu_profile, seed, boot_options):
    """Boot `system`, run `program(p)` as its only process, called `name`; (its result, the
    clock in MHz)."""
    from lab.linux import boot
    k = boot(system, cpu_profile=cpu_profile, seed=seed, log_syscalls=False, **boot_options)
    proc = k.spawn(program, name=name.replace(" ", "_"))
    k.run()
    if proc.result is None:     # the program died (a signal): its number would be meaningless
        raise RuntimeError(f"lmbench {key} on {system}: the benchmark process ended without a "
                           f"result (exit status {proc.exit_status}, killed by signal {proc.fatal_signal})")
    return proc.result, k.m.profile["clock_mhz"]


def ctx_parts(system, cpu_profile="pentium-133", seed=1, quick=False, nprocs=2, size=0,
              placement_seed=None):
    """lmbench's context switch taken apart: {"hop": one pass of the token to the next
    process, "overhead": the same pipe write and read within one process, "ctx": hop -
    overhead (what lmbench reports)}, in microseconds, and "by_category": ctx's cycles by
    cycle category.  `placement_seed`: the Machine's frame order (None: lowest first)."""
    n = 3 if quick else 10
    ((lap, lap_cat), (alone, alone_cat)), mhz = _run(
        "lat_ctx parts", f"{nprocs}-proc ctxsw",
        lambda p: _ctx_runs(p, n, nprocs, size, "", _timed_by_category),
        system, cpu_profile, seed, {"placement_seed": placement_seed})
    hop = lap / nprocs
    cats = {c: lap_cat.get(c, 0) / nprocs - alone_cat.get(c, 0)
            for c in sorted(set(lap_cat) | set(alone_cat))}
    return {"hop": hop / mhz, "overhead": alone / mhz, "ctx": (hop - alone) / mhz,
            "by_category": {c: v for c, v in cats.items() if v}}


def measure(key, system, cpu_profile="pentium-133", seed=1, quick=False, **boot_options):
    """Run one benchmark on one system; returns its value in the benchmark's unit.
    `boot_options` go to `lab.linux.boot` (e.g. placement_seed=N: frames in a scattered
    order)."""
    b = BENCHMARKS[key]
    out, mhz = _run(key, b.name, lambda p: b.run(p, quick), system, cpu_profile, seed,
                    boot_options)
    if b.unit == "us":
        return out / mhz
    cycles, nbytes = out
    return nbytes / MB / (cycles / mhz / 1e6)      # lmbench's MB/s: 2^20 bytes per second
