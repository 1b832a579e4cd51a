"""lab.trace: parsing microlab and valgrind-lackey traces, and replaying them on a Machine.

The replay is checked against a tiny pure-Python model of the trace semantics (DESIGN.md §5)
on hypothesis-generated traces: batching must not change what each access sees.
"""
import pytest
from hypothesis import given, settings, strategies as st

from engine import Machine, core
from engine.errors import OutOfFrames, TraceError
from engine.pte import X86_32, X86_64
from lab.trace import (MapCmd, Op, Run, TraceFileError, UnmapCmd, parse_number, parse_trace,
                       replay)

MEM = 64 << 20


def parse(text, fmt=X86_32, **kw):
    return parse_trace(text.splitlines(True), fmt, MEM, source="t.trace", **kw)


def unified(entries, ways, policy="lru"):
    return [{"name": "tlb", "kind": "unified", "entries": entries, "ways": ways,
             "page_size": 4096, "policy": policy}]


# ------------------------------------------------------------------------- parsing

def test_numbers_are_hex_with_0x_or_decimal():
    """Trace numbers are hex with 0x or decimal; anything else names the bad token."""
    assert parse_number("0x1F", "VADDR", 1) == 31
    assert parse_number("4096", "VADDR", 1) == 4096
    assert parse_number("007", "VADDR", 1) == 7
    for bad in ("0x", "1f", "0b101", "1_000", "0x1_0", "+5", "4k", "0x0x1"):
        with pytest.raises(TraceError, match="malformed VADDR"):
            parse_number(bad, "VADDR", 3)


def test_comments_blank_lines_and_runs():
    """'#' starts a comment; map/unmap cut the entries into runs, each one Machine.run batch."""
    t = parse("""# a comment
map 0 0x1000 0x5000 rw   # trailing comment

switch 0
r 0x1000
w 4100
unmap 0 0x1000
x 0x1000
flush
flush 0
invlpg 0x1000
""")
    assert t.kind == "microlab"
    assert t.code.tolist() == [Op.SWITCH, Op.R, Op.W, Op.X, Op.FLUSH, Op.FLUSH_SPACE, Op.INVLPG]
    assert t.arg.tolist() == [0, 0x1000, 4100, 0x1000, 0, 0, 0x1000]
    assert t.line.tolist() == [4, 5, 6, 8, 9, 10, 11]
    assert t.steps == [MapCmd(2, 0, 0x1000, 0x5000, "rw"), Run(0, 3), UnmapCmd(7, 0, 0x1000),
                       Run(3, 7)]
    assert t.n_accesses == 3


def test_spaces_get_ordinals_in_order_of_first_mention():
    """SPACE numbers are the trace's; engine spaces are created in order of first mention."""
    t = parse("map 7 0x1000 0x5000\nswitch 3\nr 0x1000\nswitch 7\nr 0x1000\nflush 9\n")
    assert t.spaces == (7, 3, 9)
    assert t.space[t.accesses].tolist() == [1, 0]     # ordinals of spaces 3 and 7


def test_a_space_only_flush_names_is_reported():
    """A SPACE exists from its first mention, so `flush 9` of a space that no map, unmap or
    switch names is valid (it flushes nothing); Trace.only_flushed lists such spaces, so that
    a report can say so (a likely typo) instead of passing over it in silence."""
    t = parse("map 7 0x1000 0x5000\nswitch 3\nflush 9\nflush 7\nflush 3\nflush 4\n")
    assert t.spaces == (7, 3, 9, 4) and t.only_flushed == (9, 4)
    assert parse("map 7 0x1000 0x5000\nswitch 3\nflush 7\n").only_flushed == ()
    assert parse_trace(["I  00401000,3\n"], X86_32, MEM, lackey=True).only_flushed == ()


def test_map_defaults_and_flags():
    """map takes optional permissions (default rw), 'global' and 'large' in any order."""
    t = parse("map 0 0x1000 0x5000\nmap 0 0x2000 0x6000 global r\n"
              "map 1 0x400000 0x800000 rx large global\n")
    assert [(s.perms, s.global_, s.large) for s in t.steps] == [
        ("rw", False, False), ("r", True, False), ("rx", True, True)]


@pytest.mark.parametrize("text, message", [
    ("rd 0x1000", "line 1: unknown op 'rd'; allowed: map, unmap, switch, r, w, x, flush, invlpg"),
    ("switch 0\nr", "line 2: wrong number of arguments for 'r': expected `r VADDR`, got 0"),
    ("switch 0 1", "expected `switch SPACE`, got 2"),
    ("map 0 0x1000", "expected `map SPACE VADDR PADDR"),
    ("flush 1 2", "expected `flush [SPACE]`"),
    ("switch 0\nr 0xzz", "line 2: malformed VADDR '0xzz'"),
    ("switch -1", "space -1 out of range 0..4095"),
    ("switch 4096", "space 4096 out of range 0..4095"),
    ("map 0 0x1234 0x5000", "VADDR 0x1234 is not aligned to the page size 0x1000"),
    ("map 0 0x1000 0x5010", "PADDR 0x5010 is not aligned to the page size 0x1000"),
    ("map 0 0x400000 0x801000 large", "PADDR 0x801000 is not aligned to the page size 0x400000"),
    ("map 0 0x1000 0x4000000", "PADDR 0x4000000 outside physical memory (64 MB"),
    ("map 0 0x1000 0x5000 rwz", "bad map flag 'rwz'"),
    ("map 0 0x1000 0x5000 rw r", "bad map flag 'r'"),
    ("map 0 0x100000000 0x5000", "outside the 32-bit x86-32 address space 0..0xffffffff "
                                 "(try --format x86-64)"),
    ("r 0x1000", "line 1: no current space: add `switch SPACE` before the first access"),
    ("# c\ninvlpg 0x1000", "line 2: no current space: add `switch SPACE` before the first 'invlpg'"),
])
def test_bad_lines_name_file_line_and_what_is_allowed(text, message):
    """A bad line raises TraceError naming the file, the line number, the bad value."""
    with pytest.raises(TraceFileError) as e:
        parse(text)
    assert message in str(e.value)
    assert str(e.value).startswith("t.trace line ")


def test_empty_trace_is_an_error():
    """A trace with no command (only comments) is an error, not an empty report."""
    with pytest.raises(ValueError, match="t.trace: empty trace"):
        parse("# nothing\n\n   \n")
    with pytest.raises(ValueError, match="empty trace"):
        parse("")


# ------------------------------------------------------------------------- lackey

LACKEY = """==123== Lackey, an example Valgrind tool
==123== Command: ./a.out
==123==
I  00401000,3
 L 00402ffc,8
 S 00403000,4
 M 00405010,4
I  00402000,2
==123== Exit code: 0
"""


def test_lackey_is_detected_and_pages_mapped_on_first_use():
    """A lackey trace: space 0, every page mapped to a fresh frame (rw data, rx code, rwx both);
    an access crossing a page boundary touches both pages; M is a load then a store."""
    t = parse(LACKEY)
    assert t.kind == "lackey" and t.spaces == (0,)
    acc = t.accesses
    assert t.code[acc].tolist() == [Op.X, Op.R, Op.R, Op.W, Op.R, Op.W, Op.X]
    assert t.arg[acc].tolist() == [0x401000, 0x402ffc, 0x403000, 0x403000, 0x405010, 0x405010,
                                   0x402000]
    assert t.line[acc].tolist() == [4, 5, 5, 6, 7, 7, 8]
    maps = [s for s in t.steps if isinstance(s, MapCmd)]
    assert [(m.va, m.perms, m.pa) for m in maps] == [
        (0x401000, "rx", None), (0x402000, "rwx", None), (0x403000, "rw", None),
        (0x405000, "rw", None)]
    assert t.code[0] == Op.SWITCH and isinstance(t.steps[-1], Run)


def test_lackey_flag_and_garbage():
    """With lackey forced, a non-lackey line (other than lackey's '==' banner) is an error."""
    with pytest.raises(TraceFileError, match="line 1: not a valgrind lackey line"):
        parse("switch 0\n", lackey=True)
    with pytest.raises(TraceFileError, match="line 6: not a valgrind lackey line"):
        parse(LACKEY.replace(" S 00403000,4", "garbage"))


def test_lackey_address_beyond_the_format_suggests_x86_64():
    """A 64-bit program's stack does not fit x86-32: the error names line, address, remedy."""
    text = "I  00401000,3\n L 1ffefffc30,8\n"
    with pytest.raises(TraceFileError, match=r"line 2: address 0x1ffefffc30 does not fit the "
                                             r"32-bit x86-32 address space \(use --format x86-64\)"):
        parse(text)
    assert parse(text, X86_64).n_accesses == 2


def test_lackey_replay_runs_without_faults():
    """Pages mapped with the union of their uses: a lackey replay never faults."""
    m = Machine("pentium-133", fmt="x86-64")
    t = parse(LACKEY, X86_64)
    r = replay(m, t)
    assert r.records.shape == (7, core.R_LEN)
    assert (r.records[:, core.R_FAULT] == 0).all()
    # the load crossing 0x403000 and the store to 0x403000 share a frame: same paddr
    assert r.records[2, core.R_PADDR] == r.records[3, core.R_PADDR]


def test_lackey_out_of_frames_names_pages_needed_and_frames_free():
    """A trace touching more pages than memory holds fails up front, saying how many."""
    m = Machine("pentium-133", fmt="x86-64", memory_bytes=1 << 20)     # 256 frames
    lines = [f" L {i << 12:x},4\n" for i in range(1, 400)]
    t = parse_trace(lines, m.fmt, m.memory.size, "big.lackey")
    with pytest.raises(OutOfFrames, match=r"big.lackey: out of physical memory: the trace "
                                          r"touches 399 pages \(plus page tables\) but only \d+ frames"):
        replay(m, t)


# ------------------------------------------------------------------------- replay vs model

class Model:
    """The trace semantics of DESIGN.md §5 with one fully associative LRU TLB, in plain Python."""

    def __init__(self, entries, tagged, pge=True):
        self.n, self.tagged, self.pge = entries, tagged, pge     # pge: the TLB honours G
        self.tlb = []               # [space, vpn, global, pa_base, writable], LRU first
        self.maps = {}              # (space, vpn) -> (pa_base, writable, global)
        self.cur = None

    def access(self, kind, va):
        vpn, cur = va >> 12, self.cur
        for e in self.tlb:
            if e[1] == vpn and (not self.tagged or e[0] == cur or e[2]):
                self.tlb.remove(e)
                self.tlb.append(e)
                fault = "protection" if kind == "w" and not e[4] else None
                return ("hit", fault, None if fault else e[3] + (va & 0xFFF))
        m = self.maps.get((cur, vpn))
        if m is None:
            return ("miss", "not-present", None)
        if kind == "w" and not m[1]:
            return ("miss", "protection", None)
        if len(self.tlb) == self.n:
            self.tlb.pop(0)
        self.tlb.append([cur, vpn, m[2] and self.pge, m[0], m[1]])
        return ("miss", None, m[0] + (va & 0xFFF))

    def drop(self, pred):
        self.tlb = [e for e in self.tlb if not pred(e)]

    def apply(self, cmd):
        op, *a = cmd
        if op == "map":
            self.maps[(a[0], a[1] >> 12)] = (a[2], a[3] == "rw", a[4])
        elif op == "unmap":
            del self.maps[(a[0], a[1] >> 12)]
            self.drop(lambda e: e[1] == a[1] >> 12 and (e[0] == a[0] or e[2]))
        elif op == "switch":
            if a[0] != self.cur and not self.tagged:
                self.drop(lambda e: not e[2])
            self.cur = a[0]
        elif op == "flush":
            self.drop(lambda e: True)
        elif op == "flush_space":
            self.drop(lambda e: e[0] == a[0] and not e[2])
        elif op == "invlpg":
            self.drop(lambda e: e[1] == a[0] >> 12 and (e[0] == self.cur or e[2]))
        else:
            return self.access(op, a[0])


@st.composite
def traces(draw):
    """Random traces over 3 spaces and 6 pages, valid by construction (no double map), most
    accesses to pages mapped in the current space."""
    cmds, mapped = [], set()
    for sp in range(3):             # start with most pages mapped, so that accesses hit
        for vpn in range(6):
            if draw(st.integers(0, 3)):
                mapped.add((sp, vpn))
                cmds.append(("map", sp, vpn << 12, draw(st.integers(1, 40)) << 12,
                             draw(st.sampled_from(["r", "rw", "rw"])), draw(st.integers(0, 5)) == 0))
    cur = draw(st.integers(0, 2))
    cmds.append(("switch", cur))
    for _ in range(draw(st.integers(1, 60))):
        k = draw(st.sampled_from(["r", "r", "w", "w", "x", "map", "map", "unmap", "switch",
                                  "flush", "flush_space", "invlpg"]))
        sp, vpn = draw(st.integers(0, 2)), draw(st.integers(0, 5))
        mine = sorted(v for s, v in mapped if s == cur)
        if k in ("r", "w", "x") and mine and draw(st.integers(0, 3)):
            vpn = mine[draw(st.integers(0, len(mine) - 1))]    # mostly mapped pages: hits
        va = (vpn << 12) | draw(st.integers(0, 4095))
        if k == "switch":
            cur = sp
        if k == "map":
            if (sp, vpn) not in mapped:
                mapped.add((sp, vpn))
                cmds.append(("map", sp, vpn << 12, draw(st.integers(1, 40)) << 12,
                             draw(st.sampled_from(["r", "rw"])), draw(st.booleans())))
        elif k == "unmap":
            if mapped:
                sp, v = sorted(mapped)[draw(st.integers(0, len(mapped) - 1))]
                mapped.discard((sp, v))
                cmds.append(("unmap", sp, v << 12))
        elif k in ("switch", "flush_space"):
            cmds.append((k, sp))
        elif k == "flush":
            cmds.append(("flush",))
        else:
            cmds.append((k, va))
    return cmds


def text_of(cmds):
    out = []
    for c in cmds:
        if c[0] == "map":
            out.append(f"map {c[1]} {c[2]:#x} {c[3]:#x} {c[4]}" + (" global" if c[5] else ""))
        elif c[0] == "unmap":
            out.append(f"unmap {c[1]} {c[2]:#x}")
        elif c[0] == "flush_space":
            out.append(f"flush {c[1]}")
        elif c[0] == "flush":
            out.append("flush")
        else:
            out.append(f"{c[0]} {c[1]:#x}" if c[0] in "rwx" or c[0] == "invlpg" else f"{c[0]} {c[1]}")
    return "\n".join(out) + "\n"


@settings(max_examples=150, deadline=None)
@given(cmds=traces(), tagged=st.booleans(), entries=st.sampled_from([1, 2, 4]),
       pge=st.booleans())
def test_replay_matches_the_python_model(cmds, tagged, entries, pge):
    """Batched replay gives every access the TLB outcome, fault and paddr the trace semantics
    define: tags or flush on switch, global entries (honoured only where the CPU has PGE: not
    on the 1997 Pentium), flush/invlpg/unmap, no fill on a fault."""
    m = Machine("x86-64-modern" if pge else "pentium-133", fmt="x86-32", tagged=tagged,
                tlbs=unified(entries, entries), memory_bytes=1 << 20)
    t = parse_trace(text_of(cmds).splitlines(), m.fmt, m.memory.size)
    r = replay(m, t)
    model = Model(entries, tagged, pge)
    expect = [x for x in (model.apply(c) for c in cmds) if x is not None]
    names = core.FAULT_NAMES
    got = [("miss" if rec[core.R_TLB] else "hit", names[rec[core.R_FAULT]],
            None if rec[core.R_FAULT] else int(rec[core.R_PADDR])) for rec in r.records]
    assert got == expect


@settings(max_examples=60, deadline=None)
@given(cmds=traces())
def test_replay_equals_one_call_per_command(cmds):
    """One batch per run gives the same records, counters and cycles as driving the Machine one
    command at a time (step, switch, flush, invlpg, map, unmap)."""
    a = Machine("pentium-133", memory_bytes=1 << 20)
    t = parse_trace(text_of(cmds).splitlines(), a.fmt, a.memory.size)
    r = replay(a, t)
    b = Machine("pentium-133", memory_bytes=1 << 20)
    sid = {n: b.new_space() for n in t.spaces}
    got = []
    for c in cmds:
        if c[0] == "map":
            b.map(sid[c[1]], c[2], c[3], c[4], global_=c[5])
        elif c[0] == "unmap":
            b.unmap(sid[c[1]], c[2])
        elif c[0] == "switch":
            b.switch(sid[c[1]])
        elif c[0] == "flush":
            b.flush()
        elif c[0] == "flush_space":
            b.flush(sid[c[1]])
        elif c[0] == "invlpg":
            b.invlpg(c[1])
        else:
            s = b.step(c[0], c[1])
            got.append((-1 if s.paddr is None else s.paddr, int(s.tlb == "miss"),
                        s.walk_refs, s.cycles))
    rec = r.records
    assert got == [(int(x[core.R_PADDR]), int(x[core.R_TLB]), int(x[core.R_WALK]),
                    int(x[core.R_CYCLES])) for x in rec]
    assert a.by_category() == b.by_category()
    assert a.stats() == b.stats()


def test_map_twice_and_unmap_unmapped_are_errors_at_their_line():
    """Mapping a mapped page, or unmapping an unmapped one, names the line and the space."""
    m = Machine("pentium-133")
    t = parse("map 5 0x1000 0x5000\nswitch 5\nr 0x1000\nmap 5 0x1000 0x6000\n")
    with pytest.raises(TraceFileError, match=r"t.trace line 4: map: VADDR 0x1000 already mapped "
                                             r"in space 5"):
        replay(m, t)
    t = parse("map 5 0x1000 0x5000\nunmap 5 0x2000\n")
    with pytest.raises(TraceFileError, match="line 2: unmap: VADDR 0x2000 not mapped in space 5"):
        replay(Machine("pentium-133"), t)
