"""Rules of the MMU model that once failed (each test names the symptom it guards against),
plus the facade's small public additions (attach_space, root, small_base)."""
import numpy as np
import pytest

from engine import Machine, PageFault, core, ops as O

MB = 1 << 20


def test_unmapping_a_splintered_large_page_drops_every_splinter():
    """The Pentium's code TLB holds only 4 KB pages: a 4 MB code page is splintered into it, one
    entry per 4 KB piece used.  Unmapping (or protecting) the 4 MB page must drop all of them,
    not just the entry of its first 4 KB (symptom: a fetch after unmap hit a stale entry)."""
    m = Machine("pentium-133", memory_bytes=16 * MB)
    a = m.new_space()
    m.map(a, 0xC0000000, 0x400000, "rx", large=True)
    m.switch(a)
    assert m.step("x", 0xC0005000).paddr == 0x405000            # splinter 5 in the itlb
    assert m.step("x", 0xC0005004).tlb == "hit"
    m.unmap(a, 0xC0000000)
    s = m.step("x", 0xC0005004)
    assert (s.tlb, s.fault) == ("miss", "not-present")

    m.map(a, 0xC0000000, 0x800000, "rwx", large=True)
    m.step("x", 0xC0007000)
    m.protect(a, 0xC0000000, "r")               # (x86-32 has no NX: still executable)
    assert m.step("x", 0xC0007000).tlb == "miss"                  # the splinter went too


def test_small_space_does_not_alias_a_large_space():
    """Untagged TLB with small spaces: a small space lives at base + va in the linear space,
    where a large space may have mappings of its own.  Switching from the large space to the
    small one flushes nothing, yet the small space must see its own page (symptom: it hit the
    large space's entry for the same linear address)."""
    m = Machine("pentium-133", tagged=False, small_spaces=True, memory_bytes=16 * MB)
    big = m.new_space()
    s = m.new_space(small=True)
    base, size = m.small_base(s)
    assert (base, size) == (0xA0000000, 4 * MB)
    m.map(big, base, 0x10000, "rw")
    m.map(s, 0, 0x20000, "rw")
    m.switch(big)
    assert m.step("r", base).paddr == 0x10000
    with m.measure() as r:
        m.switch(s)
    assert r.by_category["space_switch"] == m.profile["segment_switch_cycles"]   # no CR3 load
    assert m.step("r", 0).paddr == 0x20000
    m.switch(big)
    assert m.step("r", base).tlb == "hit"       # the large space's entry survived both switches


def test_small_space_has_nothing_beyond_its_size():
    """A small space's segment ends at its size: an access beyond it misses and faults
    not-present without a walk (symptom: it aliased the next small space's entries)."""
    m = Machine("pentium-133", tagged=False, small_spaces=True, memory_bytes=16 * MB)
    s1, s2 = m.new_space(small=True), m.new_space(small=True)
    m.map(s2, 0, 0x20000, "rw")
    m.switch(s2)
    assert m.step("r", 0).paddr == 0x20000
    m.switch(s1)
    st = m.step("r", 4 * MB)                    # s1's base + 4 MB is s2's base
    assert (st.tlb, st.fault, st.walk_refs) == ("miss", "not-present", 0)


def test_a_faulting_access_does_not_fill_the_tlb():
    """Neither a not-present nor a protection fault leaves a TLB entry behind."""
    m = Machine("pentium-133", memory_bytes=8 * MB)
    a = m.new_space()
    m.map(a, 0x1000, m.alloc_page(), "r")
    m.switch(a)
    valid = lambda: int(m.te[:, core.TE_VALID].sum())
    m.step("r", 0x5000)
    m.step("w", 0x1000)
    assert valid() == 0
    m.step("r", 0x1000)
    assert valid() == 1


def test_flush_all_empties_every_tlb_global_entries_too():
    """flush all (gem5's vocabulary) empties every TLB, global entries included -- unlike a CR3
    load."""
    m = Machine("x86-64-modern", memory_bytes=8 * MB)
    a = m.new_space()
    for i in range(8):
        m.map(a, 0x1000 * (i + 1), m.alloc_page(), "rwx", global_=i % 2 == 0)
    m.switch(a)
    m.run(O.concat(O.access("r", range(0x1000, 0x9000, 0x1000)), O.access("x", [0x1000])))
    assert m.te[:, core.TE_GLOBAL].any()
    m.flush()
    assert not m.te[:, core.TE_VALID].any()


def test_untagged_switch_keeps_only_global_entries():
    """A CR3 load on a TLB that honours global pages keeps exactly the global entries; on the
    P54C Pentium (no PGE) it keeps none."""
    for profile, survive in (("x86-64-modern", 1), ("pentium-133", 0)):
        m = Machine(profile, tagged=False, small_spaces=False, memory_bytes=8 * MB)
        a, b = m.new_space(), m.new_space()
        for s in (a, b):
            m.map(s, 0x1000, 0x10000, "rw", global_=True)
            m.map(s, 0x2000, m.alloc_page(), "rw")
        m.switch(a)
        m.run(O.access("r", [0x1000, 0x2000]))
        m.switch(b)
        assert int(m.te[:, core.TE_VALID].sum()) == survive
        assert m.step("r", 0x1000).tlb == ("hit" if survive else "miss")


def test_attach_space_runs_tables_built_elsewhere():
    """attach_space registers a root table already in memory (the benchmark loads a memory
    image this way); translations then follow those tables."""
    m1 = Machine("pentium-133", memory_bytes=8 * MB)
    a = m1.new_space()
    m1.map(a, 0x00400000, 0x7000, "rw")
    m2 = Machine("pentium-133", memory_bytes=8 * MB)
    m2.memory.words[:] = m1.memory.words
    b = m2.attach_space(m1.root(a))
    assert m2.root(b) == m1.root(a) and m2.small_base(b) is None
    m2.switch(b)
    assert m2.step("w", 0x00400010).paddr == 0x7010
    assert m2.translate(b, 0x00400010) == m1.translate(a, 0x00400010)
    m2.destroy_space(b)                         # frees nothing it does not own
    assert m2.memory.free_frames == m2.memory.nframes - 1


def test_run_is_deterministic_for_a_seed():
    """Random replacement draws from a seeded generator: same seed, same hit/miss sequence;
    the generator does change with the seed."""
    def misses(seed):
        m = Machine("pentium-133", seed=seed, memory_bytes=8 * MB,
                    tlbs=[dict(entries=4, ways=4, page_size=4096, policy="random")])
        a = m.new_space()
        for i in range(8):
            m.map(a, 0x1000 * i, m.alloc_page(), "rwx")
        m.switch(a)
        rng = np.random.default_rng(0)
        r = m.run(O.access("r", rng.integers(0, 8, 400) * 0x1000), record=True)
        return tuple(r.records[:, core.R_TLB])
    assert misses(7) == misses(7)
    assert len({misses(s) for s in range(6)}) > 1


def test_other_format_uses_base_page_tlbs():
    """A profile's base-page TLBs hold another format's base pages (small format: 256 B), so
    translations are cached; without that every access would miss."""
    m = Machine("pentium-133", fmt="small", memory_bytes=4096, caches=False)
    assert [t["page_size"] for t in m.tlb_config] == [256, 256, 4 * MB]
    a = m.new_space()
    m.map(a, 0x100, m.alloc_page(), "rw")
    m.switch(a)
    assert [m.step("r", 0x104).tlb for _ in range(2)] == ["miss", "hit"]


def test_cycle_total_is_the_sum_of_categories():
    """Every cycle is charged to the category of its cause (DESIGN §2): a charge op to the
    category it names, instructions to theirs, the exception of a fault to `fault`, the CR3
    load to `space_switch` -- and a run's total is exactly what its ops added to the
    categories (nothing counted in the total that no category holds, or twice)."""
    m = Machine("pentium-133", memory_bytes=8 * MB)
    a = m.new_space()
    m.map(a, 0x1000, m.alloc_page(), "rw")
    m.switch(a)
    with m.mode("kernel"):
        r = m.run(O.concat(O.access("r", [0x1000, 0x5000]), O.charge("ipc", 40),
                           O.physical("r", [0x20000])))
    m.instructions(100, "server")
    c = m.by_category()
    assert (c["ipc"], c["server"], c["fault"], c["space_switch"]) == \
        (40, 100 * m.cpi, m.profile["exception_cycles"], m.profile["page_table_switch_cycles"])
    assert r.faults == 1 and c["tlb_walk"] > 0 and c["cache_miss"] > 0
    assert r.cycles == sum(v for k, v in c.items() if k not in ("space_switch", "server"))


def test_a_resolved_fault_is_retried():
    """A fault handed to on_fault is retried once the handler has mapped the page, as hardware
    re-executes the instruction: the retry walks again and succeeds; both deliveries count."""
    m = Machine("pentium-133", memory_bytes=8 * MB)
    a = m.new_space()
    m.switch(a)
    seen = []

    def pager(f):
        seen.append((f.space, f.va, f.kind, f.reason, f.index))
        m.map(f.space, f.va & ~0xFFF, m.alloc_page(), "rw")
        return True

    r = m.run(O.access("w", [0x3000, 0x3008, 0x7010]), on_fault=pager, record=True)
    assert seen == [(a, 0x3000, "w", "not-present", 0), (a, 0x7010, "w", "not-present", 2)]
    assert (r.accesses, r.faults, r.hits, r.misses) == (5, 2, 1, 4)
    assert [int(x) for x in r.records[:, core.R_TLB]] == [1, 0, 1]      # the retries' records
    assert m.translate(a, 0x7010) is not None


def test_unresolved_fault_raises_page_fault():
    """A handler that declines (returns False) gets PageFault with the fault's details."""
    m = Machine("pentium-133", memory_bytes=8 * MB)
    a = m.new_space()
    m.map(a, 0x1000, m.alloc_page(), "r")
    m.switch(a)
    with pytest.raises(PageFault) as e:
        m.run(O.access("w", [0x1000]), on_fault=lambda f: False)
    assert (e.value.fault.reason, e.value.fault.kind, e.value.fault.va) == ("protection", "w", 0x1000)


def test_sv39_gigapage_leaf_at_the_root():
    """Sv39: an entry with R, W or X set is a leaf at any level.  A root-level leaf maps 1 GB
    with one walk reference; the 2 MB TLB of x86-64-modern holds it as 2 MB splinters.  The
    reference MMU agrees access by access."""
    from reference_mmu import RefMMU
    m = Machine("x86-64-modern", fmt="sv39", memory_bytes=8 * MB)
    a = m.new_space()
    root = m.root(a)
    f = m.fmt
    m.memory.words[(root + 1 * 8) // 4] = f.p_mask | f.r_mask | f.w_mask | f.x_mask   # va 1 GB -> pa 0
    ref = RefMMU.like(m)
    ref.add_space(a, root)
    m.switch(a)
    vas = [0x40123456, 0x40123460, 0x40323456, 0x40123000, 0x40700000]
    r = m.run(O.access("r", vas), record=True)
    want = ref.run([("switch", a)] + [("r", v) for v in vas])[1:]
    got = [(int(x[core.R_PADDR]), "miss" if x[core.R_TLB] else "hit", int(x[core.R_WALK]), int(x[core.R_CYCLES]))
           for x in r.records]
    assert got == [(w.paddr, w.tlb, w.walk_refs, w.cycles) for w in want]
    assert [g[:3] for g in got] == [(0x123456, "miss", 1), (0x123460, "hit", 0), (0x323456, "miss", 1),
                                    (0x123000, "hit", 0), (0x700000, "miss", 1)]


def test_pentium_l1_does_not_allocate_on_a_write_miss():
    """The Pentium's data cache allocates a line on a read miss only: a store to a line not in
    L1 drains to L2 (write_miss_cycles, here 32) and leaves L1 as it was, so a second store to
    the line misses again, while a read brings the line in and later stores hit.  The
    present-day profile allocates on writes (symptom guarded: a copy's destination counted as
    cached, making the Pentium's copies twice as fast as lmbench measured them)."""
    m = Machine("pentium-133", memory_bytes=16 * MB)
    a = m.new_space()
    pa = m.alloc_page()
    m.map(a, 0x1000, pa, "rw")
    m.switch(a)
    m.step("r", 0x1F00)                             # TLB filled; line 0x1F00 cached
    wmiss = m.config()["costs"]["memory"]           # the cold line misses L2 as well
    assert m.step("w", 0x1000).cycles == 32 + wmiss
    assert m.step("w", 0x1000).cycles == 32         # still not in L1; L2 has it now
    assert m.step("r", 0x1000).cycles == m.cache_config[2]["latency"]      # read allocates
    assert m.step("w", 0x1004).cycles == 0
    modern = Machine("x86-64-modern", memory_bytes=16 * MB)
    b = modern.new_space()
    modern.map(b, 0x1000, modern.alloc_page(), "rw")
    modern.switch(b)
    modern.step("r", 0x1F00)
    modern.step("w", 0x1000)
    assert modern.step("w", 0x1000).cycles == 0     # write-allocate: the line is in L1


def test_a_large_pages_frame_is_aligned_to_its_size():
    """x86-32 PSE: a page-directory entry with PS maps a 4 MB page whose frame is bits 31:22
    of the entry; bit 12 is the PAT bit, not an address bit (Intel SDM Vol. 3A §4.3,
    table 4-4).  A 4 MB page with PAT set still starts at its 4 MB-aligned frame, in the
    hardware walk as in the software lookup."""
    m = Machine("pentium-133", memory_bytes=16 * MB)
    a = m.new_space()
    m.map(a, 0x00400000, 0x800000, "rw", large=True)
    pde = m.root(a) + (0x00400000 >> 22) * 4
    m.memory.words[pde >> 2] |= 1 << 12                 # PAT
    m.switch(a)
    assert m.step("r", 0x00401234).paddr == 0x801234
    assert m.tables.lookup(m.root(a), 0x00401234)[0] == 0x801234


def test_instructions_are_charged_at_the_profiles_cycles_per_instruction():
    """Kernel paths charge instructions at the CPU profile's CPI (DESIGN: costs come from
    the profile): 100 instructions on a 0.5-CPI core are 50 cycles, all in the category."""
    m = Machine("x86-64-modern", memory_bytes=8 * MB)
    assert m.cpi == 0.5
    with m.measure() as r:
        m.instructions(100, "kernel")
    assert r.cycles == r.by_category["kernel"] == 50


def test_a_destroyed_spaces_tlb_entries_do_not_outlive_it():
    """destroy_space drops the space's TLB entries: on a tagged TLB a new space that reuses
    the id (and so the tag) must walk its own tables, not hit the dead space's translation
    (symptom guarded: the new space read the old space's frame)."""
    m = Machine("x86-64-modern", memory_bytes=8 * MB)
    keep = m.new_space()
    a = m.new_space()
    old, new = m.alloc_page(), m.alloc_page()
    m.map(a, 0x1000, old, "rw")
    m.switch(a)
    m.step("r", 0x1000)
    m.switch(keep)
    m.destroy_space(a)
    assert not (m.te[:, core.TE_VALID].astype(bool) & (m.te[:, core.TE_OWNER] == a)).any()
    b = m.new_space()
    assert b == a                                   # the id (the TLB tag) is reused
    m.map(b, 0x1000, new, "rw")
    m.switch(b)
    s = m.step("r", 0x1000)
    assert (s.tlb, s.paddr) == ("miss", new)


def test_x86_64_pages_mapped_without_x_carry_nx_and_do_not_execute():
    """x86-64 has a no-execute bit (bit 63, Intel SDM Vol. 3A §4.5): a page mapped without
    'x' carries NX and an instruction fetch from it is a protection fault; a page mapped
    with 'x' has NX clear and executes."""
    m = Machine("x86-64-modern", memory_bytes=8 * MB)
    a = m.new_space()
    m.map(a, 0x1000, m.alloc_page(), "rw")
    m.map(a, 0x2000, m.alloc_page(), "rx")
    root = m.root(a)
    assert m.tables.lookup(root, 0x1000)[3] >> 63 == 1
    assert m.tables.lookup(root, 0x2000)[3] >> 63 == 0
    m.switch(a)
    assert m.step("x", 0x1000).fault == "protection"
    assert m.step("x", 0x2000).fault is None


def test_protect_keeps_a_global_pages_g_bit():
    """protect changes a page's rights only: frame, size and the global bit stay (a kernel
    page made read-only stays global and its TLB entry still survives CR3 loads)."""
    m = Machine("x86-64-modern", tagged=False, memory_bytes=8 * MB)
    a = m.new_space()
    m.map(a, 0x1000, 0x10000, "rw", global_=True)
    m.protect(a, 0x1000, "r")
    e = m.tables.lookup(m.root(a), 0x1000)[3]
    assert e & (1 << 8) and not e & 2                  # G kept, R/W cleared
    m.switch(a)
    m.step("r", 0x1000)
    hit = m.te[:, core.TE_VALID].astype(bool) & (m.te[:, core.TE_GLOBAL] != 0)
    assert hit.sum() == 1


def test_a_freed_frame_is_the_next_one_allocated():
    """Frames are allocated lowest-first (engine/memory.py): a frame given back is handed
    out again before any higher one -- freed memory is never lost to the allocator."""
    m = Machine("pentium-133", memory_bytes=8 * MB)
    a, b, c = m.alloc_page(), m.alloc_page(), m.alloc_page()
    assert a < b < c
    m.free_page(a)
    assert m.alloc_page() == a
    assert m.alloc_page() > c


def test_unmap_drops_a_global_entry_filled_by_another_space():
    """invlpg drops the page's entry global or not, whichever space filled it: a global
    entry filled in space a answers in space b too, so unmapping the page in b must drop
    it (symptom guarded: b still reached the frame after the unmap)."""
    m = Machine("x86-64-modern", tagged=False, memory_bytes=8 * MB)
    a, b = m.new_space(), m.new_space()
    for s in (a, b):
        m.map(s, 0x1000, 0x10000, "rw", global_=True)
    m.switch(a)
    m.step("r", 0x1000)                           # the global entry, filled by a
    m.switch(b)
    assert m.step("r", 0x1000).tlb == "hit"       # answers in b too
    m.unmap(b, 0x1000)
    s = m.step("r", 0x1000)
    assert (s.tlb, s.fault) == ("miss", "not-present")


def test_a_format_with_uneven_levels_walks_each_level_by_its_own_bits():
    """Each level of a walk takes its own index bits (pte.Format.bits, root first): with 2
    root bits and 6 leaf bits over 256-byte pages, va 0x4512 is root entry 1, leaf entry 5,
    offset 0x12 (OSTEP-style formats need not split the bits evenly)."""
    from engine.pte import small_format
    m = Machine("pentium-133", fmt=small_format(8, (2, 6), "uneven"), memory_bytes=16384,
                caches=False)
    a = m.new_space()
    d = m.alloc_page()
    m.map(a, 0x4500, d, "rw")
    m.switch(a)
    s = m.step("r", 0x4512)
    assert (s.fault, s.paddr, s.walk_refs) == (None, d + 0x12, 2)
    assert [w.index for w in s.walk] == [1, 5]
