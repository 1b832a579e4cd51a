"""The cycle counter's named categories.  Their sum is the total, always.

Accesses are charged to the *mode* category in force (user work, kernel work, server
work, ...); walks, cache misses, faults and switches to their own categories.
"""
import numpy as np

from .errors import ConfigError

CATEGORIES = (
    ("user", "user-level work of applications"),
    ("kernel", "kernel path work (instructions and data of kernel paths)"),
    ("server", "work of a user-level server (Linux server, pager, file server)"),
    ("emulation", "emulation library / trampoline work in the client's space"),
    ("entry_exit", "kernel entry and exit (trap, sysenter, iret)"),
    ("ipc", "IPC path of the microkernel"),
    ("space_switch", "address-space switch (CR3 load, ASID change, segment reload)"),
    ("tlb_walk", "TLB refill: page-table walk after a TLB miss"),
    ("cache_miss", "cache misses of data and instruction references"),
    ("copy", "copying data between address spaces or buffers"),
    ("fault", "exception delivery for page faults and protection faults"),
    ("disk", "waiting for the disk"),
    ("idle", "idle: no runnable thread"),
)
NAMES = tuple(n for n, _ in CATEGORIES)
DESCRIPTIONS = dict(CATEGORIES)
INDEX = {n: i for i, n in enumerate(NAMES)}
NCAT = len(NAMES)

(USER, KERNEL, SERVER, EMULATION, ENTRY_EXIT, IPC, SPACE_SWITCH, TLB_WALK, CACHE_MISS,
 COPY, FAULT, DISK, IDLE) = range(NCAT)


def category_index(name):
    """Index of a category given by name or index; raises ConfigError (a ValueError) naming the
    allowed ones."""
    if isinstance(name, (int, np.integer)):
        if 0 <= int(name) < NCAT:
            return int(name)
        raise ConfigError(f"cycle category {name} out of range 0..{NCAT - 1}")
    if name not in INDEX:
        raise ConfigError(f"cycle category {name!r} unknown; allowed: {', '.join(NAMES)}")
    return INDEX[name]


def as_dict(cyc):
    """A cycle-counter array as {category: cycles}, every category present."""
    return {n: int(cyc[i]) for i, n in enumerate(NAMES)}
