"""`microlab mmu TRACE` (DESIGN.md §5): the JSON contract on hand-worked traces, the human
report, the teaching examples, bad input (exit 2, one line, no traceback) and valgrind lackey
traces of a real program."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine import cycles as C
from engine.profile import load_profile
from lab.cli import main

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "traces"
MICROLAB = Path(sys.executable).with_name("microlab")
P133 = load_profile("pentium-133")

# Worked by hand (x86-32, 4 KiB pages, two-level walk: every miss reads 2 entries).
HAND = """\
map 0 0x1000 0x5000 rw
map 0 0x2000 0x6000 r
map 1 0x1000 0x7000 rw
switch 0
r 0x1000        # 5  miss: cold TLB                      -> 0x5000
w 0x1ffc        # 6  hit: same page                      -> 0x5ffc
w 0x2010        # 7  miss, protection (read-only page): no TLB fill
r 0x2010        # 8  miss again (the fault filled nothing) -> 0x6010
w 0x2010        # 9  hit, protection: the entry keeps the permissions
r 0x3000        # 10 miss, not-present
switch 1        # 11 untagged: CR3 load flushes
r 0x1000        # 12 miss                                -> 0x7000 (space 1's frame)
switch 0
r 0x1004        # 14 miss untagged (flushed); hit tagged -> 0x5004
invlpg 0x1000
r 0x1008        # 16 miss: invlpg dropped the entry      -> 0x5008
r 0x100c        # 17 hit
unmap 0 0x1000
r 0x1000        # 19 miss, not-present: unmap removed mapping and entry
"""
HAND_LINES = [5, 6, 7, 8, 9, 10, 12, 14, 16, 17, 19]
HAND_OPS = ["r", "w", "w", "r", "w", "r", "r", "r", "r", "r", "r"]
HAND_VADDR = [0x1000, 0x1ffc, 0x2010, 0x2010, 0x2010, 0x3000, 0x1000, 0x1004, 0x1008, 0x100c,
              0x1000]
HAND_PADDR = [0x5000, 0x5ffc, None, 0x6010, None, None, 0x7000, 0x5004, 0x5008, 0x500c, None]
HAND_TLB = "miss hit miss miss hit miss miss miss miss hit miss".split()
HAND_FAULT = [None, None, "protection", None, "protection", "not-present", None, None, None,
              None, "not-present"]


def write(tmp_path, text, name="trace.txt"):
    p = tmp_path / name
    p.write_text(text)
    return p


def mmu(capsys, *argv):
    """Run `microlab mmu ...` in-process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    rc = main(["mmu", *map(str, argv)])
    out, err = capsys.readouterr()
    return rc, out, err


def mmu_json(capsys, *argv):
    rc, out, err = mmu(capsys, *argv, "--json")
    assert rc == 0, err
    return json.loads(out)


def column(doc, key):
    return [a[key] for a in doc["accesses"]]


# ------------------------------------------------------------------------- the JSON contract

def test_json_contract_on_a_hand_worked_trace(tmp_path, capsys):
    """Each access reports op, vaddr, paddr (null on a fault), tlb hit/miss, fault kind, walk
    refs and cycles; a faulting access does not fill the TLB; a TLB hit still checks
    permissions; unmap and invlpg drop the page's entry (worked by hand in HAND)."""
    doc = mmu_json(capsys, write(tmp_path, HAND))
    assert set(doc) == {"config", "accesses", "summary"}
    for a in doc["accesses"]:
        assert {"op", "vaddr", "paddr", "tlb", "fault", "walk_refs", "cycles"} <= set(a)
    assert column(doc, "line") == HAND_LINES
    assert column(doc, "op") == HAND_OPS
    assert column(doc, "vaddr") == HAND_VADDR
    assert column(doc, "paddr") == HAND_PADDR
    assert column(doc, "tlb") == HAND_TLB
    assert column(doc, "fault") == HAND_FAULT
    assert column(doc, "walk_refs") == [2 if t == "miss" else 0 for t in HAND_TLB]
    assert column(doc, "space") == [0] * 6 + [1] + [0] * 4
    # the first access: a miss walking 2 entries from memory, then the data from memory
    first = P133["tlb_miss_base_cycles"] + 3 * P133["memory_latency_cycles"]
    assert doc["accesses"][0]["cycles"] == first
    # a TLB hit that faults costs the exception and nothing else (L1 and TLB hits are free)
    assert doc["accesses"][4]["cycles"] == P133["exception_cycles"]
    s = doc["summary"]
    assert (s["accesses"], s["hits"], s["misses"], s["faults"], s["walk_refs"]) == (11, 3, 8, 4, 16)
    assert s["faults_by_kind"] == {"not-present": 2, "protection": 2}


def test_summary_adds_up(tmp_path, capsys):
    """The summary's cycles are the sum of its categories, and the accesses' cycles plus the
    address-space switches account for all of them; counts agree with the access list."""
    doc = mmu_json(capsys, write(tmp_path, HAND))
    s = doc["summary"]
    assert s["faults_by_kind"] == {"not-present": 2, "protection": 2}
    assert set(s["cycles_by_category"]) == set(C.NAMES)
    assert sum(s["cycles_by_category"].values()) == s["cycles"]
    assert sum(column(doc, "cycles")) + s["cycles_by_category"]["space_switch"] == s["cycles"]
    assert s["cycles_by_category"]["fault"] == 4 * P133["exception_cycles"]
    assert s["cycles_by_category"]["space_switch"] == 3 * P133["page_table_switch_cycles"]
    assert s["hits"] == column(doc, "tlb").count("hit")
    assert s["walk_refs"] == sum(column(doc, "walk_refs"))
    assert abs(s["hit_rate"] - 3 / 11) < 1e-12


def test_config_says_which_tlbs_and_tagging_are_in_force(tmp_path, capsys):
    """The resolved configuration: the profile's TLBs by default (pentium-133: untagged)."""
    c = mmu_json(capsys, write(tmp_path, HAND))["config"]
    assert (c["profile"], c["format"], c["tagged"], c["tagged_from"]) == \
        ("pentium-133", "x86-32", False, "profile pentium-133")
    assert [t["name"] for t in c["tlbs"]] == ["itlb", "dtlb", "dtlb4m"]
    assert c["trace_format"] == "microlab" and c["spaces"] == {"0": 0, "1": 1}
    c = mmu_json(capsys, write(tmp_path, HAND), "--tlb-entries", 16, "--tagged", "--seed", 7)["config"]
    assert c["tlbs"] == [{"name": "tlb", "kind": "unified", "entries": 16, "ways": 4,
                          "page_size": 4096, "policy": "lru"}]
    assert (c["tagged"], c["tagged_from"], c["seed"]) == (True, "--tagged", 7)
    c = mmu_json(capsys, write(tmp_path, HAND), "--profile", "x86-64-modern", "--format",
                 "x86-32", "--untagged")["config"]
    assert (c["profile"], c["format"], c["tagged"], c["tagged_from"]) == \
        ("x86-64-modern", "x86-32", False, "--untagged")


def test_tagged_tlb_keeps_entries_across_a_switch(tmp_path, capsys):
    """Tagged TLB: switching back finds the space's entries (line 14 hits); untagged: the CR3
    load flushed them (line 14 misses).  Nothing else in HAND changes."""
    tagged = mmu_json(capsys, write(tmp_path, HAND), "--tagged")
    expect = list(HAND_TLB)
    expect[HAND_LINES.index(14)] = "hit"
    assert column(tagged, "tlb") == expect
    assert column(tagged, "paddr") == HAND_PADDR
    # the same through a tagged profile and --untagged
    a = mmu_json(capsys, EXAMPLES / "tagged_switch.trace", "--profile", "x86-64-modern")
    b = mmu_json(capsys, EXAMPLES / "tagged_switch.trace", "--profile", "x86-64-modern",
                 "--untagged")
    assert (a["summary"]["hits"], a["summary"]["misses"]) == (8, 4)
    assert (b["summary"]["hits"], b["summary"]["misses"]) == (0, 12)


def test_global_entries_survive_a_switch(capsys):
    """A global page's entry survives an untagged switch and `flush SPACE`; `invlpg` and
    `flush` (all) drop it (examples/traces/global_pages.trace, as its comments say)."""
    doc = mmu_json(capsys, EXAMPLES / "global_pages.trace", "--profile", "x86-64-modern",
                   "--untagged")
    assert column(doc, "tlb") == "miss miss miss hit hit miss hit miss miss".split()
    assert column(doc, "paddr") == [0x10000, 0x30000, 0x20000, 0x30000, 0x30000, 0x10000,
                                    0x30000, 0x30000, 0x30000]
    assert doc["summary"]["faults"] == 0


def test_the_p54c_ignores_the_global_bit(capsys):
    """The 1997 Pentium has no global pages (PGE came with the Pentium Pro): on pentium-133
    the kernel's entry is flushed by every CR3 load like any other."""
    doc = mmu_json(capsys, EXAMPLES / "global_pages.trace")
    assert set(column(doc, "tlb")) == {"miss"}       # no entry survives a switch or a flush


CONFLICT = """\
map 0 0x1000 0x10000
map 0 0x2000 0x11000
map 0 0x3000 0x12000
switch 0
r 0x1000
r 0x2000
r 0x1000
r 0x3000
r 0x1000
"""


def test_fifo_and_lru_differ_on_a_conflict(tmp_path, capsys):
    """Two entries, pages A B A C A: LRU evicts B for C (A was used last) and A hits again;
    FIFO evicts A (filled first) and A misses."""
    t = write(tmp_path, CONFLICT)
    geo = ("--tlb-entries", 2, "--tlb-ways", 2)
    lru = mmu_json(capsys, t, *geo, "--tlb-policy", "lru")
    fifo = mmu_json(capsys, t, *geo, "--tlb-policy", "fifo")
    assert column(lru, "tlb") == ["miss", "miss", "hit", "miss", "hit"]
    assert column(fifo, "tlb") == ["miss", "miss", "hit", "miss", "miss"]
    assert fifo["config"]["tlbs"][0]["policy"] == "fifo"


def test_random_policy_is_reproducible_with_a_seed(tmp_path, capsys):
    """Random replacement draws from the seeded generator: the same seed gives the same
    misses, and the seed matters."""
    lines = [f"map 0 {0x1000 * i:#x} {0x10000 + 0x1000 * i:#x}" for i in range(1, 9)] + ["switch 0"]
    lines += [f"r {0x1000 * (1 + (i * 5) % 8):#x}" for i in range(200)]
    t = write(tmp_path, "\n".join(lines) + "\n")
    geo = ("--tlb-entries", 4, "--tlb-ways", 4, "--tlb-policy", "random")
    runs = {s: column(mmu_json(capsys, t, *geo, "--seed", s), "tlb") for s in (1, 2, 3)}
    assert column(mmu_json(capsys, t, *geo, "--seed", 2), "tlb") == runs[2]
    assert len({tuple(v) for v in runs.values()}) > 1
    assert all(0 < v.count("hit") < 200 for v in runs.values())


def test_large_page_extension(tmp_path, capsys):
    """`large` maps one 4 MiB page on x86-32: its walk reads only the directory entry."""
    doc = mmu_json(capsys, write(tmp_path, "map 0 0x400000 0x800000 rw large\nswitch 0\n"
                                           "r 0x401234\nr 0x7ff000\n"))
    assert column(doc, "paddr") == [0x801234, 0xbff000]
    assert column(doc, "walk_refs") == [1, 0]


def test_summary_only_and_protection_on_x86_64(capsys):
    """x86-32 cannot forbid execution; x86-64's NX bit can (protection_fault.trace)."""
    a = mmu_json(capsys, EXAMPLES / "protection_fault.trace")
    b = mmu_json(capsys, EXAMPLES / "protection_fault.trace", "--format", "x86-64",
                 "--summary-only")
    assert a["summary"]["faults_by_kind"] == {"not-present": 2, "protection": 3}
    assert b["summary"]["faults_by_kind"] == {"not-present": 2, "protection": 4}
    assert b["accesses"] == [] and b["config"]["format"] == "x86-64"
    assert column(a, "fault")[:5] == [None, "protection", "protection", None, "protection"]
    assert column(a, "tlb")[:5] == ["miss", "miss", "miss", "miss", "hit"]


def test_tlb_reach_example(capsys):
    """tlb_reach.trace: an 8-entry LRU TLB holds 8 pages but misses on every access of a
    9-page loop; a 4 MiB page is splintered into a 4 KiB-only TLB, but one entry of the
    Pentium's 4 MiB TLB covers it."""
    small = column(mmu_json(capsys, EXAMPLES / "tlb_reach.trace", "--tlb-entries", 8,
                            "--tlb-ways", 8), "tlb")
    assert small[:16] == ["miss"] * 8 + ["hit"] * 8                 # loop A
    assert small[16:34] == ["hit"] * 8 + ["miss"] * 10              # loop B
    assert small[34:] == ["miss"] * 18                               # loop C, splintered
    p5 = column(mmu_json(capsys, EXAMPLES / "tlb_reach.trace"), "tlb")
    assert p5[34:] == ["miss"] + ["hit"] * 17


# ------------------------------------------------------------------------- human output

def test_human_report(tmp_path, capsys):
    """Human output: one line per access, then counts, hit rate, faults by kind, cycles by
    category with their descriptions, the busiest pages and the resolved configuration."""
    rc, out, err = mmu(capsys, write(tmp_path, HAND))
    assert rc == 0 and err == ""
    lines = out.splitlines()
    assert re.search(r"^\s+5\s+0\s+r\s+0x00001000\s+0x0005000\s+miss\s+2\s+105$", out, re.M)
    assert re.search(r"^\s+7\s+0\s+w\s+0x00002010\s+protection\s+miss\s+2\s+\d+$", out, re.M)
    assert re.search(r"^\s+10\s+0\s+r\s+0x00003000\s+not-present\s+miss", out, re.M)
    assert sum(1 for ln in lines if re.match(r"^\s+\d+\s+\d+\s+[rwx]\s+0x", ln)) == 11
    assert re.search(r"TLB hits\s+3\s+27.27% hit rate", out)
    assert "not-present 2, protection 2" in out
    assert C.DESCRIPTIONS["tlb_walk"] in out and C.DESCRIPTIONS["fault"] in out
    assert C.DESCRIPTIONS["disk"] not in out                     # zero categories omitted
    assert re.search(r"^\s+0\s+0x00001000\s+6\s+4\s+1$", out, re.M)  # page: refs, misses, faults
    assert "untagged" in out and "[profile pentium-133]" in out and "dtlb4m" in out
    rc, short, _ = mmu(capsys, write(tmp_path, HAND), "--summary-only")
    assert rc == 0 and "0x0005000" not in short and "TLB hits" in short


def test_a_space_only_flush_names_is_valid_but_marked(tmp_path, capsys):
    """A SPACE exists from the first line that names it (DESIGN.md §5 leaves creation to the
    trace; lab.trace creates spaces in order of first mention): `flush 9` of a space no map or
    switch names is valid and flushes nothing, like `invlpg` of a page not in the TLB -- but
    not silently: the report and the JSON configuration name space 9 as only flushed, and
    `microlab mmu --help` states the rule."""
    path = write(tmp_path, "map 7 0x1000 0x5000\nswitch 3\nr 0x1000\nswitch 7\nr 0x1000\n"
                           "flush 9\nflush 3\n")
    doc = mmu_json(capsys, path)
    assert doc["config"]["spaces"] == {"7": 0, "3": 1, "9": 2}
    assert doc["config"]["spaces_only_flushed"] == ["9"]
    rc, out, err = mmu(capsys, path, "--summary-only")
    assert rc == 0 and err == ""
    assert re.search(r"^  spaces +7 \(engine id 0\), 3 \(engine id 1\), 9 \(engine id 2; only "
                     r"`flush 9` names it: nothing to flush\)$", out, re.M)
    with pytest.raises(SystemExit):
        main(["mmu", "--help"])
    assert "`flush 9` of a space no map/switch line names flushes nothing" in \
        " ".join(capsys.readouterr().out.split())


# ------------------------------------------------------------------------- bad input

BAD_TRACES = [
    ("map 0 0x1000 0x5000\nswitch 0\nrd 0x1000\n", "line 3: unknown op 'rd'; allowed: map, "
     "unmap, switch, r, w, x, flush, invlpg"),
    ("switch 0\nr 0x1000 0x2000\n", "line 2: wrong number of arguments for 'r'"),
    ("switch\n", "line 1: wrong number of arguments for 'switch'"),
    ("map 0 0x1000\n", "line 1: wrong number of arguments for 'map'"),
    ("unmap 0\n", "line 1: wrong number of arguments for 'unmap'"),
    ("invlpg\n", "line 1: wrong number of arguments for 'invlpg'"),
    ("switch 0\nr 0x12g4\n", "line 2: malformed VADDR '0x12g4'"),
    ("switch zero\n", "line 1: malformed SPACE 'zero'"),
    ("map 0 0x1000 5k\n", "line 1: malformed PADDR '5k'"),
    ("map 0 0x1800 0x5000\n", "line 1: map: VADDR 0x1800 is not aligned"),
    ("map 0 0x1000 0x5800\n", "line 1: map: PADDR 0x5800 is not aligned"),
    ("map 0 0x1000 0x5000\nmap 0 0x1000 0x6000\n", "line 2: map: VADDR 0x1000 already mapped in space 0"),
    ("map 0 0x1000 0x5000\nunmap 0 0x2000\n", "line 2: unmap: VADDR 0x2000 not mapped in space 0"),
    ("switch 0\nr 0x100000000\n", "line 2: VADDR 0x100000000 outside the 32-bit x86-32 address space"),
    ("map 0 0x1000 0x4000000\n", "line 1: map: PADDR 0x4000000 outside physical memory"),
    ("map 0 0x1000 0x5000 wr\n", "line 1: bad map flag 'wr'"),
    ("map 0 0x1000 0x5000 rw globl\n", "line 1: bad map flag 'globl'"),
    ("switch -3\n", "line 1: space -3 out of range 0..4095"),
    ("switch 100000\n", "line 1: space 100000 out of range 0..4095"),
    ("map 0 0x1000 0x5000\nr 0x1000\n", "line 2: no current space: add `switch SPACE` "
     "before the first access"),
    ("", "empty trace"),
    ("# only a comment\n\n", "empty trace"),
    ("I  00401000,3\n L 1ffefffc30,8\n", "line 2: address 0x1ffefffc30 does not fit the 32-bit "
     "x86-32 address space (use --format x86-64)"),
]


def assert_one_line_error(rc, out, err, expected):
    assert rc == 2, (out, err)
    assert out == ""
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert err.startswith("microlab mmu: error: ")
    assert "Traceback" not in err
    assert expected in err, err


@pytest.mark.parametrize("text, expected", BAD_TRACES)
def test_bad_trace_exits_2_with_one_line(tmp_path, capsys, text, expected):
    """A bad trace prints one line naming file, line and what is allowed; exit status 2."""
    p = write(tmp_path, text)
    rc, out, err = mmu(capsys, p)
    assert_one_line_error(rc, out, err, expected)
    if "line " in expected:
        assert f"error: {p} line " in err


@pytest.mark.parametrize("args, expected", [
    (["--profile", "vax-780"], "CPU profile 'vax-780' unknown; available: "),
    (["--tlb-entries", "0"], "--tlb-entries 0 must be >= 1"),
    (["--tlb-ways", "0"], "--tlb-ways 0 must be >= 1"),
    (["--tlb-entries", "-8"], "--tlb-entries -8 must be >= 1"),
    (["--tlb-entries", "many"], "--tlb-entries 'many' is not an integer"),
    (["--tlb-entries", "6", "--tlb-ways", "1"], "6 sets; the number of sets must be a power of two"),
    (["--tlb-entries", "24", "--tlb-ways", "8"], "3 sets; the number of sets must be a power of two"),
    (["--tlb-entries", "8", "--tlb-ways", "3"], "--tlb-ways 3 does not divide --tlb-entries 8"),
    (["--tlb-entries", "4", "--tlb-ways", "8"], "--tlb-ways 8 does not divide --tlb-entries 4"),
    (["--tlb-policy", "mru"], "--tlb-policy 'mru' unknown; allowed: lru, fifo, random"),
    (["--format", "x86-16"], "--format 'x86-16' unknown; allowed: x86-32, x86-64, sv39"),
    (["--seed", "-1"], "--seed -1 must be >= 0"),
    (["--tagged", "--untagged"], "--tagged and --untagged contradict each other"),
])
def test_bad_options_exit_2_with_one_line(tmp_path, capsys, args, expected):
    """Bad options: one line naming the value and what is allowed; exit status 2."""
    rc, out, err = mmu(capsys, write(tmp_path, HAND), *args)
    assert_one_line_error(rc, out, err, expected)


def test_missing_directory_and_binary_trace_files(tmp_path, capsys):
    """A trace file that cannot be read as text: one line naming it."""
    assert_one_line_error(*mmu(capsys, tmp_path / "nope.trace"), "trace file")
    assert_one_line_error(*mmu(capsys, tmp_path / "nope.trace"), "not found")
    assert_one_line_error(*mmu(capsys, tmp_path), "is a directory")
    (tmp_path / "bin.trace").write_bytes(b"\xff\xfe\x00\x01switch 0\n")
    assert_one_line_error(*mmu(capsys, tmp_path / "bin.trace"), "is not a text file")


def test_lackey_trace_too_big_for_memory(tmp_path, capsys):
    """A lackey trace touching more pages than there are frames: how many pages were needed
    vs frames available, and advice, in one line."""
    text = "".join(f" L {i << 12:x},4\n" for i in range(1, 16400))
    rc, out, err = mmu(capsys, write(tmp_path, text, "big.lackey"), "--format", "x86-64")
    assert_one_line_error(rc, out, err, "the trace touches 16399 pages (plus page tables) but "
                          "only 16382 frames")
    assert "trace a smaller program" in err


# ------------------------------------------------------------------------- as a real command

def run_microlab(*args):
    assert MICROLAB.exists(), f"{MICROLAB} missing: pip install -e . in the virtualenv"
    return subprocess.run([str(MICROLAB), "mmu", *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def test_subprocess_json_and_human():
    """The installed `microlab` command: JSON on stdout, exit 0."""
    p = run_microlab(EXAMPLES / "global_pages.trace", "--json", "--profile", "x86-64-modern",
                     "--untagged")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert column(doc, "tlb") == "miss miss miss hit hit miss hit miss miss".split()
    p = run_microlab(EXAMPLES / "tagged_switch.trace", "--tagged")
    assert p.returncode == 0 and "66.67% hit rate" in p.stdout


def test_subprocess_bad_input(tmp_path):
    """Bad input through the real command: exit 2, one stderr line, no traceback."""
    p = run_microlab(write(tmp_path, "switch 0\nread 0x1000\n"))
    assert_one_line_error(p.returncode, p.stdout, p.stderr, "line 2: unknown op 'read'")
    p = run_microlab(write(tmp_path, HAND), "--tlb-ways", "0")
    assert_one_line_error(p.returncode, p.stdout, p.stderr, "--tlb-ways 0 must be >= 1")


# ------------------------------------------------------------------------- valgrind lackey

SUM_C = r"""
#include <stdio.h>
#define N 4096
int a[N];                                   /* 16 KiB: 4 pages, 5 if unaligned */
int main(void) {
    long s = 0;
    for (int i = 0; i < N; i++) a[i] = i;
    for (int r = 0; r < 4; r++)
        for (int i = 0; i < N; i++) s += a[i];
    printf("%p %zu %ld\n", (void *)a, sizeof a, s);
    return 0;
}
"""


def test_lackey_trace_of_a_real_program(tmp_path, capsys):
    """A loop summing an array, traced by valgrind lackey: thousands of accesses, a TLB hit rate
    above 90% (the loop stays on a few pages), the array's pages referenced at least once per
    element per pass, no faults (every page mapped with the union of its uses)."""
    for tool in ("gcc", "valgrind"):
        assert shutil.which(tool), f"{tool} is not installed: this test needs it " \
                                   "(apt-get install gcc valgrind)"
    src = tmp_path / "sum.c"
    src.write_text(SUM_C)
    exe = tmp_path / "sum"
    # static: no dynamic loader, so the trace is about half as long
    subprocess.run(["gcc", "-static", "-O1", "-o", str(exe), str(src)], check=True, timeout=60)
    log = tmp_path / "sum.lackey"
    p = subprocess.run(["valgrind", "--tool=lackey", "--trace-mem=yes", f"--log-file={log}",
                        str(exe)], capture_output=True, text=True, check=True, timeout=120)
    addr, size, total = p.stdout.split()
    addr, size = int(addr, 16), int(size)
    assert int(total) == 4 * sum(range(4096))

    doc = mmu_json(capsys, log, "--format", "x86-64")
    s = doc["summary"]
    assert doc["config"]["trace_format"] == "lackey"
    assert s["accesses"] > 5 * 4096
    assert s["hit_rate"] > 0.9
    assert s["faults"] == 0
    pages = {(p["space"], p["vpn"]): p for p in s["pages"]}
    array = range(addr >> 12, ((addr + size - 1) >> 12) + 1)
    assert all((0, v) in pages for v in array)
    assert sum(pages[(0, v)]["references"] for v in array) >= 5 * 4096   # 1 store + 4 loads each
    assert sum(p["references"] for p in s["pages"]) == s["accesses"]

    # the same trace on the default x86-32 format: one line naming the address and the remedy
    rc, out, err = mmu(capsys, log)
    assert_one_line_error(rc, out, err, "does not fit the 32-bit x86-32 address space "
                          "(use --format x86-64)")
    assert re.search(r"sum.lackey line \d+: address 0x[0-9a-f]+ ", err)


@pytest.mark.parametrize("profile, fmt, note", [
    ("x86-64-modern", "x86-32", "dtlb2m  data, 32 entries, 4-way, lru, 2 MiB pages "
                                "(holds x86-32's 4 MiB pages 2 MiB at a time)"),
    ("pentium-133", "x86-64", "4 MiB pages (stays empty: x86-64's large pages are 2 MiB"),
])
def test_configuration_says_how_a_large_page_tlb_serves_the_format(tmp_path, capsys, profile, fmt,
                                                                   note):
    """A profile's large-page TLB under a format whose large pages differ: the configuration
    says what it holds (a 2 MiB TLB holds x86-32's 4 MiB page per half, as a walk shows)."""
    t = write(tmp_path, "map 0 0x400000 0x800000 rw large\nswitch 0\nr 0x400000\nr 0x600000\n")
    rc, out, _ = mmu(capsys, t, "--profile", profile, "--format", fmt)
    assert rc == 0 and note in out
    assert column(mmu_json(capsys, t, "--profile", profile, "--format", fmt), "tlb") == \
        ["miss", "miss"]        # two halves (two pieces) of one large page: two refills
