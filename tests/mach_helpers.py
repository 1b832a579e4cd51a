"""Shared set-up of the Mach tests (not a test module)."""
from engine import Machine
from lab.mach import MachKernel, Message


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
