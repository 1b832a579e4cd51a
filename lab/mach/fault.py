"""Page faults: the kernel as the cache manager of memory objects (Young et al. 1987 §4).

The engine reports a fault (`on_fault`); the kernel looks the address up in the task's map,
finds the page in the entry's object or down its shadow chain, asks the object's data
manager for it if needed (pager_data_request, then the faulting thread waits -- with a
timeout, since a manager's failure looks like communication failure), zero-fills memory
nobody has, copies on write, and enters the translation.  Physical frames are a cache:
above `max_resident_pages` the oldest page is evicted, dirty pages going back to their
manager (pager_data_write; temporary memory to the default pager, created with pager_create).

The engine has no modify bit: the kernel maps clean pages read-only and learns of the first
write by a protection fault (as Mach's pmap does on machines without one).  Mixin of MachKernel.
"""
from engine import ops as O
from engine.errors import OutOfFrames

from . import protocol as P
from .errors import (KernInvalidAddress, KernProtectionFailure, KernMemoryError,
                     KernResourceShortage, PagerTimedOut, PagerDeadlock)
from .port import Right
from .vm import CopyEntry, VMCopy
from .vm_map import VMProt, VM_MAX_ADDRESS
from .vm_object import VMPage, RequestState

ACCESS = {"r": VMProt.READ, "w": VMProt.WRITE, "x": VMProt.EXECUTE}


class Faults:

    # -- frames ----------------------------------------------------------------------------
    def _frame(self):
        """A free frame for an object page: evict beyond the budget; when every resident
        page is busy or travelling to a pager, the thread waits for the pagers to run
        (Mach's VM_PAGE_WAIT).  A VM-privileged task (the default pager) takes frames from
        the reserve instead: it must be able to receive the pages it is to page out."""
        priv = self.running is not None and self.running.task.vm_privileged
        while not priv and len(self.resident) >= self.max_resident_pages:
            if not self._evict_one():
                self._wait_for_memory()
        while True:
            try:
                return self.m.alloc_page()
            except OutOfFrames:
                if not self._evict_one():
                    self._wait_for_memory()

    def _evictable(self):
        for pa, (obj, off) in self.resident.items():
            page = obj.pages.get(off)
            stuck = page is not None and self._must_page_out(obj, off, page) \
                and obj.internal and obj.pager is None \
                and self.default_pager is None          # nowhere to page it to
            if obj.pageable and not obj.wired and pa not in self._busy and not stuck:
                return obj, off
        return None

    def _wait_for_memory(self):
        th = self.running
        if th is None or self._next_dispatch() is None:
            raise KernResourceShortage(f"no evictable page among {len(self.resident)} resident "
                                       "(all busy or in transit) and no pager can run")
        limit = self.max_resident_pages
        self._wait(th, lambda: self._evictable() is not None or len(self.resident) < limit,
                   what="free page", stuck_exc=KernResourceShortage)

    def _frame_free(self, page):
        self.resident.pop(page.pa, None)
        if page.owned:
            self.m.free_page(page.pa)

    def _page_alloc(self, obj, off, zero=True):
        pa = self._frame()
        page = VMPage(off, pa)
        obj.pages[off] = page
        self.resident[pa] = (obj, off)
        if zero:                         # the frame is zeroed: a memset of the page
            self._charge_page_op(None, pa)
        return page

    def _charge_page_op(self, src_pa, dst_pa):
        """A page copy (src) or clear (src None) by the kernel: physical lines through the
        caches and the copy loop."""
        line = self.image.line
        parts = []
        if src_pa is not None:
            parts.append(O.physical("r", O.lines(src_pa, self.page, line)))
        parts.append(O.physical("w", O.lines(dst_pa, self.page, line)))
        self.m.charge("copy", self.page / self.m.profile["copy_bytes_per_cycle"])
        with self.m.mode("copy"):
            self.m.run(O.concat(*parts), check=False)

    def _zero_table(self, pa):
        """pmap_create / pmap_expand: a page-table frame is zeroed before use -- the kernel's
        own work (not a copy of data): the stores at the copy loop's rate, and the frame's
        lines written through the caches."""
        self.m.charge("kernel", self.page / self.m.profile["copy_bytes_per_cycle"])
        with self.m.mode("kernel"):
            self.m.run(O.physical("w", O.lines(pa, self.page, self.image.line)), check=False)
        self.m.events.log("mach", "page_table", pa=pa)

    def _copy_page(self, src, obj, off):
        """Copy-on-write: a new page of `obj` with the contents of page `src`."""
        self._busy.add(src.pa)
        try:
            page = self._page_alloc(obj, off, zero=False)
        finally:
            self._busy.discard(src.pa)
        self.m.memory.write(page.pa, self.m.memory.read(src.pa, self.page))
        self._charge_page_op(src.pa, page.pa)
        page.dirty = True
        return page

    def _page_unmap(self, obj, page, prot=VMProt.NONE):
        """Restrict (NONE: remove) the translations of an object's page in every task."""
        if page.owned:
            self.pmaps.page_protect(page.pa, prot)
            return
        for sid, va in self.pmaps.mappings(page.pa):        # a shared physical frame
            task = self.task_by_space.get(sid)
            e = task.map.lookup(va) if task else None
            if e is not None and e.object is obj and e.offset + (va - e.start) == page.offset:
                cur = self.pmaps.lookup(sid, va)[1]
                newp = VMProt(cur) & VMProt(prot)
                if newp == VMProt.NONE:
                    self.pmaps.remove(sid, va)
                else:
                    self.pmaps.protect(sid, va, newp)

    # -- replacement -----------------------------------------------------------------------
    def _evict_one(self):
        victim = self._evictable()
        if victim is None:
            return False
        self._evict(*victim)
        return True

    @staticmethod
    def _must_page_out(obj, off, page):
        """Whether page `off` of `obj` cannot simply be dropped: it is dirty, or it is a
        zero-filled page of an object that shadows another -- it hides what the objects
        below hold (or will hold, before their copy-push sees it), so it cannot be rebuilt
        by a later fault."""
        return page.dirty or (obj.internal and obj.shadow is not None
                              and off not in obj.paged_out)

    def _evict(self, obj, off):
        if self._must_page_out(obj, off, obj.pages[off]):
            obj.pages[off].dirty = True
        page = obj.pages.pop(off)
        self.resident.pop(page.pa, None)
        self.image.run("pageout", "kernel")
        self._page_unmap(obj, page)
        self.stats["pageouts"] += 1
        self.m.events.log("mach", "pageout", object=obj.id, offset=off, dirty=page.dirty)
        if obj.internal and page.dirty:
            if obj.pager is None:
                self._pager_create(obj)
            obj.paged_out.add(off)
        if page.dirty and obj.pager is not None and obj.pager.alive:
            self._pager_write(obj, page, move=True)
        else:
            self._frame_free(page)

    def _pager_write(self, obj, page, move):
        """pager_data_write: the page travels out of line to the manager (moved on pageout,
        copied on clean)."""
        data = self._object_create(self.page, pageable=False)
        if move:
            moved = VMPage(0, page.pa, dirty=True)
            data.pages[0] = moved
            self.resident[page.pa] = (data, 0)
        else:
            np_ = self._page_alloc(data, 0, zero=False)
            self.m.memory.write(np_.pa, self.m.memory.read(page.pa, self.page))
            self._charge_page_op(page.pa, np_.pa)
        copy = VMCopy(self.page, 0, [CopyEntry(data, 0, self.page, False)])
        self.m.events.log("mach", "pager_data_write", object=obj.id, offset=page.offset)
        self._kernel_send(obj.pager, P.PAGER_DATA_WRITE, P.pack(page.offset, self.page),
                          ool=[copy])

    # -- the fault -------------------------------------------------------------------------
    def _on_fault(self, fault):
        """The engine's on_fault: resolve and let the access retry (or raise the error)."""
        thread = self.running
        task = self.task_by_space.get(fault.space)
        if task is None:
            return False
        self.image.run("vm_fault", "kernel")
        self._vm_fault(task, fault.va, fault.kind, thread)
        self._enter(thread, fault.space)
        return True

    def _fault_in(self, thread, task, va, kind):
        """The kernel touches `task`'s page for `thread` (vm_write, vm_read of unmapped
        data): resolve it as a fault would; returns the frame."""
        page_va = self._trunc(va)
        cur = self.pmaps.lookup(task.space, page_va)
        if cur is not None and VMProt(cur[1]) & ACCESS[kind]:
            return cur[0]
        self.image.run("vm_fault", "kernel")
        self._vm_fault(task, va, kind, thread)
        return self.pmaps.lookup(task.space, page_va)[0]

    def _vm_fault(self, task, va, kind, thread):
        need = ACCESS[kind]
        if kind == "x" and not (self.m.fmt.x_mask or self.m.fmt.nx_mask):
            # i386 has no execute bit: an instruction fetch faults as a read (Mach's i386
            # pmap grants VM_PROT_EXECUTE with VM_PROT_READ)
            need = VMProt.READ
        page_va = self._trunc(va)
        if va >= VM_MAX_ADDRESS:
            raise KernInvalidAddress(f"vm_fault: 0x{va:x} is in the kernel's range")
        self.stats["faults"] += 1
        task.stats["faults"] += 1
        while True:
            entry = task.map.lookup(page_va)
            if entry is None:
                self.m.events.log("mach", "fault_error", task=task.name, va=va,
                                  error="KERN_INVALID_ADDRESS")
                err = KernInvalidAddress(f"vm_fault: 0x{va:x} is not allocated in task "
                                         f"{task.name}")
                err.va, err.kind = va, kind
                raise err
            if not entry.protection & need:
                self.m.events.log("mach", "fault_error", task=task.name, va=va,
                                  error="KERN_PROTECTION_FAILURE")
                err = KernProtectionFailure(f"vm_fault: {kind} access to 0x{va:x} in task "
                                            f"{task.name}; protection "
                                            f"{VMProt(entry.protection).text() or '-'}")
                err.va, err.kind = va, kind
                raise err
            if need & VMProt.WRITE and entry.needs_copy:
                self._entry_shadow(entry)
            if self._fault_once(task, entry, page_va, need, thread):
                return

    def _entry_shadow(self, entry):
        """The first write through a copy-on-write entry: a shadow object of its own."""
        old = entry.object
        new = self._object_create(entry.end - entry.start, shadow=old,
                                  shadow_offset=entry.offset)
        entry.object, entry.offset, entry.needs_copy = new, 0, False   # our ref moves to new
        self.m.events.log("mach", "shadow", object=new.id, shadows=old.id)

    def _fault_once(self, task, entry, page_va, need, thread):
        """One attempt; False if the page changed under a wait (retry the lookup)."""
        first = entry.object
        off = entry.offset + (page_va - entry.start)
        self.stats["lookups"] += 1
        r = self._page_lookup(first, off, need, thread)
        if r is None:
            return False
        page, obj = r
        if page.lock & need:
            self._await_unlock(obj, page, need, thread)
            return False
        if need & VMProt.WRITE:
            if obj is not first:
                old = page
                c = first.copy
                if c is not None and off not in c.pages and off not in c.paged_out:
                    # `first` has a copy object: it keeps what `first` showed before the write
                    self._copy_page(old, c, off)
                page = self._copy_page(page, first, off)
                self._unmap_through(first, off, old, task.space, page_va)
                obj = first
                self.stats["cow_faults"] += 1
                task.stats["cow_faults"] += 1
                self.image.run("vm_fault_cow", "kernel")
                self.m.events.log("mach", "cow_fault", task=task.name, va=page_va,
                                  object=first.id)
            else:
                self._push_to_copy(obj, off, page)
            page.dirty = True
            prot = VMProt(entry.protection)
        else:
            prot = VMProt(entry.protection)
            if obj is not first or entry.needs_copy or not page.dirty or \
                    (obj.copy is not None and off not in obj.copy.pages):
                prot &= ~VMProt.WRITE
        prot &= ~VMProt(page.lock)
        self.image.run("pmap_enter", "kernel")
        self.pmaps.enter(task.space, page_va, page.pa, prot)
        # the page is in use: move it to the young end of the replacement queue
        if page.pa in self.resident:
            self.resident.move_to_end(page.pa)
        return True

    def _unmap_through(self, first, off, old, sid0, va0):
        """A copy-on-write put a new page at `off` of `first`: other maps that read the old
        frame through `first` (it is shared: VM_INHERIT_SHARE) must now see the new page,
        so their translations of the old frame go (Mach's vm_fault flushes the old page's
        mappings after the copy).  The faulting map's own is replaced by pmap_enter."""
        for sid, va in self.pmaps.mappings(old.pa):
            task = self.task_by_space.get(sid)
            e = task.map.lookup(va) if task is not None and (sid, va) != (sid0, va0) else None
            if e is None:
                continue
            obj, o = e.object, e.offset + (va - e.start)
            while obj is not None and obj is not first and o not in obj.pages:
                o += obj.shadow_offset
                obj = obj.shadow
            if obj is first and o == off:
                self.image.run("pmap_remove", "kernel")
                self.pmaps.remove(sid, va)

    def _page_lookup(self, first, off, need, thread):
        """(page, object holding it), asking managers and zero-filling; None: retry."""
        obj, o = first, off
        while True:
            page = obj.pages.get(o)
            if page is not None:
                self.stats["hits"] += 1
                return page, obj
            if obj.has_pager_data(o):
                got = self._pagein(obj, o, need, thread)
                if got is None:
                    return None
                return got, obj
            if obj.shadow is None:
                break
            o += obj.shadow_offset
            obj = obj.shadow
        page = self._page_alloc(first, off)
        self.stats["zero_fill"] += 1
        self.m.events.log("mach", "zero_fill", object=first.id, offset=off)
        return page, first

    def _pager_alive(self, obj, what):
        if obj.pager is None or not obj.pager.alive:
            raise KernMemoryError(f"{what}: the manager of object {obj.id} is dead")

    def _pagein(self, obj, off, need, thread):
        """Ask the object's manager for page `off` and wait for it (with the timeout)."""
        self._pager_alive(obj, "vm_fault")
        if not obj.initialized:
            self._pager_init(obj)
        if obj.requests.get(off) is not RequestState.PENDING:
            obj.requests[off] = RequestState.PENDING
            self.stats["pageins"] += 1
            self.m.events.log("mach", "pager_data_request", object=obj.id, offset=off,
                              access=VMProt(need).text())
            self._kernel_send(obj.pager, P.PAGER_DATA_REQUEST,
                              P.pack(off, self.page, int(need)),
                              rights=[(obj.pager_request, Right.SEND)])

        def ready():
            st = obj.requests.get(off)
            if off in obj.pages or st is RequestState.UNAVAILABLE:
                return True
            if st is RequestState.FAILED:
                obj.requests.pop(off, None)
                raise KernMemoryError(f"vm_fault: the manager of object {obj.id} reported an "
                                      f"error for offset 0x{off:x}")
            self._pager_alive(obj, "vm_fault")
            return False
        self._wait(thread, ready, via=obj.pager, what=f"pager_data_request object {obj.id} "
                   f"offset 0x{off:x}", timeout_ms=self.pager_timeout_ms,
                   timeout_exc=PagerTimedOut, deadlock_exc=PagerDeadlock)
        if off in obj.pages:
            obj.requests.pop(off, None)
            return obj.pages[off]
        obj.requests.pop(off, None)                 # unavailable: zero-fill in the object
        page = self._page_alloc(obj, off)
        self.stats["zero_fill"] += 1
        return page

    def _await_unlock(self, obj, page, need, thread):
        off = page.offset
        self._pager_alive(obj, "vm_fault")
        if obj.unlocks.get(off) is not RequestState.PENDING:
            obj.unlocks[off] = RequestState.PENDING
            self.m.events.log("mach", "pager_data_unlock", object=obj.id, offset=off,
                              access=VMProt(need).text())
            self._kernel_send(obj.pager, P.PAGER_DATA_UNLOCK, P.pack(off, self.page, int(need)),
                              rights=[(obj.pager_request, Right.SEND)])

        def ready():
            p = obj.pages.get(off)
            if p is None or not p.lock & need:
                return True
            self._pager_alive(obj, "vm_fault")
            return False
        try:
            self._wait(thread, ready, via=obj.pager, what=f"pager_data_unlock object {obj.id} "
                       f"offset 0x{off:x}", timeout_ms=self.pager_timeout_ms,
                       timeout_exc=PagerTimedOut, deadlock_exc=PagerDeadlock)
        finally:
            obj.unlocks.pop(off, None)

    def _push_to_copy(self, obj, off, page):
        """Before `obj`'s page changes, its copy object gets the old contents."""
        c = obj.copy
        if c is None or off in c.pages or off in c.paged_out:
            return
        self._page_unmap(obj, page)     # copies that saw this frame through `c` must re-fault
        self._copy_page(page, c, off)
        self.m.events.log("mach", "copy_push", object=obj.id, copy=c.id, offset=off)
