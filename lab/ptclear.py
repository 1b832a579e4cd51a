"""Clearing new page-table frames: a kernel that hangs a new table into an address space first
clears the frame it takes for it (Linux 2.0: pgd_alloc and pte_alloc take get_free_page's
zeroed page; Mach: pmap_create and pmap_expand zero the page directory and each page table;
L4: task_new allocates and clears a page directory, a map that needs a page table clears one).

The engine builds the hardware's tables for free -- they are what the MMU walks -- so each
kernel charges the clearing of the tables it owns, with its own page-clear path: 1024 stores,
the frame's lines written through the caches (on the Pentium's write-no-allocate L1 each line
drains to L2).  Tables a kernel shares with every space (its own image's, which real kernels
share by copying directory entries) are *adopted*: known, never cleared again.

    frames = TableFrames(machine)
    frames.adopt(sid)               # the new space's kernel tables: shared, nothing to clear
    for pa in frames.new(sid): ...  # tables the last map hung in: clear each
"""


class TableFrames:
    """Per address space, the table frames its kernel has cleared (or shares)."""

    def __init__(self, machine):
        self.m = machine
        self.known = {}             # space id -> set of table frame addresses

    def adopt(self, sid):
        """Take every current table frame of `sid` as cleared (or shared)."""
        self.known[sid] = set(self.m.table_frames(sid))

    def new(self, sid):
        """Table frames of `sid` not seen before, ascending; they are known from now on."""
        known = self.known.setdefault(sid, set())
        if self.m.table_count(sid) == len(known):
            return ()
        fresh = tuple(pa for pa in self.m.table_frames(sid) if pa not in known)
        known.update(fresh)
        return fresh

    def forget(self, sid):
        self.known.pop(sid, None)
