"""Recursive address spaces (S95 §3.2): built from sigma0's pages with map and grant, torn
down with flush, recursively; the mapping database and the engine's page tables and TLB
always agree."""
import pytest
from hypothesis import given, settings, strategies as st

from engine import Machine, ops as O
from lab.l4 import (L4Kernel, Pager, Message, MapItem, GrantItem, Fpage, ipc_send, ipc_receive,
                    SendMapFailed, ReceiveMapFailed, PageFaultUnresolved, NotExistent,
                    ANY_PAGE, ipc_call)

from l4_helpers import PAGE, Relay


@pytest.fixture
def three():
    """sigma0 -> pager A -> pager B -> client, one page touched by the client."""
    k = L4Kernel(Machine("pentium-133"))
    a = Relay(k, "A", 0x400000)
    b = Relay(k, "B", 0x200000, pager=a)
    c = k.task_new("client", pager=b)
    k.store(c.thread, 0x3000, b"hello")
    return k, a, b, c


def test_three_level_hierarchy_is_one_mapping_tree(three):
    """Each pager maps to the next one from what it got: sigma0 -> A -> B -> client, one
    frame, one tree of depth 3 (S95 §3.2)."""
    k, a, b, c = three
    pa = k.mappings(c)[0x3000][0]
    assert k.db.tree(pa) == {"task": "sigma0", "va": pa, "rights": "rwx", "children": [
        {"task": "A", "va": pa, "rights": "rwx", "children": [
            {"task": "B", "va": 0x203000, "rights": "rw", "children": [
                {"task": "client", "va": 0x3000, "rights": "rw", "children": []}]}]}]}
    assert pa == 0x603000                          # A faulted idempotently: va == pa
    assert k.m.memory.read(pa, 5) == b"hello"


def test_flush_at_a_removes_the_mappings_derived_from_it_recursively(three):
    """flush is recursive: A flushing its page removes B's mapping and the client's (derived
    from B's), in the page tables and in the TLB: no stale translation survives."""
    k, a, b, c = three
    m = k.m
    pa = k.mappings(c)[0x3000][0]
    k.dispatch(c.thread)
    assert m.step("r", 0x3000).tlb == "hit"        # the client's TLB entry exists
    n = k.fpage_unmap(a.task, Fpage(pa))
    assert n == 2
    assert m.translate(c.sid, 0x3000) is None and m.translate(b.task.sid, 0x203000) is None
    assert m.translate(a.task.sid, pa) is not None  # A keeps its own page
    k.dispatch(c.thread)
    st = m.step("r", 0x3000)
    assert st.fault == "not-present" and st.tlb == "miss"
    assert m.events.find("flush", task="A")[-1].args["affected"] == 2


def test_flush_of_the_write_right_leaves_read_only_mappings(three):
    """flush can take away rights only: after A flushes 'w', B and the client still read the
    page but a write faults (protection) -- again with no stale writable TLB entry."""
    k, a, b, c = three
    m = k.m
    pa = k.mappings(c)[0x3000][0]
    k.dispatch(c.thread)
    m.step("w", 0x3000)
    k.fpage_unmap(a.task, Fpage(pa), rights="w")
    assert k.mappings(c)[0x3000] == (pa, "r")
    k.dispatch(c.thread)
    assert m.step("r", 0x3000).fault is None
    assert m.step("w", 0x3000).fault == "protection"


def test_deleting_the_middle_pager_flushes_its_clients(three):
    """Deleting pager B's task removes B's mappings and everything derived from them (the
    client's page); A's own page stays."""
    k, a, b, c = three
    pa = k.mappings(c)[0x3000][0]
    k.task_delete(b.task)
    assert k.m.translate(c.sid, 0x3000) is None
    assert k.db.tree(pa)["children"][0]["children"] == []


def _two_tasks():
    k = L4Kernel(Machine("pentium-133"))
    p = Relay(k, "P", 0x400000)
    src = k.task_new("src", pager=p)
    dst = k.task_new("dst")
    k.store(src.thread, 0x5000, b"granted page")
    return k, p, src, dst


def test_grant_moves_the_mapping_and_the_granter_loses_it():
    """grant: the receiver gets the page, the granter no longer has it (S95 §3.2); the node
    keeps its place in the tree (its parent stays the pager's mapping)."""
    k, p, src, dst = _two_tasks()
    m = k.m
    pa = k.mappings(src)[0x5000][0]
    got = {}

    def receiver(t):
        got["msg"] = yield ipc_receive(src.thread, window=Fpage(0x9000))
    rcv = k.thread_new(dst, "dst.rcv", program=receiver)
    k.run()
    k.ipc(src.thread, ipc_send(rcv, Message(items=[GrantItem(Fpage(0x5000))])))
    k.run()
    assert got["msg"].mapped == ((0x9000, Fpage(0x9000)),)
    assert m.translate(src.sid, 0x5000) is None
    assert m.translate(dst.sid, 0x9000)[0] == pa
    assert k.load(dst.threads[0], 0x9000, 12) == b"granted page"
    tree = k.db.tree(pa)
    assert tree["children"][0]["task"] == "P"
    assert [n["task"] for n in tree["children"][0]["children"]] == ["dst"]
    assert m.events.ops("l4").count("grant") == 1


def test_mapping_a_page_the_mapper_does_not_have_fails_and_changes_nothing():
    """A mapper can only pass on what it has: a map item naming an unmapped page fails with
    L4_IPC_SEMAPFAILED for the sender and L4_IPC_REMAPFAILED for the receiver, and no
    mapping appears anywhere."""
    k, p, src, dst = _two_tasks()
    before = ({t.name: k.mappings(t) for t in k.tasks.values()}, k.m.memory.free_frames)
    got = {}

    def receiver(t):
        try:
            yield ipc_receive(src.thread, window=Fpage.whole())
        except ReceiveMapFailed as e:
            got["err"] = e
    rcv = k.thread_new(dst, "dst.rcv", program=receiver)
    k.run()
    with pytest.raises(SendMapFailed, match="0x6000"):
        k.ipc(src.thread, ipc_send(rcv, Message(items=[MapItem(Fpage(0x6000))])))
    k.run()
    assert got["err"].code == "L4_IPC_REMAPFAILED"
    assert ({t.name: k.mappings(t) for t in k.tasks.values()}, k.m.memory.free_frames) == before


def test_granting_the_same_page_twice_fails_the_second_time():
    """After a grant the granter has nothing left: granting again is mapping a page it does
    not have (L4_IPC_SEMAPFAILED)."""
    k, p, src, dst = _two_tasks()

    def receiver(t):
        while True:
            try:
                yield ipc_receive(src.thread, window=Fpage.whole())
            except ReceiveMapFailed:
                pass
    rcv = k.thread_new(dst, "dst.rcv", program=receiver)
    k.run()
    k.ipc(src.thread, ipc_send(rcv, Message(items=[GrantItem(Fpage(0x5000))])))
    with pytest.raises(SendMapFailed):
        k.ipc(src.thread, ipc_send(rcv, Message(items=[GrantItem(Fpage(0x5000))])))
    assert k.m.translate(dst.sid, 0x5000) is not None


def test_a_task_cannot_touch_a_frame_not_mapped_into_it():
    """Protection: a task reaches only frames mapped into its space.  Without a pager its
    access fails (L4_IPC_ENOT_EXISTENT for the page-fault IPC); with a pager that refuses it
    fails too, and the frame that another task holds is unchanged."""
    k, p, src, dst = _two_tasks()
    pa = k.mappings(src)[0x5000][0]
    with pytest.raises(NotExistent):
        k.load(dst.thread, pa, 4)                 # even at the frame's own address
    with pytest.raises(NotExistent):
        k.store(dst.thread, 0x5000, b"evil")
    refuser = Pager(k, "refuser")                  # the base pager maps nothing
    t2 = k.task_new("nosy", pager=refuser)
    with pytest.raises(PageFaultUnresolved):
        k.store(t2.thread, 0x5000, b"evil")
    assert k.m.memory.read(pa, 12) == b"granted page"
    assert all(m[0] != pa for m in k.mappings(dst).values())


def test_sigma0_gives_each_page_once():
    """sigma0 maps physical page X at X to the first task asking; another task asking for
    the same frame is refused (S95: sigma0 owns all physical memory)."""
    k = L4Kernel(Machine("pentium-133"))
    a = k.task_new("a", pager=k.sigma0)
    b = k.task_new("b", pager=k.sigma0)
    k.store(a.thread, 0x800000, b"mine")
    assert k.m.translate(a.sid, 0x800000)[0] == 0x800000
    with pytest.raises(ReceiveMapFailed, match="belongs to a"):
        k.load(b.thread, 0x800000, 4)


def test_deleting_tasks_returns_every_frame():
    """Task deletion frees the task's page tables, and sigma0 takes back the frames nobody
    maps any more: after deleting the client and the pagers, the free-frame count is back."""
    m = Machine("pentium-133")
    k = L4Kernel(m)
    free0 = m.memory.free_frames
    a = Relay(k, "A", 0x400000)
    b = Relay(k, "B", 0x200000, pager=a)
    c = k.task_new("client", pager=b)
    for va in range(0x10000, 0x18000, PAGE):
        k.store(c.thread, va, b"x")
    assert m.memory.free_frames < free0 - 8
    free_c = m.memory.free_frames
    k.task_delete(c)
    assert free0 > m.memory.free_frames > free_c   # the client's tables, not the data frames
    k.task_delete(b.task)
    k.task_delete(a.task)
    assert m.memory.free_frames == free0
    assert k.db.roots == {} and k.sigma0.allocated == set()


def test_sigma0_any_page_request():
    """sigma0's second protocol: 'any page' maps some free frame into the receive window."""
    k = L4Kernel(Machine("pentium-133"))
    t = k.task_new("t")
    reply = k.ipc(t.thread, ipc_call(k.sigma0.thread, Message(ANY_PAGE), window=Fpage(0x7000)))
    pa = k.m.translate(t.sid, 0x7000)[0]
    assert reply.mapped[0][0] == 0x7000 and pa in k.sigma0.allocated


# -- the invariant, on random operation sequences --------------------------------------------

OPS = st.lists(st.tuples(st.sampled_from(["map", "grant", "flush", "flush_w", "delete_touch"]),
                         st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
               min_size=1, max_size=12)


@settings(max_examples=40, deadline=None)
@given(OPS)
def test_database_page_tables_and_tlb_agree(ops_):
    """Whatever sequence of map, grant and flush runs, every node of the mapping database is
    in its task's page table with its rights, no task translates a page it has no node for,
    and every derived mapping has at most its parent's rights."""
    m = Machine("pentium-133")
    k = L4Kernel(m)
    tasks = [k.task_new(f"t{i}", pager=k.sigma0) for i in range(4)]
    for i, t in enumerate(tasks):                     # each starts with two pages of its own
        k.store(t.thread, 0x100000 * (i + 1), b"a")
        k.store(t.thread, 0x100000 * (i + 1) + PAGE, b"b")
    for op, i, j, pg in ops_:
        src, dst = tasks[i], tasks[j]
        va = 0x100000 * (i + 1) + (pg % 2) * PAGE
        dva = 0x800000 + 0x10000 * i + pg * PAGE
        try:
            if op in ("map", "grant") and src is not dst:
                k.map_fpage(src, Fpage(va, 12, "rw"), dst, dva, grant=op == "grant")
            elif op == "flush":
                k.fpage_unmap(src, Fpage(va), "rwx")
            elif op == "flush_w":
                k.fpage_unmap(src, Fpage(va), "w")
            else:
                k.dispatch(dst.thread)
                m.run(O.access("r", [0x800000 + 0x10000 * i + pg * PAGE]))   # fill the TLB
        except SendMapFailed:
            pass
    for t in tasks:
        nodes = {n.va: n for n in k.db.nodes_of(t)}
        for va, n in nodes.items():
            tr = m.translate(t.sid, va)
            assert tr is not None and tr[0] == n.pa
            assert bool(tr[1] & 2) == ("w" in n.rights)
            if n.parent is not None and n.parent.parent is not None:
                assert set(n.rights) <= set(n.parent.rights)
        for va in list(range(0x100000, 0x500000 + PAGE + 1, 0x100000)) + \
                [0x800000 + 0x10000 * i + p * PAGE for i in range(4) for p in range(4)]:
            for v in (va, va + PAGE):
                if v not in nodes:
                    assert m.translate(t.sid, v) is None
                    k.dispatch(t.thread)
                    assert m.run(O.access("r", [v])).faults == 1     # no stale TLB entry


def test_mapping_can_only_shrink_rights():
    """A mapper passes on at most the rights it has (S95 §3.2): a task holding a page
    read-only that maps it 'rw' gives a read-only mapping; a write there faults."""
    from engine.pte import PERM_W
    k, p, src, dst = _two_tasks()
    third = k.task_new("third")
    k.map_fpage(src, Fpage(0x5000, 12, "r"), dst, 0x9000)
    k.map_fpage(dst, Fpage(0x9000, 12, "rw"), third, 0xA000)
    assert k.mappings(dst)[0x9000][1] == "r" and k.mappings(third)[0xA000][1] == "r"
    assert not k.m.translate(third.sid, 0xA000)[1] & PERM_W
    k.dispatch(third.thread)
    assert k.m.step("w", 0xA000).fault == "protection"


def test_granting_with_fewer_rights_reduces_what_was_derived_from_the_page():
    """A grant moves the granter's mapping node with (at most) the granted rights; mappings
    derived from that node can never hold more than it does, so they lose the rights the
    grant dropped (S95 §3.2: rights only shrink down a mapping tree)."""
    k, p, src, dst = _two_tasks()
    sharer = k.task_new("sharer")
    k.map_fpage(src, Fpage(0x5000, 12, "rw"), sharer, 0x7000)       # derived from src's node
    assert k.mappings(sharer)[0x7000][1] == "rw"
    k.map_fpage(src, Fpage(0x5000, 12, "r"), dst, 0x9000, grant=True)
    assert 0x5000 not in k.mappings(src)
    assert k.mappings(dst)[0x9000][1] == "r"
    assert k.mappings(sharer)[0x7000][1] == "r"
    k.dispatch(sharer.thread)
    assert k.m.step("w", 0x7000).fault == "protection"


def test_task_delete_runs_the_flush_path_once_per_removed_mapping():
    """Deleting a task flushes its mappings (S95 §3.2): the kernel runs its task_delete path
    and then its flush_page path once for every mapping removed -- nothing else is charged
    to 'kernel' (the Pentium's TLB and L1 hits cost no extra cycle)."""
    k = L4Kernel(Machine("pentium-133"))
    p = Relay(k, "P", 0x400000)
    t = k.task_new("victim", pager=p)
    for i in range(16):
        k.store(t.thread, 0x10000 + i * PAGE, b"z")
    m = k.m
    assert m.profile["tlb_hit_cycles"] == 0
    with m.measure() as r:
        k.task_delete(t)
    assert m.events.find("task_delete", task="victim")[-1].args["flushed"] == 16
    ins = k.profile.path("task_delete")[0] + 16 * k.profile.path("flush_page")[0]
    assert r.by_category["kernel"] == round(ins * m.cpi)


def test_sigma0_never_hands_out_a_page_table_frame():
    """Page-table frames are kernel memory: sigma0 refuses them like the kernel's image
    (a task that could map its own page table could map any frame).  A fault at the
    physical address of a page table fails with L4_IPC_REMAPFAILED and maps nothing."""
    k = L4Kernel(Machine("pentium-133"))
    t = k.task_new("t", pager=k.sigma0)
    root = k.m.root(t.sid)
    with pytest.raises(ReceiveMapFailed, match="kernel memory"):
        k.store(t.thread, root, b"\xff")
    assert k.m.translate(t.sid, root) is None and root not in k.db.roots


def test_mapping_an_fpage_runs_the_map_path_once_per_page():
    """A map item of a 2^k-byte fpage maps every page of it: L4 runs its map_page path once
    per page (16 KB: four times), charged to 'ipc' (the Pentium's TLB and L1 hits cost no
    extra cycle)."""
    k = L4Kernel(Machine("pentium-133"))
    p = Relay(k, "P", 0x400000)
    src = k.task_new("src", pager=p)
    dst = k.task_new("dst")
    for i in range(4):
        k.store(src.thread, 0x10000 + i * PAGE, b"p")
    with k.m.measure() as r:
        k.map_fpage(src, Fpage(0x10000, 14, "rw"), dst, 0x40000)
    assert sorted(k.mappings(dst)) == [0x40000 + i * PAGE for i in range(4)]
    assert k.m.profile["tlb_hit_cycles"] == 0
    assert r.by_category["ipc"] == round(4 * k.profile.path("map_page")[0] * k.m.cpi)


def test_a_flush_takes_only_the_pages_inside_its_fpage():
    """A flexpage is [base, base + 2^k) (S95 §3.2): flushing one page leaves what was derived
    from the next page alone."""
    k, p, src, dst = _two_tasks()
    k.store(src.thread, 0x6000, b"next page")
    k.map_fpage(src, Fpage(0x5000, 12, "rw"), dst, 0x9000)
    k.map_fpage(src, Fpage(0x6000, 12, "rw"), dst, 0xA000)
    assert k.fpage_unmap(src, Fpage(0x5000)) == 1
    assert sorted(k.mappings(dst)) == [0xA000]
    assert k.load(dst.thread, 0xA000, 9) == b"next page"
