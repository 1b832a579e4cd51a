"""MachKernel: the Mach 3.0 kernel on the engine.

    from engine import Machine
    from lab.mach import MachKernel
    k = MachKernel(Machine("pentium-133"))
    a = k.task_create(name="client"); s = k.task_create(name="server")
    port = k.port_allocate(s); k.port_enable(s, port)
    k.thread_create(s, handler=lambda msg: Message(remote_port=msg.remote_port))
    send = k.port_insert_send(s, port, a)
    reply = k.rpc(a, send)                 # msg_rpc to the server task and back

Every operation runs on the engine: a trap charges the profile's kernel_entry_exit_cycles
and executes its kernel path (a path of lab/profiles/mach.json: instructions, code and data
lines) through TLBs and caches in the current address space; the kernel -- its text, data
and message zone -- is mapped at >= 0xC0000000 in every task (global pages, by the project's
layout convention).  A message to another task switches address space, inline data is
copied twice (in and out of a kernel buffer), out-of-line memory is mapped copy-on-write,
page faults come from the engine's on_fault.
"""
from collections import OrderedDict
from numbers import Integral

import numpy as np

from engine import ops as O
from lab.image import KernelImage
from lab.kprofile import load_kernel_profile

from .errors import KernInvalidArgument, KernInvalidTask, KernInvalidAddress
from .fault import Faults
from .ipc import IPC, MSG_SIZE_MAX
from .memory_object import MemoryObjects
from .port_calls import PortCalls
from .sched import Scheduler
from .task import Task, Thread, ThreadState, TaskState
from .vm import VMCalls
from .vm_map import VMMap, VMMapEntry, VMInherit, VM_MAX_ADDRESS

KERNEL_TEXT_VA = 0xC0000000
KERNEL_DATA_VA = 0xC0400000
ZONE_VA = 0xC0800000          # kernel message buffers, then kernel threads' message buffers
KMSG_SLOTS = 16
KTHREAD_BUFS = 16


class MachKernel(Scheduler, PortCalls, IPC, VMCalls, Faults, MemoryObjects):
    """The Mach kernel.  `max_resident_pages`: how many frames it may use as the cache of
    memory objects (page replacement beyond); `pager_timeout_ms`: how long a faulting thread
    waits for a data manager; `default_pager`: start the default pager task at boot."""

    name = "mach"

    def __init__(self, machine, profile="mach", *, max_resident_pages=None,
                 pager_timeout_ms=None, default_pager=True, global_pages=True, disk=None):
        self.m = machine
        self.profile = load_kernel_profile(profile)
        self.page = machine.fmt.page_size
        self.entry_exit = machine.profile["kernel_entry_exit_cycles"]
        self.image = KernelImage(machine, self.profile, KERNEL_TEXT_VA, KERNEL_DATA_VA,
                                 global_=global_pages)
        self.global_pages = global_pages
        self.image.place()
        nzone = (KMSG_SLOTS + KTHREAD_BUFS) * MSG_SIZE_MAX // self.page
        self._zone = [(ZONE_VA + i * self.page, machine.alloc_page()) for i in range(nzone)]
        self.wired_frames = len(self.image.place()) + nzone
        from .pmap import Pmaps
        self.pmaps = Pmaps(machine, zero_page=self._zero_table)
        self.tasks, self.task_by_space, self.ports = {}, {}, {}
        self.objects, self.objects_by_pager = {}, {}
        self.resident = OrderedDict()      # frame -> (object, offset): the replacement queue
        self._busy = set()
        self.running, self.crashes = None, []
        self._port_seq = self._obj_seq = self._seq = self._task_seq = self._thread_seq = 0
        self._slot = self._kbuf = 0
        self.stats = {k: 0 for k in ("faults", "cow_faults", "zero_fill", "pageins",
                                     "pageouts", "lookups", "hits")}
        reserve = self.profile["page_table_reserve_frames"]
        self.max_resident_pages = max_resident_pages or max(16, machine.memory.free_frames - reserve)
        self.pager_timeout_ms = (self.profile["pager_timeout_ms"] if pager_timeout_ms is None
                                 else pager_timeout_ms)
        # the kernel's own space: what runs when no task is loaded
        self.kernel_space = machine.new_space()
        self._map_kernel(self.kernel_space)
        machine.switch(self.kernel_space)
        self.kernel_task = Task(self, 0, "kernel", self.kernel_space,
                                VMMap(self.page, VM_MAX_ADDRESS, VM_MAX_ADDRESS), kernel_task=True)
        self.kernel_task.category = "kernel"
        self.tasks[0] = self.kernel_task
        self.default_pager = None
        if default_pager:
            from .default_pager import DefaultPager
            self.default_pager = DefaultPager(self, disk=disk)
        machine.events.log("mach", "boot", resident_limit=self.max_resident_pages,
                           pager_timeout_ms=self.pager_timeout_ms)

    # -- layout ----------------------------------------------------------------------------
    def _map_kernel(self, sid):
        self.image.map_into(sid)
        for va, pa in self._zone:
            self.m.map(sid, va, pa, "rw", global_=self.global_pages)

    def _kmsg_slot(self):
        self._slot = (self._slot + 1) % KMSG_SLOTS
        return self._slot

    def _slot_va(self, slot):
        return ZONE_VA + slot * MSG_SIZE_MAX

    def _kbuf_alloc(self):
        """A message buffer for a kernel thread; beyond KTHREAD_BUFS threads share them
        (a buffer only holds a message during one copy)."""
        i = self._kbuf % KTHREAD_BUFS
        self._kbuf += 1
        return ZONE_VA + (KMSG_SLOTS + i) * MSG_SIZE_MAX

    # -- callers and traps -----------------------------------------------------------------
    def _caller(self, x):
        if isinstance(x, Thread):
            if x.state is ThreadState.HALTED or not x.task.alive:
                raise KernInvalidTask(f"thread {x.name} is halted or its task terminated")
            return x
        if isinstance(x, Task):
            self._check_task(x, "call")
            t = x.thread
            if t is None:
                raise KernInvalidTask(f"task {x.name} has no thread to make the call")
            return t
        raise KernInvalidTask(f"caller {x!r} is neither a Task nor a Thread")

    def _check_task(self, task, what, alive=True):
        """`task` must be a Task (and, with `alive`, not terminated): KERN_INVALID_TASK naming
        the value, before anything of it is touched (not an AttributeError later)."""
        if not isinstance(task, Task):
            raise KernInvalidTask(f"{what}: {task!r} is not a task (a Task from task_create)")
        if alive and not task.alive:
            raise KernInvalidTask(f"{what}: task {task.name} has terminated")

    def _trap(self, caller, path=None, category="kernel"):
        """A system call by `caller`: kernel entry and exit (not for a co-located task, which
        calls the kernel directly) and the call's path, in the caller's address space.
        `with self._trap(caller, path) as thread: ...`"""
        return _Trap(self, caller, path, category)

    def _kcall(self, caller, path):
        """A kernel call of Mach 3.0: an RPC on the task's kernel port (MIG) -- the message
        paths, the kernel-object dispatch, then the operation's own path; msg_receive when
        the block is left, however it is left.  `with self._kcall(caller, path) as thread:`"""
        return _KCall(self, caller, path)

    def _trap_enter(self, caller, path, category):
        thread = self._caller(caller)
        self._enter(thread)
        if not thread.task.kernel_task:
            self.m.charge("entry_exit", self.entry_exit)
        if path:
            self.image.run(path, category)
        return thread

    # -- tasks and threads -----------------------------------------------------------------
    def task_create(self, parent=None, inherit_memory=False, name="", category="user",
                    kernel_task=False, caller=None):
        """A new task (with one thread, as task_create + thread_create).  With
        `inherit_memory`, its map is built from the parent's by each entry's inheritance:
        SHARE shares, COPY copies copy-on-write, NONE leaves a hole."""
        if parent is not None:
            self._check_task(parent, "task_create: parent")
        elif inherit_memory:
            raise KernInvalidArgument("task_create: inherit_memory=True needs a parent task "
                                      "to inherit from (parent=None)")
        if caller is not None:
            with self._kcall(caller, "task_create"):
                return self._task_create(parent, inherit_memory, name, category, kernel_task)
        self.image.run("task_create", "kernel")
        return self._task_create(parent, inherit_memory, name, category, kernel_task)

    def _task_create(self, parent, inherit_memory, name, category, kernel_task):
        self._task_seq += 1
        tid = self._task_seq
        name = name or f"task{tid}"
        if kernel_task:
            task = Task(self, tid, name, None, VMMap(self.page, VM_MAX_ADDRESS, VM_MAX_ADDRESS),
                        kernel_task=True)
        else:
            sid = self.m.new_space()
            self._map_kernel(sid)
            self.pmaps.create(sid)
            task = Task(self, tid, name, sid, VMMap(self.page))
            self.task_by_space[sid] = task
        task.category = category
        self.tasks[tid] = task
        self._thread_create(task)
        if parent is not None and inherit_memory:
            self._map_fork(parent, task)
        self.m.events.log("mach", "task_create", task=name, parent=parent.name if parent else None,
                          space=task.space)
        return task

    def _map_fork(self, parent, child):
        for e in list(parent.map.entries):
            if e.inheritance is VMInherit.NONE:
                continue
            self.image.run("vm_map_fork_entry", "kernel")
            if e.inheritance is VMInherit.SHARE:
                if e.needs_copy:
                    self._entry_shadow(e)
                self._object_ref(e.object)
                obj, off, nc = e.object, e.offset, False
            else:
                obj, off, nc = self._cow_source(parent, e)
            child.map.insert(VMMapEntry(e.start, e.end, obj, off, e.protection,
                                        e.max_protection, e.inheritance, nc))

    def task_terminate(self, task, caller=None):
        self._check_task(task, "task_terminate", alive=False)    # a second terminate: no-op
        if caller is not None:
            with self._kcall(caller, "task_terminate"):
                self._task_terminate(task)
        else:
            self._task_terminate(task)

    def _task_terminate(self, task):
        """Destroy the task: its rights (ports it received on die), its memory, its space."""
        if not task.alive:
            return
        self.image.run("task_terminate", "kernel")
        task.state = TaskState.TERMINATED
        for t in task.threads:
            t.state = ThreadState.HALTED
        for name in task.ipc.names():
            e = task.ipc.entries.get(name)
            if e is not None:
                self._entry_destroy(task, e)
        task.enabled = []
        if not task.kernel_task:
            for e in list(task.map.entries):
                self._map_delete(task, e.start, e.end)
            if self.m.current_space == task.space:
                self.m.switch(self.kernel_space)
            self.pmaps.destroy(task.space)
            self.m.destroy_space(task.space)
            self.task_by_space.pop(task.space, None)
        if self.running is not None and self.running.task is task:
            self.running = None
        self.m.events.log("mach", "task_terminate", task=task.name)

    def thread_create(self, task, handler=None, ports=None, name="", caller=None):
        """A thread in `task`.  With a `handler(msg) -> reply or None` it is a server thread:
        it receives on `ports` (names) or on the task's default group (None)."""
        self._check_task(task, "thread_create")
        if caller is not None:
            with self._kcall(caller, "thread_create"):
                return self._thread_create(task, handler, ports, name)
        return self._thread_create(task, handler, ports, name)

    def _thread_create(self, task, handler=None, ports=None, name=""):
        self._check_task(task, "thread_create")
        self._thread_seq += 1
        t = Thread(task, self._thread_seq, handler, ports, name)
        task.threads.append(t)
        self.m.events.log("mach", "thread_create", task=task.name, thread=t.name,
                          server=handler is not None)
        return t

    def thread_terminate(self, thread):
        """Halt the thread and free its message buffer (its stack, in Mach)."""
        if not isinstance(thread, Thread):
            raise KernInvalidArgument(f"thread_terminate: {thread!r} is not a thread (a Thread "
                                      "from thread_create, or a task's .thread)")
        thread.state = ThreadState.HALTED
        task = thread.task
        if thread.msg_buf is not None and task.alive and not task.kernel_task:
            self._map_delete(task, thread.msg_buf, thread.msg_buf + MSG_SIZE_MAX)
        thread.msg_buf = None
        if self.running is thread:
            self.running = None

    # -- user work -------------------------------------------------------------------------
    def _check_user(self, vaddrs):
        va = np.asarray(vaddrs, np.int64).ravel()
        if va.size and (va.min() < 0 or va.max() >= VM_MAX_ADDRESS):
            bad = int(va[(va < 0) | (va >= VM_MAX_ADDRESS)][0])
            raise KernInvalidAddress(f"user access to 0x{bad:x}: outside the task's space "
                                     f"(0..0x{VM_MAX_ADDRESS:x})")
        return va

    def user_run(self, caller, ops):
        """Run user-level work (an engine op batch) in the thread's task; its page faults go
        to the kernel (vm_fault) and the accesses retry."""
        thread = self._caller(caller)
        self._enter(thread)
        with self.m.mode(getattr(thread.task, "category", "user")):
            return self.m.run(ops, on_fault=self._on_fault)

    def user_access(self, caller, kind, vaddrs):
        return self.user_run(caller, O.access(kind, self._check_user(vaddrs)))

    def user_write(self, caller, va, data):
        """The thread stores `data` at `va` (its accesses through the engine, then the bytes)."""
        thread = self._caller(caller)
        data = bytes(data)
        m = self.m
        i = 0
        while i < len(data):
            n = min(len(data) - i, self.page - (va + i) % self.page)
            line = self.image.line
            end = va + i + n - 1
            if (va + i) - (va + i) % line < 0 or end - end % line >= VM_MAX_ADDRESS:
                self._check_user(O.lines(va + i, n, line))      # raises, naming the address
            b = self._lines_batch("w", va + i, n)
            th = self._caller(thread)                           # user_run, held back when
            self._enter(th)                                     # no fault can come
            cat = getattr(th.task, "category", "user")
            if not m.try_defer(b, cat):
                with m.mode(cat):
                    m.run(b.ops, on_fault=self._on_fault)
            self._write_virtual(m.current_space, va + i, data[i:i + n])
            i += n

    def user_read(self, caller, va, n):
        thread = self._caller(caller)
        out = bytearray()
        i = 0
        while i < n:
            k = min(n - i, self.page - (va + i) % self.page)
            self.user_access(thread, "r", O.lines(va + i, k, self.image.line))
            out += self._read_virtual(self.m.current_space, va + i, k)
            i += k
        return bytes(out)

    def _kernel_copy(self, thread, src_task, src, dst_task, dst, n):
        """The kernel copies between two tasks' memory through physical addresses (vm_write).
        The source is taken whole before the destination is written (vm_write's data travels
        as out-of-line memory): a destination that overlaps it, or is the same memory under
        another address, gets the source as it was."""
        self._copy_put(thread, dst_task, dst, self._copy_take(thread, src_task, src, dst, n))

    def _copy_take(self, thread, src_task, src, dst, n):
        """The source half of `_kernel_copy`: [(offset, length, frame address, bytes)], in
        pieces that stay within a page at both ends."""
        chunks, i = [], 0
        while i < n:
            k = min(n - i, self.page - (src + i) % self.page, self.page - (dst + i) % self.page)
            spa = self._fault_in(thread, src_task, src + i, "r") + (src + i) % self.page
            chunks.append((i, k, spa, self.m.memory.read(spa, k)))
            i += k
        return chunks

    def _copy_put(self, thread, dst_task, dst, chunks):
        line = self.image.line
        for i, k, spa, data in chunks:
            dpa = self._fault_in(thread, dst_task, dst + i, "w") + (dst + i) % self.page
            self.m.memory.write(dpa, data)
            self.m.charge("copy", -(-k // self.m.profile["copy_bytes_per_cycle"]))
            with self.m.mode("copy"):
                self.m.run(O.concat(O.physical("r", O.lines(spa, k, line)),
                                    O.physical("w", O.lines(dpa, k, line))), check=False)

    # -- inspection (the simulator's, not Mach calls: charge nothing) ----------------------
    def peek(self, task, va, n):
        """Bytes `task` would read at `va`, or None where a page is not mapped (an inspection
        for tests and notebooks: no cycles, no faults)."""
        self._check_task(task, "peek")
        if not all(isinstance(x, Integral) and not isinstance(x, bool) for x in (va, n)) \
                or va < 0 or n < 0:
            raise KernInvalidArgument(f"peek: va {va!r} and n {n!r} must be ints >= 0")
        out = bytearray()
        for i in range(n):
            tr = self.m.translate(task.space, va + i)
            if tr is None:
                return None
            out += self.m.memory.read(tr[0], 1)
        return bytes(out)

    def object_of(self, task, va):
        """The memory object behind `va` in `task`'s address map, or None."""
        self._check_task(task, "object_of")
        e = task.map.lookup(va)
        return None if e is None else e.object

    def object_frames(self):
        """Frames held by memory objects (the kernel's cache), all objects."""
        return sum(1 for o in self.objects.values() for p in o.pages.values() if p.owned)


class _Trap:
    """The context manager of `MachKernel._trap` (a class: cheaper than a generator-based
    one, and a Mach system call makes several)."""
    __slots__ = ("k", "args")

    def __init__(self, k, caller, path, category):
        self.k, self.args = k, (caller, path, category)

    def __enter__(self):
        return self.k._trap_enter(*self.args)

    def __exit__(self, *exc):
        return False


_KCALL_STEPS = {}


class _KCall:
    """The context manager of `MachKernel._kcall`."""
    __slots__ = ("k", "caller", "path")

    def __init__(self, k, caller, path):
        self.k, self.caller, self.path = k, caller, path

    def __enter__(self):
        k = self.k
        th = k._trap_enter(self.caller, None, "kernel")
        # msg_send, ipc_port_lookup, kobject_server and the call's path: one batch
        steps = _KCALL_STEPS.get(self.path)
        if steps is None:
            steps = _KCALL_STEPS[self.path] = (("msg_send", "ipc"), ("ipc_port_lookup", "ipc"),
                                               ("kobject_server", "ipc"), (self.path, "kernel"))
        k.image.run_many(steps)
        return th

    def __exit__(self, *exc):
        self.k.image.run("msg_receive", "ipc")
        return False

