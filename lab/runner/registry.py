"""The experiments (DESIGN.md §7): names are a contract, each names one notebook.

The notebooks live in notebooks/ of the repository; `--notebooks DIR` or $MICROLAB_NOTEBOOKS
points the runner at another directory holding files of the same names (the tests do).
"""
import os
from dataclasses import dataclass
from pathlib import Path

NOTEBOOKS_ENV = "MICROLAB_NOTEBOOKS"


@dataclass(frozen=True)
class Experiment:
    name: str          # contract: `microlab reproduce NAME`, result.json "experiment"
    notebook: str      # file name inside the notebooks directory
    title: str
    source: str        # where the claim is in the papers


EXPERIMENTS = (
    Experiment("calibration", "01_calibration.ipynb",
               "fit kernel path lengths and workload counts to the calibration rows only",
               "S97 §5, Fig. 5, Table 2, Table 3 (linux column); H97"),
    Experiment("getpid", "02_getpid.ipynb",
               "the null system call on native Linux, L4Linux and MkLinux",
               "S97 Table 2, Fig. 5"),
    Experiment("lmbench", "03_lmbench.ipynb",
               "lmbench and hbench:OS micro-benchmarks, microkernel overheads",
               "S97 Table 3, Fig. 6"),
    Experiment("compile", "04_compile.ipynb",
               "recompiling the Linux server",
               "S97 Fig. 7"),
    Experiment("aim", "05_aim.ipynb",
               "AIM multiuser benchmark: throughput under load",
               "S97 §5.2, Figs. 8-9"),
    Experiment("pipes-rpc", "06_pipes-rpc.ipynb",
               "pipes and RPC: Linux pipes against pipes and RPC on L4 IPC",
               "S97 Table 4"),
    Experiment("vm", "07_vm.ipynb",
               "user-level virtual memory: fault, trap, Appel1, Appel2",
               "S97 Table 5"),
    Experiment("cache-partitioning", "08_cache-partitioning.ipynb",
               "cache partitioning by page colours from a user-level pager",
               "S97 §6.3"),
    Experiment("mach-memory-objects", "09_mach-memory-objects.ipynb",
               "Mach memory objects: the kernel as cache manager vs the 1987 UNIX buffer cache",
               "M87 §9, R87 Table 7-1"),
    Experiment("tlb-tagging", "10_tlb-tagging.ipynb",
               "untagged vs tagged TLBs and small address spaces",
               "S95 §4.1, S97 §3 and §5, H97"),
    Experiment("then-and-now", "11_then-and-now.ipynb",
               "the 1997 comparison on a modern x86-64 machine profile",
               "S97 (re-run on profile x86-64-modern)"),
)
BY_NAME = {e.name: e for e in EXPERIMENTS}
NAMES = tuple(BY_NAME)


def notebooks_dir(override=None):
    """Where the notebooks are: OVERRIDE, else $MICROLAB_NOTEBOOKS, else the repository's
    notebooks/ (beside lab/), else ./notebooks."""
    if override:
        return Path(override)
    if os.environ.get(NOTEBOOKS_ENV):
        return Path(os.environ[NOTEBOOKS_ENV])
    repo = Path(__file__).resolve().parents[2] / "notebooks"
    return repo if repo.is_dir() else Path("notebooks")


def notebook_path(experiment, directory):
    return Path(directory) / experiment.notebook


def select(names):
    """The named experiments in registry order (all if NAMES is empty); an unknown name is a
    ValueError listing the known ones."""
    for n in names:
        if n not in BY_NAME:
            raise ValueError(f"unknown experiment {n!r}; the experiments are: {', '.join(NAMES)}")
    if not names:
        return EXPERIMENTS
    wanted = set(names)
    return tuple(e for e in EXPERIMENTS if e.name in wanted)
