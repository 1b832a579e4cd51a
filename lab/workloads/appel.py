"""Appel & Li's user-level virtual-memory benchmarks (S97 Table 5) on L4 and on native Linux:
what they are and how they are measured.

    Fault   a user-level pager in another address space maps an existing page (L4 only: Linux
            has no user-level pagers)
    Trap    a write to a write-protected page, until the user's handler runs
    Appel1  trap + prot1 + unprot: a random protected page is written; the handler protects
            another page (the one unprotected last) and unprotects the faulting one
    Appel2  protN + trap + unprot: 100 pages are protected at once, then written in random
            order; the handler unprotects each (reported per page, protN included)

The L4 side (the handler is a pager) is lab/workloads/appel_l4.py; the native Linux side (a
SIGSEGV handler and mprotect) is lab/workloads/appel_linux.py, on the system calls lab/mono
lacks, which lab/workloads/linux_vm.py supplies; what they share is
lab/workloads/appel_common.py.
This module is the entry point and re-exports their names.

    measure("Appel1", "l4", quick=True).us        # -> microseconds per operation
"""
from enum import Enum

# re-exported: every name this module offered before the split into the modules below
from lab.workloads.appel_common import (characteristic, footprint, Measured, COUNTED,  # noqa: F401
                                        _Samples)
from lab.workloads.appel_l4 import (PAGE, PAGE_SHIFT, L4_REGION, MUTATOR_TEXT,  # noqa: F401
                                    MUTATOR_STACK, aligned_fpages, Action, AppelPager, L4Appel,
                                    l4_fault, l4_trap, l4_appel1, l4_appel2)
from lab.workloads.linux_vm import LinuxVM, extension_image  # noqa: F401
from lab.workloads.appel_linux import RW, linux_trap, linux_appel1, linux_appel2  # noqa: F401


class Bench(Enum):
    FAULT = "Fault"
    TRAP = "Trap"
    APPEL1 = "Appel1"
    APPEL2 = "Appel2"


SYSTEMS = ("l4", "linux")


def _bench(name):
    try:
        return name if isinstance(name, Bench) else Bench(name)
    except ValueError:
        raise ValueError(f"benchmark {name!r} unknown; allowed: "
                         f"{', '.join(b.value for b in Bench)}") from None


# ---------------------------------------------------------------------- the table
def sizes(quick):
    """(operations timed for Fault/Trap/Appel1, Appel2 rounds of `pages` pages)."""
    return (10, 1) if quick else (100, 3)


def measure(bench, system, cpu_profile="pentium-133", seed=1, quick=False, n=None,
            rounds=None, placement_seed=None):
    """Run one benchmark on "l4" or "linux"; returns a Measured (cycles and µs per op).
    `n` operations (Fault, Trap, Appel1) and Appel2's `rounds` default to `sizes(quick)`;
    `placement_seed` is the Machine's frame order (None: lowest first)."""
    b = _bench(bench)
    if system not in SYSTEMS:
        raise ValueError(f"system {system!r} unknown; allowed: {', '.join(SYSTEMS)}")
    n, rounds = (n or sizes(quick)[0]), (rounds or sizes(quick)[1])
    for what, v in (("operations", n), ("rounds", rounds)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{what} {v!r} must be an integer >= 1")
    npages = int(characteristic("pages"))
    if system == "l4":
        w = L4Appel(cpu_profile, seed, npages, placement_seed)
        run = {Bench.FAULT: l4_fault, Bench.TRAP: l4_trap, Bench.APPEL1: l4_appel1,
               Bench.APPEL2: l4_appel2}[b]
        return run(w, rounds if b is Bench.APPEL2 else n).result()
    if b is Bench.FAULT:
        raise ValueError("Fault needs a user-level pager in another address space: Linux has "
                         "none (S97 Table 5 gives no Linux number)")
    from lab.linux import boot
    k = boot("linux", cpu_profile=cpu_profile, seed=seed, log_syscalls=False,
             placement_seed=placement_seed)
    prog = {Bench.TRAP: lambda p: linux_trap(p, n, npages),
            Bench.APPEL1: lambda p: linux_appel1(p, n, npages, seed),
            Bench.APPEL2: lambda p: linux_appel2(p, rounds, npages, seed)}[b]
    proc = k.spawn(prog, name=b.value.lower())
    k.run()
    s, _vm = proc.result
    return s.result()
