"""Views draw what the machine holds: their data functions are pure and tested without a browser."""
from engine import Machine
from lab.views import cycle_breakdown, tlb_grid, walk_table


def _machine():
    # an untagged TLB that honours global pages (CR4.PGE): the modern profile, untagged
    m = Machine("x86-64-modern", tagged=False, fmt="x86-32")
    a, b = m.new_space(), m.new_space()
    m.map(a, 0x1000, m.alloc_page(), "rw")
    m.map(b, 0x1000, m.alloc_page(), "rw", global_=True)
    return m, a, b


def test_tlb_grid_colours_entries_by_owner():
    """A filled entry shows its owning space; an untagged switch leaves only global entries."""
    m, a, b = _machine()
    m.switch(a)
    m.step("r", 0x1000)
    dtlb = [i for i, t in enumerate(m.tlb_config) if t["name"] == "dtlb"][0]
    g = tlb_grid(m, dtlb)
    assert (g["owner"] == a).sum() == 1 and g["owner"].shape == (16, 4)
    m.switch(b)
    m.step("r", 0x1000)
    m.switch(a)                      # CR3 load: a's entry is gone, b's global one stays
    g = tlb_grid(m, dtlb)
    assert (g["owner"] == a).sum() == 0
    assert (g["owner"] == b).sum() == 1 and g["global"].sum() == 1


def test_cycle_breakdown_lists_nonzero_categories_in_order():
    """The breakdown keeps the counter's category order and sums to the total."""
    m, a, _ = _machine()
    m.switch(a)
    m.step("w", 0x1000)
    names, vals = cycle_breakdown(m.by_category())
    assert names == ["space_switch", "tlb_walk", "cache_miss"]
    assert vals.sum() == m.cycles


def test_walk_table_reads_one_row_per_level():
    """An x86-32 walk reads the directory entry, then the table entry, which is the leaf."""
    m, a, _ = _machine()
    rows = walk_table(m, a, 0x1234)
    assert [r["level"] for r in rows] == [0, 1]
    assert rows[0]["index"] == 0 and rows[1]["index"] == 1
    assert rows[1]["leaf"] and rows[1]["present"]
    assert walk_table(m, a, 0x400000)[0]["present"] is False
