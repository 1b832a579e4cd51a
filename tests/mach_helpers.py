"""Shared set-up of the Mach tests (not a test module)."""
import sys

from hypothesis import event
from hypothesis.control import currently_in_test_context

from engine import Machine
from lab.mach import MachError, MachKernel, Message


def kernel(memory_mb=16, **kw):
    m = Machine("pentium-133", memory_bytes=memory_mb << 20)
    return m, MachKernel(m, **kw)


def echo_server(k, name="server", handler=None, threads=1):
    """A server task with a port in its default group; returns (task, port name)."""
    s = k.task_create(name=name, category="server")
    p = k.port_allocate(s, f"{name}.port")
    k.port_enable(s, p)
    h = handler or (lambda msg: Message(remote_port=msg.remote_port, id=msg.id + 100,
                                        data=msg.data))
    for _ in range(threads):
        k.thread_create(s, handler=h)
    return s, p


def raises(exc, fn):
    """Run fn; it must raise exactly `exc` (a Mach return code), nothing else.  Inside a
    hypothesis test the code is recorded as an event (shown with --hypothesis-show-statistics)."""
    if currently_in_test_context():
        event(f"{sys._getframe(1).f_code.co_name}: {exc.code}")
    try:
        fn()
    except MachError as e:
        assert type(e) is exc, f"expected {exc.code} ({exc.__name__}), got {e.code}: {e}"
        return e
    raise AssertionError(f"expected {exc.code}; the call succeeded")
