"""Appel & Li's user-level virtual-memory benchmarks (S97 Table 5) on L4 and on native Linux.

    Fault   a user-level pager in another address space maps an existing page (L4 only: Linux
            has no user-level pagers)
    Trap    a write to a write-protected page, until the user's handler runs
    Appel1  trap + prot1 + unprot: a random protected page is written; the handler protects
            another page (the one unprotected last) and unprotects the faulting one
    Appel2  protN + trap + unprot: 100 pages are protected at once, then written in random
            order; the handler unprotects each (reported per page, protN included)

On L4 the handler is the pager of the application's thread, a thread in its own address space
(the benchmark's handlers rewritten for L4, as S97 did): the fault arrives as an IPC; *protect* is
`fpage_unmap` of the write right (a flush with reduced rights), *unprotect* a reply carrying a
map item with write rights (L4's map only adds rights to the mapping the page already has).
protN is the mutator's own flush of its region, as aligned flexpages (64 + 32 + 4 pages).

On native Linux the handler is a SIGSEGV handler and protection is mprotect.  lab/mono has
neither: no sys_mprotect, no sigaction, no delivery of a signal to a user handler (a protection
fault kills the process, lab/mono/mm.py `page_fault`), no sigreturn.  `LinuxVM` supplies them
for one process, outside lab/mono, on Linux's own data structures (its VMAs and logical PTEs)
and through the native platform's public operations (`arch.syscall`, `run_path`,
`protect_user`), with the path lengths of lab/profiles/vm_benchmarks.json (estimates) executed
inside the kernel image's large pages.  It follows Linux 2.0: mprotect splits and merges VMAs,
rewrites the PTEs (a private writable mapping gets PAGE_COPY, so the first write after an
unprotect takes a do_wp_page fault) and reloads CR3 (flush_tlb); a protection fault runs
do_page_fault to bad_area, force_sig, do_signal and setup_frame (a real signal frame written
to the user stack), the handler, and sys_sigreturn.

    measure("Appel1", "l4", quick=True).us        # -> microseconds per operation
"""
import random
import struct
from dataclasses import dataclass, field, replace
from enum import Enum

from engine import Machine, ops as O
from lab.image import KernelImage
from lab.kprofile import load_kernel_profile
from lab.l4 import L4Kernel, Pager, Fpage
from lab.mono.abi import (PROT_READ, PROT_WRITE, PROT_EXEC, MAP_PRIVATE,
                          MAP_ANONYMOUS, SIGSEGV)
from lab.mono.errors import EFAULT, EINVAL

PAGE = 4096
L4_REGION = 0x10000000            # the mutator's region on L4 (512 KB aligned: protN's fpages)
MUTATOR_TEXT = 0x08048000         # the mutator's loop code and stack on L4 (as an ELF program)
MUTATOR_STACK = 0xBFFFE000
PAGE_SHIFT = 12


class Bench(Enum):
    FAULT = "Fault"
    TRAP = "Trap"
    APPEL1 = "Appel1"
    APPEL2 = "Appel2"


SYSTEMS = ("l4", "linux")


def characteristic(name):
    """A value of lab/profiles/vm_benchmarks.json."""
    return load_kernel_profile("vm_benchmarks")[name]


def footprint(m, category, who, code_va, data_va):
    """The op batch of the handler's or the mutator's own work ("handler" / "mutator" values
    of vm_benchmarks.json): its instructions, its code lines fetched and its data lines
    written, so that the TLB refills after a switch or a flush emerge from the engine."""
    line = min((c["line"] for c in m.cache_config), default=32)
    return O.concat(O.mode(category),
                    O.charge(category, characteristic(f"{who}_instructions") * m.cpi),
                    O.access("x", O.lines(code_va, characteristic(f"{who}_code_bytes"), line)),
                    O.access("w", O.lines(data_va, characteristic(f"{who}_data_bytes"), line)))


def _bench(name):
    try:
        return name if isinstance(name, Bench) else Bench(name)
    except ValueError:
        raise ValueError(f"benchmark {name!r} unknown; allowed: "
                         f"{', '.join(b.value for b in Bench)}") from None


# ---------------------------------------------------------------------- measuring
@dataclass
class Measured:
    """Cycles per operation (mean over the timed operations) and their breakdown."""
    cycles: float
    by_category: dict
    count: int
    mhz: float
    events: dict = field(default_factory=dict)    # kernel events per operation

    @property
    def us(self):
        return self.cycles / self.mhz


COUNTED = {"l4": ("pagefault", "ipc", "map", "flush"),
           "linux": ("signal", "mprotect", "page_fault", "sigreturn")}


class _Samples:
    """Accumulates (cycles, by-category, kernel events) between two points in time."""

    def __init__(self, m):
        self.m, self.n, self.total, self.events = m, 0, {}, {}

    def mark(self):
        return self.m.by_category(), len(self.m.events.events)

    def add(self, start, end=None, weight=1):
        """Count from mark `start` to now, or to `end` (a by-category snapshot taken earlier,
        e.g. when the handler was entered)."""
        begin, first = start
        end = end if end is not None else self.m.by_category()
        for k, v in end.items():
            self.total[k] = self.total.get(k, 0) + v - begin.get(k, 0)
        stop = sum(end.values())
        for e in self.m.events.events[first:]:
            if e.cycle <= stop and e.operation in COUNTED.get(e.kernel, ()):
                key = f"{e.kernel}.{e.operation}"
                self.events[key] = self.events.get(key, 0) + 1
        self.n += weight

    def result(self):
        n = max(self.n, 1)
        per = {k: v / n for k, v in self.total.items() if v}
        return Measured(sum(self.total.values()) / n, per, self.n,
                        self.m.profile["clock_mhz"],
                        {k: v / n for k, v in sorted(self.events.items())})


def aligned_fpages(base, npages, rights="rw"):
    """The fewest naturally aligned flexpages covering npages pages from `base` (L4 flushes
    and maps flexpages, not arbitrary ranges): 100 pages at an aligned base are 64 + 32 + 4."""
    out, va, end = [], base, base + npages * PAGE
    while va < end:
        k = PAGE_SHIFT
        while va % (1 << (k + 1)) == 0 and va + (1 << (k + 1)) <= end:
            k += 1
        out.append(Fpage(va, k, rights))
        va += 1 << k
    return out


# ---------------------------------------------------------------------- L4
class Action(Enum):
    """What the handler does with a fault (the benchmark decides)."""
    MAP = "map"                 # Fault: map the existing page
    UNPROT = "unprot"           # Trap, Appel2: map it again with write rights
    PROT1_UNPROT = "prot1+unprot"   # Appel1: flush "w" of the last unprotected page, then unprot


class AppelPager(Pager):
    """The benchmark's fault handler on L4: the pager of the mutator's thread, in its own
    address space.  Its frames come from sigma0 (idempotent: its page at va X is frame X); it
    also backs the mutator's code and stack pages.  `invoked` records the cycle counter (by
    category) when each fault message reached it: the end of the Trap benchmark's interval."""

    fault_instructions = 0          # the handler charges its own work after the time stamp

    def __init__(self, kernel, region, npages):
        super().__init__(kernel, "appel-handler")
        m = kernel.m
        self.region, self.npages = region, npages
        self.frames = [m.alloc_page() for _ in range(npages)]
        self.own = {name: m.alloc_page() for name in ("text", "stack")}       # its own pages
        self.lent = {MUTATOR_TEXT: m.alloc_page(), MUTATOR_STACK: m.alloc_page()}
        # touch them: each faults to sigma0, which maps the frame at its own address
        kernel.execute(self.thread, O.access("w", self.frames + sorted(self.own.values())
                                             + sorted(self.lent.values())), category="server")
        self.work_ops = footprint(m, "server", "handler", self.own["text"], self.own["stack"])
        self.action = Action.MAP
        self.invoked = []
        self.unprotected = None     # Appel1: the page to protect at the next fault

    def index(self, va):
        i = (va - self.region) // PAGE
        if not 0 <= i < self.npages:
            raise ValueError(f"appel-handler: fault at 0x{va:x} outside the region "
                             f"0x{self.region:x}+{self.npages} pages")
        return i

    def page_fault(self, thread, va, write):
        self.invoked.append(self.k.m.by_category())
        page = va & ~(PAGE - 1)
        self.k.execute(self.thread, self.work_ops, category="server")
        if page in self.lent:                    # the mutator's code or stack
            return self.map_item(self.lent[page], "rwx", send_base=page)
        i = self.index(va)
        if self.action is Action.PROT1_UNPROT:
            if self.unprotected is not None and self.unprotected != i:
                self.prot(self.unprotected)
            self.unprotected = i
        return self.map_item(self.frames[i], "rw", send_base=page)

    def prot(self, i):
        """Take the write right from every mapping derived from page i (the mutator's)."""
        self.k.fpage_unmap(self.task, Fpage(self.frames[i], PAGE_SHIFT), rights="w")


class L4Appel:
    """An L4 kernel with the handler (pager) and the mutator task, its region mapped."""

    def __init__(self, cpu_profile="pentium-133", seed=1, npages=None):
        self.npages = int(npages or characteristic("pages"))
        self.k = L4Kernel(Machine(cpu_profile, seed=seed))
        self.m = self.k.m
        self.handler = AppelPager(self.k, L4_REGION, self.npages)
        self.task = self.k.task_new("mutator", pager=self.handler)
        self.t = self.task.thread
        self.loop = footprint(self.m, "user", "mutator", MUTATOR_TEXT, MUTATOR_STACK)
        self.rng = random.Random(seed)

    def va(self, i):
        return L4_REGION + i * PAGE

    def write(self, i):
        """One iteration of the benchmark loop: its own work, then the store to page i."""
        self.k.execute(self.t, O.concat(self.loop, O.access("w", [self.va(i)])))

    def region_flush(self, rights):
        """The mutator flushes `rights` from its own region (protN with "w"; "rwx" unmaps)."""
        for fp in aligned_fpages(L4_REGION, self.npages):
            self.k.fpage_unmap(self.task, fp, rights=rights, own=True)

    def touch_all(self):
        self.k.execute(self.t, O.concat(self.loop, O.access(
            "w", [self.va(i) for i in range(self.npages)])))


def l4_fault(w, n):
    """Fault: each write to a page the mutator does not have yet goes to the pager, which maps
    its existing page.  Rounds over the region, unmapping it between rounds (not timed)."""
    w.handler.action = Action.MAP
    s, done = _Samples(w.m), 0
    w.touch_all()                                 # warm-up round
    while done < n:
        w.region_flush("rwx")
        for i in range(min(w.npages, n - done)):
            t0 = s.mark()
            w.write(i)
            s.add(t0)
            done += 1
    return s


def l4_trap(w, n):
    """Trap: the time from the write to a write-protected page until the handler runs."""
    w.handler.action = Action.UNPROT
    w.touch_all()
    s = _Samples(w.m)
    for j in range(n + 1):
        i = j % w.npages
        w.k.fpage_unmap(w.task, Fpage(w.va(i), PAGE_SHIFT), rights="w", own=True)
        t0 = s.mark()
        before = len(w.handler.invoked)
        w.write(i)
        if len(w.handler.invoked) != before + 1:
            raise AssertionError(f"l4_trap: write {j} did not reach the handler once")
        if j:                                     # the first one warms the path
            s.add(t0, w.handler.invoked[before])
    return s


def l4_appel1(w, n):
    """Appel1: write a random protected page; the handler protects the last unprotected page
    and unprotects this one.  Per access."""
    w.handler.action = Action.PROT1_UNPROT
    w.touch_all()
    w.region_flush("w")                           # every page protected
    w.handler.unprotected = None
    s = _Samples(w.m)
    for j in range(n + 1):
        choices = [i for i in range(w.npages) if i != w.handler.unprotected]
        i = choices[w.rng.randrange(len(choices))]
        t0 = s.mark()
        w.write(i)
        if j:
            s.add(t0)
    return s


def l4_appel2(w, rounds):
    """Appel2: protect the whole region (protN), then write every page in random order; the
    handler unprotects each.  Per page, protN included."""
    w.handler.action = Action.UNPROT
    w.touch_all()
    s = _Samples(w.m)
    for r in range(rounds + 1):
        order = list(range(w.npages))
        w.rng.shuffle(order)
        t0 = s.mark()
        w.region_flush("w")
        for i in order:
            w.write(i)
        if r:
            s.add(t0, weight=w.npages)
    return s


# ---------------------------------------------------------------------- Linux
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


RW = PROT_READ | PROT_WRITE


def _linux_region(p, vm, npages):
    base = p.mmap(0, npages * vm.page, RW, MAP_PRIVATE | MAP_ANONYMOUS)
    p.touch(base, npages * vm.page, write=True)
    return base


def linux_trap(p, n, npages):
    vm = LinuxVM(p)
    base = _linux_region(p, vm, npages)
    invoked = []

    def handler(vm, addr):
        invoked.append(vm.entered)
        vm.handler_work()
        vm.mprotect(addr & ~(vm.page - 1), vm.page, RW)
    vm.sigaction(SIGSEGV, handler)
    s = _Samples(p.m)
    for j in range(n + 1):
        va = base + (j % npages) * vm.page
        vm.mprotect(va, vm.page, PROT_READ)
        t0 = s.mark()
        vm.access(va, "w")
        if j:
            s.add(t0, invoked[-1])
    return s, vm


def linux_appel1(p, n, npages, seed):
    vm = LinuxVM(p)
    base = _linux_region(p, vm, npages)
    rng = random.Random(seed)
    state = {"last": None}

    def handler(vm, addr):
        vm.handler_work()
        page = addr & ~(vm.page - 1)
        if state["last"] is not None and state["last"] != page:
            vm.mprotect(state["last"], vm.page, PROT_READ)
        vm.mprotect(page, vm.page, RW)
        state["last"] = page
    vm.sigaction(SIGSEGV, handler)
    vm.mprotect(base, npages * vm.page, PROT_READ)
    s = _Samples(p.m)
    for j in range(n + 1):
        choices = [i for i in range(npages) if base + i * vm.page != state["last"]]
        va = base + choices[rng.randrange(len(choices))] * vm.page
        t0 = s.mark()
        vm.access(va, "w")
        if j:
            s.add(t0)
    return s, vm


def linux_appel2(p, rounds, npages, seed):
    vm = LinuxVM(p)
    base = _linux_region(p, vm, npages)
    rng = random.Random(seed)

    def handler(vm, addr):
        vm.handler_work()
        vm.mprotect(addr & ~(vm.page - 1), vm.page, RW)
    vm.sigaction(SIGSEGV, handler)
    s = _Samples(p.m)
    for r in range(rounds + 1):
        order = list(range(npages))
        rng.shuffle(order)
        t0 = s.mark()
        vm.mprotect(base, npages * vm.page, PROT_READ)
        for i in order:
            vm.access(base + i * vm.page, "w")
        if r:
            s.add(t0, weight=npages)
    return s, vm


# ---------------------------------------------------------------------- the table
def sizes(quick):
    """(operations timed for Fault/Trap/Appel1, Appel2 rounds of `pages` pages)."""
    return (10, 1) if quick else (100, 3)


def measure(bench, system, cpu_profile="pentium-133", seed=1, quick=False, n=None,
            rounds=None):
    """Run one benchmark on "l4" or "linux"; returns a Measured (cycles and µs per op).
    `n` operations (Fault, Trap, Appel1) and Appel2's `rounds` default to `sizes(quick)`."""
    b = _bench(bench)
    if system not in SYSTEMS:
        raise ValueError(f"system {system!r} unknown; allowed: {', '.join(SYSTEMS)}")
    n, rounds = (n or sizes(quick)[0]), (rounds or sizes(quick)[1])
    for what, v in (("operations", n), ("rounds", rounds)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{what} {v!r} must be an integer >= 1")
    npages = int(characteristic("pages"))
    if system == "l4":
        w = L4Appel(cpu_profile, seed, npages)
        run = {Bench.FAULT: l4_fault, Bench.TRAP: l4_trap, Bench.APPEL1: l4_appel1,
               Bench.APPEL2: l4_appel2}[b]
        return run(w, rounds if b is Bench.APPEL2 else n).result()
    if b is Bench.FAULT:
        raise ValueError("Fault needs a user-level pager in another address space: Linux has "
                         "none (S97 Table 5 gives no Linux number)")
    from lab.linux import boot
    k = boot("linux", cpu_profile=cpu_profile, seed=seed, log_syscalls=False)
    prog = {Bench.TRAP: lambda p: linux_trap(p, n, npages),
            Bench.APPEL1: lambda p: linux_appel1(p, n, npages, seed),
            Bench.APPEL2: lambda p: linux_appel2(p, rounds, npages, seed)}[b]
    proc = k.spawn(prog, name=b.value.lower())
    k.run()
    s, _vm = proc.result
    return s.result()
