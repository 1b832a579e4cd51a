"""`microlab mmu TRACE`: run a memory trace through the simulated MMU (DESIGN.md §5).

    microlab mmu examples/traces/tlb_reach.trace
    microlab mmu t.trace --tlb-entries 16 --tlb-ways 2 --tlb-policy fifo --json
    valgrind --tool=lackey --trace-mem=yes --log-file=ls.lackey ls
    microlab mmu ls.lackey --format x86-64 --summary-only

Prints every access (op, vaddr, paddr or fault, TLB hit/miss, walk refs, cycles), then a
summary: hit rate, faults by kind, cycles by category, the busiest pages and the resolved
configuration; or all of it as one JSON document (`--json`).  Parsing and replay live in
`lab.trace`; this module resolves the options into a Machine and renders the result.
"""
import argparse
import json
import os
import sys

import numpy as np

from engine import Machine, core, cycles as C
from engine.errors import ConfigError
from engine.profile import load_profile
from engine.pte import FORMATS

from .trace import read_trace, replay

POLICIES = ("lru", "fifo", "random")
TOP_PAGES = 10
EPILOG = """\
TRACE lines (# starts a comment; numbers hex with 0x or decimal):
  map SPACE VADDR PADDR [r|rw|rx|rwx] [global] [large]
                                map one page (default rw; large: 4 MiB on x86-32, else 2 MiB)
  unmap SPACE VADDR             remove the mapping and SPACE's TLB entry for it
  switch SPACE                  make SPACE current (untagged TLB: flush non-global entries)
  r VADDR | w VADDR | x VADDR   one access in the current space
  flush                         drop every TLB entry of every space
  flush SPACE                   drop SPACE's non-global entries
  invlpg VADDR                  drop the current space's entry for that page
A SPACE exists from the first line that names it: `switch 9` to a new space gives an empty one;
`flush 9` of a space no map/switch line names flushes nothing (the report marks such a space).
valgrind lackey traces (valgrind --tool=lackey --trace-mem=yes) are detected and accepted too:
every page touched is mapped in space 0 to a fresh frame.  TRACE '-' reads standard input.
Examples: examples/traces/*.trace (each says how to run it and what to look for).
"""


def add_arguments(p):
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EPILOG
    p.add_argument("trace", metavar="TRACE", help="trace file (microlab or valgrind lackey format), - for stdin")
    p.add_argument("--format", default="x86-32", metavar="{x86-32,x86-64,sv39}",
                   help="page-table format (default x86-32)")
    p.add_argument("--tlb-entries", metavar="N",
                   help="one unified TLB of N entries (other geometry from the profile's data TLB)")
    p.add_argument("--tlb-ways", metavar="W", help="associativity of that unified TLB")
    p.add_argument("--tlb-policy", metavar="{lru,fifo,random}", help="its replacement policy")
    p.add_argument("--untagged", action="store_true",
                   help="untagged TLB: a switch flushes every non-global entry (default: profile)")
    p.add_argument("--tagged", action="store_true",
                   help="tagged TLB (address-space ids) even if the profile has none")
    p.add_argument("--profile", default="pentium-133", help="CPU profile (default pentium-133)")
    p.add_argument("--seed", default="1", metavar="S", help="seed of the random policy (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.add_argument("--summary-only", action="store_true", help="omit the per-access lines")
    p.add_argument("--lackey", action="store_true",
                   help="read TRACE as a valgrind lackey trace (default: detected)")


# ------------------------------------------------------------------------------ configuration

def _natural(text, option, positive=True):
    """An option's integer value (decimal or 0x hex); one-line error naming the option."""
    try:
        v = int(text, 0)
    except (TypeError, ValueError):
        raise ConfigError(f"{option} {text!r} is not an integer") from None
    if v < (1 if positive else 0):
        raise ConfigError(f"{option} {v} must be {'>= 1' if positive else '>= 0'}")
    return v


def _data_tlb(profile):
    """The profile's TLB for data references of base-size pages (its first data/unified one)."""
    for t in profile.tlbs:
        if t["kind"] in ("data", "unified"):
            return t
    return profile.tlbs[0]


def resolve(args):
    """Options -> keyword arguments of Machine, plus where each choice came from."""
    if args.format not in FORMATS:
        raise ConfigError(f"--format {args.format!r} unknown; allowed: {', '.join(FORMATS)}")
    if args.tagged and args.untagged:
        raise ConfigError("--tagged and --untagged contradict each other; give one")
    profile = load_profile(args.profile)
    fmt = FORMATS[args.format]
    kw = {"seed": _natural(args.seed, "--seed", positive=False)}
    if fmt.name != profile.format:
        kw["fmt"] = fmt.name
    if args.tlb_entries is not None or args.tlb_ways is not None or args.tlb_policy is not None:
        kw["tlbs"] = [_unified_tlb(args, profile, fmt)]
    if args.untagged or args.tagged:
        kw["tagged"] = bool(args.tagged)
    tagged_from = "--tagged" if args.tagged else "--untagged" if args.untagged \
        else f"profile {profile.name}"
    return profile, kw, tagged_from


def _unified_tlb(args, profile, fmt):
    d = _data_tlb(profile)
    n = d["entries"] if args.tlb_entries is None else _natural(args.tlb_entries, "--tlb-entries")
    w = d["ways"] if args.tlb_ways is None else _natural(args.tlb_ways, "--tlb-ways")
    w = min(w, n) if args.tlb_ways is None else w     # a small TLB keeps the profile's ways if it can
    pol = d["policy"] if args.tlb_policy is None else args.tlb_policy
    if pol not in POLICIES:
        raise ConfigError(f"--tlb-policy {pol!r} unknown; allowed: {', '.join(POLICIES)}")
    if w > n or n % w:
        ways = f"--tlb-ways {w}" if args.tlb_ways is not None else \
            f"the profile's {w} ways (give --tlb-ways)"
        raise ConfigError(f"{ways} does not divide --tlb-entries {n}")
    sets = n // w
    if sets & (sets - 1):
        raise ConfigError(f"--tlb-entries {n} / --tlb-ways {w} = {sets} sets; the number of "
                          "sets must be a power of two (1, 2, 4, 8, ...)")
    return {"name": "tlb", "kind": "unified", "entries": n, "ways": w,
            "page_size": fmt.page_size, "policy": pol}


# ------------------------------------------------------------------------------ results

def access_table(machine, trace, rep):
    """Per access, in trace order: numpy columns line, space, op, vaddr, paddr, miss, fault,
    walk_refs, cycles (fault: 0 none, else an index into engine.core.FAULT_NAMES)."""
    idx, rec = rep.index, rep.records
    spaces = np.array(trace.spaces or (0,), np.int64)
    return {"line": trace.line[idx], "space": spaces[trace.space[idx]],
            "op": trace.code[idx], "vaddr": trace.arg[idx],
            "paddr": rec[:, core.R_PADDR], "miss": rec[:, core.R_TLB],
            "fault": rec[:, core.R_FAULT], "walk_refs": rec[:, core.R_WALK],
            "cycles": rec[:, core.R_CYCLES]}


def page_stats(machine, acc):
    """Per (space, virtual page): references, TLB misses, faults; busiest first."""
    if acc["vaddr"].size == 0:
        return []
    vpn = acc["vaddr"] >> machine.fmt.page_shift
    key = (acc["space"] << 48) | vpn
    keys, inv, refs = np.unique(key, return_inverse=True, return_counts=True)
    misses = np.bincount(inv, weights=acc["miss"], minlength=keys.size).astype(np.int64)
    faults = np.bincount(inv, weights=acc["fault"] != 0, minlength=keys.size).astype(np.int64)
    order = np.lexsort((keys, -misses, -refs))     # most references, then most misses, then key
    ps = machine.fmt.page_shift
    return [{"space": int(keys[i] >> 48), "vpn": int(keys[i] & ((1 << 48) - 1)),
             "vaddr": int(keys[i] & ((1 << 48) - 1)) << ps, "references": int(refs[i]),
             "misses": int(misses[i]), "faults": int(faults[i])} for i in order]


def summary(machine, acc, pages):
    st = {k: v for k, (v, _d) in machine.stats().items()}
    n = st["accesses"]
    fk = np.bincount(acc["fault"], minlength=len(core.FAULT_NAMES))
    tlbs = {t["name"]: {"hits": st[f"{t['name']}.hits"], "misses": st[f"{t['name']}.misses"],
                        "evictions": st[f"{t['name']}.evictions"]} for t in machine.tlb_config}
    return {"accesses": n, "hits": st["tlb.hits"], "misses": st["tlb.misses"],
            "faults": st["faults"], "walk_refs": st["walk.refs"], "cycles": machine.cycles,
            "cycles_by_category": machine.by_category(),
            "hit_rate": st["tlb.hits"] / n if n else None,
            "faults_by_kind": {"not-present": int(fk[core.F_NOT_PRESENT]),
                               "protection": int(fk[core.F_PROTECTION])},
            "switches": st["switches"], "tlb_flushes": st["tlb.flushes"],
            "cr3_loads": st["cr3.loads"], "tlbs": tlbs, "pages": pages}


def config(machine, trace, sids, tagged_from):
    c = machine.config()
    c.update({"trace": trace.source, "trace_format": trace.kind, "trace_lines": trace.nlines,
              "page_size": machine.fmt.page_size, "va_bits": machine.fmt.va_bits,
              "tagged_from": tagged_from,
              "spaces": {str(n): sid for n, sid in zip(trace.spaces, sids)},
              "spaces_only_flushed": [str(n) for n in trace.only_flushed]})
    return c


# ------------------------------------------------------------------------------ rendering

def render_json(cfg, acc, summ, with_accesses=True):
    """One JSON document.  The access list is formatted row by row with one template: a
    million dicts through json.dumps would take several times longer."""
    rows = []
    if with_accesses:
        ops = ("r", "w", "x")
        tlb = ('"hit"', '"miss"')
        fault = ["null"] + [f'"{n}"' for n in core.FAULT_NAMES[1:]]
        row = ('{"op":"%s","vaddr":%d,"paddr":%s,"tlb":%s,"fault":%s,"walk_refs":%d,'
               '"cycles":%d,"line":%d,"space":%d}')
        paddr = [("null" if f else str(p)) for p, f in zip(acc["paddr"].tolist(), acc["fault"].tolist())]
        rows = [row % (ops[o], v, p, tlb[m], fault[f], wr, cy, ln, sp) for o, v, p, m, f, wr, cy, ln, sp
                in zip(acc["op"].tolist(), acc["vaddr"].tolist(), paddr, acc["miss"].tolist(),
                       acc["fault"].tolist(), acc["walk_refs"].tolist(), acc["cycles"].tolist(),
                       acc["line"].tolist(), acc["space"].tolist())]
    return "".join(['{"config":', json.dumps(cfg), ',"accesses":[', ",\n".join(rows),
                    '],"summary":', json.dumps(summ), "}\n"])


def _hexw(bits):
    return (bits + 3) // 4


def access_lines(machine, acc):
    """One text line per access, built in one pass (a million accesses take about a second)."""
    vw = _hexw(machine.fmt.va_bits)
    pd = _hexw((machine.memory.size - 1).bit_length())
    pw = max(pd + 2, len("not-present"))
    names = core.FAULT_NAMES
    pfmt = f"0x%0{pd}x"
    pstr = [names[f] if f else pfmt % p for p, f in zip(acc["paddr"].tolist(), acc["fault"].tolist())]
    lw = max(4, len(str(int(acc["line"].max())))) if acc["line"].size else 4
    head = f"{'line':>{lw}} {'space':>5}  op  {'vaddr':<{vw + 2}}  {'paddr':<{pw}}  tlb   walk  cycles"
    row = f"%{lw}d %5d  %s   0x%0{vw}x  %-{pw}s  %-4s  %4d  %6d"
    ops = "rwx"
    tlb = ("hit", "miss")
    body = [row % t for t in zip(acc["line"].tolist(), acc["space"].tolist(),
                                 [ops[o] for o in acc["op"].tolist()], acc["vaddr"].tolist(),
                                 pstr, [tlb[m] for m in acc["miss"].tolist()],
                                 acc["walk_refs"].tolist(), acc["cycles"].tolist())]
    return [head] + body


def _size(n):
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift} {unit}"
    return f"{n} B"


def _pages_table(title, pages, vw):
    out = [title, f"  {'space':>5}  {'page':<{vw + 2}}  {'refs':>8}  {'misses':>7}  {'faults':>6}"]
    out += [f"  {p['space']:>5}  0x{p['vaddr']:0{vw}x}  {p['references']:>8}  {p['misses']:>7}  "
            f"{p['faults']:>6}" for p in pages]
    return out


def summary_lines(machine, cfg, summ):
    vw = _hexw(machine.fmt.va_bits)
    n = summ["accesses"]
    fk = summ["faults_by_kind"]
    stats = machine.STATS
    rate = f"{100 * summ['hit_rate']:.2f}% hit rate" if n else "no accesses"
    out = ["", f"summary ({cfg['trace']}: {cfg['trace_lines']} lines, {cfg['trace_format']} format)",
           f"  {'accesses':<14}{n:>12}   {stats['accesses']}",
           f"  {'TLB hits':<14}{summ['hits']:>12}   {rate}",
           f"  {'TLB misses':<14}{summ['misses']:>12}   {stats['tlb.misses']}",
           f"  {'faults':<14}{summ['faults']:>12}   not-present {fk['not-present']}, "
           f"protection {fk['protection']}",
           f"  {'walk refs':<14}{summ['walk_refs']:>12}   {stats['walk.refs']}",
           f"  {'switches':<14}{summ['switches']:>12}   {stats['switches']}",
           f"  {'TLB flushes':<14}{summ['tlb_flushes']:>12}   {stats['tlb.flushes']}",
           f"  {'cycles':<14}{summ['cycles']:>12}   total, by category:"]
    for name, v in summ["cycles_by_category"].items():
        if v:
            out.append(f"    {name:<12}{v:>12}   {C.DESCRIPTIONS[name]}")
    for name, t in summ["tlbs"].items():
        out.append(f"  {name:<14}{t['hits']:>12} hits, {t['misses']} misses, "
                   f"{t['evictions']} evictions")
    pages = summ["pages"]
    if pages:
        out.append("")
        out += _pages_table(f"pages: the {min(TOP_PAGES, len(pages))} most referenced of "
                            f"{len(pages)} touched", pages[:TOP_PAGES], vw)
        missed = sorted((p for p in pages if p["misses"]),
                        key=lambda p: (-p["misses"], -p["references"], p["space"], p["vpn"]))
        if missed and missed[:TOP_PAGES] != pages[:TOP_PAGES]:   # only if it tells more
            out.append("")
            out += _pages_table(f"pages: the {min(TOP_PAGES, len(missed))} with the most TLB misses",
                                missed[:TOP_PAGES], vw)
    return out + [""] + config_lines(machine, cfg)


def _space(number, sid, cfg):
    if number in cfg["spaces_only_flushed"]:
        return f"{number} (engine id {sid}; only `flush {number}` names it: nothing to flush)"
    return f"{number} (engine id {sid})"


def _splinter(tlb, fmt):
    """A large-page TLB whose page size is not the format's large page (a 2 MiB TLB under
    x86-32's 4 MiB pages) holds a piece of the page per entry, as Intel CPUs do."""
    large = 1 << fmt.level_shift(fmt.levels - 2) if fmt.levels >= 2 else None
    ps = tlb["page_size"]
    if ps == fmt.page_size or large is None or ps == large:
        return ""
    if ps < large:
        return f" (holds {fmt.name}'s {_size(large)} pages {_size(ps)} at a time)"
    return (f" (stays empty: {fmt.name}'s large pages are {_size(large)}, held piecewise "
            "by the TLBs of smaller pages)")


def config_lines(machine, cfg):
    fmt = machine.fmt
    tag = ("tagged (address-space ids): a switch flushes nothing" if cfg["tagged"] else
           "untagged: a switch to another space flushes every non-global entry")
    out = ["configuration",
           f"  {'profile':<10}{cfg['profile']} ({machine.profile.title})",
           f"  {'format':<10}{fmt.name}: {fmt.levels} levels, {_size(fmt.page_size)} pages, "
           f"{fmt.va_bits}-bit virtual addresses",
           f"  {'TLB':<10}{tag} [{cfg['tagged_from']}]"]
    for t in cfg["tlbs"]:
        ways = "fully associative" if t["ways"] == t["entries"] else f"{t['ways']}-way"
        out.append(f"  {'  ' + t['name']:<10}{t['kind']}, {t['entries']} entries, {ways}, "
                   f"{t['policy']}, {_size(t['page_size'])} pages" + _splinter(t, fmt))
    caches = ", ".join(f"{c['name']} {_size(c['size'])} " +
                       ("direct-mapped" if c["ways"] == 1 else f"{c['ways']}-way") for c in cfg["caches"])
    out += [f"  {'caches':<10}{caches or 'none'}",
            f"  {'memory':<10}{_size(cfg['memory_bytes'])}",
            f"  {'spaces':<10}" + (", ".join(_space(n, s, cfg) for n, s in cfg["spaces"].items())
                                   or "none"),
            f"  {'seed':<10}{cfg['seed']}"]
    return out


# ------------------------------------------------------------------------------ command

def run(args):
    profile, kw, tagged_from = resolve(args)
    machine = Machine(profile, **kw)
    trace = read_trace(args.trace, machine.fmt, machine.memory.size,
                       lackey=True if args.lackey else None)
    rep = replay(machine, trace)
    acc = access_table(machine, trace, rep)
    summ = summary(machine, acc, page_stats(machine, acc))
    cfg = config(machine, trace, rep.sids, tagged_from)
    if args.json:
        text = render_json(cfg, acc, summ, with_accesses=not args.summary_only)
    else:
        lines = [] if args.summary_only else access_lines(machine, acc)
        text = "\n".join(lines + summary_lines(machine, cfg, summ)) + "\n"
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:         # `microlab mmu big.trace | head`: the reader has enough
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0
