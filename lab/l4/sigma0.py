"""Sigma0, the root pager (S95 §3.2): it owns all physical memory, and every address space is
built from its pages by recursive map and grant.

Its protocol, as in L4 version 2:
  * a page fault at address X: sigma0 maps physical page X at X (idempotent mapping), to the
    first task that asks for it; a page another task has is refused;
  * the request word ANY_PAGE: sigma0 maps some free frame into the requester's receive window.
Frames the L4 kernel uses (its image, its TCBs) and page-table frames are never handed out.
A frame some other allocator of the machine took (e.g. Linux's page allocator running in the
L4Linux server) is handed to the task asking for it: that task's own memory.  When the last
mapping of a frame sigma0 took from the free list goes away (its holder deleted or flushed),
sigma0 returns the frame to the free list.
"""
from engine.errors import OutOfFrames

from .errors import ReceiveMapFailed
from .fpage import Fpage, PAGE_SHIFT
from .message import Message, MapItem
from .pager import Pager

ANY_PAGE = 0xFFFFFFFC          # request word: "any free page, please"
PAGE = 1 << PAGE_SHIFT


class Sigma0(Pager):
    def __init__(self, kernel):
        self.k = kernel
        self.name = "sigma0"
        self.allocated = set()        # frames (paddr) sigma0 took from the machine's free list
        self.faults = 0
        self.fault_instructions = int(kernel.profile["sigma0_fault_instructions"])
        self.task = kernel.task_new("sigma0", pager=None, program=self._loop, charge=False)
        self.task.is_sigma0 = True
        self.thread = self.task.thread

    def page_fault(self, thread, va, write):
        pa = va & ~(PAGE - 1)
        self._give(pa, thread.task)
        return MapItem(Fpage(pa, PAGE_SHIFT, "rwx"), send_base=va)

    def request(self, msg):
        if msg.words[:1] == (ANY_PAGE,):
            pa = self._any()
            return Message(items=(MapItem(Fpage(pa, PAGE_SHIFT, "rwx")),))
        return super().request(msg)

    def _give(self, pa, task):
        mem = self.k.m.memory
        f = pa // mem.frame_size
        if not 0 < f < mem.nframes:
            raise ReceiveMapFailed(f"sigma0: no physical page at 0x{pa:x} "
                                   f"(memory 0x{mem.frame_size:x}..0x{mem.size:x})")
        root = self.k.db.roots.get(pa)
        if root is not None:
            others = sorted({c.task.name for c in root.children if c.task is not task})
            if others:
                raise ReceiveMapFailed(f"sigma0: page 0x{pa:x} belongs to {', '.join(others)}")
            return
        if f in self.k.reserved_frames or self._is_table(f):
            raise ReceiveMapFailed(f"sigma0: page 0x{pa:x} is kernel memory")
        if not mem.is_allocated(f):
            mem.alloc_frame_at(f)
            self.allocated.add(pa)
        self.k.db.root(pa)

    def _any(self):
        skipped, pa = [], None
        try:
            while True:
                try:
                    pa = self.k.m.alloc_page()
                except OutOfFrames as e:
                    raise ReceiveMapFailed(f"sigma0: no free page left ({e})") from e
                if pa not in self.k.db.roots:
                    break
                skipped.append(pa)        # free in the machine, but still in some task's space
        finally:
            for q in skipped:
                self.k.m.free_page(q)
        self.allocated.add(pa)
        self.k.db.root(pa)
        return pa

    def _is_table(self, f):
        """Is frame f one of the engine's page tables (which no task may map)?"""
        tables = getattr(getattr(self.k.m, "tables", None), "tables", {})
        return any(f in frames for frames in tables.values())

    def released(self, pa):
        """The last mapping of frame `pa` is gone."""
        if pa in self.allocated:
            self.allocated.discard(pa)
            self.k.m.free_page(pa)
