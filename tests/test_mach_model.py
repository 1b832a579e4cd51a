"""A model-based test of Mach virtual memory (Rashid et al. 1987 = R87; Young et al. 1987 =
M87; the Mach manual's vm_* and msg_* calls): one kernel, a few tasks, and a plain-Python
reference model of what each task's address space must contain.

The model knows nothing of objects, shadows or copy-on-write.  A task's space is a dict
page address -> MPage(cell, protection, max protection, inheritance), and a `Cell` is the
bytes of one page of memory.  Two pages that are *the same memory* (VM_INHERIT_SHARE, two
maps of one memory object) hold the same Cell; every copy (VM_INHERIT_COPY, vm_copy,
vm_read, out-of-line data) is an eager copy into new Cells.  Copy-on-write must be
indistinguishable from that (R87: a copy-on-write copy is a lazy copy, invisible to tasks).
Where memory is shared, vm_copy and vm_write overwrite it in place (every sharer sees it);
out-of-line data with deallocate still gives the receiver a copy.

Rules: vm_allocate (anywhere, fixed), vm_deallocate, user loads and stores (through the
MMU and vm_fault), vm_protect (current and maximum), vm_inherit, task_create with inherited
memory, task_terminate, vm_copy, vm_read, vm_write, msg_send / msg_receive of out-of-line
memory (with and without deallocate, queued while the sender keeps writing), mapping the
memory objects of a user-level pager, vm_regions, malformed arguments, dead tasks and
dead ports.  `MachVMModelPaging` runs the same rules with 16 resident pages, so the default
pager and the user-level pager page out and in.

After every step the invariants compare the kernel with the model: the map's entries
(protection, maximum, inheritance, page by page), the bytes behind every page (found
through the entry's object and its shadow chain, without faulting), and every translation
the pmap has entered (to the model's bytes; writable only where the model allows a write).
An operation the model says is invalid must raise the specific Mach return code (exact
exception type, not just any KernelError), and since the model is left unchanged, the
invariants check that the kernel changed nothing either.  At teardown every task, the
pager and its ports are destroyed: the free frame count is back where it started.
"""
from hypothesis import event, settings, strategies as st
from hypothesis.control import currently_in_test_context
from hypothesis.stateful import RuleBasedStateMachine, rule, invariant, initialize, precondition

from lab.mach import (Message, OOLItem, MsgOption, Pager, VMProt, VMInherit,
                      VM_MIN_ADDRESS, PORT_BACKLOG_DEFAULT, KernInvalidAddress,
                      KernProtectionFailure, KernNoSpace, KernInvalidArgument, KernInvalidTask,
                      SendInvalidMemory, SendTimedOut, RcvTimedOut, PortDead)
from mach_helpers import kernel, raises

PAGE = 4096
WINDOW = 24                      # pages the rules aim at, from one below VM_MIN_ADDRESS
BASE = VM_MIN_ADDRESS - PAGE     # page 0 of the window is below the task's space
PROTS = [VMProt.NONE, VMProt.READ, VMProt.READ | VMProt.WRITE, VMProt.READ | VMProt.EXECUTE,
         VMProt.ALL]             # (write- or execute-only: an i386 pmap cannot refuse reads)
MAX_TASKS = 4
MO_PAGES = 4                     # pages of each memory object of the test's pager
DEFAULT_ATTRS = (VMProt.DEFAULT, VMProt.ALL, VMInherit.COPY)


class Cell:
    """One page of memory: what every page sharing it reads."""
    __slots__ = ("data",)

    def __init__(self, data=None):
        self.data = bytearray(PAGE) if data is None else bytearray(data)


class MPage:
    __slots__ = ("cell", "prot", "maxp", "inh")

    def __init__(self, cell, prot=VMProt.DEFAULT, maxp=VMProt.ALL, inh=VMInherit.COPY):
        self.cell, self.prot, self.maxp, self.inh = cell, prot, maxp, inh


class StorePager(Pager):
    """A data manager whose memory objects start with a known pattern (its store), answers
    pager_data_request from the store and takes pager_data_write back into it."""


def pattern(mo_index, off):
    return bytes((mo_index * 37 + off // PAGE * 11 + i) % 251 for i in range(PAGE))


def trunc(a):
    return a - a % PAGE


def rnd(a):
    return -(-a // PAGE) * PAGE


pages_st = st.integers(0, 99)         # < WINDOW: anywhere in the window; else an allocated page
npages_st = st.integers(1, 4)
prot_st = st.sampled_from(PROTS)
inh_st = st.sampled_from(list(VMInherit))
who_st = st.integers(0, MAX_TASKS - 1)


class MachVMModel(RuleBasedStateMachine):

    # -- set-up ----------------------------------------------------------------------------
    resident = None                     # the kernel's max_resident_pages (None: all memory)

    @initialize()
    def boot(self):
        self.m, self.k = kernel(16, max_resident_pages=self.resident)
        self.free0 = self.m.memory.free_frames
        self.frames0 = self.k.object_frames()
        self.pager_held0 = self._default_pager_frames()
        self.tasks = []                 # live kernel Tasks, in creation order
        self.model = {}                 # task -> {page va: MPage}
        self.port = {}                  # receiver task -> port name (its receive right)
        self.send = {}                  # (sender, receiver) -> send right name in sender
        self.pending = {}               # receiver task -> [list of page bytes per OOL]
        self.pager = None
        self.mo = []                    # memory object names (in the pager's space)
        self.mo_cells = {}              # (mo index, offset) -> Cell: the object's memory
        self.mo_names = {}              # (task, mo index) -> send right name in task
        self.seq = 0
        self.dead = []                  # terminated tasks (calls on them: KERN_INVALID_TASK)
        self.dead_names = []            # (task, name of a send right whose port died)
        self._new_task()

    def _new_task(self, parent=None):
        self.seq += 1
        t = self.k.task_create(parent=parent, inherit_memory=parent is not None,
                               name=f"t{self.seq}")
        self.tasks.append(t)
        self.model[t] = {}
        return t

    def task(self, i):
        return self.tasks[i % len(self.tasks)]

    def addr(self, p, t=None):
        """Page `p` of the window, or (p >= WINDOW, mostly) one of the pages allocated in
        `t` -- so that most calls act on memory, and some on holes."""
        if p >= WINDOW:
            pages = sorted(self.model[t or self.tasks[0]])
            if pages:
                return pages[p % len(pages)]
            p %= WINDOW
        return BASE + p * PAGE

    # -- model queries ---------------------------------------------------------------------
    def allocated(self, t, start, end):
        return all(va in self.model[t] for va in range(trunc(start), rnd(end), PAGE))

    def free(self, t, start, end):
        return VM_MIN_ADDRESS <= start and not any(
            va in self.model[t] for va in range(start, end, PAGE))

    def first_bad(self, t, start, end, need):
        """The error a range check gives: KERN_INVALID_ADDRESS if any page is unallocated,
        else KERN_PROTECTION_FAILURE if a page lacks `need`, else None."""
        if start < VM_MIN_ADDRESS or not self.allocated(t, start, end):
            return KernInvalidAddress
        if need and any(not self.model[t][va].prot & need
                        for va in range(trunc(start), rnd(end), PAGE)):
            return KernProtectionFailure
        return None

    def snapshot(self, t, start, end):
        return [bytes(self.model[t][va].cell.data) for va in range(start, end, PAGE)]

    def model_bytes(self, t, va, n):
        out = bytearray()
        while n > 0:
            k = min(n, PAGE - va % PAGE)
            out += self.model[t][trunc(va)].cell.data[va % PAGE:va % PAGE + k]
            va += k
            n -= k
        return bytes(out)

    # -- vm_allocate / vm_deallocate -------------------------------------------------------
    @rule(who=who_st, npages=npages_st)
    def vm_allocate_anywhere(self, who, npages):
        """vm_allocate(anywhere): zero-filled memory at a free, page-aligned address."""
        t = self.task(who)
        a = self.k.vm_allocate(t, 0, npages * PAGE - 100, anywhere=True)
        assert a % PAGE == 0 and self.free(t, a, a + npages * PAGE), hex(a)
        for va in range(a, a + npages * PAGE, PAGE):
            self.model[t][va] = MPage(Cell())

    @rule(who=who_st, p=pages_st, npages=npages_st, skew=st.sampled_from([0, 0, 123]))
    def vm_allocate_fixed(self, who, p, npages, skew):
        """vm_allocate at a fixed address: [trunc(address), +round(size)) must be free and
        inside the task's space, else KERN_NO_SPACE and nothing changes."""
        t = self.task(who)
        start = self.addr(p % WINDOW) + skew
        size = npages * PAGE - skew
        s0 = trunc(start)
        s1 = s0 + rnd(size)
        if not self.free(t, s0, s1):
            raises(KernNoSpace, lambda: self.k.vm_allocate(t, start, size, anywhere=False))
            return
        assert self.k.vm_allocate(t, start, size, anywhere=False) == s0
        for va in range(s0, s1, PAGE):
            self.model[t][va] = MPage(Cell())

    @rule(who=who_st, p=pages_st, npages=npages_st)
    def vm_deallocate(self, who, p, npages):
        """vm_deallocate of a range not entirely allocated: KERN_INVALID_ADDRESS (the
        lecture's interface), nothing freed; else the pages leave the task."""
        t = self.task(who)
        a, n = self.addr(p, t), npages * PAGE
        if self.first_bad(t, a, a + n, 0):
            raises(KernInvalidAddress, lambda: self.k.vm_deallocate(t, a, n))
            return
        self.k.vm_deallocate(t, a, n)
        for va in range(a, a + n, PAGE):
            del self.model[t][va]

    # -- user loads and stores (through the MMU and vm_fault) ------------------------------
    @rule(who=who_st, p=pages_st, off=st.integers(0, PAGE - 1), n=st.integers(1, 300),
          val=st.integers(0, 255))
    def user_write(self, who, p, off, n, val):
        """A store needs VM_PROT_WRITE in the entry's current protection: else the fault
        is KERN_PROTECTION_FAILURE (KERN_INVALID_ADDRESS where nothing is allocated).  A
        store that crosses into a bad page has stored the bytes of the pages before it (the
        CPU's order), and nothing after."""
        t = self.task(who)
        va = self.addr(p, t) + off
        data = bytes((val + i) % 256 for i in range(n))
        # expected: page by page until the first bad page
        err, i = None, 0
        plan = []
        while i < n:
            k = min(n - i, PAGE - (va + i) % PAGE)
            pg = trunc(va + i)
            err = self.first_bad(t, pg, pg + PAGE, VMProt.WRITE)
            if err:
                break
            plan.append((va + i, data[i:i + k]))
            i += k
        if err:
            raises(err, lambda: self.k.user_write(t, va, data))
        else:
            self.k.user_write(t, va, data)
        for a, d in plan:
            c = self.model[t][trunc(a)].cell
            c.data[a % PAGE:a % PAGE + len(d)] = d

    @rule(who=who_st, p=pages_st, off=st.integers(0, PAGE - 1), n=st.integers(1, 300))
    def user_read(self, who, p, off, n):
        """A load needs VM_PROT_READ; it returns the bytes the model holds."""
        t = self.task(who)
        va = self.addr(p, t) + off
        err = self.first_bad(t, va, va + n, VMProt.READ)
        if err:
            # the first bad page decides (loads go in address order)
            for pg in range(trunc(va), rnd(va + n), PAGE):
                err = self.first_bad(t, pg, pg + PAGE, VMProt.READ)
                if err:
                    break
            raises(err, lambda: self.k.user_read(t, va, n))
            return
        assert self.k.user_read(t, va, n) == self.model_bytes(t, va, n)

    # -- vm_protect / vm_inherit -----------------------------------------------------------
    @rule(who=who_st, p=pages_st, npages=npages_st, set_max=st.booleans(), prot=prot_st)
    def vm_protect(self, who, p, npages, set_max, prot):
        """vm_protect: the range must be allocated (KERN_INVALID_ADDRESS); the new
        protection, current or maximum, may not exceed any page's maximum protection --
        the maximum can only be lowered (KERN_PROTECTION_FAILURE, nothing changed).
        Setting the maximum also lowers the current protection to it."""
        t = self.task(who)
        a, n = self.addr(p, t), npages * PAGE
        err = self.first_bad(t, a, a + n, 0)
        if not err and any(prot & ~self.model[t][va].maxp for va in range(a, a + n, PAGE)):
            err = KernProtectionFailure
        if err:
            raises(err, lambda: self.k.vm_protect(t, a, n, set_max, prot))
            return
        self.k.vm_protect(t, a, n, set_max, prot)
        for va in range(a, a + n, PAGE):
            mp = self.model[t][va]
            if set_max:
                mp.maxp = prot
                mp.prot = mp.prot & prot
            else:
                mp.prot = prot

    @rule(who=who_st, p=pages_st, npages=npages_st, inh=inh_st)
    def vm_inherit(self, who, p, npages, inh):
        t = self.task(who)
        a, n = self.addr(p, t), npages * PAGE
        if self.first_bad(t, a, a + n, 0):
            raises(KernInvalidAddress, lambda: self.k.vm_inherit(t, a, n, inh))
            return
        self.k.vm_inherit(t, a, n, inh)
        for va in range(a, a + n, PAGE):
            self.model[t][va].inh = inh

    @rule(who=who_st)
    def vm_regions(self, who):
        """vm_regions reports, region by region, the protection, maximum protection and
        inheritance the model holds for every page -- and no page the model lacks."""
        t = self.task(who)
        seen = {}
        for r in self.k.vm_regions(t):
            for va in range(r.address, r.address + r.size, PAGE):
                seen[va] = (r.protection, r.max_protection, r.inheritance)
        assert seen == {va: (mp.prot, mp.maxp, mp.inh) for va, mp in self.model[t].items()}

    # -- tasks -----------------------------------------------------------------------------
    @precondition(lambda self: len(self.tasks) < MAX_TASKS)
    @rule(who=who_st)
    def task_create_inherit(self, who):
        """task_create with inherited memory: per page, SHARE gives the child the same
        memory, COPY a copy (copy-on-write: each side then sees only its own writes), NONE
        leaves it unallocated; protection, maximum and inheritance are inherited."""
        parent = self.task(who)
        child = self._new_task(parent)
        for va, mp in self.model[parent].items():
            if mp.inh is VMInherit.SHARE:
                cell = mp.cell
            elif mp.inh is VMInherit.COPY:
                cell = Cell(mp.cell.data)
            else:
                continue
            self.model[child][va] = MPage(cell, mp.prot, mp.maxp, mp.inh)

    @precondition(lambda self: len(self.tasks) > 1)
    @rule(who=who_st)
    def task_terminate(self, who):
        """task_terminate: the task's memory goes; memory it shared stays with the others,
        messages queued on its ports are destroyed with the memory they carry."""
        t = self.task(who)
        self.k.task_terminate(t)
        self.tasks.remove(t)
        self.dead.append(t)
        del self.model[t]
        self.pending.pop(t, None)
        self.port.pop(t, None)
        for key in [key for key in self.send if t in key]:
            if key[0] is not t:             # the sender's right to t's port is a dead name
                self.dead_names.append((key[0], self.send[key]))
            del self.send[key]
        self.dead_names = [(s, n) for s, n in self.dead_names if s is not t]
        for key in [key for key in self.mo_names if key[0] is t]:
            del self.mo_names[key]

    @rule(who=who_st, p=pages_st, which=st.integers(0, 5))
    def bad_arguments(self, who, p, which):
        """A call with a malformed argument is KERN_INVALID_ARGUMENT (a size of 0, an
        inheritance or protection outside the allowed values, an unaligned vm_copy), and a
        call on a terminated task KERN_INVALID_TASK: nothing changes."""
        t = self.task(who)
        a = self.addr(p, t)
        k = self.k
        if which == 5 and self.dead:
            d = self.dead[p % len(self.dead)]
            raises(KernInvalidTask, lambda: k.vm_allocate(d, 0, PAGE))
            return
        call = [lambda: k.vm_allocate(t, 0, 0),
                lambda: k.vm_inherit(t, a, PAGE, "share"),
                lambda: k.vm_protect(t, a, PAGE, False, 8),
                lambda: k.vm_copy(t, a + 1, PAGE, a + 8 * PAGE),
                lambda: k.vm_deallocate(t, a, 0)][which % 5]
        raises(KernInvalidArgument, call)

    # -- vm_copy / vm_read / vm_write ------------------------------------------------------
    @rule(who=who_st, src=pages_st, dst=pages_st, npages=npages_st)
    def vm_copy(self, who, src, dst, npages):
        """vm_copy: the destination's contents become the source's (as of the call); the
        destination keeps its protection and inheritance, and memory it shares with other
        tasks stays shared: they see the new contents too (the copy overwrites the memory,
        it does not replace it -- vm_map_copy_overwrite).  Source must be readable and
        destination writable (KERN_PROTECTION_FAILURE).  The ranges may overlap: the
        destination gets the source as it was before the call."""
        t = self.task(who)
        s, d, n = self.addr(src, t), self.addr(dst, t), npages * PAGE
        err = self.first_bad(t, s, s + n, VMProt.READ) or \
            self.first_bad(t, d, d + n, VMProt.WRITE)
        if err:
            raises(err, lambda: self.k.vm_copy(t, s, n, d))
            return
        self.k.vm_copy(t, s, n, d)
        if currently_in_test_context():
            event(f"vm_copy: {'overlapping' if s < d + n and d < s + n else 'disjoint'}")
        for i, data in enumerate(self.snapshot(t, s, s + n)):
            self.model[t][d + i * PAGE].cell.data[:] = data

    @rule(src_who=who_st, who=who_st, p=pages_st, off=st.integers(0, PAGE - 1),
          n=st.integers(1, 2 * PAGE))
    def vm_read(self, src_who, who, p, off, n):
        """vm_read: the pages holding [address, address+size) of the target appear, as a
        copy, at a new address in the caller (default attributes); unreadable source:
        KERN_PROTECTION_FAILURE; unallocated: KERN_INVALID_ADDRESS."""
        t, caller = self.task(src_who), self.task(who)
        a = self.addr(p, t) + off
        err = self.first_bad(t, a, a + n, VMProt.READ)
        if err:
            raises(err, lambda: self.k.vm_read(t, a, n, caller=caller))
            return
        data = self.snapshot(t, trunc(a), rnd(a + n))
        got, size = self.k.vm_read(t, a, n, caller=caller)
        assert size == n and got % PAGE == a % PAGE
        self._map_copy(caller, trunc(got), data)

    def _map_copy(self, t, start, data):
        assert self.free(t, start, start + len(data) * PAGE), hex(start)
        for i, d in enumerate(data):
            self.model[t][start + i * PAGE] = MPage(Cell(d))

    @rule(dst_who=who_st, who=who_st, p=pages_st, q=pages_st,
          poff=st.sampled_from([0, 0, 0, 1, PAGE // 2]), qoff=st.sampled_from([0, 0, 0, 8]),
          n=st.sampled_from([PAGE, PAGE, 2 * PAGE, 3 * PAGE, 1, PAGE + 1]))
    def vm_write(self, dst_who, who, p, q, poff, qoff, n):
        """vm_write: `count` bytes of the caller's memory replace the target's bytes (the
        data is taken as a whole first, as a message carries it); whole pages only
        (address, data and count not page aligned: KERN_INVALID_ARGUMENT); the target range
        must be writable, the source readable."""
        t, caller = self.task(dst_who), self.task(who)
        a, src = self.addr(p, t) + poff, self.addr(q, caller) + qoff
        err = KernInvalidArgument if (a | src | n) % PAGE else None
        err = err or self.first_bad(t, a, a + n, VMProt.WRITE) or \
            self.first_bad(caller, src, src + n, VMProt.READ)
        if err:
            raises(err, lambda: self.k.vm_write(t, a, src, n, caller=caller))
            return
        data = self.model_bytes(caller, src, n)
        self.k.vm_write(t, a, src, n, caller=caller)
        i = 0
        while i < n:
            k = min(n - i, PAGE - (a + i) % PAGE)
            c = self.model[t][trunc(a + i)].cell
            c.data[(a + i) % PAGE:(a + i) % PAGE + k] = data[i:i + k]
            i += k

    # -- out-of-line memory in messages ----------------------------------------------------
    def _port_of(self, r):
        if r not in self.port:
            self.port[r] = self.k.port_allocate(r, f"{r.name}.port")
        return self.port[r]

    def _send_name(self, s, r):
        p = self._port_of(r)
        if s is r:
            return p
        if (s, r) not in self.send:
            self.send[(s, r)] = self.k.port_insert_send(r, p, s)
        return self.send[(s, r)]

    @rule(who=who_st, to=who_st, p=pages_st, off=st.integers(0, PAGE - 1),
          n=st.integers(1, 3 * PAGE), dealloc=st.booleans())
    def msg_send_ool(self, who, to, p, off, n, dealloc):
        """msg_send with out-of-line memory: the message carries a copy of the pages as
        they are at the send (later writes by the sender do not reach it); with deallocate
        the pages also leave the sender.  Memory the sender cannot read (unallocated, or
        without VM_PROT_READ): SEND_INVALID_MEMORY, nothing sent, nothing changed.  A full
        queue (the port's backlog) with SEND_TIMEOUT 0: SEND_TIMED_OUT, nothing changed."""
        s, r = self.task(who), self.task(to)
        dest = self._send_name(s, r)
        a = self.addr(p, s) + off
        msg = Message(remote_port=dest, id=7, ool=[OOLItem(a, n, deallocate=dealloc)])
        send = lambda: self.k.msg_send(s, msg, MsgOption.SEND_TIMEOUT, 0)  # noqa: E731
        if len(self.pending.get(r, ())) >= PORT_BACKLOG_DEFAULT:
            raises(SendTimedOut, send)          # the queue is full: no waiting, no change
            return
        if self.first_bad(s, a, a + n, VMProt.READ):
            raises(SendInvalidMemory, send)
            return
        send()
        start, end = trunc(a), rnd(a + n)
        self.pending.setdefault(r, []).append((a % PAGE, n, self.snapshot(s, start, end)))
        if dealloc:
            for va in range(start, end, PAGE):
                del self.model[s][va]

    @precondition(lambda self: self.dead_names)
    @rule(i=st.integers(0, 20), p=pages_st, dealloc=st.booleans())
    def msg_send_to_dead_port(self, i, p, dealloc):
        """A send right whose port's receiver terminated is a dead name: msg_send fails with
        PORT_DEAD and its out-of-line memory stays with the sender (nothing moved)."""
        s, name = self.dead_names[i % len(self.dead_names)]
        a = self.addr(p, s)
        msg = Message(remote_port=name, id=7, ool=[OOLItem(a, PAGE, deallocate=dealloc)])
        raises(PortDead, lambda: self.k.msg_send(s, msg, MsgOption.SEND_TIMEOUT, 0))

    @rule(to=who_st)
    def msg_receive_ool(self, to):
        """msg_receive maps the out-of-line memory of the oldest message at a new address,
        with the contents it had when it was sent; an empty port with RCV_TIMEOUT 0:
        RCV_TIMED_OUT."""
        r = self.task(to)
        port = self._port_of(r)
        q = self.pending.get(r)
        if not q:
            raises(RcvTimedOut, lambda: self.k.msg_receive(r, port, MsgOption.RCV_TIMEOUT, 0))
            return
        off, n, data = q.pop(0)
        msg = self.k.msg_receive(r, port)
        assert msg.id == 7 and len(msg.ool) == 1
        item = msg.ool[0]
        assert item.address % PAGE == off and item.size == len(data) * PAGE
        self._map_copy(r, trunc(item.address), data)

    # -- a memory object of a user-level pager ---------------------------------------------
    def _ensure_pager(self):
        if self.pager is None:
            self.pager = StorePager(self.k, name="store_pager")
            for i in range(2):
                mo = self.pager.create_memory_object(f"mo{i}")
                self.mo.append(mo)
                for j in range(MO_PAGES):
                    self.pager.store[(mo, j * PAGE)] = pattern(i, j * PAGE)
                    self.mo_cells[(i, j * PAGE)] = Cell(pattern(i, j * PAGE))

    @rule(who=who_st, i=st.integers(0, 1), first=st.integers(0, MO_PAGES - 1),
          npages=npages_st)
    def vm_map_memory_object(self, who, i, first, npages):
        """vm_allocate_with_pager: the pages of the object appear, with the manager's data;
        two maps of one object (in one task or several) are the same memory (M87 §3)."""
        t = self.task(who)
        self._ensure_pager()
        npages = min(npages, MO_PAGES - first)
        if (t, i) not in self.mo_names:
            self.mo_names[(t, i)] = self.pager.give(self.mo[i], t)
        a = self.k.vm_allocate_with_pager(t, 0, npages * PAGE, True, self.mo_names[(t, i)],
                                          first * PAGE)
        assert a % PAGE == 0
        assert self.free(t, a, a + npages * PAGE)
        for j in range(npages):
            self.model[t][a + j * PAGE] = MPage(self.mo_cells[(i, (first + j) * PAGE)])

    # -- invariants ------------------------------------------------------------------------
    def _kernel_page(self, t, va):
        """The bytes the kernel holds for page `va` of `t` (entry, object, shadow chain; no
        fault), or None where only a pager knows them."""
        e = t.map.lookup(va)
        obj, off = e.object, e.offset + (va - e.start)
        while obj is not None:
            pg = obj.pages.get(off)
            if pg is not None:
                return self.m.memory.read(pg.pa, PAGE)
            if obj.has_pager_data(off):
                return None
            off += obj.shadow_offset
            obj = obj.shadow
        return bytes(PAGE)

    @invariant()
    def maps_match_the_model(self):
        if not hasattr(self, "k"):
            return
        for t in self.tasks:
            model = self.model[t]
            seen = {}
            for e in t.map.entries:
                for va in range(e.start, e.end, PAGE):
                    seen[va] = (VMProt(e.protection), VMProt(e.max_protection), e.inheritance)
            want = {va: (mp.prot, mp.maxp, mp.inh) for va, mp in model.items()}
            assert seen == want, f"{t.name}: map {sorted(seen.items())} model " \
                f"{sorted(want.items())}"

    @invariant()
    def bytes_match_the_model(self):
        if not hasattr(self, "k"):
            return
        for t in self.tasks:
            for va, mp in sorted(self.model[t].items()):
                got = self._kernel_page(t, va)
                assert got is None or got == bytes(mp.cell.data), \
                    f"{t.name} page 0x{va:x} differs from the model"
            # what the hardware would show without a fault
            for va, (pa, prot) in sorted(self.k.pmaps.maps[t.space].items()):
                mp = self.model[t].get(va)
                assert mp is not None, f"{t.name}: 0x{va:x} mapped but not allocated"
                assert not VMProt(prot) & ~mp.prot, \
                    f"{t.name}: 0x{va:x} mapped {VMProt(prot)!r} beyond {mp.prot!r}"
                assert self.m.translate(t.space, va)[0] == pa
                assert self.m.memory.read(pa, PAGE) == bytes(mp.cell.data), \
                    f"{t.name}: translation of 0x{va:x} shows other bytes than the model"

    @invariant()
    def no_frame_in_two_objects(self):
        if not hasattr(self, "k"):
            return
        owners = set()
        for obj in self.k.objects.values():
            for pg in obj.pages.values():
                if pg.owned:
                    assert pg.pa not in owners, f"frame 0x{pg.pa:x} in two objects"
                    owners.add(pg.pa)

    def _default_pager_frames(self):
        """(frames of the default pager's own memory, its page tables): a system task that
        stays, whose message buffers appear the first time it is sent a page."""
        k = self.k
        dp = k.default_pager.task
        objs = {id(e.object): e.object for e in dp.map.entries}
        mem = sum(1 for o in objs.values() for p in o.pages.values() if p.owned)
        return mem, len(k.pmaps.tables.known.get(dp.space, ()))

    def teardown(self):
        """No frame lost: with every task, the pager and its ports gone, the free frame
        count is back at its value before the first task (less what the default pager,
        which stays, now holds for its own message buffers)."""
        if not hasattr(self, "k"):
            return
        k = self.k
        if currently_in_test_context():
            event(f"pageouts {min(k.stats['pageouts'], 1)}, pageins {min(k.stats['pageins'], 1)}")
        for t in list(self.tasks):
            k.task_terminate(t)
        k.run()                          # the pager takes write-backs of dirty object pages
        if self.pager is not None:
            k.task_terminate(self.pager.task)
            k.run()
        mem, tables = self._default_pager_frames()
        mem0, tables0 = self.pager_held0
        held = {o.id: (sorted(o.pages), o.ref_count, o.state.value,
                       [(t.name, hex(e.start)) for t in k.tasks.values() for e in t.map.entries
                        if e.object is o])
                for o in k.objects.values() if any(p.owned for p in o.pages.values())}
        assert k.object_frames() - mem == self.frames0 - mem0, held
        assert self.m.memory.free_frames + (mem - mem0) + (tables - tables0) == self.free0


class MachVMModelPaging(MachVMModel):
    """The same rules with physical memory as a small cache (M87 §4): pages are evicted
    all the time -- temporary memory to the default pager, memory-object pages back to
    their manager -- and paged in again; what every task reads must not change."""
    resident = 16


MachVMModel.TestCase.settings = settings(max_examples=300, stateful_step_count=80,
                                         deadline=None, derandomize=True)
MachVMModelPaging.TestCase.settings = settings(max_examples=200, stateful_step_count=80,
                                               deadline=None, derandomize=True)
test_mach_vm_model = MachVMModel.TestCase
test_mach_vm_model_paging = MachVMModelPaging.TestCase


# -- regressions found by the model ------------------------------------------------------------
def _pager_object(k, data=b"O"):
    pg = StorePager(k, name="pager")
    mo = pg.create_memory_object("mo")
    pg.store[(mo, 0)] = data * PAGE
    return pg, mo


def test_copies_of_a_memory_object_do_not_see_each_others_writes():
    """Two VM_INHERIT_COPY children of a task mapping a memory object each get a copy of it
    as it was (M87 §3, R87 §3): a write by the younger child does not reach the older one.
    (The delayed copy object is needs_copy for its holder -- Mach's COPY_DELAY -- because
    older copies read through it.)"""
    m, k = kernel(16)
    pg, mo = _pager_object(k)
    parent = k.task_create(name="parent")
    a = k.vm_allocate_with_pager(parent, 0, PAGE, True, pg.give(mo, parent), 0)
    older = k.task_create(parent=parent, inherit_memory=True, name="older")
    younger = k.task_create(parent=parent, inherit_memory=True, name="younger")
    k.user_write(younger, a, b"Y")
    k.user_write(older, a + 1, b"o")
    assert k.user_read(older, a, 2) == b"Oo"
    assert k.user_read(younger, a, 2) == b"YO"
    assert k.user_read(parent, a, 2) == b"OO"


def test_out_of_line_move_of_shared_memory_is_a_copy():
    """Out-of-line data is a copy, with or without deallocate: moving memory the sender
    shares (VM_INHERIT_SHARE, or a memory object's pages) gives the receiver its own copy
    and only removes the region from the sender -- the receiver's writes reach neither the
    other sharer nor the memory object."""
    m, k = kernel(16)
    pg, mo = _pager_object(k)
    sender, receiver = k.task_create(name="sender"), k.task_create(name="receiver")
    port = k.port_allocate(receiver)
    to = k.port_insert_send(receiver, port, sender)
    x = k.vm_allocate_with_pager(sender, 0, PAGE, True, pg.give(mo, sender), 0)
    y = k.vm_allocate_with_pager(receiver, 0, PAGE, True, pg.give(mo, receiver), 0)
    z = k.vm_allocate(sender, 0, PAGE)
    k.user_write(sender, z, b"S")
    k.vm_inherit(sender, z, PAGE, VMInherit.SHARE)
    sharer = k.task_create(parent=sender, inherit_memory=True, name="sharer")
    k.msg_send(sender, Message(remote_port=to, ool=[OOLItem(x, PAGE, deallocate=True),
                                                    OOLItem(z, PAGE, deallocate=True)]))
    got = [item.address for item in k.msg_receive(receiver, port).ool]
    assert k.object_of(sender, x) is None and k.object_of(sender, z) is None
    k.user_write(receiver, got[0], b"R")
    k.user_write(receiver, got[1], b"R")
    assert k.user_read(receiver, y, 1) == b"O"            # the memory object is unchanged
    assert k.user_read(sharer, z, 1) == b"S"              # so is the other sharer's memory
    assert k.user_read(receiver, got[0], 2) == b"RO"


def test_vm_write_over_an_overlapping_range_of_the_same_task():
    """vm_write takes the caller's data as a whole (it travels as out-of-line data): a
    destination overlapping the source above it gets the source's bytes as they were
    (memmove), not bytes the copy has already overwritten."""
    m, k = kernel(16)
    t = k.task_create(name="t")
    a = k.vm_allocate(t, 0, 3 * PAGE)
    data = bytes(i % 251 for i in range(3 * PAGE))
    k.user_write(t, a, data)
    k.vm_write(t, a + PAGE, a, 2 * PAGE, caller=t)
    assert k.user_read(t, a + PAGE, 2 * PAGE) == data[:2 * PAGE]
    assert k.user_read(t, a, PAGE) == data[:PAGE]


def test_vm_protect_cannot_raise_the_maximum_protection():
    """vm_protect with set_maximum may only lower the maximum protection: a new maximum
    beyond the old one is KERN_PROTECTION_FAILURE and changes nothing (the manual; Mach's
    vm_map_protect checks every new protection against max_protection)."""
    m, k = kernel(16)
    t = k.task_create(name="t")
    a = k.vm_allocate(t, 0, PAGE)
    k.vm_protect(t, a, PAGE, True, VMProt.READ)
    before = k.vm_regions(t)
    raises(KernProtectionFailure, lambda: k.vm_protect(t, a, PAGE, True, VMProt.ALL))
    assert k.vm_regions(t) == before
    raises(KernProtectionFailure, lambda: k.user_write(t, a, b"x"))


def test_vm_copy_overwrites_shared_memory_in_place():
    """vm_copy overwrites the destination's memory: where it is shared with another task
    (VM_INHERIT_SHARE) that task sees the new contents, and the sharing goes on (writes
    afterwards are seen by both) -- the destination is not replaced by a private copy."""
    m, k = kernel(16)
    p = k.task_create(name="p")
    s, d = k.vm_allocate(p, 0, PAGE), k.vm_allocate(p, 0, PAGE)
    k.user_write(p, s, b"S")
    k.user_write(p, d, b"D")
    k.vm_inherit(p, d, PAGE, VMInherit.SHARE)
    c = k.task_create(parent=p, inherit_memory=True, name="c")
    k.vm_copy(p, s, PAGE, d)
    assert k.user_read(p, d, 1) == b"S" and k.user_read(c, d, 1) == b"S"
    k.user_write(c, d, b"C")
    assert k.user_read(p, d, 1) == b"C" and k.user_read(p, s, 1) == b"S"


def _shared_over_a_cow_page(k):
    """A page p wrote, then forked COPY (so it sits copy-on-write below p's entry), then
    made VM_INHERIT_SHARE and shared with a second child: returns (p, cow child, sharer, a)."""
    p = k.task_create(name="p")
    a = k.vm_allocate(p, 0, PAGE)
    k.user_write(p, a, b"a")
    c1 = k.task_create(parent=p, inherit_memory=True, name="c1")
    k.vm_inherit(p, a, PAGE, VMInherit.SHARE)
    c2 = k.task_create(parent=p, inherit_memory=True, name="c2")
    return p, c1, c2, a


def test_write_to_shared_memory_reaches_a_sharer_that_read_it_before():
    """Memory shared by VM_INHERIT_SHARE is one memory: after one sharer writes a page that
    was still copy-on-write below the shared object, the other sharer reads the new bytes
    even though it had the old page mapped (its translation of the old frame is removed,
    as Mach's vm_fault flushes the old page after a copy)."""
    m, k = kernel(16)
    p, c1, c2, a = _shared_over_a_cow_page(k)
    assert k.user_read(p, a, 1) == b"a"           # p maps the old frame read-only
    k.user_write(c2, a, b"2")
    assert k.user_read(p, a, 1) == b"2"
    assert k.user_read(c1, a, 1) == b"a"


def test_copy_of_shared_memory_keeps_its_contents_when_a_sharer_writes():
    """VM_INHERIT_COPY of memory that is shared gives a copy as of the task creation
    (R87 §3): when a sharer's write copies a page up into the shared object, the copy
    object first gets the old contents."""
    m, k = kernel(16)
    p, c1, c2, a = _shared_over_a_cow_page(k)
    k.vm_inherit(p, a, PAGE, VMInherit.COPY)
    c3 = k.task_create(parent=p, inherit_memory=True, name="c3")
    k.user_write(c2, a, b"2")
    assert k.user_read(c3, a, 1) == b"a"
    assert k.user_read(p, a, 1) == b"2"


def test_vm_copy_between_two_maps_of_one_memory_object():
    """vm_copy takes the source as it is at the call: when source and destination are the
    same memory under different addresses (two maps of one memory object), every
    destination page gets the source's old contents, whichever page is written first."""
    m, k = kernel(16)
    pg = StorePager(k, name="pager")
    mo = pg.create_memory_object("mo")
    for j in range(3):
        pg.store[(mo, j * PAGE)] = bytes([65 + j]) * PAGE       # pages "A", "B", "C"
    t = k.task_create(name="t")
    name = pg.give(mo, t)
    a = k.vm_allocate_with_pager(t, 0, 2 * PAGE, True, name, 0)            # pages 0 1
    b = k.vm_allocate_with_pager(t, 0, PAGE, True, name, PAGE)             # page 1
    c = k.vm_allocate_with_pager(t, 0, PAGE, True, name, 2 * PAGE)         # page 2
    assert (b, c) == (a + 2 * PAGE, a + 3 * PAGE)
    k.vm_copy(t, a, 2 * PAGE, b)        # page 1 := old page 0, page 2 := old page 1
    assert k.user_read(t, b, 1) == b"A" and k.user_read(t, a + PAGE, 1) == b"A"
    assert k.user_read(t, c, 1) == b"B"
    assert k.user_read(t, a, 1) == b"A"


def test_evicted_zero_fill_page_of_a_copy_still_reads_zero():
    """A copy keeps its contents through page replacement (M87: physical memory is only a
    cache): a page zero-filled in a copy object by a read hides what the source writes
    later, so evicting it must page it out, not drop it -- after the eviction the copy
    still reads zeros, not the source's later data."""
    m, k = kernel(16, max_resident_pages=16)
    p = k.task_create(name="p")
    a = k.vm_allocate(p, 0, PAGE)
    k.vm_inherit(p, a, PAGE, VMInherit.SHARE)
    sharer = k.task_create(parent=p, inherit_memory=True, name="sharer")
    k.vm_inherit(p, a, PAGE, VMInherit.COPY)
    copy = k.task_create(parent=p, inherit_memory=True, name="copy")   # a delayed copy
    assert k.user_read(copy, a, 1) == b"\0"          # zero-filled in the copy object
    k.user_write(p, a, b"P")                          # the source gets its own page
    other = k.task_create(name="other")
    b = k.vm_allocate(other, 0, 40 * PAGE)
    for i in range(40):                               # memory pressure: evict everything old
        k.user_write(other, b + i * PAGE, b"x")
    assert k.stats["pageouts"] > 0
    assert k.user_read(copy, a, 1) == b"\0"
    assert k.user_read(sharer, a, 1) == b"P"
