"""The system-call table: `SYSCALLS[name](kernel, proc, *args)`, Linux's work for each call.

Each runs inside `arch.syscall(ctx, name, body)` after the platform's dispatch, charges its own path
(`sys_<name>` in lab/profiles/linux.json) and does the work through the kernel's parts.  Buffers
are user virtual addresses; results the C library would find in user memory (pipe's fds,
wait4's status, stat's struct) are copied out to it *and* returned to the Python caller.
"""
import struct

from .abi import (O_ACCMODE, O_NONBLOCK, MAP_ANONYMOUS, MAP_SHARED, PROT_WRITE, exit_status)
from .errors import (EACCES, EBADF, ECHILD, EINVAL, ENOEXEC, ENOTSOCK, ENODEV)
from .fs import InodeType, lseek as _lseek
from .pipe import make_pipe
from .process import ExecImage, Process, ProcState
from .sched import WaitQueue
from .socket import Socket, socket_file

WNOHANG = 1


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


def sys_read(k, p, fd, buf, n):
    _path(k, "sys_read")
    f = _file(p, fd)
    if not f.readable:
        raise EBADF(f"fd {fd} is not open for reading")
    if n < 0:
        raise EINVAL(f"read: count {n} < 0")
    if n == 0:
        return 0
    k.mm.verify_area(p, buf, n, write=True)
    return f.ops.read(k, p, f, buf, n)


def sys_write(k, p, fd, buf, n):
    _path(k, "sys_write")
    f = _file(p, fd)
    if not f.writable:
        raise EBADF(f"fd {fd} is not open for writing")
    if n < 0:
        raise EINVAL(f"write: count {n} < 0")
    if n == 0:
        return 0
    k.mm.verify_area(p, buf, n, write=False)
    return f.ops.write(k, p, f, buf, n)


def sys_open(k, p, path_va, flags, mode):
    _path(k, "sys_open")
    path = k.getname(p, path_va)
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
    c = Process(pid, parent=p, name=p.name, mm=k.mm.new_mm(), image=p.image,
                user=dict(p.user), main=child_main, args=tuple(args))
    c.kstack = k.m.alloc_page()             # kernel stack page (+ task_struct)
    c.child_exit = WaitQueue(f"wait4:{pid}")
    c.ctx = k.arch.create_process(pid, p.ctx)
    k.procs.add(c)
    p.children.append(c)
    for fd, f in p.files.items():
        _path(k, "fork_copy_fd")
        f.count += 1
        c.files.fds[fd] = f
    k.mm.copy_mm(p, c)
    k.log("fork", parent=p.pid, child=pid)
    k.sched.start(c, k.process_main)
    return pid


def sys_execve(k, p, path_va, argv_vas):
    """do_execve: look the file up, read its header, copy the arguments, drop the old
    memory map (flush_old_exec), map the new image.  The C library then unwinds the old
    program and the new main runs."""
    _path(k, "sys_execve")
    path = k.getname(p, path_va)
    ino = k.fs.namei(path)
    if ino.type is not InodeType.REG:
        raise EACCES(f"execve: {path} is not a regular file")
    if ino.image is None:
        raise ENOEXEC(f"execve: {path} is not an executable image")
    k.bcache.file_page(ino, 0)              # prepare_binprm reads the header
    argv = []
    for va in argv_vas:
        _path(k, "copy_strings")
        argv.append(k.getname(p, va))
    k.mm.exit_mmap(p, unmap=True)           # the point of no return
    k.setup_image(p, ino.image, ino, argv)
    p.name = path.rsplit("/", 1)[-1]
    p.user = {}
    k.log("exec", pid=p.pid, path=path, argv=tuple(argv))
    return ExecImage(ino.image.main, (argv,))


def sys_exit(k, p, status):
    k.do_exit(p, exit_status(status))       # does not return


def sys_wait4(k, p, pid, status_va, options):
    _path(k, "sys_wait4")
    while True:
        kids = [c for c in p.children if pid in (-1, c.pid)]
        if not kids:
            raise ECHILD(f"wait4: pid {p.pid} has no child {'' if pid == -1 else pid}".strip())
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
    inode = None
    if not flags & MAP_ANONYMOUS:
        f = _file(p, fd)
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
