"""A reference-model test of native Linux's files, descriptors and pipes (Linux 2.0's
fs/open.c, fs/namei.c, fs/read_write.c, fs/pipe.c, fs/buffer.c, fs/ext2/fsync.c,
drivers/char/mem.c; POSIX.1 where Linux 2.0 leaves a choice open).

The differential test (test_differential_platforms) shows that the five platforms agree; they
all run this same Linux, so a fault in Linux's own semantics is invisible to it.  Here
hypothesis draws small random *programs* over files, descriptors and pipes, an interpreter
runs each on `boot("linux")` and records the observable trace (return values, errno names,
bytes read, stat sizes, wait statuses, what fsync and sync leave on the disk), and `Oracle` --
a plain-Python model written from the rules below, sharing no code with lab.mono's fs, bcache
or pipe -- predicts the trace.  They must be equal, and at the end every file's bytes (cache
and disk) are the model's and no frame is lost.

Rules the model states:
  * Descriptors: open, dup and pipe take the lowest free descriptors (0, 1, 2 are /dev/null);
    a process has NR_OPEN = 256 of them (EMFILE, checked before the path is looked at, so a
    full table creates or truncates nothing; pipe needs two).  close frees one; any use of a
    closed or never-opened descriptor is EBADF.  dup and fork share the open file: one offset.
  * open: access mode O_RDONLY/O_WRONLY/O_RDWR (mode 3 is EINVAL: POSIX's choice, Linux 2.0's
    special mode is not modelled); an empty path is ENOENT (getname, before EMFILE); a
    missing component is ENOENT, a component that is not a directory ENOTDIR (a name followed
    by "/" too: dir_namei; empty components are ignored; a relative path starts at the
    working directory, "/"); O_CREAT makes a missing regular file in an existing directory
    (not "name/"); a directory opened with write access, O_CREAT or O_TRUNC is EISDIR
    (open_namei's `flag & 2`); O_TRUNC empties a regular file whatever the access mode
    (do_open sets write intent for it), and is ignored on a device; O_APPEND moves the offset
    to the end before each write.
  * read: EBADF unless open for reading; a negative count is EFAULT (the count is unsigned:
    ~4 GB fail verify_area); 0 bytes asked is 0; else min(count, size - offset) bytes (0 at
    or past end of file) from the offset, which advances; a directory is EISDIR
    (ext2_dir_read).  write: EBADF unless open for writing, EFAULT for a negative count; at
    the offset (the end with O_APPEND); a gap past the end reads back as zeros; the size
    grows to the new offset.
  * lseek: EBADF; whence > 2 is EINVAL (before the file's own lseek); a pipe is ESPIPE;
    /dev/null always answers 0 (null_lseek); otherwise SEEK_SET/CUR/END from 0, the offset
    or the size, a negative result EINVAL (offset unchanged).  Seeking past the end is fine.
  * stat/fstat: the file's type (regular, directory, character device, FIFO) and size: of
    a regular file its bytes; /dev/null 0; a pipe 0 (Linux 2.0 counts a pipe's bytes in
    pipe_i.len, not in i_size); a directory's size is the file system's (not compared).
  * Pipes: bytes come out in the order they went in; a read takes what is there (up to its
    count), returns 0 once the pipe is empty and no writer is left, and sleeps while it is
    empty and a writer exists (woken by a writer in another process); a write of at most
    PIPE_BUF bytes goes in whole (writes of several writers never interleave inside one);
    a larger write is split as room appears and returns its full count; a write with no
    reader left sends SIGPIPE, whose default action kills the writer before it sees the
    EPIPE: its program ends there and wait4 reports signal 13.  A program never makes a
    call that would sleep forever (the model marks it `skipped` and neither side runs it).
  * fork: the child gets a copy of the descriptor table sharing every open file (its reads,
    writes and lseeks move the parent's offsets); its exit closes its descriptors (a pipe's
    last writer gone is end of file for the reader); wait4 returns its pid and exit status.
  * The buffer cache has two buffers, so big files span evictions: what was written
    is read back, through close and reopen, from the cache or the disk.
  * fsync (fs/buffer.c's sys_fsync, ext2_sync_file): EBADF for a descriptor not open; a
    pipe end or a character device (a socket too, not drawn here) has no f_op->fsync:
    EINVAL; a regular file or a directory is 0.  Afterwards each page of a regular file
    that has a disk block holds the file's current bytes on the disk, zero-padded to the
    page (a hole has no block and reads as zeros); the write-backs were exactly that file's
    dirty buffers, each once (no other file's), and they are clean.  sync (sys_sync:
    fsync_dev(0)) is 0 and writes back every dirty buffer once: none is dirty after, every
    regular file is on the disk; so does fsync of a directory (ext2's directories use
    file_fsync, which is fsync_dev(inode->i_dev)).  The model knows only the files' bytes: it predicts each
    disk image equals them.
"""
import hashlib
import os

from hypothesis import event, example, given, settings, strategies as st

from lab.errors import KernelError
from lab.linux import boot
from lab.mono.abi import (O_APPEND, O_CREAT, O_RDONLY, O_RDWR, O_TRUNC, O_WRONLY, PIPE_BUF,
                          SEEK_CUR, SEEK_END, SEEK_SET, exit_status, signal_status)
from mono_helpers import allocated_frames, call, kept_frames, run_ops

PAGE = 4096
NR_OPEN = 256                   # Linux 2.0's per-process descriptor table
CACHE_PAGES = 2                 # a small buffer cache: big files are evicted and re-read
BUFSZ = 4 * PAGE + 512          # each process's I/O buffer
PATHS = ("/tmp/a", "/tmp/b", "/tmp/c", "/tmp", "/dev/null", "/tmp/a/x", "/tmp/zz/y", "/",
         "/dev/null/x", "", "/tmp/a/", "/tmp/", "/tmp/c/", "//tmp//b", "tmp/c")
ANY = "<unspecified>"           # a value the rules leave open: not compared
EXAMPLES = int(os.environ.get("FSMODEL_EXAMPLES", 300))   # more to hunt, by hand
MAIN_PID = 2                    # the first process spawned after boot (init is 1)


def _data(seed, n):
    """n deterministic bytes of a drawn seed."""
    return bytes((seed * 131 + i * 7 + (i >> 9)) & 0xFF for i in range(n))


# ====================================================================== the model
class OFile:
    """An open file: what it is, its access, its offset, how many descriptors hold it."""

    def __init__(self, kind, obj, acc, append=False):
        self.kind, self.obj, self.acc, self.append = kind, obj, acc, append
        self.pos, self.refs = 0, 1

    @property
    def readable(self):
        return self.acc in (O_RDONLY, O_RDWR)

    @property
    def writable(self):
        return self.acc in (O_WRONLY, O_RDWR)


class MPipe:
    def __init__(self):
        self.data = bytearray()
        self.readers = self.writers = 1


class Err(Exception):
    def __init__(self, name):
        super().__init__(name)
        self.name = name


class Unspecified(Exception):
    """The rules leave the outcome open (a value or an error): not compared."""


class Skip(Exception):
    """The call would sleep forever: the program does not make it."""


class Killed(Exception):
    """The call sent a signal whose default action kills the process (SIGPIPE)."""

    def __init__(self, signal):
        super().__init__(signal)
        self.signal = signal


SIGPIPE = 13


def _killed_by(trace):
    """The signal that ended a process whose trace this is, or None."""
    return trace[-1][1][1] if trace and trace[-1][1][0] == "killed" else None


class Oracle:
    """Linux 2.0's files, descriptors and pipes as plain Python (see the module's rules)."""

    DIRS = {"/", "/tmp", "/dev", "/bin", "/lib", "/etc"}

    def __init__(self):
        self.files = {}                         # path -> bytearray (the regular files we make)
        self.next_pid = MAIN_PID + 1
        self.null = OFile("null", None, O_RDWR)
        self.null.refs = 3

    # -- names --
    def kind(self, path):
        if path in self.DIRS:
            return "dir"
        if path == "/dev/null":
            return "null"
        if path in self.files:
            return "reg"
        return None

    def resolve(self, path):
        """The kind of `path`, or the errno of its lookup (ENOENT / ENOTDIR)."""
        if path == "":
            raise Err("ENOENT")
        parts = [c for c in path.split("/") if c]
        cur = "/"
        for c in parts[:-1]:
            cur = cur.rstrip("/") + "/" + c
            k = self.kind(cur)
            if k is None:
                raise Err("ENOENT")
            if k != "dir":
                raise Err("ENOTDIR")
        k = self.kind(self.norm(path))
        if k is None:
            raise Err("ENOENT")
        if path.endswith("/") and k != "dir":
            raise Err("ENOTDIR")                # "name/" must be a directory
        return k

    @staticmethod
    def norm(path):
        """The absolute path without empty components ("//tmp//b/" and "tmp/b" are "/tmp/b")."""
        return "/" + "/".join(c for c in path.split("/") if c)

    # -- descriptors --
    @staticmethod
    def lowest(fds):
        for fd in range(NR_OPEN):
            if fd not in fds:
                return fd
        raise Err("EMFILE")

    @staticmethod
    def get(fds, fd):
        if fd not in fds:
            raise Err("EBADF")
        return fds[fd]

    def drop(self, f):
        f.refs -= 1
        if f.refs == 0 and f.kind in ("pipe_r", "pipe_w"):
            if f.kind == "pipe_r":
                f.obj.readers -= 1
            else:
                f.obj.writers -= 1

    # -- system calls (fds: the calling process's table) --
    def open(self, fds, path, acc, flags):
        if path == "":
            raise Err("ENOENT")                 # getname: an empty name is no file
        fd = self.lowest(fds)                   # do_open: a descriptor first
        if acc not in (O_RDONLY, O_WRONLY, O_RDWR):
            raise Err("EINVAL")
        try:
            k = self.resolve(path)
        except Err as e:
            if e.name != "ENOENT" or not flags & O_CREAT or path.endswith("/"):
                raise
            path = self.norm(path)
            self.resolve(path.rsplit("/", 1)[0] or "/") == "dir" or self._raise("ENOTDIR")
            self.files[path] = bytearray()
            k = "reg"
        path = self.norm(path)
        if k == "dir" and (acc != O_RDONLY or flags & (O_CREAT | O_TRUNC)):
            raise Err("EISDIR")
        if k == "reg" and flags & O_TRUNC:
            self.files[path][:] = b""
        fds[fd] = OFile(k, path, acc, bool(flags & O_APPEND))
        return fd

    @staticmethod
    def _raise(name):
        raise Err(name)

    def close(self, fds, fd):
        self.drop(self.get(fds, fd))
        del fds[fd]
        return 0

    def dup(self, fds, fd):
        f = self.get(fds, fd)
        nfd = self.lowest(fds)
        fds[nfd] = f
        f.refs += 1
        return nfd

    def pipe(self, fds):
        r = self.lowest(fds)
        w = self.lowest(set(fds) | {r})
        p = MPipe()
        fds[r], fds[w] = OFile("pipe_r", p, O_RDONLY), OFile("pipe_w", p, O_WRONLY)
        return r, w

    def read(self, fds, fd, n):
        f = self.get(fds, fd)
        if not f.readable:
            raise Err("EBADF")
        if n < 0:
            raise Err("EFAULT")                 # count is unsigned: ~4 GB fail verify_area
        if n == 0:
            return b""
        if f.kind == "null":
            return b""
        if f.kind == "dir":
            raise Err("EISDIR")
        if f.kind == "pipe_r":
            p = f.obj
            if not p.data:
                if p.writers:
                    raise Skip()
                return b""
            out = bytes(p.data[:n])
            del p.data[:n]
            return out
        data = self.files[f.obj]
        out = bytes(data[f.pos:f.pos + n])
        f.pos += len(out)
        return out

    def write(self, fds, fd, payload, n):
        f = self.get(fds, fd)
        if not f.writable:
            raise Err("EBADF")
        if n < 0:
            raise Err("EFAULT")
        n = len(payload)
        if n == 0:
            return 0
        if f.kind == "null":
            return n
        if f.kind == "pipe_w":
            p = f.obj
            if not p.readers:
                raise Killed(SIGPIPE)           # pipe_write: send_sig(SIGPIPE), -EPIPE
            if n > PIPE_BUF or PIPE_BUF - len(p.data) < n:
                raise Skip()                    # sleeps until a reader makes room: none will
            p.data += payload
            return n
        data = self.files[f.obj]
        if f.append:
            f.pos = len(data)
        if f.pos > len(data):
            data += bytes(f.pos - len(data))
        data[f.pos:f.pos + n] = payload
        f.pos += n
        return n

    def lseek(self, fds, fd, off, whence):
        f = self.get(fds, fd)
        if whence not in (SEEK_SET, SEEK_CUR, SEEK_END):
            raise Err("EINVAL")
        if f.kind in ("pipe_r", "pipe_w"):
            raise Err("ESPIPE")
        if f.kind == "null":
            return 0
        if f.kind == "dir" and whence == SEEK_END:
            raise Unspecified()                 # a directory's size is the file system's
        base = {SEEK_SET: 0, SEEK_CUR: f.pos, SEEK_END: len(self.files.get(f.obj, b""))}[whence]
        if base + off < 0:
            raise Err("EINVAL")
        f.pos = base + off
        return f.pos

    TYPES = {"reg": "REG", "dir": "DIR", "null": "CHR", "pipe_r": "FIFO", "pipe_w": "FIFO"}

    def size_of(self, f_kind, path):
        """(file type, size) as stat reports them."""
        return self.TYPES[f_kind], self._size(f_kind, path)

    def _size(self, f_kind, path):
        if f_kind == "reg":
            return len(self.files[path])
        if f_kind in ("null", "pipe_r", "pipe_w"):
            return 0            # 2.0 keeps a pipe's length in pipe_i.len: its i_size stays 0
        return ANY              # a directory's size is the file system's

    def stat(self, path):
        return self.size_of(self.resolve(path), self.norm(path))

    def fstat(self, fds, fd):
        f = self.get(fds, fd)
        return self.size_of(f.kind, f.obj)

    def fsync(self, fds, fd):
        """0 for a regular file or a directory (their bytes go to the disk: `on_disk`)."""
        f = self.get(fds, fd)
        if f.kind not in ("reg", "dir"):
            raise Err("EINVAL")                 # a pipe, socket or device: no f_op->fsync
        return 0

    @staticmethod
    def sync():
        return 0

    @staticmethod
    def on_disk(data):
        """What the disk holds of a file with these bytes after fsync or sync: the bytes
        (size and digest), and True for zeros after them to the end of the last page."""
        return _digest(data), True

    def fork(self, fds):
        child = dict(fds)
        for f in child.values():
            f.refs += 1
        pid, self.next_pid = self.next_pid, self.next_pid + 1
        return pid, child

    def exit(self, fds):
        for fd in sorted(fds):
            self.drop(fds[fd])
        fds.clear()


# ====================================================================== programs
# An op is a tuple (name, *args).  A descriptor argument `sel` picks from the descriptors the
# process has been given so far, the most recent first (closed ones included: their use is
# EBADF), or is a raw fd.
def _fd(handles, sel):
    if sel < 0:
        return -sel - 1                         # a raw fd: -1 -> 0, -78 -> 77
    return handles[-1 - sel % len(handles)] if handles else sel % 3   # recent ones first


def _digest(data):
    """(size, digest) of a file's bytes."""
    return len(data), hashlib.sha1(bytes(data)).hexdigest()[:16]


def _result(fn, *args):
    try:
        return ("ok", fn(*args))
    except Err as e:
        return ("error", e.name)


def run_model(prog):
    """The oracle's traces of `prog` ({"main": [...], child pid: [...]}), the files' bytes,
    and the positions of the calls the program does not make."""
    o = Oracle()
    traces = {}
    fds = {0: o.null, 1: o.null, 2: o.null}
    skips = set()
    traces["main"] = _model_ops(o, fds, [], prog, traces, skips, ("main",))
    o.exit(fds)
    return traces, {p: bytes(d) for p, d in sorted(o.files.items())}, skips


def _model_ops(o, fds, handles, prog, traces, skips, key):
    """The model's trace of one process's ops; calls that would sleep forever are recorded
    in `skips` by position (the interpreter does not make them)."""
    trace = []
    for i, op in enumerate(prog):
        name, a = op[0], op[1:]
        try:
            r = _model_op(o, fds, handles, name, a, traces, skips, key + (i,))
        except Skip:
            r = ("skipped",)
            skips.add(key + (i,))
        except Unspecified:
            r = ANY
        except Killed as k:                     # the process dies here
            event(f"killed by signal {k.signal} ({'main' if len(key) == 1 else 'child'})")
            trace.append((name, ("killed", k.signal)))
            break
        trace.append((name, r))
    return trace


def _model_op(o, fds, handles, name, a, traces, skips, key):
    if name == "open":
        path, acc, flags = PATHS[a[0]], a[1], a[2]
        r = _result(o.open, fds, path, acc, flags)
        if r[0] == "ok":
            handles.append(r[1])
        return r
    if name == "close":
        return _result(o.close, fds, _fd(handles, a[0]))
    if name == "dup":
        r = _result(o.dup, fds, _fd(handles, a[0]))
        if r[0] == "ok":
            handles.append(r[1])
        return r
    if name == "dup_many":
        fd, n = _fd(handles, a[0]), a[1]
        got, err = [], None
        for _ in range(n):
            r = _result(o.dup, fds, fd)
            if r[0] != "ok":
                err = r[1]
                break
            got.append(r[1])
        handles.extend(got[:2])
        return ("ok", (len(got), tuple(got[:2]), got[-1] if got else None, err))
    if name == "close_from":
        lo = a[0]
        closed = [fd for fd in sorted(fds) if fd >= lo]
        for fd in closed:
            o.close(fds, fd)
        return ("ok", len(closed))
    if name == "pipe":
        r = _result(o.pipe, fds)
        if r[0] == "ok":
            handles.extend(r[1])
            if a and a[0] is not None:
                o.close(fds, r[1][a[0]])
        return r
    if name == "pipe_no_reader":               # write into a pipe whose read end is closed
        r = _result(o.pipe, fds)
        if r[0] != "ok":
            return r
        handles.extend(r[1])
        o.close(fds, r[1][0])
        return _result(o.write, fds, r[1][1], _data(a[1], a[0]), a[0])
    if name == "read":
        fd, n = _fd(handles, a[0]), a[1]
        r = _result(o.read, fds, fd, n)
        return ("ok", (len(r[1]), r[1])) if r[0] == "ok" else r
    if name == "write":
        fd, n, seed = _fd(handles, a[0]), a[1], a[2]
        return _result(o.write, fds, fd, _data(seed, max(n, 0)), n)
    if name == "lseek":
        return _result(o.lseek, fds, _fd(handles, a[0]), a[1], a[2])
    if name == "fstat":
        return _result(o.fstat, fds, _fd(handles, a[0]))
    if name == "stat":
        return _result(o.stat, PATHS[a[0]])
    if name == "rewrite":                      # open O_TRUNC, write, close, read it back
        path, n, seed = PATHS[a[0]], a[1], a[2]
        r = _result(o.open, fds, path, O_WRONLY, O_CREAT | O_TRUNC)
        if r[0] != "ok":
            return r
        wrote = o.write(fds, r[1], _data(seed, n), n)
        o.close(fds, r[1])
        return ("ok", (r[1], wrote, _model_op(o, fds, handles, "reopen_check", (a[0],),
                                              traces, skips, key)[1]))
    if name == "reopen_check":
        path = PATHS[a[0]]
        if o.kind(path) != "reg" or len(fds) == NR_OPEN:
            return ("ok", None)
        return ("ok", _digest(o.files[path]))
    if name == "fsync":                # (0, its disk image, wrote exactly its dirty buffers)
        fd = _fd(handles, a[0])
        r = _result(o.fsync, fds, fd)
        if r[0] == "ok" and fds[fd].kind == "reg":
            event("fsync of a regular file")
            return ("ok", (r[1], o.on_disk(o.files[fds[fd].obj]), True))
        if r[0] == "ok":                # a directory: file_fsync, every dirty buffer (as sync)
            event("fsync of a directory")
            return ("ok", (r[1], tuple((path, o.on_disk(d))
                                       for path, d in sorted(o.files.items())), True))
        return r
    if name == "sync":                 # (0, every file's disk image, wrote every dirty one)
        return ("ok", (o.sync(), tuple((path, o.on_disk(d))
                                       for path, d in sorted(o.files.items())), True))
    if name == "fork":
        sub, status = a[0], a[1]
        pid, cfds = o.fork(fds)
        traces[pid] = _model_ops(o, cfds, list(handles), sub, traces, skips, key)
        o.exit(cfds)
        sig = _killed_by(traces[pid])
        return ("ok", (True, signal_status(sig) if sig else exit_status(status)))
    if name == "pipe_to_parent":               # a child writes chunks, the parent drains
        chunks = a[0]
        r = _result(o.pipe, fds)
        if r[0] != "ok":
            return r
        rfd, wfd = r[1]
        _pid, cfds = o.fork(fds)
        o.exit(cfds)
        o.close(fds, rfd), o.close(fds, wfd)
        data = b"".join(_data(s, n) for n, s in chunks)
        return ("ok", (tuple(n for n, _s in chunks), len(data), data, exit_status(0)))
    if name == "pipe_to_child":                # the parent writes, a child drains
        n, seed = a[0], a[1]
        r = _result(o.pipe, fds)
        if r[0] != "ok":
            return r
        rfd, wfd = r[1]
        _pid, cfds = o.fork(fds)
        o.exit(cfds)
        o.close(fds, rfd), o.close(fds, wfd)
        return ("ok", (n, len(_data(seed, n)), _data(seed, n), exit_status(0)))
    if name == "pipe_atomic":                  # two children write chunks <= PIPE_BUF
        ca, cb = a[0], a[1]
        r = _result(o.pipe, fds)
        if r[0] != "ok":
            return r
        rfd, wfd = r[1]
        for _ in (ca, cb):
            _pid, cfds = o.fork(fds)
            o.exit(cfds)
        o.close(fds, rfd), o.close(fds, wfd)
        runs = tuple(tuple((i, n) for i, n in enumerate(c)) for c in (ca, cb))
        return ("ok", (sum(ca) + sum(cb), runs, (exit_status(0), exit_status(0))))
    raise AssertionError(f"unknown op {name}")


# ====================================================================== the interpreter
class Proc:
    """The interpreter's view of one process: its buffer and descriptor handles."""

    def __init__(self, p, buf, handles):
        self.p, self.buf, self.handles = p, buf, handles


def run_kernel(prog, skips):
    """Run `prog` on native Linux; (traces, files' bytes, frames lost)."""
    k = boot("linux", buffer_cache_pages=CACHE_PAGES, log_syscalls=False)
    before = allocated_frames(k)
    traces = {}
    k.spawn(_main, traces, prog, skips, name="prog")
    k.run()
    assert not k.procs.live(), k.ps()
    files = {}
    for path in PATHS[:3]:
        try:
            ino = k.fs.lookup(path)
        except KernelError:
            continue
        files[path] = k.fs.contents(path)
        assert ino.size == len(files[path])
    lost = sorted(allocated_frames(k) - before - kept_frames(k))
    reread = bool(k.m.events.find("disk_read"))
    event(f"buffer cache: {'re-read from disk' if reread else 'no disk read'}")
    return traces, files, lost


def _main(p, traces, prog, skips):
    c = Proc(p, p.malloc(BUFSZ), [])
    traces["main"] = run_ops(c, prog, traces, skips, ("main",), _run_op)
    return 0


def _child(p, c, sub, status, traces, skips, key):
    cc = Proc(p, c.buf, list(c.handles))
    # (p.pid: no system call, which a dying child lacks)
    traces[p.pid] = run_ops(cc, sub, traces, skips, key, _run_op)
    return status


def _run_op(c, name, a, traces, skips, key):
    p, h = c.p, c.handles
    if name == "open":
        r = call(p.open, PATHS[a[0]], a[1] | a[2])
        if r[0] == "ok":
            h.append(r[1])
        return r
    if name == "close":
        return call(p.close, _fd(h, a[0]))
    if name == "dup":
        r = call(p.dup, _fd(h, a[0]))
        if r[0] == "ok":
            h.append(r[1])
        return r
    if name == "dup_many":
        fd, n = _fd(h, a[0]), a[1]
        got, err = [], None
        for _ in range(n):
            r = call(p.dup, fd)
            if r[0] != "ok":
                err = r[1]
                break
            got.append(r[1])
        h.extend(got[:2])
        return ("ok", (len(got), tuple(got[:2]), got[-1] if got else None, err))
    if name == "close_from":
        closed = [fd for fd in sorted(p.proc.files.fds) if fd >= a[0]]
        for fd in closed:
            p.close(fd)
        return ("ok", len(closed))
    if name == "pipe":
        r = call(p.pipe)
        if r[0] == "ok":
            h.extend(r[1])
            if a and a[0] is not None:          # one end closed at once (0: read, 1: write)
                p.close(r[1][a[0]])
        return r
    if name == "pipe_no_reader":
        r = call(p.pipe)
        if r[0] != "ok":
            return r
        h.extend(r[1])
        p.close(r[1][0])
        p.store(c.buf, _data(a[1], a[0]))
        return call(p.write, r[1][1], c.buf, a[0])
    if name == "read":
        fd, n = _fd(h, a[0]), a[1]
        r = call(p.read, fd, c.buf, n)
        return ("ok", (r[1], p.load(c.buf, r[1]))) if r[0] == "ok" else r
    if name == "write":
        fd, n, seed = _fd(h, a[0]), a[1], a[2]
        if n > 0:
            p.store(c.buf, _data(seed, n))
        return call(p.write, fd, c.buf, n)
    if name == "lseek":
        return call(p.lseek, _fd(h, a[0]), a[1], a[2])
    if name == "fstat":
        r = call(p.fstat, _fd(h, a[0]))
        return ("ok", (r[1]["type"], r[1]["size"])) if r[0] == "ok" else r
    if name == "stat":
        r = call(p.stat, PATHS[a[0]])
        return ("ok", (r[1]["type"], r[1]["size"])) if r[0] == "ok" else r
    if name == "rewrite":
        r = call(p.open, PATHS[a[0]], O_WRONLY | O_CREAT | O_TRUNC)
        if r[0] != "ok":
            return r
        p.store(c.buf, _data(a[2], a[1]))
        wrote = p.write(r[1], c.buf, a[1])
        p.close(r[1])
        return ("ok", (r[1], wrote, _reopen_check(p, c.buf, PATHS[a[0]])))
    if name == "reopen_check":
        return ("ok", _reopen_check(p, c.buf, PATHS[a[0]]))
    if name == "fsync":
        fd, k = _fd(h, a[0]), p.k
        f = p.proc.files.fds.get(fd)
        dirty, mark = _dirty_blocks(k), len(k.m.events)
        r = call(p.fsync, fd)
        if r[0] == "ok" and f.inode.type.name == "DIR":
            return _synced(k, r, dirty, mark)
        if r[0] != "ok" or f.inode is None or f.inode.type.name != "REG":
            return r
        ino, lru = f.inode, k.bcache.lru
        clean = not any(lru[b].dirty for b in ino.blocks if b in lru)
        exact = sorted(_disk_writes(k, mark)) == sorted(b for b in ino.blocks if b in dirty)
        return ("ok", (r[1], _disk_image(k, ino), exact and clean))
    if name == "sync":
        k = p.k
        dirty, mark = _dirty_blocks(k), len(k.m.events)
        r = call(p.sync)
        return _synced(k, r, dirty, mark) if r[0] == "ok" else r
    if name == "fork":
        sub, status = a[0], a[1]
        pid = p.fork(_child, c, sub, status, traces, skips, key)
        wpid, st = p.wait4(pid)
        return ("ok", (wpid == pid, st))
    if name == "pipe_to_parent":
        chunks, rd = a
        r = call(p.pipe)
        if r[0] != "ok":
            return r
        rfd, wfd = r[1]
        sent = []
        pid = p.fork(_pipe_writer, wfd, rfd, chunks, c.buf, sent, 0)
        p.close(wfd)
        data = _drain(p, rfd, c.buf, rd)
        p.close(rfd)
        _wpid, st = p.wait4(pid)
        return ("ok", (tuple(sent), len(data), data, st))
    if name == "pipe_to_child":
        n, seed, rd = a
        r = call(p.pipe)
        if r[0] != "ok":
            return r
        rfd, wfd = r[1]
        got = []
        pid = p.fork(_pipe_reader, rfd, wfd, c.buf, rd, got)
        p.close(rfd)
        p.store(c.buf, _data(seed, n))
        wrote = p.write(wfd, c.buf, n)
        p.close(wfd)
        _wpid, st = p.wait4(pid)
        return ("ok", (wrote, len(got[0]), got[0], st))
    if name == "pipe_atomic":
        ca, cb = a
        r = call(p.pipe)
        if r[0] != "ok":
            return r
        rfd, wfd = r[1]
        pids = []
        for w, sizes in enumerate((ca, cb)):
            chunks = [(n, None) for n in sizes]
            pids.append(p.fork(_pipe_writer, wfd, rfd, chunks, c.buf, [], 1 + 64 * w))
        p.close(wfd)
        data = _drain(p, rfd, c.buf, PIPE_BUF)
        p.close(rfd)
        sts = tuple(p.wait4(pid)[1] for pid in pids)
        return ("ok", (len(data), _runs(data), sts))
    raise AssertionError(f"unknown op {name}")


def _synced(k, r, dirty, mark):
    """After sync (or fsync of a directory): (its result, every regular file's disk image,
    whether exactly the buffers dirty before were written, once, and none is dirty now)."""
    images = []
    for path in PATHS[:3]:                  # the regular files a program can make
        try:
            images.append((path, _disk_image(k, k.fs.lookup(path))))
        except KernelError:
            continue
    clean = not any(b.dirty for b in k.bcache.lru.values())
    exact = sorted(_disk_writes(k, mark)) == sorted(dirty)
    return ("ok", (r[1], tuple(images), exact and clean))


def _dirty_blocks(k):
    return {block for block, buf in k.bcache.lru.items() if buf.dirty}


def _disk_writes(k, mark):
    """The blocks written to the disk since the event log had `mark` entries."""
    return [e.args["block"] for e in k.m.events.events[mark:]
            if e.operation == "disk_write" and e.kernel == "linux"]


def _disk_image(k, ino):
    """A file as its blocks on the disk hold it (a hole -- no block -- is a page of zeros; a
    block never written is missing: nothing): (size, digest) of its first `size` bytes, and
    whether the rest, to the end of its last page, is zeros."""
    image = b"".join(bytes(PAGE) if b is None else k.disk.data.get(b, b"") for b in ino.blocks)
    return _digest(image[:ino.size]), image[ino.size:] == bytes(len(ino.blocks) * PAGE - ino.size)


def _reopen_check(p, buf, path):
    """Reopen `path` and read it all back in page-sized reads: (size, digest)."""
    try:
        fd = p.open(path, O_RDONLY)
    except KernelError:
        return None
    try:
        if p.fstat(fd)["type"] != "REG":
            return None
        out = bytearray()
        while True:
            got = p.read(fd, buf, PAGE + 3)
            if got == 0:
                break
            out += p.load(buf, got)
        return _digest(out)
    finally:
        p.close(fd)


def _pipe_writer(p, wfd, rfd, chunks, buf, sent, tag):
    """A child writing `chunks` into a pipe (tagged chunks: every byte names writer and
    chunk), then exiting."""
    p.close(rfd)
    for i, (n, seed) in enumerate(chunks):
        p.store(buf, bytes([tag + i]) * n if tag else _data(seed, n))
        sent.append(p.write(wfd, buf, n))
    return 0


def _pipe_reader(p, rfd, wfd, buf, rd, got):
    p.close(wfd)
    got.append(_drain(p, rfd, buf, rd))
    return 0


def _drain(p, rfd, buf, rd):
    out = bytearray()
    while True:
        n = p.read(rfd, buf, rd)
        if n == 0:
            return bytes(out)
        out += p.load(buf, n)


def _runs(data):
    """Per writer, the (chunk index, length) of each run of one tag byte, in order."""
    runs = ([], [])
    i = 0
    while i < len(data):
        j = i
        while j < len(data) and data[j] == data[i]:
            j += 1
        w, idx = divmod(data[i] - 1, 64)
        runs[w].append((idx, j - i))
        i = j
    return tuple(tuple(r) for r in runs)


# ====================================================================== comparing
def _same(model, got):
    """Equal, where the model's ANY matches anything."""
    if model == ANY:
        return True
    if isinstance(model, tuple) and isinstance(got, tuple) and len(model) == len(got):
        return all(_same(m, g) for m, g in zip(model, got))
    if isinstance(model, list) and isinstance(got, list) and len(model) == len(got):
        return all(_same(m, g) for m, g in zip(model, got))
    return model == got


def check(prog):
    expect, files, skips = run_model(prog)
    got, kfiles, lost = run_kernel(prog, skips)
    assert sorted(got, key=str) == sorted(expect, key=str), (sorted(got, key=str),
                                                             sorted(expect, key=str))
    for who in expect:
        for i, (m, g) in enumerate(zip(expect[who], got[who])):
            assert _same(m, g), f"process {who}, op {i}: kernel {g!r}, model {m!r}"
        assert len(expect[who]) == len(got[who])
    assert kfiles == files
    assert lost == [], f"frames lost: {lost}"
    for who in expect:
        for name, r in expect[who]:
            event(f"{name}: unspecified" if r == ANY else
                  f"{name}: {r[0]}{' ' + r[1] if r[0] == 'error' else ''}")


# ====================================================================== strategies
sel = st.one_of(st.integers(0, 12), st.sampled_from([-1, -3, -4, -78]))
sizes = st.one_of(st.integers(0, 40), st.integers(PAGE - 6, PAGE + 6),
                  st.integers(0, 3 * PAGE + 300), st.just(-1))
offsets = st.one_of(st.integers(-8, 40), st.integers(PAGE - 4, PAGE + 4),
                    st.integers(-2 * PAGE, 3 * PAGE + 100))
seeds = st.integers(0, 255)
accs = st.sampled_from([O_RDONLY, O_WRONLY, O_RDWR, O_RDWR, 3])
flagsets = st.sets(st.sampled_from([O_CREAT, O_TRUNC, O_APPEND])).map(
    lambda s: sum(s))
path_i = st.one_of(st.integers(0, 2), st.integers(0, len(PATHS) - 1))

simple_ops = st.one_of(
    st.tuples(st.just("open"), path_i, accs, flagsets),
    st.tuples(st.just("open"), st.integers(0, 2), st.sampled_from([O_RDWR, O_WRONLY]),
              st.sampled_from([O_CREAT, O_CREAT | O_APPEND, O_CREAT | O_TRUNC])),
    st.tuples(st.just("close"), sel),
    st.tuples(st.just("dup"), sel),
    st.tuples(st.just("read"), sel, sizes),
    st.tuples(st.just("read"), sel, sizes),
    st.tuples(st.just("write"), sel, sizes, seeds),
    st.tuples(st.just("write"), st.integers(0, 2), st.integers(2 * PAGE, 3 * PAGE + 300), seeds),
    st.tuples(st.just("lseek"), st.integers(0, 3), st.integers(0, 2 * PAGE), st.just(SEEK_SET)),
    st.tuples(st.just("lseek"), sel, offsets, st.sampled_from([0, 1, 2, 0, 1, 2, 3, -1])),
    st.tuples(st.just("fstat"), sel),
    st.tuples(st.just("stat"), path_i),
    st.tuples(st.just("pipe"), st.sampled_from([None, None, 0, 1])),
    st.tuples(st.just("open"), st.sampled_from([3, 4, 7, 9]), st.just(O_RDONLY), st.just(0)),
    st.tuples(st.just("reopen_check"), st.integers(0, 2)),
    st.tuples(st.just("fsync"), sel),
    st.tuples(st.just("fsync"), st.integers(0, 2)),         # a recent descriptor: often a file
    st.tuples(st.just("sync")),
    st.tuples(st.just("rewrite"), st.integers(0, 2), st.integers(1, 4 * PAGE), seeds),
    st.tuples(st.just("rewrite"), st.integers(0, 2), st.integers(2 * PAGE, 4 * PAGE), seeds),
)
chunk_lists = st.lists(st.tuples(st.integers(1, 2 * PAGE + 200), seeds), min_size=1, max_size=3)
atomic_chunks = st.lists(st.integers(1, PIPE_BUF), min_size=1, max_size=3)
rare_ops = st.one_of(
    st.tuples(st.just("fork"), st.lists(simple_ops, min_size=1, max_size=10).map(tuple),
              st.integers(0, 255)),
    st.tuples(st.just("fork"),                  # a child killed by SIGPIPE midway
              st.tuples(simple_ops, st.tuples(st.just("pipe_no_reader"), st.integers(1, 64),
                                              seeds), simple_ops),
              st.integers(0, 255)),
    st.tuples(st.just("pipe_to_parent"), chunk_lists.map(tuple),
              st.sampled_from([1, 100, PAGE, 2 * PAGE])),
    st.tuples(st.just("pipe_to_child"), st.integers(1, 3 * PAGE + 100), seeds,
              st.sampled_from([7, 1000, PAGE, 3 * PAGE])),
    st.tuples(st.just("pipe_atomic"), atomic_chunks.map(tuple), atomic_chunks.map(tuple)),
    st.tuples(st.just("dup_many"), sel, st.sampled_from([2, 5, 250, 260])),
    st.tuples(st.just("close_from"), st.integers(3, 200)),
)
# A file written and then synced (alone, random ops rarely leave a file dirty when fsync or
# sync comes): open one of the three files, write it (maybe twice, maybe past a seek), then
# fsync a recent descriptor or sync.  Its ops go into the program in place.
fsync_runs = st.tuples(
    st.tuples(st.just("open"), st.integers(0, 2), st.sampled_from([O_RDWR, O_WRONLY]),
              st.sampled_from([O_CREAT, O_CREAT | O_APPEND, O_CREAT | O_TRUNC])),
    st.tuples(st.just("write"), st.just(0), sizes, seeds),
    st.one_of(st.tuples(st.just("write"), st.just(0), sizes, seeds),
              st.tuples(st.just("lseek"), st.just(0), offsets, st.just(SEEK_SET))),
    st.tuples(st.just("write"), st.integers(0, 2), sizes, seeds),
    st.one_of(st.tuples(st.just("fsync"), st.integers(0, 2)), st.tuples(st.just("sync"))))


def _flat(items):
    """A program from drawn ops and runs of ops."""
    return tuple(op for item in items
                 for op in (item if isinstance(item[0], tuple) else (item,)))


programs = st.lists(st.one_of(simple_ops, simple_ops, simple_ops, rare_ops, fsync_runs),
                    min_size=3, max_size=30).map(_flat)


# ====================================================================== the tests
@settings(derandomize=True, max_examples=EXAMPLES, deadline=None)
@given(programs)
@example((("open", 0, O_RDWR, O_CREAT), ("write", 0, 10, 1),       # fork shares the offset
          ("fork", (("lseek", 0, 3, SEEK_SET), ("write", 0, 5, 2), ("lseek", 0, 2 * PAGE, SEEK_CUR),
                    ("write", 0, 1, 3), ("close", 0), ("read", 0, 4)), 7),
          ("lseek", 0, 0, SEEK_CUR), ("lseek", 0, 0, SEEK_SET), ("read", 0, 3 * PAGE),
          ("fstat", 0), ("stat", 0)))
@example((("open", 0, O_RDWR, O_CREAT | O_TRUNC), ("dup", 0), ("write", 1, 100, 4),  # dup
          ("lseek", 0, 0, SEEK_CUR), ("close", 1), ("read", 1, 10), ("open", 0, O_RDONLY, 0),
          ("read", 0, 200), ("read", 0, 200), ("lseek", 0, -1, SEEK_SET),
          ("lseek", 0, -101, SEEK_END), ("lseek", 0, 7, 3), ("write", 0, 3, 1)))
@example((("pipe", None), ("write", 0, 100, 1), ("read", 1, 30), ("read", 1, 100),   # pipes
          ("close", 0), ("read", 1, 10), ("write", 0, 1, 1), ("lseek", 1, 0, SEEK_SET),
          ("pipe", 0), ("write", 0, 0, 1), ("fstat", 1), ("fork", (("write", 0, 10, 1),
                                                                  ("fstat", 1)), 3),
          ("write", 0, 10, 1), ("fstat", 1)))
@example((("pipe_atomic", (4096, 4096, 1), (3000, 3000, 3000)),
          ("pipe_to_parent", ((5000, 1), (10, 2), (4096, 3)), 100),
          ("pipe_to_child", 3 * PAGE + 100, 9, 7)))
@example((("open", 1, O_RDWR, O_CREAT), ("write", 0, 3 * PAGE + 300, 5),  # evictions
          ("lseek", 0, PAGE - 3, SEEK_SET), ("write", 0, 3 * PAGE + 300, 6), ("reopen_check", 1),
          ("open", 2, O_WRONLY, O_CREAT | O_APPEND), ("write", 0, 3 * PAGE, 7),
          ("lseek", 0, 0, SEEK_SET), ("write", 0, 5, 8), ("open", 1, O_RDONLY, O_TRUNC),
          ("reopen_check", 1), ("reopen_check", 2), ("write", 3, 9, 9)))
@example((("open", 0, O_RDWR, O_CREAT), ("write", 0, 3 * PAGE + 300, 1),  # back from disk
          ("write", 0, 3 * PAGE + 300, 2), ("lseek", 0, 5, SEEK_END), ("write", 0, 2 * PAGE, 3),
          ("reopen_check", 0), ("lseek", 0, PAGE + 7, SEEK_SET), ("read", 0, 2 * PAGE),
          ("open", 0, O_RDONLY, 0), ("read", 0, 3 * PAGE + 300)))
@example((("dup_many", 0, 260), ("open", 0, O_RDWR, O_CREAT), ("pipe", None),  # the fd limit
          ("close_from", 100), ("open", 0, O_RDWR, O_CREAT), ("pipe", None), ("dup", 0),
          ("open", 3, O_RDONLY, 0), ("read", 0, 10), ("lseek", 0, 4, SEEK_SET)))
@example((("open", 0, O_RDWR, O_CREAT), ("write", 0, 3 * PAGE + 300, 1),  # fsync and sync
          ("open", 1, O_WRONLY, O_CREAT), ("write", 0, 100, 2), ("fsync", 1), ("fsync", 1),
          ("lseek", 1, 5 * PAGE, SEEK_SET), ("write", 1, 10, 3), ("fsync", 1), ("fsync", 0),
          ("open", 0, O_RDONLY, O_TRUNC), ("fsync", 0), ("fsync", -1), ("fsync", -78),
          ("open", 3, O_RDONLY, 0), ("fsync", 0), ("pipe", None), ("fsync", 0), ("fsync", 1),
          ("write", 4, 2 * PAGE, 4), ("fork", (("write", 5, 50, 5), ("sync",)), 0), ("sync",),
          ("close", 2), ("fsync", 2)))
@example((("open", 0, O_RDWR, O_CREAT), ("write", 0, 100, 1), ("open", 3, O_RDONLY, 0),
          ("fsync", 0), ("open", 1, O_RDWR, O_CREAT), ("write", 0, 2 * PAGE, 2),
          ("open", 3, O_RDONLY, 0), ("fsync", 0)))       # fsync of a directory: fsync_dev
def test_linux_files_descriptors_and_pipes_follow_the_model(prog):
    """Random programs over open/close/read/write/lseek/dup/stat/fstat/pipe/fork/fsync/sync
    give the trace the model of Linux 2.0's rules predicts (module docstring), leave every
    file's bytes (cache and disk) as the model's, and lose no frame."""
    check(prog)


# ====================================================================== specific cases
def _run(program, *args, **options):
    k = boot("linux", log_syscalls=False, **options)
    proc = k.spawn(program, *args)
    k.run()
    return k, proc


def _errno(fn, *args):
    try:
        return fn(*args)
    except KernelError as e:
        return e.code


def test_open_with_a_full_descriptor_table_is_emfile_and_touches_no_file():
    """do_open takes a descriptor before it looks the path up: with all NR_OPEN = 256 in use,
    open is EMFILE even for a missing path, O_CREAT creates nothing and O_TRUNC truncates
    nothing; once one is closed, the lowest free descriptor comes back."""
    def prog(p):
        buf = p.malloc(16)
        fd = p.open("/tmp/keep", O_CREAT | O_RDWR)
        p.store(buf, b"precious")
        p.write(fd, buf, 8)
        while True:
            try:
                last = p.dup(0)
            except KernelError as e:
                full = e.code
                break
        out = (full, last, _errno(p.open, "/tmp/new", O_CREAT | O_RDWR),
               _errno(p.open, "/tmp/keep", O_RDWR | O_TRUNC),
               _errno(p.open, "/tmp/none/x", O_RDONLY))
        p.close(7)
        return out + (_errno(p.stat, "/tmp/new"), p.stat("/tmp/keep")["size"],
                      p.open("/tmp/keep", O_RDONLY))
    _k, proc = _run(prog)
    assert proc.result == ("EMFILE", NR_OPEN - 1, "EMFILE", "EMFILE", "EMFILE", "ENOENT", 8, 7)


def test_pipe_with_one_free_descriptor_is_emfile_and_keeps_no_page():
    """do_pipe needs two descriptors: with one free it is EMFILE, that descriptor stays free
    and the pipe's page is not kept (no frame lost once the process has gone)."""
    def prog(p):
        for _ in range(NR_OPEN - 4):
            p.dup(0)
        return _errno(p.pipe), p.dup(0)
    k = boot("linux", log_syscalls=False)
    before = allocated_frames(k)
    proc = k.spawn(prog)
    k.run()
    assert proc.result == ("EMFILE", NR_OPEN - 1)
    assert sorted(allocated_frames(k) - before - kept_frames(k)) == []


def test_lseek_on_dev_null_always_answers_zero():
    """/dev/null's lseek (null_lseek, drivers/char/mem.c) puts the offset at 0 whatever is
    asked: 0 from SEEK_SET 10, SEEK_CUR 5 and SEEK_END 3; a bad whence is still EINVAL."""
    def prog(p):
        fd = p.open("/dev/null", O_RDWR)
        return (p.lseek(fd, 10, SEEK_SET), p.lseek(fd, 5, SEEK_CUR), p.lseek(0, 3, SEEK_END),
                _errno(p.lseek, fd, 0, 7))
    assert _run(prog)[1].result == (0, 0, 0, "EINVAL")


def test_a_directory_opened_for_reading_reads_eisdir_and_seeks():
    """An open directory is read with readdir: read() is EISDIR (ext2_dir_read), a read of 0
    bytes is 0; lseek works as on any file (no ESPIPE: a directory is not a pipe)."""
    def prog(p):
        fd = p.open("/tmp", O_RDONLY)
        buf = p.malloc(64)
        return _errno(p.read, fd, buf, 64), p.read(fd, buf, 0), p.lseek(fd, 5, SEEK_SET), \
            p.lseek(fd, 2, SEEK_CUR)
    assert _run(prog)[1].result == ("EISDIR", 0, 5, 7)


def test_a_directory_opened_with_o_creat_or_o_trunc_is_eisdir():
    """do_open asks for write access when O_CREAT or O_TRUNC is given, and open_namei
    refuses write access to a directory: EISDIR, even with O_RDONLY ("/" too)."""
    def prog(p):
        return tuple(_errno(p.open, path, flags) for path, flags in (
            ("/tmp", O_RDONLY | O_CREAT), ("/tmp", O_RDONLY | O_TRUNC), ("/", O_CREAT),
            ("/tmp", O_WRONLY), ("/tmp", O_RDONLY)))
    assert _run(prog)[1].result == ("EISDIR", "EISDIR", "EISDIR", "EISDIR", 3)


def test_o_trunc_empties_a_file_opened_read_only():
    """POSIX leaves O_TRUNC with O_RDONLY open; Linux 2.0's do_open truncates (it turns
    O_TRUNC into write intent): the file is empty, reads see end of file.  /dev/null ignores
    O_TRUNC."""
    def prog(p):
        buf = p.malloc(PAGE)
        fd = p.open("/tmp/f", O_CREAT | O_WRONLY)
        p.write(fd, buf, 100)
        p.close(fd)
        fd = p.open("/tmp/f", O_RDONLY | O_TRUNC)
        return p.fstat(fd)["size"], p.read(fd, buf, 10), p.open("/dev/null", O_RDWR | O_TRUNC)
    assert _run(prog)[1].result == (0, 0, 4)


def test_lseek_with_a_bad_whence_on_a_pipe_is_einval():
    """sys_lseek refuses whence > 2 before the file's lseek runs: EINVAL on a pipe too;
    a good whence on a pipe is ESPIPE."""
    def prog(p):
        r, w = p.pipe()
        return _errno(p.lseek, r, 0, 3), _errno(p.lseek, w, 0, SEEK_SET)
    assert _run(prog)[1].result == ("EINVAL", "ESPIPE")


def test_a_write_that_fills_the_disk_returns_what_it_wrote():
    """ext2_file_write stops at the first block it cannot get and returns the bytes written
    so far (the error only when nothing was): with two free blocks a three-page write
    returns 2 pages, the size and offset say so, and the next write is ENOSPC."""
    def prog(p):
        buf = p.malloc(3 * PAGE)
        p.store(buf, _data(5, 3 * PAGE))
        fd = p.open("/tmp/big", O_CREAT | O_RDWR)
        wrote = p.write(fd, buf, 3 * PAGE)
        return (wrote, p.lseek(fd, 0, SEEK_CUR), p.fstat(fd)["size"],
                _errno(p.write, fd, buf, 10))
    k = boot("linux", log_syscalls=False)
    k.disk.nblocks = k.disk.next + 2            # mkfs time: a disk with two free blocks
    proc = k.spawn(prog)
    k.run()
    assert proc.result == (2 * PAGE, 2 * PAGE, 2 * PAGE, "ENOSPC")
    assert k.fs.contents("/tmp/big") == _data(5, 3 * PAGE)[:2 * PAGE]


def test_an_empty_path_is_enoent():
    """getname refuses an empty string with ENOENT (before do_open looks for a descriptor):
    open, open with O_CREAT and stat of "" are ENOENT, and nothing is created."""
    def prog(p):
        out = (_errno(p.open, "", O_RDONLY), _errno(p.open, "", O_CREAT | O_RDWR),
               _errno(p.stat, ""))
        for _ in range(NR_OPEN - 3):
            p.dup(0)
        return out + (_errno(p.open, "", O_CREAT | O_RDWR),)
    assert _run(prog)[1].result == ("ENOENT",) * 4


def test_a_reader_of_an_empty_pipe_sleeps_until_a_writer_in_another_process_writes():
    """pipe_read sleeps while the pipe is empty and a writer exists; the child's write wakes
    it and it returns what was written (not end of file); the child's exit then closes the
    last writer, and the next read is end of file."""
    def writer(p, w, buf):
        p.store(buf, b"hello")
        p.write(w, buf, 5)
        return 0

    def prog(p):
        r, w = p.pipe()
        buf = p.malloc(64)
        pid = p.fork(writer, w, buf)
        p.close(w)
        got = p.read(r, buf, 64)            # the child has not run yet: the pipe is empty
        return got, p.load(buf, got), p.read(r, buf, 64), p.wait4(pid)[1]
    k, proc = _run(prog)
    assert proc.result == (5, b"hello", 0, exit_status(0))
    sleeps = k.m.events.find("sleep", kernel="linux", pid=proc.pid, on="pipe_read")
    wakes = k.m.events.find("wakeup", kernel="linux", pid=proc.pid)
    assert sleeps and wakes and sleeps[0].cycle <= wakes[0].cycle


def test_a_negative_count_is_efault():
    """read and write take an unsigned count: -1 is about 4 GB, which verify_area refuses
    (EFAULT) -- after the descriptor checks (EBADF first), on files and pipes alike."""
    def prog(p):
        buf = p.malloc(16)
        fd = p.open("/tmp/f", O_CREAT | O_RDWR)
        r, w = p.pipe()
        return (_errno(p.read, fd, buf, -1), _errno(p.write, fd, buf, -1),
                _errno(p.read, r, buf, -1), _errno(p.write, w, buf, -1),
                _errno(p.write, r, buf, -1), _errno(p.read, 99, buf, -1))
    assert _run(prog)[1].result == ("EFAULT",) * 4 + ("EBADF",) * 2


def test_a_write_far_past_the_end_leaves_a_hole_that_takes_no_disk_block():
    """ext2 allocates blocks only for the pages written: a byte written 1 GB past the end of
    an empty file takes one block (the disk has 1 GB), the size is 1 GB + 6, the hole reads
    as zeros without a disk request, and the rest of the disk stays free for other files."""
    def prog(p):
        buf = p.malloc(PAGE)
        p.store(buf, b"xyz")
        fd = p.open("/tmp/sparse", O_CREAT | O_RDWR)
        p.lseek(fd, (1 << 30) + 3, SEEK_SET)
        wrote = p.write(fd, buf, 3)
        p.lseek(fd, 1 << 29, SEEK_SET)
        got = p.read(fd, buf, 8)
        other = p.open("/tmp/other", O_CREAT | O_RDWR)
        return wrote, p.fstat(fd)["size"], got, p.load(buf, got), p.write(other, buf, 8)
    k = boot("linux", log_syscalls=False)
    used = k.disk.next
    proc = k.spawn(prog)
    k.run()
    assert proc.result == (3, (1 << 30) + 6, 8, bytes(8), 8)
    assert k.disk.next - used == 2                      # one block each
    assert k.m.events.find("disk_read", kernel="linux") == []
    assert k.fs.contents("/tmp/other") == bytes(8)


def test_a_name_followed_by_a_slash_must_be_a_directory():
    """dir_namei looks up every name followed by "/" as a directory: "/tmp/f/" of a regular
    file is ENOTDIR (open and stat), open("/tmp/new/", O_CREAT) is ENOENT and creates
    nothing; "/tmp/" is the directory, and empty components are ignored ("//tmp//f")."""
    def prog(p):
        p.close(p.open("/tmp/f", O_CREAT | O_RDWR))
        return (_errno(p.open, "/tmp/f/", O_RDONLY), _errno(p.stat, "/tmp/f/"),
                _errno(p.open, "/tmp/new/", O_CREAT | O_RDWR), _errno(p.stat, "/tmp/new"),
                p.stat("/tmp/")["type"], p.stat("//tmp//f")["type"])
    assert _run(prog)[1].result == ("ENOTDIR", "ENOTDIR", "ENOENT", "ENOENT", "DIR", "REG")


def test_a_relative_path_starts_at_the_working_directory():
    """namei starts a path without a leading "/" at the process's working directory, which
    is the root here (no chdir): "tmp/f" is "/tmp/f"; the empty path stays ENOENT."""
    def prog(p):
        fd = p.open("tmp/f", O_CREAT | O_RDWR)
        buf = p.malloc(8)
        p.write(fd, buf, 5)
        return p.stat("/tmp/f")["size"], p.stat("tmp/f")["size"], p.open("dev/null"), \
            _errno(p.open, "", O_RDONLY)
    assert _run(prog)[1].result == (5, 5, 4, "ENOENT")
