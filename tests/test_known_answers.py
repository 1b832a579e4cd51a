"""The translations of docs/known-answers.md, worked by hand, replayed on the engine.

Every expected number is typed in from the hand derivation (nothing is parsed from the
document and nothing is computed by the engine's own code): if the engine disagrees with the
profile values and the page-table format, these tests fail.
"""
import pytest

from engine import Machine


def ok(step, paddr, tlb, walk_refs, cycles):
    assert (step.fault, step.paddr, step.tlb, step.walk_refs, step.cycles) == \
        (None, paddr, tlb, walk_refs, cycles)


def fault(step, reason, walk_refs, cycles):
    assert (step.fault, step.paddr, step.tlb, step.walk_refs, step.cycles) == \
        (reason, None, "miss", walk_refs, cycles)


def walk(step):
    """(entry address, raw entry, valid) per level read, as OSTEP's -c prints them."""
    return [(s.pte_addr, s.entry, s.present) for s in step.walk]


@pytest.fixture
def pentium():
    """Section 1's setup: CR3 0x1000, data frame 0x2000, page table 0x3000, read-only 0x4000."""
    m = Machine("pentium-133")
    a = m.new_space()
    data = m.alloc_page()
    m.map(a, 0x00807000, data, "rw")
    ro = m.alloc_page()
    m.map(a, 0x00809000, ro, "r")
    assert (m.root(a), data, ro) == (0x1000, 0x2000, 0x4000)
    with m.measure() as r:
        m.switch(a)
    assert r.cycles == 10 and r.by_category["space_switch"] == 10
    return m, a


def test_x86_32_entries_written_by_map(pentium):
    """PDE 2 at 0x1008 = 0x00003007 (table at 0x3000, P R/W U/S); PTE 7 at 0x301C = 0x00002003;
    PTE 9 at 0x3024 = 0x00004001 (read-only)."""
    m, _ = pentium
    w = m.memory.words
    assert (int(w[0x1008 // 4]), int(w[0x301C // 4]), int(w[0x3024 // 4])) == \
        (0x00003007, 0x00002003, 0x00004001)


def test_x86_32_known_answers(pentium):
    """1a-1f: miss with a two-level walk (9 + 32 + 32 walk, 32 data = 105), hit (0), a write
    hit on a new line (L1 allocates nothing on a write miss: 32 + L2 miss 32 = 64), not-present (9 + 8 + 32 + 82 = 131), protection (9 + 8 + 8 + 82 = 107, no
    fill), the same page read (25 + 32 = 57)."""
    m, _ = pentium
    with m.measure() as r:
        s = m.step("r", 0x00807ABC)
    ok(s, 0x2ABC, "miss", 2, 105)
    assert walk(s) == [(0x1008, 0x00003007, True), (0x301C, 0x00002003, True)]
    assert [st.index for st in s.walk] == [2, 7]
    assert (r.by_category["tlb_walk"], r.by_category["cache_miss"]) == (73, 32)

    ok(m.step("r", 0x00807ABC), 0x2ABC, "hit", 0, 0)
    ok(m.step("w", 0x00807FF0), 0x2FF0, "hit", 0, 64)

    with m.measure() as r:
        s = m.step("r", 0x00808000)
    fault(s, "not-present", 2, 131)
    assert walk(s) == [(0x1008, 0x00003007, True), (0x3020, 0x00000000, False)]
    assert (r.by_category["tlb_walk"], r.by_category["fault"]) == (49, 82)

    with m.measure() as r:
        s = m.step("w", 0x00809010)
    fault(s, "protection", 2, 107)
    assert walk(s) == [(0x1008, 0x00003007, True), (0x3024, 0x00004001, True)]
    assert (r.by_category["tlb_walk"], r.by_category["fault"]) == (25, 82)

    s = m.step("r", 0x00809010)          # the fault did not fill the TLB: a miss again
    ok(s, 0x4010, "miss", 2, 57)


def test_x86_32_large_page(pentium):
    """1g: a 4 MB page: PDE 0x300 at 0x1C00 = 0x00400083, one walk reference, 9 + 32 + 32 = 73;
    then a hit in the 4 MB TLB, 0 cycles."""
    m, a = pentium
    m.map(a, 0xC0000000, 0x400000, "rw", large=True)
    assert int(m.memory.words[0x1C00 // 4]) == 0x00400083
    s = m.step("r", 0xC0012345)
    ok(s, 0x412345, "miss", 1, 73)
    assert walk(s) == [(0x1C00, 0x00400083, True)] and s.walk[0].leaf
    ok(m.step("r", 0xC0012345), 0x412345, "hit", 0, 0)
    assert m.stats()["dtlb4m.hits"][0] == 1


@pytest.fixture
def small():
    """Section 2's setup: small format, 4 KB memory, no caches; root 0x100, data 0x200,
    table 0x300, read-only 0x400."""
    m = Machine("pentium-133", fmt="small", memory_bytes=4096, caches=False)
    a = m.new_space()
    d = m.alloc_page()
    m.map(a, 0x3400, d, "rw")
    ro = m.alloc_page()
    m.map(a, 0x3500, ro, "r")
    assert (m.root(a), d, ro) == (0x100, 0x200, 0x400)
    m.switch(a)
    return m


def test_small_format_entries(small):
    """L0 entry 3 at 0x10C = 0x31; L1 entry 4 at 0x310 = 0x23; L1 entry 5 at 0x314 = 0x41."""
    w = small.memory.words
    assert (int(w[0x10C // 4]), int(w[0x310 // 4]), int(w[0x314 // 4])) == (0x31, 0x23, 0x41)


def test_small_format_known_answers(small):
    """2a-2f: 73-cycle miss, hit, protection (155), not present at level 0 (123) and level 1
    (155), a fetch from a page without X (155, through the instruction TLB)."""
    m = small
    s = m.step("r", 0x345A)
    ok(s, 0x25A, "miss", 2, 73)
    assert walk(s) == [(0x10C, 0x31, True), (0x310, 0x23, True)]
    assert [st.index for st in s.walk] == [3, 4]
    ok(m.step("r", 0x345A), 0x25A, "hit", 0, 0)

    s = m.step("w", 0x3508)
    fault(s, "protection", 2, 155)
    assert walk(s) == [(0x10C, 0x31, True), (0x314, 0x41, True)]

    s = m.step("r", 0x7000)
    fault(s, "not-present", 1, 123)
    assert walk(s) == [(0x11C, 0x00, False)]

    s = m.step("r", 0x3600)
    fault(s, "not-present", 2, 155)
    assert walk(s) == [(0x10C, 0x31, True), (0x318, 0x00, False)]

    s = m.step("x", 0x3410)
    fault(s, "protection", 2, 155)
    assert walk(s) == [(0x10C, 0x31, True), (0x310, 0x23, True)]
