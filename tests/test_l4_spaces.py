"""Small address spaces (S97 §3, S95 §4.1): on the Pentium, whose TLB is untagged, L4 places
small tasks in a shared 512 MB region and switches to them by reloading segment registers:
no CR3 load, no TLB flush.  Between two large spaces every switch reloads CR3 and flushes."""
import pytest

from engine import Machine, ops as O
from lab.l4 import L4Kernel, Pager, Message, ipc_wait, ipc_reply_and_wait, ipc_call, InvalidArgument

PAGE = 4096


def server(t):
    msg = yield ipc_wait()
    while True:
        msg = yield ipc_reply_and_wait(msg.sender, Message(msg.words[0] + 1))


def _rpc_loop(small_server):
    m = Machine("pentium-133")
    k = L4Kernel(m)
    srv = k.task_new("server", program=server, small=small_server)
    cli = k.task_new("client", pager=k.sigma0)
    k.store(cli.thread, 0x600000, b"w")                  # the client's working page
    k.ipc(cli.thread, ipc_call(srv.thread, Message(0)))    # warm up
    k.execute(cli.thread, O.access("r", [0x600000]))
    with m.measure() as r:
        for i in range(10):
            k.ipc(cli.thread, ipc_call(srv.thread, Message(i)))
            k.execute(cli.thread, O.access("r", [0x600000]))
    return m, srv, r


def test_switching_between_a_large_and_a_small_space_keeps_the_tlb():
    """Client (large) <-> server (small): ten RPCs load CR3 zero times, flush nothing, and
    the client's own TLB entry survives every round trip (its access after each RPC hits)."""
    m, srv, r = _rpc_loop(small_server=True)
    assert srv.small and m.is_small(srv.sid)
    assert r.stats["cr3.loads"] == 0 and r.stats["tlb.flushes"] == 0
    assert r.stats["switches"] >= 20
    assert r.stats["dtlb.misses"] == 0                 # the client's page: hit every time
    assert r.stats["dtlb.hits"] >= 10
    assert r.by_category["space_switch"] == r.stats["switches"] * m.profile["segment_switch_cycles"]


def test_switching_between_two_large_spaces_flushes_the_tlb():
    """Client (large) <-> server (large): every switch reloads CR3, which on the untagged
    Pentium flushes all non-global entries: the client's page misses after every RPC."""
    m, srv, r = _rpc_loop(small_server=False)
    assert not srv.small
    assert r.stats["cr3.loads"] == 20 and r.stats["tlb.flushes"] == 20
    assert r.stats["dtlb.misses"] >= 10
    assert r.by_category["tlb_walk"] > 0


def test_small_and_large_rpc_do_the_same_work():
    """Both configurations run the same IPC paths; only the switch and the refills differ."""
    m1, _s, small = _rpc_loop(True)
    m2, _s, large = _rpc_loop(False)
    assert small.by_category["ipc"] == large.by_category["ipc"]
    assert small.by_category["entry_exit"] == large.by_category["entry_exit"]
    assert small.cycles < large.cycles


class Low(Pager):
    def page_fault(self, thread, va, write):
        mine = 0x100000 + va
        if not self.has(mine & ~(PAGE - 1)):
            self.acquire(mine & ~(PAGE - 1))
        return self.map_item(mine & ~(PAGE - 1), "rw", send_base=va)


def test_a_small_space_that_outgrows_its_size_becomes_large():
    """A small space only holds addresses below its size; L4 promotes a task that needs
    more to a large space (S95 §4.1), keeping its mappings."""
    k = L4Kernel(Machine("pentium-133"))
    t = k.task_new("grower", pager=Low(k, "low"), small=True, small_size=4 << 20)
    k.store(t.thread, 0x1000, b"low")
    assert t.small
    k.store(t.thread, 0x01000000, b"high")                 # 16 MB: beyond 4 MB
    assert not t.small and not k.m.is_small(t.sid)
    assert k.load(t.thread, 0x1000, 3) == b"low" and k.load(t.thread, 0x01000000, 4) == b"high"
    assert k.m.events.find("promote", task="grower")


def test_small_spaces_need_a_machine_that_has_them():
    """On a machine without segments there are no small spaces: a typed error says so."""
    k = L4Kernel(Machine("pentium-133", small_spaces=False))
    with pytest.raises(InvalidArgument, match="small spaces"):
        k.task_new("x", small=True)


def test_on_a_tagged_tlb_no_switch_flushes():
    """On a CPU with address-space tags (x86-64-modern) L4 switches by changing the tag:
    no CR3 load flushes anything, and a page fault with an executable mapping works (the
    NX bit is honoured: sigma0 hands out its pages with all rights)."""
    m = Machine("x86-64-modern")
    k = L4Kernel(m)
    srv = k.task_new("server", program=server)
    cli = k.task_new("client", pager=k.sigma0)
    k.store(cli.thread, 0x600000, b"code")
    k.ipc(cli.thread, ipc_call(srv.thread, Message(0)))
    with m.measure() as r:
        k.ipc(cli.thread, ipc_call(srv.thread, Message(1)))
        k.execute(cli.thread, O.access("x", [0x600000]))
    assert r.stats["cr3.loads"] == 0 and r.stats["tlb.flushes"] == 0 and r.stats["faults"] == 0


def test_a_small_space_keeps_a_page_that_ends_exactly_at_its_size():
    """A small space of size S holds addresses 0..S-1 (S95 §4.1): its last page, ending
    exactly at S, fits -- the task stays small (no promotion, no CR3 load later)."""
    k = L4Kernel(Machine("pentium-133"))
    t = k.task_new("edge", pager=Low(k, "low"), small=True, small_size=4 << 20)
    k.store(t.thread, (4 << 20) - PAGE, b"top")
    assert t.small and k.m.is_small(t.sid)
    assert k.m.events.find("promote", task="edge") == []
    assert k.load(t.thread, (4 << 20) - PAGE, 3) == b"top"
