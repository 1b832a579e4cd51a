"""User-level pagers (S95 §3.2, the lecture: "uses user-level pagers"): a page fault of a thread
arrives at its pager as an IPC; the pager answers with a map item from its own address space,
and the kernel enters the mapping and lets the faulting access retry.

Subclass `Pager` and override:

    page_fault(self, thread, va, write) -> MapItem | None
        A fault of `thread` at `va`.  Return a map (or grant) item of a page the pager has
        (`self.map_item(my_va, rights, send_base=va)`), or None to refuse (the faulting thread
        then gets L4_SIM_PF_UNRESOLVED).  Raising a KernelError sends it back as the error.
    request(self, msg) -> Message | None
        Any other message (a protocol of your own).  The default refuses it.

Helpers: `acquire(va, npages)` faults pages into the pager's own space from *its* pager
(sigma0 by default), `map_item`/`grant_item` build items, `work(instructions)` charges the
pager's own user-level work.  The pager's thread loops in `ipc_reply_and_wait`.
"""
from engine import ops as O

from lab.errors import KernelError

from .args import check_flag, check_int, check_name, check_number
from .errors import InvalidArgument, IpcError
from .fpage import Fpage, PAGE_SHIFT
from .ipc import ipc_wait, ipc_reply_and_wait
from .message import Message, MapItem, GrantItem

PAGE = 1 << PAGE_SHIFT


class Pager:
    fault_instructions = 0           # user-level work per fault (subclasses set their own)

    def __init__(self, kernel, name="pager", pager=None, small=False):
        from .kernel import L4Kernel         # (the kernel module loads sigma0, a pager)
        if not isinstance(kernel, L4Kernel):
            raise InvalidArgument(f"{type(self).__name__}: {kernel!r} is not an L4Kernel")
        check_name(name, f"{type(self).__name__}: name")
        self.k = kernel
        self.name = name
        parent = kernel.sigma0 if pager is None else pager
        self.task = kernel.task_new(name, pager=parent, program=self._loop, small=small)
        self.thread = self.task.thread
        self.faults = 0

    # -- the loop (not to be overridden) --
    def _loop(self, t):
        msg = yield ipc_wait()
        while True:
            reply = self._answer(msg)
            try:
                msg = yield ipc_reply_and_wait(msg.sender, reply)
            except IpcError:         # the client is gone or no longer waits: serve the next
                msg = yield ipc_wait()

    def _answer(self, msg):
        try:
            if msg.pagefault is not None:
                self.faults += 1
                self.work(self.fault_instructions)
                va, write = msg.pagefault
                item = self.page_fault(msg.sender, va, write)
                return Message(items=(item,)) if item is not None else Message()
            reply = self.request(msg)
            return reply if reply is not None else Message()
        except KernelError as e:
            return Message(error=e)

    # -- override points --
    def page_fault(self, thread, va, write):
        return None

    def request(self, msg):
        raise InvalidArgument(f"{self.name}: unknown request {msg!r}")

    # -- helpers --
    def map_item(self, va, rights="rw", send_base=None, log2size=PAGE_SHIFT):
        return MapItem(Fpage(va, log2size, rights), send_base)

    def grant_item(self, va, rights="rw", send_base=None, log2size=PAGE_SHIFT):
        return GrantItem(Fpage(va, log2size, rights), send_base)

    def acquire(self, va, npages=1, write=True):
        """Touch `npages` pages from `va` in the pager's own space: each faults to this
        pager's own pager (sigma0 for a first-level pager), which maps it."""
        check_int(npages, f"{self.name}: acquire: npages", 1)
        self.k._check_user_va(va, npages * PAGE, f"{self.name}: acquire")
        check_flag(write, f"{self.name}: acquire: write")
        vas = [va + i * PAGE for i in range(npages)]
        self.k.execute(self.thread, O.access("w" if write else "r", vas), category="server")

    def has(self, va):
        check_int(va, f"{self.name}: has: va")
        return self.k.db.lookup(self.task, va & ~(PAGE - 1)) is not None

    def work(self, instructions):
        check_number(instructions, f"{self.name}: work: instructions")
        if instructions:
            self.k.m.instructions(instructions, "server")

    def __repr__(self):
        return f"<{type(self).__name__} {self.name} task {self.task.number}>"
