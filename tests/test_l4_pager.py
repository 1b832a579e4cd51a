"""Page faults as IPC (S95 §3.2, lecture: "uses user-level pagers"): the kernel turns a
fault into an IPC to the faulting thread's pager, the pager answers with a map item, the
kernel maps and the access is retried."""
import pytest

from engine import Machine, ops as O
from lab.l4 import L4Kernel, Pager, compute, PageFaultUnresolved, InvalidArgument

PAGE = 4096


class Counting(Pager):
    """Maps every fault from a pool of its own pages (acquired from sigma0)."""

    def __init__(self, k, name="pager"):
        super().__init__(k, name)
        self.next = 0x100000

    def page_fault(self, thread, va, write):
        mine = self.next
        self.next += PAGE
        self.acquire(mine)
        return self.map_item(mine, "rw" if write else "r", send_base=va)


def _interesting(events):
    keep = {"pagefault", "ipc", "map", "pagefault_resolved", "retry"}
    return [(e.operation, e.args.get("thread") or e.args.get("sender") or e.args.get("src"))
            for e in events if e.operation in keep]


def test_page_fault_goes_to_the_pager_as_ipc_and_the_access_is_retried():
    """The event log shows the L4 protocol in order: the client faults, the kernel sends the
    fault to its pager (an IPC), the pager (after getting its own page from sigma0) maps its
    page to the client in its reply, and the faulting access is retried."""
    k = L4Kernel(Machine("pentium-133"))
    pager = Counting(k)
    c = k.task_new("client", pager=pager)
    k.m.events.clear()
    k.execute(c.thread, O.access("w", [0x4000]))
    assert _interesting(k.m.events) == [
        ("pagefault", "client"), ("ipc", "client"),          # fault -> IPC to the pager
        ("pagefault", "pager"), ("ipc", "pager"),            # the pager's own page: sigma0
        ("map", "sigma0"), ("ipc", "sigma0"),
        ("pagefault_resolved", "pager"), ("retry", "pager"),
        ("map", "pager"), ("ipc", "pager"),                  # the reply carries the map item
        ("pagefault_resolved", "client"), ("retry", "client")]
    assert k.m.translate(c.sid, 0x4000)[0] == k.m.translate(pager.task.sid, 0x100000)[0]
    fault = k.m.events.find("ipc", sender="client")[0]
    assert fault.args["receiver"] == "pager" and fault.args["words"] == (0x4000 | 2, 0)


def test_a_read_fault_then_a_write_fault_on_a_read_only_page():
    """The pager decides the rights: a read-only mapping makes a later write fault again
    (protection), and the pager's second answer maps the page writable."""
    k = L4Kernel(Machine("pentium-133"))
    pager = Counting(k)
    c = k.task_new("client", pager=pager)
    k.execute(c.thread, O.access("r", [0x4000]))
    assert k.mappings(c)[0x4000][1] == "r"
    k.execute(c.thread, O.access("w", [0x4000]))
    assert k.mappings(c)[0x4000][1] == "rw" and pager.faults == 2


def test_a_program_thread_faults_inside_compute():
    """A program thread's user work faults the same way; its program does not notice."""
    k = L4Kernel(Machine("pentium-133"))
    pager = Counting(k)
    done = []

    def prog(t):
        r = yield compute(O.access("w", [0x1000, 0x2000, 0x1000]))
        done.append(r.faults)
    k.task_new("worker", pager=pager, program=prog)
    k.run()
    assert len(done) == 1 and done[0] >= 2           # (the pager's own faults count too)
    assert pager.faults == 2 and sorted(k.mappings(k.tasks[2])) == [0x1000, 0x2000]


def test_a_pager_that_maps_nothing_is_reported_not_looped():
    """A pager that answers without mapping leaves the fault unresolved: L4 would fault
    forever; the model raises L4_SIM_PF_UNRESOLVED naming the pager."""
    k = L4Kernel(Machine("pentium-133"))
    lazy = Pager(k, "lazy")
    c = k.task_new("client", pager=lazy)
    with pytest.raises(PageFaultUnresolved, match="lazy"):
        k.execute(c.thread, O.access("r", [0x4000]))


def test_a_pager_error_reaches_the_faulting_thread():
    """A pager may answer a fault with an error; the faulting thread gets that error."""
    k = L4Kernel(Machine("pentium-133"))

    class Strict(Pager):
        def page_fault(self, thread, va, write):
            raise InvalidArgument(f"no memory at 0x{va:x}")
    c = k.task_new("client", pager=Strict(k, "strict"))
    with pytest.raises(InvalidArgument, match="0x4000"):
        k.execute(c.thread, O.access("r", [0x4000]))


class Pool(Pager):
    """Maps from a pool of pages it acquired beforehand: a fault costs no sigma0 traffic."""

    def __init__(self, k, n):
        super().__init__(k, "pool")
        self.acquire(0x100000, n)
        self.free = [0x100000 + i * PAGE for i in range(n)]

    def page_fault(self, thread, va, write):
        return self.map_item(self.free.pop(0), "rw", send_base=va)


def test_page_fault_cost_is_the_fault_plus_two_ipcs_and_the_map():
    """A resolved fault costs the exception, the kernel's fault path and IPC to the pager,
    the pager's reply (a system call carrying the map item) and two space switches, each in
    its category (S97 Table 5 'Fault' measures this path)."""
    m = Machine("pentium-133")
    k = L4Kernel(m)
    c = k.task_new("client", pager=Pool(k, 4))
    k.execute(c.thread, O.access("r", [0x8000]))
    with m.measure() as r:
        k.execute(c.thread, O.access("r", [0x9000]))
    cat = r.by_category
    assert cat["fault"] == m.profile["exception_cycles"]
    assert cat["entry_exit"] == m.profile["kernel_entry_exit_cycles"]     # the pager's reply
    assert cat["ipc"] > 0 and cat["space_switch"] > 0 and cat["copy"] == 0
    assert r.stats["faults"] == 1 and r.stats["switches"] == 2
