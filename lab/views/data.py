"""Pure functions turning machine state into what a view draws (no widgets here)."""
import numpy as np

from engine import core, cycles


def tlb_grid(machine, tlb=0):
    """The sets x ways of one TLB: (owner, vpn, global) arrays, owner -1 for an invalid way.

    Owners are space ids, so a view can colour entries by address space (ASID colours)."""
    td = machine.td[tlb]
    base, sets, ways = td[core.TD_BASE], td[core.TD_SETS], td[core.TD_WAYS]
    e = machine.te[base:base + sets * ways]
    valid = e[:, core.TE_VALID].reshape(sets, ways) != 0
    owner = np.where(valid, e[:, core.TE_OWNER].reshape(sets, ways), -1)
    # entries of small spaces carry a key bit above the address (engine.core keys them apart)
    vpn_mask = (1 << max(machine.fmt.va_bits - int(td[core.TD_SHIFT]), 1)) - 1
    vpn = np.where(valid, e[:, core.TE_VPN].reshape(sets, ways) & vpn_mask, -1)
    glob = valid & (e[:, core.TE_GLOBAL].reshape(sets, ways) != 0)
    return {"name": machine.tlb_config[tlb].get("name", f"tlb{tlb}"), "owner": owner,
            "vpn": vpn, "global": glob, "sets": int(sets), "ways": int(ways)}


def cycle_breakdown(by_category, nonzero=True):
    """(names, values) of a cycle breakdown, in the counter's category order."""
    names = [n for n in cycles.NAMES if not nonzero or by_category.get(n, 0)]
    return names, np.array([by_category.get(n, 0) for n in names], dtype=np.int64)


def walk_table(machine, space, va):
    """One row per level of the walk for `va`, as a student writes it down (OSTEP's -c)."""
    fmt = machine.fmt
    rows = []
    for s in machine.walk_steps(space, va):
        rows.append({"level": s.level, "index": s.index, "table": f"0x{s.table:x}",
                     "entry_addr": f"0x{s.pte_addr:x}", "entry": f"0x{s.entry:0{2 * fmt.pte_bytes}x}",
                     "present": s.present, "leaf": s.leaf,
                     "next": f"0x{fmt.entry_paddr(s.entry):x}" if s.present else "-"})
    return rows
