"""Cycle breakdowns of single operations, uncalibrated (starting path lengths):

    python -m lab.mach.breakdown [cpu_profile]

prints a null Mach RPC (msg_rpc to a server task and its reply) and MkLinux's getpid in
both variants, each measured once warm, by cycle category.
"""
import sys

from engine import Machine

from .kernel import MachKernel
from .message import Message


def null_rpc(cpu_profile="pentium-133", warm=3):
    """(Measurement, events) of one warm null RPC between two tasks."""
    m = Machine(cpu_profile)
    k = MachKernel(m)
    c = k.task_create(name="client")
    s = k.task_create(name="server", category="server")
    p = k.port_allocate(s)
    k.port_enable(s, p)
    k.thread_create(s, handler=lambda msg: Message(remote_port=msg.remote_port))
    to_s = k.port_insert_send(s, p, c)
    for _ in range(warm):
        k.rpc(c, to_s)
    with m.measure() as r:
        k.rpc(c, to_s)
    return r


def mklinux_getpid(system, cpu_profile="pentium-133", warm=5):
    """Measurement of one warm getpid on MkLinux (`system`: mklinux_in_kernel/_user)."""
    from lab.linux import boot
    linux = boot(system, cpu_profile=cpu_profile)
    out = {}

    def prog(p):
        for _ in range(warm):
            p.getpid()
        with linux.m.measure() as r:
            p.getpid()
        out["r"] = r
    linux.spawn(prog)
    linux.run()
    return out["r"]


def _row(name, r):
    cats = ", ".join(f"{k} {v}" for k, v in r.by_category.items() if v)
    st = r.stats
    return (f"{name:22s} {r.cycles:6d} cycles ({r.us:.2f} us): {cats}\n{'':22s} tlb misses "
            f"{st['tlb.misses']}, cr3 loads {st['cr3.loads']}, l1i misses {st['l1i.misses']}, "
            f"l1d misses {st['l1d.misses']}, l2 misses {st['l2.misses']}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    cpu = argv[0] if argv else "pentium-133"
    print(_row("null Mach RPC", null_rpc(cpu)))
    for system in ("mklinux_in_kernel", "mklinux_user"):
        print(_row(f"{system} getpid", mklinux_getpid(system, cpu)))


if __name__ == "__main__":
    main()
