"""Differential testing of the five Linux platforms (S97 §4): the same program, unchanged, gives
the same results on native Linux, L4Linux (C library or trampoline) and MkLinux (in-kernel or
user); only the cycles differ.

Hypothesis draws small random *programs* -- lists of operations from a fixed vocabulary
(`OPS` below: fork/wait4, pipes between parent and child, files, anonymous and file mmap,
munmap, SIGSEGV in a child, malloc/brk across many pages, execve, sockets, fsync and sync,
non-blocking pipes, error cases) -- and an interpreter runs each on a freshly booted kernel
of every platform, recording an *observable trace*: return values, errno names, bytes read,
exit and wait statuses, memory contents.  The traces must be identical.  Besides, on every
platform:
  * every failure a program sees is a typed `lab.errors.KernelError` (a bare Python exception
    escapes `run()` and fails the test), and one of Linux's errnos or SIGSEGV: no L4 or Mach
    error reaches a Linux program;
  * at the end of each process's program the platform's view of its memory agrees with Linux's
    logical page table (`check_views`): what the MMU / L4's mapping database / Mach's pmap
    maps is a page Linux has there, with no more rights;
  * after every process has exited, no frame is lost: the free frames are those after boot,
    less the buffer cache's new buffers.
"""
import hashlib
import struct

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from lab.errors import KernelError
from lab.linux import SYSTEMS, boot
from lab.mono.errors import ERRNO
from lab.mono.abi import (AF_INET, F_GETFL, F_SETFL, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE,
                          MAP_SHARED, O_CREAT, O_NONBLOCK, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY,
                          PROT_READ, PROT_WRITE, SEEK_END, SEEK_SET, SOCK_DGRAM, SOCK_STREAM,
                          TEXT_BASE)
from mono_helpers import allocated_frames, kept_frames

PAGE = 4096
FILES = ("/tmp/a", "/tmp/b")


# ---------------------------------------------------------------------- the interpreter
def _data(seed, n):
    """n deterministic bytes of a drawn seed."""
    return bytes((seed * 31 + i * 7 + (i >> 8)) & 0xFF for i in range(n))


class Ctx:
    """What one process of the program has made: its mmap'd regions (address, pages)."""

    def __init__(self, traces, violations, depth):
        self.traces, self.violations, self.depth = traces, violations, depth
        self.regions = []
        self.kids = []


def _buf(p, n):
    return p.malloc(max(n, 1))


def op_getpid(p, c):
    return p.getpid(), p.getppid()


def op_heap(p, c, npages, seed):
    """malloc across pages: a store in each (first touches fault), then the loads."""
    va = p.malloc(npages * PAGE, align=PAGE)
    for i in range(npages):
        p.store(va + i * PAGE + (seed + i * 97) % (PAGE - 8), _data(seed + i, 8))
    return tuple(p.load(va + i * PAGE + (seed + i * 97) % (PAGE - 8), 8) for i in range(npages))


def op_brk(p, c, npages):
    cur = p.brk(0)
    new = p.brk(cur + npages * PAGE)
    if npages:
        p.store(new - 1, b"\x5a")
        got = p.load(new - 1, 1)
    else:
        got = b""
    back = p.brk(cur)            # shrink again: the pages go back
    return cur, new, got, back


def _child_run(p, c, regions, prog, status):
    sub = Ctx(c.traces, c.violations, c.depth + 1)
    sub.regions = list(regions)         # fork copies the mappings (copy-on-write)
    trace = run_ops(p, sub, prog)
    c.traces[p.getpid()] = trace
    return status


def op_fork(p, c, status, prog):
    pid = p.fork(_child_run, c, tuple(c.regions), prog, status)
    c.kids.append(pid)
    return pid


def op_wait(p, c, which):
    if which == "any":
        pid = -1
    elif which == "last":
        pid = c.kids[-1] if c.kids else 12345
    else:
        pid = 4242                       # nobody's child
    return p.wait4(pid)


def op_pipe_self(p, c, n, seed, rd):
    r, w = p.pipe()
    buf = _buf(p, max(n, rd))
    p.store(buf, _data(seed, n))
    wrote = p.write(w, buf, n)
    got = p.read(r, buf, rd)
    out = (r, w, wrote, got, p.load(buf, got))
    p.close(w)
    eof = p.read(r, buf, 1) if got >= n else None      # empty and no writer: end of file
    p.close(r)
    return out + (eof,)


def _pipe_reader(p, r, w, n):
    p.close(w)
    buf = _buf(p, n + 16)
    total, sums = 0, 0
    while True:
        got = p.read(r, buf + total, n + 16 - total)
        if got == 0 or total + got >= n + 16:
            total += got
            break
        total += got
    data = p.load(buf, total)
    return (sum(data) + total) & 0xFF


def op_pipe_child(p, c, n, seed):
    """Parent writes n bytes (more than the pipe holds: the writer sleeps), the child reads to
    end of file and exits with a checksum."""
    r, w = p.pipe()
    pid = p.fork(_pipe_reader, r, w, n)
    p.close(r)
    buf = _buf(p, n)
    p.store(buf, _data(seed, n))
    wrote = p.write(w, buf, n)
    p.close(w)
    return wrote, p.wait4(pid)


def _write_no_reader(p, w, n):
    p.write(w, _buf(p, n), n)
    return 0


def op_epipe(p, c, n):
    """A child writes to a pipe no one reads: SIGPIPE kills it (wait4 sees signal 13)."""
    r, w = p.pipe()
    p.close(r)
    pid = p.fork(_write_no_reader, w, n)
    p.close(w)
    return p.wait4(pid)[1]


def op_bad_fd(p, c, how):
    buf = _buf(p, 8)
    if how == "read_closed":
        r, w = p.pipe()
        p.close(r)
        try:
            return p.read(r, buf, 8)
        finally:
            p.close(w)
    if how == "write_read_end":
        r, w = p.pipe()
        try:
            return p.write(r, buf, 8)
        finally:
            p.close(r)
            p.close(w)
    if how == "close_twice":
        fd = p.dup(0)
        p.close(fd)
        return p.close(fd)
    if how == "lseek_pipe":
        r, w = p.pipe()
        try:
            return p.lseek(r, 0, SEEK_SET)
        finally:
            p.close(r)
            p.close(w)
    return p.read(77, buf, 8)                   # never opened


def op_file(p, c, name, n, seed, off, rd, trunc):
    fd = p.open(FILES[name], O_CREAT | O_RDWR | (O_TRUNC if trunc else 0))
    buf = _buf(p, max(n, rd))
    p.store(buf, _data(seed, n))
    wrote = p.write(fd, buf, n)
    pos = p.lseek(fd, off, SEEK_SET)
    got = p.read(fd, buf, rd)
    data = p.load(buf, got)
    end = p.lseek(fd, 0, SEEK_END)
    st = p.fstat(fd)
    p.close(fd)
    return wrote, pos, got, data, end, st["size"], p.stat(FILES[name])["size"]


def op_fsync(p, c, name, n, seed, every):
    """Write a file, then fsync it (or sync everything): what its blocks hold on the disk;
    fsync of a pipe end is EINVAL (no f_op->fsync) on every platform."""
    fd = p.open(FILES[name], O_CREAT | O_RDWR)
    buf = _buf(p, n)
    p.store(buf, _data(seed, n))
    p.write(fd, buf, n)
    r = p.sync() if every else p.fsync(fd)
    p.close(fd)
    k, ino = p.k, p.k.fs.lookup(FILES[name])
    disk = b"".join(bytes(PAGE) if b is None else k.disk.data.get(b, b"") for b in ino.blocks)
    rfd, wfd = p.pipe()
    try:
        p.fsync(rfd)
        pipe = "ok"
    except KernelError as e:
        pipe = e.code
    p.close(rfd)
    p.close(wfd)
    return r, ino.size, hashlib.sha1(disk[:ino.size]).hexdigest()[:16], pipe


def op_fcntl_nonblock(p, c, n):
    """F_SETFL O_NONBLOCK on a pipe: a read of the empty pipe is EAGAIN, a write of n bytes
    writes what fits (PIPE_BUF-sized atomic writes all or nothing), never sleeping."""
    rfd, wfd = p.pipe()
    for fd in (rfd, wfd):
        p.fcntl(fd, F_SETFL, p.fcntl(fd, F_GETFL) | O_NONBLOCK)
    buf = _buf(p, n)
    out = []
    for call in (lambda: p.read(rfd, buf, 16), lambda: p.write(wfd, buf, n),
                 lambda: p.write(wfd, buf, n)):
        try:
            out.append(call())
        except KernelError as e:
            out.append(e.code)
    p.close(rfd)
    p.close(wfd)
    return tuple(out)


def op_open_err(p, c, how):
    if how == "missing":
        return p.open("/tmp/nonexistent/x")
    if how == "dir_write":
        return p.open("/tmp", O_WRONLY)
    if how == "notdir":
        return p.open("/dev/null/x")
    return p.open("/etc/none")


def op_mmap_anon(p, c, npages, writable, shared, seed):
    prot = PROT_READ | (PROT_WRITE if writable else 0)
    va = p.mmap(0, npages * PAGE, prot, (MAP_SHARED if shared else MAP_PRIVATE) | MAP_ANONYMOUS)
    c.regions.append((va, npages, writable))
    if writable:
        for i in range(npages):
            p.store(va + i * PAGE + seed % 64, _data(seed + i, 4))
    return va, tuple(p.load(va + i * PAGE + seed % 64, 4) for i in range(npages))


def op_mmap_file(p, c, name, n, shared, seed, off_page):
    """A file mapped shared (stores reach the file) or private (they do not)."""
    fd = p.open(FILES[name], O_CREAT | O_RDWR | O_TRUNC)
    buf = _buf(p, n)
    p.store(buf, _data(seed, n))
    p.write(fd, buf, n)
    length = n - off_page * PAGE
    va = p.mmap(0, length, PROT_READ | PROT_WRITE, MAP_SHARED if shared else MAP_PRIVATE, fd,
                off_page * PAGE)
    before = p.load(va, min(length, 16))
    p.store(va + 3, b"ZZ")
    after = p.load(va, 8)
    p.lseek(fd, off_page * PAGE, SEEK_SET)
    got = p.read(fd, buf, 8)
    seen = p.load(buf, got)
    p.munmap(va, length)
    p.close(fd)
    return va, before, after, seen


def _segv(p, how):
    if how == "write_ro_anon":
        va = p.mmap(0, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS)
        p.load(va, 4)
        p.store(va, b"x")
    elif how == "write_ro_file":
        fd = p.open("/bin/simple")
        va = p.mmap(0, PAGE, PROT_READ, MAP_PRIVATE, fd, 0)
        p.load(va, 4)
        p.store(va, b"x")
    elif how == "after_munmap":
        va = p.mmap(0, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
        p.store(va + PAGE, b"y")
        p.munmap(va, 2 * PAGE)
        p.load(va + PAGE, 1)
    elif how == "write_text":
        p.store(TEXT_BASE + 16, b"x")
    elif how == "unmapped":
        p.load(0x50000000, 4)
    elif how == "kernel":
        p.load(0xC0001000, 4)
    elif how == "beyond_file":          # a shared mapping's page wholly beyond the end: SIGBUS
        fd = p.open("/tmp/small", O_CREAT | O_RDWR)
        buf = p.malloc(16)
        p.write(fd, buf, 16)
        va = p.mmap(0, 3 * PAGE, PROT_READ, MAP_SHARED, fd, 0)
        p.load(va + 2 * PAGE, 1)
    return 99                                   # not reached: the access kills the child


SEGV = ("write_ro_anon", "write_ro_file", "after_munmap", "write_text", "unmapped", "kernel",
        "beyond_file")
SIGNAL_OF = dict.fromkeys(SEGV, 11) | {"beyond_file": 7}       # SIGSEGV; SIGBUS


def _segv_child(p, how, catch):
    if catch:                           # catching the signal does not save the process
        try:
            return _segv(p, how)
        except KernelError:
            return 9
    return _segv(p, how)


def op_segv_child(p, c, how, catch):
    pid = p.fork(_segv_child, how, catch)
    return p.wait4(pid)


def op_munmap(p, c, how):
    if how == "region" and c.regions:
        va, n, _w = c.regions.pop(0)
        return p.munmap(va, n * PAGE)
    if how == "half" and c.regions:
        va, n, w = c.regions[0]
        if n > 1:
            c.regions[0] = (va + PAGE, n - 1, w)
        else:
            c.regions.pop(0)
        return p.munmap(va, PAGE)
    if how == "unaligned":
        return p.munmap(0x40000010, PAGE)
    if how == "zero_length":
        return p.munmap(0x40000000, 0)
    return p.munmap(0x70000000, 3 * PAGE)        # nothing there: not an error in Linux


def op_touch_regions(p, c, seed, write):
    """Loads (and stores, in writable regions) in every region still mapped: what stays must
    stay, a write after fork copies."""
    out = []
    for va, n, writable in c.regions:
        for i in range(n):
            a = va + i * PAGE + seed % 128
            if write and writable:
                p.store(a, _data(seed + i, 2))
            out.append(p.load(a, 2))
    return tuple(out)


def _exec_child(p, path, argv):
    try:
        p.execve(path, argv)
    except KernelError as e:
        return {"ENOENT": 2, "EACCES": 13, "ENOEXEC": 8}.get(e.code, 99)


EXECS = (("/bin/simple", None), ("/bin/hello", None), ("/bin/sh", ["sh", "-c", "/bin/simple"]),
         ("/bin/nonexistent", None), ("/lib/libc.so.5", None), ("/tmp", None),
         ("/dev/null", None))


def op_exec_child(p, c, which):
    path, argv = EXECS[which]
    pid = p.fork(_exec_child, path, argv)
    return p.wait4(pid)


def op_udp(p, c, n, seed, port):
    a = p.socket(AF_INET, SOCK_DGRAM)
    b = p.socket(AF_INET, SOCK_DGRAM)
    try:
        p.bind(a, port)
        buf = _buf(p, n)
        p.store(buf, _data(seed, n))
        sent = p.sendto(b, buf, n, port)
        out = _buf(p, n)
        got, _src = p.recvfrom(a, out, n)
        return sent, got, p.load(out, got)
    finally:
        p.close(a)
        p.close(b)


def _sharer(p, va, n, seed):
    for i in range(n):
        p.store(va + i * PAGE + 8, _data(seed + 50 + i, 4))
    return 0


def op_share_child(p, c, npages, shared, seed):
    """A region written before fork, written again by the child: a MAP_SHARED file mapping
    shows the child's stores to the parent, private anonymous memory (copy-on-write) does
    not.  (Linux 2.0 has no shared anonymous memory: MAP_SHARED needs a file.)"""
    if shared:
        fd = p.open(f"/tmp/share{seed}", O_CREAT | O_RDWR | O_TRUNC)
        p.write(fd, _buf(p, npages * PAGE), npages * PAGE)          # zeros
        va = p.mmap(0, npages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        p.close(fd)
    else:
        va = p.mmap(0, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS)
    c.regions.append((va, npages, True))
    for i in range(0, npages, 2):                    # some pages present at fork, some not
        p.store(va + i * PAGE + 8, _data(seed + i, 4))
    pid = p.fork(_sharer, va, npages, seed)
    st = p.wait4(pid)
    return st, tuple(p.load(va + i * PAGE + 8, 4) for i in range(npages))


def _tcp_client(p, port, n, seed):
    s = p.socket(AF_INET, SOCK_STREAM)
    p.connect(s, port)
    buf = _buf(p, n)
    p.store(buf, _data(seed, n))
    sent = p.send(s, buf, n)
    p.close(s)
    return sent & 0xFF


def op_tcp(p, c, n, seed, port):
    ls = p.socket(AF_INET, SOCK_STREAM)
    try:
        p.bind(ls, port)
        p.listen(ls)
        pid = p.fork(_tcp_client, port, n, seed)
        s = p.accept(ls)
        buf = _buf(p, n)
        total = 0
        while True:
            got = p.recv(s, buf + total, n - total) if total < n else 0
            if got == 0:
                break
            total += got
        p.close(s)
        return total, p.load(buf, total), p.wait4(pid)
    finally:
        p.close(ls)


def op_dup(p, c, seed):
    r, w = p.pipe()
    w2 = p.dup(w)
    p.close(w)
    buf = _buf(p, 4)
    p.store(buf, _data(seed, 4))
    out = (w2, p.write(w2, buf, 4), p.read(r, buf, 8))
    p.close(w2)
    return out + (p.read(r, buf, 8),)


def op_pipe_region(p, c, idx, seed, into, n):
    """The kernel copies into or out of a region (maybe never touched, maybe shared
    copy-on-write with a parent or child): read() into it breaks the sharing, write() from
    it sees what the process sees."""
    if not c.regions:
        return None
    va, npages, writable = c.regions[idx % len(c.regions)]
    a = va + (seed * 53) % (npages * PAGE - n + 1)
    r, w = p.pipe()
    try:
        if into:
            src = _buf(p, n)
            p.store(src, _data(seed, n))
            p.write(w, src, n)
            got = p.read(r, a, n)            # EFAULT into a read-only region
            return got, p.load(a, n)
        sent = p.write(w, a, n)
        dst = _buf(p, n)
        return sent, p.read(r, dst, n), p.load(dst, n) == p.load(a, n)
    finally:
        p.close(r)
        p.close(w)


def op_mmap_fixed(p, c, idx, npages, seed):
    """MAP_FIXED over (part of) a region replaces what was there with zero-fill memory."""
    if not c.regions:
        return None
    va, n, _w = c.regions.pop(idx % len(c.regions))
    got = p.mmap(va, npages * PAGE, PROT_READ | PROT_WRITE,
                 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS)
    c.regions.append((got, npages, True))
    if n > npages:
        c.regions.append((va + npages * PAGE, n - npages, _w))
    before = p.load(got + seed, 4)
    p.store(got + seed, _data(seed, 4))
    return got, before, p.load(got + seed, 4)


def op_map_file(p, c, name, n, shared, writable, seed):
    """A file mapping kept as a region (file pages from the cache, shared or private)."""
    fd = p.open(FILES[name], O_CREAT | O_RDWR | O_TRUNC)
    buf = _buf(p, n)
    p.store(buf, _data(seed, n))
    p.write(fd, buf, n)
    va = p.mmap(0, n, PROT_READ | (PROT_WRITE if writable else 0),
                MAP_SHARED if shared else MAP_PRIVATE, fd, 0)
    p.close(fd)
    c.regions.append((va, -(-n // PAGE), writable))
    return va, p.load(va + n - 1, 1)


def op_orphan(p, c, prog, status):
    """A child nobody waits for: it may outlive its parent (init adopts it)."""
    return p.fork(_child_run, c, tuple(c.regions), prog, status)


OPS = {f.__name__[3:]: f for f in (op_map_file, op_pipe_region, op_mmap_fixed, op_orphan, op_share_child, op_tcp, op_dup, op_getpid, op_heap, op_brk, op_fork, op_wait, op_pipe_self,
                                   op_pipe_child, op_epipe, op_bad_fd, op_file, op_open_err,
                                   op_mmap_anon, op_mmap_file, op_segv_child, op_munmap,
                                   op_touch_regions, op_exec_child, op_udp, op_fsync,
                                   op_fcntl_nonblock)}


def _norm(x):
    """A trace value without Python object identities (dicts sorted, lists as tuples)."""
    if isinstance(x, dict):
        return tuple(sorted((k, _norm(v)) for k, v in x.items()))
    if isinstance(x, (list, tuple)):
        return tuple(_norm(v) for v in x)
    return x


def run_ops(p, c, prog):
    """Run `prog` in process `p`; the observable trace: (op, result or errno name)."""
    trace = []
    for op in prog:
        name, args = op[0], op[1:]
        try:
            r = ("ok", _norm(OPS[name](p, c, *args)))
        except KernelError as e:         # typed errors only: anything else escapes the run
            r = ("error", e.code)
        trace.append((name, r))
        c.violations.extend(check_views(p))
    for pid in c.kids:                   # reap what the program forked and did not wait for
        try:
            p.wait4(pid)
        except KernelError:
            pass
    c.violations.extend(check_views(p))
    return trace


def main_program(p, traces, violations, prog):
    c = Ctx(traces, violations, 0)
    traces["main"] = run_ops(p, c, prog)
    return 0


# ---------------------------------------------------------------------- platform views
PERM_W = 2


def check_views(p):
    """Where the platform says a page of this process is mapped, Linux's logical page table
    has that page there, with at least the rights the platform gives (no stale frame, no
    write right Linux withdrew).  Returns a list of violations (empty when clean)."""
    k, proc = p.kernel, p.proc
    arch, m, ptes = k.arch, k.m, proc.mm.ptes
    bad = []

    def agree(where, va, pa, writable):
        pte = ptes.get(va // PAGE)
        if pte is None:
            bad.append(f"{arch.name}: {where} maps 0x{va:x} -> 0x{pa:x}, Linux has no page")
        elif pte.pa != pa:
            bad.append(f"{arch.name}: {where} maps 0x{va:x} -> 0x{pa:x}, Linux 0x{pte.pa:x}")
        elif writable and not pte.writable:
            bad.append(f"{arch.name}: {where} lets 0x{va:x} be written, Linux does not")

    space = proc.ctx.space
    for vpn in sorted(ptes):                   # the MMU (every platform's hardware table)
        t = m.translate(space, vpn * PAGE)
        if t is not None:
            agree("MMU", vpn * PAGE, t[0] - t[0] % PAGE, bool(t[1] & PERM_W))
        elif arch.name == "linux":              # native Linux's table is the hardware's
            bad.append(f"linux: 0x{vpn * PAGE:x} is in Linux's table but not the MMU's")
    if arch.name.startswith("l4linux"):
        ctx = proc.ctx
        lib = range(ctx.emu_va, ctx.emu_va + arch.library.size)
        for va, (pa, rights) in sorted(arch.k.mappings(ctx.task).items()):
            if va not in lib:
                agree("L4 mapping database", va, pa, "w" in rights)
        for va, (pa, perms) in sorted(ctx.logical.items()):
            agree("server's logical table", va, pa, "w" in perms)
    elif arch.name.startswith("mklinux"):
        for va, (pa, prot) in sorted(arch.mach.pmaps.maps.get(space, {}).items()):
            if va < k.task_size:
                agree("Mach pmap", va, pa, bool(prot & 2))
    return bad


# ---------------------------------------------------------------------- running everywhere
def run_everywhere(prog):
    """{system: (traces, exit status, frames lost)}, checking views on the way."""
    out = {}
    for system in SYSTEMS:
        k = boot(system, log_syscalls=False)
        before = allocated_frames(k)
        traces, violations = {}, []
        proc = k.spawn(main_program, traces, violations, prog, name="prog")
        k.run()                                  # raises what a program did not catch
        assert not k.procs.live(), (system, k.ps())
        assert violations == [], violations
        assert _platform_leftovers(k) == [], (system, _platform_leftovers(k))
        lost = allocated_frames(k) - before - kept_frames(k)
        out[system] = (traces, proc.exit_status, lost)
    return out


def _platform_leftovers(k):
    """What the platform still holds for processes that have all exited: L4 tasks, Mach
    tasks and the server's per-process contexts."""
    arch = k.arch
    if arch.name.startswith("l4linux"):
        return sorted(t.name for t in arch.k.tasks.values()
                      if t.alive and t.name.startswith("linux-") and t is not arch.server_task)
    if arch.name.startswith("mklinux"):
        return sorted(arch.contexts) + sorted(
            t.name for t in arch.mach.tasks.values() if t.alive and t.name.startswith("linux")
            and t is not arch.server)
    return []


def assert_same_everywhere(prog):
    out = run_everywhere(prog)
    ref = out["linux"]
    for system in SYSTEMS[1:]:
        assert out[system][:2] == ref[:2], (system, prog, _diff(ref[0], out[system][0]))
    codes = {r[1] for t in ref[0].values() for _n, r in t if r[0] == "error"}
    assert codes <= set(ERRNO) | {"SIGSEGV"}, f"not Linux's errors: {codes - set(ERRNO)}"
    for system in SYSTEMS:
        assert not out[system][2], f"{system}: frames {sorted(out[system][2])} lost by {prog}"
    return ref


def _diff(a, b):
    for key in sorted(set(a) | set(b), key=str):
        ta, tb = a.get(key), b.get(key)
        if ta != tb:
            if ta is None or tb is None:
                return key, ta, tb
            for i, (x, y) in enumerate(zip(ta, tb)):
                if x != y:
                    return key, i, x, y
            return key, len(ta), len(tb)
    return None


# ---------------------------------------------------------------------- the strategy
seeds = st.integers(0, 255)


def leaf_ops():
    return st.one_of(
        st.tuples(st.just("getpid")),
        st.tuples(st.just("heap"), st.integers(1, 12), seeds),
        st.tuples(st.just("brk"), st.integers(0, 5)),
        st.tuples(st.just("pipe_self"), st.integers(1, 4096), seeds, st.integers(1, 4200)),
        st.tuples(st.just("pipe_child"), st.integers(1, 9000), seeds),
        st.tuples(st.just("epipe"), st.integers(1, 64)),
        st.tuples(st.just("bad_fd"), st.sampled_from(["read_closed", "write_read_end",
                                                      "close_twice", "lseek_pipe", "never"])),
        st.tuples(st.just("file"), st.integers(0, 1), st.integers(0, 9000), seeds,
                  st.integers(0, 9000), st.integers(0, 5000), st.booleans()),
        st.tuples(st.just("fsync"), st.integers(0, 1), st.integers(1, 9000), seeds,
                  st.booleans()),
        st.tuples(st.just("fcntl_nonblock"), st.integers(1, 9000)),
        st.tuples(st.just("open_err"), st.sampled_from(["missing", "dir_write", "notdir",
                                                        "plain"])),
        st.tuples(st.just("mmap_anon"), st.integers(1, 4), st.booleans(), st.booleans(), seeds),
        st.tuples(st.just("mmap_file"), st.integers(0, 1), st.integers(1, 3 * PAGE), st.booleans(),
                  seeds, st.just(0)),
        st.tuples(st.just("segv_child"), st.sampled_from(SEGV), st.booleans()),
        st.tuples(st.just("munmap"), st.sampled_from(["region", "half", "unaligned",
                                                      "zero_length", "nothing"])),
        st.tuples(st.just("touch_regions"), seeds, st.booleans()),
        st.tuples(st.just("exec_child"), st.integers(0, len(EXECS) - 1)),
        st.tuples(st.just("udp"), st.integers(1, 1400), seeds, st.integers(1000, 1003)),
        st.tuples(st.just("share_child"), st.integers(1, 4), st.booleans(), seeds),
        st.tuples(st.just("tcp"), st.integers(1, 20000), seeds, st.integers(2000, 2002)),
        st.tuples(st.just("dup"), seeds),
        st.tuples(st.just("pipe_region"), st.integers(0, 3), seeds, st.booleans(),
                  st.integers(1, PAGE)),
        st.tuples(st.just("map_file"), st.integers(0, 1), st.integers(1, 3 * PAGE),
                  st.booleans(), st.booleans(), seeds),
        st.tuples(st.just("mmap_fixed"), st.integers(0, 3), st.integers(1, 3), seeds),
    )


def programs(depth=0):
    ops = [leaf_ops()]
    if depth < 2:
        ops.append(st.tuples(st.just("fork"), st.integers(0, 255),
                             st.deferred(lambda: programs(depth + 1))))
        ops.append(st.tuples(st.just("wait"), st.sampled_from(["any", "last", "bogus"])))
        ops.append(st.tuples(st.just("orphan"), st.deferred(lambda: programs(depth + 1)),
                             st.integers(0, 255)))
    return st.lists(st.one_of(*ops), min_size=1, max_size=6 if depth == 0 else 3).map(tuple)


# ---------------------------------------------------------------------- the tests
@settings(max_examples=200, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(prog=programs())
@example(prog=(("pipe_self", 1, 0, 1), ("fork", 0, (("pipe_self", 1, 0, 1),)),
               ("pipe_self", 1, 0, 1)))            # cow reuse in a fork child (L4, Mach)
@example(prog=(("segv_child", "write_ro_anon", False),))     # refused unlock (MkLinux)
@example(prog=(("map_file", 0, 1, False, False, 0),
               ("mmap_file", 0, 1, False, 0, 0)))          # O_TRUNC of a mapped file
@example(prog=(("fsync", 0, 5000, 3, False), ("fcntl_nonblock", 5000),
               ("fsync", 1, 100, 4, True)))                # fsync, sync, non-blocking pipe
def test_a_random_program_gives_the_same_trace_on_every_platform(prog):
    """S97 §4: Linux's architecture-independent part runs unchanged on each platform, so a
    program sees the same return values, errnos, bytes, statuses and memory contents on all
    five; every failure is a typed KernelError; the platform's mappings agree with Linux's
    logical page table; no frame is lost once every process has exited."""
    assert_same_everywhere(prog)


FIXED = [
    (("getpid",), ("heap", 3, 5), ("fork", 3, (("getpid",), ("pipe_self", 10, 1, 10))),
     ("wait", "any"), ("wait", "any")),
    (("file", 0, 5000, 9, 4090, 100, False), ("mmap_file", 0, 5000, True, 3, 0),
     ("mmap_file", 1, 300, False, 4, 0)),
    (("mmap_anon", 2, True, False, 7), ("fork", 0, (("touch_regions", 3, True),
                                                    ("munmap", "half"))),
     ("wait", "last"), ("touch_regions", 3, False), ("munmap", "region"),
     ("segv_child", "after_munmap", True)),
    tuple(("segv_child", how, False) for how in SEGV),
    tuple(("exec_child", i) for i in range(len(EXECS))),
    (("share_child", 3, True, 1), ("share_child", 3, False, 2), ("tcp", 9000, 3, 2000),
     ("dup", 4)),
    (("pipe_child", 9000, 1), ("epipe", 5), ("bad_fd", "read_closed"), ("brk", 3),
     ("udp", 100, 2, 1000), ("munmap", "unaligned"), ("open_err", "missing")),
]


@pytest.mark.parametrize("prog", FIXED, ids=[f"fixed{i}" for i in range(len(FIXED))])
def test_fixed_programs_give_the_same_trace_on_every_platform(prog):
    """The same rule on hand-written programs that use every operation, whose traces are
    also checked against what Linux 2.0 returns (bytes, statuses, errnos)."""
    traces, status, _lost = assert_same_everywhere(prog)
    assert status == 0
    main = dict((n, r) for n, r in traces["main"])        # (the last result of each op)
    res = [r for _n, r in traces["main"]]
    i = FIXED.index(prog)
    if i == 0:
        assert res[3:] == [("ok", (3, 3 << 8)), ("error", "ECHILD")]
        assert traces[3][1][1][1][4] == _data(1, 10)          # the child's own pipe
    elif i == 1:
        data = _data(9, 5000)
        assert res[0] == ("ok", (5000, 4090, 100, data[4090:4190], 5000, 5000, 5000))
        _va, before, after, seen = res[1][1]
        assert after == before[:3] + b"ZZ" + before[5:8] and seen == after    # shared
        _va, before, after, seen = res[2][1]
        assert after == before[:3] + b"ZZ" + before[5:8] and seen == before[:8]  # private
    elif i == 2:                         # the child's stores and munmap are its own
        assert traces[3] == [("touch_regions", ("ok", (_data(3, 2), _data(4, 2)))),
                             ("munmap", ("ok", 0))]
        assert res[2:] == [("ok", (3, 0)), ("ok", (bytes(2), bytes(2))), ("ok", 0),
                           ("ok", (4, 11))]
    elif i == 3:
        assert [r[1][1] for r in res] == [SIGNAL_OF[h] for h in SEGV]  # SIGSEGV, SIGBUS
    elif i == 4:                         # ENOENT, ENOEXEC, EACCES (directory, device)
        assert [r[1][1] >> 8 for r in res] == [0, 0, 0, 2, 8, 13, 13]
    elif i == 5:
        # MAP_SHARED (of a file): every page is the page cache's, so all the child's stores
        # show, on pages present at fork or not.  MAP_PRIVATE: the parent's bytes.
        (_st, shared), (_st2, private) = res[0][1], res[1][1]
        assert shared == (_data(51, 4), _data(52, 4), _data(53, 4))
        assert private == (_data(2, 4), bytes(4), _data(4, 4))
        assert main["tcp"][1][:2] == (9000, _data(3, 9000))
        assert main["dup"] == ("ok", (5, 4, 4, 0))
    elif i == 6:
        data = _data(1, 9000)
        assert main["pipe_child"][1] == (9000, (3, ((sum(data) + 9000) & 0xFF) << 8))
        assert main["epipe"] == ("ok", 13)               # killed by SIGPIPE
        assert main["bad_fd"] == ("error", "EBADF")
        cur, new, got, back = main["brk"][1]
        assert (new - cur, got, back) == (3 * PAGE, b"\x5a", cur)
        assert main["udp"][1] == (100, 100, _data(2, 100))
        assert main["munmap"] == ("error", "EINVAL") and main["open_err"] == ("error", "ENOENT")


# ---------------------------------------------------------------------- regressions
def _on_every_platform(program):
    """{system: (result, exit status)} of `program` run alone on each platform."""
    out = {}
    for system in SYSTEMS:
        k = boot(system)
        proc = k.spawn(program)
        k.run()
        out[system] = (proc.result, proc.exit_status)
    return out


def _reuse_in_child(p):
    buf = p.malloc(64)
    p.store(buf, b"parent")

    def child(c):
        c.store(buf, b"child!")
        return 3 if c.load(buf, 6) == b"child!" else 4
    pid = p.fork(child)
    p.store(buf, b"parnt2")             # the parent copies first: the child's page is its own
    return p.wait4(pid)[1], p.load(buf, 6)


def test_a_fork_child_writing_a_page_it_alone_still_holds_gets_it_mapped():
    """do_wp_page: a write to a copy-on-write page whose other sharers are gone reuses the
    frame (Linux only makes its PTE writable).  A fork child on L4Linux or MkLinux never had
    that page in its L4 task / Mach memory object (the child faults its pages in), so the
    fault's answer must map it from Linux's logical page table -- before the fix L4 raised
    L4_SIM_PF_UNRESOLVED and Mach timed the request out (RCV_TIMED_OUT)."""
    out = _on_every_platform(_reuse_in_child)
    assert set(out.values()) == {((3 << 8, b"parnt2"), 0)}, out


def _write_read_only(p):
    def child(c):
        va = c.mmap(0, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS)
        c.load(va, 4)                   # present now (the zero page), read-only
        c.store(va, b"x")               # SIGSEGV
        return 7
    return p.wait4(p.fork(child))[1]


def test_a_write_to_a_present_read_only_page_kills_with_sigsegv_on_every_platform():
    """A write to a present page whose VMA forbids writing is SIGSEGV (wait status 11).  On
    MkLinux the page is write-locked in Mach's object, so the write comes to the server as
    pager_data_unlock; Linux refuses it -- and pager_data_error answers only data requests, so
    the refusal must not leave the thread waiting until the pager timeout (RCV_TIMED_OUT)."""
    out = _on_every_platform(_write_read_only)
    assert set(out.values()) == {(11, 11 << 8)}, out        # the parent exits with it


def _truncate_mapped(p):
    fd = p.open("/tmp/t", O_CREAT | O_RDWR)
    buf = p.malloc(PAGE)
    p.store(buf, b"abc")
    p.write(fd, buf, PAGE)
    shared = p.mmap(0, PAGE, PROT_READ, MAP_SHARED, fd, 0)
    private = p.mmap(0, PAGE, PROT_READ, MAP_PRIVATE, fd, 0)
    first = p.load(shared, 3), p.load(private, 3)     # the cache's frame is mapped now
    p.close(p.open("/tmp/t", O_RDWR | O_TRUNC))

    def child(c, va):
        return 40 + c.load(va, 1)[0]            # beyond the end of the file now
    return (first, p.wait4(p.fork(child, shared))[1], p.wait4(p.fork(child, private))[1],
            p.fstat(fd)["size"])


def test_truncating_a_mapped_file_takes_its_pages_from_the_mappings():
    """open(O_TRUNC) of a file a process has mapped: Linux 2.0's vmtruncate zaps the mapped
    pages before the cache drops them; a later access beyond the new end of the file is
    SIGBUS through a shared mapping (wait status 7) and reads a zero page through a private
    one (filemap_nopage).  Before the fix the cache found its frame still mapped and the
    kernel stopped with a bare AssertionError, on every platform."""
    out = _on_every_platform(_truncate_mapped)
    assert set(out.values()) == {(((b"abc", b"abc"), 7, 40 << 8, 0), 0)}, out


def _map_more_than_the_cache(p):
    fd = p.open("/tmp/big", O_CREAT | O_RDWR)
    buf = p.malloc(PAGE)
    for i in range(12):
        p.store(buf, bytes([i + 1]))
        p.write(fd, buf, PAGE)

    def child(c):
        va = c.mmap(0, 12 * PAGE, PROT_READ, MAP_SHARED, fd, 0)
        return sum(c.load(va + i * PAGE, 1)[0] for i in range(12))     # 8 buffers: killed
    status = p.wait4(p.fork(child))[1]
    return status, p.getpid() == p.pid         # the parent runs on after its child's death


def test_a_page_fault_that_finds_no_memory_kills_the_process_with_sigkill():
    """A page fault that needs a cache buffer when every buffer is mapped has no error to
    return to a memory access: Linux 2.0's oom() kills the faulting process with SIGKILL
    (wait status 9) and the rest of the system runs on.  Before the fix the ENOMEM escaped
    the process and stopped the whole simulation (`run()` raised)."""
    out = {}
    for system in SYSTEMS:
        k = boot(system, buffer_cache_pages=8)
        proc = k.spawn(_map_more_than_the_cache)
        k.run()
        out[system] = (proc.result, proc.exit_status)
        assert k.m.events.find("oom", kernel="linux"), system
    assert set(out.values()) == {((9, True), 0)}, out
