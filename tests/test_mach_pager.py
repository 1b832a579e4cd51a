"""External memory management end to end (Young et al. 1987; the lecture's pager_* calls),
with user-written Pager subclasses: every call is a real message on a port."""
import pytest

from lab.mach import Pager, VMProt, PagerTimedOut, PagerDeadlock, KernMemoryError
from lab.mach.vm_object import ObjectState
from mach_helpers import kernel, echo_server


class BookPager(Pager):
    """A data manager that serves pages from a dict and records what the kernel asks."""

    def __init__(self, k, pages=None, lock=VMProt.NONE):
        super().__init__(k, name="book")
        self.pages = dict(pages or {})
        self.calls = []
        self.lock = lock

    def pager_init(self, memory_object, pager_request, pager_name):
        self.calls.append(("init", memory_object))

    def pager_data_request(self, memory_object, pager_request, offset, length, access):
        self.calls.append(("request", offset, access))
        if offset in self.pages:
            self.pager_data_provided(pager_request, offset, self.pages[offset],
                                     lock_value=self.lock)
        else:
            self.pager_data_unavailable(pager_request, offset, length)

    def pager_data_write(self, memory_object, offset, data):
        self.calls.append(("write", offset))
        self.pages[offset] = data

    def pager_data_unlock(self, memory_object, pager_request, offset, length, access):
        self.calls.append(("unlock", offset, access))
        self.pager_data_lock(pager_request, offset, length, VMProt.NONE)


def mapped(k, pager, npages=4, task=None):
    t = task or k.task_create(name="client")
    mo = pager.create_memory_object("book")
    addr = k.vm_allocate_with_pager(t, 0, npages * k.page, True, pager.give(mo, t), 0)
    k.run()                          # the pager takes pager_init
    return t, mo, addr


def page_of(k, c):
    return bytes([c]) * k.page


def test_init_on_first_map_request_on_fault_provided_fills():
    """The first map of a memory object makes the kernel send pager_init (once); a fault
    sends pager_data_request; pager_data_provided fills the page the thread then reads."""
    m, k = kernel()
    pg = BookPager(k, {0: page_of(k, 7), k.page: page_of(k, 9)})
    c, mo, addr = mapped(k, pg)
    assert k.user_read(c, addr + k.page + 5, 3) == bytes([9]) * 3
    assert pg.calls == [("init", mo), ("request", k.page, VMProt.READ)]
    assert k.user_read(c, addr + k.page, 1) == b"\x09"         # resident now: no request
    k.vm_allocate_with_pager(c, 0, k.page, True, c.ipc.name_of(
        pg.task.ipc.entries[mo].port), 0)
    assert [x for x in pg.calls if x[0] == "init"] == [("init", mo)]
    ops = m.events.ops("mach")
    assert ops.index("pager_init") < ops.index("pager_data_request") < \
        ops.index("pager_data_provided")


def test_unavailable_zero_fills():
    """pager_data_unavailable: no data exists -- the kernel zero-fills the page."""
    m, k = kernel()
    pg = BookPager(k)
    c, mo, addr = mapped(k, pg)
    assert k.user_read(c, addr + 2 * k.page, 8) == bytes(8)
    assert ("request", 2 * k.page, VMProt.READ) in pg.calls


def test_dirty_pages_go_back_on_eviction_clean_ones_do_not():
    """The kernel is a cache: beyond its frame budget it evicts the oldest page; a dirty page
    of an external object goes back to its manager with pager_data_write, a clean one is
    dropped (and asked for again later)."""
    m, k = kernel(max_resident_pages=40)
    pg = BookPager(k, {i * k.page: page_of(k, i) for i in range(64)})
    c, mo, addr = mapped(k, pg, 64)
    k.user_write(c, addr, b"dirty!")                 # page 0 dirty
    for i in range(1, 64):
        k.user_read(c, addr + i * k.page, 1)         # pushes page 0 out
    k.run()
    writes = [x for x in pg.calls if x[0] == "write"]
    assert writes == [("write", 0)]
    assert pg.pages[0][:6] == b"dirty!"
    assert k.user_read(c, addr, 6) == b"dirty!"      # back through pager_data_request
    assert m.events.find("pageout", dirty=False)


def test_clean_request_writes_dirty_pages_and_keeps_them():
    """pager_clean_request: dirty cached pages are written back (pager_data_write) and stay
    resident and clean; clean pages are not sent."""
    m, k = kernel()
    pg = BookPager(k, {i * k.page: page_of(k, i) for i in range(4)})
    c, mo, addr = mapped(k, pg)
    k.user_write(c, addr + k.page, b"one")
    k.user_read(c, addr + 2 * k.page, 1)
    pg.pager_clean_request(pg.requests[mo], 0, 4 * k.page)
    k.run()
    assert [x for x in pg.calls if x[0] == "write"] == [("write", k.page)]
    n = len(pg.calls)
    assert k.user_read(c, addr + k.page, 3) == b"one" and len(pg.calls) == n
    k.user_write(c, addr + k.page, b"two")           # dirty again: a write fault noticed it
    pg.pager_clean_request(pg.requests[mo], k.page, k.page)
    k.run()
    assert pg.pages[k.page][:3] == b"two"


def test_flush_request_invalidates_the_cache():
    """pager_flush_request: cached pages are discarded (mappings removed); the next access
    asks the manager again and sees its new data."""
    m, k = kernel()
    pg = BookPager(k, {0: page_of(k, 1)})
    c, mo, addr = mapped(k, pg)
    assert k.user_read(c, addr, 1) == b"\x01"
    pg.pages[0] = page_of(k, 2)
    pg.pager_flush_request(pg.requests[mo], 0, k.page)
    assert m.translate(c.space, addr) is None
    assert k.user_read(c, addr, 1) == b"\x02"
    assert [x for x in pg.calls if x[0] == "request"] == [("request", 0, VMProt.READ)] * 2


def test_lock_and_unlock():
    """pager_data_provided with a lock restricts the cache: reads proceed, a write makes
    the kernel send pager_data_unlock and wait; the manager's pager_data_lock lifting the
    lock lets the write through.  pager_data_lock can restrict again later."""
    m, k = kernel()
    pg = BookPager(k, {0: page_of(k, 5)}, lock=VMProt.WRITE)
    c, mo, addr = mapped(k, pg)
    assert k.user_read(c, addr, 1) == b"\x05"
    k.user_write(c, addr, b"W")
    assert ("unlock", 0, VMProt.WRITE) in pg.calls
    assert k.user_read(c, addr, 1) == b"W"
    pg.pager_data_lock(pg.requests[mo], 0, k.page, VMProt.WRITE)
    assert m.translate(c.space, addr)[1] & 2 == 0          # mapped read-only again
    k.user_write(c, addr, b"X")
    assert [x[0] for x in pg.calls].count("unlock") == 2


def _cached_object():
    """A memory object whose only mapping is gone while pager_cache(TRUE) keeps its page 0
    (byte 3) in the kernel: (kernel, pager, client task, memory object name, object)."""
    _m, k = kernel()
    pg = BookPager(k, {0: page_of(k, 3)})
    c, mo, addr = mapped(k, pg)
    pg.pager_cache(pg.requests[mo], True)
    k.user_read(c, addr, 1)
    k.vm_deallocate(c, addr, 4 * k.page)
    return k, pg, c, mo, k.objects_by_pager[pg.task.ipc.entries[mo].port.id]


def _map_again(k, pg, c, mo):
    return k.vm_allocate_with_pager(c, 0, 4 * k.page, True,
                                    c.ipc.name_of(pg.task.ipc.entries[mo].port), 0)


def test_pager_cache_keeps_data_after_last_reference():
    """pager_cache(TRUE): the kernel keeps an object's pages after its last mapping goes; a
    new map finds them (no pager_init, no pager_data_request).  Without it the object is
    terminated, its dirty pages written back first."""
    k, pg, c, mo, obj = _cached_object()
    assert obj.state is ObjectState.CACHED and 0 in obj.pages
    n = len(pg.calls)
    addr2 = _map_again(k, pg, c, mo)
    assert k.user_read(c, addr2, 1) == b"\x03" and len(pg.calls) == n
    k.user_write(c, addr2, b"Z")
    pg.pager_cache(pg.requests[mo], False)
    k.vm_deallocate(c, addr2, 4 * k.page)
    k.run()
    assert obj.state is ObjectState.TERMINATED
    assert pg.calls[-1] == ("write", 0) and pg.pages[0][:1] == b"Z"


def test_default_pager_pages_temporary_memory_out_and_in():
    """Temporary memory that must leave physical memory is handed to the default pager
    (pager_create, then pager_data_write to its simulated disk) and comes back on a fault
    (pager_data_request) with its contents."""
    m, k = kernel(max_resident_pages=40)
    a = k.task_create(name="a")
    addr = k.vm_allocate(a, 0, 48 * k.page)
    for i in range(48):
        k.user_write(a, addr + i * k.page, bytes([i + 1]) * 4)
    k.run()
    assert m.events.find("pager_create")
    dp = k.default_pager
    assert dp.disk.writes > 0
    for i in range(48):
        assert k.user_read(a, addr + i * k.page, 4) == bytes([i + 1]) * 4
    assert dp.disk.reads > 0
    assert m.by_category()["disk"] > 0


class SilentPager(BookPager):
    def pager_data_request(self, memory_object, pager_request, offset, length, access):
        self.calls.append(("ignored", offset))


def test_data_manager_that_never_answers_times_out():
    """A data manager that never answers: the faulting thread's wait ends with a timeout
    error (failure looks like communication failure) after the timeout passes idle; the
    kernel stays usable -- another task runs on."""
    m, k = kernel(pager_timeout_ms=50)
    pg = SilentPager(k)
    c, mo, addr = mapped(k, pg)
    idle0 = m.by_category()["idle"]
    with pytest.raises(PagerTimedOut) as ei:
        k.user_read(c, addr, 1)
    assert ei.value.code == "RCV_TIMED_OUT"
    assert m.by_category()["idle"] - idle0 >= k.timeout_cycles(50) * 0.99
    other = k.task_create(name="other")
    s, p = echo_server(k)
    assert k.rpc(other, k.port_insert_send(s, p, other), data=b"alive").data == b"alive"
    x = k.vm_allocate(other, 0, k.page)
    k.user_write(other, x, b"fine")
    assert k.user_read(other, x, 4) == b"fine"


class SelfDeadlockPager(BookPager):
    """Touches the object it manages while answering a request for it."""

    def pager_init(self, memory_object, pager_request, pager_name):
        super().pager_init(memory_object, pager_request, pager_name)
        self.own = self.k.vm_allocate_with_pager(self.task, 0, 4 * self.page, True,
                                                 memory_object, 0, caller=self.current)

    def pager_data_request(self, memory_object, pager_request, offset, length, access):
        self.k.user_read(self.current, self.own + 3 * self.page, 1)    # our own object!
        super().pager_data_request(memory_object, pager_request, offset, length, access)


def test_data_manager_deadlocking_on_itself_is_detected():
    """A data manager whose pager_data_request handling faults on the very object it
    manages waits for itself: detected as a deadlock and reported as an error (the pager
    dies of it, its client's fault fails), never a hang; the kernel stays usable."""
    m, k = kernel()
    pg = SelfDeadlockPager(k, {0: page_of(k, 1)})
    c, mo, addr = mapped(k, pg)                      # pager_init: the pager maps its object
    with pytest.raises(KernMemoryError):
        k.user_read(c, addr, 1)
    dl = m.events.find("deadlock")
    assert dl and dl[0].args["chain"][0] == "book.pager0"
    assert m.events.find("server_crashed", task="book", error="DEADLOCK_DETECTED")
    assert isinstance(k.crashes[0][1], PagerDeadlock)
    with pytest.raises(KernMemoryError):             # the object's manager is gone
        k.user_read(c, addr + k.page, 1)
    d = k.task_create(name="d")
    y = k.vm_allocate(d, 0, k.page)
    k.user_write(d, y, b"ok")
    assert k.user_read(d, y, 2) == b"ok"


def test_a_read_of_a_page_locked_against_reading_asks_the_manager_to_unlock():
    """pager_data_provided's lock value names the accesses that need the manager's consent:
    a page locked against READ (and WRITE) is not readable until the manager lifts the lock
    -- the read fault sends pager_data_unlock for READ and waits (Young et al. 1987 §4)."""
    m, k = kernel()
    pg = BookPager(k, {0: page_of(k, 6)}, lock=VMProt.READ | VMProt.WRITE)
    c, mo, addr = mapped(k, pg)
    assert k.user_read(c, addr, 1) == b"\x06"
    assert ("unlock", 0, VMProt.READ) in pg.calls
    assert m.events.find("pager_data_unlock", access="r")


def test_resident_pages_never_exceed_the_budget():
    """Physical memory is a cache of memory objects with a budget of max_resident_pages
    frames: a fault that needs a frame when the budget is used up first evicts the oldest
    page, so the resident pages never number more than the budget (and all of it is used
    before anything is evicted).  Only the default pager, VM-privileged, takes frames from
    the reserve beyond it (it must receive pages to free pages)."""
    m, k = kernel(max_resident_pages=12)
    pg = BookPager(k, {i * k.page: page_of(k, i) for i in range(32)})
    c, mo, addr = mapped(k, pg, 32)
    counts, alloc = [], k._page_alloc

    def counted(*args, **kw):                    # the number of resident pages after each
        page = alloc(*args, **kw)                # frame taken for an unprivileged task
        if not (k.running and k.running.task.vm_privileged):
            counts.append(len(k.resident))
        return page
    k._page_alloc = counted
    for i in range(32):
        assert k.user_read(c, addr + i * k.page, 1) == bytes([i])
    assert max(counts) == 12
    assert m.events.find("pageout")


def test_data_provided_for_a_resident_page_does_not_replace_it():
    """pager_data_provided for a page the kernel already caches does not replace it: the
    resident data (here written by the client and not yet returned) stays, so a manager's
    unsolicited or late supply cannot undo a write (Mach's vm_object: "resident data is
    not replaced"); pages not resident are filled."""
    m, k = kernel()
    pg = BookPager(k, {0: page_of(k, 1)})
    c, mo, addr = mapped(k, pg)
    k.user_write(c, addr, b"mine")
    pg.pager_data_provided(pg.requests[mo], 0, page_of(k, 2) * 2)
    k.run()
    assert k.user_read(c, addr, 4) == b"mine"
    c2 = k.task_create(name="client2")                           # maps the object afresh
    addr2 = k.vm_allocate_with_pager(c2, 0, 4 * k.page, True, pg.give(mo, c2), 0)
    assert k.user_read(c2, addr2, 4) == b"mine"
    n = len(pg.calls)
    assert k.user_read(c, addr + k.page, 2) == b"\x02\x02"      # filled: no request sent
    assert len(pg.calls) == n


def test_a_cleaned_page_is_clean_until_written_again():
    """pager_clean_request leaves the pages it wrote back clean: a second clean request
    sends nothing, and neither does evicting the page later -- only a new write makes it
    dirty again (Young et al. 1987 §4: the kernel writes back modified data only)."""
    m, k = kernel(max_resident_pages=40)
    pg = BookPager(k, {i * k.page: page_of(k, i) for i in range(64)})
    c, mo, addr = mapped(k, pg, 64)
    k.user_write(c, addr, b"once")
    pg.pager_clean_request(pg.requests[mo], 0, k.page)
    k.run()
    pg.pager_clean_request(pg.requests[mo], 0, k.page)
    k.run()
    for i in range(1, 64):
        k.user_read(c, addr + i * k.page, 1)         # pushes page 0 out
    k.run()
    assert [x for x in pg.calls if x[0] == "write"] == [("write", 0)]
    assert m.events.find("pageout", offset=0, dirty=False)
    assert k.user_read(c, addr, 4) == b"once"


def test_pager_cache_false_terminates_an_object_already_cached():
    """pager_cache(FALSE) on an object the kernel keeps only in its cache (no mapping left)
    ends it at once: the object is terminated, its pages freed, and the next map of the
    memory object starts afresh with pager_init and pager_data_request."""
    k, pg, c, mo, obj = _cached_object()
    assert obj.state is ObjectState.CACHED
    pg.pager_cache(pg.requests[mo], False)
    k.run()
    assert obj.state is ObjectState.TERMINATED and not obj.pages
    addr2 = _map_again(k, pg, c, mo)
    k.run()
    assert k.user_read(c, addr2, 1) == b"\x03"
    assert [x[0] for x in pg.calls].count("init") == 2
    assert [x[0] for x in pg.calls].count("request") == 2


def test_default_pager_forgets_only_the_terminated_objects_pages():
    """When temporary memory the default pager holds is deallocated, its object terminates
    and the default pager drops that object's pages from its disk (pager_terminate); the
    pages it keeps for other objects stay and come back on a fault with their contents."""
    m, k = kernel(max_resident_pages=40)
    a = k.task_create(name="a")
    x = k.vm_allocate(a, 0, 24 * k.page)
    y = k.vm_allocate(a, 0, 24 * k.page)
    for i in range(24):
        k.user_write(a, x + i * k.page, b"x" + bytes([i]))
        k.user_write(a, y + i * k.page, b"y" + bytes([i]))
    k.run()
    dp = k.default_pager
    owners = {mo for (mo, off) in dp.blocks}
    assert len(owners) == 2                     # both objects have pages on the disk
    k.vm_deallocate(a, x, 24 * k.page)
    k.run()
    assert len({mo for (mo, off) in dp.blocks}) == 1
    for i in range(24):
        assert k.user_read(a, y + i * k.page, 2) == b"y" + bytes([i])
