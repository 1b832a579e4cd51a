"""The L4 microkernel (1997, x86): address spaces, threads, IPC, mapping, in one kernel object.

    k = L4Kernel(Machine("pentium-133"))
    pager = MyPager(k, "pager")                          # a user-level pager (lab.l4.pager)
    task = k.task_new("client", pager=pager)             # a task and its first thread
    k.execute(task.thread, ops.access("w", [0x1000]))   # faults -> IPC to the pager -> map
    k.ipc(task.thread, ipc_call(server, Message(1)))     # a synchronous RPC

The kernel lives at 0xC0000000 in every large space, mapped with global 4 KB pages: text, the
static data of its paths, and the virtual array of thread control blocks (one per thread,
`tcb_bytes` each).  Every kernel operation executes one of its paths (lab/profiles/l4.json)
through the engine: the path's instructions at the CPU's CPI, its code and data lines (and the
TCB lines of the threads involved) through TLBs and caches, plus the trap's entry and exit
where the operation is a system call.  The IPC path is short -- a few cache lines (H97: 2.3 %
of the Pentium's L1).  Kernel code runs over the page tables of the last large space loaded:
entering the kernel from a small space reloads segments (S95 §4.1), not CR3.
"""
import heapq

import numpy as np

from engine import cycles as C, ops as O
from engine.core import S_MODE
from engine.machine import Machine, PageFault
from engine.errors import ConfigError
from engine.pte import PERM_W

from lab.errors import KernelError, Panic
from lab.image import KernelImage
from lab.kprofile import load_kernel_profile
from lab.ptclear import TableFrames

from .args import (VA_BITS, check_flag, check_int, check_name, check_number, check_program,
                   is_int)
from .errors import InvalidArgument, NotExistent, PageFaultUnresolved, ReceiveAborted
from .fpage import Fpage, PAGE_SHIFT, check_flush_rights
from .ipc import BLOCKED, NEVER, Ipc, Compute, IpcPath, check_timeout
from .mapping import MappingDatabase
from .message import Message
from .scheduler import Scheduler
from .space import Task, KERNEL_BASE
from .thread import Thread, ThreadState

DEAD = ThreadState.DEAD

KERNEL_TEXT = KERNEL_BASE               # the kernel's code
KERNEL_DATA = KERNEL_BASE + 0x00400000  # its data: path data, then the TCB array
PAGE = 1 << PAGE_SHIFT


# TCBs of a kernel not told otherwise (a real L4 has thousands of thread numbers; the
# simulated one allocates its TCB array up front)
DEFAULT_MAX_THREADS = 256

class L4Kernel:
    name = "l4"

    def __init__(self, machine, max_threads=DEFAULT_MAX_THREADS, profile="l4"):
        if not isinstance(machine, Machine):
            raise InvalidArgument(f"L4Kernel: {machine!r} is not a machine (an engine Machine)")
        if not is_int(max_threads) or max_threads < 2:
            raise InvalidArgument(f"L4Kernel: max_threads {max_threads!r} must be an integer >= 2")
        self.m = machine
        self.profile = load_kernel_profile(profile)
        p = self.profile
        self.tcb_bytes = int(p["tcb_bytes"])
        # the TCB array is virtual memory of the kernel, backed by frames: it must fit both
        tcb_pages = -(-(max_threads + 1) * self.tcb_bytes // machine.fmt.page_size)
        if KERNEL_DATA + (max_threads + 1) * self.tcb_bytes > 1 << VA_BITS \
                or tcb_pages > machine.memory.free_frames:
            raise InvalidArgument(
                f"L4Kernel: max_threads {max_threads!r}: its TCBs ({tcb_pages} pages) must fit "
                f"above {KERNEL_DATA:#x} and in the {machine.memory.free_frames} free frames")
        max_threads = int(max_threads)
        self.tcb_touched = int(p["tcb_touched_bytes"])
        self.register_words = int(p["register_words"])
        self.max_threads = max_threads
        tcb_area = max_threads * self.tcb_bytes
        self.image = KernelImage(machine, p, KERNEL_TEXT, KERNEL_DATA,
                                 extra_data=tcb_area + self.tcb_bytes, global_=True)
        static = self.image.data_bytes - tcb_area - self.tcb_bytes
        self.tcb_base = KERNEL_DATA + -(-static // self.tcb_bytes) * self.tcb_bytes
        ps = machine.fmt.page_size
        self.reserved_frames = {pa // ps for _va, pa, _p, _s in self.image.place()}
        self.entry_exit = machine.profile["kernel_entry_exit_cycles"]
        self.db = MappingDatabase(machine, on_root_released=self._root_released)
        self.tables = TableFrames(machine)     # which page-table frames L4 has cleared
        self.sched = Scheduler(self)
        self.ipc_path = IpcPath(self)
        self.tasks, self.threads = {}, {}
        self._next_task, self._next_tid = 0, 1
        self._slots = list(range(max_threads))
        self._tcb_ops = {}
        self._run_ops = {}               # run_kernel's batches
        self._user_batches = {}          # execute's: op bytes -> Batch (its proof kept)
        self.current = None
        self._cr3 = None                 # the large space whose tables are loaded
        from .sigma0 import Sigma0       # sigma0 is a pager, and pagers need a kernel
        self.sigma0 = Sigma0(self)
        self.db.sigma0 = self.sigma0.task

    # ------------------------------------------------------------------ costs
    def _tcb(self, t):
        return self._tcb_slot(t.slot)

    def _tcb_slot(self, slot):
        ops = self._tcb_ops.get(slot)
        if ops is None:
            va = self.tcb_base + slot * self.tcb_bytes
            # read-modify-write: the first reference reads (and allocates, even in a cache
            # that does not allocate on writes); the stores then hit
            ops = self._tcb_ops[slot] = O.access("r", O.lines(va, self.tcb_touched))
        return ops

    def enter_kernel(self):
        """Make a large space current for kernel code (from a small space: segment reload)."""
        cur = self.m.current_space
        if cur >= 0 and not self.m.is_small(cur):
            return
        sid = self._cr3 if self._cr3 is not None else self.sigma0.task.sid
        self._switch(sid)

    def run_kernel(self, path, category, threads=(), count=1, entry=False):
        """Execute kernel path `path` (`count` times) and touch the TCBs of `threads`;
        `entry`: the operation is a system call (trap entry and exit charged)."""
        self.enter_kernel()
        slots = tuple([t.slot for t in threads if t is not None])
        key = (path, category, count, entry, slots)
        ops = self._run_ops.get(key)
        if ops is None:          # the same batch every time for the same path and TCBs
            parts = [O.charge("entry_exit", self.entry_exit)] if entry else []
            parts.append(O.mode(category))
            if path is not None and count:
                parts += [self.image.path_ops(path, category)] * count
            parts += [self._tcb_slot(s) for s in slots]
            ops = self.m.batch(O.concat(*parts))
            if len(self._run_ops) > 4096:
                self._run_ops.clear()
            self._run_ops[key] = ops
        st = self.m._st
        old = st[S_MODE]
        try:
            self.m.defer(ops)           # held back and run with the next ones when it can
        except PageFault as e:               # the kernel is mapped in every large space
            raise Panic(f"L4 kernel path {path} faulted in space {self.m.current_space}: "
                        f"{e}") from None
        finally:
            st[S_MODE] = old

    def _switch(self, sid):
        m = self.m
        if m.current_space != sid:
            m.switch(sid)
        if not m.is_small(sid):
            self._cr3 = sid

    def dispatch(self, t):
        """Let `t` run: its address space becomes current (CR3 load or segment reload)."""
        if t.__class__ is not Thread or t.kernel is not self or t.state is DEAD:
            self.check_thread(t, "dispatch")
        self._switch(t.task.sid)
        self.current = t

    # ------------------------------------------------------------------ argument checks
    def check_thread(self, t, what, alive=True):
        """`t` must be a thread of this kernel (and, with `alive`, not dead): else
        L4_INVALID_ARGUMENT naming the value, or L4_IPC_ENOT_EXISTENT for a dead thread --
        before anything of it is touched (not an AttributeError later)."""
        if not isinstance(t, Thread):
            raise InvalidArgument(f"{what}: {t!r} is not a thread (a Thread from task_new or "
                                  "thread_new)")
        if t.kernel is not self:
            raise InvalidArgument(f"{what}: thread {t.name} belongs to another L4 kernel")
        if alive and not t.alive:
            raise NotExistent(f"{what}: thread {t.name} is dead", "send")
        return t

    def check_task(self, task, what, alive=True):
        """`task` must be a task of this kernel (and, with `alive`, not deleted)."""
        if not isinstance(task, Task):
            raise InvalidArgument(f"{what}: {task!r} is not a task (a Task from task_new)")
        if task.kernel is not self:
            raise InvalidArgument(f"{what}: task {task.name} belongs to another L4 kernel")
        if alive and not task.alive:
            raise NotExistent(f"{what}: task {task.name} was deleted", "send")
        return task

    def _check_user_va(self, va, n, what):
        """[va, va + n) in the user range 0..KERNEL_BASE (integers), else L4_INVALID_ARGUMENT."""
        if not (is_int(va) and is_int(n)) or va < 0 or n < 0 or va + n > KERNEL_BASE:
            raise InvalidArgument(f"{what}: va {va!r} and size {n!r} must be integers >= 0 "
                                  f"inside the user range 0..{KERNEL_BASE:#x}")
        return int(va), int(n)

    def _as_thread(self, x, what):
        """A pager argument: None, a thread, or a Pager (its thread); alive."""
        if x is None:
            return x
        t = x if isinstance(x, Thread) else getattr(x, "thread", None)
        if not isinstance(t, Thread):
            raise InvalidArgument(f"{what}: pager {x!r} is not a thread or pager")
        return self.check_thread(t, f"{what}: pager")

    def task_new(self, name, pager=None, program=None, small=False, small_size=None,
                 charge=True):
        """Create a task (address space) and its first thread; `pager` receives its page
        faults; `small` places it in a small space (if the region has room)."""
        check_name(name, "task_new: name")
        pager = self._as_thread(pager, "task_new")
        check_program(program, "task_new")
        check_flag(small, f"task_new {name}: small")
        if small and not self.m.small_spaces:
            raise InvalidArgument(f"task_new {name}: this machine has no small spaces")
        size = 4 << 20 if small_size is None else small_size
        region = self.m.profile["small_space_size"] if small else 1 << VA_BITS
        if not is_int(size) or size < (4 << 20) or size & (size - 1) or size > region:
            raise InvalidArgument(f"task_new {name}: small_size {size!r} must be a power of "
                                  f"two in 4 MB..{region >> 20} MB (S97 §3: 4 MB to 512 MB)")
        size = int(size)
        if small:
            try:
                sid = self.m.new_space(small=True, small_size=size)
            except ConfigError as e:         # the region is full: L4 falls back to large
                self.m.events.log("l4", "small_region_full", task=name, error=str(e))
                small, sid = False, self.m.new_space()
        else:
            sid = self.m.new_space()
        if not small:
            self.image.map_into(sid)         # (real L4 copies the kernel's directory entries)
        task = Task(self, self._next_task, name, sid, small, size if small else None)
        self.tables.adopt(sid)               # the kernel's tables: shared by every space
        self._next_task += 1
        self.tasks[task.number] = task
        if charge:
            self.run_kernel("task_new", "kernel", entry=True)
        if charge and not small:             # a small space lives in the large spaces' tables
            self._zero_table(task, self.m.root(sid))
        self.m.events.log("l4", "task_new", task=name, space=sid, small=small)
        self.thread_new(task, name=f"{name}", program=program, pager=pager, charge=False)
        return task

    def thread_new(self, task, name=None, program=None, pager=None, charge=True):
        self.check_task(task, "thread_new")
        if name is not None:
            check_name(name, "thread_new: name")
        check_program(program, "thread_new")
        pager = self._as_thread(pager, "thread_new")
        if not self._slots:
            raise InvalidArgument(f"thread_new: all {self.max_threads} TCBs are in use")
        slot = heapq.heappop(self._slots)
        name = name or f"{task.name}.{len(task.threads)}"
        t = Thread(self, self._next_tid, task, name, pager, program, slot)
        self._next_tid += 1
        task.threads.append(t)
        self.threads[t.tid] = t
        if charge:
            self.run_kernel("thread_new", "kernel", threads=(t,), entry=True)
        if t.has_program:
            self.sched.make_ready(t)
        return t

    def task_delete(self, task):
        """Delete a task: its threads die (their partners get L4_IPC_ENOT_EXISTENT), its
        mappings and everything derived from them are flushed, its tables freed."""
        self.check_task(task, "task_delete", alive=False)
        if task.is_sigma0:
            raise InvalidArgument("task_delete: sigma0 owns physical memory and cannot go")
        if not task.alive:
            raise NotExistent(f"task_delete: task {task.name} was already deleted", "send")
        self.run_kernel("task_delete", "kernel", entry=True)
        for t in list(task.threads):
            self.kill(t, "task deleted")
        task.alive = False                    # its own pages go with its tables
        removed = self.db.remove_task(task)
        if removed:
            self.run_kernel("flush_page", "kernel", count=len(removed))
        sid = task.sid
        if self._cr3 == sid:
            self._cr3 = None
        self.tables.forget(sid)
        self.m.destroy_space(sid)
        del self.tasks[task.number]
        self.m.events.log("l4", "task_delete", task=task.name, flushed=len(removed))

    def kill(self, t, reason):
        """Thread `t` ends: whoever waits for it gets L4_IPC_ENOT_EXISTENT."""
        self.check_thread(t, "kill", alive=False)
        if not t.alive:
            return
        if t.state is ThreadState.SENDING and t in t.partner.senders:
            t.partner.senders.remove(t)
        self.sched.forget(t)
        t.state, t.exit_reason = ThreadState.DEAD, reason
        t.partner = t.request = None
        if self.current is t:
            self.current = None
        while t.senders:
            s = t.senders.popleft()
            self.sched.wake(s, NotExistent(f"{s.name}: destination {t.name} died ({reason})",
                                           "send"))
        for x in sorted(self.threads.values(), key=lambda x: x.tid):
            if x.state is ThreadState.RECEIVING and x.partner is t:
                self.sched.wake(x, NotExistent(f"{x.name}: source {t.name} died ({reason})",
                                               "receive"))
        heapq.heappush(self._slots, t.slot)
        del self.threads[t.tid]
        self.m.events.log("l4", "thread_dead", thread=t.name, reason=str(reason))

    def promote(self, task):
        """A small space that outgrows its size becomes a large one (S95 §4.1)."""
        self.check_task(task, "promote")
        if not task.small:
            raise InvalidArgument(f"promote: task {task.name} is already in a large space")
        old = task.sid
        new = self.m.new_space()
        self.image.map_into(new)
        self.tables.adopt(new)
        for n in self.db.nodes_of(task):
            self.m.map(new, n.va, n.pa, n.rights)
        task.sid, task.small, task.small_size = new, False, None
        self.tables.forget(old)
        self.m.destroy_space(old)
        self.run_kernel("task_new", "kernel")
        self._zero_table(task, self.m.root(new))
        self._zero_new_tables(task)
        self.m.events.log("l4", "promote", task=task.name, space=new)

    # ------------------------------------------------------------------ running threads
    def step(self, t):
        """Resume program thread `t` with its pending result and perform what it yields."""
        if t.__class__ is not Thread or t.kernel is not self:
            self.check_thread(t, "step", alive=False)
        if not t.alive or t.blocked or t.sync:
            return
        self.dispatch(t)
        res, t.result = t.result, None
        try:
            if not t.started:
                t.started = True
                req = next(t.generator)
            elif isinstance(res, BaseException):
                req = t.generator.throw(res)
            else:
                req = t.generator.send(res)
        except StopIteration:
            self.kill(t, "program ended")
            return
        except KernelError as e:             # an unhandled error ends the thread, not L4
            self.m.events.log("l4", "thread_crash", thread=t.name, error=e.code)
            self.kill(t, e)
            return
        self._perform(t, req)

    def _perform(self, t, req):
        try:
            if isinstance(req, Ipc):
                r = self.ipc_path.syscall(t, req)
                if r is BLOCKED:
                    return
            elif isinstance(req, Compute):
                r = self.execute(t, req.ops, req.category)
            else:
                r = InvalidArgument(f"thread {t.name} yielded {req!r}; a program yields IPC "
                                    "requests (ipc_call, ipc_wait, ...) or compute(ops)")
        except KernelError as e:
            r = e
        if t.alive:
            t.result = r
            self.sched.make_ready(t, front=True)

    def run(self, until=None, max_steps=1_000_000):
        """Run program threads until none can run (RunStatus.IDLE), cycle `until`, or
        `max_steps`.  A wait-for cycle among blocked threads raises IpcDeadlock."""
        if until is not None:
            check_number(until, "run: until (a cycle)")
        check_int(max_steps, "run: max_steps", 0, 1 << 63)
        return self.sched.run(until, max_steps)

    def ipc(self, t, req):
        """Thread `t` (driven from Python, no program) makes IPC system call `req`; returns
        the received Message (None for a send) or raises the L4 IPC error."""
        self.check_thread(t, "ipc")
        if not isinstance(req, Ipc):
            raise InvalidArgument(f"ipc: {req!r} is not an IPC request (use ipc_call, ...)")
        if req.dest is t:
            raise InvalidArgument(f"{req.op}: thread {t.name} sends to itself")
        if t.has_program:
            raise InvalidArgument(f"ipc: thread {t.name} runs a program; it yields its IPCs")
        if t.blocked:
            raise InvalidArgument(f"ipc: thread {t.name} is already in an IPC ({t.state.value})")
        self.dispatch(t)
        t.sync += 1
        try:
            r = self.ipc_path.syscall(t, req)
            if r is BLOCKED:
                self.sched.run_until(lambda: not t.blocked, waiter=t)
                r, t.result = t.result, None
        finally:
            t.sync -= 1
        if not t.alive:
            raise ReceiveAborted(f"{req.op}: thread {t.name} was deleted during its IPC")
        self.dispatch(t)
        if isinstance(r, BaseException):
            raise r
        return r

    DEFER_OPS = 1024        # execute holds back batches up to this length (longer: run now)

    def execute(self, t, ops, category="user", fault_handler=None):
        """Run user-level work (an engine op batch) in t's space.  A page fault becomes an
        IPC to t's pager; once it has mapped the page the access is retried.
        `fault_handler(va, write)` replaces that IPC for a pager that drives its side of the
        protocol itself (the L4Linux server); it must make the page accessible or raise."""
        if t.__class__ is not Thread or t.kernel is not self or t.state is DEAD:
            self.check_thread(t, "execute")
        if category not in C.INDEX:
            raise InvalidArgument(f"execute: category {category!r}; allowed: "
                                  f"{', '.join(C.NAMES)}")
        if fault_handler is not None and not callable(fault_handler):
            raise InvalidArgument(f"execute: fault_handler {fault_handler!r} is not callable")
        plain = type(ops) is np.ndarray and ops.dtype == np.int64 and ops.ndim == 1
        if not plain:
            ops = self._op_batch(ops)
        self.dispatch(t)
        m = self.m
        # work that provably cannot fault (every page mapped with the rights it needs) is
        # held back with the kernel's paths: the same cycles, no engine call of its own
        if plain and ops.shape[0] <= self.DEFER_OPS:
            key = ops.tobytes()
            b = self._user_batches.get(key)
            if b is None:
                if len(self._user_batches) > 1024:
                    self._user_batches.clear()
                b = self._user_batches[key] = m.batch(ops)
            r = m.try_defer_run(b, category)
            if r is not None:
                return r

        def on_fault(f):
            old = m.set_mode("ipc")
            try:
                if fault_handler is not None:
                    fault_handler(f.va, f.kind == "w")
                    err = None
                else:
                    err = self.resolve(t, f.va, f.kind == "w", NEVER, resume=t)
            finally:
                m.set_mode(old)
            if err is not None:
                raise err
            m.events.log("l4", "retry", thread=t.name, va=f.va)
            return True

        old = m.set_mode(category)
        try:
            return m.run(ops, on_fault=on_fault)
        finally:
            m.set_mode(old)

    @staticmethod
    def _op_batch(ops):
        """`ops` as an engine op batch (a 1-d integer array or a list of op words from
        engine.ops), else L4_INVALID_ARGUMENT; the engine checks the words themselves."""
        if isinstance(ops, (list, tuple)):
            if all(is_int(w) for w in ops):
                return np.asarray(ops, dtype=np.int64)
        elif isinstance(ops, np.ndarray) and ops.ndim == 1 and ops.dtype.kind in "iu":
            return ops
        raise InvalidArgument(f"execute: ops {ops!r} is not an op batch (a 1-d integer array "
                              "from engine.ops: ops.access, ops.concat, ...)")

    def _check_fault(self, x, va, write, timeout, resume, what):
        self.check_thread(x, what)
        if not is_int(va) or not 0 <= va < KERNEL_BASE:
            raise InvalidArgument(f"{what}: va {va!r}; allowed: an address in the user range "
                                  f"0..{KERNEL_BASE:#x}")
        check_flag(write, f"{what}: write")
        check_timeout(timeout, f"{what}: timeout")
        if resume is not None:
            self.check_thread(resume, f"{what}: resume", alive=False)

    # ------------------------------------------------------------------ page faults
    def accessible(self, t, va, write):
        tr = self.m.translate(t.task.sid, va)
        return tr is not None and (not write or tr[1] & PERM_W)

    def resolve(self, t, va, write, timeout=NEVER, resume=None):
        """Make `va` accessible to `t` through its pager; None, or the error."""
        self._check_fault(t, va, write, timeout, resume, "resolve")
        if self.accessible(t, va, write):
            return None
        err = self._page_fault_ipc(t, va, write, timeout, resume)   # (checked above)
        if err is not None:
            return err
        if not self.accessible(t, va, write):
            return PageFaultUnresolved(
                f"pager {t.pager.name} answered the {'write' if write else 'read'} fault of "
                f"{t.name} at 0x{va:x} without mapping the page (L4 would fault forever)")
        self.m.events.log("l4", "pagefault_resolved", thread=t.name, va=va)
        return None

    def page_fault_ipc(self, x, va, write, timeout=NEVER, resume=None):
        """The kernel turns x's page fault into an IPC call to x's pager (two words: the
        fault address with the write bit, the faulting ip) whose reply may carry a map item
        into x's whole space.  Returns None or the IPC error."""
        self._check_fault(x, va, write, timeout, resume, "page_fault_ipc")
        return self._page_fault_ipc(x, va, write, timeout, resume)

    def _page_fault_ipc(self, x, va, write, timeout, resume):
        pager = x.pager
        self.m.events.log("l4", "pagefault", thread=x.name, va=va, write=write,
                          pager=pager.name if pager else None)
        if pager is None or not pager.alive:
            return NotExistent(f"page fault of {x.name} at 0x{va:x}: pager "
                               f"{pager.name if pager else None} does not exist", "send")
        msg = Message((va & ~3) | (2 if write else 0), 0)
        msg.pagefault = (va, write)
        req = Ipc("pagefault", dest=pager, msg=msg, receive=True, src=pager,
                  snd_timeout=timeout, rcv_timeout=timeout, window=Fpage.whole())
        saved = (x.state, x.partner, x.request, x.deadline)
        self.sched.timed.pop(x.tid, None)
        x.state = ThreadState.READY
        x.sync += 1
        try:
            self.run_kernel("pagefault", "ipc", threads=(x,))
            r = self.ipc_path.syscall(x, req, entry=False)
            if r is BLOCKED:
                self.sched.run_until(lambda: not x.blocked, waiter=x)
                r = x.result
        finally:
            x.sync -= 1
            x.result = None
            if x.alive:
                x.state, x.partner, x.request, x.deadline = saved
                if x.deadline is not None and x.state in (ThreadState.SENDING,
                                                          ThreadState.RECEIVING):
                    self.sched.timed[x.tid] = x
        if resume is not None and resume.alive:
            self.dispatch(resume)
        if isinstance(r, BaseException):
            return r
        if isinstance(r, Message) and r.error is not None:
            return r.error
        return None

    def reflect_exception(self, t, vector=0x80):
        """A trap (int `vector`) in t's task goes to L4, which bounces it to the task's
        user-level exception handler in the same space (the L4Linux trampoline)."""
        self.check_thread(t, "reflect_exception")
        check_int(vector, "reflect_exception: vector", 0, 255)
        self.dispatch(t)
        self.run_kernel("exception_reflect", "entry_exit", threads=(t,), entry=True)
        self.dispatch(t)
        self.m.events.log("l4", "exception_reflect", thread=t.name, vector=vector)

    # ------------------------------------------------------------------ mapping
    def map_nodes(self, src_task, nodes, fp, dst_task, base, grant):
        """Enter the mapper's `nodes` (pages of `fp`) into dst_task at `base` (map items)."""
        if dst_task.small and base + fp.size > dst_task.small_size:
            self.promote(dst_task)
        removed = []
        for va, node in nodes:
            dva = base + (va - fp.base)
            if self.db.lookup(src_task, va) is not node:
                # an earlier page of this fpage replaced a mapping this page derives from: the
                # page is gone (flushed), so there is nothing left to map (mapping the detached
                # node would map a frame sigma0 already took back)
                continue
            n, gone = self.db.map(node, dst_task, dva, fp.rights, grant)
            removed += gone
            self.m.events.log("l4", "grant" if grant else "map", src=src_task.name, src_va=va,
                              dst=dst_task.name, dst_va=dva, pa=n.pa, rights=n.rights)
        self.run_kernel("map_page", "ipc", count=len(nodes))
        self._zero_new_tables(dst_task)
        if removed:
            self.run_kernel("flush_page", "kernel", count=len(removed))

    def _zero_new_tables(self, task):
        """The page tables the last mappings hung into `task`'s space: L4 cleared each
        frame before it used it (lab/ptclear.py)."""
        for pa in self.tables.new(task.sid):
            self._zero_table(task, pa)

    def _zero_table(self, task, pa):
        """Clear one page-table frame: the stores, and the frame's lines written through the
        caches (a write-no-allocate L1 drains each to L2)."""
        self.run_kernel("zero_table", "kernel")
        with self.m.mode("kernel"):
            self.m.run(O.physical("w", O.lines(pa, self.m.fmt.page_size, self.image.line)),
                       check=False)
        self.m.events.log("l4", "page_table", task=task.name, pa=pa)

    def map_fpage(self, src_task, fpage, dst_task, dst_base=None, grant=False):
        """A map (or grant) item from a thread of `src_task` to one of `dst_task` that accepts
        it, as carried by an IPC that is charged elsewhere (e.g. the L4Linux server's reply):
        only the mapping work is charged here.  SendMapFailed if the mapper lacks a page."""
        self.check_task(src_task, "map_fpage: source")
        if not isinstance(fpage, Fpage):
            raise InvalidArgument(f"map_fpage: {fpage!r} is not an Fpage")
        self.check_task(dst_task, "map_fpage: destination")
        check_flag(grant, "map_fpage: grant")
        if grant and src_task.is_sigma0:
            raise InvalidArgument("map_fpage: sigma0's pages are mapped, not granted")
        base = fpage.base if dst_base is None else dst_base
        if not is_int(base) or base % fpage.size:
            raise InvalidArgument(f"map_fpage: dst_base {base!r} must be an address aligned to "
                                  f"the fpage's size {fpage.size:#x}")
        base = int(base)
        dst_task.check_user_range(base, fpage.size, "map")
        nodes = self.db.owned(src_task, fpage)
        self.map_nodes(src_task, nodes, fpage, dst_task, base, grant)

    def fpage_unmap(self, task, fpage, rights="rwx", own=False):
        """L4's flush: take `rights` from every mapping derived from the task's pages in
        `fpage`, recursively in every space (and from its own with `own`).  A system call."""
        self.check_task(task, "fpage_unmap")
        if not isinstance(fpage, Fpage):
            raise InvalidArgument(f"fpage_unmap: {fpage!r} is not an Fpage")
        check_flush_rights(rights, "fpage_unmap: rights")
        check_flag(own, "fpage_unmap: own")
        self.run_kernel("fpage_unmap", "kernel", entry=True)
        affected = self.db.flush(task, fpage, rights, own)
        if affected:
            self.run_kernel("flush_page", "kernel", count=len(affected))
        self.m.events.log("l4", "flush", task=task.name, base=fpage.base, log2size=fpage.log2size,
                          rights=rights, own=own, affected=len(affected))
        return len(affected)

    flush = fpage_unmap

    def mappings(self, task):
        """{va: (pa, rights)} of the task's pages (none for a deleted task)."""
        self.check_task(task, "mappings", alive=False)
        return self.db.mappings(task)

    def _root_released(self, pa):
        self.sigma0.released(pa)

    # ------------------------------------------------------------------ data access (tests, tools)
    def copy_string(self, s, r, chunks):
        """Move string bytes from s's space into r's buffers (translations resolved before);
        the copy runs in the sender's context: source lines read through its TLB, the
        receiver's frames written through L4's communication window (charged as physical
        references: the window's few TLB entries are not modelled).  None, or an error text."""
        m = self.m
        pairs = []
        for sva, dva, n in chunks:
            a, b = m.translate(s.task.sid, sva), m.translate(r.task.sid, dva)
            if a is None or b is None or not b[1] & PERM_W:
                return f"a page of the string vanished during the transfer (0x{sva:x}, 0x{dva:x})"
            pairs.append((sva, a[0], b[0], n))
        self.dispatch(s)
        line = self.image.line
        parts = [O.mode("copy")]
        total = 0
        for sva, spa, dpa, n in pairs:
            m.memory.write(dpa, m.memory.read(spa, n))
            parts += [O.access("r", O.lines(sva, n, line)), O.physical("w", O.lines(dpa, n, line))]
            total += n
        parts.append(O.charge("copy", total / m.profile["copy_bytes_per_cycle"]))
        old = m.set_mode("copy")
        try:
            m.run(O.concat(*parts), check=False)
        finally:
            m.set_mode(old)
        return None

    def load(self, t, va, n):
        """Thread `t` reads `n` bytes at `va` (charged as user accesses; faults to its pager)."""
        self.check_thread(t, "load")
        va, n = self._check_user_va(va, n, "load")
        self.execute(t, O.access("r", O.lines(va, n)))
        return self._bytes(t, va, n, None)

    def store(self, t, va, data):
        """Thread `t` writes `data` (bytes) at `va` (user accesses; faults to its pager)."""
        self.check_thread(t, "store")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise InvalidArgument(f"store: data {data!r} is not bytes (bytes, bytearray or "
                                  "memoryview)")
        data = bytes(data)
        va, _n = self._check_user_va(va, len(data), "store")
        self.execute(t, O.access("w", O.lines(va, len(data))))
        self._bytes(t, va, len(data), data)

    def _bytes(self, t, va, n, data):
        out, off = bytearray(), 0
        while off < n:
            k = min(n - off, PAGE - (va + off) % PAGE)
            pa = self.m.translate(t.task.sid, va + off)[0]
            if data is None:
                out += self.m.memory.read(pa, k)
            else:
                self.m.memory.write(pa, data[off:off + k])
            off += k
        return bytes(out)
