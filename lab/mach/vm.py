"""The vm_* calls of the lecture's interface, on task address maps and memory objects.

    vm_allocate(task, address, size, anywhere)      zero-filled on demand
    vm_deallocate(task, address, size)
    vm_inherit(task, address, size, inheritance)    SHARE, COPY or NONE in child tasks
    vm_protect(task, address, size, set_max, prot)  never beyond the maximum protection
    vm_read(task, address, size) -> (address, size) the data appears in the caller, copy-on-write
    vm_write(task, address, data_address, count)    from the caller's memory (whole pages)
    vm_copy(task, src, count, dst)                  copy-on-write within the task (whole pages)
    vm_regions(task, address) -> [VMRegion]
    vm_statistics(task) -> VMStatistics

A call on a range that is not entirely allocated fails with KERN_INVALID_ADDRESS; every
call checks everything before it changes anything.  Each is a Mach RPC to the kernel: the
message paths plus the operation's own path (`MachKernel._kcall`).  Copies are lazy:
`_copyin_region` takes object references (copy-on-write), `_copyout_region` maps them.
Mixin of MachKernel.
"""
from dataclasses import dataclass, field

from .errors import KernInvalidArgument, KernProtectionFailure, KernNoSpace, KernInvalidAddress
from .vm_map import VMMapEntry, VMProt, VMInherit, VMRegion, check_prot
from .vm_object import VMObject, ObjectState


@dataclass
class CopyEntry:
    object: object
    offset: int
    size: int
    needs_copy: bool


@dataclass
class VMCopy:
    """Memory in transit (vm_map_copy): object references, no data."""
    size: int
    offset: int                  # of the first byte within the first page
    entries: list = field(default_factory=list)


@dataclass(frozen=True)
class VMStatistics:
    pagesize: int
    free_count: int
    active_count: int            # resident pages of memory objects
    wire_count: int              # the kernel's own frames (image, message zone)
    zero_fill_count: int
    cow_faults: int
    faults: int
    pageins: int
    pageouts: int
    lookups: int
    hits: int


class VMCalls:

    # -- address arithmetic ----------------------------------------------------------------
    def _trunc(self, a):
        return a - a % self.page

    def _round(self, a):
        return -(-a // self.page) * self.page

    def _range(self, address, size, what):
        if not isinstance(size, int) or size <= 0:
            raise KernInvalidArgument(f"{what}: size {size!r} must be a positive integer")
        if not isinstance(address, int) or address < 0:
            raise KernInvalidAddress(f"{what}: address {address!r}")
        return self._trunc(address), self._round(address + size)

    def _vm_check(self, task, address, size, what, need_read=False, need_write=False):
        start, end = self._range(address, size, what)
        task.map.check_allocated(start, end, what)
        for e in task.map.overlapping(start, end):
            if need_read and not e.protection & VMProt.READ:
                raise KernProtectionFailure(f"{what}: 0x{e.start:x}-0x{e.end:x} is not readable")
            if need_write and not e.protection & VMProt.WRITE:
                raise KernProtectionFailure(f"{what}: 0x{e.start:x}-0x{e.end:x} is not writable")
        return start, end

    # -- objects ---------------------------------------------------------------------------
    def _object_create(self, size, internal=True, **kw):
        self._obj_seq += 1
        obj = VMObject(self._obj_seq, self._round(max(size, 1)), internal=internal, **kw)
        self.objects[obj.id] = obj
        return obj

    def _object_ref(self, obj):
        obj.ref_count += 1
        if obj.state is ObjectState.CACHED:
            obj.state = ObjectState.ACTIVE

    def _object_release(self, obj):
        obj.ref_count -= 1
        if obj.ref_count > 0:
            return
        if obj.external and obj.can_persist and obj.pager is not None and obj.pager.alive:
            obj.state = ObjectState.CACHED      # pager_cache: keep the data for the next map
            self.m.events.log("mach", "object_cached", object=obj.id, pages=len(obj.pages))
            return
        self._object_terminate(obj)

    def _object_terminate(self, obj):
        """Last reference gone: write back dirty pages of an external object, free the rest."""
        if obj.state is ObjectState.TERMINATED:
            return
        alive = obj.pager is not None and obj.pager.alive
        for off in sorted(obj.pages):
            page = obj.pages.pop(off)
            self._page_unmap(obj, page)
            if obj.external and page.dirty and page.owned and alive:
                self._pager_write(obj, page, move=True)
            else:
                self._frame_free(page)
        obj.state = ObjectState.TERMINATED
        self.objects.pop(obj.id, None)
        if obj.pager is not None and self.objects_by_pager.get(obj.pager.id) is obj:
            del self.objects_by_pager[obj.pager.id]
        for p in (obj.pager_request, obj.pager_name):
            if p is not None:
                self._port_destroy(p)
        if obj.internal and obj.pager is not None and alive:
            # the default pager's memory object dies with it (its receive right is there)
            self._kernel_send(obj.pager, self.PAGER_TERMINATE)
        self.m.events.log("mach", "object_terminate", object=obj.id)
        sh = obj.shadow
        obj.shadow = None
        if sh is not None:
            if sh.copy is obj:
                sh.copy = None
            self._object_release(sh)

    # -- map changes -----------------------------------------------------------------------
    def _map_enter(self, task, start, size, obj, offset=0, prot=VMProt.DEFAULT,
                   maxprot=VMProt.ALL, inherit=VMInherit.COPY, needs_copy=False):
        e = VMMapEntry(start, start + size, obj, offset, VMProt(prot), VMProt(maxprot),
                       inherit, needs_copy)
        task.map.insert(e)
        return e

    def _map_delete(self, task, start, end):
        for e in task.map.clip(start, end, self._object_ref):
            for va in sorted(self.pmaps.range(task.space, e.start, e.end)):
                self.image.run("pmap_remove", "kernel")
                self.pmaps.remove(task.space, va)
            task.map.remove(e)
            self._object_release(e.object)

    def _vm_allocate(self, task, address, size, anywhere, obj=None, offset=0, **attrs):
        if not isinstance(size, int) or size <= 0:
            raise KernInvalidArgument(f"vm_allocate: size {size!r} must be a positive integer")
        size = self._round(size)
        if anywhere:
            start = task.map.find_space(size, hint=self._trunc(address) if address else None)
        else:
            start = self._trunc(address)
            if not task.map.is_free(start, start + size):
                raise KernNoSpace(f"vm_allocate: 0x{start:x}-0x{start + size:x} is not free "
                                  f"in task {task.name}")
        if obj is None:
            obj = self._object_create(size, wired=task.vm_privileged)
        self._map_enter(task, start, size, obj, offset, **attrs)
        return start

    # -- copy-on-write ---------------------------------------------------------------------
    def _cow_source(self, task, e):
        """Share entry `e`'s memory copy-on-write: (object, offset, needs_copy) for the copy.
        Private memory: both sides mark needs_copy (symmetric).  Shared or pager-backed
        memory: a copy object takes the old contents before the source changes (delayed copy)."""
        obj = e.object
        if e.needs_copy or (obj.internal and not obj.physical and obj.ref_count == 1
                            and obj.copy is None):
            e.needs_copy = True
            for va in sorted(self.pmaps.range(task.space, e.start, e.end)):
                pa, prot = self.pmaps.lookup(task.space, va)
                if prot & VMProt.WRITE:
                    self.image.run("pmap_protect", "kernel")
                    self.pmaps.protect(task.space, va, VMProt(prot) & ~VMProt.WRITE)
            self._object_ref(obj)
            return obj, e.offset, True
        # the copy object is needs_copy for its holder too (Mach: vm_object_copy_strategically,
        # COPY_DELAY sets dst_needs_copy): older copies read through it, so the holder's own
        # writes must go to a shadow, never into the copy object itself
        return self._copy_delayed(obj), e.offset, True

    def _copy_delayed(self, obj):
        new = self._object_create(obj.size, shadow=obj, shadow_offset=0)
        self._object_ref(obj)
        old = obj.copy
        if old is not None:                    # older copies now read through the new one
            old.shadow = new
            self._object_ref(new)
            obj.ref_count -= 1
        obj.copy = new
        for off in sorted(obj.pages):
            self.image.run("pmap_protect", "kernel")
            self._page_unmap(obj, obj.pages[off], VMProt.ALL & ~VMProt.WRITE)
        self.m.events.log("mach", "copy_object", object=obj.id, copy=new.id)
        return new

    def _copyin_region(self, task, address, size, move=False):
        start, end = self._trunc(address), self._round(address + size)
        copy = VMCopy(end - start, address - start)
        for e in task.map.clip(start, end, self._object_ref):
            # move steals the entry only where the memory is the task's own: memory it
            # shares (VM_INHERIT_SHARE, a memory object) is copied, then deallocated --
            # out-of-line data is a copy (Mach: vm_map_copyin with src_destroy)
            steal = move and (e.needs_copy or e.object.physical or not self._shared(task, e))
            if not steal:
                obj, off, nc = self._cow_source(task, e)
                copy.entries.append(CopyEntry(obj, off, e.end - e.start, nc))
            if move:
                for va in sorted(self.pmaps.range(task.space, e.start, e.end)):
                    self.image.run("pmap_remove", "kernel")
                    self.pmaps.remove(task.space, va)
                task.map.remove(e)
                if steal:
                    copy.entries.append(CopyEntry(e.object, e.offset, e.end - e.start,
                                                  e.needs_copy))
                else:
                    self._object_release(e.object)
        return copy

    def _shared(self, task, e):
        """Whether entry `e`'s memory is seen elsewhere: a memory object's (its manager and
        any later map), or an object another task's map holds (VM_INHERIT_SHARE)."""
        obj = e.object
        return obj.external or any(x.object is obj for t in self.tasks.values()
                                   if t is not task and t.alive for x in t.map.entries)

    def _copyout_region(self, task, copy, address=None, prot=VMProt.DEFAULT):
        start = task.map.find_space(copy.size) if address is None else address
        pos = start
        for ce in copy.entries:
            ce.object.pageable = True
            ce.object.wired = ce.object.wired or task.vm_privileged
            self._map_enter(task, pos, ce.size, ce.object, ce.offset, prot=prot,
                            needs_copy=ce.needs_copy)
            pos += ce.size
        copy.entries = []
        return start + copy.offset

    def _copy_discard(self, copy):
        for ce in copy.entries:
            self._object_release(ce.object)
        copy.entries = []

    # -- the calls -------------------------------------------------------------------------
    def vm_allocate(self, task, address=0, size=0, anywhere=True, caller=None):
        """Allocate zero-filled memory at `address` or anywhere; returns the address."""
        self._check_task(task, "vm_allocate")
        with self._kcall(caller or task, "vm_allocate"):
            a = self._vm_allocate(task, address, size, anywhere)
            self.m.events.log("mach", "vm_allocate", task=task.name, address=a, size=size)
            return a

    def vm_deallocate(self, task, address, size, caller=None):
        self._check_task(task, "vm_deallocate")
        with self._kcall(caller or task, "vm_deallocate"):
            start, end = self._vm_check(task, address, size, "vm_deallocate")
            self._map_delete(task, start, end)
            self.m.events.log("mach", "vm_deallocate", task=task.name, address=start,
                              size=end - start)

    def vm_inherit(self, task, address, size, inheritance, caller=None):
        self._check_task(task, "vm_inherit")
        if not isinstance(inheritance, VMInherit):
            raise KernInvalidArgument(f"vm_inherit: {inheritance!r}; allowed: "
                                      f"{', '.join(i.name for i in VMInherit)}")
        with self._kcall(caller or task, "vm_inherit"):
            start, end = self._vm_check(task, address, size, "vm_inherit")
            for e in task.map.clip(start, end, self._object_ref):
                e.inheritance = inheritance

    def vm_protect(self, task, address, size, set_max, protection, caller=None):
        """Set the current (or, with set_max, the maximum) protection.  A protection beyond
        the maximum -- raising the current one, or the maximum itself -- fails with
        KERN_PROTECTION_FAILURE, nothing changed."""
        self._check_task(task, "vm_protect")
        prot = check_prot(protection, "vm_protect: protection")
        with self._kcall(caller or task, "vm_protect"):
            start, end = self._vm_check(task, address, size, "vm_protect")
            # current and maximum alike: the maximum can only be lowered (Mach's
            # vm_map_protect checks new_prot against max_protection before set_max)
            for e in task.map.overlapping(start, end):
                if prot & ~e.max_protection:
                    raise KernProtectionFailure(
                        f"vm_protect: {prot.text() or '-'} exceeds the maximum protection "
                        f"{VMProt(e.max_protection).text() or '-'} of 0x{e.start:x}-0x{e.end:x}")
            for e in task.map.clip(start, end, self._object_ref):
                if set_max:
                    e.max_protection = prot
                    e.protection = VMProt(e.protection) & prot
                else:
                    e.protection = prot
                for va in sorted(self.pmaps.range(task.space, e.start, e.end)):
                    pa, cur = self.pmaps.lookup(task.space, va)
                    newp = VMProt(cur) & VMProt(e.protection)
                    if newp != cur:
                        self.image.run("pmap_protect", "kernel")
                        self.pmaps.protect(task.space, va, newp)
            self.m.events.log("mach", "vm_protect", task=task.name, address=start,
                              size=end - start, set_max=bool(set_max), protection=prot.text())

    def vm_read(self, task, address, size, caller=None):
        """Read `task`'s memory: the data appears in the caller's space (copy-on-write).
        Returns (address in the caller, size)."""
        self._check_task(task, "vm_read")
        th = self._caller(caller or task)
        with self._kcall(th, "vm_read"):
            self._vm_check(task, address, size, "vm_read", need_read=True)
            copy = self._copyin_region(task, address, size)
            return self._copyout_region(th.task, copy), size

    def _aligned(self, what, *values):
        """vm_write and vm_copy work on whole pages (vm_map_copy_overwrite: "only handles
        page-aligned regions")."""
        for a in values:
            if not isinstance(a, int):
                raise KernInvalidArgument(f"{what}: {a!r} is not an address or a size")
            if a % self.page:
                raise KernInvalidArgument(f"{what}: 0x{a:x} is not page aligned (addresses "
                                          f"and size must be multiples of {self.page})")

    def vm_write(self, task, address, data_address, count, caller=None):
        """Write `count` bytes from the caller's memory at `data_address` into `task`: whole
        pages (address, data and count page aligned, as Mach's vm_map_copy_overwrite
        requires); the data is taken as a whole first, as a message carries it."""
        self._check_task(task, "vm_write")
        th = self._caller(caller or task)
        with self._kcall(th, "vm_write"):
            self._aligned("vm_write", address, data_address, count)
            self._vm_check(task, address, count, "vm_write", need_write=True)
            self._vm_check(th.task, data_address, count, "vm_write (source)", need_read=True)
            self._kernel_copy(th, th.task, data_address, task, address, count)

    def vm_copy(self, task, source_address, count, dest_address, caller=None):
        """Copy a range to another range of the same task, copy-on-write (page aligned).
        The destination keeps its attributes; where its memory is shared it is overwritten.
        The ranges may overlap: the source is taken, as of the call, before the destination
        changes (vm_map_copyin, then vm_map_copy_overwrite)."""
        self._check_task(task, "vm_copy")
        with self._kcall(caller or task, "vm_copy") as th:
            self._aligned("vm_copy", source_address, dest_address, count)
            s0, s1 = self._vm_check(task, source_address, count, "vm_copy", need_read=True)
            d0, d1 = self._vm_check(task, dest_address, count, "vm_copy (destination)",
                                    need_write=True)
            pieces = [(e.start, e.end, e.protection, e.max_protection, e.inheritance,
                       self._shared(task, e)) for e in task.map.clip(d0, d1, self._object_ref)]
            # memory other maps see is overwritten in place, not replaced: they must see the
            # new contents (Mach's vm_map_copy_overwrite copies physically into a shared
            # destination).  The source is taken first, whole: it may be the same memory.
            taken = [(ps, self._copy_take(th, task, s0 + (ps - d0), ps, pe - ps))
                     for (ps, pe, prot, mx, inh, shared) in pieces if shared]
            copy = self._copyin_region(task, s0, count)
            for ps, chunks in taken:
                self._copy_put(th, task, ps, chunks)
            if not any(p[5] for p in pieces):
                self._map_delete(task, d0, d1)
            else:
                for (ps, pe, prot, mx, inh, shared) in pieces:
                    if not shared:
                        self._map_delete(task, ps, pe)
            pos, k, used = d0, 0, 0
            for (ps, pe, prot, mx, inh, shared) in pieces:
                while pos < pe:
                    ce = copy.entries[k]
                    take = min(pe, pos + ce.size - used) - pos
                    if not shared:
                        self._object_ref(ce.object)
                        self._map_enter(task, pos, take, ce.object, ce.offset + used, prot, mx,
                                        inh, ce.needs_copy)
                    pos += take
                    used += take
                    if used == ce.size:
                        k, used = k + 1, 0
            self._copy_discard(copy)
            self.m.events.log("mach", "vm_copy", task=task.name, source=s0, dest=d0,
                              size=s1 - s0)

    def vm_regions(self, task, address=0, caller=None):
        self._check_task(task, "vm_regions")
        with self._kcall(caller or task, "vm_regions"):
            out = []
            for e in task.map.entries:
                if e.end <= address:
                    continue
                obj = e.object
                name = obj.pager_name.label if obj.pager_name is not None else f"object{obj.id}"
                out.append(VMRegion(e.start, e.end - e.start, VMProt(e.protection),
                                    VMProt(e.max_protection), e.inheritance,
                                    obj.ref_count > 1 and not e.needs_copy, name, e.offset))
            return out

    def vm_statistics(self, task, caller=None):
        self._check_task(task, "vm_statistics")
        with self._kcall(caller or task, "vm_statistics"):
            s = self.stats
            return VMStatistics(self.page, self.m.memory.free_frames, len(self.resident),
                                self.wired_frames, s["zero_fill"], s["cow_faults"], s["faults"],
                                s["pageins"], s["pageouts"], s["lookups"], s["hits"])
