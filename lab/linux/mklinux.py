"""MkLinux: Linux as a server on Mach 3.0 (S97 §4-5).

    MkLinuxArch(machine, in_kernel=True)    "mklinux_in_kernel": the server co-located in
                                            Mach's kernel space (no address-space switch; a
                                            system call is Mach's exception path and a
                                            short-circuited RPC into the server)
    MkLinuxArch(machine, in_kernel=False)   "mklinux_user": the server is a Mach user task

Structure (each step runs on the Mach kernel of lab.mach, so its cost is mechanism):
  * a Linux system call is a trap Mach turns into an exception message to the server (the
    process's thread waits for the reply): exception path, msg_send, the server thread's
    receive, Linux's work, the reply, the receive back in the process.  For the co-located
    server OSF MK short-circuits that RPC (Condict et al. 1994): the process's own thread runs
    the server's stub and Linux's code -- no message is queued or copied, no thread switched;
  * each process is a Mach task with one thread; the server has one thread per process
    (blocked in msg_receive on the process's ports) and a single global lock; a Linux process
    switch is a hand-off between server threads (several Mach operations);
  * the server is the pager of its processes' memory: each process maps one memory object
    whose manager is the server; a user page fault goes to Mach, which sends
    pager_data_request to the server, which runs Linux's fault code, whose map_user supplies
    the frame (pager_data_provided of a physical page); unmap_user and protect_user are
    pager_flush_request / pager_data_lock; a locked page's write fault comes back as
    pager_data_unlock;
  * copy_user: direct accesses for the co-located server (in the process's space), Mach
    vm_read/vm_write calls for the user-task server.
Linux's own paths (Linux's profile) run in the server's image; the MkLinux glue paths come
from lab/profiles/mklinux.json; Mach's paths from lab/profiles/mach.json.
"""
import math

from engine import ops as O
from lab.errors import KernelError
from lab.image import KernelImage
from lab.kprofile import load_kernel_profile
from lab.mach import MachKernel, VMProt, protocol as P
from lab.mach.errors import KernMemoryError, KernInvalidAddress
from lab.mach.port import Right
from lab.mach.vm_map import VM_MAX_ADDRESS

from .arch import LinuxArch, ProcessContext

SYSCALL_MSG = 2400               # the exception message carrying a Linux system call
LINUX_DATA_GAP = 0x00800000      # Linux's data placed this far after its text
GLUE_GAP = 0x01000000            # MkLinux glue after Linux's image


class MkLinuxContext(ProcessContext):
    """A Linux process on Mach: its task and thread, and the server-side ports."""

    def __init__(self, pid, task):
        super().__init__(pid, task.space)
        self.task = task
        self.thread = task.thread
        self.server_thread = None    # the server thread serving this process
        self.mo = None               # memory object name (server space)
        self.sys = None              # system-call (exception) port name (server space)
        self.request = None          # pager_request name (server space), after pager_init
        self.reply_port = None       # kernel port the exception reply comes back on
        self.fault_error = None      # a Linux error raised while serving one of its faults


class MkLinuxArch(LinuxArch):
    hardware_page_tables = False     # Linux's page table is the server's book-keeping

    def __init__(self, machine, in_kernel=True, mach=None, **mach_kw):
        super().__init__(machine)
        self.in_kernel = bool(in_kernel)
        self.name = "mklinux_in_kernel" if self.in_kernel else "mklinux_user"
        self.mach = mach or MachKernel(machine, **mach_kw)
        self.kprof = load_kernel_profile("mklinux")
        self._calls, self._results = {}, {}
        self._seq = 0
        self._reply_reads = {}         # (slot, bytes) -> Batch of the reply's read
        self.contexts = {}

    # -- boot ------------------------------------------------------------------------------
    def boot(self):
        k, m = self.mach, self.m
        self.server = k.task_create(name="linux_server", category="server",
                                    kernel_task=self.in_kernel)
        self.main = self.server.thread
        base = self.kprof["server_text_va_in_kernel" if self.in_kernel else "server_text_va_user"]
        glob = self.in_kernel and k.global_pages
        self.image = KernelImage(m, self.linux.image_profile, base, base + LINUX_DATA_GAP,
                                 global_=glob)
        self.glue = KernelImage(m, self.kprof, base + GLUE_GAP, base + GLUE_GAP + LINUX_DATA_GAP,
                                global_=glob)
        if self.in_kernel:            # in Mach's kernel space: in every task
            self._spaces = [k.kernel_space] + [t.space for t in k.tasks.values()
                                               if not t.kernel_task and t.alive]
        else:
            self._spaces = [self.server.space]
            # the image is the server task's memory: wired (its text and data)
        for sid in self._spaces:
            self.image.map_into(sid)
            self.glue.map_into(sid)
        self.buf = k._msg_buf(self.main)        # the server's copy buffer
        m.events.log("mklinux", "boot", variant=self.name)

    def _sthread(self):
        """The server thread executing now (Linux code runs in one of them)."""
        r = self.mach.running
        if r is not None and r.task is self.server:
            return r
        return self.main

    def _in_server(self):
        """Make sure Linux's code runs where the server lives: the server's task, or (co-
        located) any space, which then must hold the kernel's part where the server is --
        mapped lazily into spaces made after boot, as Mach shares its kernel page tables."""
        m = self.m
        if not self.in_kernel:
            if m.current_space != self.server.space:
                self.mach._enter(self._sthread())
            return
        sid = m.current_space
        if sid >= 0 and m.translate(sid, self.image.text_va) is None:
            self.image.map_into(sid)
            self.glue.map_into(sid)

    def run_path(self, path):
        self._in_server()
        return self.image.run(path, "server")

    def _glue(self, path):
        self._in_server()
        return self.glue.run(path, "server")

    # -- processes -------------------------------------------------------------------------
    def create_process(self, pid, parent=None):
        k = self.mach
        st = self._sthread()
        self._glue("server_process_glue")
        task = k.task_create(name=f"linux{pid}", caller=st)
        if self.in_kernel:
            self.image.map_into(task.space)
            self.glue.map_into(task.space)
            k.pmaps.tables.adopt(task.space)    # the co-located server's tables: the kernel's
        task.map.low = k.page
        ctx = MkLinuxContext(pid, task)
        srv = self.server
        ctx.mo = k.port_allocate(srv, f"linux{pid}.memory", caller=st)
        ctx.sys = k.port_allocate(srv, f"linux{pid}.syscalls", caller=st)
        ctx.server_thread = k.thread_create(srv, handler=self._serve, ports=[ctx.mo, ctx.sys],
                                            name=f"linux_server.{pid}", caller=st)
        ctx.reply_port = k._new_port(f"linux{pid}.reply")
        ctx.reply_port.receiver = task
        mo_in_task = k.port_insert_send(srv, ctx.mo, task, caller=st)
        k.vm_allocate_with_pager(task, k.page, VM_MAX_ADDRESS - k.page, False, mo_in_task,
                                 k.page, caller=st, protection=VMProt.ALL)
        self.contexts[pid] = ctx
        # the new server thread takes pager_init at once (it learns its pager_request port)
        mo_port = srv.ipc.entries[ctx.mo].port
        if mo_port.queue:
            k._dispatch(ctx.server_thread, mo_port)
            k._enter(st)
        self.m.events.log("mklinux", "create_process", pid=pid, task=task.name)
        return ctx

    def destroy_process(self, ctx):
        k = self.mach
        if not ctx.task.alive:
            return
        st = self._sthread()
        self._glue("server_process_glue")
        k.task_terminate(ctx.task, caller=st)
        for name in (ctx.mo, ctx.sys):
            if name in self.server.ipc.entries:
                k.port_deallocate(self.server, name, caller=st)
        k._port_destroy(ctx.reply_port)
        k.thread_terminate(ctx.server_thread)      # last: it may be the one running this
        self.contexts.pop(ctx.pid, None)
        self.m.events.log("mklinux", "destroy_process", pid=ctx.pid)

    def switch_process(self, prev, nxt):
        """Linux's schedule() in the server: the server thread of `prev` releases the single
        lock and blocks on its condition; the server thread of `nxt` is handed the CPU and
        takes the lock (cthreads on Mach: a trap each for the user server)."""
        k = self.mach
        self._glue("server_thread_switch")
        st = self._sthread()
        if not self.in_kernel:
            self.m.charge("entry_exit", k.entry_exit)     # condition signal/wait trap
        k.image.run("thread_switch", "kernel")
        target = nxt.server_thread if nxt is not None and nxt.server_thread.task.alive else st
        k._enter(target, None)
        self._glue("server_lock")
        self.m.events.log("mklinux", "switch_process", prev=prev.pid if prev else None,
                          next=nxt.pid if nxt else None)

    # -- system calls ----------------------------------------------------------------------
    def syscall(self, ctx, name, body):
        k, m = self.mach, self.m
        th = ctx.thread
        k._enter(th)
        m.charge("entry_exit", k.entry_exit)              # int 0x80 ... iret
        k.image.run("exception_raise", "kernel")          # Mach redirects it to the server
        if self.in_kernel:
            return self._short_circuit(ctx, name, body)
        self._seq += 1
        key = self._seq
        self._calls[key] = (ctx, name, body)
        frame = P.pack(key).ljust(self.kprof["syscall_frame_bytes"], b"\0")
        sys_port = self.server.ipc.entries[ctx.sys].port
        k._kernel_send(sys_port, SYSCALL_MSG, frame, reply=(ctx.reply_port, Right.SEND_ONCE))
        try:
            k._wait(th, lambda: bool(ctx.reply_port.queue), via=sys_port, what=f"linux {name}")
        finally:
            self._calls.pop(key, None)
        # the reply resumes the thread with its new registers (kernel buffer -> thread state)
        k.image.run("msg_receive", "ipc")
        km = ctx.reply_port.queue.popleft()
        rkey = (km.slot, len(frame))
        b = self._reply_reads.get(rkey)
        if b is None:       # the same lines of the same slot each time: build once, keep
            b = self._reply_reads[rkey] = m.batch(
                O.access("r", O.lines(k._slot_va(km.slot), len(frame), k.image.line)))
        if not m.try_defer(b, "ipc"):       # held back with the kernel's paths when it can
            with m.mode("ipc"):
                m.run(b.ops)
        m.charge("copy", math.ceil(len(frame) / m.profile["copy_bytes_per_cycle"]))
        ok, value = self._results.pop(key)
        m.events.log("mklinux", "syscall_return", pid=ctx.pid, name=name, ok=ok)
        if not ok:
            raise value
        return value

    def _short_circuit(self, ctx, name, body):
        """The co-located server's RPC as procedure calls on the process's thread: the MIG
        stubs and collocation check (rpc_short_circuit), then the server's own dispatch, lock,
        Linux's work and reply glue.  If Linux blocks inside, the process's thread is entered
        again afterwards (its server-thread hand-offs ran meanwhile)."""
        k, m, th = self.mach, self.m, ctx.thread
        k.image.run("rpc_short_circuit", "ipc")
        m.events.log("mach", "rpc_short_circuit", thread=th.name, port=f"linux{ctx.pid}.syscalls")
        self._glue("server_syscall_dispatch")
        self._glue("server_lock")
        try:
            value, error = body(), None
        except KernelError as e:
            value, error = None, e
        if k.running is not th:
            k._enter(th)
        self._glue("server_syscall_reply")
        m.events.log("mklinux", "syscall_return", pid=ctx.pid, name=name, ok=error is None)
        if error is not None:
            raise error
        return value

    def _serve(self, msg):
        """A server thread's handler: a system call, or the kernel's pager calls for the
        process's memory (the server is its pager)."""
        if msg.id == SYSCALL_MSG:
            (key,) = P.unpack(msg.data[:8])
            ctx, name, body = self._calls[key]
            k, st = self.mach, self._sthread()
            self._glue("server_syscall_dispatch")
            if not self.in_kernel:
                # Mach 3.0's exception message carries no registers: a user-level handler
                # asks the kernel for them (the co-located server reads the saved state)
                with k._kcall(st, "thread_get_state"):
                    pass
            self._glue("server_lock")
            try:
                self._results[key] = (True, body())
            except KernelError as e:
                self._results[key] = (False, e)
            self._glue("server_syscall_reply")
            if not self.in_kernel:
                with k._kcall(self._sthread(), "thread_set_state"):
                    pass
            return _reply(msg)
        ctx = self._ctx_of(msg.local_port)
        if msg.id == P.PAGER_INIT:
            ctx.request = msg.ports[0].name
            return None
        if msg.id in (P.PAGER_DATA_REQUEST, P.PAGER_DATA_UNLOCK):
            off, length, access = P.unpack(msg.data)
            kind = "w" if access & VMProt.WRITE else ("x" if access & VMProt.EXECUTE else "r")
            self._glue("server_fault_glue")
            self._glue("server_lock")
            try:
                if ctx.fault_error is not None:     # refused already (an unlock, below)
                    raise ctx.fault_error
                self.linux.page_fault(ctx, off, kind)
                if msg.id == P.PAGER_DATA_REQUEST and self._object_page(ctx, off) is None:
                    # do_wp_page reused the page (protect_user: a lock change) but Mach's
                    # object never had it (a fork child's): supply it from Linux's table,
                    # or the request waits until the pager timeout
                    got = self.linux.mm.user_page(self.linux.procs.get(ctx.pid), off)
                    if got is not None:
                        self.map_user(ctx, off, *got)
            except KernelError as e:
                ctx.fault_error = e
                if msg.id == P.PAGER_DATA_UNLOCK:
                    # pager_data_error answers only data requests: an unlock Linux refuses
                    # (a write to a read-only page) would leave the thread waiting until
                    # the pager timeout.  Flush the page: the fault retries as a request,
                    # which is refused with the error kept above.
                    self.mach.pager_flush_request(self._sthread(), ctx.request, off, length)
                else:
                    self.mach.pager_data_error(self._sthread(), ctx.request, off, length)
            return None
        return None

    def _ctx_of(self, mo_name):
        for ctx in self.contexts.values():
            if ctx.mo == mo_name:
                return ctx
        raise KeyError(f"no process for memory object 0x{mo_name:x}")

    # -- memory ----------------------------------------------------------------------------
    @staticmethod
    def _lock(perms):
        return VMProt.NONE if "w" in perms else VMProt.WRITE

    def map_user(self, ctx, va, pa, perms):
        """Linux makes frame `pa` visible at `va`: the server supplies the page of the
        process's memory object (a message to Mach)."""
        self.mach.pager_data_provided_physical(self._sthread(), ctx.request, va - va % self.mach.page,
                                               pa, self._lock(perms))

    def unmap_user(self, ctx, va):
        self.mach.pager_flush_request(self._sthread(), ctx.request, va - va % self.mach.page,
                                      self.mach.page)

    def protect_user(self, ctx, va, perms):
        self.mach.pager_data_lock(self._sthread(), ctx.request, va - va % self.mach.page,
                                  self.mach.page, self._lock(perms))

    def _deallocate_covered(self, ctx, start, length, st):
        k = self.mach
        for e in list(ctx.task.map.overlapping(start, start + length)):
            lo, hi = max(e.start, start), min(e.end, start + length)
            k.vm_deallocate(ctx.task, lo, hi - lo, caller=st)

    def map_region(self, ctx, start, length):
        """mmap's Mach side (LinuxKernel's optional hook): the range becomes a vm_map of the
        process's memory object (what was there is vm_deallocate'd first)."""
        k, st = self.mach, self._sthread()
        self._glue("server_vm_glue")
        self._deallocate_covered(ctx, start, length, st)
        mo_in_task = ctx.task.ipc.name_of(self.server.ipc.entries[ctx.mo].port)
        # VM_PROT_ALL: the server is the pager and enforces Linux's own protections through
        # the page locks it gives with each page (MkLinux maps process memory this way)
        k.vm_allocate_with_pager(ctx.task, start, length, False, mo_in_task, start, caller=st,
                                 protection=VMProt.ALL)

    def unmap_region(self, ctx, start, length):
        """munmap's Mach side (optional hook): vm_deallocate of the range."""
        self._glue("server_vm_glue")
        self._deallocate_covered(ctx, start, length, self._sthread())

    def copy_user(self, ctx, va, nbytes, to_user):
        k, m = self.mach, self.m
        if nbytes <= 0:
            return
        self._glue("server_copy_glue")
        line = k.image.line
        n = min(nbytes, 8192)
        kpa = getattr(self.linux, "copy_kernel_pa", None)
        self._presupply(ctx, va, nbytes, to_user)
        if self.in_kernel:
            # the co-located server touches the process's memory in its space
            if m.current_space != ctx.space:
                m.switch(ctx.space)
            user = O.access("w" if to_user else "r", O.lines(va, nbytes, line))
            kern = self._kernel_side(kpa, n, to_user, line)
            m.charge("copy", math.ceil(nbytes / m.profile["copy_bytes_per_cycle"]))
            with m.mode("copy"):
                m.run(O.concat(kern, user), on_fault=k._on_fault)
            return
        # the user-task server asks Mach: vm_write / vm_read on the process's task
        with k._kcall(self._sthread(), "vm_write" if to_user else "vm_read"):
            p = k.page
            frames = []
            for a in range(va - va % p, va + nbytes, p):
                frames.append(k._fault_in(self._sthread(), ctx.task, a, "w" if to_user else "r"))
            refs = [O.physical("w" if to_user else "r",
                               O.lines(f + (max(va, a) - a), min(va + nbytes, a + p) - max(va, a), line))
                    for f, a in zip(frames, range(va - va % p, va + nbytes, p))]
            kern = self._kernel_side(kpa, n, to_user, line)
            m.charge("copy", math.ceil(nbytes / m.profile["copy_bytes_per_cycle"]))
            with m.mode("copy"):
                m.run(O.concat(kern, *refs), check=False)

    @staticmethod
    def _object_page(ctx, va):
        """The page of the process's memory object at page `va` (None: Mach lacks it)."""
        e = ctx.task.map.lookup(va)
        if e is None or e.object is None:
            return None
        return e.object.pages.get(e.offset + (va - e.start))

    def _presupply(self, ctx, va, nbytes, to_user):
        """Before the server touches a process's pages, Mach's cache must hold them: a page
        Linux has (after fork Linux's table is copied, Mach's is not) but Mach lacks would
        fault into the server itself -- the data manager deadlocking on itself.  So the
        server supplies such pages first, by running its own fault handling."""
        k = self.mach
        e = ctx.task.map.lookup(va)
        obj = e.object if e is not None else None
        p = k.page
        for a in range(va - va % p, va + nbytes, p):
            if obj is None or e.end <= a:
                e = ctx.task.map.lookup(a)
                obj = e.object if e is not None else None
            if obj is None:
                continue
            page = obj.pages.get(e.offset + (a - e.start))
            if page is None or (to_user and page.lock & VMProt.WRITE):
                self._glue("server_fault_glue")
                self.linux.page_fault(ctx, a, "w" if to_user else "r")

    def _kernel_side(self, kpa, n, to_user, line):
        """Linux's side of a copy: its buffer's frame when Linux says which, else the
        server's copy buffer."""
        kind = "r" if to_user else "w"
        if kpa is not None:
            return O.physical(kind, O.lines(kpa, n, line))
        return O.access(kind, O.lines(self.buf, n, line))

    def touch_kernel_data(self, pa, nbytes, kind="r"):
        """Linux's data in the server (its frames, as for Linux's side of a copy)."""
        self._in_server()
        with self.m.mode("server"):
            self.m.run(O.physical(kind, O.lines(pa, nbytes, self.mach.image.line)), check=False)

    def run_user(self, ctx, ops):
        """User work in the process's task; its faults go through Mach (and, for the process's
        memory, to the server as its pager).  A fault Mach cannot resolve (an address it has
        no entry for, after munmap) is an exception the server turns into Linux's fault
        handling -- which then delivers SIGSEGV."""
        while True:
            try:
                return self.mach.user_run(ctx.thread, ops)
            except (KernMemoryError, KernInvalidAddress) as e:
                err, ctx.fault_error = ctx.fault_error, None
                if err is not None:
                    raise err from None
                va, kind = getattr(e, "va", None), getattr(e, "kind", None)
                if va is None or not isinstance(e, KernInvalidAddress):
                    raise
                self._in_server()
                self._glue("server_fault_glue")
                self.linux.page_fault(ctx, va, kind)     # raises SegmentationFault
                raise


def _reply(msg):
    from lab.mach import Message
    return Message(remote_port=msg.remote_port, id=SYSCALL_MSG + 100, data=msg.data)
