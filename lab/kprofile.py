"""Kernel profiles: the path lengths of each kernel, as data files in lab/profiles/.

A path is what one kernel operation executes: `instructions`, and the code and data it
touches (`code_bytes`, `data_bytes`), which the engine turns into I-fetches and data
references through the TLBs and caches.  Every value carries a `source`: a paper, an
estimate with its reasoning, or "calibrated on …" (written by the calibration notebook,
DESIGN.md §4).

    {"kernel": "l4", "paths": {"ipc_short": {"instructions": {"value": 45, "unit": "instructions",
      "description": "...", "source": "..."}, "code_bytes": {...}, "data_bytes": {...}}},
     "values": {"...": {"value": ..., "unit": ..., "description": ..., "source": ...}}}
"""
import copy
import json
from contextlib import contextmanager
from pathlib import Path

PROFILE_DIR = Path(__file__).with_name("profiles")
PATH_KEYS = ("instructions", "code_bytes", "data_bytes")
ENTRY_KEYS = ("value", "unit", "description", "source")


class KernelProfileError(ValueError):
    pass


class KernelProfile:
    def __init__(self, data, origin):
        self.data = data
        self.kernel = data.get("kernel", origin)
        self.origin = origin
        for name, p in data.get("paths", {}).items():
            for k in PATH_KEYS:
                e = p.get(k)
                if not isinstance(e, dict) or any(x not in e for x in ENTRY_KEYS):
                    raise KernelProfileError(f"kernel profile {self.kernel}: path {name}.{k} needs "
                                             f"{', '.join(ENTRY_KEYS)}")
        for name, e in data.get("values", {}).items():
            if not isinstance(e, dict) or any(x not in e for x in ENTRY_KEYS):
                raise KernelProfileError(f"kernel profile {self.kernel}: value {name} needs "
                                         f"{', '.join(ENTRY_KEYS)}")

    @property
    def paths(self):
        """The path names, sorted (for listings and messages)."""
        return sorted(self.data.get("paths", {}))

    @property
    def layout(self):
        """The path names in the file's order: the order a kernel image lays them out in.
        A path added at the end of the file leaves every other path at its offset in the
        image (the frames after the image move only if its text or data grows past a page)."""
        return list(self.data.get("paths", {}))

    def path(self, name):
        """(instructions, code_bytes, data_bytes) of a path."""
        try:
            p = self.data["paths"][name]
        except KeyError:
            raise KernelProfileError(f"kernel profile {self.kernel}: no path {name!r}; "
                                     f"it has: {', '.join(self.paths)}") from None
        return tuple(p[k]["value"] for k in PATH_KEYS)

    def __getitem__(self, name):
        try:
            return self.data["values"][name]["value"]
        except KeyError:
            raise KernelProfileError(f"kernel profile {self.kernel}: no value {name!r}") from None

    def meta(self, name):
        if name in self.data.get("paths", {}):
            return copy.deepcopy(self.data["paths"][name])
        return copy.deepcopy(self.data["values"][name])

    def with_overrides(self, overrides):
        """A copy with some path fields or values replaced ({"path.field": value} or
        {"value": value}); used by calibration.  Unknown keys are errors."""
        d = copy.deepcopy(self.data)
        for key, val in overrides.items():
            if "." in key:
                path, fld = key.rsplit(".", 1)
                if path not in d.get("paths", {}) or fld not in PATH_KEYS:
                    raise KernelProfileError(f"override {key!r}: no such path field")
                d["paths"][path][fld]["value"] = val
            else:
                if key not in d.get("values", {}):
                    raise KernelProfileError(f"override {key!r}: no such value")
                d["values"][key]["value"] = val
        return KernelProfile(d, self.origin)


_cache = {}
_overrides = []          # stack of {profile name: {key: value}}, innermost last


@contextmanager
def overrides(values):
    """`with overrides({"l4": {"ipc_short.instructions": 80}}): ...` — kernels built inside see
    the replaced values (calibration tries values this way without writing files)."""
    _overrides.append(values)
    try:
        yield
    finally:
        _overrides.pop()


def load_kernel_profile(name):
    """Load lab/profiles/NAME.json (or a path, or an existing KernelProfile), with any
    `overrides` in force applied."""
    if isinstance(name, KernelProfile):
        return name
    prof = _load(name)
    merged = {}
    for layer in _overrides:
        merged.update(layer.get(prof.origin, {}))
    return prof.with_overrides(merged) if merged else prof


def _load(name):
    path = Path(name) if str(name).endswith(".json") else PROFILE_DIR / f"{name}.json"
    if not path.is_file():
        avail = ", ".join(sorted(p.stem for p in PROFILE_DIR.glob("*.json")))
        raise KernelProfileError(f"kernel profile {name!r} unknown; available: {avail}")
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _cache:
        _cache[key] = KernelProfile(json.loads(path.read_text()), path.stem)
    return _cache[key]
