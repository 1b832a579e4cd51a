"""mprotect, sigaction, signal delivery and sigreturn of Linux 2.0 for one process on native
Linux, outside lab/mono: what Appel & Li's benchmarks need on Linux (S97 Table 5).

lab/mono has none of them: no sys_mprotect, no sigaction, no delivery of a signal to a user
handler (a protection fault kills the process, lab/mono/mm.py `page_fault`), no sigreturn.
`LinuxVM` supplies them for one process, outside lab/mono, on Linux's own data structures (its
VMAs and logical PTEs) and through the native platform's public operations (`arch.syscall`,
`run_path`, `protect_user`), with the path lengths of lab/profiles/vm_benchmarks.json
(estimates) executed inside the kernel image's large pages (`extension_image`).  It follows
Linux 2.0: mprotect splits and merges VMAs, rewrites the PTEs (a private writable mapping gets
PAGE_COPY, so the first write after an unprotect takes a do_wp_page fault) and reloads CR3
(flush_tlb); a protection fault runs do_page_fault to bad_area, force_sig, do_signal and
setup_frame (a real signal frame written to the user stack), the handler, and sys_sigreturn.
"""
import struct
from dataclasses import replace

from engine import ops as O
from lab.image import KernelImage
from lab.kprofile import load_kernel_profile
from lab.mono.abi import PROT_READ, PROT_WRITE, PROT_EXEC, SIGSEGV
from lab.mono.errors import EFAULT, EINVAL
from lab.workloads.appel_common import footprint


class LinuxVM:
    """mprotect, sigaction(SIGSEGV), signal delivery and sigreturn of Linux 2.0 for the
    process of Libc `p` on native Linux -- the system calls lab/mono lacks (module docstring).

        vm = LinuxVM(p)
        vm.sigaction(SIGSEGV, handler)        # handler(vm, fault_address), runs in user mode
        vm.mprotect(va, length, PROT_READ)
        vm.access(va, "w")                    # a user write that may trap to the handler
    """

    def __init__(self, p):
        arch = p.kernel.arch
        if getattr(arch, "name", None) != "linux":
            raise ValueError(f"LinuxVM: system {getattr(arch, 'name', arch)!r}; only native "
                             "Linux ('linux') is supported (the paper's Table 5 column)")
        self.p, self.k, self.arch, self.m = p, p.kernel, arch, p.m
        self.proc, self.ctx = p.proc, p.proc.ctx
        self.page = self.m.fmt.page_size
        self.profile = load_kernel_profile("vm_benchmarks")
        self.image = extension_image(arch, self.profile)
        self.frame_bytes = int(self.profile["sigframe_bytes"])
        self.handler = None
        self.delivered = 0
        self.entered = None          # cycle counter (by category) when the handler was entered
        self.loop_ops = footprint(self.m, "user", "mutator", *self._user_va("mutator"))
        self.handler_ops = footprint(self.m, "user", "handler", *self._user_va("handler"))

    # -- system calls --
    def _syscall(self, name, body):
        return self.arch.syscall(self.ctx, name, body)

    def sigaction(self, sig, handler):
        """Install `handler(vm, fault_address)` for SIGSEGV (the only signal supported)."""
        if sig != SIGSEGV:
            raise EINVAL(f"sigaction: signal {sig}; this model delivers only SIGSEGV ({SIGSEGV})")
        if handler is not None and not callable(handler):
            raise EINVAL(f"sigaction: handler {handler!r} is not callable")

        def body():
            self.image.run("sys_sigaction")
            self.handler = handler
            return 0
        return self._syscall("sigaction", body)

    def mprotect(self, start, length, prot):
        """sys_mprotect of Linux 2.0 (mm/mprotect.c)."""
        return self._syscall("mprotect", lambda: self._mprotect(start, length, prot))

    def _mprotect(self, start, length, prot):
        pg = self.page
        if start % pg or length < 0:
            raise EINVAL(f"mprotect: start 0x{start:x} must be page-aligned, length {length} >= 0")
        if prot & ~(PROT_READ | PROT_WRITE | PROT_EXEC) or not prot & PROT_READ:
            raise EINVAL(f"mprotect: prot 0x{prot:x}; this model allows PROT_READ with "
                         "PROT_WRITE and PROT_EXEC (PROT_NONE pages would vanish from the "
                         "hardware table behind lab/mono's back: not modelled)")
        end = start + -(-length // pg) * pg
        if end == start:
            return 0
        self.image.run("sys_mprotect")
        mm = self.proc.mm
        vmas = mm.overlapping(start, end)
        covered = start
        for v in vmas:                           # the range must be mapped without holes
            if v.start > covered:
                break
            covered = max(covered, v.end)
        if covered < end:
            raise EFAULT(f"mprotect: 0x{covered:x} in [0x{start:x}, 0x{end:x}) is not mapped")
        splits = self._fixup(mm, start, end, prot)
        pages = self._change_protection(mm, start, end, prot)
        merges = self._merge(mm, start, end)
        # flush_tlb_range -> flush_tlb(): a CR3 reload on the i386 (Linux 2.0, uniprocessor)
        self.m.run(O.concat(O.charge("space_switch", self.m.profile["page_table_switch_cycles"]),
                            O.flush(self.ctx.space)), check=False)
        self.k.log("mprotect", pid=self.proc.pid, start=start, length=end - start, prot=prot,
                   splits=splits, merges=merges, pages=pages)
        return 0

    def _fixup(self, mm, start, end, prot):
        """mprotect_fixup: cut the VMAs at start and end, set the new protection; returns the
        number of vm_area_structs created."""
        new, created = [], 0
        for v in mm.vmas:
            if v.end <= start or end <= v.start or v.prot == prot:
                new.append(v)
                continue
            lo, hi = max(v.start, start), min(v.end, end)
            if v.start < lo:
                new.append(replace(v, end=lo))
                created += 1
            new.append(replace(v, start=lo, end=hi, prot=prot, offset=v.file_offset(lo)))
            if hi < v.end:
                new.append(replace(v, start=hi, offset=v.file_offset(hi)))
                created += 1
        mm.vmas = sorted(new, key=lambda x: x.start)
        if created:
            self._repeat("vma_split", created)
        return created

    def _change_protection(self, mm, start, end, prot):
        """change_protection: every present page of the range gets the VMA's new page
        protection (protection_map: a private writable mapping gets PAGE_COPY, read-only)."""
        pages = mm.present(start, end)
        if pages:
            self._repeat("change_protection_pte", len(pages))
        for va, pte in pages:
            vma = mm.find_vma(va)
            writable = bool(prot & PROT_WRITE) and vma.shared
            pte.writable = writable
            perms = ("rw" if writable else "r") + ("x" if prot & PROT_EXEC else "")
            if self.m.translate(self.ctx.space, va) is None:
                self.arch.map_user(self.ctx, va, pte.pa, perms)
            else:
                self.arch.protect_user(self.ctx, va, perms)
        return len(pages)

    def _merge(self, mm, start, end):
        """merge_segments(mm, start, end): join neighbouring VMAs that meet inside or at the
        edges of the range and agree on everything again."""
        out, merges = [], 0
        for v in mm.vmas:
            if out:
                u = out[-1]
                if u.end == v.start and start <= v.start <= end and \
                        (u.prot, u.flags, u.inode, u.name) == \
                        (v.prot, v.flags, v.inode, v.name) and \
                        (u.inode is None or u.file_offset(u.end) == v.offset):
                    out[-1] = replace(u, end=v.end)
                    merges += 1
                    continue
            out.append(v)
        mm.vmas = out
        if merges:
            self._repeat("vma_merge", merges)
        return merges

    def _repeat(self, path, count):
        ops = self.image.path_ops(path, "kernel")
        old = self.m.set_mode("kernel")
        try:
            self.m.run(O.concat(*[ops] * count), check=False)
        finally:
            self.m.set_mode(old)

    # -- user work and the trap --
    def _user_va(self, what):
        """Where the benchmark's code and stack data live in this process: the mutator's loop
        in the second text page and the handler in the third (of the process's image), their
        stack lines below the signal frame."""
        lo, hi = self.k.layout(self.proc)["text"]
        code = {"mutator": lo + self.page, "handler": lo + 2 * self.page}[what]
        if code + self.page > hi:
            raise ValueError(f"LinuxVM: the image's text 0x{lo:x}..0x{hi:x} has no page for "
                             f"the {what}'s code")
        data = self.frame_va() - {"mutator": 256, "handler": 128}[what]
        return code, data

    def handler_work(self):
        """The handler's own work (vm_benchmarks.json "handler_*"), in user mode."""
        self._user_run(self.handler_ops)

    def access(self, va, kind="w"):
        """One iteration of the benchmark loop (its own work) and a user access to `va`; a
        protection fault is delivered to the SIGSEGV handler."""
        if not 0 <= va < self.k.task_size:
            raise EFAULT(f"access: 0x{va:x} is not a user address")
        self._user_run(O.concat(self.loop_ops, O.access(kind, [va])))

    def _user_run(self, ops):
        self.arch.run_user(self.ctx, O.mode("user"))     # the process's space is current
        old = self.m.set_mode("user")
        try:
            self.m.run(O.concat(O.mode("user"), ops), on_fault=self._user_fault)
        finally:
            self.m.set_mode(old)

    def _user_fault(self, f):
        vma = self.proc.mm.find_vma(f.va)
        if self.handler is None or (vma is not None and vma.allows(f.kind)):
            old = self.m.set_mode("kernel")      # Linux's own fault handling
            try:
                return self.k.page_fault(self.ctx, f.va, f.kind)
            finally:
                self.m.set_mode(old)
        self._deliver(f)
        return True

    def frame_va(self):
        """Where setup_frame puts the frame: below the argument page at the stack's top."""
        top = self.k.task_size - self.page
        return (top - 64 - self.frame_bytes) & ~15

    def _stack(self, kind, va, n, data=None):
        """Kernel-mode accesses to the user stack (setup_frame's stores, sigreturn's loads);
        a missing stack page is brought in by Linux's own fault handling."""
        ops = O.access(kind, O.lines(va, n, self.image.line))

        def fault(f):
            return self.k.page_fault(self.ctx, f.va, f.kind)
        self.m.run(O.concat(O.mode("kernel"), ops), on_fault=fault)
        if data is not None:
            self.k.mm.write_user(self.proc, va, data)

    def _deliver(self, f):
        """The protection fault: do_page_fault -> bad_area -> force_sig(SIGSEGV); on the way
        back to user mode do_signal -> setup_frame; the handler runs; then sys_sigreturn."""
        m, fva = self.m, self.frame_va()
        # struct sigcontext (22 words) between the return address + signo and the trampoline
        sc = [0] * 22
        sc[12], sc[13], sc[21] = 14, 4 | 2 | 1 if f.kind == "w" else 4 | 1, f.va  # trapno, err, cr2
        words = [0, SIGSEGV] + sc + [0, 0]
        frame = struct.pack(f"<{len(words)}I", *words)[:self.frame_bytes]
        old = m.set_mode("kernel")
        try:
            self.arch.run_path("do_page_fault")
            self.image.run("force_sig")
            self.image.run("do_signal")
            self.image.run("setup_frame")
            self._stack("w", fva, len(frame), frame)
        finally:
            m.set_mode(old)
        self.delivered += 1
        self.k.log("signal", pid=self.proc.pid, sig=SIGSEGV, va=f.va, kind=f.kind)
        self.entered = m.by_category()
        old = m.set_mode("user")                 # the handler, in user mode
        try:
            off = 4 * (2 + 21)                   # it reads sc.cr2 from its argument
            m.run(O.concat(O.mode("user"), O.access("r", [fva + off])), on_fault=self._user_fault)
            addr = struct.unpack("<I", self.k.mm.read_user(self.proc, fva + off, 4))[0]
            self.handler(self, addr)
        finally:
            m.set_mode(old)
        self._syscall("sigreturn", lambda: self._sigreturn(fva))

    def _sigreturn(self, fva):
        self.image.run("sys_sigreturn")
        self._stack("r", fva, self.frame_bytes)
        self.k.log("sigreturn", pid=self.proc.pid)
        return 0


def extension_image(arch, profile):
    """A KernelImage for the vm_benchmarks paths placed right after Linux's own text and data,
    inside the large pages the native kernel already maps (so they cost what Linux's own
    paths cost: no extra TLB entries); ValueError if they do not fit."""
    img = arch.image
    frames = img.place()
    line = img.line

    def extent(va):
        """End of the mapped run of frames that holds `va` (0 if none does)."""
        end = 0
        for fva, _pa, _perm, size in sorted(frames):
            if fva <= va < fva + size or (end and fva == end):
                end = fva + size
            elif end:
                break
        return end

    up = lambda x: -(-x // line) * line
    if img.contiguous:          # Linux's text then data in one piece: the extension after both
        ext = KernelImage(arch.m, profile, up(img.data_va + img.data_bytes), None, line=line)
    else:
        ext = KernelImage(arch.m, profile, up(img.text_va + img.text_bytes),
                          up(img.data_va + img.data_bytes), line=line)
    for what, va, n in (("text", ext.text_va, ext.text_bytes), ("data", ext.data_va, ext.data_bytes)):
        if va + n > extent(va):
            raise ValueError(f"extension_image: the {what} of {profile.kernel} does not fit "
                             f"in Linux's mapped memory (0x{va:x}+{n} > 0x{extent(va):x})")
    return ext
