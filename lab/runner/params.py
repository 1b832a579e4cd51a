"""Experiment parameters, read from each notebook's parameters cell (the single source of truth).

The first code cell of a notebook is tagged `parameters` and holds only `NAME = literal` lines:

    seed = 1                       # int >= 0
    quick = False
    cpu_profile = "pentium-133"    # one of engine.profile.profile_names()
    rounds = 200                   # range: 1..100000
    system = "l4linux"             # choices: linux, l4linux, mklinux_user
    loads = [1, 10, 50]            # a list: -p loads=1,20

The type comes from the default (bool, int, float, str, or a list of one of them; None accepts
any of them).  A trailing `# range: LO..HI` (either end may be left open) or `# choices: a, b`
declares the allowed values (`# range: 16..4096 or 0` also allows the one value 0, e.g. "the
profile's"); text after a `;` in that comment is a description.  Without a range, numbers must
be >= 0, and counts of work (names like rounds, loads, users, jobs, iterations, samples, n_*)
must be >= 1.  `(quick: ...)` in the comment says that a quick run sets the parameter itself:
`-p` of it together with a quick run is refused (the run would not use the value given).
"""
import ast
import io
import json
import math
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path

REQUIRED = ("seed", "quick", "cpu_profile")
SET_BY_RUNNER = ("out_dir",)       # the runner's, never a -p KEY
COUNT_NAME = re.compile(r"(^n_|(^|_)(loads?|users|jobs|clients|iterations|rounds|repeats|reps|"
                        r"samples|trials|runs|counts?|procs|processes|steps|messages)$)")
RANGE = re.compile(r"range:\s*([^;]*?)\s*\.\.\s*([^;\s]*)")
CHOICES = re.compile(r"choices:\s*([^;]+)")
ALSO = re.compile(r"range:[^;]*?\.\.\s*[^;\s]*\s+or\s+([^;\s]+)")
QUICK = re.compile(r"\(quick:\s*([^)]*)\)")
INT_TEXT = re.compile(r"^[+-]?\d[\d_]*$")
KINDS = ("bool", "int", "float", "str")


class NotebookError(Exception):
    """A notebook that breaks the parameters convention: its experiment fails (not exit 2)."""


@dataclass(frozen=True)
class Param:
    """One parameter: its default, kind ("bool", "int", "float", "str", "list", "any"), the
    kind of list items, and its allowed values (lo..hi for numbers, or choices)."""
    name: str
    default: object
    kind: str
    item: str = None
    lo: float = None
    hi: float = None
    choices: tuple = None
    also: object = None         # one more allowed value outside lo..hi (`range: A..B or V`)
    quick: str = None           # what a quick run sets it to, in words (`(quick: ...)`)

    def allowed(self):
        """What the parameter accepts, in words."""
        kind = self.item if self.kind == "list" else self.kind
        if kind == "any":
            return "a number, true/false or a string"
        if kind == "bool":
            words = "true or false"
        elif self.choices is not None:
            words = "one of: " + ", ".join(str(c) for c in self.choices)
        elif kind in ("int", "float"):
            noun = "an int" if kind == "int" else "a number"
            if self.lo is not None and self.hi is not None:
                words = f"{noun} in {_num(self.lo)}..{_num(self.hi)}"
            elif self.lo is not None:
                words = f"{noun} >= {_num(self.lo)}"
            elif self.hi is not None:
                words = f"{noun} <= {_num(self.hi)}"
            else:
                words = noun
            if self.also is not None:
                words += f", or {_num(self.also)}"
        else:
            words = "a string"
        return f"a comma-separated list, each {words}" if self.kind == "list" else words

    def problem(self, value):
        """None if VALUE is allowed, else what is wrong (in words)."""
        if self.kind == "list":
            if not isinstance(value, list) or not value:
                return f"must be {self.allowed()}"
            one = Param(self.name, None, self.item, None, self.lo, self.hi, self.choices,
                        self.also)
            return next((p for p in map(one.problem, value) if p), None)
        if self.kind == "any":
            return None
        ok = {"bool": lambda v: isinstance(v, bool),
              "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
              and math.isfinite(v),
              "str": lambda v: isinstance(v, str)}[self.kind](value)
        if ok and self.also is not None and value == self.also:
            return None
        if ok and self.choices is not None:
            ok = value in self.choices
        if ok and self.lo is not None:
            ok = value >= self.lo
        if ok and self.hi is not None:
            ok = value <= self.hi
        return None if ok else f"must be {self.allowed()}"

    def parse(self, text):
        """The value of command-line TEXT, or ValueError saying what is allowed."""
        if self.kind == "list":
            parts = [t.strip() for t in text.split(",")]
            value = [_parse_kind(self.item, t) for t in parts if t]
        else:
            value = _parse_kind(self.kind, text)
        if value is _BAD or (isinstance(value, list) and _BAD in value):
            raise ValueError(f"must be {self.allowed()}")
        problem = self.problem(value)
        if problem:
            raise ValueError(problem)
        return value


_BAD = object()


def _num(x):
    return f"{x:g}" if isinstance(x, float) else str(x)


def _parse_kind(kind, text):
    text = text.strip()
    if kind == "bool":
        return {"true": True, "false": False}.get(text.lower(), _BAD)
    if kind == "int":
        return int(text) if INT_TEXT.match(text) else _BAD
    if kind == "float":
        try:
            v = float(text)
        except ValueError:
            return _BAD
        return v if math.isfinite(v) else _BAD
    if kind == "any":
        for k in ("int", "float", "bool"):
            v = _parse_kind(k, text)
            if v is not _BAD:
                return v
    return text


# --- reading a parameters cell ----------------------------------------------------------

def read_parameters(path):
    """The parameters of the notebook at PATH: {name: Param} in the cell's order.
    Raises NotebookError if the notebook is missing or breaks the convention."""
    path = Path(path)
    if not path.is_file():
        raise NotebookError(f"notebook {path} does not exist")
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
        cells = [c for c in nb["cells"] if c.get("cell_type") == "code"]
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise NotebookError(f"{path}: not a notebook ({e})") from None
    if not cells or "parameters" not in cells[0].get("metadata", {}).get("tags", []):
        raise NotebookError(f"{path}: the first code cell must be tagged 'parameters'")
    src = cells[0].get("source", "")
    params = parse_cell("".join(src) if isinstance(src, list) else src, str(path))
    for name in REQUIRED:
        if name not in params:
            raise NotebookError(f"{path}: the parameters cell lacks {name!r} "
                                f"(every notebook has {', '.join(REQUIRED)})")
    return params


def parse_cell(source, where="<cell>"):
    """{name: Param} from the source of a parameters cell."""
    try:
        tree = ast.parse(source)
    except SyntaxError as e:
        raise NotebookError(f"{where}: parameters cell line {e.lineno}: {e.msg}") from None
    comments = _comments(source)
    params = {}
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue                                      # a docstring
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 \
            else node.target if isinstance(node, ast.AnnAssign) and node.value is not None \
            else None
        if not isinstance(target, ast.Name):
            raise NotebookError(f"{where}: parameters cell line {node.lineno}: "
                                "only NAME = literal assignments are allowed")
        try:
            default = ast.literal_eval(node.value)
        except ValueError:
            raise NotebookError(f"{where}: parameters cell line {node.lineno}: "
                                f"{target.id} must be a literal value") from None
        comment = " ".join(comments.get(n, "") for n in range(node.lineno, node.end_lineno + 1))
        params[target.id] = make_param(target.id, default, comment, where)
    return params


def _comments(source):
    out = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                out[tok.start[0]] = tok.string
    except (tokenize.TokenError, SyntaxError):
        pass
    return out


def _kind_of(value):
    if value is None:
        return "any"
    for k, t in (("bool", bool), ("int", int), ("float", float), ("str", str)):
        if isinstance(value, t):
            return k
    return None


def make_param(name, default, comment="", where="<cell>"):
    """A Param from a default value and its trailing comment."""
    kind, item = _kind_of(default), None
    if isinstance(default, list):
        kinds = {_kind_of(v) for v in default}
        if kinds == {"int", "float"}:
            kinds = {"float"}
        if len(kinds) != 1 or not kinds <= set(KINDS) - {"bool"}:
            raise NotebookError(f"{where}: {name} = {default!r}: a list parameter needs a "
                                "non-empty list of ints, numbers or strings")
        kind, item = "list", kinds.pop()
    if kind is None:
        raise NotebookError(f"{where}: {name} = {default!r}: the default must be a bool, int, "
                            "float, string, list or None")
    base = item or kind
    lo = hi = choices = also = None
    m, c = RANGE.search(comment), CHOICES.search(comment)
    if m and base in ("int", "float"):
        lo, hi = (_bound(s, base, name, where) for s in m.groups())
        a = ALSO.search(comment)
        also = _bound(a.group(1), base, name, where) if a else None
    elif c:
        choices = tuple(_parse_kind(base, s) for s in c.group(1).split(",") if s.strip())
        if _BAD in choices:
            raise NotebookError(f"{where}: {name}: choices {c.group(1).strip()!r} are not {base}s")
    elif base in ("int", "float"):
        lo = 1 if COUNT_NAME.search(name) else 0
    if name == "cpu_profile" and choices is None:
        choices = tuple(_profile_names())
    q = QUICK.search(comment)
    p = Param(name, default, kind, item, lo, hi, choices, also,
              q.group(1).strip() if q else None)
    _check_required(p, where)
    problem = p.problem(default)
    if problem:
        raise NotebookError(f"{where}: default {name} = {default!r} {problem}")
    return p


def _bound(text, kind, name, where):
    if not text:
        return None
    v = _parse_kind(kind, text)
    if v is _BAD:
        raise NotebookError(f"{where}: {name}: range bound {text!r} is not a {kind}")
    return v


def _check_required(p, where):
    want = {"seed": "int", "quick": "bool", "cpu_profile": "str"}.get(p.name)
    if want and p.kind != want:
        raise NotebookError(f"{where}: {p.name} must default to a {want}, got {p.default!r}")


def _profile_names():
    from engine.profile import profile_names
    return profile_names()


def builtin(name):
    """The declaration every notebook shares (used when a notebook cannot be read)."""
    defaults = {"seed": 1, "quick": False, "cpu_profile": "pentium-133"}
    return make_param(name, defaults[name], "", "<builtin>")


# --- command-line values ----------------------------------------------------------------

def split_assignments(texts):
    """['KEY=VALUE', ...] -> {KEY: 'VALUE'}; malformed or repeated keys are ValueErrors."""
    out = {}
    for text in texts or ():
        key, eq, value = text.partition("=")
        key = key.strip()
        if not eq or not key.isidentifier():
            raise ValueError(f"-p {text}: expected KEY=VALUE with KEY a parameter name")
        if key in out:
            raise ValueError(f"-p {key}: given twice ({key}={out[key]} and {key}={value})")
        if key in SET_BY_RUNNER:
            raise ValueError(f"-p {key}: {key} is set by the runner (it is DIR/NAME of --out)")
        out[key] = value
    return out


def resolve(declared, assignments, quick=False):
    """The values to inject into each notebook.

    declared: {experiment: {name: Param} or NotebookError}; assignments: {KEY: 'VALUE'}.
    Returns {experiment: {name: value}}: each KEY goes to every notebook that declares it;
    `quick` sets quick=True.  Raises ValueError (one line) for a KEY no selected notebook
    declares or a VALUE one of them does not allow — before anything runs."""
    if quick and assignments.get("quick", "true").strip().lower() != "true":
        raise ValueError(f"-p quick={assignments['quick']} contradicts --quick")
    if quick:
        assignments = {**assignments, "quick": "true"}
    readable = {e: d for e, d in declared.items() if isinstance(d, dict)}
    known = set(REQUIRED).union(*readable.values()) if readable else set(REQUIRED)
    out = {e: {} for e in declared}
    # quick first: whether a run is quick decides which other keys it accepts
    for key, text in sorted(assignments.items(), key=lambda kv: kv[0] != "quick"):
        if key not in known:
            raise ValueError(f"-p {key}={text}: no selected experiment has a parameter {key!r}; "
                             f"they have: {', '.join(sorted(known))}")
        for exp, params in declared.items():
            param = params.get(key) if isinstance(params, dict) else (
                builtin(key) if key in REQUIRED else None)
            if param is None:
                continue
            try:
                out[exp][key] = param.parse(text)
            except ValueError as e:
                raise ValueError(f"-p {key}={text}: {key} {e} (experiment {exp})") from None
            if param.quick is not None and _quick(out[exp], params):
                raise ValueError(f"-p {key}={text}: a quick run of {exp} sets {key} itself "
                                 f"(quick: {param.quick}); drop -p {key} or run without quick")
    return out


def _quick(values, params):
    """Whether the experiment runs quick: as given (-p quick / --quick, resolved before the
    other keys) or by its default."""
    if "quick" in values:
        return values["quick"] is True
    p = params.get("quick") if isinstance(params, dict) else None
    return bool(p.default) if p is not None else False
