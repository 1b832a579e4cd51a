"""Processes: pids, states, file-descriptor tables, and Linux's own view of each address space.

The *logical page table* (`MM`) is Linux's: a list of VMAs (what the process may map) and a
table of PTEs (what is mapped now: frame and whether writing is allowed).  On native Linux the
hardware page table mirrors it entry for entry; on L4Linux and MkLinux it is the server's
private book-keeping from which it answers page faults (S97 §4: "has its own logical page
table").  fork/exec/exit/wait are carried out by `lab.mono.syscalls` with `lab.mono.mm`.
"""
from dataclasses import dataclass, field, replace
from enum import Enum

from .abi import PROT_READ, PROT_WRITE, PROT_EXEC, MAP_SHARED
from .errors import EBADF, EMFILE, ENOMEM, EAGAIN

NR_OPEN = 256           # Linux 2.0: file descriptors per process
PID_MAX = 32768         # Linux 2.0 get_pid() wraps here
NR_TASKS = 512          # Linux 2.0 include/linux/tasks.h: slots of task[], idle (0) and init too


class ProcState(Enum):
    """Linux's task states, plus the two ends of a life."""
    RUNNABLE = "runnable"       # on the run queue
    RUNNING = "running"         # has the CPU
    SLEEPING = "sleeping"       # on a wait queue (TASK_INTERRUPTIBLE)
    ZOMBIE = "zombie"           # exited; waits for its parent's wait4
    DEAD = "dead"               # reaped


# Control transfers of a process's own thread (not errors: BaseException so that no
# `except Exception` in a platform's code swallows them).
class ProcessExited(BaseException):
    """Raised after do_exit: unwinds the program; the thread then hands the CPU on."""


class ProcessKilled(BaseException):
    """Raised in a parked process when the simulation is shut down (panic, deadlock)."""


class ExecImage(BaseException):
    """Raised by the C library after a successful execve: the old program's stack is gone,
    the new image's main runs next."""

    def __init__(self, main, args):
        super().__init__(main)
        self.main, self.args = main, args


@dataclass
class VMA:
    """A virtual memory area [start, end): protection, sharing, and its backing file if any."""
    start: int
    end: int
    prot: int
    flags: int
    inode: object = None        # a fs.Inode, or None for anonymous memory
    offset: int = 0             # file offset of `start`
    name: str = ""

    @property
    def shared(self):
        return bool(self.flags & MAP_SHARED)

    def allows(self, kind):
        need = {"r": PROT_READ, "w": PROT_WRITE, "x": PROT_EXEC}[kind]
        return bool(self.prot & need)

    def file_offset(self, va):
        return self.offset + (va - self.start)


class PTE:
    """A logical page-table entry: the frame and whether the process may write it now
    (False on a page shared copy-on-write, or a file page mapped from the cache)."""
    __slots__ = ("pa", "writable")

    def __init__(self, pa, writable):
        self.pa, self.writable = pa, writable

    def __repr__(self):
        return f"PTE(pa=0x{self.pa:x}, {'rw' if self.writable else 'r'})"


class MM:
    """A process's memory map: VMAs sorted by address, PTEs by virtual page number."""

    def __init__(self, page_size):
        self.page = page_size
        self.vmas = []
        self.ptes = {}
        self.brk_start = self.brk = 0
        self.pgd = 0                # frame of the page directory (pgd_alloc)
        self.tables = {}            # region (va >> its shift) -> frame of its page table

    def find_vma(self, va):
        for v in self.vmas:
            if v.start <= va < v.end:
                return v
        return None

    def overlapping(self, start, end):
        return [v for v in self.vmas if v.start < end and start < v.end]

    def insert(self, vma):
        if self.overlapping(vma.start, vma.end):
            raise ENOMEM(f"insert_vm_struct: [0x{vma.start:x}, 0x{vma.end:x}) overlaps a mapping")
        self.vmas.append(vma)
        self.vmas.sort(key=lambda v: v.start)

    def remove_range(self, start, end):
        """Cut [start, end) out of every VMA (splitting where needed); returns the pieces cut."""
        cut, keep = [], []
        for v in self.vmas:
            if v.end <= start or end <= v.start:
                keep.append(v)
                continue
            lo, hi = max(v.start, start), min(v.end, end)
            cut.append(replace(v, start=lo, end=hi, offset=v.file_offset(lo)))
            if v.start < lo:
                keep.append(replace(v, end=lo))
            if hi < v.end:
                keep.append(replace(v, start=hi, offset=v.file_offset(hi)))
        self.vmas = sorted(keep, key=lambda v: v.start)
        return cut

    def pte(self, va):
        return self.ptes.get(va // self.page)

    def present(self, start, end):
        """(va, PTE) of the mapped pages in [start, end), in address order."""
        p = self.page
        return [(vpn * p, self.ptes[vpn]) for vpn in sorted(self.ptes) if start <= vpn * p < end]

    def get_unmapped_area(self, length, base, limit):
        """The lowest gap of `length` bytes at or above `base` and below `limit`."""
        addr = base
        for v in self.vmas:
            if v.end <= addr:
                continue
            if v.start >= addr + length:
                break
            addr = max(addr, v.end)
        if addr + length > limit:
            raise ENOMEM(f"get_unmapped_area: no gap of {length} bytes below 0x{limit:x}")
        return addr


class FdTable:
    """The process's open files (struct files_struct): fd -> File, lowest free fd first, and
    the set of fds closed at exec (close_on_exec)."""

    def __init__(self):
        self.fds = {}
        self.cloexec = set()

    def install(self, file, start=0):
        """The lowest free fd at or above `start` now refers to `file` (not close-on-exec)."""
        for fd in range(start, NR_OPEN):
            if fd not in self.fds:
                self.fds[fd] = file
                return fd
        raise EMFILE(f"no free file descriptor at or above {start} (NR_OPEN = {NR_OPEN})")

    def get(self, fd):
        f = self.fds.get(fd) if isinstance(fd, int) else None
        if f is None:
            raise EBADF(f"fd {fd!r} is not open")
        return f

    def remove(self, fd):
        f = self.get(fd)
        del self.fds[fd]
        self.cloexec.discard(fd)
        return f

    def items(self):
        return sorted(self.fds.items())


@dataclass(eq=False)
class Process:
    """A Linux process (struct task_struct) and the simulator's handle on its thread."""
    pid: int
    parent: object = None
    name: str = ""
    state: ProcState = ProcState.RUNNABLE
    ctx: object = None              # the platform's ProcessContext
    mm: MM = None
    files: FdTable = field(default_factory=FdTable)
    children: list = field(default_factory=list)
    kstack: int = 0                 # frame of the kernel stack (and task_struct), freed by wait4
    image: object = None            # the ProgramImage it runs
    main: object = None             # program(libc, *args)
    args: tuple = ()
    user: dict = field(default_factory=dict)   # the C library's state (heap), copied by fork
    exit_status: int = None
    result: object = None           # what the program returned (for experiments)
    wchan: str = ""                 # what it sleeps on
    killed: bool = False
    fatal_signal: int = 0           # the signal that killed it (SIGSEGV, SIGKILL), once sent
    thread: object = None
    baton: object = None
    child_exit: object = None       # wait queue of wait4 (wait_chldexit)
    pgrp: int = None                # process group: fork inherits it; a spawned process
                                    # leads its own (init's spawn setsid()s), pgrp = pid

    def __post_init__(self):
        if self.pgrp is None:
            self.pgrp = self.pid

    @property
    def ppid(self):
        return self.parent.pid if self.parent is not None else 1    # init adopts orphans

    @property
    def alive(self):
        return self.state not in (ProcState.ZOMBIE, ProcState.DEAD)

    def __repr__(self):
        return f"<Process {self.pid} {self.name or ''} {self.state.value}>"


class ProcessTable:
    """pid -> Process, with Linux 2.0's get_pid(): last pid + 1, skipping pids in use (as a
    process's pid or as a process group's)."""

    def __init__(self):
        self.procs = {}
        self.last_pid = 1           # pid 1 is init (the parent of spawned processes)

    def alloc_pid(self):
        """do_fork: find_empty_process (a slot of task[]; zombies hold theirs), then get_pid.
        This lab's processes run as root, so only a full task[] is EAGAIN (2.0 keeps
        MIN_TASKS_LEFT_FOR_ROOT slots for root, and RLIMIT_NPROC, for other users only);
        the failed fork consumes no pid."""
        if len(self.procs) + 2 >= NR_TASKS:         # + the idle task and init
            raise EAGAIN(f"fork: all {NR_TASKS} task slots in use (NR_TASKS; the idle task "
                         f"and init hold two, {len(self.procs)} processes and zombies the rest)")
        for _ in range(PID_MAX):
            self.last_pid = self.last_pid + 1 if self.last_pid + 1 < PID_MAX else 2
            if self.last_pid not in self.procs and not self._group(self.last_pid):
                return self.last_pid
        raise EAGAIN(f"get_pid: all {PID_MAX} pids in use")

    def _group(self, pid):
        """get_pid skips a pid that names a process group (or session) still in use."""
        return any(p.pgrp == pid for p in self.procs.values())

    def add(self, proc):
        self.procs[proc.pid] = proc

    def remove(self, proc):
        self.procs.pop(proc.pid, None)

    def get(self, pid):
        return self.procs.get(pid)

    def live(self):
        return [p for _pid, p in sorted(self.procs.items()) if p.alive]

    def __iter__(self):
        return iter([p for _pid, p in sorted(self.procs.items())])
