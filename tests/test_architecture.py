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


def test_no_jitclass_and_every_njit_is_cached():
    """Numba jitclasses cannot be cached (seconds per process): the engine uses cached
    @njit functions over arrays only."""
    for p in (ROOT / "engine").rglob("*.py"):
        src = p.read_text()
        assert "@jitclass" not in src and "import jitclass" not in src, p.name
        tree = ast.parse(src)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                for d in node.decorator_list:
                    if isinstance(d, ast.Call) and getattr(d.func, "id", "") == "njit":
                        kws = {k.arg: getattr(k.value, "value", None) for k in d.keywords}
                        assert kws.get("cache") is True, f"{p.name}:{node.name}"
                    assert getattr(d, "id", "") != "njit", f"{p.name}:{node.name} lacks cache=True"


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
