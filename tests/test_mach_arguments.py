"""Bad arguments to the Mach calls come back as Mach return codes naming the value (the
lecture's interface; Mach 3.0 <mach/kern_return.h>, Mach 2.5 <sys/message.h>), checked before
the call touches anything -- never a Python AttributeError from deep inside the kernel."""
import pytest

from lab.mach import (KernInvalidArgument, KernInvalidName, KernInvalidTask, Message,
                      RcvInvalidPort, SendInvalidMemory, SendInvalidPort, VMInherit)
from mach_helpers import kernel

BAD = [None, "nope"]


@pytest.fixture
def k():
    _m, k = kernel()
    return k


@pytest.mark.parametrize("bad", ["nope", 7])
@pytest.mark.parametrize("inherit", [False, True])
def test_task_create_parent_must_be_a_live_task(k, bad, inherit):
    """task_create(parent): the parent is a live task (KERN_INVALID_TASK naming the value
    otherwise); inheriting memory needs one (KERN_INVALID_ARGUMENT); no task is made."""
    n = len(k.tasks)
    with pytest.raises(KernInvalidTask, match=rf"task_create: parent: {bad!r} is not a task"):
        k.task_create(parent=bad, inherit_memory=inherit, name="child")
    with pytest.raises(KernInvalidArgument, match="inherit_memory=True needs a parent task"):
        k.task_create(parent=None, inherit_memory=True)
    dead = k.task_create(name="dead")
    k.task_terminate(dead)
    with pytest.raises(KernInvalidTask, match="task_create: parent: task dead has terminated"):
        k.task_create(parent=dead, inherit_memory=True)
    assert len(k.tasks) == n + 1 and not dead.alive


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize("call", ["msg_send", "msg_rpc"])
def test_a_message_that_is_not_one_is_send_invalid_memory(k, call, bad):
    """msg_send/msg_rpc of something that is not a Message: SEND_INVALID_MEMORY (the message
    is not memory the sender can send), naming it; nothing is sent."""
    a = k.task_create(name="a")
    n = len(k.m.events)
    with pytest.raises(SendInvalidMemory, match=rf"{call}: {bad!r} is not a message"):
        getattr(k, call)(a, bad)
    assert not k.m.events.find("msg_send") and len(k.m.events) == n


def _calls(k):
    """Every task_*/thread_*/port_*/vm_* call that takes a task, with `t` in that place;
    valid other arguments (a live caller, a real port and range)."""
    a = k.task_create(name="a")
    s = k.task_create(name="s")
    p = k.port_allocate(s)
    x = k.vm_allocate(a, 0, 2 * k.page)
    pg = k.page
    return a, {
        "port_allocate": lambda t: k.port_allocate(t, caller=a),
        "port_deallocate": lambda t: k.port_deallocate(t, p, caller=a),
        "port_enable": lambda t: k.port_enable(t, p, caller=a),
        "port_disable": lambda t: k.port_disable(t, p, caller=a),
        "port_messages": lambda t: k.port_messages(t, caller=a),
        "port_status": lambda t: k.port_status(t, p, caller=a),
        "port_set_backlog": lambda t: k.port_set_backlog(t, p, 3, caller=a),
        "port_insert_send: from_task": lambda t: k.port_insert_send(t, p, a, caller=a),
        "port_insert_send: to_task": lambda t: k.port_insert_send(s, p, t, caller=a),
        "vm_allocate": lambda t: k.vm_allocate(t, 0, pg, caller=a),
        "vm_deallocate": lambda t: k.vm_deallocate(t, x, pg, caller=a),
        "vm_inherit": lambda t: k.vm_inherit(t, x, pg, VMInherit.SHARE, caller=a),
        "vm_protect": lambda t: k.vm_protect(t, x, pg, False, 1, caller=a),
        "vm_read": lambda t: k.vm_read(t, x, pg, caller=a),
        "vm_write": lambda t: k.vm_write(t, x, x, pg, caller=a),
        "vm_copy": lambda t: k.vm_copy(t, x, pg, x + pg, caller=a),
        "vm_regions": lambda t: k.vm_regions(t, caller=a),
        "vm_statistics": lambda t: k.vm_statistics(t, caller=a),
        "vm_allocate_with_pager": lambda t: k.vm_map(t, 0, pg, True, p, caller=a),
        "thread_create": lambda t: k.thread_create(t, caller=a),
        "task_terminate": lambda t: k.task_terminate(t, caller=a),
    }


def test_every_call_taking_a_task_checks_it(k):
    """Each call that names a task (the target, not the caller) answers None, a string or a
    terminated task with KERN_INVALID_TASK naming the call and the value, before it traps:
    no event, no cycle.  (task_terminate of a terminated task stays a no-op.)"""
    a, calls = _calls(k)
    dead = k.task_create(name="dead")
    k.task_terminate(dead)
    for name, call in calls.items():
        for bad in BAD + [dead]:
            if bad is dead and name == "task_terminate":
                continue
            n, cycles = len(k.m.events), k.m.cycles
            what = "task dead has terminated" if bad is dead else f"{bad!r} is not a task"
            with pytest.raises(KernInvalidTask) as e:
                call(bad)
            assert str(e.value) == f"KERN_INVALID_TASK: {name}: {what}" + \
                ("" if bad is dead else " (a Task from task_create)")
            assert (len(k.m.events), k.m.cycles) == (n, cycles), name
    n = len(k.m.events)
    calls["task_terminate"](dead)       # terminating twice: only the caller's trap is paid
    assert len(k.m.events) == n and not dead.alive


@pytest.mark.parametrize("bad", BAD)
def test_thread_terminate_needs_a_thread(k, bad):
    """thread_terminate of something that is not a thread: KERN_INVALID_ARGUMENT naming it."""
    with pytest.raises(KernInvalidArgument, match=rf"thread_terminate: {bad!r} is not a thread"):
        k.thread_terminate(bad)


def test_a_port_name_is_an_integer(k):
    """Port names are integers in the task's name space: anything else is the call's own
    invalid-name code (KERN_INVALID_NAME, SEND_INVALID_PORT, RCV_INVALID_PORT) naming it."""
    a = k.task_create(name="a")
    with pytest.raises(KernInvalidName, match=r"port_enable: 'nope' is not a port name"):
        k.port_enable(a, "nope")
    with pytest.raises(KernInvalidName, match=r"port_status: None is not a port name"):
        k.port_status(a, None)
    with pytest.raises(SendInvalidPort, match=r"msg_send: destination 'nope' is no right in "):
        k.msg_send(a, Message(remote_port="nope"))
    with pytest.raises(SendInvalidPort, match=r"destination None is no right in task a"):
        k.rpc(a, None)
    with pytest.raises(RcvInvalidPort, match=r"msg_receive: name 'nope' is not a receive right"):
        k.msg_receive(a, "nope")


def test_vm_protect_and_vm_copy_name_a_bad_number(k):
    """vm_protect takes protection bits 0..7 (READ|WRITE|EXECUTE), vm_copy integer addresses
    and sizes: anything else is KERN_INVALID_ARGUMENT naming the value, nothing changed."""
    a = k.task_create(name="a")
    x = k.vm_allocate(a, 0, 2 * k.page)
    for bad in (None, "rw", 8, -1):
        with pytest.raises(KernInvalidArgument, match=rf"vm_protect: protection {bad!r}; allowed"):
            k.vm_protect(a, x, k.page, False, bad)
    assert k.vm_regions(a)[0].protection == 3
    for bad in (None, "0x1000"):
        with pytest.raises(KernInvalidArgument, match=rf"vm_copy: {bad!r} is not an address"):
            k.vm_copy(a, x, k.page, bad)


@pytest.mark.parametrize("call, args", [
    ("pager_data_provided", (None, b"x" * 4096)),
    ("pager_data_provided", (0, b"x" * 4096, None, 8)),
    ("pager_data_unavailable", ("0", 4096)),
    ("pager_data_lock", (0, None, 1)),
    ("pager_data_lock", (0, 4096, "rw")),
    ("pager_flush_request", (0, -1)),
    ("pager_clean_request", (None, 4096)),
    ("pager_data_error", (0, 4096.0)),
    ("pager_data_provided_physical", (0, None)),
])
def test_pager_calls_check_offsets_sizes_and_lock_values(k, call, args):
    """The manager's calls to the kernel (pager_data_provided, pager_data_lock, ...) carry
    offsets, sizes and lock values: anything but a non-negative integer (a lock value: VM_PROT_*
    bits, 0..7) is KERN_INVALID_ARGUMENT naming the call, and nothing is sent or allocated."""
    pager = k.task_create(name="pager")
    n = len(k.m.events)
    with pytest.raises(KernInvalidArgument, match=call):
        getattr(k, call)(pager, 1, *args)
    assert len(k.m.events) == n


@pytest.mark.parametrize("bad", BAD)
def test_the_inspection_helpers_name_a_bad_task(k, bad):
    """peek and object_of (what notebooks and exercises use to look inside a task) refuse
    something that is not a live task with KERN_INVALID_TASK, and a bad range with
    KERN_INVALID_ARGUMENT, instead of an AttributeError."""
    with pytest.raises(KernInvalidTask, match=rf"peek: {bad!r} is not a task"):
        k.peek(bad, 0, 4)
    with pytest.raises(KernInvalidTask, match=rf"object_of: {bad!r} is not a task"):
        k.object_of(bad, 0)
    t = k.task_create(name="t")
    with pytest.raises(KernInvalidArgument, match="peek: va -1 and n 4"):
        k.peek(t, -1, 4)
    assert k.peek(t, 0, 4) is None and k.object_of(t, 0) is None
    k.task_terminate(t)
    with pytest.raises(KernInvalidTask, match="peek: task t has terminated"):
        k.peek(t, 0, 4)
