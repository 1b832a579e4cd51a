"""Mach virtual memory (Rashid et al. 1987; the lecture's vm_* interface): zero fill,
protection and maximum protection, inheritance, copy-on-write with frames counted."""
import pytest
from hypothesis import given, settings, strategies as st

from lab.mach import (VMProt, VMInherit, KernInvalidAddress, KernProtectionFailure,
                      KernNoSpace, KernInvalidArgument)
from mach_helpers import kernel


@pytest.fixture
def mk():
    return kernel()


def test_vm_allocate_is_zero_filled_on_demand(mk):
    """vm_allocate: memory filled with zeros on demand -- no frame until the first touch."""
    m, k = mk
    a = k.task_create(name="a")
    frames = k.object_frames()
    addr = k.vm_allocate(a, 0, 3 * k.page)
    assert k.object_frames() == frames and m.translate(a.space, addr) is None
    assert k.user_read(a, addr + k.page, 16) == bytes(16)
    assert k.object_frames() == frames + 1
    assert k.vm_statistics(a).zero_fill_count >= 1
    with pytest.raises(KernNoSpace):
        k.vm_allocate(a, addr, k.page, anywhere=False)
    with pytest.raises(KernInvalidArgument):
        k.vm_allocate(a, 0, 0)


def test_vm_protect_beyond_maximum_fails_and_changes_nothing(mk):
    """vm_protect may not raise the current protection above the maximum protection:
    KERN_PROTECTION_FAILURE, and the map is left exactly as it was."""
    m, k = mk
    a = k.task_create(name="a")
    addr = k.vm_allocate(a, 0, 4 * k.page)
    k.user_write(a, addr, b"w")
    k.vm_protect(a, addr + 2 * k.page, 2 * k.page, True, VMProt.READ)   # set_max
    before = k.vm_regions(a)
    with pytest.raises(KernProtectionFailure):
        k.vm_protect(a, addr, 4 * k.page, False, VMProt.READ | VMProt.WRITE)
    assert k.vm_regions(a) == before
    k.user_write(a, addr + 1, b"still writable")
    with pytest.raises(KernProtectionFailure):
        k.user_write(a, addr + 2 * k.page, b"x")
    k.vm_protect(a, addr, k.page, False, VMProt.READ)
    with pytest.raises(KernProtectionFailure):
        k.user_write(a, addr, b"x")
    assert m.events.find("fault_error", error="KERN_PROTECTION_FAILURE")


@pytest.mark.parametrize("call", ["deallocate", "protect", "inherit", "read", "write", "copy"])
def test_vm_calls_on_unallocated_ranges(mk, call):
    """Every vm_* call on a range that is not entirely allocated fails with
    KERN_INVALID_ADDRESS and changes nothing."""
    m, k = mk
    a = k.task_create(name="a")
    addr = k.vm_allocate(a, 0, 2 * k.page)
    k.user_write(a, addr, b"data")
    hole = addr + 8 * k.page
    before = k.vm_regions(a)
    calls = {"deallocate": lambda: k.vm_deallocate(a, addr, 4 * k.page),
             "protect": lambda: k.vm_protect(a, hole, k.page, False, VMProt.READ),
             "inherit": lambda: k.vm_inherit(a, addr + k.page, 2 * k.page, VMInherit.SHARE),
             "read": lambda: k.vm_read(a, hole, 16),
             "write": lambda: k.vm_write(a, hole, addr, k.page),
             "copy": lambda: k.vm_copy(a, addr, 2 * k.page, hole)}
    with pytest.raises(KernInvalidAddress):
        calls[call]()
    assert k.vm_regions(a) == before
    assert k.user_read(a, addr, 4) == b"data"


def test_vm_copy_shares_frames_until_the_first_write(mk):
    """vm_copy is copy-on-write: no frame is copied by the call; each side's first write to a
    page costs one frame; each side sees its own writes."""
    m, k = mk
    a = k.task_create(name="a")
    src = k.vm_allocate(a, 0, 4 * k.page)
    dst = k.vm_allocate(a, 0, 4 * k.page)
    for i in range(4):
        k.user_write(a, src + i * k.page, bytes([i + 1]) * 8)
    frames = k.object_frames()
    k.vm_copy(a, src, 4 * k.page, dst)
    assert k.object_frames() == frames - 0     # dst's old (untouched) object had no frames
    assert k.user_read(a, dst + 3 * k.page, 8) == bytes([4]) * 8
    assert k.object_frames() == frames
    k.user_write(a, dst, b"D")
    assert k.object_frames() == frames + 1
    k.user_write(a, src + k.page, b"S")
    assert k.object_frames() == frames + 2
    assert k.user_read(a, src, 1) == b"\x01" and k.user_read(a, dst, 1) == b"D"
    assert k.user_read(a, dst + k.page, 1) == b"\x02" and k.user_read(a, src + k.page, 1) == b"S"
    assert k.stats["cow_faults"] == 2


def test_vm_copy_of_overlapping_ranges_copies_the_source_as_it_was(mk):
    """vm_copy takes the source (vm_map_copyin) before it overwrites the destination, so the
    ranges may overlap, either way round: like memmove, page by page."""
    m, k = mk
    a = k.task_create(name="a")
    base = k.vm_allocate(a, 0, 6 * k.page)
    for i in range(6):
        k.user_write(a, base + i * k.page, bytes([i + 1]) * 8)
    k.vm_copy(a, base, 4 * k.page, base + 2 * k.page)          # forward: pages 0-3 -> 2-5
    assert [k.user_read(a, base + i * k.page, 1)[0] for i in range(6)] == [1, 2, 1, 2, 3, 4]
    k.vm_copy(a, base + k.page, 4 * k.page, base)               # backward: pages 1-4 -> 0-3
    assert [k.user_read(a, base + i * k.page, 1)[0] for i in range(6)] == [2, 1, 2, 3, 3, 4]


def test_inheritance_copy_share_none(mk):
    """task_create with inherited memory: COPY gives the child a copy-on-write copy (frames
    shared until a write; each sees its own writes), SHARE shares the memory both ways,
    NONE leaves a hole."""
    m, k = mk
    p = k.task_create(name="parent")
    cp = k.vm_allocate(p, 0, 2 * k.page)
    sh = k.vm_allocate(p, 0, k.page)
    no = k.vm_allocate(p, 0, k.page)
    k.vm_inherit(p, sh, k.page, VMInherit.SHARE)
    k.vm_inherit(p, no, k.page, VMInherit.NONE)
    k.user_write(p, cp, b"parent")
    k.user_write(p, cp + k.page, b"second")
    k.user_write(p, sh, b"shared")
    frames = k.object_frames()
    c = k.task_create(parent=p, inherit_memory=True, name="child")
    assert k.object_frames() == frames
    assert k.user_read(c, cp, 6) == b"parent"
    k.user_write(c, cp, b"CHILD!")
    assert k.object_frames() == frames + 1
    assert k.user_read(p, cp, 6) == b"parent"
    k.user_write(p, cp + k.page, b"PARENT")
    assert k.user_read(c, cp + k.page, 6) == b"second"
    k.user_write(c, sh, b"fromch")
    assert k.user_read(p, sh, 6) == b"fromch"
    with pytest.raises(KernInvalidAddress):
        k.user_read(c, no, 1)


def test_vm_read_and_vm_write_between_tasks(mk):
    """vm_read makes another task's data appear in the caller (copy-on-write); vm_write
    writes the caller's data into another task, whole pages only (vm_map_copy_overwrite
    refuses anything else: KERN_INVALID_ARGUMENT, nothing written)."""
    m, k = mk
    a, b = k.task_create(name="a"), k.task_create(name="b")
    x = k.vm_allocate(a, 0, k.page)
    k.user_write(a, x + 100, b"secret")
    got, n = k.vm_read(a, x + 100, 6, caller=b)
    assert k.user_read(b, got, 6) == b"secret"
    y = k.vm_allocate(b, 0, k.page)
    k.user_write(b, y, b"HELLO")
    for bad in [(x, y, 5), (x + 1, y, k.page), (x, y + 8, k.page)]:
        with pytest.raises(KernInvalidArgument, match="not page aligned"):
            k.vm_write(a, *bad, caller=b)
    assert k.user_read(a, x, 5) == b"\0" * 5
    k.vm_write(a, x, y, k.page, caller=b)
    assert k.user_read(a, x, 5) == b"HELLO"
    regs = k.vm_regions(a)
    assert regs[0].address == x and regs[0].protection == VMProt.DEFAULT


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["p", "c"]), st.integers(0, 3), st.integers(0, 255)),
                min_size=1, max_size=12))
def test_fork_copy_on_write_matches_a_model(writes):
    """After task creation with COPY inheritance, each task sees exactly its own writes (a
    byte-for-byte model), and frames used = frames before + distinct (task, page) written."""
    m, k = kernel(8)
    p = k.task_create(name="p")
    base = k.vm_allocate(p, 0, 4 * k.page)
    for i in range(4):
        k.user_write(p, base + i * k.page, bytes([i]))
    c = k.task_create(parent=p, inherit_memory=True, name="c")
    model = {"p": [i for i in range(4)], "c": [i for i in range(4)]}
    frames = k.object_frames()
    written = set()
    for who, page, val in writes:
        t = p if who == "p" else c
        k.user_write(t, base + page * k.page, bytes([val]))
        model[who][page] = val
        written.add((who, page))
    for who, t in (("p", p), ("c", c)):
        for i in range(4):
            assert k.user_read(t, base + i * k.page, 1) == bytes([model[who][i]])
    assert k.object_frames() == frames + len(written)


def test_vm_protect_may_raise_the_current_protection_up_to_the_maximum(mk):
    """vm_protect checks the new protection against the *maximum* protection, not the
    current one: a region made read-only may be made writable again while its maximum
    allows it (Rashid et al. 1987 §3; Mach's vm_map_protect); only a lowered maximum
    forbids it."""
    m, k = mk
    a = k.task_create(name="a")
    addr = k.vm_allocate(a, 0, 2 * k.page)
    k.user_write(a, addr, b"one")
    k.vm_protect(a, addr, 2 * k.page, False, VMProt.READ)
    with pytest.raises(KernProtectionFailure):
        k.user_write(a, addr, b"x")
    k.vm_protect(a, addr, 2 * k.page, False, VMProt.READ | VMProt.WRITE)
    k.user_write(a, addr, b"two")
    assert k.user_read(a, addr, 3) == b"two"
    r = k.vm_regions(a)[0]
    assert (r.protection, r.max_protection) == (VMProt.READ | VMProt.WRITE, VMProt.ALL)
    k.vm_protect(a, addr, 2 * k.page, True, VMProt.READ)
    with pytest.raises(KernProtectionFailure):
        k.vm_protect(a, addr, 2 * k.page, False, VMProt.READ | VMProt.WRITE)


def test_copying_shared_memory_keeps_it_shared(mk):
    """Copying memory that two tasks share (VM_INHERIT_SHARE) must not break the sharing:
    the copy is taken by a delayed copy object (Mach's copy strategy for shared objects),
    not by marking the source entry needs_copy -- a later write by either sharer is seen by
    the other, while the copy keeps the contents of the moment it was made."""
    m, k = mk
    p = k.task_create(name="parent")
    sh = k.vm_allocate(p, 0, k.page)
    k.vm_inherit(p, sh, k.page, VMInherit.SHARE)
    k.user_write(p, sh, b"before")
    c = k.task_create(parent=p, inherit_memory=True, name="child")
    r = k.task_create(name="reader")
    got, _ = k.vm_read(p, sh, k.page, caller=r)
    k.user_write(p, sh, b"parent")
    assert k.user_read(c, sh, 6) == b"parent"
    k.user_write(c, sh, b"child!")
    assert k.user_read(p, sh, 6) == b"child!"
    assert k.user_read(r, got, 6) == b"before"


def test_every_copy_of_shared_memory_keeps_its_own_moment(mk):
    """Successive copies of memory the source shares are delayed copies (copy objects):
    each newer copy object is put between the source and the older ones ("older copies now
    read through the new one"), so a later write to the source pushes the old page into
    the newest copy and every copy -- the older ones included -- keeps what the memory held
    when it was made."""
    m, k = mk
    p = k.task_create(name="parent")
    sh = k.vm_allocate(p, 0, 2 * k.page)
    k.vm_inherit(p, sh, 2 * k.page, VMInherit.SHARE)
    k.user_write(p, sh, b"first")
    k.user_write(p, sh + k.page, b"one")
    k.task_create(parent=p, inherit_memory=True, name="child")    # the memory is shared
    r1, r2 = k.task_create(name="r1"), k.task_create(name="r2")
    got1, _ = k.vm_read(p, sh, 2 * k.page, caller=r1)
    k.user_write(p, sh + k.page, b"two")                # the second page changes between
    got2, _ = k.vm_read(p, sh, 2 * k.page, caller=r2)
    k.user_write(p, sh, b"third")                       # the first page after both copies
    assert k.user_read(r1, got1, 5) == b"first" and k.user_read(r2, got2, 5) == b"first"
    assert k.user_read(r1, got1 + k.page, 3) == b"one"
    assert k.user_read(r2, got2 + k.page, 3) == b"two"
    assert k.user_read(p, sh, 5) == b"third"


def test_copy_of_a_shared_shadow_keeps_the_page_the_write_replaces(mk):
    """A copy-on-write fault that copies a page up a shadow chain into an object which has
    a copy object (memory shared, then copied) first gives the copy object the old page:
    the copy must keep what the memory held when it was made, though the page it showed
    came from further down the chain (Young et al. 1987 §4; Mach's vm_fault copy push)."""
    m, k = mk
    p = k.task_create(name="parent")
    x = k.vm_allocate(p, 0, k.page)
    k.user_write(p, x, b"orig")
    c0 = k.task_create(parent=p, inherit_memory=True, name="c0")   # COPY: x is needs_copy
    k.vm_inherit(p, x, k.page, VMInherit.SHARE)
    c1 = k.task_create(parent=p, inherit_memory=True, name="c1")   # p and c1 share a shadow
    r = k.task_create(name="r")
    got, _ = k.vm_read(p, x, k.page, caller=r)                      # a copy of the shadow
    k.user_write(p, x, b"new!")                                     # copied up the chain
    assert k.user_read(c1, x, 4) == b"new!"
    assert k.user_read(r, got, 4) == b"orig"
    assert k.user_read(c0, x, 4) == b"orig"


def test_a_copy_object_page_paged_out_is_not_pushed_again():
    """A copy object keeps the page of the moment of the copy even after that page has been
    paged out (to the default pager): a later write to the source must not push its newer
    contents into the copy over the paged-out page ("off in c.paged_out": the copy has it)."""
    m, k = kernel(max_resident_pages=24)
    p = k.task_create(name="parent")
    sh = k.vm_allocate(p, 0, k.page)
    k.vm_inherit(p, sh, k.page, VMInherit.SHARE)
    k.user_write(p, sh, b"v1")
    k.task_create(parent=p, inherit_memory=True, name="child")     # the memory is shared
    r = k.task_create(name="r")
    got, _ = k.vm_read(p, sh, k.page, caller=r)
    k.user_write(p, sh, b"v2")                          # v1 pushed into the copy object
    filler = k.vm_allocate(p, 0, 64 * k.page)
    for i in range(64):                                 # both pages leave memory
        k.user_write(p, filler + i * k.page, b"f")
    k.run()
    assert k.user_read(p, sh, 2) == b"v2"
    k.user_write(p, sh, b"v3")
    assert k.user_read(r, got, 2) == b"v1"
    assert k.user_read(p, sh, 2) == b"v3"


def test_vm_read_needs_read_permission_only(mk):
    """vm_read of another task's memory needs that memory to be readable -- read-only
    memory can be read; memory with no access fails with KERN_PROTECTION_FAILURE,
    nothing copied (Mach's vm_map_copyin checks VM_PROT_READ)."""
    m, k = mk
    a, b = k.task_create(name="a"), k.task_create(name="b")
    x = k.vm_allocate(a, 0, 2 * k.page)
    k.user_write(a, x, b"readonly")
    k.vm_protect(a, x, k.page, False, VMProt.READ)
    k.vm_protect(a, x + k.page, k.page, False, VMProt.NONE)
    got, _ = k.vm_read(a, x, 8, caller=b)
    assert k.user_read(b, got, 8) == b"readonly"
    before = k.vm_regions(b)
    with pytest.raises(KernProtectionFailure):
        k.vm_read(a, x + k.page, 8, caller=b)
    assert k.vm_regions(b) == before
