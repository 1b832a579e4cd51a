"""The layering and data rules of DESIGN.md §1–§2, checked on the source itself."""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module


def test_engine_never_imports_lab():
    """`engine/` never imports `lab/` (DESIGN §1): the machine knows nothing of kernels."""
    bad = [(p.name, m) for p in (ROOT / "engine").rglob("*.py") for m in _imports(p)
           if m == "lab" or m.startswith("lab.")]
    assert bad == []


def _called_name(node):
    """`njit` for `njit(...)` and `numba.njit(...)`."""
    return getattr(node, "id", None) or getattr(node, "attr", None)


def test_no_jitclass_and_every_njit_is_cached():
    """Numba jitclasses cannot be cached (seconds per process): the engine uses cached
    @njit functions over arrays only.  Checked on the source -- every njit(...) call, also one
    bound to a name and used as a decorator (engine/core.py's `jit = njit(cache=True, ...)`),
    has cache=True, and no bare @njit -- and on the compiled functions themselves: every
    Numba dispatcher in engine/ caches to disk."""
    import importlib
    import pkgutil

    import engine
    from numba.core.dispatcher import Dispatcher

    calls = 0
    for p in (ROOT / "engine").rglob("*.py"):
        src = p.read_text()
        assert "@jitclass" not in src and "import jitclass" not in src, p.name
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Call) and _called_name(node.func) in ("njit", "jit"):
                kws = {k.arg: getattr(k.value, "value", None) for k in node.keywords}
                assert kws.get("cache") is True, f"{p.name}:{node.lineno} lacks cache=True"
                calls += 1
            if isinstance(node, ast.FunctionDef):
                for d in node.decorator_list:
                    assert _called_name(d) != "njit", f"{p.name}:{node.name} lacks cache=True"
    assert calls > 0                    # the source check saw the engine's njit
    jitted = [(mod.name, name, f) for mod in pkgutil.walk_packages(engine.__path__, "engine.")
              for name, f in vars(importlib.import_module(mod.name)).items()
              if isinstance(f, Dispatcher)]
    assert jitted
    uncached = [(mod, name) for mod, name, f in jitted
                if type(f._cache).__name__ == "NullCache"]
    assert uncached == []


@pytest.mark.parametrize("path", sorted((ROOT / "engine" / "profiles").glob("*.json")), ids=lambda p: p.stem)
def test_every_cpu_profile_value_has_unit_description_and_source(path):
    """Hardware values live in CPU profiles, each with unit, description and source."""
    data = json.loads(path.read_text())
    entries = [data["format"], *data["values"].values()]
    for unit in data.get("tlbs", []) + data.get("caches", []):
        entries += [v for k, v in unit.items() if isinstance(v, dict)]
    for e in entries:
        assert set(e) >= {"value", "unit", "description", "source"}, e
        assert str(e["source"]).strip(), e


@pytest.mark.parametrize("path", sorted((ROOT / "lab" / "profiles").glob("*.json")), ids=lambda p: p.stem)
def test_every_kernel_profile_value_has_a_source(path):
    """Kernel path lengths carry a source: a paper, an estimate with its reasoning, or
    'calibrated on …' (DESIGN §4)."""
    data = json.loads(path.read_text())
    for name, p in data.get("paths", {}).items():
        for fld in ("instructions", "code_bytes", "data_bytes"):
            e = p[fld]
            assert set(e) >= {"value", "unit", "description", "source"}, (name, fld)
            assert len(str(e["source"]).strip()) > 8, (name, fld)
    for name, e in data.get("values", {}).items():
        assert set(e) >= {"value", "unit", "description", "source"}, name


def test_cli_help_has_no_traceback():
    """`microlab --help` works on a fresh install."""
    r = subprocess.run([sys.executable, "-m", "lab.cli", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "mmu" in r.stdout and "Traceback" not in r.stderr
