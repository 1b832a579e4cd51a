"""CPU profiles: data files in engine/profiles/, every value with unit, description and source.

    p = load_profile("pentium-133")
    p["tlb_miss_base_cycles"]          -> 9
    p.meta("tlb_miss_base_cycles")     -> {"value": 9, "unit": "cycles", ...}
"""
import copy
import json
from pathlib import Path

from .errors import ProfileError

PROFILE_DIR = Path(__file__).with_name("profiles")
REQUIRED = ("clock_mhz", "memory_bytes", "tagged_tlb", "small_spaces", "small_space_base",
            "small_space_size", "cycles_per_instruction", "tlb_hit_cycles", "tlb_miss_base_cycles",
            "walk_through_l1", "memory_latency_cycles", "exception_cycles",
            "kernel_entry_exit_cycles", "page_table_switch_cycles", "asid_switch_cycles",
            "segment_switch_cycles", "copy_bytes_per_cycle", "disk_ms_per_request", "global_pages")
ENTRY_KEYS = ("value", "unit", "description", "source")
TLB_KEYS = ("entries", "ways", "page_size", "policy")
CACHE_KEYS = ("size", "line", "ways", "latency")
OPTIONAL_KEYS = {"cache": ("write_miss_cycles",)}   # absent: the cache allocates on writes


def profile_names():
    return sorted(p.stem for p in PROFILE_DIR.glob("*.json"))


def _check_entry(where, e):
    if not isinstance(e, dict) or any(k not in e for k in ENTRY_KEYS):
        raise ProfileError(f"{where}: every value needs {', '.join(ENTRY_KEYS)}; got {e!r}")
    return e


class Profile:
    """A validated CPU profile.  Index it by value name; `.tlbs` and `.caches` are lists of dicts
    of plain values; `.meta(name)` gives the documented entry."""

    def __init__(self, data, origin="<dict>"):
        self.data = data
        self.name = data.get("name", origin)
        self.title = data.get("title", "")
        vals = data.get("values", {})
        for k in REQUIRED:
            if k not in vals:
                raise ProfileError(f"profile {self.name}: value {k!r} missing (required: {', '.join(REQUIRED)})")
        for k, e in vals.items():
            _check_entry(f"profile {self.name}: {k}", e)
        self.format = _check_entry(f"profile {self.name}: format", data.get("format"))["value"]
        self.tlbs = [self._unit(t, TLB_KEYS, "tlb") for t in data.get("tlbs", [])]
        self.caches = [self._unit(c, CACHE_KEYS, "cache") for c in data.get("caches", [])]
        if not self.tlbs:
            raise ProfileError(f"profile {self.name}: at least one TLB is required")

    def _unit(self, d, keys, what):
        out = {"name": d.get("name", what), "kind": d.get("kind", "unified")}
        if "level" in d:
            out["level"] = d["level"]
        for k in keys:
            out[k] = _check_entry(f"profile {self.name}: {what} {out['name']}.{k}", d.get(k))["value"]
        for k in OPTIONAL_KEYS.get(what, ()):
            if k in d:
                out[k] = _check_entry(f"profile {self.name}: {what} {out['name']}.{k}", d[k])["value"]
        return out

    def __getitem__(self, key):
        try:
            return self.data["values"][key]["value"]
        except KeyError:
            raise ProfileError(f"profile {self.name} has no value {key!r}; "
                               f"it has: {', '.join(sorted(self.data['values']))}") from None

    def meta(self, key):
        return dict(self.data["values"][key])

    def cycles_to_us(self, cycles):
        return cycles / self["clock_mhz"]

    def to_dict(self):
        """The resolved configuration, for config.json beside results."""
        return copy.deepcopy(self.data)


def load_profile(name):
    """Load a profile by name (a file in engine/profiles/) or from a path ending in .json."""
    if isinstance(name, Profile):
        return name
    if isinstance(name, dict):
        return Profile(name)
    path = Path(name) if str(name).endswith(".json") else PROFILE_DIR / f"{name}.json"
    if not path.is_file():
        raise ProfileError(f"CPU profile {name!r} unknown; available: {', '.join(profile_names())}")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ProfileError(f"CPU profile {path}: not valid JSON ({e})") from None
    return Profile(data, origin=path.stem)
