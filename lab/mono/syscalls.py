"""The system-call table: `SYSCALLS[name](kernel, proc, *args)`, Linux's work for each call.

Each runs inside `arch.syscall(ctx, name, body)` after the platform's dispatch, charges its own path
(`sys_<name>` in lab/profiles/linux.json) and does the work through the kernel's parts.  Buffers
are user virtual addresses; results the C library would find in user memory (pipe's fds,
wait4's status, stat's struct) are copied out to it *and* returned to the Python caller.

`ARGS[name]` is each call's C prototype: what each argument is.  The C library's stub checks
the arguments against it before the trap (`check_args`; no event, no cycle): a value no
register can carry is refused there -- a file descriptor that is not an integer is EBADF, a
pointer that is not one EFAULT, any other non-integer EINVAL, naming the call, the argument and
the value.  Integers that are merely wrong (a closed fd, a negative count, an unmapped buffer)
go to the kernel, which answers them as Linux does, after the trap.
"""
import struct
from numbers import Integral

from engine.errors import OutOfFrames

from .abi import (O_ACCMODE, O_APPEND, O_NONBLOCK, MAP_ANONYMOUS, MAP_SHARED, PAGE_SIZE,
                  PROT_WRITE, F_DUPFD, F_GETFD, F_SETFD, F_GETFL, F_SETFL, FD_CLOEXEC, exit_status)
from .errors import (E2BIG, EACCES, EBADF, ECHILD, EFAULT, EINVAL, EMFILE, ENOENT, ENOEXEC,
                     ENOMEM, ENOTSOCK, ENODEV)
from .fs import InodeType, lseek as _lseek
from .pipe import make_pipe
from .process import NR_OPEN, ExecImage, Process, ProcState
from .sched import WaitQueue
from .socket import Socket, socket_file

WNOHANG, WUNTRACED, WCLONE = 1, 2, 0x80000000   # wait4's options (WCLONE: __WCLONE)
MAX_ARG_PAGES = 32          # Linux 2.0 include/linux/binfmts.h: 128 KB of exec strings


def _path(k, name):
    k.arch.run_path(name)


# -- process identity --
def sys_getpid(k, p):
    _path(k, "sys_getpid")
    return p.pid


def sys_getppid(k, p):
    _path(k, "sys_getppid")
    return p.ppid


def sys_sched_yield(k, p):
    _path(k, "sys_sched_yield")
    k.sched.schedule()
    return 0


# -- files --
def _file(p, fd):
    return p.files.get(fd)


def _need_fds(p, n, call):
    """do_open and do_pipe take their descriptors before anything else: with too few free,
    EMFILE, and nothing is looked up, created, truncated or allocated."""
    if NR_OPEN - len(p.files.fds) < n:
        raise EMFILE(f"{call}: {len(p.files.fds)} of NR_OPEN = {NR_OPEN} descriptors in use, "
                     f"{n} needed")


def sys_read(k, p, fd, buf, n):
    _path(k, "sys_read")
    f = _file(p, fd)
    if not f.readable:
        raise EBADF(f"fd {fd} is not open for reading")
    if n < 0:                   # the count is unsigned: verify_area of ~4 GB fails
        raise EFAULT(f"read: count {n} (unsigned {n & 0xFFFFFFFF}) is beyond user space")
    if n == 0:
        return 0
    k.mm.verify_area(p, buf, n, write=True)
    return f.ops.read(k, p, f, buf, n)


def sys_write(k, p, fd, buf, n):
    _path(k, "sys_write")
    f = _file(p, fd)
    if not f.writable:
        raise EBADF(f"fd {fd} is not open for writing")
    if n < 0:                   # the count is unsigned: verify_area of ~4 GB fails
        raise EFAULT(f"write: count {n} (unsigned {n & 0xFFFFFFFF}) is beyond user space")
    if n == 0:
        return 0
    k.mm.verify_area(p, buf, n, write=False)
    return f.ops.write(k, p, f, buf, n)


def sys_open(k, p, path_va, flags, mode):
    _path(k, "sys_open")
    path = k.getname(p, path_va)             # sys_open's getname, then do_open
    if not path:
        raise ENOENT("open: empty path")        # getname refuses an empty string
    _need_fds(p, 1, "open")
    f = k.fs.open(path, flags)
    return p.files.install(f)


def sys_close(k, p, fd):
    _path(k, "sys_close")
    k.close_file(p.files.remove(fd))
    return 0


def sys_lseek(k, p, fd, offset, whence):
    _path(k, "sys_lseek")
    return _lseek(_file(p, fd), offset, whence)


def sys_dup(k, p, fd):
    _path(k, "sys_dup")
    f = _file(p, fd)
    nfd = p.files.install(f)
    f.count += 1
    return nfd


SETFL_MASK = O_APPEND | O_NONBLOCK      # 2.0 fs/fcntl.c (and FASYNC: no SIGIO here)


def sys_fcntl(k, p, fd, cmd, arg):
    """sys_fcntl of Linux 2.0 (fs/fcntl.c): F_DUPFD (the lowest free fd >= arg), F_GETFD and
    F_SETFD (close-on-exec), F_GETFL and F_SETFL (only O_APPEND and O_NONBLOCK change)."""
    _path(k, "sys_fcntl")
    f = _file(p, fd)
    if cmd == F_DUPFD:
        if not 0 <= arg < NR_OPEN:          # arg is unsigned in 2.0: a negative one is huge
            raise EINVAL(f"fcntl: F_DUPFD from {arg}; allowed 0 .. NR_OPEN - 1 = {NR_OPEN - 1}")
        nfd = p.files.install(f, start=arg)
        f.count += 1
        return nfd
    if cmd == F_GETFD:
        return FD_CLOEXEC if fd in p.files.cloexec else 0
    if cmd == F_SETFD:
        if arg & FD_CLOEXEC:
            p.files.cloexec.add(fd)
        else:
            p.files.cloexec.discard(fd)
        return 0
    if cmd == F_GETFL:
        return f.flags
    if cmd == F_SETFL:
        f.flags = (f.flags & ~SETFL_MASK) | (arg & SETFL_MASK)
        return 0
    raise EINVAL(f"fcntl: cmd {cmd}; this kernel has F_DUPFD ({F_DUPFD}), F_GETFD ({F_GETFD}), "
                 f"F_SETFD ({F_SETFD}), F_GETFL ({F_GETFL}) and F_SETFL ({F_SETFL}); no locks, "
                 "no F_SETOWN")


def sys_sync(k, p):
    """sys_sync (fs/buffer.c's fsync_dev(0)): every dirty buffer written back; 0."""
    _path(k, "sys_sync")
    k.bcache.sync()
    return 0


def sys_fsync(k, p, fd):
    """sys_fsync (fs/buffer.c): the file's f_op->fsync; EINVAL for a pipe, socket or device,
    which have none."""
    _path(k, "sys_fsync")
    f = _file(p, fd)
    f.ops.fsync(k, f)
    return 0


def _stat_of(k, p, inode, buf):
    st = {"ino": inode.ino if inode else 0, "type": inode.type.name if inode else "FIFO",
          "size": inode.size if inode else 0, "nlink": inode.nlink if inode else 1}
    packed = struct.pack("<IIII", st["ino"], 0, st["size"], st["nlink"]).ljust(64, b"\0")
    k.mm.verify_area(p, buf, len(packed), write=True)
    k.copy_to_user(p, buf, packed)
    return st


def sys_stat(k, p, path_va, buf):
    _path(k, "sys_stat")
    return _stat_of(k, p, k.fs.namei(k.getname(p, path_va)), buf)


def sys_fstat(k, p, fd, buf):
    _path(k, "sys_fstat")
    return _stat_of(k, p, _file(p, fd).inode, buf)


def sys_pipe(k, p, fds_va):
    _path(k, "sys_pipe")
    _need_fds(p, 2, "pipe")
    r, w = make_pipe(k)
    rfd = p.files.install(r)
    try:
        wfd = p.files.install(w)
    except BaseException:
        p.files.remove(rfd)
        raise
    k.copy_to_user(p, fds_va, struct.pack("<ii", rfd, wfd))
    return rfd, wfd


# -- processes --
def sys_fork(k, p, child_main, args):
    """do_fork: a new task sharing open files, with a copy-on-write copy of the memory."""
    _path(k, "sys_fork")
    pid = k.procs.alloc_pid()
    c = None
    try:
        c = Process(pid, parent=p, name=p.name, mm=k.mm.new_mm(), image=p.image,
                    user=dict(p.user), main=child_main, args=tuple(args), pgrp=p.pgrp)
        c.kstack = k.m.alloc_page()         # kernel stack page (+ task_struct)
        c.child_exit = WaitQueue(f"wait4:{pid}")
        c.ctx = k.arch.create_process(pid, p.ctx)
        k.procs.add(c)
        p.children.append(c)
        for fd, f in p.files.items():
            _path(k, "fork_copy_fd")
            f.count += 1
            c.files.fds[fd] = f
        c.files.cloexec = set(p.files.cloexec)
        k.mm.copy_mm(p, c)
    except (ENOMEM, OutOfFrames) as e:      # do_fork's bad_fork_cleanup_*: undo, -ENOMEM
        _undo_fork(k, p, c)
        raise ENOMEM(f"fork: no memory for child {pid} ({e})") from e
    k.log("fork", parent=p.pid, child=pid)
    k.sched.start(c, k.process_main)
    return pid


def _undo_fork(k, p, c):
    """Give back what a fork that ran out of memory had taken for child `c` (None: nothing
    yet): its share of the open files, its pages and page tables, its context, its kernel
    stack, its place in the process table.  The pid stays used, as in 2.0 (get_pid ran)."""
    if c is None:
        return
    for _fd, f in c.files.items():
        f.count -= 1                        # the parent still holds each: no release
    c.files.fds.clear()
    k.mm.exit_mmap(c, unmap=False)
    if c.ctx is not None:
        k.arch.destroy_process(c.ctx)
    if c.kstack:
        k.m.free_page(c.kstack)
        c.kstack = 0
    if c in p.children:
        p.children.remove(c)
    k.procs.remove(c)
    c.state = ProcState.DEAD


def sys_execve(k, p, path_va, argv_vas):
    """do_execve: look the file up, read its header, copy the arguments, drop the old
    memory map (flush_old_exec), map the new image.  The C library then unwinds the old
    program and the new main runs."""
    _path(k, "sys_execve")
    path = k.getname(p, path_va)
    ino = k.fs.namei(path)
    if ino.type is not InodeType.REG:
        raise EACCES(f"execve: {path} is not a regular file")
    if ino.size:
        k.bcache.file_page(ino, 0)          # prepare_binprm reads the header
    # copy_strings: the file name, then the arguments, into MAX_ARG_PAGES pages, before a
    # binary format is looked for (so E2BIG comes before ENOEXEC); no limit per string
    room = MAX_ARG_PAGES * PAGE_SIZE - 4 - (len(path.encode()) + 1)
    argv = []
    for va in argv_vas:
        _path(k, "copy_strings")
        arg = _arg_string(k, p, va, room)
        room -= len(arg) + 1
        argv.append(arg.decode(errors="replace"))
        if room <= 0:               # copy_strings returned 0: no room for the pointer
            break
    if room <= 0:
        raise E2BIG(f"execve: {path}: the file name and arguments fill the "
                    f"{MAX_ARG_PAGES * PAGE_SIZE - 4} bytes of MAX_ARG_PAGES = {MAX_ARG_PAGES} "
                    f"pages (less the argv pointer)")
    if ino.image is None:
        raise ENOEXEC(f"execve: {path} is not an executable image")
    k.mm.exit_mmap(p, unmap=True)           # the point of no return
    for fd in sorted(p.files.cloexec):      # flush_old_files: close-on-exec fds go now
        _path(k, "sys_close")
        k.close_file(p.files.remove(fd))
    k.setup_image(p, ino.image, ino, argv)
    p.name = path.rsplit("/", 1)[-1]
    p.user = {}
    k.log("exec", pid=p.pid, path=path, argv=tuple(argv))
    return ExecImage(ino.image.main, (argv,))


def _arg_string(k, p, va, room):
    """An argument string at user `va` (as getname reads a path, page by page, but without
    PATH_MAX: 2.0's copy_strings bounds only the total); reading stops once more than
    `room` bytes are found (the caller then answers E2BIG)."""
    out, a, page = b"", va, k.page
    while True:
        k.mm.check_area(p, a, 1, False)
        k.mm.prefault(p, a, 1, False)
        end = a - a % page + page
        chunk = k.mm.read_user(p, a, end - a)
        i = chunk.find(b"\0")
        out += chunk if i < 0 else chunk[:i]
        if i >= 0 or len(out) >= room:
            break
        a = end
    k._copy(p, va, min(len(out) + 1, room), False, None)
    return out


def sys_exit(k, p, status):
    k.do_exit(p, exit_status(status))       # does not return


def _whom(pid, p):
    if pid == -1:
        return ""
    if pid > 0:
        return str(pid)
    return f"in process group {p.pgrp if pid == 0 else -pid}"


def _waits_for(pid, p, c):
    """sys_wait4's choice: pid > 0 that child, 0 a child in the caller's process group, -1
    any child, < -1 a child in process group -pid."""
    if pid > 0:
        return c.pid == pid
    if pid == -1:
        return True
    return c.pgrp == (p.pgrp if pid == 0 else -pid)


def sys_wait4(k, p, pid, status_va, options):
    _path(k, "sys_wait4")
    if status_va:               # 2.0's sys_wait4 checks the status word before it waits
        k.mm.check_area(p, status_va, 4, True)
    options &= 0xFFFFFFFF       # an int in C: -1 is every bit
    if options & ~(WNOHANG | WUNTRACED | WCLONE):
        raise EINVAL(f"wait4: options 0x{options:x}; allowed: WNOHANG (1), WUNTRACED (2), "
                     f"__WCLONE (0x80000000)")
    while True:
        # Linux 2.0 scans p_cptr (the youngest child) then p_osptr: the youngest zombie first.
        # __WCLONE waits for clone()d children only; this lab has none.  WUNTRACED changes
        # nothing: no process is ever stopped.
        kids = [c for c in reversed(p.children)
                if _waits_for(pid, p, c) and not options & WCLONE]
        if not kids:
            raise ECHILD(f"wait4: pid {p.pid} has no child {_whom(pid, p)}".rstrip())
        z = next((c for c in kids if c.state is ProcState.ZOMBIE), None)
        if z is not None:
            if status_va:
                k.copy_to_user(p, status_va, struct.pack("<i", z.exit_status))
            p.children.remove(z)
            k.release(z)
            return z.pid, z.exit_status
        if options & WNOHANG:
            return 0, 0
        k.sched.sleep_on(p.child_exit, "wait4")


# -- memory --
def sys_mmap(k, p, addr, length, prot, flags, fd, offset):
    _path(k, "sys_mmap")
    f = None if flags & MAP_ANONYMOUS else _file(p, fd)     # old_mmap: a bad fd first,
    if k.mm.mmap_length(addr, length) == 0:     # then do_mmap's range checks, then the file's
        return addr                             # (a length of 0 maps nothing)
    inode = None
    if f is not None:
        if f.inode is None or f.inode.type is not InodeType.REG:
            raise ENODEV(f"mmap: fd {fd} is not a regular file")
        if not f.readable or (flags & MAP_SHARED and prot & PROT_WRITE and not f.writable):
            raise EACCES(f"mmap: fd {fd} opened with mode {f.flags & O_ACCMODE}")
        inode = f.inode
    return k.mm.mmap(p, addr, length, prot, flags, inode, offset)


def sys_munmap(k, p, addr, length):
    _path(k, "sys_munmap")
    k.mm.munmap(p, addr, length)
    return 0


def sys_brk(k, p, addr):
    _path(k, "sys_brk")
    return k.mm.brk(p, addr)


# -- sockets (sys_socketcall) --
def _sock(p, fd):
    f = _file(p, fd)
    if not isinstance(f.obj, Socket):
        raise ENOTSOCK(f"fd {fd} is not a socket")
    return f, f.obj


def sys_socket(k, p, domain, stype):
    _path(k, "sys_socketcall")
    _path(k, "sys_socket")
    return p.files.install(socket_file(k.net.socket(domain, stype)))


def sys_bind(k, p, fd, port):
    _path(k, "sys_socketcall")
    _path(k, "sys_bind")
    k.net.bind(_sock(p, fd)[1], port)
    return 0


def sys_listen(k, p, fd, backlog):
    _path(k, "sys_socketcall")
    _path(k, "sys_listen")
    k.net.listen(_sock(p, fd)[1], backlog)
    return 0


def sys_accept(k, p, fd):
    _path(k, "sys_socketcall")
    f, s = _sock(p, fd)
    new = k.net.accept(p, s, bool(f.flags & O_NONBLOCK))
    return p.files.install(socket_file(new))


def sys_connect(k, p, fd, port):
    _path(k, "sys_socketcall")
    return k.net.connect(p, _sock(p, fd)[1], port)


def sys_sendto(k, p, fd, buf, n, port):
    _path(k, "sys_socketcall")
    f, s = _sock(p, fd)
    if n < 0:
        raise EINVAL(f"sendto: length {n} < 0")
    if n:
        k.mm.verify_area(p, buf, n, write=False)
    return k.sock_send(p, s, buf, n, port, bool(f.flags & O_NONBLOCK))


def sys_recvfrom(k, p, fd, buf, n):
    _path(k, "sys_socketcall")
    f, s = _sock(p, fd)
    if n < 0:
        raise EINVAL(f"recvfrom: length {n} < 0")
    if n:
        k.mm.verify_area(p, buf, n, write=True)
    return k.sock_recv(p, s, buf, n, bool(f.flags & O_NONBLOCK))


SYSCALLS = {name[4:]: fn for name, fn in sorted(globals().items())
            if name.startswith("sys_") and callable(fn)}


# -- the arguments: kinds, and each call's prototype --
FD = (EBADF, "a file descriptor (an int)")
PTR = (EFAULT, "a user address (an int)")
INT = (EINVAL, "an int")
FUNC = (EINVAL, "a function child(p, *args)")
ARGTUPLE = (EINVAL, "a tuple of the child's arguments")
PTRS = (EFAULT, "a list of user addresses (ints)")
PORT = (EINVAL, "a port (an int) or None")
_INTS = (FD, PTR, INT)

_PROTOTYPES = {
    "getpid": (), "getppid": (), "sched_yield": (),
    "read": (("fd", FD), ("buf", PTR), ("count", INT)),
    "write": (("fd", FD), ("buf", PTR), ("count", INT)),
    "open": (("path", PTR), ("flags", INT), ("mode", INT)),
    "close": (("fd", FD),),
    "lseek": (("fd", FD), ("offset", INT), ("whence", INT)),
    "stat": (("path", PTR), ("buf", PTR)),
    "fstat": (("fd", FD), ("buf", PTR)),
    "dup": (("fd", FD),),
    "fcntl": (("fd", FD), ("cmd", INT), ("arg", INT)),
    "sync": (), "fsync": (("fd", FD),),
    "pipe": (("fds", PTR),),
    "fork": (("child", FUNC), ("args", ARGTUPLE)),
    "execve": (("path", PTR), ("argv", PTRS)),
    "exit": (("status", INT),),
    "wait4": (("pid", INT), ("status", PTR), ("options", INT)),
    "mmap": (("addr", INT), ("length", INT), ("prot", INT), ("flags", INT), ("fd", FD),
             ("offset", INT)),
    "munmap": (("addr", INT), ("length", INT)),
    "brk": (("addr", INT),),
    "socket": (("domain", INT), ("type", INT)),
    "bind": (("fd", FD), ("port", INT)),
    "listen": (("fd", FD), ("backlog", INT)),
    "accept": (("fd", FD),),
    "connect": (("fd", FD), ("port", INT)),
    "sendto": (("fd", FD), ("buf", PTR), ("len", INT), ("port", PORT)),
    "recvfrom": (("fd", FD), ("buf", PTR), ("len", INT)),
}
ARGS = dict(sorted(_PROTOTYPES.items()))
if list(ARGS) != list(SYSCALLS):
    raise AssertionError(f"syscalls: prototypes {list(ARGS)} != calls {list(SYSCALLS)}")
# name -> (body, number of arguments if every one is a plain int, else -1): the stub's fast
# path is one lookup, a length and a type() per argument
TABLE = {name: (SYSCALLS[name], len(proto) if all(k in _INTS for _a, k in proto) else -1)
         for name, proto in ARGS.items()}


def _is_int(x):
    return isinstance(x, Integral) and not isinstance(x, bool)


def _fits(x):
    """An i386 register holds it: a signed or an unsigned 32-bit value."""
    return -0x80000000 <= x <= 0xFFFFFFFF


def _check_arg(name, arg, kind, x):
    """One argument of kind `kind`: the value to pass on, or the errno naming it."""
    if kind in _INTS or kind is PORT:
        if _is_int(x):
            if not _fits(x):
                raise kind[0](f"{name}: {arg} {x} does not fit a 32-bit register "
                              f"(-2**31 .. 2**32-1)")
            return int(x)                   # (numpy integers become plain ints)
        if kind is PORT and x is None:
            return x
    elif kind is FUNC:
        if callable(x):
            return x
    elif kind is ARGTUPLE:
        if isinstance(x, (tuple, list)):
            return tuple(x)
    elif kind is PTRS:
        if isinstance(x, (tuple, list)) and all(_is_int(a) and _fits(a) for a in x):
            return [int(a) for a in x]
    err, allowed = kind
    raise err(f"{name}: {arg} {x!r} is not {allowed}")


def check_args(name, args):
    """The arguments of system call `name` as its prototype wants them, or the errno of the
    first bad one (EINVAL for a wrong number of them); before the trap."""
    proto = ARGS[name]
    if len(args) != len(proto):
        raise EINVAL(f"{name} takes {len(proto)} argument(s) "
                     f"({', '.join(a for a, _k in proto) or 'none'}); got {len(args)}")
    return tuple(_check_arg(name, arg, kind, x) for (arg, kind), x in zip(proto, args))
