"""The kernel's side of external memory management (Young et al. 1987 §3-4).

    vm_allocate_with_pager(task, address, size, anywhere, memory_object, offset)
        map a memory object (a port whose receive right a data manager holds); the first
        map of an object makes the kernel send it pager_init
    pager_data_provided / pager_data_unavailable / pager_data_lock / pager_flush_request /
    pager_clean_request / pager_cache
        the manager's calls on the kernel: real messages to the kernel-owned pager_request
        port, executed by the kernel when they are sent (a kernel object port)

The kernel's calls on the manager (pager_init, pager_data_request, pager_data_unlock,
pager_data_write, pager_create) are messages it queues on the memory object port
(`fault.py`, `vm.py`).  Mixin of MachKernel.
"""
from . import protocol as P
from .errors import KernInvalidArgument, KernResourceShortage
from .message import Message, OOLItem
from .port import Right
from .vm_map import VMProt, check_prot
from .vm_object import VMPage, ObjectState, RequestState


class MemoryObjects:
    PAGER_TERMINATE = P.PAGER_TERMINATE

    # -- mapping a memory object -----------------------------------------------------------
    def vm_allocate_with_pager(self, task, address, size, anywhere, memory_object, offset=0,
                               caller=None, protection=None):
        """Map `size` bytes of the memory object named `memory_object` (a send or receive
        right in `task`) at `offset`; returns the address.  `protection` (vm_map's
        cur_protection; default VM_PROT_DEFAULT) is the region's current protection."""
        self._check_task(task, "vm_allocate_with_pager")
        with self._kcall(caller or task, "vm_map"):
            e = task.ipc.lookup(memory_object, "vm_allocate_with_pager")
            port = e.port
            if port is None or not port.alive:
                raise KernInvalidArgument(f"vm_allocate_with_pager: memory object "
                                          f"0x{memory_object:x} is a dead name")
            if offset % self.page:
                raise KernInvalidArgument(f"vm_allocate_with_pager: offset 0x{offset:x} is "
                                          "not page aligned")
            obj = self.objects_by_pager.get(port.id)
            if obj is None:
                obj = self._object_create(offset + size, internal=False, pager=port)
                self.objects_by_pager[port.id] = obj
                self._pager_ports(obj)
                fresh = True
            else:
                self._object_ref(obj)
                obj.size = max(obj.size, self._round(offset + size))
                fresh = False
            try:
                attrs = {} if protection is None else {"prot": protection}
                a = self._vm_allocate(task, address, size, anywhere, obj=obj, offset=offset,
                                      **attrs)
            except Exception:
                self._object_release(obj)
                raise
            self.m.events.log("mach", "vm_allocate_with_pager", task=task.name, address=a,
                              size=size, object=obj.id, cached=not fresh)
            if not obj.initialized:
                self._pager_init(obj)
            return a

    vm_map = vm_allocate_with_pager

    def _pager_ports(self, obj):
        if obj.pager_request is None:
            obj.pager_request = self._new_port(f"request{obj.id}", kobject=("pager_request", obj))
            obj.pager_name = self._new_port(f"name{obj.id}", kobject=("pager_name", obj))

    def _pager_init(self, obj):
        self._pager_ports(obj)
        obj.initialized = True
        self.m.events.log("mach", "pager_init", object=obj.id)
        self._kernel_send(obj.pager, P.PAGER_INIT, rights=[(obj.pager_request, Right.SEND),
                                                           (obj.pager_name, Right.SEND)])

    def _pager_create(self, obj):
        """Temporary memory must be paged out: the kernel makes it a memory object and hands
        it to the default pager (receive right and all)."""
        dp = self.default_pager
        if dp is None or not dp.service_port.alive:
            raise KernResourceShortage(f"object {obj.id} must be paged out and there is no "
                                       "default pager")
        port = self._new_port(f"object{obj.id}")
        obj.pager = port
        obj.initialized = True
        self.objects_by_pager[port.id] = obj
        self._pager_ports(obj)
        self.m.events.log("mach", "pager_create", object=obj.id)
        self._kernel_send(dp.service_port, P.PAGER_CREATE, P.pack(obj.size),
                          rights=[(port, Right.RECEIVE), (obj.pager_request, Right.SEND),
                                  (obj.pager_name, Right.SEND)])

    def _port_died(self, port):
        obj = self.objects_by_pager.get(port.id)
        if obj is None:
            return
        for off in sorted(obj.requests):
            obj.requests[off] = RequestState.FAILED
        self.m.events.log("mach", "pager_died", object=obj.id, port=port.label)
        if obj.state is ObjectState.CACHED:
            self._object_terminate(obj)

    # -- the manager's calls (user side: messages) -----------------------------------------
    def _pager_call(self, caller, pager_request, msg_id, values, ool=()):
        # the message body is integers: a bad value is the caller's KERN_INVALID_ARGUMENT,
        # named here, not a TypeError from packing it
        for v in values:
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise KernInvalidArgument(f"{P.NAMES[msg_id]}: {v!r} is not an offset, size or "
                                          "value (a non-negative integer)")
        msg = Message(remote_port=pager_request, id=msg_id, data=P.pack(*values), ool=list(ool))
        self.msg_send(caller, msg)

    @staticmethod
    def _lock(lock_value, what):
        """A lock value: VM_PROT_* bits (0..7), as the message carries it."""
        return int(check_prot(lock_value, f"{what}: lock value"))

    def pager_data_provided(self, caller, pager_request, offset, data, data_count=None,
                            lock_value=VMProt.NONE):
        """Supply the contents of a region.  `data` is an address in the caller (with
        `data_count`) or bytes -- then, as the lecture's pager does, a buffer is allocated,
        filled, sent and deallocated."""
        th = self._caller(caller)
        lock = self._lock(lock_value, "pager_data_provided")     # before the buffer exists
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise KernInvalidArgument(f"pager_data_provided: offset {offset!r} is not a "
                                      "non-negative integer")
        if isinstance(data, (bytes, bytearray)):
            n = len(data)
            buf = self.vm_allocate(th.task, 0, n, True, caller=th)
            self.user_write(th, buf, bytes(data))
            self._pager_call(th, pager_request, P.PAGER_DATA_PROVIDED, (offset, lock),
                             [OOLItem(buf, n)])
            self.vm_deallocate(th.task, buf, n, caller=th)
        else:
            self._pager_call(th, pager_request, P.PAGER_DATA_PROVIDED, (offset, lock),
                             [OOLItem(data, data_count)])

    def pager_data_unavailable(self, caller, pager_request, offset, size):
        self._pager_call(caller, pager_request, P.PAGER_DATA_UNAVAILABLE, (offset, size))

    def pager_data_lock(self, caller, pager_request, offset, length, lock_value):
        self._pager_call(caller, pager_request, P.PAGER_DATA_LOCK,
                         (offset, length, self._lock(lock_value, "pager_data_lock")))

    def pager_flush_request(self, caller, pager_request, offset, length):
        self._pager_call(caller, pager_request, P.PAGER_FLUSH_REQUEST, (offset, length))

    def pager_clean_request(self, caller, pager_request, offset, length):
        self._pager_call(caller, pager_request, P.PAGER_CLEAN_REQUEST, (offset, length))

    def pager_cache(self, caller, pager_request, may_cache):
        self._pager_call(caller, pager_request, P.PAGER_CACHE, (int(bool(may_cache)),))

    def pager_data_error(self, caller, pager_request, offset, size):
        self._pager_call(caller, pager_request, P.PAGER_DATA_ERROR, (offset, size))

    def pager_data_provided_physical(self, caller, pager_request, offset, frame,
                                     lock_value=VMProt.NONE):
        self._pager_call(caller, pager_request, P.PAGER_DATA_PROVIDED_PHYSICAL,
                         (offset, frame, self._lock(lock_value, "pager_data_provided_physical")))

    # -- the kernel executes them (kernel object ports) ------------------------------------
    def _kobject_server(self, thread, km):
        kind, obj = km.dest.kobject
        self.image.run("kobject_server", "ipc")
        try:
            if kind == "pager_request":
                self.image.run("pager_request", "kernel")
                handler = self._PAGER_CALLS.get(km.id)
                if handler is None:
                    raise KernInvalidArgument(f"pager_request: message id {km.id} unknown")
                vals = P.unpack(km.data)
                self.m.events.log("mach", P.NAMES[km.id], object=obj.id,
                                  args=tuple(vals))
                handler(self, thread, obj, vals, km)
            else:
                raise KernInvalidArgument(f"{kind} port accepts no messages")
        finally:
            self._kmsg_destroy(km)

    def _range_pages(self, obj, offset, length):
        lo, hi = self._trunc(offset), self._round(offset + length)
        return [o for o in sorted(obj.pages) if lo <= o < hi]

    def _k_data_provided(self, thread, obj, vals, km):
        offset, lock = vals
        if not km.ool:
            raise KernInvalidArgument("pager_data_provided: no data")
        copy = km.ool[0]
        pos = 0
        for ce in list(copy.entries):
            for rel in range(0, ce.size, self.page):
                o = self._trunc(offset) + pos + rel
                if o in obj.pages:            # resident data is not replaced
                    continue
                while True:
                    r = self._page_lookup(ce.object, ce.offset + rel, VMProt.READ, thread)
                    if r is not None:
                        break
                src = r[0]
                self._busy.add(src.pa)
                try:
                    page = self._page_alloc(obj, o, zero=False)
                finally:
                    self._busy.discard(src.pa)
                self.m.memory.write(page.pa, self.m.memory.read(src.pa, self.page))
                self._charge_page_op(src.pa, page.pa)
                page.lock = int(lock)
                obj.requests.pop(o, None)
            pos += ce.size

    def _k_data_unavailable(self, thread, obj, vals, km):
        offset, size = vals
        for o in range(self._trunc(offset), self._round(offset + size), self.page):
            if obj.requests.get(o) is RequestState.PENDING:
                obj.requests[o] = RequestState.UNAVAILABLE

    def _k_data_error(self, thread, obj, vals, km):
        offset, size = vals
        for o in range(self._trunc(offset), self._round(offset + size), self.page):
            if obj.requests.get(o) is RequestState.PENDING:
                obj.requests[o] = RequestState.FAILED

    def _k_data_lock(self, thread, obj, vals, km):
        offset, length, lock = vals
        for o in self._range_pages(obj, offset, length):
            page = obj.pages[o]
            page.lock = int(lock)
            self._page_unmap(obj, page, VMProt.ALL & ~VMProt(lock))

    def _k_flush_request(self, thread, obj, vals, km):
        offset, length = vals
        for o in self._range_pages(obj, offset, length):
            page = obj.pages.pop(o)
            self._page_unmap(obj, page)
            self._frame_free(page)

    def _k_clean_request(self, thread, obj, vals, km):
        offset, length = vals
        for o in self._range_pages(obj, offset, length):
            page = obj.pages[o]
            if page.dirty and page.owned:
                self._pager_write(obj, page, move=False)
                page.dirty = False
                self._page_unmap(obj, page, VMProt.ALL & ~VMProt.WRITE)

    def _k_cache(self, thread, obj, vals, km):
        obj.can_persist = bool(vals[0])
        if not obj.can_persist and obj.state is ObjectState.CACHED:
            self._object_terminate(obj)

    def _k_provided_physical(self, thread, obj, vals, km):
        offset, frame, lock = vals
        old = obj.pages.pop(offset, None)
        if old is not None:
            self._page_unmap(obj, old)
            self._frame_free(old)
        obj.pages[offset] = VMPage(offset, frame, dirty=True, lock=int(lock), owned=False)
        obj.requests.pop(offset, None)

    _PAGER_CALLS = {P.PAGER_DATA_PROVIDED: _k_data_provided,
                    P.PAGER_DATA_UNAVAILABLE: _k_data_unavailable,
                    P.PAGER_DATA_LOCK: _k_data_lock,
                    P.PAGER_FLUSH_REQUEST: _k_flush_request,
                    P.PAGER_CLEAN_REQUEST: _k_clean_request,
                    P.PAGER_CACHE: _k_cache,
                    P.PAGER_DATA_PROVIDED_PHYSICAL: _k_provided_physical,
                    P.PAGER_DATA_ERROR: _k_data_error}
