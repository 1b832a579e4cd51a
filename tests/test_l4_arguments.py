"""Bad arguments to the L4 model come back in L4's vocabulary, naming the value and what is
allowed: L4_INVALID_ARGUMENT for a value that is not what the call takes (a thread, a task, an
address, a flexpage, a message), L4_IPC_ENOT_EXISTENT for a thread or task that is dead or
deleted -- checked before the call touches anything (no event, no cycle, no mapping changed),
never a Python AttributeError/TypeError from deep inside, never a hang, never a value quietly
taken for another (True is not 1, -1 is not 0xFFFFFFFF)."""
import re

import numpy as np
import pytest

from engine import Machine, ops as O
from lab.l4 import (L4Kernel, Pager, Fpage, Message, StringItem, StringBuffer, MapItem,
                    GrantItem, InvalidArgument, NotExistent, ipc_send, ipc_receive, ipc_wait,
                    ipc_call, ipc_reply_and_wait)
from lab.l4.ipc import Ipc
from lab.mach import MachKernel

from l4_helpers import PAGE, Relay

_MACH = MachKernel(Machine("pentium-133"))
MACH_TASK = _MACH.task_create(name="m")       # an object of another kind: a Mach task
BAD = [None, "x", 1.5, True, -1, 1 << 40, MACH_TASK]
NOT_INT = [None, "x", 1.5, True, MACH_TASK]


def R(x):
    """A value as the error names it, as a pattern."""
    return re.escape(repr(x))


class World:
    """A kernel, a pager A (a Relay), a client with a page, a deleted task and a dead thread."""

    def __init__(self):
        self.k = k = L4Kernel(Machine("pentium-133"))
        self.a = Relay(k, "A", 0x400000)
        self.c = k.task_new("client", pager=self.a)
        k.store(self.c.thread, 0x3000, b"hello")
        self.d = k.task_new("gone")
        k.task_delete(self.d)
        self.dead = self.d.thread
        self.other = L4Kernel(Machine("pentium-133")).task_new("elsewhere")

    def state(self):
        """What a rejected call must not change: the event log, the cycles, the mappings."""
        k = self.k
        return len(k.m.events), k.m.cycles, {t.name: k.mappings(t) for t in
                                               sorted(k.tasks.values(), key=lambda t: t.number)}


@pytest.fixture
def w():
    return World()


def _thread_calls(w):
    """Every call that takes a thread, with `t` in that place (the other arguments valid)."""
    k = w.k
    return {
        "ipc": lambda t: k.ipc(t, ipc_wait(0)),
        "ipc (ipc_path.syscall)": lambda t: k.ipc_path.syscall(t, ipc_wait(0)),
        "execute": lambda t: k.execute(t, O.access("r", [0x3000])),
        "load": lambda t: k.load(t, 0x3000, 4),
        "store": lambda t: k.store(t, 0x3000, b"x"),
        "dispatch": lambda t: k.dispatch(t),
        "page_fault_ipc": lambda t: k.page_fault_ipc(t, 0x8000, False),
        "resolve": lambda t: k.resolve(t, 0x8000, False),
        "reflect_exception": lambda t: k.reflect_exception(t),
        "task_new: pager": lambda t: k.task_new("new", pager=t),
        "thread_new: pager": lambda t: k.thread_new(w.c, pager=t),
    }


def test_every_call_taking_a_thread_checks_it(w):
    """A call that names a thread gets a Thread of this kernel: anything else (None, a string,
    a number, a Mach task, another kernel's thread) is L4_INVALID_ARGUMENT naming the call and
    the value; a dead thread is L4_IPC_ENOT_EXISTENT.  Nothing happens first.  (A pager may
    also be a Pager, or None.)"""
    for name, call in _thread_calls(w).items():
        what = name.split(" (")[0]
        for bad in BAD:
            if bad is None and "pager" in name:
                continue                    # no pager is allowed: faults then fail
            before = w.state()
            with pytest.raises(InvalidArgument) as e:
                call(bad)
            assert str(e.value).startswith(f"L4_INVALID_ARGUMENT: {what}"), name
            assert f"{bad!r} is not a thread" in str(e.value), name
            assert w.state() == before, name
        with pytest.raises(InvalidArgument, match="belongs to another L4 kernel"):
            call(w.other.thread)
        before = w.state()
        with pytest.raises(NotExistent, match="thread gone is dead"):
            call(w.dead)
        assert w.state() == before, name


@pytest.mark.parametrize("bad", BAD)
def test_kill_and_step_take_a_thread_and_leave_a_dead_one_alone(w, bad):
    """kill and step (the scheduler's) need a thread (L4_INVALID_ARGUMENT otherwise); a dead
    thread is no error there: killing it again or stepping it does nothing."""
    for call in (w.k.kill, w.k.step):
        with pytest.raises(InvalidArgument, match="is not a thread"):
            call(bad, *(("r",) if call == w.k.kill else ()))
    before = w.state()
    w.k.kill(w.dead, "again")
    w.k.step(w.dead)
    assert w.state() == before


def _task_calls(w):
    k, a, c = w.k, w.a, w.c
    return {
        "thread_new": lambda t: k.thread_new(t),
        "task_delete": lambda t: k.task_delete(t),
        "map_fpage: source": lambda t: k.map_fpage(t, Fpage(0x403000), c, 0x5000),
        "map_fpage: destination": lambda t: k.map_fpage(a.task, Fpage(0x403000), t, 0x5000),
        "fpage_unmap": lambda t: k.fpage_unmap(t, Fpage(0x403000)),
        "mappings": lambda t: k.mappings(t),
        "promote": lambda t: k.promote(t),
    }


def test_every_call_taking_a_task_checks_it(w):
    """A call that names a task gets a Task of this kernel (L4_INVALID_ARGUMENT naming the
    value otherwise, a thread included); a deleted task is L4_IPC_ENOT_EXISTENT, except for
    mappings (a deleted task has none) -- and nothing is created, mapped or flushed first."""
    for name, call in _task_calls(w).items():
        for bad in BAD + [w.c.thread]:
            before = w.state()
            with pytest.raises(InvalidArgument) as e:
                call(bad)
            assert str(e.value).startswith(f"L4_INVALID_ARGUMENT: {name}: {bad!r} is not a "
                                           "task"), name
            assert w.state() == before, name
        with pytest.raises(InvalidArgument, match="belongs to another L4 kernel"):
            call(w.other)
        if name == "mappings":
            assert call(w.d) == {}
            continue
        before = w.state()
        with pytest.raises(NotExistent, match="task gone was"):
            call(w.d)
        assert w.state() == before, name


def test_promote_takes_only_a_small_task(w):
    """promote moves a small space into a large one; a task already large is
    L4_INVALID_ARGUMENT (no second space is made for it)."""
    before = w.state()
    with pytest.raises(InvalidArgument, match="promote: task client is already in a large"):
        w.k.promote(w.c)
    assert w.state() == before


# -- flexpages ------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", NOT_INT)
def test_an_fpage_base_is_an_integer(bad):
    """Fpage(base): an address, an integer -- anything else is L4_INVALID_ARGUMENT naming
    it, not a formatting error about 'x'."""
    with pytest.raises(InvalidArgument, match=rf"fpage: base {R(bad)} is not an address"):
        Fpage(bad)


def test_a_negative_fpage_base_is_named_as_such():
    """Flexpages are naturally aligned 2**k regions of the 32-bit space (S95 §3.2): a
    negative base is named as -0x1000 (not "0x-1000")."""
    with pytest.raises(InvalidArgument, match=r"fpage: base -0x1000 must be aligned"):
        Fpage(-0x1000)


def test_an_fpage_accepts_numpy_integers_as_ints():
    """Any integer type is an integer: numpy's become plain ints (equal fpages, same repr)."""
    fp = Fpage(np.int64(0x3000), np.int32(12))
    assert fp == Fpage(0x3000, 12) and type(fp.base) is int and type(fp.log2size) is int


@pytest.mark.parametrize("rights, own", [(None, False), ("", False), ("q", False),
                                         ("ww", False), ("w", None), ("w", 1), ("w", "yes")])
def test_fpage_unmap_names_bad_rights_and_own_and_flushes_nothing(w, rights, own):
    """fpage_unmap (L4's flush) takes away a non-empty combination of r, w, x; `own` is True
    or False.  Anything else is L4_INVALID_ARGUMENT, before the trap: no flush, no cycle."""
    before = w.state()
    with pytest.raises(InvalidArgument, match="fpage_unmap: (rights|own) "):
        w.k.fpage_unmap(w.a.task, Fpage(0x403000), rights, own)
    assert w.state() == before


# -- map_fpage ------------------------------------------------------------------------------
@pytest.mark.parametrize("dst_base", ["x", 1.5, True, 0x5001, 0x5800])
def test_map_fpage_destination_is_an_aligned_address(w, dst_base):
    """The destination of a map is a base aligned to the fpage's size (the receive window's
    rule): a misaligned or non-integer one is L4_INVALID_ARGUMENT; the mapping database and
    the page tables are left as they were (no node without its page-table entry)."""
    before = w.state()
    with pytest.raises(InvalidArgument, match=rf"map_fpage: dst_base {R(dst_base)} must be an "
                                              "address aligned"):
        w.k.map_fpage(w.a.task, Fpage(0x403000), w.c, dst_base)
    assert w.state() == before
    assert w.k.m.translate(w.c.sid, 0x5000) is None


@pytest.mark.parametrize("grant", [None, 1, "yes"])
def test_map_fpage_grant_is_a_flag(w, grant):
    """grant is True or False: a truthy value is not taken for True."""
    before = w.state()
    with pytest.raises(InvalidArgument, match=rf"map_fpage: grant {R(grant)}; allowed: True or"):
        w.k.map_fpage(w.a.task, Fpage(0x403000), w.c, 0x5000, grant=grant)
    assert w.state() == before


def test_granting_from_sigma0_is_refused_before_anything_is_removed(w):
    """sigma0's pages are mapped, never granted.  Refusing it happens before the receiver's
    old mapping at that place is flushed: the client keeps its page and its data."""
    k, c = w.k, w.c
    pa = k.mappings(c)[0x3000][0]
    before = w.state()
    with pytest.raises(InvalidArgument, match="sigma0's pages are mapped, not granted"):
        k.map_fpage(k.sigma0.task, Fpage(pa), c, 0x3000, grant=True)
    assert w.state() == before
    assert k.mappings(c)[0x3000][0] == pa and k.load(c.thread, 0x3000, 5) == b"hello"


# -- messages and IPC requests ---------------------------------------------------------------
@pytest.mark.parametrize("bad", [None, "x", 1.5, True, -1, 1 << 32, MACH_TASK])
def test_a_message_word_is_a_32_bit_register(bad):
    """Message words travel in 32-bit registers: integers 0..0xFFFFFFFF.  True, -1 or 2**32
    are L4_INVALID_ARGUMENT naming them (not sent as 1, or as a number no register holds)."""
    with pytest.raises(InvalidArgument, match=rf"message word {R(bad)}; allowed: an integer in "
                                              "0x0..0xffffffff"):
        Message(1, bad)


def test_message_words_accept_numpy_integers():
    """Any integer type is a word: numpy's become plain ints."""
    assert Message(np.int64(7), np.uint32(8)).words == (7, 8)


@pytest.mark.parametrize("field", ["strings", "items"])
@pytest.mark.parametrize("bad", [None, 1.5, True, 5, MACH_TASK])
def test_message_strings_and_items_are_lists(field, bad):
    """strings and items are lists (or tuples): anything else is L4_INVALID_ARGUMENT naming
    it, not "object is not iterable"."""
    with pytest.raises(InvalidArgument, match=rf"message {field} {R(bad)}; allowed: a list"):
        Message(1, **{field: bad})


@pytest.mark.parametrize("bad", ["x", 1.5, True, 22, MACH_TASK])
def test_a_message_error_is_a_kernel_error(bad):
    """A reply's error is a KernelError (its code travels in a register); anything else is
    L4_INVALID_ARGUMENT when the message is built, not an AttributeError when printed."""
    with pytest.raises(InvalidArgument, match=rf"message error {R(bad)}; allowed: None or a "):
        Message(error=bad)


@pytest.mark.parametrize("cls", [StringItem, StringBuffer])
@pytest.mark.parametrize("va, size", [(None, 4), ("x", 4), (1.5, 4), (True, 4), (-1, 4),
                                      (0, None), (0, True), (0, -1), (0xBFFFFFFF, 2),
                                      (1 << 40, 1)])
def test_strings_and_buffers_lie_in_the_user_range(cls, va, size):
    """A string to send and a buffer to receive into: integers va, size >= 0 with va + size
    inside the user range 0..0xC0000000 (the copy would fault in the kernel's region)."""
    with pytest.raises(InvalidArgument, match=rf"{cls.__name__}: va {R(va)} and size {R(size)}"):
        cls(va, size)


@pytest.mark.parametrize("item", [MapItem, GrantItem])
@pytest.mark.parametrize("bad", ["x", 1.5, True, -1, 1 << 32])
def test_a_map_items_send_base_is_a_32_bit_address(item, bad):
    """send_base selects where in the receive window the item lands: None or an address
    0..0xFFFFFFFF."""
    with pytest.raises(InvalidArgument, match=rf"{item.__name__}: send_base {R(bad)}; allowed"):
        item(Fpage(0x3000), bad)


@pytest.mark.parametrize("build", [
    lambda: ipc_send(None, Message(1)),
    lambda: ipc_call(None, Message(1)),
    lambda: ipc_reply_and_wait(None, Message(1)),
    lambda: Ipc("send", msg=Message(1)),
])
def test_a_message_without_a_destination_is_refused(build):
    """A send phase names its destination: a Message with dest None is L4_INVALID_ARGUMENT,
    not silently dropped (ipc_send) or turned into an open wait that never ends (ipc_call)."""
    with pytest.raises(InvalidArgument, match="a send phase needs a destination thread"):
        build()


@pytest.mark.parametrize("bad", ["x", 1.5, True, -1, MACH_TASK])
def test_destinations_and_sources_are_threads(w, bad):
    """The partner of an IPC is a Thread (a pager's is pager.thread): anything else is
    L4_INVALID_ARGUMENT when the request is built -- before the trap.  (A thread that has
    died since is the IPC's own error, L4_IPC_ENOT_EXISTENT, after it.)"""
    for build, who in ((lambda: ipc_send(bad, Message(1)), "destination"),
                       (lambda: ipc_call(bad, Message(1)), "destination"),
                       (lambda: ipc_reply_and_wait(bad, Message(1)), "destination"),
                       (lambda: ipc_receive(bad), "source")):
        with pytest.raises(InvalidArgument, match=rf"{who} {R(bad)} is not a thread"):
            build()
    with pytest.raises(NotExistent, match="destination <thread .* gone dead> does not exist"):
        w.k.ipc(w.c.thread, ipc_send(w.dead, Message(1)))


@pytest.mark.parametrize("bad", [None, 1.5, True, 3, MACH_TASK])
def test_receive_buffers_are_a_list(w, bad):
    """buffers is a list of StringBuffers: anything else is L4_INVALID_ARGUMENT naming it."""
    for build in (lambda: ipc_wait(buffers=bad), lambda: ipc_receive(w.a.thread, buffers=bad),
                  lambda: ipc_call(w.a.thread, Message(1), buffers=bad)):
        with pytest.raises(InvalidArgument, match=rf"receive buffers {R(bad)}; allowed: a list"):
            build()


@pytest.mark.parametrize("bad", [True, False])
def test_a_timeout_is_a_cycle_count_or_never(bad):
    """Timeouts are cycle counts >= 0 or NEVER: True and False are not 1 and 0."""
    with pytest.raises(InvalidArgument, match=rf"timeout {R(bad)}: a timeout is a cycle count"):
        ipc_wait(timeout=bad)


def test_the_receive_flag_is_a_flag():
    """Ipc(receive=...) is True or False."""
    with pytest.raises(InvalidArgument, match="receive 1; allowed: True or False"):
        Ipc("wait", receive=1)


def test_a_self_send_is_refused_before_the_trap(w):
    """An IPC to oneself would wait for itself: L4_INVALID_ARGUMENT before anything runs (no
    trap charged, no switch)."""
    t = w.c.thread
    w.k.dispatch(w.a.thread)
    before = w.state()
    with pytest.raises(InvalidArgument, match="sends to itself"):
        w.k.ipc(t, ipc_send(t, Message(1)))
    assert w.state() == before


# -- page faults, memory, execution ---------------------------------------------------------
@pytest.mark.parametrize("call", ["page_fault_ipc", "resolve"])
@pytest.mark.parametrize("va, write, timeout, bad", [
    (None, False, 0, "va None"), ("x", False, 0, "va 'x'"), (1.5, False, 0, "va 1.5"),
    (True, False, 0, "va True"), (-1, False, 0, "va -1"), (0xC0000000, False, 0, "va 3221225472"),
    (0x8000, None, 0, "write None"), (0x8000, "x", 0, "write 'x'"), (0x8000, 1, 0, "write 1"),
    (0x8000, False, True, "timeout True"), (0x8000, False, -1, "timeout -1"),
])
def test_a_fault_names_a_user_address_and_a_flag(w, call, va, write, timeout, bad):
    """A page fault is at a user address (0..0xC0000000: above is the kernel) and is a read
    or a write (True/False); bad ones are L4_INVALID_ARGUMENT before the fault is logged or
    sent to the pager."""
    before = w.state()
    with pytest.raises(InvalidArgument, match=rf"{call}: {bad}"):
        getattr(w.k, call)(w.c.thread, va, write, timeout)
    assert w.state() == before


@pytest.mark.parametrize("va, n", [(None, 4), ("x", 4), (1.5, 4), (True, 4), (-1, 4),
                                   (0x3000, None), (0x3000, 1.5), (0x3000, -1),
                                   (0xBFFFFFF0, 32), (1 << 40, 4), (0x3000, 1 << 40)])
def test_load_names_a_bad_range(w, va, n):
    """load(t, va, n): integers with [va, va+n) in the user range; else L4_INVALID_ARGUMENT
    naming them -- a negative n is not an empty read, 2**40 bytes not a MemoryError."""
    before = w.state()
    with pytest.raises(InvalidArgument, match=rf"load: va {R(va)} and size {R(n)} must be "):
        w.k.load(w.c.thread, va, n)
    assert w.state() == before


@pytest.mark.parametrize("data", [None, "text", 5, True, 1.5, [1, 2]])
def test_store_takes_bytes(w, data):
    """store(t, va, data): data is bytes-like; an int is not that many zero bytes, a str
    not an encoding error."""
    before = w.state()
    with pytest.raises(InvalidArgument, match=rf"store: data {R(data)} is not bytes"):
        w.k.store(w.c.thread, 0x3000, data)
    assert w.state() == before and w.k.load(w.c.thread, 0x3000, 5) == b"hello"


@pytest.mark.parametrize("va", [None, "x", True, -1, 0xBFFFFFFF])
def test_store_names_a_bad_address(w, va):
    """store's address range lies in the user range (integers)."""
    with pytest.raises(InvalidArgument, match=rf"store: va {R(va)} and size 2 must be"):
        w.k.store(w.c.thread, va, b"ab")


@pytest.mark.parametrize("ops", [None, "x", 1.5, True, 7, MACH_TASK, np.array([[1, 2]]),
                                 np.array([1.5]), [1, "x"]])
def test_execute_takes_an_op_batch(w, ops):
    """execute(t, ops): an engine op batch (1-d integer array, or a list of op words); a
    scalar is not a batch of one op, floats are not op words.  (A list of words runs.)"""
    before = w.state()
    with pytest.raises(InvalidArgument, match=r"execute: ops .* is not an op batch"):
        w.k.execute(w.c.thread, ops)
    assert w.state() == before
    assert w.k.execute(w.c.thread, [int(x) for x in O.access("r", [0x3000])]).accesses == 1


@pytest.mark.parametrize("category", [None, 1.5, True, "cpu", MACH_TASK])
def test_execute_names_a_bad_category(w, category):
    """The work's cycle category is one of the engine's names (user, server, emulation...)."""
    with pytest.raises(InvalidArgument, match=rf"execute: category {R(category)}; allowed: user,"):
        w.k.execute(w.c.thread, O.access("r", [0x3000]), category)


def test_execute_names_a_handler_that_is_not_callable(w):
    """execute's fault_handler is a callable: anything else is L4_INVALID_ARGUMENT naming it."""
    with pytest.raises(InvalidArgument, match="fault_handler 'x' is not callable"):
        w.k.execute(w.c.thread, O.access("r", [0x3000]), fault_handler="x")


@pytest.mark.parametrize("vector", [None, "x", True, -1, 256])
def test_reflect_exception_names_a_bad_vector(w, vector):
    """An x86 interrupt vector is 0..255."""
    before = w.state()
    with pytest.raises(InvalidArgument, match=rf"reflect_exception: vector {R(vector)}"):
        w.k.reflect_exception(w.c.thread, vector)
    assert w.state() == before


# -- creating tasks and threads --------------------------------------------------------------
@pytest.mark.parametrize("bad", [None, 1.5, True, 7, MACH_TASK])
def test_task_and_thread_names_are_strings(w, bad):
    """A task's name is a string (a thread's too, or None for the default): no task named
    None or <Task m>."""
    n = len(w.k.tasks)
    with pytest.raises(InvalidArgument, match=rf"task_new: name {R(bad)}; allowed: a string"):
        w.k.task_new(bad)
    if bad is not None:
        with pytest.raises(InvalidArgument, match=rf"thread_new: name {R(bad)}; allowed"):
            w.k.thread_new(w.c, name=bad)
    assert len(w.k.tasks) == n and len(w.c.threads) == 1


@pytest.mark.parametrize("bad", ["x", 1.5, True, 7, MACH_TASK])
def test_a_program_is_callable_and_checked_before_the_task_is_made(w, bad):
    """task_new/thread_new(program=...): a generator function or None.  A bad one is
    L4_INVALID_ARGUMENT and no task, space or thread is left behind half made."""
    before = w.state()
    spaces = len(w.k.tasks)
    with pytest.raises(InvalidArgument, match=rf"task_new: program {R(bad)} is not callable"):
        w.k.task_new("p", program=bad)
    with pytest.raises(InvalidArgument, match=rf"thread_new: program {R(bad)} is not callable"):
        w.k.thread_new(w.c, program=bad)
    assert w.state() == before and len(w.k.tasks) == spaces


def test_a_dead_pager_is_refused_when_the_task_is_made(w):
    """A new task's (or thread's) pager must be alive: a dead one is L4_IPC_ENOT_EXISTENT
    now, not a surprise at the first page fault."""
    n = len(w.k.tasks)
    with pytest.raises(NotExistent, match="task_new: pager: thread gone is dead"):
        w.k.task_new("orphan", pager=w.dead)
    assert len(w.k.tasks) == n


@pytest.mark.parametrize("small_size", [1.5, True, 3 << 20, 6 << 20, 1 << 30, 1 << 40])
def test_a_small_space_is_4_to_512_mb(small_size):
    """S97 §3: small spaces are 4 MB to 512 MB (the region), a power of two; anything else is
    L4_INVALID_ARGUMENT (not a quiet fall-back to a large space)."""
    k = L4Kernel(Machine("pentium-133", small_spaces=True))
    with pytest.raises(InvalidArgument, match=rf"small_size {R(small_size)} must be a power of two "
                                              "in 4 MB..512 MB"):
        k.task_new("s", small=True, small_size=small_size)


@pytest.mark.parametrize("small", [None, 1, "yes"])
def test_small_is_a_flag(small):
    """task_new(small=...) is True or False: a truthy value is not taken for True."""
    k = L4Kernel(Machine("pentium-133", small_spaces=True))
    with pytest.raises(InvalidArgument, match=rf"small {R(small)}; allowed: True or False"):
        k.task_new("s", small=small)


@pytest.mark.parametrize("machine", [None, "pentium-133", MACH_TASK])
def test_the_kernel_needs_a_machine(machine):
    """L4Kernel(machine): an engine Machine (a profile name is not one)."""
    with pytest.raises(InvalidArgument, match=rf"L4Kernel: {R(machine)} is not a machine"):
        L4Kernel(machine)


def test_max_threads_must_fit_in_memory():
    """The TCB array is backed by frames: more threads than fit is L4_INVALID_ARGUMENT naming
    the number, before any frame is taken (not the engine's OutOfFrames halfway)."""
    m = Machine("pentium-133")
    free = m.memory.free_frames
    with pytest.raises(InvalidArgument, match=r"L4Kernel: max_threads 1000000: its TCBs"):
        L4Kernel(m, max_threads=10 ** 6)
    with pytest.raises(InvalidArgument, match="max_threads True must be an integer >= 2"):
        L4Kernel(m, max_threads=True)
    assert m.memory.free_frames == free


@pytest.mark.parametrize("until, max_steps, bad", [
    ("x", 10, "until"), (True, 10, "until"), (None, None, "max_steps"), (None, 1.5, "max_steps"),
    (None, True, "max_steps"), (None, -1, "max_steps")])
def test_run_names_a_bad_bound(w, until, max_steps, bad):
    """run(until, max_steps): a cycle number and a step count >= 0."""
    with pytest.raises(InvalidArgument, match=rf"run: {bad}"):
        w.k.run(until, max_steps)


# -- pagers ----------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [None, "k", Machine, MACH_TASK])
def test_a_pager_needs_an_l4_kernel(bad):
    """Pager(kernel): an L4Kernel (a Mach kernel is not one)."""
    with pytest.raises(InvalidArgument, match=r"Pager: .* is not an L4Kernel"):
        Pager(bad)
    with pytest.raises(InvalidArgument, match=r"Pager: .* is not an L4Kernel"):
        Pager(_MACH)


@pytest.mark.parametrize("va, npages", [(None, 1), ("x", 1), (1.5, 1), (True, 1), (-PAGE, 1),
                                        (0x500000, 0), (0x500000, -1), (0x500000, 1.5),
                                        (0x500000, True), (0xBFFFF000, 2)])
def test_acquire_names_a_bad_range(w, va, npages):
    """Pager.acquire(va, npages): at least one page, all in the user range: an empty or
    negative count is not 'nothing to do', a range into the kernel is not tried."""
    before = w.state()
    with pytest.raises(InvalidArgument, match=r"A: acquire: "):
        w.a.acquire(va, npages)
    assert w.state() == before


@pytest.mark.parametrize("bad", [None, "x", True, -1, MACH_TASK])
def test_pager_helpers_name_bad_values(w, bad):
    """has(va) takes an address, work(n) a number of instructions >= 0 (None is not 0)."""
    before = w.state()
    with pytest.raises(InvalidArgument, match=rf"A: has: va {R(bad)}"):
        w.a.has(bad)
    with pytest.raises(InvalidArgument, match=rf"A: work: instructions {R(bad)}"):
        w.a.work(bad)
    assert w.state() == before
