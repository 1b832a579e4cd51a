"""Fault containment (lecture: "server malfunction easily isolated", "restartable user-level
services"; M87's lesson that a server failure looks like communication failure): when a
user-level server dies, its clients get IPC errors or timeouts -- never a hang -- the other
tasks run on, and a restarted server serves again."""
import pytest

from engine import Machine
from lab.l4 import (L4Kernel, Pager, Message, ipc_wait, ipc_reply_and_wait, ipc_call,
                    ipc_receive, NotExistent, ReceiveTimeout, InvalidArgument)


def crashing_server(limit):
    def prog(t):
        msg = yield ipc_wait()
        n = 0
        while True:
            n += 1
            if n > limit:
                raise InvalidArgument("server bug: null pointer")   # unhandled: the thread dies
            msg = yield ipc_reply_and_wait(msg.sender, Message(msg.words[0] * 2))
    return prog


def test_a_crashed_server_gives_its_clients_ipc_errors_and_others_run_on():
    """The server's thread dies of an unhandled error: its waiting client gets
    L4_IPC_ENOT_EXISTENT (receive phase), later calls fail in the send phase; an unrelated
    client/server pair keeps working; a restarted server serves the first client again."""
    k = L4Kernel(Machine("pentium-133"))
    srv = k.task_new("fs", program=crashing_server(limit=2))
    other = k.task_new("net", program=crashing_server(limit=10 ** 9))
    a = k.task_new("client-a")
    b = k.task_new("client-b")
    assert k.ipc(a.thread, ipc_call(srv.thread, Message(1))).words == (2,)
    assert k.ipc(a.thread, ipc_call(srv.thread, Message(2))).words == (4,)
    with pytest.raises(NotExistent) as e:
        k.ipc(a.thread, ipc_call(srv.thread, Message(3)))
    assert e.value.phase == "receive"
    assert k.m.events.find("thread_crash", thread="fs")
    with pytest.raises(NotExistent) as e:
        k.ipc(a.thread, ipc_call(srv.thread, Message(4)))
    assert e.value.phase == "send"
    for i in range(3):                                 # the other service is unaffected
        assert k.ipc(b.thread, ipc_call(other.thread, Message(i))).words == (2 * i,)
    k.task_delete(srv)                                 # clean up and restart the service
    srv2 = k.task_new("fs", program=crashing_server(limit=10))
    assert k.ipc(a.thread, ipc_call(srv2.thread, Message(5))).words == (10,)


def test_a_hung_server_is_seen_as_a_timeout():
    """A server that never answers (here: it waits for a message that never comes) is,
    to a client calling with a finite timeout, a communication failure: L4_IPC_RETIMEOUT."""
    k = L4Kernel(Machine("pentium-133"))
    nobody = k.task_new("nobody")

    def stuck(t):
        yield ipc_wait()
        yield ipc_receive(nobody.thread)               # forgets to reply
    srv = k.task_new("stuck", program=stuck)
    cli = k.task_new("client")
    with pytest.raises(ReceiveTimeout):
        k.ipc(cli.thread, ipc_call(srv.thread, Message(1), rcv_timeout=100_000))


def test_a_dead_pager_fails_its_clients_faults():
    """When a pager's task is deleted, its clients' mappings are flushed and their next
    fault fails (L4_IPC_ENOT_EXISTENT) instead of hanging; other tasks' memory stays."""
    k = L4Kernel(Machine("pentium-133"))

    class Simple(Pager):
        def __init__(self, k, name, base):
            super().__init__(k, name)
            self.base = base

        def page_fault(self, thread, va, write):
            mine = self.base + (va & ~0xFFF)
            if not self.has(mine):
                self.acquire(mine)
            return self.map_item(mine, "rw", send_base=va)
    p1, p2 = Simple(k, "p1", 0x400000), Simple(k, "p2", 0x800000)
    c1 = k.task_new("c1", pager=p1)
    c2 = k.task_new("c2", pager=p2)
    k.store(c1.thread, 0x1000, b"one")
    k.store(c2.thread, 0x1000, b"two")
    k.task_delete(p1.task)
    assert k.m.translate(c1.sid, 0x1000) is None       # flushed with its pager
    with pytest.raises(NotExistent):
        k.load(c1.thread, 0x1000, 3)
    assert k.load(c2.thread, 0x1000, 3) == b"two"


def test_a_deleted_tasks_thread_control_blocks_are_reused():
    """Deleting a task frees its threads' TCB slots (L4's TCB array is fixed-size): creating
    and deleting tasks forever never runs out, and the next thread takes the freed slot."""
    k = L4Kernel(Machine("pentium-133"), max_threads=3)        # sigma0 holds one slot
    slots = []
    for i in range(5):
        t = k.task_new(f"t{i}")
        slots.append(t.thread.slot)
        k.task_delete(t)
    assert slots == [slots[0]] * 5
    assert len(k.threads) == 1                                 # sigma0's thread only
