"""`microlab list` and `microlab reproduce` (DESIGN.md §5).

    microlab reproduce [NAME ...] [--out DIR] [--quick] [-p KEY=VALUE ...] [--jobs N]
                       [--timeout S] [--cell-timeout S] [--notebooks DIR]

Everything the user typed is checked before any notebook starts (exit 2, one line).  Then the
notebooks run, N at a time; a failing one is reported and the others go on; the summary is
written; the exit status is 1 if any experiment failed or timed out.
"""
import contextlib
import gc
import logging
import os
import queue
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from . import registry
from .execute import Job, Outcome, Status, kill_all, prepare, run_job
from .progress import Display, ProgressTail
from .summary import write_summary

DEFAULT_TIMEOUT = 3600.0       # seconds per notebook; a hung one is killed after this
POLL_SECONDS = 0.2


def notebooks_dir(option):
    """The notebook directory (--notebooks DIR, $MICROLAB_NOTEBOOKS or the default); ValueError,
    one line, if it is not a directory."""
    nb_dir = registry.notebooks_dir(option)
    if not nb_dir.is_dir():
        what = "is not a directory" if nb_dir.exists() else "does not exist"
        raise ValueError(f"notebook directory {nb_dir} {what} (--notebooks DIR or "
                         f"${registry.NOTEBOOKS_ENV} name another)")
    return nb_dir


# --- microlab list ---------------------------------------------------------------------------

def add_list_arguments(parser):
    parser.add_argument("--notebooks", metavar="DIR",
                        help=f"notebook directory (default: ${registry.NOTEBOOKS_ENV} or notebooks/)")


def run_list(args):
    # a directory the user named (--notebooks or $MICROLAB_NOTEBOOKS) must exist, as for
    # reproduce; the default one may be missing (an installed package): "no notebook"
    if args.notebooks or os.environ.get(registry.NOTEBOOKS_ENV):
        nb_dir = notebooks_dir(args.notebooks)
    else:
        nb_dir = registry.notebooks_dir()
    width = max(len(n) for n in registry.NAMES)
    for e in registry.EXPERIMENTS:
        there = "ready" if registry.notebook_path(e, nb_dir).is_file() else "no notebook"
        print(f"{e.name:<{width}}  {there:<11}  {e.title}  [{e.source}]")
    return 0


# --- microlab reproduce ----------------------------------------------------------------------

def add_reproduce_arguments(parser):
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help="experiments to run (default: all; see `microlab list`)")
    parser.add_argument("--out", default="results", metavar="DIR",
                        help="output directory (default: results)")
    parser.add_argument("--quick", action="store_true", help="set quick=True: seconds per notebook")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE",
                        help="set parameter KEY of every selected notebook that declares it")
    parser.add_argument("--jobs", default="auto", metavar="N",
                        help="notebooks run at once (default auto: one per CPU this process "
                             f"may use, here {usable_cpus()})")
    parser.add_argument("--timeout", default=str(DEFAULT_TIMEOUT), metavar="S",
                        help="seconds a notebook may run before it is killed (default 3600)")
    parser.add_argument("--cell-timeout", default=None, metavar="S",
                        help="seconds one cell may run (default: the --timeout)")
    parser.add_argument("--notebooks", metavar="DIR",
                        help=f"notebook directory (default: ${registry.NOTEBOOKS_ENV} or notebooks/)")


def usable_cpus():
    """The CPUs this process may run on (its affinity mask, e.g. a container's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):       # not on Linux
        return os.cpu_count() or 1


def _workers(text, n_jobs):
    """--jobs: N, or "auto" (one notebook per usable CPU, no more than there are notebooks:
    results do not depend on it, each notebook runs alone in its own kernel)."""
    if text == "auto":
        return max(1, min(usable_cpus(), n_jobs))
    try:
        return _number("--jobs", text, int)
    except ValueError:
        raise ValueError(f"--jobs {text}: must be an int >= 1 or auto") from None


def _number(option, text, kind):
    try:
        value = kind(text)
    except (TypeError, ValueError):
        value = None
    if value is None or not value > 0 or value != value or value == float("inf"):
        noun = "an int >= 1" if kind is int else "a number of seconds > 0"
        raise ValueError(f"{option} {text}: must be {noun}")
    return value


class Plan(NamedTuple):
    jobs: list              # (Experiment, {name: Param} or NotebookError, values to inject)
    out: Path               # DIR, absolute, created
    workers: int
    timeout: float
    cell_timeout: float
    notebooks: Path


def plan(args):
    """Check everything the user typed (ValueError, one line, if anything is wrong) and
    make DIR; no notebook has started yet."""
    from .params import NotebookError, read_parameters, resolve, split_assignments

    experiments = registry.select(args.names)
    workers = _workers(args.jobs, len(experiments))
    timeout = _number("--timeout", args.timeout, float)
    cell_timeout = _number("--cell-timeout", args.cell_timeout, float) if args.cell_timeout \
        else timeout
    assignments = split_assignments(args.param)
    nb_dir = notebooks_dir(args.notebooks)
    declared = {}
    for e in experiments:
        try:
            declared[e.name] = read_parameters(registry.notebook_path(e, nb_dir))
        except NotebookError as err:
            declared[e.name] = err
    values = resolve(declared, assignments, quick=args.quick)
    out = Path(args.out).resolve()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {args.out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"--out {args.out}: cannot make this directory ({e.strerror})") from None
    jobs = []
    for e in experiments:
        params = dict(values[e.name])
        if isinstance(declared[e.name], dict) and "out_dir" in declared[e.name]:
            params["out_dir"] = str(out / e.name)
        jobs.append((e, declared[e.name], params))
    return Plan(jobs, out, workers, timeout, cell_timeout, nb_dir)


def run_reproduce(args):
    planned, out, workers, timeout, cell_timeout, nb_dir = plan(args)
    with tempfile.TemporaryDirectory(prefix="microlab-progress-") as tmp:
        jobs, early = [], {}
        for e, declared, params in planned:
            job = Job(e.name, registry.notebook_path(e, nb_dir), out / e.name, params,
                      timeout, cell_timeout, Path(tmp) / f"{e.name}.progress")
            if isinstance(declared, Exception):           # missing or malformed notebook
                prepare(job)                              # no stale result.json survives
                early[e.name] = Outcome(e.name, Status.FAILED, str(declared))
            else:
                jobs.append(job)
        outcomes = run_all(jobs, early, workers, len(planned))
    ran = {o.name: o for o in outcomes}
    everything = [ran.get(e.name) or kept(e.name, out) for e in registry.EXPERIMENTS]
    everything = [o for o in everything if o is not None]
    _, md = write_summary(out, everything)
    bad = [o for o in outcomes if not o.ok]
    print(f"{len(outcomes) - len(bad)} of {len(outcomes)} experiments ok"
          + (f"; failed: {', '.join(o.name for o in bad)}" if bad else "") + f". Summary: {md}")
    return 1 if bad else 0


def kept(name, out):
    """The outcome of an experiment not run now whose valid result.json is still in DIR."""
    from lab.results import ResultError, read_result
    path = out / name / "result.json"
    try:
        result = read_result(path) if path.is_file() else None
    except (ResultError, OSError):
        return None
    if result is None or result.get("experiment") != name:
        return None
    return Outcome(name, Status.KEPT, None, result)


def run_all(jobs, early, workers, total, stream=None):
    """Run JOBS, WORKERS at a time, showing progress; outcomes in registry order."""
    display = Display(stream or sys.stdout, total)
    with _quiet("papermill", "traitlets", "nbclient", "asyncio"):
        outcomes = _run_all(jobs, early, workers, display)
        gc.collect()        # a timed-out cell leaves asyncio tasks that complain when collected
    return outcomes


@contextlib.contextmanager
def _quiet(*names):
    """papermill/nbclient log what the outcomes already report (and worse, mid-display)."""
    loggers = [logging.getLogger(n) for n in names]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _run_all(jobs, early, workers, display):
    events = queue.Queue()
    for o in early.values():
        display.started(o.name)
        display.finished(o)

    def work(job):
        events.put(("start", job))
        try:
            outcome = run_job(job)
        except BaseException as e:      # never leave the display waiting for this job
            outcome = Outcome(job.name, Status.FAILED, f"runner error: {type(e).__name__}: {e}")
        events.put(("finish", outcome))

    outcomes, tails = dict(early), {}
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="microlab") as pool:
        for job in jobs:
            pool.submit(work, job)
        try:
            _loop(events, outcomes, tails, display, len(early) + len(jobs))
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            kill_all()                   # running kernels die; their threads return at once
            display.close()
            raise
    display.close()
    return [outcomes[e.name] for e in registry.EXPERIMENTS if e.name in outcomes]


def _loop(events, outcomes, tails, display, expected):
    """Show starts, steps and finishes until every job has finished."""
    while len(outcomes) < expected:
        try:
            kind, item = events.get(timeout=POLL_SECONDS)
        except queue.Empty:
            kind, item = None, None
        if kind == "start":
            display.started(item.name)
            tails[item.name] = ProgressTail(item.progress_file)
        elif kind == "finish":
            _show_steps(display, item.name, tails.pop(item.name, None))
            display.finished(item)
            outcomes[item.name] = item
        for name, tail in sorted(tails.items()):
            _show_steps(display, name, tail)
        display.tick()


def _show_steps(display, name, tail):
    for line in tail.new_lines() if tail else ():
        display.step(name, line)
