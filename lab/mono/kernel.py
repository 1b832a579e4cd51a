"""LinuxKernel: the architecture-independent Linux, booted on a platform (`lab.linux.arch`).

    linux = LinuxKernel(NativeArch(Machine("pentium-133")))   # or lab.linux.boot("linux")
    p = linux.spawn(program, *args)       # program(libc, *args) runs as a process
    linux.run()                           # until every process has exited
    p.exit_status, p.result, linux.m.cycles, linux.m.events

Everything Linux does reaches the machine through its platform: system calls through
`arch.syscall(ctx, name, body)`, Linux's own work as paths (`arch.run_path`, lengths from
lab/profiles/linux.json), user memory through `arch.map_user/unmap_user/protect_user/copy_user`,
user work through `arch.run_user`; page faults come back to `page_fault(ctx, va, kind)`.
Real bytes move through simulated physical memory (pipes, files, sockets, copy-on-write).

What a platform (lab/linux/arch.py) can rely on, beyond the abstract contract:
  * Bodies may sleep (pipe_read, wait4, accept): other processes' system calls run before a
    body returns, so platforms keep per-call state per process, not per platform.
  * `exit`'s body never returns: after `destroy_process(ctx)` it raises
    `lab.mono.process.ProcessExited` (a BaseException) to unwind the process; let it pass.
    `execve`'s body returns normally (an ExecImage marker), then the new image runs.
  * `switch_process(prev, nxt)`: prev is None when the CPU comes from idle or from a process
    that has exited.
  * `linux.copy_kernel_pa` holds the physical address of Linux's side of the copy while
    `copy_user` runs (None for strings); the bytes themselves are moved by Linux.
  * Linux makes user pages present (prefault) before calling copy_user, so a copy need not
    fault; a fault on a page Linux's table already holds with the rights asked for means the
    platform lacks the mapping: Linux calls `map_user` again ("remap").
  * Optional platform attributes: `hardware_page_tables` (fork copies PTEs into the child at
    once: native), `task_size` (where user space ends; default 0xC0000000), `map_region` /
    `unmap_region(ctx, start, length)` called after mmap / munmap change the VMAs.

Fault containment, monolithic side: `inject_fault("fs")` plants a bug in a kernel component;
the first time that code runs, the kernel oopses in supervisor mode, and since every part of a
monolithic kernel shares one protection domain the whole system goes down (`Panic`): the
running program sees Panic, `run()` raises it, and every later system call fails with it.
"""
from lab.errors import Panic
from lab.kprofile import load_kernel_profile

from .abi import (TEXT_BASE, TASK_SIZE, TASK_UNMAPPED_BASE, STACK_SIZE, PROT_READ, PROT_WRITE,
                  PROT_EXEC, MAP_PRIVATE, O_RDWR, signal_status)
from .bcache import BufferCache, Disk
from .errors import Deadlock, ENOSYS, ENAMETOOLONG, ESRCH, FatalSignal
from .fs import File, FileSystem
from .mm import MemoryManager
from .process import (ExecImage, Process, ProcessExited, ProcessTable, ProcState, VMA)
from .programs import install, load_images
from .sched import Scheduler, WaitQueue
from .socket import Network
from .syscalls import SYSCALLS, TABLE, check_args
from .user import Libc

PATH_MAX = 1024
GONE = (ProcState.ZOMBIE, ProcState.DEAD)      # a process that makes no system call any more
NO_CALL = (None, None)                          # TABLE's answer for an unknown name: ENOSYS
COMPONENTS = ("fs", "pipe", "net", "mm")


class LinuxKernel:
    """Linux 2.0's architecture-independent part.  `arch` is a `lab.linux.arch.LinuxArch`."""

    def __init__(self, arch, profile="linux", buffer_cache_pages=None, disk_blocks=None,
                 log_syscalls=True):
        self.arch = arch
        self.m = arch.m
        self.image_profile = load_kernel_profile(profile)
        self.page = self.m.fmt.page_size
        self.log_syscalls = log_syscalls
        self.panicked = None
        self._armed = {}
        self.copy_kernel_pa = None      # Linux's side of the copy in progress (for the platform)
        self.procs = ProcessTable()
        self.sched = Scheduler(self)
        self.mm = MemoryManager(self)
        arch.attach(self)               # the platform boots first: its image wants big frames
        # TASK_SIZE is architecture-dependent in Linux: a platform may keep space for itself
        self.task_size = int(getattr(arch, "task_size", TASK_SIZE))
        if not TASK_UNMAPPED_BASE + STACK_SIZE < self.task_size <= TASK_SIZE:
            raise ValueError(f"platform {arch.name}: task_size 0x{self.task_size:x} outside "
                             f"0x{TASK_UNMAPPED_BASE + STACK_SIZE:x}..0x{TASK_SIZE:x}")
        self.mm.boot()
        prof = self.image_profile
        self.disk = Disk(self, int(disk_blocks or prof["disk_blocks"]))
        self.bcache = BufferCache(self, int(buffer_cache_pages or prof["buffer_cache_pages"]))
        self.fs = FileSystem(self)
        self.net = Network(self)
        self.images = load_images(prof)
        install(self.fs, self.images)
        self.log("boot", platform=arch.name)

    # ------------------------------------------------------------------ events
    def log(self, operation, **args):
        self.m.events.log("linux", operation, **args)

    def send_sig(self, proc, exc, message):
        """Send `proc` a signal whose default action kills it (`exc`: a FatalSignal class);
        this lab's programs install no handlers, so it dies on its way back to user mode."""
        self.log(exc.code.lower(), pid=proc.pid)
        proc.fatal_signal = exc.signal
        raise exc(f"pid {proc.pid}: {message}")

    # ------------------------------------------------------------------ processes
    def spawn(self, program, *args, name=None, image="/bin/simple"):
        """A new process (a child of init) running `program(libc, *args)` in the address
        space of `image`; it runs when `run()` is called."""
        self._check_up()
        if not callable(program):
            raise TypeError(f"spawn: program {program!r} is not callable")
        if image not in self.images or self.images[image].main is None:
            raise ValueError(f"spawn: image {image!r} unknown; allowed: "
                             f"{', '.join(p for p, i in self.images.items() if i.main)}")
        pid = self.procs.alloc_pid()
        proc = Process(pid, parent=None, name=name or getattr(program, "__name__", "program"),
                       mm=self.mm.new_mm(), main=program, args=tuple(args))
        proc.kstack = self.m.alloc_page()
        proc.child_exit = WaitQueue(f"wait4:{pid}")
        proc.ctx = self.arch.create_process(pid, None)
        self.procs.add(proc)
        self.setup_image(proc, self.images[image], self.fs.lookup(image), (), copy_args=False)
        null = self.fs.lookup("/dev/null")
        tty = File(null.device, null, O_RDWR)           # stdin, stdout, stderr
        for _ in range(3):
            proc.files.install(tty)
        tty.count = 3
        self.log("spawn", pid=pid, name=proc.name)
        self.sched.start(proc, self.process_main)
        return proc

    def process_main(self, proc):
        """The life of a process, on its own thread: run the program (and the images it
        execs), then exit with what it returned."""
        libc = Libc(self, proc)
        main, args = proc.main, proc.args
        try:
            while True:
                try:
                    ret = main(libc, *args)
                    break
                except ExecImage as x:
                    main, args = x.main, x.args
        except FatalSignal as e:
            self.do_exit(proc, signal_status(e.signal))
        if proc.fatal_signal:               # the program caught the signal: it dies anyway
            self.do_exit(proc, signal_status(proc.fatal_signal))
        proc.result = ret
        libc.exit(ret if isinstance(ret, int) and not isinstance(ret, bool) else 0)

    def layout(self, what):
        """Address ranges of an image (or a process's image): text, data, bss, stack."""
        img = what.image if isinstance(what, Process) else what
        up = lambda n: -(-n // self.page) * self.page
        t1 = TEXT_BASE + up(img.text_bytes)
        d1 = t1 + up(img.data_bytes)
        return {"text": (TEXT_BASE, t1), "data": (t1, d1), "bss": (d1, d1 + up(img.bss_bytes)),
                "stack": (self.task_size - STACK_SIZE, self.task_size)}

    def setup_image(self, proc, image, inode, argv, copy_args=True):
        """Map an executable into `proc` (the binfmt loader): text and data from the file,
        bss and stack anonymous; the argument strings copied to the top of the stack."""
        lay, mm = self.layout(image), proc.mm
        rx, rw = PROT_READ | PROT_EXEC, PROT_READ | PROT_WRITE
        mm.insert(VMA(*lay["text"], rx, MAP_PRIVATE, inode, 0, "text"))
        if lay["data"][1] > lay["data"][0]:
            mm.insert(VMA(*lay["data"], rw, MAP_PRIVATE, inode, lay["text"][1] - TEXT_BASE,
                          "data"))
        if lay["bss"][1] > lay["bss"][0]:
            mm.insert(VMA(*lay["bss"], rw, MAP_PRIVATE, None, 0, "bss"))
        mm.brk_start = mm.brk = lay["bss"][1]
        mm.insert(VMA(*lay["stack"], rw, MAP_PRIVATE, None, 0, "stack"))
        proc.image = image
        if copy_args and argv:
            blob = b"".join(a.encode() + b"\0" for a in argv)
            self.copy_to_user(proc, self.task_size - len(blob), blob)

    def do_exit(self, proc, status):
        """do_exit: close files, drop memory, tear the context down, become a zombie, tell
        the parent.  Never returns (raises ProcessExited to unwind the program)."""
        a = self.arch
        a.run_path("do_exit")
        for fd, f in proc.files.items():
            self.close_file(f)
        proc.files.fds.clear()
        self.mm.exit_mmap(proc, unmap=False)
        a.destroy_process(proc.ctx)
        proc.state, proc.exit_status = ProcState.ZOMBIE, status
        for c in proc.children:                 # orphans go to init, which reaps zombies
            c.parent = None
            if c.state is ProcState.ZOMBIE:
                self.release(c)
        proc.children = []
        self.log("exit", pid=proc.pid, status=status)
        if proc.parent is None:
            self.release(proc)
        else:
            self.sched.wake_up(proc.parent.child_exit)
        raise ProcessExited()

    def release(self, z):
        """Free what a zombie still holds (its kernel stack) and forget its pid."""
        self.m.free_page(z.kstack)
        z.kstack = 0
        z.state = ProcState.DEAD
        self.procs.remove(z)
        self.log("reap", pid=z.pid, status=z.exit_status)

    def close_file(self, f):
        f.count -= 1
        if f.count == 0:
            f.ops.release(self, f)

    # ------------------------------------------------------------------ running
    def run(self, until=None):
        """Run until every process has exited (or until process `until` has).  Raises
        Deadlock if processes still sleep and nobody can run, Panic if the kernel crashed,
        and any exception a program raised."""
        self._check_up()
        target = self.procs.get(until) if isinstance(until, int) else until
        while self.sched.run_next():
            self._raise_pending()
        self._raise_pending()
        waiting = target.alive if target is not None else bool(self.procs.live())
        if waiting:
            stuck = [(p.pid, p.state.value, p.wchan) for p in self.procs.live()]
            self.shutdown()
            raise Deadlock(f"no process can run; waiting: {stuck}")

    def _raise_pending(self):
        err = self.sched.error
        if err is not None:
            self.sched.error = None
            self.shutdown()
            raise err

    def shutdown(self):
        """Unwind every process thread still parked (after a panic or a deadlock, or at the
        end of an experiment that leaves servers blocked)."""
        self.sched.runqueue.clear()
        self.sched.shutting_down = True
        self.sched.kill_all(list(self.procs))
        self.sched.shutting_down = False

    def ps(self):
        return [(p.pid, p.name, p.state.value, p.wchan) for p in self.procs]

    # ------------------------------------------------------------------ system calls
    def syscall(self, proc, name, *args):
        """Enter Linux from `proc`: the platform's way in, dispatch, the call, the way out.
        Arguments no register could carry (not integers where the call takes integers, a
        wrong number of them) are refused before the trap, as the C library's stub would:
        the errno, no event, no cycle (`syscalls.check_args`)."""
        self._check_up()
        if proc.__class__ is not Process or proc.state in GONE:
            raise ESRCH(f"{name}: caller {proc!r} is not a live process")
        if name.__class__ is not str:
            raise ENOSYS(f"system call {name!r} is not a name; have: {', '.join(SYSCALLS)}")
        fn, nargs = TABLE.get(name, NO_CALL)
        if nargs != len(args):                  # also: a prototype not all ints (-1)
            if fn is not None:
                args = check_args(name, args)
        else:
            for a in args:                      # ints that fit a 32-bit register pass
                if a.__class__ is not int or not -0x80000000 <= a <= 0xFFFFFFFF:
                    args = check_args(name, args)
                    break
        if self.log_syscalls:
            self.log("syscall", pid=proc.pid, name=name)
        arch = self.arch

        def body():
            if fn is None:
                raise ENOSYS(f"system call {name!r} not implemented; have: {', '.join(SYSCALLS)}")
            return fn(self, proc, *args)
        return arch.syscall(proc.ctx, name, body)

    def page_fault(self, ctx, va, kind):
        """The platform reports a fault of process `ctx` at `va` ("r", "w", "x")."""
        self._check_up()
        proc = self.procs.get(ctx.pid)
        if proc is None:
            raise ValueError(f"page_fault: no process with pid {ctx.pid}")
        self.component("mm")
        return self.mm.page_fault(proc, va, kind)

    # -- user memory (uaccess) --
    def copy_from_user(self, proc, va, n, kpa=None):
        """The bytes at user `va`: pages made present first, the platform's copy charged
        (`kpa`: physical address of Linux's side, for platforms that model it)."""
        if n <= 0:
            return b""
        self.mm.check_area(proc, va, n, False)
        self.mm.prefault(proc, va, n, False)
        self._copy(proc, va, n, False, kpa)
        return self.mm.read_user(proc, va, n)

    def copy_to_user(self, proc, va, data, kpa=None):
        if not data:
            return
        self.mm.check_area(proc, va, len(data), True)
        self.mm.prefault(proc, va, len(data), True)
        self._copy(proc, va, len(data), True, kpa)
        self.mm.write_user(proc, va, data)

    def _copy(self, proc, va, n, to_user, kpa):
        self.copy_kernel_pa = kpa
        try:
            self.arch.copy_user(proc.ctx, va, n, to_user)
        finally:
            self.copy_kernel_pa = None

    def getname(self, proc, va):
        """strncpy_from_user of a path or argument string."""
        out, a = b"", va
        while True:
            self.mm.check_area(proc, a, 1, False)
            self.mm.prefault(proc, a, 1, False)
            end = a - a % self.page + self.page
            chunk = self.mm.read_user(proc, a, end - a)
            i = chunk.find(b"\0")
            out += chunk if i < 0 else chunk[:i]
            if len(out) >= PATH_MAX:
                raise ENAMETOOLONG(f"string at 0x{va:x} longer than {PATH_MAX}")
            if i >= 0:
                break
            a = end
        self._copy(proc, va, len(out) + 1, False, None)
        return out.decode(errors="replace")

    # -- sockets --
    def sock_send(self, proc, s, va, n, port, nonblock):
        self.component("net")
        self.arch.run_path("sock_sendmsg")
        if s.proto == "udp":
            return self.net.udp_send(proc, s, va, n, port)
        return self.net.tcp_send(proc, s, va, n, nonblock)

    def sock_recv(self, proc, s, va, n, nonblock):
        """(bytes, source port)"""
        self.component("net")
        self.arch.run_path("sock_recvmsg")
        if s.proto == "udp":
            return self.net.udp_recv(proc, s, va, n, nonblock)
        return self.net.tcp_recv(proc, s, va, n, nonblock), s.peer.port if s.peer else None

    # ------------------------------------------------------------------ crashes
    def inject_fault(self, component, what="NULL pointer dereference"):
        """Plant a bug in a kernel component ("fs", "pipe", "net", "mm"): it oopses the
        next time it runs."""
        if component not in COMPONENTS:
            raise ValueError(f"inject_fault: component {component!r}; allowed: "
                             f"{', '.join(COMPONENTS)}")
        self._armed[component] = what
        self.log("fault_injected", component=component, what=what)

    def component(self, name):
        """Called where a component's code starts: an armed bug fires here."""
        what = self._armed.pop(name, None) if self._armed else None
        if what is not None:
            pid = self.sched.current.pid if self.sched.current else None
            self.log("oops", component=name, what=what, pid=pid)
            self.panic(f"Oops in {name} ({what}) in supervisor mode, pid {pid}")

    def panic(self, reason):
        """The monolithic kernel is down: nothing runs any more."""
        if self.panicked is None:
            self.panicked = reason
            self.log("panic", reason=reason)
        raise Panic(f"Kernel panic: {reason}")

    def _check_up(self):
        if self.panicked is not None:
            raise Panic(f"Kernel panic: {self.panicked} (the system is down)")
