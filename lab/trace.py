"""Memory traces for `microlab mmu` (DESIGN.md §5): parse a trace, replay it on a Machine.

Two input formats, told apart by the first meaningful line (or forced with `lackey=True`):

microlab traces (`#` starts a comment; numbers hex with 0x or decimal):
    map SPACE VADDR PADDR [r|rw|rx|rwx] [global] [large]   map one page (default rw)
    unmap SPACE VADDR          remove the mapping and SPACE's TLB entry for it
    switch SPACE               make SPACE current (untagged TLB: flush non-global entries)
    r VADDR | w VADDR | x VADDR   one access in the current space (the first `switch`
                               must come before the first access)
    flush                      drop every TLB entry of every space
    flush SPACE                drop SPACE's non-global entries
    invlpg VADDR               drop the current space's entry for that page
  `large` (an extension) maps one large page of the format (4 MiB on x86-32, 2 MiB otherwise).
  Switching to the space already current is a no-op (no CR3 reload, nothing flushed).  The
  engine spaces are created before the trace runs, in order of first mention: a SPACE exists
  from the first line that names it, whichever command that is.  So `switch 9` to a space
  nothing maps is an empty space (its accesses fault), and `flush 9` of a space that no `map`
  or `switch` names flushes nothing -- valid, as `invlpg` of a page not in the TLB is; such a
  space is listed in `Trace.only_flushed` (and `microlab mmu` marks it in its report).
  `unmap` of a page that is not mapped is an error.

valgrind lackey traces (`valgrind --tool=lackey --trace-mem=yes`):
    I  04001234,3     instruction fetch          -> x
     L 1ffefffc30,8   load                       -> r
     S 1ffefffc30,8   store                      -> w
     M 1ffefffc30,8   modify: a load, then a store
  Every page touched is mapped in space 0 to a fresh frame (rw for data, rx for code, rwx if
  both); an access that crosses a page boundary touches every page it covers.

Parsing checks everything that can be checked without running (syntax, ranges, alignment, an
access before any `switch`) and raises `TraceError(lineno, message)`.  The result is a `Trace`:
flat arrays of entries, cut into `Run` slices by the map/unmap commands between them, so that
`replay` runs each slice as ONE `Machine.run` batch.
"""
import itertools
import re
from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from engine import core, ops
from engine.errors import EngineError, OutOfFrames, TraceError

MAX_SPACE = 4095            # SPACE numbers are small integers: 0..MAX_SPACE
OPS = ("map", "unmap", "switch", "r", "w", "x", "flush", "invlpg")
PERMS = ("r", "rw", "rx", "rwx")
USAGE = {
    "map": "map SPACE VADDR PADDR [r|rw|rx|rwx] [global] [large]",
    "unmap": "unmap SPACE VADDR",
    "switch": "switch SPACE",
    "r": "r VADDR", "w": "w VADDR", "x": "x VADDR",
    "flush": "flush [SPACE]",
    "invlpg": "invlpg VADDR",
}
_NUMBER = re.compile(r"(-?)(?:0[xX]([0-9a-fA-F]+)|([0-9]+))")
_LACKEY = re.compile(r"(?:I  ?| ?[LSM] )([0-9a-fA-F]+),([0-9]+)")


class TraceFileError(TraceError):
    """A TraceError that names its file: 'trace.txt line 7: unknown op ...'."""

    def __init__(self, source, lineno, message):
        super().__init__(lineno, message)
        self.source = source
        self.args = (f"{source} line {lineno}: {message}",)


def _located(e, source):
    """`e` (a TraceError) as a TraceFileError naming `source`."""
    if isinstance(e, TraceFileError):
        return e
    return TraceFileError(source, e.lineno, str(e).partition(": ")[2])


class Op(IntEnum):
    """One trace entry.  R, W, X equal the access kinds of `engine.ops.accesses`."""
    R = 0
    W = 1
    X = 2
    SWITCH = 3
    FLUSH = 4           # every entry of every space
    FLUSH_SPACE = 5     # one space's non-global entries
    INVLPG = 6          # the current space's entry for one page


@dataclass(frozen=True)
class Run:
    """Entries [start, end) of the trace arrays: one Machine.run batch."""
    start: int
    end: int


@dataclass(frozen=True)
class MapCmd:
    line: int
    space: int          # ordinal of the space (index into Trace.spaces)
    va: int
    pa: object          # physical address, or None: a fresh frame (lackey traces)
    perms: str
    global_: bool = False
    large: bool = False


@dataclass(frozen=True)
class UnmapCmd:
    line: int
    space: int
    va: int


@dataclass
class Trace:
    """A parsed trace.  Entry i is `code[i]` (an Op) with `arg[i]` (a virtual address, or a
    space ordinal for SWITCH and FLUSH_SPACE), run in space ordinal `space[i]` (-1: none yet),
    from trace line `line[i]`.  `spaces[k]` is the trace's SPACE number of ordinal k, in order
    of first mention; `steps` lists Run, MapCmd and UnmapCmd in trace order."""
    source: str
    kind: str               # "microlab" or "lackey"
    spaces: tuple
    code: np.ndarray
    arg: np.ndarray
    space: np.ndarray
    line: np.ndarray
    steps: list
    nlines: int

    @property
    def accesses(self):
        """Boolean mask of the entries that are accesses."""
        return self.code <= Op.X

    @property
    def n_accesses(self):
        return int(np.count_nonzero(self.accesses))

    @property
    def only_flushed(self):
        """SPACE numbers that only `flush SPACE` lines name (no map, unmap or switch): empty
        spaces whose flushes did nothing -- perhaps a typo for another space."""
        used = {int(a) for a in self.arg[self.code == Op.SWITCH]}
        used.update(s.space for s in self.steps if isinstance(s, (MapCmd, UnmapCmd)))
        return tuple(n for k, n in enumerate(self.spaces) if k not in used)


def parse_number(tok, what, lineno):
    """`tok` as an integer: hex with 0x, or decimal (a leading '-' is parsed, callers reject it)."""
    m = _NUMBER.fullmatch(tok)
    if m is None:
        raise TraceError(lineno, f"malformed {what} {tok!r}: use hex with 0x (0x1000) or decimal (4096)")
    v = int(m.group(2), 16) if m.group(2) is not None else int(m.group(3))
    return -v if m.group(1) else v


def _hexrange(bits):
    return f"0..0x{(1 << bits) - 1:x}"


class _Parser:
    """State while reading a trace: the entry lists, the spaces seen, the current space."""

    def __init__(self, fmt, memory_bytes, source):
        self.fmt = fmt
        self.memory_bytes = memory_bytes
        self.source = source
        self.ordinal = {}           # trace SPACE number -> ordinal
        self.current = -1
        self.code, self.arg, self.space, self.line = [], [], [], []
        self.steps = []
        self.run_start = 0
        self.large_size = 1 << fmt.level_shift(fmt.levels - 2) if fmt.levels >= 2 else None

    # -- fields --
    def space_no(self, tok, lineno):
        n = parse_number(tok, "SPACE", lineno)
        if not 0 <= n <= MAX_SPACE:
            raise TraceError(lineno, f"space {n} out of range 0..{MAX_SPACE}")
        if n not in self.ordinal:
            self.ordinal[n] = len(self.ordinal)
        return self.ordinal[n]

    def vaddr(self, tok, lineno, what="VADDR"):
        va = parse_number(tok, what, lineno)
        bits = self.fmt.va_bits
        if va < 0 or va >> bits:
            hint = " (try --format x86-64)" if va > 0 and not va >> 48 and bits < 48 else ""
            raise TraceError(lineno, f"{what} {tok} outside the {bits}-bit {self.fmt.name} "
                             f"address space {_hexrange(bits)}{hint}")
        return va

    # -- entries --
    def emit(self, code, arg, lineno):
        self.code.append(code)
        self.arg.append(arg)
        self.space.append(self.current)
        self.line.append(lineno)

    def command(self, cmd):
        """A map/unmap: it runs between batches, so it closes the current run."""
        n = len(self.code)
        if n > self.run_start:
            self.steps.append(Run(self.run_start, n))
        self.run_start = n
        self.steps.append(cmd)

    def need_space(self, lineno, op):
        if self.current < 0:
            what = "access" if op in ("r", "w", "x") else repr(op)
            raise TraceError(lineno, f"no current space: add `switch SPACE` before the first {what}")

    def finish(self, kind, nlines):
        n = len(self.code)
        if n > self.run_start:
            self.steps.append(Run(self.run_start, n))
        spaces = tuple(sorted(self.ordinal, key=self.ordinal.get))
        return Trace(self.source, kind, spaces, np.array(self.code, np.int8),
                     np.array(self.arg, np.int64), np.array(self.space, np.int32),
                     np.array(self.line, np.int64), self.steps, nlines)

    # -- microlab format --
    def arity(self, words, lineno, counts):
        if len(words) - 1 not in counts:
            op = words[0]
            raise TraceError(lineno, f"wrong number of arguments for '{op}': expected "
                             f"`{USAGE[op]}`, got {len(words) - 1}")

    def do_map(self, words, lineno):
        if len(words) < 4 or len(words) > 7:
            self.arity(words, lineno, ())
        sp = self.space_no(words[1], lineno)
        va = self.vaddr(words[2], lineno)
        pa = parse_number(words[3], "PADDR", lineno)
        perms, glob, large = None, False, False
        for flag in words[4:]:
            if flag in PERMS and perms is None:
                perms = flag
            elif flag == "global" and not glob:
                glob = True
            elif flag == "large" and not large:
                large = True
            else:
                raise TraceError(lineno, f"bad map flag {flag!r}: allowed one of "
                                 f"{', '.join(PERMS)} (permissions), then global, large")
        size = self.fmt.page_size
        if large:
            if self.large_size is None:
                raise TraceError(lineno, f"format {self.fmt.name} has no large pages")
            size = self.large_size
        if va % size:
            raise TraceError(lineno, f"map: VADDR 0x{va:x} is not aligned to the page size 0x{size:x}")
        if pa < 0 or pa + size > self.memory_bytes:
            raise TraceError(lineno, f"map: PADDR {words[3]} outside physical memory "
                             f"({self.memory_bytes >> 20} MB: 0..0x{self.memory_bytes - 1:x})")
        if pa % size:
            raise TraceError(lineno, f"map: PADDR 0x{pa:x} is not aligned to the page size 0x{size:x}")
        self.command(MapCmd(lineno, sp, va, pa, perms or "rw", glob, large))

    def do_unmap(self, words, lineno):
        self.arity(words, lineno, (2,))
        sp = self.space_no(words[1], lineno)
        self.command(UnmapCmd(lineno, sp, self.vaddr(words[2], lineno)))

    def do_switch(self, words, lineno):
        self.arity(words, lineno, (1,))
        sp = self.space_no(words[1], lineno)
        self.current = sp           # the entry runs in the space it makes current
        self.emit(Op.SWITCH, sp, lineno)

    def do_flush(self, words, lineno):
        self.arity(words, lineno, (0, 1))
        if len(words) == 1:
            self.emit(Op.FLUSH, 0, lineno)
        else:
            self.emit(Op.FLUSH_SPACE, self.space_no(words[1], lineno), lineno)

    def do_invlpg(self, words, lineno):
        self.arity(words, lineno, (1,))
        va = self.vaddr(words[1], lineno)
        self.need_space(lineno, "invlpg")
        self.emit(Op.INVLPG, va, lineno)

    def microlab(self, lines, first_lineno):
        handlers = {"map": self.do_map, "unmap": self.do_unmap, "switch": self.do_switch,
                    "flush": self.do_flush, "invlpg": self.do_invlpg}
        kinds = {"r": Op.R, "w": Op.W, "x": Op.X}
        lineno = first_lineno - 1
        code, arg, space, line = self.code, self.arg, self.space, self.line
        for lineno, raw in enumerate(lines, first_lineno):
            if "#" in raw:
                raw = raw[:raw.index("#")]
            words = raw.split()
            if not words:
                continue
            op = words[0]
            kind = kinds.get(op)
            if kind is not None:            # the hot path: one access
                if len(words) != 2:
                    self.arity(words, lineno, (1,))
                if self.current < 0:
                    self.need_space(lineno, op)
                code.append(kind)
                arg.append(self.vaddr(words[1], lineno))
                space.append(self.current)
                line.append(lineno)
                continue
            h = handlers.get(op)
            if h is None:
                raise TraceError(lineno, f"unknown op {op!r}; allowed: {', '.join(OPS)}")
            h(words, lineno)
        return lineno

    # -- valgrind lackey format --
    def lackey(self, lines, first_lineno):
        """Accesses of a lackey trace; maps every page touched (space 0, fresh frames)."""
        shift = self.fmt.page_shift
        bits = self.fmt.va_bits
        pages = {}                      # vpn -> [first line, data?, code?] in order of first use
        self.space_no("0", 0)
        self.current = 0
        self.emit(Op.SWITCH, 0, 0)
        code, arg, space, line = self.code, self.arg, self.space, self.line
        lineno = first_lineno - 1
        for lineno, raw in enumerate(lines, first_lineno):
            m = _LACKEY.fullmatch(raw.rstrip("\r\n"))
            if m is None:
                s = raw.strip()
                if not s or s.startswith("==") or s.startswith("#"):
                    continue
                raise TraceError(lineno, f"not a valgrind lackey line: {s[:40]!r}; expected "
                                 "'I  ADDR,SIZE' or ' L|S|M ADDR,SIZE'")
            va = int(m.group(1), 16)
            last = va + max(int(m.group(2)), 1) - 1
            if last >> bits:
                hint = " (use --format x86-64)" if bits < 48 else ""
                raise TraceError(lineno, f"address 0x{va:x} does not fit the {bits}-bit "
                                 f"{self.fmt.name} address space{hint}")
            c = raw.lstrip()[0]
            kinds = (Op.X,) if c == "I" else (Op.R,) if c == "L" else (Op.W,) if c == "S" \
                else (Op.R, Op.W)
            first_vpn, last_vpn = va >> shift, last >> shift
            for vpn in range(first_vpn, last_vpn + 1):
                p = pages.get(vpn)
                if p is None:
                    p = pages[vpn] = [lineno, False, False]
                if c == "I":
                    p[2] = True
                else:
                    p[1] = True
            for k in kinds:
                code.append(k)
                arg.append(va)
                space.append(0)
                line.append(lineno)
                for vpn in range(first_vpn + 1, last_vpn + 1):     # crosses a page boundary
                    code.append(k)
                    arg.append(vpn << shift)
                    space.append(0)
                    line.append(lineno)
        if len(code) == 1:
            raise ValueError(f"{self.source}: empty lackey trace (no I, L, S or M line)")
        # Map before running: a mapping costs nothing until the page is touched, and the final
        # permissions (rwx for a page both fetched and loaded) must be known before any access.
        for vpn, (first, data, instr) in pages.items():
            perms = "rwx" if data and instr else "rx" if instr else "rw"
            self.steps.append(MapCmd(first, 0, vpn << shift, None, perms))
        return lineno


def _meaningful(raw):
    s = raw.strip()
    return bool(s) and not s.startswith("#") and not s.startswith("==")


def parse_trace(lines, fmt, memory_bytes, source="<trace>", lackey=None):
    """Parse an iterable of lines into a Trace for format `fmt` and `memory_bytes` of memory.
    `lackey`: True/False forces the input format; None detects it from the first meaningful
    line.  Raises TraceError(lineno, message) on the first bad line."""
    it = iter(lines)
    head = []
    for raw in it:
        head.append(raw)
        if _meaningful(raw):
            break
    if not head or not _meaningful(head[-1]):
        raise ValueError(f"{source}: empty trace (no command, only blank lines and comments)")
    if lackey is None:
        lackey = _LACKEY.fullmatch(head[-1].rstrip("\r\n")) is not None
    p = _Parser(fmt, memory_bytes, source)
    lines = itertools.chain(head, it)
    try:
        if lackey:
            return p.finish("lackey", p.lackey(lines, 1))
        return p.finish("microlab", p.microlab(lines, 1))
    except TraceError as e:
        raise _located(e, source) from None


def read_trace(path, fmt, memory_bytes, lackey=None):
    """Parse the trace file at `path` ('-': standard input).  A missing, unreadable or binary
    file raises OSError or TraceError with a one-line message naming it."""
    import sys
    if str(path) == "-":
        return parse_trace(sys.stdin, fmt, memory_bytes, "<stdin>", lackey)
    try:
        f = open(path, encoding="utf-8", newline=None)
    except FileNotFoundError:
        raise OSError(f"trace file {str(path)!r} not found") from None
    except IsADirectoryError:
        raise OSError(f"trace file {str(path)!r} is a directory") from None
    except OSError as e:
        raise OSError(f"cannot read trace file {str(path)!r}: {e.strerror}") from None
    with f:
        try:
            return parse_trace(f, fmt, memory_bytes, str(path), lackey)
        except UnicodeDecodeError as e:
            raise OSError(f"trace file {str(path)!r} is not a text file (byte 0x{e.object[e.start]:02x} "
                          "is not UTF-8)") from None
        except IsADirectoryError:
            raise OSError(f"trace file {str(path)!r} is a directory") from None
        except OSError as e:
            raise OSError(f"cannot read trace file {str(path)!r}: {e.strerror}") from None


# ---------------------------------------------------------------------------------- replay

@dataclass
class Replay:
    """What a replay produced: the engine space id of each trace space and, per access (in trace
    order), its entry index in the trace and its engine record (`engine.core.R_*` columns)."""
    sids: list
    index: np.ndarray
    records: np.ndarray


def _batch(trace, start, end, sids):
    """Encode entries [start, end) as engine ops: accesses vectorised, control ops one by one."""
    code = trace.code[start:end]
    arg = trace.arg[start:end]
    acc = code <= Op.X
    out = np.empty(end - start, np.int64)
    out[acc] = ops.accesses(code[acc], arg[acc])
    for i in np.flatnonzero(~acc):
        c, a = code[i], int(arg[i])
        if c == Op.SWITCH:
            w = ops.switch(sids[a])
        elif c == Op.FLUSH:
            w = ops.flush()
        elif c == Op.FLUSH_SPACE:
            w = ops.flush(sids[a])
        else:
            w = ops.demap(sids[trace.space[start + i]], a)
        out[i] = w[0]
    return out, acc


def _apply_map(machine, trace, cmd, sids):
    sid, number = sids[cmd.space], trace.spaces[cmd.space]
    if machine.translate(sid, cmd.va) is not None:
        raise TraceError(cmd.line, f"map: VADDR 0x{cmd.va:x} already mapped in space {number}"
                         " (unmap it first)")
    pa = machine.alloc_page() if cmd.pa is None else cmd.pa
    try:
        machine.map(sid, cmd.va, pa, cmd.perms, global_=cmd.global_, large=cmd.large)
    except OutOfFrames:
        raise
    except EngineError as e:
        raise TraceError(cmd.line, str(e)) from None


def _apply_unmap(machine, trace, cmd, sids):
    sid, number = sids[cmd.space], trace.spaces[cmd.space]
    if machine.translate(sid, cmd.va) is None:
        raise TraceError(cmd.line, f"unmap: VADDR 0x{cmd.va:x} not mapped in space {number}")
    try:
        machine.unmap(sid, cmd.va)
    except EngineError as e:
        raise TraceError(cmd.line, str(e)) from None


def _check_frames(machine, trace):
    """Fresh frames (lackey traces) must fit in memory: say so up front, not halfway."""
    need = sum(1 for s in trace.steps if isinstance(s, MapCmd) and s.pa is None)
    free = machine.memory.free_frames
    if need > free:
        raise OutOfFrames(_frames_message(machine, trace, need, free))
    return need, free


def _frames_message(machine, trace, need, free):
    what = f"the trace touches {need} pages (plus page tables)" if need else \
        "the trace's page tables need more frames"
    return (f"{trace.source}: out of physical memory: {what} but only {free} frames of "
            f"{machine.fmt.page_size} bytes were free ({machine.memory.size >> 20} MB of memory); "
            "trace a smaller program")


def replay(machine, trace):
    """Run `trace` on `machine` (fresh): create its spaces in order of first mention, then each
    step in order, a Run as one recorded Machine.run batch.  Faulting accesses are counted and
    recorded, not resolved.  Returns a Replay."""
    try:
        return _replay(machine, trace)
    except TraceError as e:
        raise _located(e, trace.source) from None


def _replay(machine, trace):
    sids = [machine.new_space() for _ in trace.spaces]
    need, free = _check_frames(machine, trace)
    acc_all = trace.accesses
    index = np.flatnonzero(acc_all)
    slot = np.cumsum(acc_all) - 1               # entry -> row in records
    records = np.zeros((index.size, core.R_LEN), np.int64)
    for step in trace.steps:
        if isinstance(step, Run):
            batch, acc = _batch(trace, step.start, step.end, sids)
            r = machine.run(batch, record=True)
            if acc.any():
                first = slot[step.start + int(np.argmax(acc))]
                records[first:first + int(acc.sum())] = r.records[acc]
        elif isinstance(step, MapCmd):
            try:
                _apply_map(machine, trace, step, sids)
            except OutOfFrames:
                raise OutOfFrames(_frames_message(machine, trace, need, free)) from None
        else:
            _apply_unmap(machine, trace, step, sids)
    return Replay(sids, index, records)
