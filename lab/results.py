"""Result files of the experiment notebooks (DESIGN.md §6) and the published numbers.

A notebook builds one `Result`, adds rows (paper vs simulated), figures and statistics, and
writes `result.json` plus its PNG figures into its working directory, which `microlab
reproduce` sets to DIR/NAME:

    from lab.results import Result, published, step
    res = Result("getpid", "Null system call", "S97 Table 2",
                 parameters={"seed": seed, "quick": quick, "cpu_profile": cpu_profile})
    step("native Linux")                       # progress line shown by the runner
    res.add_row("getpid", "linux", "cycles", simulated=231.0,
                paper=published()["table2_getpid"]["rows"][0]["linux"], role="calibration")
    res.add_figure(fig, "getpid")              # -> getpid.png beside result.json
    res.stats["tlb.misses"] = 12
    res.write()                                # -> ./result.json (+ getpid.png)

Files are byte-identical for identical content: keys in a fixed order, floats rounded to
`SIGNIFICANT` digits, PNGs without metadata (matplotlib Agg).
"""
import copy
import io
import json
import math
import os
import re
from functools import lru_cache
from pathlib import Path

RESULT_FILE = "result.json"
ROLES = ("calibration", "prediction", "hardware", "illustration")
ROW_KEYS = ("benchmark", "system", "unit", "simulated", "paper", "role")
OPTIONAL_ROW_KEYS = ("note",)
TOP_KEYS = ("experiment", "title", "source", "parameters", "rows", "figures", "stats")
REQUIRED_PARAMETERS = {"seed": int, "quick": bool, "cpu_profile": str}
# The papers' numbers are scored (calibration, prediction) only against the simulation of
# the machine they were measured on: S97's Pentium.  R87's 1987 machines are not simulated
# either way, so their ratios are predicted on this one too.
REFERENCE_PROFILE = "pentium-133"
SCORED_ROLES = ("calibration", "prediction")
SIGNIFICANT = 10           # digits kept of a float: drops last-bit noise, keeps every real digit
FIGURE_DPI = 100
FIGURE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.png$")
PROGRESS_ENV = "MICROLAB_PROGRESS"
SHARED_ENV = "MICROLAB_SHARED"


class ResultError(ValueError):
    """A result that breaks the result.json contract (DESIGN.md §6)."""


# --- numbers -----------------------------------------------------------------------------

def _plain(x):
    """NumPy scalars -> Python scalars (notebooks compute with NumPy)."""
    if hasattr(x, "item") and not isinstance(x, (str, bytes, list, dict, tuple)):
        return x.item()
    return x


def _is_number(x):
    x = _plain(x)
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def round_float(x):
    """A float rounded to SIGNIFICANT digits, so that re-runs write identical text."""
    x = float(x)
    if x == 0.0 or not math.isfinite(x):
        return x + 0.0                       # -0.0 -> 0.0
    y = float(f"{x:.{SIGNIFICANT}g}")
    return y if math.isfinite(y) else x      # rounding up near the largest float overflows


def _clean(value, where):
    """A JSON-ready copy: NumPy scalars to Python, floats rounded, dict keys sorted."""
    value = _plain(value)
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ResultError(f"{where}: {value} is not a finite number")
        return round_float(value)
    if isinstance(value, (list, tuple)):
        return [_clean(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise ResultError(f"{where}: key {k!r} is not a string")
        return {k: _clean(value[k], f"{where}.{k}") for k in sorted(value)}
    raise ResultError(f"{where}: {type(value).__name__} {value!r} is not a JSON value "
                      "(numbers, strings, booleans, null, lists, dicts)")


def json_value(value):
    """VALUE as it is written into a result file (NumPy scalars plain, floats rounded)."""
    return _clean(value, "value")


# --- the result --------------------------------------------------------------------------

class Result:
    """The outcome of one experiment notebook: rows of paper vs simulated, figures, stats.

    `parameters` are the values of the notebook's parameters cell (at least seed, quick,
    cpu_profile); `out_dir` is a location, not a parameter, and is not recorded."""

    def __init__(self, experiment, title, source, parameters):
        if not isinstance(parameters, dict):
            raise ResultError(f"Result: parameters must be a dict, got {type(parameters).__name__}")
        self.experiment = experiment
        self.title = title
        self.source = source
        self.parameters = {k: v for k, v in parameters.items() if k != "out_dir"}
        self.rows = []
        self.stats = {}
        self._figures = {}                   # name -> PNG bytes, written by write()
        _check_header(self.to_dict(), "Result")

    def add_row(self, benchmark, system, unit, simulated, paper, role, note=None):
        """One comparison.  `paper` is None where the paper has no number; `role` is one of
        ROLES.  A (benchmark, system, unit) triple appears once.  On another CPU profile than
        REFERENCE_PROFILE a row with a paper value is shown, not scored: its role becomes
        "illustration" and its note says why."""
        profile = self.parameters.get("cpu_profile")
        if role in SCORED_ROLES and paper is not None and profile != REFERENCE_PROFILE:
            role = "illustration"
            why = f"{profile}, not the paper's machine ({REFERENCE_PROFILE}): shown, not scored"
            note = why if note is None else f"{note}; {why}"
        row = {"benchmark": benchmark, "system": system, "unit": unit,
               "simulated": float(_plain(simulated)) if _is_number(simulated) else simulated,
               "paper": _plain(paper), "role": role}
        if note is not None:
            row["note"] = note
        where = f"add_row({benchmark!r}, {system!r}, {unit!r})"
        problems = _row_problems(row, where)
        key = (benchmark, system, unit)
        if any((r["benchmark"], r["system"], r["unit"]) == key for r in self.rows):
            problems.append(f"{where}: this benchmark/system/unit already has a row")
        if problems:
            raise ResultError(problems[0])
        self.rows.append(_clean(row, where))
        return self.rows[-1]

    def add_figure(self, fig, name):
        """Render a matplotlib figure to NAME.png (written beside result.json by write()).
        PNG metadata is dropped so that identical figures give identical bytes."""
        name = name if name.endswith(".png") else f"{name}.png"
        if not FIGURE_NAME.match(name):
            raise ResultError(f"add_figure: {name!r} is not a plain file name "
                              "(letters, digits, '_', '-', '.')")
        if name in self._figures:
            raise ResultError(f"add_figure: figure {name!r} already added")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=FIGURE_DPI, metadata={"Software": None})
        self._figures[name] = buf.getvalue()
        return name

    @property
    def figures(self):
        return sorted(self._figures)

    def to_dict(self):
        d = {"experiment": self.experiment, "title": self.title, "source": self.source,
             "parameters": self.parameters, "rows": self.rows, "figures": self.figures,
             "stats": self.stats}
        return d

    def write(self, out_dir="."):
        """Validate, then write OUT_DIR/result.json and the figures.  Returns the path."""
        d = to_json_ready(self.to_dict())
        validate_result(d)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        for name, data in self._figures.items():
            (out / name).write_bytes(data)
        path = out / RESULT_FILE
        path.write_text(dumps(d))
        return path


def to_json_ready(d):
    """Fixed top-level key order, cleaned values (rows keep the notebook's order)."""
    out = {}
    for k in TOP_KEYS:
        v = d.get(k)
        if k == "rows":
            out[k] = [_row_ordered(_clean(r, f"rows[{i}]")) for i, r in enumerate(v or [])]
        else:
            out[k] = _clean(v, k)
    return out


def _row_ordered(row):
    keys = ROW_KEYS + tuple(k for k in OPTIONAL_ROW_KEYS if k in row)
    extra = sorted(k for k in row if k not in keys)
    return {k: row[k] for k in keys + tuple(extra) if k in row}


def dumps(d):
    """The canonical text of a result (or summary) file."""
    return json.dumps(d, indent=1, ensure_ascii=False, allow_nan=False) + "\n"


# --- the contract ------------------------------------------------------------------------

def _check_header(d, where):
    problems = _header_problems(d, where)
    if problems:
        raise ResultError(problems[0])


def _header_problems(d, where):
    p = []
    for k in ("experiment", "title", "source"):
        if not isinstance(d.get(k), str) or not d.get(k).strip():
            p.append(f"{where}: {k} must be a non-empty string, got {d.get(k)!r}")
    params = d.get("parameters")
    if not isinstance(params, dict):
        return p + [f"{where}: parameters must be a dict, got {params!r}"]
    for k, typ in REQUIRED_PARAMETERS.items():
        v = _plain(params.get(k))
        ok = isinstance(v, typ) and (typ is bool or not isinstance(v, bool))
        if not ok or (k == "seed" and v < 0):
            want = {"seed": "an int >= 0", "quick": "true or false", "cpu_profile": "a profile name"}[k]
            p.append(f"{where}: parameters.{k} must be {want}, got {v!r}")
    return p


def _row_problems(row, where):
    if not isinstance(row, dict):
        return [f"{where}: a row must be a dict, got {row!r}"]
    p = []
    missing = [k for k in ROW_KEYS if k not in row]
    unknown = sorted(k for k in row if k not in ROW_KEYS + OPTIONAL_ROW_KEYS)
    if missing:
        p.append(f"{where}: missing {', '.join(missing)}")
    if unknown:
        p.append(f"{where}: unknown key(s) {', '.join(unknown)}; a row has "
                 f"{', '.join(ROW_KEYS + OPTIONAL_ROW_KEYS)}")
    for k in ("benchmark", "system", "unit"):
        if k in row and (not isinstance(row[k], str) or not row[k].strip()):
            p.append(f"{where}: {k} must be a non-empty string, got {row[k]!r}")
    sim = row.get("simulated")
    if "simulated" in row and not (_is_number(sim) and math.isfinite(_plain(sim))):
        p.append(f"{where}: simulated must be a finite number, got {sim!r}")
    paper = row.get("paper")
    if paper is not None and not (_is_number(paper) and math.isfinite(_plain(paper))):
        p.append(f"{where}: paper must be a finite number or null, got {paper!r}")
    if "role" in row and row["role"] not in ROLES:
        p.append(f"{where}: role {row['role']!r} is not one of {', '.join(ROLES)}")
    if "note" in row and not isinstance(row["note"], str):
        p.append(f"{where}: note must be a string, got {row['note']!r}")
    return p


def result_problems(d):
    """Every way in which `d` breaks the result.json contract (empty list: valid)."""
    if not isinstance(d, dict):
        return [f"result: expected a JSON object, got {type(d).__name__}"]
    p = []
    missing = [k for k in TOP_KEYS if k not in d]
    unknown = sorted(k for k in d if k not in TOP_KEYS)
    if missing:
        p.append(f"result: missing {', '.join(missing)}")
    if unknown:
        p.append(f"result: unknown key(s) {', '.join(unknown)}")
    p += _header_problems(d, "result")
    rows = d.get("rows")
    if not isinstance(rows, list):
        p.append(f"result: rows must be a list, got {rows!r}")
        rows = []
    seen = set()
    for i, row in enumerate(rows):
        p += _row_problems(row, f"rows[{i}]")
        if isinstance(row, dict):
            key = (row.get("benchmark"), row.get("system"), row.get("unit"))
            if key in seen:
                p.append(f"rows[{i}]: {key} appears twice")
            seen.add(key)
    figs = d.get("figures")
    if not isinstance(figs, list) or not all(isinstance(f, str) and FIGURE_NAME.match(f) for f in figs):
        p.append(f"result: figures must be a list of PNG file names, got {figs!r}")
    if not isinstance(d.get("stats"), dict):
        p.append(f"result: stats must be a dict, got {d.get('stats')!r}")
    return p


def validate_result(d):
    """Raise ResultError naming the first problems if `d` breaks the contract; return `d`."""
    problems = result_problems(d)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ResultError("; ".join(problems[:3]) + more)
    return d


def read_result(path):
    """Load and validate a result.json."""
    try:
        d = json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ResultError(f"{path}: not JSON ({e})") from None
    return validate_result(d)


# --- published numbers -------------------------------------------------------------------

PACKAGE_COPY = Path(__file__).with_name("data") / "published.json"


def shared_published_path():
    """../shared/reference/published.json of the repository, or under $MICROLAB_SHARED;
    None if neither exists (an installed package then uses its own copy)."""
    env = os.environ.get(SHARED_ENV)
    if env:
        path = Path(env) / "reference" / "published.json"
        if not path.is_file():
            raise FileNotFoundError(f"{SHARED_ENV}={env}: no reference/published.json there")
        return path
    path = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "published.json"
    return path if path.is_file() else None


@lru_cache(maxsize=None)
def _load(path):
    return json.loads(Path(path).read_text())


def published():
    """The published numbers (a fresh copy: callers may modify it)."""
    path = shared_published_path() or PACKAGE_COPY
    return copy.deepcopy(_load(str(path)))


def systems():
    """The five system keys of the papers' tables, in the papers' column order."""
    return tuple(published()["systems"])


# --- progress ----------------------------------------------------------------------------

def step(name):
    """Report that a long notebook has reached step NAME.  Under `microlab reproduce` the line
    is appended to the file $MICROLAB_PROGRESS, which the runner shows; otherwise nothing."""
    path = os.environ.get(PROGRESS_ENV)
    if path:
        line = " ".join(str(name).split())
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
