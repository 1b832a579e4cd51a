"""L4 address spaces (tasks).  Each is an engine address space (`sid`) holding the L4 kernel's
global pages above 0xC0000000 and whatever its pagers mapped into it below; its threads run
in it.

A *small* space (S97 §3, S95 §4.1) is a slice of the 512 MB small-space region that every large
space shares; switching between a large space and a small one reloads segment registers instead
of CR3, so no TLB entry is flushed.  A small space of `size` bytes can only hold addresses below
`size`; a small task that maps above its size is promoted to a large space (S95 §4.1).
"""
from .errors import InvalidArgument

KERNEL_BASE = 0xC0000000        # the L4 kernel's region in every space


class Task:
    """One L4 task: an address space and its threads."""

    def __init__(self, kernel, number, name, sid, small, small_size):
        self.kernel = kernel
        self.number = number            # L4 task number
        self.name = name
        self.sid = sid                  # engine space id
        self.small = small
        self.small_size = small_size
        self.threads = []
        self.alive = True
        self.is_sigma0 = False

    @property
    def thread(self):
        """The task's first thread (lthread 0)."""
        return self.threads[0]

    def user_limit(self):
        """First address a mapping may not use: the kernel's region.  (A small task may map
        above its size too: the kernel then promotes it to a large space.)"""
        return KERNEL_BASE

    def check_user_range(self, base, size, what):
        if base < 0 or base + size > self.user_limit():
            raise InvalidArgument(f"{what}: 0x{base:x}..0x{base + size:x} is outside task "
                                  f"{self.name}'s user range 0..0x{self.user_limit():x}")

    def __repr__(self):
        kind = f"small {self.small_size >> 20} MB" if self.small else "large"
        return f"<task {self.number} {self.name} ({kind}, space {self.sid})>"
