"""DIR/summary.json and DIR/summary.md: every row of every result, paper against simulation.

summary.json is `{"rows": [...]}` (DESIGN.md §5), each row with its "experiment" first.
summary.md adds, per experiment and overall, how far the *predictions* are from the paper —
the median and worst |ln(simulated/paper)| over prediction rows with a paper value — and, for
each benchmark measured on all five systems, whether the simulation ranks them in the paper's
order.  Both files are deterministic: experiments in registry order, rows in each result's
order, fixed number formats, no times.
"""
import math
import statistics

from lab.results import REFERENCE_PROFILE, dumps, systems
from .execute import Status


def summary_rows(outcomes):
    """Every row of every successful result, with its experiment added (first)."""
    rows = []
    for o in outcomes:
        if o.ok and o.result:
            rows += [{"experiment": o.name, **r} for r in o.result["rows"]]
    return rows


# --- numbers ---------------------------------------------------------------------------------

def fmt(x):
    """A number in a fixed format: ints as they are, floats to 4 significant digits."""
    if x is None:
        return "—"
    if isinstance(x, int) and not isinstance(x, bool):
        return str(x)
    x = float(x)
    if x == 0:
        return "0"
    if abs(x) >= 1e7 or abs(x) < 1e-3:
        return f"{x:.3e}"
    return f"{x:.{max(0, 3 - math.floor(math.log10(abs(x))))}f}"


def ratio(row):
    """simulated/paper, or None where the paper has no (positive) number."""
    paper, sim = row.get("paper"), row.get("simulated")
    if paper is None or sim is None or paper == 0:
        return None
    return sim / paper


def log_error(row):
    """|ln(simulated/paper)|: 0 is exact, ln 2 = 0.693 a factor of two either way."""
    r = ratio(row)
    return abs(math.log(r)) if r is not None and r > 0 else None


def accuracy(rows):
    """Over the prediction rows with a paper value: (count, not comparable, median, worst
    error, worst row).  Rows whose ratio is not positive have no log and are counted apart."""
    preds = [r for r in rows if r["role"] == "prediction" and r.get("paper") is not None]
    scored = [(log_error(r), r) for r in preds]
    good = [(e, r) for e, r in scored if e is not None]
    if not good:
        return len(preds), len(preds) - len(good), None, None, None
    worst_e, worst_r = max(good, key=lambda er: er[0])      # first of equals: stable
    return len(preds), len(preds) - len(good), statistics.median(e for e, _ in good), worst_e, worst_r


def order_checks(rows):
    """For each (experiment, benchmark, unit) with a paper and a simulated value on all five
    systems: (experiment, benchmark, unit, paper order, simulated order, discordant pairs)."""
    five = systems()
    groups = {}
    for r in rows:
        if r["system"] in five and r.get("paper") is not None:
            groups.setdefault((r["experiment"], r["benchmark"], r["unit"]), {})[r["system"]] = r
    checks = []
    for (exp, bench, unit), by_sys in groups.items():
        if len(by_sys) != len(five):
            continue
        paper = {s: by_sys[s]["paper"] for s in five}
        sim = {s: by_sys[s]["simulated"] for s in five}
        wrong = [(a, b) for i, a in enumerate(five) for b in five[i + 1:]
                 if paper[a] != paper[b] and (paper[a] < paper[b]) != (sim[a] < sim[b])]
        checks.append((exp, bench, unit, _ranking(paper, five), _ranking(sim, five), wrong))
    return checks


def _ranking(values, names):
    ordered = sorted(names, key=lambda s: (values[s], names.index(s)))
    text = ordered[0]
    for a, b in zip(ordered, ordered[1:]):
        text += (" = " if values[a] == values[b] else " < ") + b
    return text


# --- markdown --------------------------------------------------------------------------------

def _cell(x):
    return str(x).replace("|", "\\|")


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def _err(e):
    return "—" if e is None else f"{e:.3f} (×{math.exp(e):.2f})"


def _run_of(o):
    """(cpu_profile, quick, placement) of an experiment's result, as shown in the summary.
    Placement: "lowest-first" (frames as after boot: no placement_seed, or 0) or the seed of
    the engine's scattered order."""
    par = o.result.get("parameters", {}) if o.ok and o.result else {}
    if not par:
        return "—", "—", "—"
    return (str(par.get("cpu_profile", "—")), "yes" if par.get("quick") else "no",
            str(par.get("placement_seed") or "lowest-first"))


def _row_name(r):
    return f"{r['experiment']}: {r['benchmark']} / {r['system']} ({r['unit']})" if r else "—"


def render_markdown(outcomes):
    rows = summary_rows(outcomes)
    counts = {s: sum(o.status is s for o in outcomes) for s in Status}
    lines = ["# microlab reproduce: summary", "",
             ", ".join(f"{n} {s.value}" for s, n in counts.items() if n) + ".", ""]
    runs = [_run_of(o) for o in outcomes]
    lines += _table(["experiment", "status", "rows", "cpu_profile", "quick", "placement"],
                    [(o.name, o.status.value, len(o.result["rows"]) if o.ok and o.result else "—",
                      *run) for o, run in zip(outcomes, runs)])
    if any(q == "yes" for _p, q, _s in runs):
        lines += ["", "Experiments run with quick=True use fewer iterations and smaller sizes: "
                  "their numbers are not the reference ones."]
    if any(p not in ("—", REFERENCE_PROFILE) for p, _q, _s in runs):
        lines += ["", f"Rows simulated on another CPU profile than {REFERENCE_PROFILE} (the "
                  "papers' machine) are illustrations: they are shown, not scored."]
    if any(s not in ("—", "lowest-first") for _p, _q, s in runs):
        lines += ["", "Experiments with a placement number took their free physical frames "
                  "in that scattered order (-p placement_seed; frames chosen by colour or "
                  "address stay put); the calibration was fitted at lowest-first, so their "
                  "calibration rows may move off the fit."]
    failed = [o for o in outcomes if not o.ok]
    lines += ["", "## Failed experiments", ""]
    lines += [f"- {o.name}: {o.status.value}: {o.reason}" for o in failed] or ["None."]

    lines += ["", "## Predictions against the paper", "",
              "|ln(simulated/paper)| over the prediction rows that have a paper value "
              "(0 = exact; 0.693 = a factor of 2).", ""]
    acc = []
    for name in [o.name for o in outcomes if o.ok] + ["all"]:
        sel = rows if name == "all" else [r for r in rows if r["experiment"] == name]
        n, bad, med, worst, worst_row = accuracy(sel)
        acc.append((name, n, bad, _err(med), _err(worst), _row_name(worst_row)))
    lines += _table(["experiment", "predictions with paper", "no log (ratio <= 0)",
                     "median", "worst", "worst row"], acc)

    lines += ["", "## Order of the five systems", "",
              "Benchmarks with a paper and a simulated value on all five systems, ascending; "
              "pairs the simulation ranks the other way round are listed.", ""]
    checks = order_checks(rows)
    lines += _table(["experiment", "benchmark", "unit", "paper", "simulated", "same order"],
                    [(e, b, u, p, s, "yes" if not w else
                      "no: " + ", ".join(f"{a}/{b2}" for a, b2 in w))
                     for e, b, u, p, s, w in checks]) if checks else ["None."]

    lines += ["", "## Rows", ""]
    lines += _table(["experiment", "benchmark", "system", "unit", "paper", "simulated",
                     "ratio", "role"],
                    [(r["experiment"], r["benchmark"], r["system"], r["unit"], fmt(r["paper"]),
                      fmt(r["simulated"]), "—" if ratio(r) is None else f"{ratio(r):.3f}",
                      r["role"]) for r in rows]) if rows else ["None."]
    return "\n".join(lines) + "\n"


def write_summary(out_dir, outcomes):
    """Write DIR/summary.json and DIR/summary.md; returns their paths."""
    json_path, md_path = out_dir / "summary.json", out_dir / "summary.md"
    json_path.write_text(dumps({"rows": summary_rows(outcomes)}))
    md_path.write_text(render_markdown(outcomes))
    return json_path, md_path
