"""Where a kernel image puts its paths: in the profile file's order, so that a path appended
to a profile (a student's new system call) leaves every other path at its offset."""
import copy

import pytest

from engine import Machine
from lab.image import KernelImage
from lab.kprofile import KernelProfile, load_kernel_profile
from lab.linux.l4linux import EmulationLibrary, _subset
from lab.workloads.lmbench import measure

KERNELS = ["linux", "l4", "l4linux", "mach", "mklinux", "vm_benchmarks"]


def _entry(v, unit):
    return {"value": v, "unit": unit, "description": "test", "source": "test"}


def _path(ins, cb, db):
    return {"instructions": _entry(ins, "instructions"), "code_bytes": _entry(cb, "bytes"),
            "data_bytes": _entry(db, "bytes")}


def _machine():
    return Machine("pentium-133", memory_bytes=16 << 20)


def test_paths_are_laid_out_in_file_order_not_name_order():
    prof = KernelProfile({"kernel": "t", "paths": {"zeta": _path(1, 64, 32),
                                                   "alpha": _path(1, 32, 64)}}, "t")
    img = KernelImage(_machine(), prof, 0xC0000000, 0xC0400000)
    assert prof.layout == ["zeta", "alpha"] and prof.paths == ["alpha", "zeta"]
    assert img.code_off == {"zeta": 0, "alpha": 64}
    assert img.data_off == {"zeta": 0, "alpha": 32}


@pytest.mark.parametrize("kernel", KERNELS)
def test_a_path_appended_to_a_profile_moves_no_other_path(kernel):
    """The new path lands after the others, whatever its name ("a" sorts first)."""
    prof = load_kernel_profile(kernel)
    data = copy.deepcopy(prof.data)
    data["paths"]["a"] = _path(100, 4096, 512)
    grown = KernelProfile(data, prof.origin)
    before = KernelImage(_machine(), prof, 0xC0000000, 0xC1000000)
    after = KernelImage(_machine(), grown, 0xC0000000, 0xC1000000)
    for name in prof.layout:
        assert after.code_off[name] == before.code_off[name]
        assert after.data_off[name] == before.data_off[name]
    assert after.code_off["a"] == before.text_bytes


def test_the_l4linux_library_and_server_subsets_keep_the_profiles_order():
    prof = load_kernel_profile("l4linux")
    assert _subset(prof, tuple(reversed(prof.layout))).layout == prof.layout
    unsorted = KernelProfile({"kernel": "t", "paths": {"zeta": _path(1, 64, 32),
                                                       "alpha": _path(1, 32, 64)}}, "t")
    lib = EmulationLibrary(_machine(), _subset(unsorted, ("alpha", "zeta")))
    assert lib.code_off == {"zeta": 0, "alpha": 64} and lib.data_off == {"zeta": 0, "alpha": 32}


@pytest.mark.parametrize("system", ["linux", "l4linux", "mklinux_user"])
def test_a_small_appended_path_moves_no_measurement(system):
    """A path appended to Linux's profile that keeps its text and data within their last
    pages leaves every other path's frames, and so the placement-sensitive context switch,
    exactly as they were."""
    prof = load_kernel_profile("linux")
    data = copy.deepcopy(prof.data)
    data["paths"]["sys_student"] = _path(40, 1024, 512)     # within the last pages
    grown = KernelProfile(data, prof.origin)
    key = "2-proc ctxsw@lmbench"
    assert measure(key, system, quick=True, profile=grown) == measure(key, system, quick=True)
