"""Safety: a task reaches only frames mapped into it, and nothing derived from a deallocated
range, port or task stays reachable -- no stale TLB entry, no lost frame."""
from hypothesis import given, settings, strategies as st

from lab.mach import Message, OOLItem, VMProt, VMInherit
from mach_helpers import kernel


def test_no_stale_translation_after_vm_deallocate():
    """vm_deallocate removes the pages from the task's page table and its TLB: the next
    access faults (checked by translation and by a single hardware step)."""
    m, k = kernel()
    a = k.task_create(name="a")
    x = k.vm_allocate(a, 0, 2 * k.page)
    k.user_write(a, x, b"here")
    assert m.step("r", x).tlb == "hit" and m.current_space == a.space
    k.vm_deallocate(a, x, 2 * k.page)
    assert m.translate(a.space, x) is None
    k._enter(a.thread)
    r = m.step("r", x)
    assert r.fault == "not-present" and r.paddr is None


def test_port_deallocate_releases_queued_out_of_line_memory():
    """Messages queued on a port that dies are destroyed with the memory they carry: the
    frames of their out-of-line regions are freed."""
    m, k = kernel()
    a, b = k.task_create(name="a"), k.task_create(name="b")
    p = k.port_allocate(b)
    s = k.port_insert_send(b, p, a)
    buf = k.vm_allocate(a, 0, 3 * k.page)
    k.user_write(a, buf, b"q" * (3 * k.page))
    k.user_write(a, buf, b"")                           # message buffer touched once
    k.msg_send(a, Message(remote_port=s, data=b"warm"))
    k.msg_receive(b, p)
    frames = k.object_frames()
    k.msg_send(a, Message(remote_port=s, ool=[OOLItem(buf, 3 * k.page, deallocate=True)]))
    assert k.object_frames() == frames                  # moved into the message, not copied
    k.port_deallocate(b, p)
    assert k.object_frames() == frames - 3
    assert m.events.find("msg_destroyed")


def test_task_termination_returns_every_frame():
    """Terminating tasks frees everything derived from them -- memory, copy-on-write copies,
    page tables, ports and the messages queued on them: the free frame count returns to its
    value before the tasks were created."""
    m, k = kernel()
    free0 = m.memory.free_frames
    p = k.task_create(name="p")
    x = k.vm_allocate(p, 0, 4 * k.page)
    for i in range(4):
        k.user_write(p, x + i * k.page, b"p")
    c = k.task_create(parent=p, inherit_memory=True, name="c")
    k.user_write(c, x, b"c")
    port = k.port_allocate(p)
    to_p = k.port_insert_send(p, port, c)
    k.msg_send(c, Message(remote_port=to_p, data=b"inline", ool=[OOLItem(x, 2 * k.page)]))
    k.task_terminate(c)
    k.task_terminate(p)
    k.run()
    assert m.memory.free_frames == free0
    assert not p.alive and not c.alive and k.object_frames() == 0


def check_reachability(m, k, tasks):
    """Every translation of a task leads to the frame its map says (through the entry's
    object chain); writable only where a write would not need a copy; no frame belongs to
    two objects."""
    owners = {}
    for obj in k.objects.values():
        for off, pg in obj.pages.items():
            if pg.owned:
                assert pg.pa not in owners, f"frame 0x{pg.pa:x} in two objects"
                owners[pg.pa] = (obj, off)
    for t in tasks:
        for va, (pa, prot) in k.pmaps.maps[t.space].items():
            assert m.translate(t.space, va)[0] == pa
            e = t.map.lookup(va)
            assert e is not None, f"0x{va:x} mapped but not allocated in {t.name}"
            obj, off = e.object, e.offset + (va - e.start)
            while obj is not None and off not in obj.pages:
                off += obj.shadow_offset
                obj = obj.shadow
            assert obj is not None and obj.pages[off].pa == pa
            if prot & VMProt.WRITE:
                assert obj is e.object and not e.needs_copy and prot & e.protection


OPS = st.lists(st.tuples(st.sampled_from(["alloc", "write", "read", "dealloc", "copy", "protect",
                                          "fork", "inherit"]),
                         st.integers(0, 5), st.integers(0, 3)), min_size=1, max_size=14)


@settings(max_examples=30, deadline=None)
@given(OPS)
def test_tasks_reach_only_their_frames(ops):
    """Whatever sequence of vm calls, writes and task creations: every translation a task
    has leads to a frame of its own map (never another task's private page), and after
    all tasks terminate every frame is free again."""
    m, k = kernel(8)
    free0 = m.memory.free_frames
    a = k.task_create(name="a")
    tasks = [a]
    regions = []
    for op, i, j in ops:
        t = tasks[j % len(tasks)]
        if op == "alloc" or not regions:
            regions.append(k.vm_allocate(a, 0, 2 * k.page))
            continue
        r = regions[i % len(regions)]
        try:
            if op == "write":
                k.user_write(t, r + (i % 2) * k.page, bytes([i + j]))
            elif op == "read":
                k.user_read(t, r + k.page, 1)
            elif op == "dealloc":
                k.vm_deallocate(t, r, 2 * k.page)
            elif op == "copy":
                k.vm_copy(t, r, 2 * k.page, regions[(i + 1) % len(regions)])
            elif op == "protect":
                k.vm_protect(t, r, k.page, False, VMProt.READ)
            elif op == "inherit":
                k.vm_inherit(t, r, 2 * k.page, VMInherit.SHARE)
            elif op == "fork" and len(tasks) < 4:
                tasks.append(k.task_create(parent=t, inherit_memory=True, name=f"t{len(tasks)}"))
        except Exception as e:                      # errors are the kernel's, typed
            assert type(e).__module__ == "lab.mach.errors", e
        check_reachability(m, k, tasks)
    for t in tasks:
        k.task_terminate(t)
    assert m.memory.free_frames == free0
