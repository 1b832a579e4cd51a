"""Linux's memory management: page faults, copy-on-write, mmap/munmap/brk, fork's and exit's
share of the address space, and access to user memory.

Linux keeps its own view (`process.MM`: VMAs + logical PTEs) and tells the platform what to
make visible with `arch.map_user/unmap_user/protect_user`.  Faults arrive at `page_fault`:

    demand zero       anonymous page never touched: a read maps the shared zero page read-only,
                      a write gets a fresh zeroed frame (Linux 2.0 do_anonymous_page)
    file page         from the buffer cache (filemap_nopage): shared mappings and reads of
                      private ones map the cache's frame; a write to a private one copies it.
                      Wholly beyond the end of the file: SIGBUS for a shared mapping, demand
                      zero for a private one (filemap_nopage "just maps in a zero page")
    copy-on-write     a write to a page shared after fork (or a file/zero page of a private
                      mapping): copy it, unless this process holds the only reference
    remap             the page is in Linux's table with the rights asked for, but the platform
                      does not map it (L4Linux maps lazily): map it again
    SIGSEGV           no VMA, or the VMA forbids the access (SIGBUS: beyond a shared file's end)

Optional platform hooks: `arch.map_region(ctx, start, length)` after mmap creates a VMA and
`arch.unmap_region(ctx, start, length)` after munmap removes one (MkLinux maps memory objects).

Frames mapped into processes are reference-counted (`mem_map[].count`): anonymous frames are
freed with their last mapping, the cache keeps its own.

Linux's page tables cost what Linux 2.0 pays for them: a page directory per memory map
(pgd_alloc), a page table per region the first time it gets an entry (pte_alloc), each a
cleared frame, given back at exit (free_page_tables).  On native Linux they are the hardware's,
and the platform clears the frames the engine hangs in (lab/linux/native.py); the L4Linux and
MkLinux servers keep them as their own book-keeping, cleared here.  Exec keeps them (Linux 2.0's
clear_page_tables frees them and the new image's faults take new ones: the same few clears on
every platform, not modelled).
"""
from engine.errors import OutOfFrames

from .abi import (PROT_READ, PROT_WRITE, PROT_EXEC, MAP_SHARED, MAP_PRIVATE, MAP_FIXED,
                  MAP_ANONYMOUS, TASK_UNMAPPED_BASE)
from .errors import EFAULT, EINVAL, ENOMEM, BusError, OutOfMemoryKill, SegmentationFault
from .process import MM, PTE, VMA

ANON, CACHE, ZERO = "anon", "cache", "zero"


class MemoryManager:
    def __init__(self, kernel):
        self.k = kernel
        self.m = kernel.m
        self.page = kernel.m.fmt.page_size
        self.refs = {}          # pa -> number of logical PTEs mapping the frame
        self.owner = {}         # pa -> ANON, CACHE or ZERO
        self.zero_page = None
        fmt = self.m.fmt
        self.region_shift = fmt.level_shift(fmt.levels - 2)    # one leaf table maps this much

    def boot(self):
        self.zero_page = self.m.alloc_page()
        self.owner[self.zero_page] = ZERO
        self.refs[self.zero_page] = 0

    def new_mm(self):
        """A memory map with its page directory (pgd_alloc; the platform's own when Linux's
        tables are the hardware's)."""
        mm = MM(self.page)
        if not self._hardware_tables():
            mm.pgd = self._table_alloc("pgd")
        return mm

    def _hardware_tables(self):
        return getattr(self.k.arch, "hardware_page_tables", False)

    # ------------------------------------------------------------------ page tables
    def clear_table(self, pa, what):
        """Clear the page-table frame `pa` ("pgd" or "pte") before its first use, as
        get_free_page does: its stores go through the caches, as do_anonymous_page's do."""
        k = self.k
        k.arch.run_path("clear_page")
        k.arch.touch_kernel_data(pa, self.page, "w")
        k.log("page_table", table=what, pa=pa)

    def _table_alloc(self, what):
        pa = self.m.alloc_page()
        self.clear_table(pa, what)
        return pa

    def _pte_table(self, mm, va):
        """pte_alloc: the page table of `va`'s region, taken when it gets its first entry.
        (Formats with more levels also have middle tables; only the leaf ones are counted.)"""
        r = va >> self.region_shift
        if r not in mm.tables and not self._hardware_tables():
            mm.tables[r] = self._table_alloc("pte")

    def _free_tables(self, mm):
        """free_page_tables (exit): the page tables and the directory go back."""
        for r in sorted(mm.tables):
            self.m.free_page(mm.tables[r])
        mm.tables = {}
        if mm.pgd:
            self.m.free_page(mm.pgd)
            mm.pgd = 0

    # ------------------------------------------------------------------ frames
    def alloc_anon(self):
        pa = self.m.alloc_page()
        self.owner[pa], self.refs[pa] = ANON, 0
        return pa

    def register_cache_frame(self, pa):
        self.owner[pa], self.refs[pa] = CACHE, 0

    def forget_cache_frame(self, pa):
        if self.refs.get(pa):
            raise AssertionError(f"forget_cache_frame: frame 0x{pa:x} is still mapped")
        self.owner.pop(pa, None)
        self.refs.pop(pa, None)

    def get_page(self, pa):
        self.refs[pa] += 1

    def put_page(self, pa):
        n = self.refs[pa] - 1
        if n < 0:
            raise AssertionError(f"put_page: frame 0x{pa:x} has no reference left")
        self.refs[pa] = n
        if n == 0 and self.owner[pa] == ANON:
            del self.refs[pa], self.owner[pa]
            self.m.free_page(pa)

    def mapcount(self, pa):
        return self.refs.get(pa, 0)

    # ------------------------------------------------------------------ helpers
    def _perms(self, vma, writable):
        return ("rw" if writable else "r") + ("x" if vma.prot & PROT_EXEC else "")

    def user_page(self, proc, va):
        """(frame, perms) of the page at `va` in Linux's table: what a platform maps when a
        fault left Linux's PTE usable without a map_user (do_wp_page's reuse of a page the
        platform never had); None if Linux has no page there."""
        pte, vma = proc.mm.pte(va - va % self.page), proc.mm.find_vma(va)
        if pte is None or vma is None:
            return None
        return pte.pa, self._perms(vma, pte.writable)

    def _set_pte(self, proc, va, vma, pa, writable):
        self._pte_table(proc.mm, va)
        proc.mm.ptes[va // self.page] = PTE(pa, writable)
        self.get_page(pa)
        self.k.arch.map_user(proc.ctx, va, pa, self._perms(vma, writable))

    def _zap(self, proc, va, pte, unmap=True):
        """Clear one PTE (zap_pte_range): release the frame; tell the platform if asked."""
        self.k.arch.run_path("zap_pte")
        if unmap:
            self.k.arch.unmap_user(proc.ctx, va)
        del proc.mm.ptes[va // self.page]
        buf = self.k.bcache.by_frame(pte.pa)
        if buf is not None and pte.writable:
            buf.dirty = True                # a shared mapping may have written it
        self.put_page(pte.pa)

    # ------------------------------------------------------------------ page faults
    def page_fault(self, proc, va, kind, exception=True):
        """Resolve a fault of `proc` at `va` ("r", "w", "x"); True when the access may retry.
        `exception=False`: called by the kernel itself before a copy (verify_area), not by
        the hardware.  Raises SegmentationFault for an access no VMA allows."""
        k = self.k
        if kind not in ("r", "w", "x"):
            raise ValueError(f"page_fault: kind {kind!r}; allowed: r, w, x")
        k.arch.run_path("do_page_fault")
        mm, page_va = proc.mm, va - va % self.page
        vma = mm.find_vma(va)
        if vma is None or not vma.allows(kind):
            proc.fatal_signal = SegmentationFault.signal
            k.log("segfault", pid=proc.pid, va=va, kind=kind,
                  reason="no mapping" if vma is None else "protection")
            raise SegmentationFault(f"pid {proc.pid}: {kind} access at 0x{va:x} "
                                    f"({'no VMA' if vma is None else 'VMA forbids it'})")
        pte = mm.ptes.get(page_va // self.page)
        try:
            if pte is None:
                how = self._no_page(proc, page_va, vma, kind)
            elif kind == "w" and not pte.writable:
                how = self._wp_page(proc, page_va, vma, pte)
            else:
                how = "remap"
                k.arch.map_user(proc.ctx, page_va, pte.pa, self._perms(vma, pte.writable))
        except (ENOMEM, OutOfFrames) as e:
            # no frame, or every cache buffer mapped: Linux 2.0's oom() kills the faulting
            # process (an access has no error to return); the allocators changed nothing
            proc.fatal_signal = OutOfMemoryKill.signal
            k.log("oom", pid=proc.pid, va=page_va, kind=kind, reason=str(e))
            raise OutOfMemoryKill(f"pid {proc.pid}: the page fault at 0x{va:x} found no "
                                  f"memory ({e}): killed by SIGKILL") from e
        k.log("page_fault", pid=proc.pid, va=page_va, kind=kind, type=how,
              exception=exception)
        return True

    def _no_page(self, proc, va, vma, kind):
        k = self.k
        if vma.inode is None:                       # do_anonymous_page
            k.arch.run_path("do_anonymous_page")
            return self._demand_zero(proc, va, vma, kind)
        k.arch.run_path("filemap_nopage")           # file page from the cache
        offset = vma.file_offset(va)
        index = offset // self.page
        # beyond the end by i_size, as 2.0's filemap_nopage: a write() in progress may hold
        # the block of a page its copy has not reached yet (the size grows after the copy)
        if offset >= vma.inode.size:
            if not vma.shared:                      # "a private mapping just maps in a zero
                return self._demand_zero(proc, va, vma, kind)       # page" (filemap_nopage)
            proc.fatal_signal = BusError.signal     # no page: do_no_page sends SIGBUS
            k.log("sigbus", pid=proc.pid, va=va, kind=kind, reason="beyond end of file")
            raise BusError(f"pid {proc.pid}: 0x{va:x} lies beyond the end of the file its "
                           f"shared mapping maps (size {vma.inode.size})")
        buf = k.bcache.file_page(vma.inode, index)
        if vma.shared:
            writable = bool(vma.prot & PROT_WRITE)
            if writable and kind == "w":
                buf.dirty = True
            self._set_pte(proc, va, vma, buf.pa, writable)
            return "file"
        if kind == "w":                             # private write: a copy at once
            pa = self.alloc_anon()
            self._copy_frame(buf.pa, pa)
            self._set_pte(proc, va, vma, pa, True)
            return "file-copy"
        self._set_pte(proc, va, vma, buf.pa, False)
        return "file"

    def _demand_zero(self, proc, va, vma, kind):
        """A private page never touched: a read maps the zero page read-only, a write gets a
        fresh zeroed frame."""
        if kind != "w":
            self._set_pte(proc, va, vma, self.zero_page, False)
            return "zero"
        pa = self.alloc_anon()
        self.k.arch.run_path("clear_page")
        self.k.arch.touch_kernel_data(pa, self.page, "w")   # the stores go through the caches
        self._set_pte(proc, va, vma, pa, bool(vma.prot & PROT_WRITE))
        return "anon"

    def _wp_page(self, proc, va, vma, pte):
        """do_wp_page: a write to a page the process may not write yet."""
        k = self.k
        k.arch.run_path("do_wp_page")
        if vma.shared:                              # shared file page mapped read-only
            pte.writable = True
            k.arch.protect_user(proc.ctx, va, self._perms(vma, True))
            return "unprotect"
        if self.owner[pte.pa] == ANON and self.refs[pte.pa] == 1:
            pte.writable = True                     # the other sharers are gone
            k.arch.protect_user(proc.ctx, va, self._perms(vma, True))
            return "cow-reuse"
        new = self.alloc_anon()
        self._copy_frame(pte.pa, new)
        old = pte.pa
        k.arch.unmap_user(proc.ctx, va)
        del proc.mm.ptes[va // self.page]
        self._set_pte(proc, va, vma, new, True)
        self.put_page(old)
        return "cow"

    def _copy_frame(self, src, dst):
        """copy_page: the copy loop, then its loads and stores through the caches."""
        arch = self.k.arch
        arch.run_path("copy_page")
        arch.touch_kernel_data(src, self.page, "r")
        arch.touch_kernel_data(dst, self.page, "w")
        self.m.memory.write(dst, self.m.memory.read(src, self.page))

    # ------------------------------------------------------------------ user memory
    def verify_area(self, proc, va, n, write):
        """Linux's verify_area: the range lies in VMAs allowing the access (charged)."""
        self.k.arch.run_path("verify_area")
        self.check_area(proc, va, n, write)

    def check_area(self, proc, va, n, write):
        if n < 0 or va < 0 or va + n > self.k.task_size:
            raise EFAULT(f"pid {proc.pid}: range {va:#x}+{n} outside user space")
        end, kind = va + n, "w" if write else "r"
        a = va
        while a < end:
            vma = proc.mm.find_vma(a)
            if vma is None or not vma.allows(kind):
                raise EFAULT(f"pid {proc.pid}: {'write to' if write else 'read from'} "
                             f"0x{a:x} not allowed by its mappings")
            a = vma.end

    def prefault(self, proc, va, n, write):
        """Make the user pages of [va, va+n) present (and writable) before the kernel copies,
        so that a copy never faults on any platform (the kernel resolves them itself, as
        2.0's __verify_write does)."""
        p = self.page
        for a in range(va - va % p, va + n, p):
            pte = proc.mm.ptes.get(a // p)
            if pte is None or (write and not pte.writable):
                self.page_fault(proc, a, "w" if write else "r", exception=False)

    def read_user(self, proc, va, n):
        """The bytes at [va, va+n) of `proc` (pages must be present): real memory."""
        out, mem, p = bytearray(), self.m.memory, self.page
        while n > 0:
            pte = proc.mm.ptes.get(va // p)
            if pte is None:
                raise EFAULT(f"pid {proc.pid}: 0x{va:x} is not mapped")
            off = va % p
            c = min(n, p - off)
            out += mem.read(pte.pa + off, c)
            va, n = va + c, n - c
        return bytes(out)

    def write_user(self, proc, va, data):
        mem, p, i = self.m.memory, self.page, 0
        while i < len(data):
            pte = proc.mm.ptes.get(va // p)
            if pte is None or not pte.writable:
                raise EFAULT(f"pid {proc.pid}: 0x{va:x} is not mapped writable")
            off = va % p
            c = min(len(data) - i, p - off)
            mem.write(pte.pa + off, data[i:i + c])
            va, i = va + c, i + c

    # ------------------------------------------------------------------ fork, exec, exit
    def copy_mm(self, parent, child):
        """fork's copy of the address space: VMAs and PTEs, private writable pages made
        copy-on-write in both.  Platforms whose page tables are the hardware's get the
        child's PTEs at once (copy_page_range); the others fault them in."""
        k, arch = self.k, self.k.arch
        eager = getattr(arch, "hardware_page_tables", False)
        cmm = child.mm
        cmm.brk_start, cmm.brk = parent.mm.brk_start, parent.mm.brk
        for v in parent.mm.vmas:
            arch.run_path("fork_copy_vma")
            cmm.vmas.append(VMA(v.start, v.end, v.prot, v.flags, v.inode, v.offset, v.name))
        for va, pte in parent.mm.present(0, self.k.task_size):
            arch.run_path("fork_copy_pte")
            vma = parent.mm.find_vma(va)
            if pte.writable and not vma.shared:
                pte.writable = False
                arch.protect_user(parent.ctx, va, self._perms(vma, False))
            self._pte_table(cmm, va)                # copy_page_range allocates as it goes
            cmm.ptes[va // self.page] = PTE(pte.pa, pte.writable)
            self.get_page(pte.pa)
            if eager:
                arch.map_user(child.ctx, va, pte.pa, self._perms(vma, pte.writable))
        k.log("copy_mm", parent=parent.pid, child=child.pid, pages=len(cmm.ptes),
              vmas=len(cmm.vmas))

    def exit_mmap(self, proc, unmap):
        """Drop every mapping (exit: the platform tears the space down itself, unmap=False;
        exec: the space lives on, unmap=True)."""
        for va, pte in proc.mm.present(0, self.k.task_size):
            self._zap(proc, va, pte, unmap)
        for _v in proc.mm.vmas:
            self.k.arch.run_path("exit_vma")
        proc.mm.vmas = []
        proc.mm.brk_start = proc.mm.brk = 0
        if not unmap:                           # exit (exec keeps them: see the docstring)
            self._free_tables(proc.mm)

    def vmtruncate(self, inode, size):
        """A file shrinks to `size` bytes: every process mapping it loses its pages beyond the
        new end (Linux 2.0 vmtruncate: zap_page_range on each VMA of the inode), so the cache
        can drop them and a later access faults (SIGBUS, beyond the end of the file)."""
        first = -(-size // self.page)                   # first page index that goes
        for proc in self.k.procs:
            for vma in proc.mm.vmas:
                if vma.inode is not inode:
                    continue
                lo = max(vma.start, vma.start + first * self.page - vma.offset)
                for va, pte in proc.mm.present(lo, vma.end):
                    self._zap(proc, va, pte)

    # ------------------------------------------------------------------ mmap, munmap, brk
    def mmap(self, proc, addr, length, prot, flags, inode, offset, name=""):
        """do_mmap: returns the address of the new VMA (page-aligned); a length of 0 maps
        nothing and returns `addr`."""
        p = self.page
        length = self.mmap_length(addr, length)
        if length == 0:
            return addr
        anonymous = inode is None or flags & MAP_ANONYMOUS
        if not anonymous and offset % p:        # (generic_file_mmap; anonymous memory has
            raise EINVAL(f"mmap: offset {offset} must be page-aligned")     # no offset)
        if not flags & (MAP_SHARED | MAP_PRIVATE) or (flags & MAP_SHARED and flags & MAP_PRIVATE):
            raise EINVAL(f"mmap: flags {flags:#x} need exactly one of MAP_SHARED, MAP_PRIVATE")
        if anonymous and flags & MAP_SHARED:
            raise EINVAL("mmap: MAP_SHARED|MAP_ANONYMOUS: Linux 2.0 maps anonymous memory "
                         "MAP_PRIVATE only (shared anonymous memory came with 2.4)")
        if prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC):
            raise EINVAL(f"mmap: prot {prot:#x}; allowed PROT_READ|PROT_WRITE|PROT_EXEC")
        if flags & MAP_FIXED:
            if addr % p:
                raise EINVAL(f"mmap: MAP_FIXED address {addr:#x} must be page-aligned")
            self.munmap(proc, addr, length)
        else:
            # get_unmapped_area: a hint is rounded up to a page and honoured anywhere in
            # user space (the first gap at or above it); no hint starts at TASK_SIZE / 3
            base = -(-addr // p) * p if addr else TASK_UNMAPPED_BASE
            addr = proc.mm.get_unmapped_area(length, base, self.k.task_size)
        proc.mm.insert(VMA(addr, addr + length, prot, flags & (MAP_SHARED | MAP_PRIVATE),
                           None if anonymous else inode, 0 if anonymous else offset, name))
        hook = getattr(self.k.arch, "map_region", None)     # optional platform hook
        if hook is not None:
            hook(proc.ctx, addr, length)
        return addr

    def mmap_length(self, addr, length):
        """do_mmap's first checks, made before the file's access mode is looked at: the
        length rounded up to pages (0: nothing to map, the caller returns the address; a
        negative length, which C's size_t cannot carry, is EINVAL), and [addr, +length)
        inside user space -- for a hint too (EINVAL)."""
        if length < 0:
            raise EINVAL(f"mmap: length {length} must be >= 0")
        if length == 0:
            return 0                    # "if ((len = PAGE_ALIGN(len)) == 0) return addr;"
        length = -(-length // self.page) * self.page
        if addr < 0 or addr > self.k.task_size - length:
            raise EINVAL(f"mmap: [{addr:#x}, +{length}) beyond TASK_SIZE "
                         f"0x{self.k.task_size:x}")
        return length

    def munmap(self, proc, addr, length):
        """do_munmap: remove [addr, addr+length); unmapped pages go back."""
        p = self.page
        if addr % p or addr < 0 or length < 0 or addr + length > self.k.task_size:
            raise EINVAL(f"munmap: address {addr:#x} must be page-aligned and "
                         f"[{addr:#x}, +{length}) inside user space")
        if length == 0:                 # 2.0's do_munmap: nothing to do, success
            return
        end = addr + -(-length // p) * p
        for va, pte in proc.mm.present(addr, end):
            self._zap(proc, va, pte)
        if proc.mm.remove_range(addr, end):
            hook = getattr(self.k.arch, "unmap_region", None)   # optional platform hook
            if hook is not None:
                hook(proc.ctx, addr, end - addr)

    def brk(self, proc, new):
        """sys_brk: move the end of the heap; returns the new break (the old one on failure)."""
        mm, p = proc.mm, self.page
        if new < mm.brk_start:
            return mm.brk
        old_end, new_end = -(-mm.brk // p) * p, -(-new // p) * p
        if new_end > old_end:
            if mm.overlapping(old_end, new_end + p):      # 2.0 keeps a guard page below
                return mm.brk                               # the next mapping
            heap = mm.find_vma(mm.brk_start) if mm.brk_start < old_end else None
            # extend the heap only if the area there still is the heap: a MAP_FIXED mapping
            # over it (read-only, or a file's) must not grow (2.0 maps new anonymous memory)
            if (heap is not None and heap.end == old_end and heap.inode is None
                    and not heap.shared and heap.prot == PROT_READ | PROT_WRITE):
                heap.end = new_end
            else:
                mm.insert(VMA(old_end, new_end, PROT_READ | PROT_WRITE, MAP_PRIVATE, name="[heap]"))
            hook = getattr(self.k.arch, "map_region", None)     # as mmap does: the platform
            if hook is not None:                                # may need to back the range
                hook(proc.ctx, old_end, new_end - old_end)
        elif new_end < old_end:
            self.munmap(proc, new_end, old_end - new_end)
        mm.brk = new
        return new
