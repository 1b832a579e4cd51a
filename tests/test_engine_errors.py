"""Bad input gets a typed engine error whose message names the bad value and what is allowed
(project standard); nothing is silently clamped and nothing hangs."""
import numpy as np
import pytest

import engine
from engine import core, ops as O
from engine.errors import (AddressError, ConfigError, EngineError, MappingError, ProfileError)

MB = 1 << 20


def tlb(entries=64, ways=4, **kw):
    return [dict(name="dtlb", entries=entries, ways=ways, page_size=4096, policy="lru", **kw)]


def small_machine(**kw):
    return engine.Machine("pentium-133", memory_bytes=8 * MB, **kw)


@pytest.mark.parametrize("geometry, words", [
    (dict(entries=0, ways=1), ["entries 0", "positive integer"]),
    (dict(entries=8, ways=0), ["ways 0", "positive integer"]),
    (dict(entries=-4, ways=1), ["entries -4", "positive integer"]),
    (dict(entries=12, ways=4), ["3 sets", "power of two"]),
    (dict(entries=10, ways=4), ["ways 4", "entries 10"]),
    (dict(entries=8, ways=3), ["ways 3", "entries 8"]),
    (dict(entries=64, ways=4, policy="plru"), ["'plru'", "lru, fifo, random"]),
    (dict(entries=64, ways=4, kind="code"), ["'code'", "data, instr, unified"]),
    (dict(entries=64, ways=4, page_size=3000), ["page size 3000", "power of two"]),
    (dict(entries=64), ["'ways' missing"]),
])
def test_bad_tlb_geometry(geometry, words):
    """TLB geometry: sets (entries / ways) must be a positive power of two, ways must divide
    entries, the policy and kind must be known; the message names the value and the rule."""
    t = dict(name="dtlb", page_size=4096, policy="lru")
    t.update(geometry)
    with pytest.raises(ConfigError) as e:
        small_machine(tlbs=[t])
    for w in words:
        assert w in str(e.value)
    assert "dtlb" in str(e.value)


@pytest.mark.parametrize("cache, words", [
    (dict(size=0, line=32, ways=2), ["size 0", "positive integer"]),
    (dict(size=8192, line=24, ways=2), ["line 24", "power of two"]),
    (dict(size=3 * 1024, line=32, ways=1), ["96 sets", "power of two"]),
    (dict(size=8192, line=32, ways=2, kind="victim"), ["'victim'", "data, instr, unified"]),
    (dict(size=8192, line=32, ways=2, level=3), ["level 3", "1, 2"]),
    (dict(size=8192, line=32, ways=2, latency=-1), ["latency -1", "non-negative"]),
    (dict(line=32, ways=2), ["'size' missing"]),
])
def test_bad_cache_geometry(cache, words):
    """Cache geometry is validated like the TLB's."""
    c = dict(name="l1d", kind="data")
    c.update(cache)
    with pytest.raises(ConfigError) as e:
        small_machine(caches=[c])
    for w in words:
        assert w in str(e.value)


def test_two_caches_in_one_role():
    """Two level-1 data caches would silently shadow each other: refused."""
    c = dict(size=8192, line=32, ways=2, kind="data")
    with pytest.raises(ConfigError, match="second l1d cache"):
        small_machine(caches=[dict(c, name="a"), dict(c, name="b")])


def test_unknown_profile_and_format():
    """Unknown CPU profiles and page-table formats name the allowed ones."""
    with pytest.raises(ProfileError) as e:
        engine.Machine("pentium-166")
    assert "'pentium-166'" in str(e.value) and "pentium-133" in str(e.value)
    with pytest.raises(ConfigError) as e:
        engine.Machine("pentium-133", fmt="sv48")
    assert "'sv48'" in str(e.value) and "x86-32" in str(e.value) and "sv39" in str(e.value)


def test_bad_seed_and_memory():
    """A negative seed or a memory size that is not a whole number of frames is a ConfigError
    naming it."""
    with pytest.raises(ConfigError, match="seed -1"):
        small_machine(seed=-1)
    with pytest.raises(ConfigError, match="memory size 5000"):
        engine.Machine("pentium-133", memory_bytes=5000)


@pytest.fixture
def m():
    m = small_machine()
    for _ in range(4):
        m.new_space()
    return m


def test_map_a_mapped_page(m):
    """Mapping a mapped page is an error naming the address and the space (xv6 style)."""
    m.map(3, 0x7000, m.alloc_page())
    with pytest.raises(MappingError, match=r"^map: va 0x7000 already mapped in space 3$"):
        m.map(3, 0x7000, m.alloc_page())


def test_unaligned_maps(m):
    """map needs va and pa aligned to the page size (4 MB for a large page): the error names the
    address and the size."""
    with pytest.raises(MappingError, match="va 0x7001 is not aligned to the page size 0x1000"):
        m.map(0, 0x7001, m.alloc_page())
    with pytest.raises(MappingError, match="pa 0x2010 is not aligned to the page size 0x1000"):
        m.map(0, 0x7000, 0x2010)
    with pytest.raises(MappingError, match="va 0x401000 is not aligned to the page size 0x400000"):
        m.map(0, 0x401000, 0x400000, large=True)


def test_overlapping_maps(m):
    """A 4 MB page over 4 KB pages, or a 4 KB page inside a 4 MB page, overlap."""
    m.map(0, 0x401000, m.alloc_page())
    with pytest.raises(MappingError, match="large page at va 0x400000 overlaps pages mapped in space 0"):
        m.map(0, 0x400000, 0x400000, large=True)
    m.map(1, 0x800000, 0x400000, large=True)
    with pytest.raises(MappingError, match="va 0x801000 already mapped in space 1"):
        m.map(1, 0x801000, m.alloc_page())


def test_failed_map_changes_nothing(m):
    """Contract of every mutator: the state is unchanged on error."""
    m.map(0, 0x401000, m.alloc_page())
    before = m.memory.words.copy(), m.memory.free_frames
    with pytest.raises(MappingError):
        m.map(0, 0x400000, 0x400000, large=True)
    assert np.array_equal(before[0], m.memory.words) and before[1] == m.memory.free_frames


def test_addresses_out_of_range(m):
    """va outside the format's virtual range, pa outside physical memory."""
    with pytest.raises(AddressError, match=r"va 0x100000000 outside the 32-bit x86-32 address space"):
        m.map(0, 1 << 32, m.alloc_page())
    with pytest.raises(MappingError, match=r"pa 0x800000 \(\+0x1000\) outside physical memory \(0..0x800000\)"):
        m.map(0, 0x1000, 8 * MB)
    with pytest.raises(MappingError, match="pa -0x1000"):
        m.map(0, 0x1000, -0x1000)
    with pytest.raises(AddressError, match="va 0x100000000 outside the 32-bit"):
        m.run(O.access("r", [1 << 32]))


def test_unmap_protect_unmapped(m):
    """unmap and protect of a page that is not mapped name the call, the address and the space."""
    with pytest.raises(MappingError, match="unmap: va 0x5000 not mapped in space 2"):
        m.unmap(2, 0x5000)
    with pytest.raises(MappingError, match="protect: va 0x5000 not mapped in space 2"):
        m.protect(2, 0x5000, "r")


def test_unknown_space_and_perms(m):
    """A space id that does not exist and permissions outside r, rw, rx, rwx are refused by name,
    in Python and in an op batch."""
    with pytest.raises(MappingError, match="map: space 9 does not exist"):
        m.map(9, 0x1000, m.alloc_page())
    with pytest.raises(MappingError, match="switch: space 9 does not exist"):
        m.switch(9)
    with pytest.raises(ConfigError, match="permissions 'rq' not allowed; use one of r, rw, rx, rwx"):
        m.map(0, 0x1000, m.alloc_page(), "rq")
    with pytest.raises(MappingError, match="op 0: space 9 does not exist"):
        m.run(O.switch(9))


def test_access_without_a_current_space(m):
    """Before the first switch there is no address space to translate in."""
    with pytest.raises(MappingError, match="access at va 0x1000 with no current space"):
        m.run(O.access("r", [0x1000]))
    with pytest.raises(MappingError, match="no current space"):
        m.step("r", 0x1000)


def test_bad_categories_and_ops(m):
    """Cycle categories and op codes are checked, in Python and in the jitted loop alike."""
    with pytest.raises(ConfigError, match="cycle category 'sleep' unknown; allowed: user, kernel"):
        m.charge("sleep", 5)
    with pytest.raises(ConfigError, match="cycles -5 must be >= 0"):
        m.charge("user", -5)
    with pytest.raises(ConfigError, match="cycle category 99 out of range 0..12"):
        m.run(np.array([(99 << core.OP_SHIFT) | core.OP_MODE], np.int64), check=False)
    with pytest.raises(ConfigError, match="cycle category 77 out of range"):
        m.run(np.array([(((5 << 8) | 77) << core.OP_SHIFT) | core.OP_CHARGE], np.int64), check=False)
    with pytest.raises(ConfigError, match="unknown op code 200"):
        m.run(np.array([200], np.int64), check=False)
    with pytest.raises(ConfigError, match="unknown op code 200"):
        m.run(np.array([200], np.int64))
    with pytest.raises(ConfigError, match="access kind 'q'; allowed: r, w, x"):
        m.step("q", 0)


@pytest.mark.parametrize("ops", [np.array([1.7, 2.2]), [1.5], 5, np.zeros((2, 2), np.int64)])
def test_ops_that_are_not_integer_op_words_are_refused(m, ops):
    """An op batch is a 1-d array of integer op words: floats are not truncated into ops and a
    scalar is not taken for a batch of one -- nothing runs that nobody wrote."""
    before = m.cycles
    with pytest.raises(ConfigError, match="ops must be a 1-d array of integer op words"):
        m.run(ops)
    assert m.cycles == before


def test_small_space_bounds():
    """A small space holds only its size: mapping beyond it is refused."""
    m = small_machine(tagged=False, small_spaces=True)
    s = m.new_space(small=True)
    with pytest.raises(AddressError, match=r"va 0x400000 outside small space 0 \(allowed 0..0x400000\)"):
        m.map(s, 0x400000, m.alloc_page())
    with pytest.raises(ConfigError, match="small space size 12288 must be a power of two >= 4 MB"):
        m.new_space(small=True, small_size=12288)
    with pytest.raises(ConfigError, match="cannot emulate small address spaces"):
        engine.Machine("x86-64-modern", small_spaces=True)


def test_attach_space_checks_the_root():
    """attach_space takes a page-aligned root inside physical memory: anything else is an
    AddressError naming it."""
    m = small_machine()
    with pytest.raises(AddressError, match="root 0x1234 must be a page-aligned"):
        m.attach_space(0x1234)
    with pytest.raises(AddressError, match="root 0x800000 must be a page-aligned"):
        m.attach_space(8 * MB)


def test_unresolved_fault_does_not_hang(m):
    """A page-fault handler that claims success without mapping anything would retry forever:
    after Machine.MAX_RETRIES deliveries of the same access the machine gives up."""
    m.switch(0)
    seen = []
    with pytest.raises(engine.PageFault, match="not-present fault: r at va 0x9000 in space 0"):
        m.run(O.access("r", [0x9000]), on_fault=lambda f: seen.append(f) or True)
    assert len(seen) == engine.Machine.MAX_RETRIES
    assert m.stats()["faults"][0] == engine.Machine.MAX_RETRIES + 1


def test_every_error_is_an_engine_error():
    """Every engine error derives from EngineError, so a caller can catch the engine's errors as
    one."""
    for cls in (ConfigError, ProfileError, MappingError, AddressError, engine.OutOfFrames,
                engine.TraceError, engine.PageFault, engine.BusError):
        assert issubclass(cls, EngineError)


def test_op_builders_check_kinds():
    """The op builders refuse kinds that would encode some other op."""
    with pytest.raises(ConfigError, match="access kind 3; allowed: 0 \\(r\\), 1 \\(w\\), 2 \\(x\\)"):
        O.accesses([0, 3], [0x1000, 0x2000])
    with pytest.raises(ConfigError, match="access kind 'q'; allowed: r, w, x"):
        O.physical("q", [0x1000])
    with pytest.raises(AddressError, match="demap: va 0x1000000000000 outside"):
        O.demap(0, 1 << 48)


def test_small_space_slices_are_reused_after_destroy():
    """destroy_space gives a small space's slice of the 512 MB region back: creating and
    destroying small spaces forever never fills the region."""
    from engine import Machine
    m = Machine("pentium-133")
    first = None
    for _ in range(300):                     # 300 x 4 MB > 512 MB: would fill without reuse
        s = m.new_space(small=True)
        first = first or m.small_base(s)
        m.destroy_space(s)
    s = m.new_space(small=True)
    assert m.small_base(s) == first


def test_a_new_small_space_takes_the_lowest_freed_slice():
    """A new small space reuses the lowest freed slice of its size (deterministic placement,
    whatever order the spaces were destroyed in)."""
    from engine import Machine
    m = Machine("pentium-133")
    s = [m.new_space(small=True) for _ in range(3)]
    bases = [m.small_base(x)[0] for x in s]
    m.destroy_space(s[2])
    m.destroy_space(s[0])
    assert m.small_base(m.new_space(small=True))[0] == bases[0]
    assert m.small_base(m.new_space(small=True))[0] == bases[2]
