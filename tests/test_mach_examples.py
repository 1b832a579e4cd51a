"""The lecture's examples: the copy-on-write file system, consistent network shared memory,
and fault containment when a server fails."""
import random

import pytest

from lab.mach import KernMemoryError, PortDead, MigServerDied
from lab.mach.examples import (FileServer, fs_read_file, fs_write_file, SharedMemoryPager)
from mach_helpers import kernel, echo_server


def file_bytes(n):
    return bytes((i * 7 + 3) % 256 for i in range(n))


def test_copy_on_write_file_system_example():
    """The lecture's program: fs_read_file maps the file (copy-on-write, no data copied);
    random increments change the client's copy only; fs_write_file writes back half;
    vm_deallocate throws the copy away.  The server sees exactly the pages written back,
    the file holds the client's first half and its own second half, and the client's
    private frames are freed."""
    m, k = kernel()
    fs = FileServer(k)
    size = 8 * k.page
    original = file_bytes(size)
    fs.create_file("filename", original)
    client = k.task_create(name="client")
    server = fs.give(fs.service, client)
    data, n = fs_read_file(k, client, server, "filename")
    assert n == size and fs.disk.reads == 0                    # mapped, nothing read yet
    assert m.events.find("pager_init") and not m.events.find("pager_data_request")
    assert m.events.find("pager_init")
    # for (i = 0; i < file_size; i++) file_data[(int)(file_size*rand())]++;
    rng = random.Random(4)
    work = bytearray(k.user_read(client, data, size))
    for _ in range(size):
        j = int(size * rng.random())
        work[j] = (work[j] + 1) % 256
    k.user_write(client, data, bytes(work))
    assert fs.written == []                                   # the copy is private
    copy = k.object_of(client, data)
    assert len(copy.pages) == 8                               # one private frame per page
    fs_write_file(k, client, server, "filename", data, size // 2)
    k.vm_deallocate(client, data, size)
    k.run()
    assert sorted(fs.written) == [("filename", i * k.page) for i in range(4)]
    on_disk = b"".join(fs.disk.blocks[b] for b in fs.files["filename"]["blocks"])
    assert on_disk[:size // 2] == bytes(work[:size // 2])
    assert on_disk[size // 2:] == original[size // 2:]
    assert copy.pages == {} and copy.id not in k.objects      # the working copy is gone


def test_consistent_network_shared_memory():
    """Each host maps the shared segment through the one shared pager (its own kernel cache:
    here its own memory object); the pager keeps them coherent with locking and flushing:
    a write on one host is seen by the other after pager_data_unlock, pager_clean_request
    and pager_flush_request."""
    m, k = kernel()
    shm = SharedMemoryPager(k, 2 * k.page)
    hosts = {}
    for h in ("A", "B"):
        t = k.task_create(name=f"host{h}")
        mo = shm.memory_object_for(h)
        hosts[h] = (t, k.vm_allocate_with_pager(t, 0, 2 * k.page, True, shm.give(mo, t), 0))
    k.run()
    (ta, xa), (tb, xb) = hosts["A"], hosts["B"]
    assert k.user_read(ta, xa, 1) == b"\0" and k.user_read(tb, xb, 1) == b"\0"
    k.user_write(ta, xa, b"hello from A")
    assert m.events.find("pager_data_unlock")
    assert m.events.find("pager_flush_request")            # B's stale copy is gone
    assert k.user_read(tb, xb, 12) == b"hello from A"
    assert m.events.find("pager_clean_request")            # A's data went back to the pager
    k.user_write(tb, xb + 6, b"B")
    assert k.user_read(ta, xa, 12) == b"hello Brom A"
    assert len(m.events.find("pager_clean_request")) == 2  # B's write came back for A


def test_fault_containment_and_restart():
    """A crashing file server: its clients get errors (memory errors on its files, dead
    port on requests) instead of hanging, other tasks continue, and a restarted server (a
    new pager on a new port) serves the same files again."""
    m, k = kernel()
    fs = FileServer(k)
    fs.create_file("f", file_bytes(4 * k.page))
    client = k.task_create(name="client")
    sp = fs.give(fs.service, client)
    data, size = fs_read_file(k, client, sp, "f")
    assert k.user_read(client, data, 4) == file_bytes(4)
    k.task_terminate(fs.task)                                 # the server crashes
    with pytest.raises(KernMemoryError):
        k.user_read(client, data + 2 * k.page, 1)             # its pager is gone
    with pytest.raises(PortDead):
        fs_read_file(k, client, sp, "f")
    other = k.task_create(name="other")
    s, p = echo_server(k)
    assert k.rpc(other, k.port_insert_send(s, p, other), data=b"up").data == b"up"
    fs2 = FileServer(k, disk=fs.disk, name="file_server2")    # restart on a new port
    fs2.adopt(fs)
    sp2 = fs2.give(fs2.service, client)
    data2, size2 = fs_read_file(k, client, sp2, "f")
    assert k.user_read(client, data2 + 3 * k.page, 8) == file_bytes(4 * k.page)[3 * k.page:][:8]


def test_crash_during_a_request_reaches_the_waiting_client():
    """A client blocked in an RPC when the server dies gets MIG_SERVER_DIED."""
    m, k = kernel()
    client = k.task_create(name="client")

    def dying(msg):
        k.task_terminate(k.running.task)
        return None
    s, p = echo_server(k, handler=dying)
    with pytest.raises(MigServerDied):
        k.rpc(client, k.port_insert_send(s, p, client))
