"""Native Linux: the monolithic kernel in supervisor mode on bare hardware (S97's baseline).

    kernel image    at 0xC0000000 (text) and 0xC0400000 (data), mapped with large GLOBAL pages
                    (4 MB on the Pentium) into every process's space: a CR3 load keeps them
    physical memory mapped at PHYS_VA (Linux's direct map) with large global pages, so the
                    kernel's side of a copy (pipe buffer, cache page, sk_buff) is a real access
    system call     int 0x80 + iret: `kernel_entry_exit_cycles` (category entry_exit), then
                    Linux's paths in kernel mode, in the caller's address space
    process switch  CR3 load (`machine.switch`: the engine flushes the non-global TLB entries)
                    + Linux's `switch_to` path
    page faults     the hardware exception (charged by the engine) -> `linux.page_fault`
    copy_user       rep movs between user pages and kernel memory, through TLB and caches

Linux's page tables *are* the hardware's here (`hardware_page_tables`): fork copies the PTEs at
once, where L4Linux and MkLinux let the child fault them in; the frames the engine hangs in as
tables (a process's page directory, a page table when a region gets its first page) are the
ones Linux clears (pgd_alloc, pte_alloc: lab/ptclear.py).
"""
import numpy as np

from engine import Fault, ops as O
from lab.image import KernelImage
from lab.ptclear import TableFrames

from .arch import LinuxArch, ProcessContext

TEXT_VA = 0xC0000000            # text, then data, in the kernel's 4 MB pages
PHYS_VA = 0xD0000000


class NativeContext(ProcessContext):
    def __init__(self, pid, space):
        super().__init__(pid, space)
        self.physmap = set()        # large pages of the direct map present in this space


class NativeArch(LinuxArch):
    name = "linux"
    hardware_page_tables = True

    def boot(self):
        m = self.m
        self.image = KernelImage(m, self.linux.image_profile, TEXT_VA, None,
                                 large=True, global_=True)
        self.image.place()
        self.large = 1 << m.fmt.level_shift(m.fmt.levels - 2)
        if PHYS_VA + m.memory.size > (1 << m.fmt.va_bits) or \
                (m.fmt.va_bits <= 32 and PHYS_VA + m.memory.size > 1 << 32):
            raise ValueError(f"native: {m.memory.size >> 20} MB of memory do not fit the direct "
                             f"map at 0x{PHYS_VA:x}")
        self.entry_exit = m.profile["kernel_entry_exit_cycles"]
        self.copy_rate = m.profile["copy_bytes_per_cycle"]
        self.line = self.image.line
        self.kernel_ctx = NativeContext(0, m.new_space())     # swapper_pg_dir (the idle task)
        self.image.map_into(self.kernel_ctx.space)
        m.switch(self.kernel_ctx.space)
        self.current = self.kernel_ctx
        self._path_ops = {}
        self.tables = TableFrames(m)

    # ------------------------------------------------------------------ kernel work
    def run_path(self, path):
        ops = self._path_ops.get(path)
        if ops is None:
            ops = self._path_ops[path] = self.image.path_ops(path, "kernel")
        m = self.m
        old = m.set_mode("kernel")
        try:
            m.run(ops, check=False)
        finally:
            m.set_mode(old)

    def syscall(self, ctx, name, body):
        self._be(ctx)
        self.m.charge("entry_exit", self.entry_exit)    # int 0x80 ... iret
        self.run_path("syscall_entry")                  # SAVE_ALL ... RESTORE_ALL
        # entry.S's dispatch and ret_from_sys_call are i386 code: the L4Linux and MkLinux
        # servers replace them with their own message decoding and reply paths
        self.run_path("syscall_dispatch")
        return body()

    # ------------------------------------------------------------------ processes
    def create_process(self, pid, parent=None):
        ctx = NativeContext(pid, self.m.new_space())
        self.image.map_into(ctx.space)                  # the kernel's PDEs in every pgd
        self.tables.adopt(ctx.space)
        self.linux.mm.clear_table(self.m.root(ctx.space), "pgd")     # pgd_alloc
        return ctx

    def destroy_process(self, ctx):
        if self.current is ctx:                         # exit_mm: back to swapper_pg_dir
            self.m.switch(self.kernel_ctx.space)
            self.current = self.kernel_ctx
        self.tables.forget(ctx.space)
        self.m.destroy_space(ctx.space)
        ctx.space = None

    def switch_process(self, prev, nxt):
        self.m.switch(nxt.space)                        # CR3 load (the TSS switch loads it)
        self.current = nxt
        self.run_path("switch_to")

    def _be(self, ctx):
        """The CPU runs in `ctx`'s space (it does after switch_process; idle leaves the last)."""
        if self.current is not ctx:
            self.m.switch(ctx.space)
            self.current = ctx

    # ------------------------------------------------------------------ user memory
    def map_user(self, ctx, va, pa, perms):
        self.m.map(ctx.space, va, pa, perms)
        for t in self.tables.new(ctx.space):           # pte_alloc: the table the entry needed
            self.linux.mm.clear_table(t, "pte")

    def unmap_user(self, ctx, va):
        self.m.unmap(ctx.space, va)                     # PTE clear + invlpg

    def protect_user(self, ctx, va, perms):
        self.m.protect(ctx.space, va, perms)

    def _physmap(self, ctx, pa, n):
        """Make the direct map cover [pa, pa+n) in ctx's space (Linux maps all of it in every
        pgd; it is filled in here when first used, which costs nothing either way)."""
        first, last = pa // self.large, (pa + n - 1) // self.large
        for i in range(first, last + 1):
            if i not in ctx.physmap:
                self.m.map(ctx.space, PHYS_VA + i * self.large, i * self.large, "rw",
                           global_=True, large=True)
                ctx.physmap.add(i)
                self.tables.adopt(ctx.space)        # the kernel's tables (formats with more levels)

    def copy_user(self, ctx, va, nbytes, to_user):
        if nbytes <= 0:
            return
        self._be(ctx)
        user = O.access("w" if to_user else "r", O.lines(va, nbytes, self.line))
        kpa = self.linux.copy_kernel_pa
        if kpa is not None:
            self._physmap(ctx, kpa, nbytes)
            kern = O.access("r" if to_user else "w", O.lines(PHYS_VA + kpa, nbytes, self.line))
            src, dst = (kern, user) if to_user else (user, kern)
            if len(src) == len(dst):                    # the copy loop: load a line, store it
                body = np.empty(2 * len(src), np.int64)
                body[0::2], body[1::2] = src, dst
            else:
                body = O.concat(src, dst)
        else:
            body = user
        ops = O.concat(O.mode("kernel"), O.charge("copy", nbytes / self.copy_rate), body)
        m = self.m
        old = m.set_mode("kernel")
        try:
            m.run(ops, check=False, on_fault=lambda f: self._fault(ctx, f))
        finally:
            m.set_mode(old)

    def touch_kernel_data(self, pa, nbytes, kind="r"):
        ctx = self.current
        self._physmap(ctx, pa, nbytes)
        self.m.execute(O.concat(O.mode("kernel"), O.access(kind, O.lines(PHYS_VA + pa, nbytes,
                                                                         self.line))))

    def run_user(self, ctx, ops):
        self._be(ctx)
        m = self.m
        ops = np.asarray(ops, np.int64)
        # The U/S bit: the kernel's pages (global, in every space) are not the user's.  The
        # engine models no privilege levels, so the first user access at or above TASK_SIZE
        # is turned into the protection fault the hardware would raise.
        code, va = ops & 0xFF, ops >> 8
        bad = np.flatnonzero((code <= 2) & (va >= self.linux.task_size))
        old = m.set_mode("user")
        try:
            m.run(O.concat(O.mode("user"), ops[:bad[0]] if bad.size else ops),
                  on_fault=lambda f: self._fault(ctx, f))
            if bad.size:
                m.charge("fault", m.profile["exception_cycles"])
                self._fault(ctx, Fault(ctx.space, int(va[bad[0]]), "rwx"[int(code[bad[0]])],
                                       "protection", int(bad[0])))
        finally:
            m.set_mode(old)

    def _fault(self, ctx, f):
        """The page-fault exception (its 82 cycles are charged by the engine): Linux's
        do_page_fault in kernel mode, then the access is retried."""
        m = self.m
        old = m.set_mode("kernel")
        try:
            return self.linux.page_fault(ctx, f.va, f.kind)
        finally:
            m.set_mode(old)
