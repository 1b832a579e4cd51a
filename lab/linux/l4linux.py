"""L4Linux (S97 §4): Linux's architecture-dependent part rewritten for the L4 microkernel.

    server          the Linux server is ONE L4 thread in ONE L4 task (large space, 4 KB pages,
                    not global: DESIGN §4).  Its pager is sigma0, which maps physical page X at
                    X: so the server sees "physical memory" at va = pa (its window), and Linux's
                    image at SERVER_TEXT / SERVER_DATA.  It multiplexes its single thread over
                    Linux's kernel contexts: busy while some context runs Linux code, back in
                    its receive loop (open wait) when none does.
    processes       one L4 task + thread each, whose pager is the server; the server maps pages
                    of its window into them (map items) and keeps its own *logical* page table
                    (Linux's, mirrored here as `ctx.logical`).  Optionally in small spaces
                    (S97 §3): then a switch server <-> process reloads segments, not CR3.
    system calls    the modified C library (the emulation library in the process's space):
                    enter library, IPC call to the server, Linux's work, reply, leave library
                    (the five steps of S97 Fig. 5).  `trampoline=True` models unmodified
                    binaries: int 0x80 enters L4, which bounces it to a user-level exception
                    handler in the process (the trampoline), which calls the library.
    page faults     L4 turns them into page-fault IPC to the server, which looks up its logical
                    page table (or runs Linux's do_page_fault) and answers with a map item.
    process switch  Linux's scheduler picks another context; the server replies to *that*
                    process's thread later.  Address-space switches happen when an L4 thread of
                    another space runs (engine: CR3 load and TLB flush, or segment reload).
    unmap/protect   L4's flush works on the flusher's own page and everything derived from it:
                    the server flushes its window page, so every process sharing the frame
                    loses it (or its write right) and faults it back from the logical table.

Cost categories: emulation library and trampoline "emulation", L4's IPC path "ipc", trap
"entry_exit", the server's work "server", address-space switch "space_switch"; TLB and cache
misses come from the engine.  Path lengths: lab/profiles/l4linux.json (this file's paths),
lab/profiles/l4.json (L4's), the LinuxKernel's profile (Linux's).

Fault containment: a crash of the server (Linux panics inside it, or `crash()`) deletes the
server task; L4 and the other tasks run on; the processes' IPCs fail with
L4_IPC_ENOT_EXISTENT; a new L4LinuxArch on the same L4 kernel serves again.

Simplifications (documented): map items the server sends while a process waits for its reply
are entered when Linux asks (`map_user`), charged as map items of that reply; the server's
"wake-up" when Linux resumes a context sleeping in the kernel from the idle loop (an interrupt
IPC on the real system) is not charged.
"""
import numpy as np

from engine import ops as O

from lab.errors import KernelError, Panic
from lab.image import KernelImage
from lab.kprofile import KernelProfile, load_kernel_profile
from lab.l4 import (L4Kernel, Message, Fpage, ipc_call, ipc_wait, ipc_reply_and_wait)
from lab.l4.errors import NotExistent, PageFaultUnresolved
from lab.l4.ipc import BLOCKED, Ipc
from lab.l4.thread import ThreadState
from lab.mono.syscalls import SYSCALLS

from .arch import LinuxArch, ProcessContext

# the message's first word: the call's number (1.. in table order; 0 for a name Linux lacks,
# which the server answers with ENOSYS)
SYSCALL_NR = {name: i for i, name in enumerate(SYSCALLS, 1)}

SERVER_TEXT = 0x80000000       # Linux's image in the server's space (4 KB pages, not global)
SERVER_DATA = 0x88000000
ARCH_TEXT = 0x90000000         # the server-side L4Linux paths (l4linux.json)
ARCH_DATA = 0x90400000
EMU_VA = 0x3FF00000            # the emulation library in a large process (below mmap's base)
EMU_SMALL_OFFSET = 0x10000     # ... in a small one: this far below the top of the space
SERVER_PATHS = ("server_syscall", "server_reply", "server_pagefault", "server_idle")
LIBRARY_PATHS = ("emulib_enter", "emulib_leave", "trampoline_enter", "trampoline_leave")


def _subset(profile, names):
    """A KernelProfile with only the paths `names` (the client or the server side), in the
    profile's layout order."""
    data = {"kernel": profile.kernel,
            "paths": {n: profile.data["paths"][n] for n in profile.layout if n in names},
            "values": {}}
    return KernelProfile(data, profile.origin)


class EmulationLibrary:
    """The emulation library's code: the client-side paths laid out in a few frames that the
    server owns and maps into every process (shared, read-only), at a per-process address."""

    def __init__(self, machine, profile):
        self.m = machine
        self.profile = profile
        self.line = min((c["line"] for c in machine.cache_config), default=32)
        self.code_off, self.data_off = {}, {}
        t = d = 0
        rnd = lambda n: -(-int(n) // self.line) * self.line
        for name in profile.layout:
            _ins, cb, db = profile.path(name)
            self.code_off[name], self.data_off[name] = t, d
            t, d = t + rnd(cb), d + rnd(db)
        ps = machine.fmt.page_size
        self.text_pages = max(1, -(-t // ps))
        self.npages = self.text_pages + max(1, -(-d // ps))
        self.frames = [machine.alloc_page() for _ in range(self.npages)]
        self.size = self.npages * ps
        self._ops = {}

    def ops(self, name, base):
        key = (name, base)
        if key not in self._ops:
            ins, cb, db = self.profile.path(name)
            ps = self.m.fmt.page_size
            code = O.access("x", O.lines(base + self.code_off[name], cb, self.line)) \
                if cb else np.zeros(0, np.int64)
            data = O.access("r", O.lines(base + self.text_pages * ps + self.data_off[name], db,
                                         self.line)) if db else np.zeros(0, np.int64)
            self._ops[key] = O.concat(O.mode("emulation"),
                                      O.charge("emulation", ins * self.m.cpi), code, data)
        return self._ops[key]


class L4LinuxProcess(ProcessContext):
    """A Linux process on L4: an L4 task and its thread, paged by the server."""

    def __init__(self, pid, task, emu_va):
        self.pid = pid
        self.task = task
        self.thread = task.thread
        self.emu_va = emu_va
        self.logical = {}           # va -> (pa, perms): what Linux told the platform
        self.in_kernel = False      # a Linux context of this process runs (or sleeps) in Linux

    @property
    def space(self):
        return self.task.sid if self.task.alive else None

    @space.setter
    def space(self, value):         # ProcessContext's constructor; the task decides
        pass

    def __repr__(self):
        return f"<L4Linux process {self.pid} task {self.task.number}>"


class L4LinuxArch(LinuxArch):
    """`L4LinuxArch(machine, trampoline=False, small_spaces=False, small_size=4 MB, kernel=None,
    max_threads=None)`; after boot: `k` the L4Kernel (a new one unless `kernel` is given: several
    servers, or a restarted one, can share an L4; a new one has `max_threads` TCBs, one per
    thread alive at once -- each Linux process is an L4 task of one thread), `server_task` and
    `server` (its one thread)."""
    name = "l4linux"
    hardware_page_tables = False    # fork's child faults its pages in through the server

    def __init__(self, machine, trampoline=False, small_spaces=False, small_size=4 << 20,
                 kernel=None, max_threads=None):
        super().__init__(machine)
        if kernel is not None and max_threads is not None:
            raise ValueError("L4LinuxArch: max_threads sizes a new L4 kernel; not with kernel=")
        self.max_threads = max_threads  # TCBs of the new L4 (None: L4Kernel's default)
        self.trampoline = bool(trampoline)
        self.name = "l4linux_trampoline" if self.trampoline else "l4linux"
        if small_spaces and not machine.small_spaces:
            raise ValueError(f"L4LinuxArch: small_spaces=True but machine profile "
                             f"{machine.profile.name} has no small spaces")
        self.small_spaces = bool(small_spaces)
        self.small_size = small_size
        self.k = kernel
        self.crashed = None

    # ------------------------------------------------------------------ boot
    def boot(self):
        m = self.m
        if m.memory.size > SERVER_TEXT:
            raise ValueError(f"L4LinuxArch: {m.memory.size >> 20} MB of memory do not fit the "
                             f"server's window below 0x{SERVER_TEXT:x}")
        k = self.k = self.k or (L4Kernel(m) if self.max_threads is None
                                else L4Kernel(m, max_threads=self.max_threads))
        n = sum(1 for t in k.tasks.values() if t.name.startswith("linux-server"))
        self.server_task = k.task_new(f"linux-server{'' if not n else f'-{n}'}", pager=k.sigma0)
        self.server = self.server_task.thread
        self.copy_rate = m.profile["copy_bytes_per_cycle"]
        arch_prof = load_kernel_profile("l4linux")
        self.image = KernelImage(m, load_kernel_profile(self.linux.image_profile),
                                 SERVER_TEXT, SERVER_DATA)
        self.arch_image = KernelImage(m, _subset(arch_prof, SERVER_PATHS), ARCH_TEXT, ARCH_DATA)
        self.library = EmulationLibrary(m, _subset(arch_prof, LIBRARY_PATHS))
        self.line = self.image.line
        for img in (self.image, self.arch_image):
            for va, pa, perms, _size in img.place():
                self._window(pa)
                k.map_fpage(self.server_task, Fpage(pa, 12, perms), self.server_task, va)
        for pa in self.library.frames:
            self._window(pa)
        self._server_idle()
        m.events.log("l4linux", "boot", server=self.server.name, trampoline=self.trampoline,
                     small_spaces=self.small_spaces)

    def _window(self, pa):
        """The server has physical page `pa` at va = pa (a page fault to sigma0 if not yet)."""
        if self.k.db.lookup(self.server_task, pa) is None:
            err = self.k.page_fault_ipc(self.server, pa, True, resume=self.server)
            if err is not None:
                raise err

    # ------------------------------------------------------------------ the server thread
    def _check_server(self):
        if not self.server.alive:
            raise NotExistent(f"the Linux server is gone ({self.crashed or 'deleted'})", "send")

    def _server_idle(self):
        """No Linux context has kernel work: the server enters its receive loop."""
        s = self.server
        if s.alive and s.state is not ThreadState.RECEIVING:
            self.k.dispatch(s)
            self._no_fault(self.arch_image.run("server_idle", "server"), "server_idle")
            r = self.k.ipc_path.syscall(s, ipc_wait())
            if r is not BLOCKED:
                raise RuntimeError(f"L4Linux: the server found a queued message {r!r} "
                                   "although every Linux context was in user mode")

    def _server_busy(self):
        """Linux resumes a context that sleeps in the kernel: the server leaves its wait."""
        s = self.server
        if s.alive and s.state is ThreadState.RECEIVING:
            self.k.ipc_path.cancel(s)
            self.m.events.log("l4linux", "server_wakeup")

    def _call(self, t, req, entry=True):
        """Thread `t` sends `req` to the waiting server; afterwards the server has the
        message and `t` waits for the reply."""
        self._check_server()
        if self.server.state is not ThreadState.RECEIVING:
            self._server_idle()
        r = self.k.ipc_path.syscall(t, req, entry=entry)
        if r is not BLOCKED:
            raise r if isinstance(r, BaseException) else RuntimeError(
                f"L4Linux: the server's reply arrived before it ran ({r!r})")
        self.server.result = None

    def _reply(self, t, msg, step=None):
        """The server answers `t` and waits again; `t` runs on with the reply.  `step`:
        (pid, name) of a system call, for the event log's Fig. 5 steps."""
        s = self.server
        self.k.dispatch(s)
        self._no_fault(self.arch_image.run("server_reply", "server"), "server_reply")
        if step is not None:
            self.m.events.log("l4linux", "syscall", pid=step[0], name=step[1], step="receive")
        r = self.k.ipc_path.syscall(s, ipc_reply_and_wait(t, msg))
        if r is not BLOCKED:             # the client is gone (exit, crash): just wait
            self._server_idle()
        if t.alive:
            self.k.dispatch(t)
            reply, t.result = t.result, None
            return reply
        return None

    def crash(self, reason="crash"):
        """The server dies (its task is deleted): every mapping it gave is flushed, its
        clients' IPCs fail, L4 and the other tasks go on."""
        if self.server_task.alive:
            self.crashed = reason
            self.m.events.log("l4linux", "server_crash", reason=str(reason))
            self.k.task_delete(self.server_task)

    # ------------------------------------------------------------------ Linux's own work
    def run_path(self, path):
        self._check_server()
        self.k.dispatch(self.server)
        self._no_fault(self.image.run(path, "server"), path)

    @staticmethod
    def _no_fault(result, path):
        """Images are mapped before they run: a fault here is a bug of this platform."""
        if result is not None and result.faults:
            raise RuntimeError(f"L4Linux: path {path} faulted {result.faults} time(s)")

    def syscall(self, ctx, name, body):
        """S97 Fig. 5: enter the emulation library, send the system-call message, Linux's
        work in the server, receive the reply, leave the library."""
        k, m, t = self.k, self.m, ctx.thread
        k.dispatch(t)
        log = m.events.log
        log("l4linux", "syscall", pid=ctx.pid, name=name, step="enter_emulation")
        if self.trampoline:
            k.reflect_exception(t)
            self._library(ctx, "trampoline_enter")
        self._library(ctx, "emulib_enter")
        log("l4linux", "syscall", pid=ctx.pid, name=name, step="send")
        self._call(t, ipc_call(self.server, Message(SYSCALL_NR.get(name, 0), payload=name)))
        ctx.in_kernel = True
        result = error = None
        try:
            k.dispatch(self.server)
            log("l4linux", "syscall", pid=ctx.pid, name=name, step="server_work")
            self._no_fault(self.arch_image.run("server_syscall", "server"), "server_syscall")
            result = body()
        except Panic as e:              # Linux died inside its server: only the server dies
            self.crash(e)
            raise NotExistent(f"{name}: the Linux server crashed ({e})", "receive") from e
        except KernelError as e:
            error = e
        finally:
            ctx.in_kernel = False
        reply = self._reply(t, Message(0, error=error, payload=result), step=(ctx.pid, name))
        if isinstance(reply, BaseException):
            raise reply
        log("l4linux", "syscall", pid=ctx.pid, name=name, step="leave_emulation")
        self._library(ctx, "emulib_leave")
        if self.trampoline:
            self._library(ctx, "trampoline_leave")
        log("l4linux", "syscall", pid=ctx.pid, name=name, step="done")
        if error is not None:
            raise error
        return result

    def _library(self, ctx, path):
        """Run an emulation-library path in the process's space (category emulation)."""
        self.k.execute(ctx.thread, self.library.ops(path, ctx.emu_va), "emulation",
                       fault_handler=lambda va, write: self._page_fault(ctx, va, write))

    # ------------------------------------------------------------------ processes
    def create_process(self, pid, parent=None):
        self._check_server()
        k = self.k
        task = k.task_new(f"linux-{pid}", pager=self.server, small=self.small_spaces,
                          small_size=self.small_size)
        emu = task.small_size - EMU_SMALL_OFFSET if task.small else EMU_VA
        ctx = L4LinuxProcess(pid, task, emu)
        if self.trampoline:
            ctx.thread.exception_handler = emu + self.library.code_off.get("trampoline_enter", 0)
        ps = self.m.fmt.page_size
        for i, pa in enumerate(self.library.frames):
            rights = "rx" if i < self.library.text_pages else "r"
            k.map_fpage(self.server_task, Fpage(pa, 12, rights), task, emu + i * ps)
        self.m.events.log("l4linux", "create_process", pid=pid, task=task.name,
                          small=task.small)
        return ctx

    def destroy_process(self, ctx):
        if ctx.task.alive:
            self.k.task_delete(ctx.task)
        ctx.logical.clear()

    def switch_process(self, prev, nxt):
        self.m.events.log("l4linux", "switch_process", prev=getattr(prev, "pid", None),
                          next=getattr(nxt, "pid", None))
        if nxt is None:
            return
        if nxt.in_kernel:
            self._server_busy()
        else:
            self._server_idle()

    # ------------------------------------------------------------------ user memory
    def map_user(self, ctx, va, pa, perms):
        ctx.logical[va] = (pa, perms)
        self._map(ctx, va, pa, perms)

    def _map(self, ctx, va, pa, perms):
        self._check_server()
        self._window(pa)
        k = self.k
        node = k.db.lookup(ctx.task, va)
        if node is not None and node.pa == pa:
            lost = "".join(c for c in "wx" if c in node.rights and c not in perms)
            if lost:                    # L4 cannot downgrade one mapping: flush the rights
                k.fpage_unmap(self.server_task, Fpage(pa, 12), lost)
        k.map_fpage(self.server_task, Fpage(pa, 12, perms), ctx.task, va)

    def unmap_user(self, ctx, va):
        ctx.logical.pop(va, None)
        node = self.k.db.lookup(ctx.task, va) if ctx.task.alive else None
        if node is not None and self.server.alive:
            self.k.fpage_unmap(self.server_task, Fpage(node.pa, 12), "rwx")

    def protect_user(self, ctx, va, perms):
        pa, _old = ctx.logical.get(va, (None, None))
        if pa is None:
            return                      # never mapped in L4: Linux's table decides at the fault
        ctx.logical[va] = (pa, perms)
        node = self.k.db.lookup(ctx.task, va)
        if node is None:
            return                      # not mapped in L4 yet: the next fault maps it so
        lost = "".join(c for c in "wx" if c in node.rights and c not in perms)
        if lost:
            self.k.fpage_unmap(self.server_task, Fpage(node.pa, 12), lost)
        if any(c not in node.rights for c in perms):
            self._map(ctx, va, pa, perms)

    def copy_user(self, ctx, va, nbytes, to_user):
        """The server copies through its window: the user's frames (from its logical page
        table) and Linux's side (`linux.copy_kernel_pa`) are both at va = pa there."""
        if nbytes <= 0:
            return
        self._check_server()
        ps = self.m.fmt.page_size
        parts, a, end = [], va, va + nbytes
        while a < end:
            page = a - a % ps
            n = min(end, page + ps) - a
            e = ctx.logical.get(page)
            if e is None or (to_user and "w" not in e[1]):
                self.linux.page_fault(ctx, a, "w" if to_user else "r")
                e = ctx.logical[page]
            self._window(e[0])
            parts.append(O.access("w" if to_user else "r", O.lines(e[0] + a - page, n, self.line)))
            a += n
        kpa = self.linux.copy_kernel_pa
        if kpa is not None:
            for p in range(kpa - kpa % ps, kpa + nbytes, ps):
                self._window(p)
            parts.append(O.access("r" if to_user else "w", O.lines(kpa, nbytes, self.line)))
        self._server_run(O.concat(O.charge("copy", nbytes / self.copy_rate), *parts), "copy_user")

    def touch_kernel_data(self, pa, nbytes, kind="r"):
        """The server's own memory: at va = pa in its space, like Linux's side of a copy."""
        self._check_server()
        ps = self.m.fmt.page_size
        for p in range(pa - pa % ps, pa + nbytes, ps):
            self._window(p)
        self._server_run(O.access(kind, O.lines(pa, nbytes, self.line)), "touch_kernel_data")

    def _server_run(self, ops, what):
        """Run `ops` as the server's work in its space (its memory is mapped: no fault)."""
        k, m = self.k, self.m
        k.dispatch(self.server)
        old = m.set_mode("server")
        try:
            self._no_fault(m.run(O.concat(O.mode("server"), ops), check=False), what)
        finally:
            m.set_mode(old)

    # ------------------------------------------------------------------ user work and faults
    def run_user(self, ctx, ops):
        self.k.execute(ctx.thread, ops, "user",
                       fault_handler=lambda va, write: self._page_fault(ctx, va, write))

    def _page_fault(self, ctx, va, write):
        """L4 turns the fault into an IPC to the server; the server maps from its logical
        page table, or lets Linux handle the fault, and replies."""
        k, t = self.k, ctx.thread
        self.m.events.log("l4", "pagefault", thread=t.name, va=va, write=write,
                          pager=self.server.name)
        k.run_kernel("pagefault", "ipc", threads=(t,))
        msg = Message((va & ~3) | (2 if write else 0), 0)
        msg.pagefault = (va, write)
        self._call(t, Ipc("pagefault", dest=self.server, msg=msg, receive=True, src=self.server,
                          window=Fpage.whole()), entry=False)
        ctx.in_kernel = True
        error = None
        try:
            k.dispatch(self.server)
            self._no_fault(self.arch_image.run("server_pagefault", "server"),
                           "server_pagefault")
            ps = self.m.fmt.page_size
            page = va - va % ps
            e = ctx.logical.get(page)
            if ctx.emu_va <= page < ctx.emu_va + self.library.size:     # the library's pages
                i = (page - ctx.emu_va) // ps
                self._map(ctx, page, self.library.frames[i],
                          "rx" if i < self.library.text_pages else "r")
            elif e is not None and (not write or "w" in e[1]):
                self._map(ctx, page, e[0], e[1])         # present in Linux's page table
            else:
                self.linux.page_fault(ctx, va, "w" if write else "r")
                if not k.accessible(t, va, write):
                    # do_wp_page reused the page (protect_user) but this task never had it
                    # (a fork child's) or lost it to a flush: the reply maps it from the
                    # logical page table
                    got = self.linux.mm.user_page(self.linux.procs.get(ctx.pid), page)
                    if got is not None:
                        self.map_user(ctx, page, *got)
        except Panic as e:
            self.crash(e)
            raise NotExistent(f"page fault: the Linux server crashed ({e})", "receive") from e
        except KernelError as e:
            error = e
        finally:
            ctx.in_kernel = False
        reply = self._reply(t, Message(error=error))
        if isinstance(reply, BaseException):
            raise reply
        if error is not None:
            raise error
        if not k.accessible(t, va, write):
            raise PageFaultUnresolved(f"L4Linux: the server answered the fault of pid {ctx.pid} "
                                      f"at 0x{va:x} without mapping the page")
        self.m.events.log("l4", "pagefault_resolved", thread=t.name, va=va)
