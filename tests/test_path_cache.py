"""The simulator's caches of derived data (kept for speed, never for results): a translation
remembered by `Machine.translate`, a kernel path's op batch, a run of several paths as one
batch.  Each must give what the uncached computation gives, and a change of the mappings must
be seen at once."""
import pytest

from engine import Machine, PageFault
from engine.errors import MappingError
from engine.pte import PERM_W
from lab.image import KernelImage
from lab.kprofile import load_kernel_profile

MB = 1 << 20


def _fresh_lookup(m, sid, va):
    r = m.tables.lookup(m.root(sid), va)
    return None if r is None else (r[0], r[1])


def test_translate_sees_unmap_protect_and_remap_at_once():
    """A remembered translation must not outlive its mapping: after unmap the page is gone,
    after protect the new permissions show, after a new map the new frame shows."""
    m = Machine("pentium-133", memory_bytes=16 * MB)
    a = m.new_space()
    pa, pb = m.alloc_page(), m.alloc_page()
    m.map(a, 0x5000, pa, "rw")
    assert m.translate(a, 0x5000)[1] & PERM_W
    assert m.translate(a, 0x5123) == _fresh_lookup(m, a, 0x5123) == (pa + 0x123, m.translate(a, 0x5000)[1])
    assert m.translate(a, 0x5123) == (pa + 0x123, _fresh_lookup(m, a, 0x5000)[1])   # remembered
    m.protect(a, 0x5000, "r")
    assert m.translate(a, 0x5004) == _fresh_lookup(m, a, 0x5004)
    assert not m.translate(a, 0x5004)[1] & PERM_W
    m.unmap(a, 0x5000)
    assert m.translate(a, 0x5004) is None
    m.map(a, 0x5000, pb, "rw")
    assert m.translate(a, 0x5004) == (pb + 4, _fresh_lookup(m, a, 0x5004)[1])


def test_translate_of_a_reused_space_id_is_the_new_spaces():
    """destroy_space frees the id; the next new_space may take it: its translations are its
    own (empty), not the destroyed space's."""
    m = Machine("pentium-133", memory_bytes=16 * MB)
    a = m.new_space()
    m.map(a, 0x7000, m.alloc_page(), "rw")
    assert m.translate(a, 0x7000) is not None
    m.destroy_space(a)
    b = m.new_space()
    assert b == a
    assert m.translate(b, 0x7000) is None
    with pytest.raises(MappingError, match=r"^translate: space 99 does not exist$"):
        m.translate(99, 0x7000)              # a space that does not exist is still an error


def test_translate_matches_the_table_walk_inside_a_large_page():
    """Inside a 4 MB page each 4 KB piece is remembered on its own, with the large page's
    frame offset."""
    m = Machine("pentium-133", memory_bytes=16 * MB)
    a = m.new_space()
    m.map(a, 0xC0000000, 0x400000, "rx", large=True)
    for va in (0xC0000010, 0xC0123456, 0xC0123FFF, 0xC03FF000):
        assert m.translate(a, va) == _fresh_lookup(m, a, va)
        assert m.translate(a, va) == _fresh_lookup(m, a, va)


def _image_machine():
    m = Machine("pentium-133", memory_bytes=16 * MB)
    a = m.new_space()
    img = KernelImage(m, load_kernel_profile("mach"), 0xC0000000, 0xC0400000)
    img.map_into(a)
    m.switch(a)
    return m, a, img


def test_run_many_charges_what_the_paths_charge_one_by_one():
    """Mach's kernel call runs msg_send, ipc_port_lookup, kobject_server and its own path in
    one engine batch: the cycles by category and the machine state afterwards are those of
    running the four paths one after the other."""
    steps = (("msg_send", "ipc"), ("ipc_port_lookup", "ipc"), ("kobject_server", "ipc"),
             ("vm_read", "kernel"))
    m1, _a, img1 = _image_machine()
    m2, _b, img2 = _image_machine()
    for _ in range(3):                       # cold, then warm caches and TLBs
        for name, cat in steps:
            img1.run(name, cat)
        img2.run_many(steps)
        assert m1.by_category() == m2.by_category()
        assert m1.stats() == m2.stats()
    assert m1.st.tolist() == m2.st.tolist()


def test_a_path_run_after_unmap_faults_although_its_batch_is_cached():
    """A path's op batch is cached, not its translations: once the image is unmapped, the next
    run of the same path faults (the engine walks the tables again)."""
    m, a, img = _image_machine()
    img.run("msg_send", "ipc")
    for va, _pa, _perms, _ps in img.place():
        m.unmap(a, va)
    with pytest.raises(PageFault):
        img.run("msg_send", "ipc")


def test_l4_kernel_batches_match_building_them_anew():
    """L4's run_kernel keeps the batch of each (path, TCBs) combination: running a path twice
    charges twice what the first run's batch charges on an equal machine."""
    from lab.l4 import L4Kernel
    k1 = L4Kernel(Machine("pentium-133"))
    k2 = L4Kernel(Machine("pentium-133"))
    t = k1.sigma0.task.thread
    t2 = k2.sigma0.task.thread
    for _ in range(2):
        k1.run_kernel("ipc_short", "ipc", threads=(t, None), entry=True)
        k2.run_kernel("ipc_short", "ipc", threads=(t2,), entry=True)
        assert k1.m.by_category() == k2.m.by_category()
    assert len(k1._run_ops) == 1
