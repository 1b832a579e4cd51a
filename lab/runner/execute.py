"""Run one experiment notebook through papermill and check what it wrote.

The kernel runs with its working directory set to DIR/NAME: the notebook writes result.json
and its figures there (`Result.write()` writes into "." by default).  papermill's own `cwd`
argument is not used because it changes the working directory of the whole runner process,
which is unsafe with several notebooks running in threads; the kernel manager below starts
each kernel in its directory with its own environment instead.

A notebook fails if it raises, if a cell runs longer than the cell timeout, if the whole
notebook runs longer than the timeout (its kernel is killed), or if result.json is missing or
breaks the contract.  `run_job` never raises: it returns an Outcome.
"""
import enum
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from lab.results import PROGRESS_ENV, RESULT_FILE, ResultError, json_value, read_result

# Determinism of the kernels: hash order, one Numba/BLAS thread, no wall clock in figures.
KERNEL_ENV = {"PYTHONHASHSEED": "0", "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
              "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MPLBACKEND": "Agg",
              "SOURCE_DATE_EPOCH": "0"}
KERNEL_NAME = "python3"


class Status(enum.Enum):
    OK = "ok"
    FAILED = "failed"
    TIMED_OUT = "timed out"
    KEPT = "kept from an earlier run"     # not run now; its result.json is still in DIR


@dataclass
class Job:
    name: str
    notebook: Path          # input notebook
    out_dir: Path           # DIR/NAME (absolute): the kernel's working directory
    parameters: dict        # injected by papermill
    timeout: float          # seconds for the whole notebook
    cell_timeout: float     # seconds for one cell
    progress_file: Path     # $MICROLAB_PROGRESS of the kernel


@dataclass
class Outcome:
    name: str
    status: Status
    reason: str = None
    result: dict = None
    elapsed: float = 0.0

    @property
    def ok(self):
        return self.status in (Status.OK, Status.KEPT)


_LIVE = set()                 # watchdogs of the notebooks running now (for Ctrl-C)
_LIVE_LOCK = threading.Lock()


def kill_all():
    """Kill the kernel of every running notebook (the runner was interrupted)."""
    with _LIVE_LOCK:
        live = list(_LIVE)
    for w in live:
        w.fire()


class _Watchdog:
    """Kills the kernel (its whole process group) when the notebook's time is up."""

    def __init__(self, seconds):
        self.fired = False
        self._pid = None
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self.fire)
        self._timer.daemon = True

    def __enter__(self):
        with _LIVE_LOCK:
            _LIVE.add(self)
        self._timer.start()
        return self

    def __exit__(self, *exc):
        self._timer.cancel()
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def attach(self, pid):
        with self._lock:
            self._pid = pid
            if self.fired:
                _kill(pid)

    def fire(self):
        with self._lock:
            self.fired = True
            if self._pid is not None:
                _kill(self._pid)


def _kill(pid):
    # jupyter_client starts kernels in a new session: the group holds the kernel's children too
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def kernel_env(job):
    env = dict(os.environ)
    env.update(KERNEL_ENV)
    env[PROGRESS_ENV] = str(job.progress_file)
    # the kernel imports the same `lab` and `engine` as the runner
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


def _kernel_manager_class(env, cwd, log, watchdog):
    from jupyter_client.manager import AsyncKernelManager

    class JobKernelManager(AsyncKernelManager):
        """Starts the kernel in the job's directory with the job's environment; its own
        stdout/stderr (not the cells' output, which goes to the notebook) go to LOG."""

        async def start_kernel(self, **kw):
            kw["env"], kw["cwd"] = env, str(cwd)
            kw["stdout"] = kw["stderr"] = log
            await super().start_kernel(**kw)
            process = getattr(self.provisioner, "process", None)
            if process is not None:
                watchdog.attach(process.pid)

    return JobKernelManager


def prepare(job):
    """Make DIR/NAME and remove what an earlier run left there, so that a failed run cannot
    pass for a successful one."""
    job.out_dir.mkdir(parents=True, exist_ok=True)
    stale = [job.out_dir / RESULT_FILE, job.out_dir / f"{job.name}.ipynb",
             *sorted(job.out_dir.glob("*.png"))]
    for path in stale:
        path.unlink(missing_ok=True)
    job.progress_file.write_text("")


def execute(job):
    """Run the notebook; raises what papermill/nbclient raise, TimeoutError when killed."""
    import papermill
    from nbclient.exceptions import DeadKernelError

    log_path = job.progress_file.with_suffix(".kernel.log")
    with _Watchdog(job.timeout) as watchdog, open(log_path, "wb") as log:
        kmc = _kernel_manager_class(kernel_env(job), job.out_dir, log, watchdog)
        try:
            papermill.execute_notebook(
                str(job.notebook), str(job.out_dir / f"{job.name}.ipynb"),
                parameters=job.parameters, kernel_name=KERNEL_NAME, progress_bar=False,
                log_output=False, execution_timeout=job.cell_timeout,
                kernel_manager_class=kmc, shutdown_kernel="immediate")
        except DeadKernelError:
            if watchdog.fired:
                raise TimeoutError(f"did not finish within {job.timeout:g} s; "
                                   "its kernel was killed") from None
            raise RuntimeError("the kernel died" + _last_line(log_path, ": ")) from None


def _last_line(path, prefix):
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return prefix + lines[-1].strip() if lines else ""


def check_outputs(job):
    """result.json as the contract wants it, for this experiment, with its figures."""
    path = job.out_dir / RESULT_FILE
    if not path.is_file():
        raise ResultError(f"no {RESULT_FILE} written (a notebook writes it into its working "
                          "directory with lab.results.Result.write())")
    result = read_result(path)
    if result["experiment"] != job.name:
        raise ResultError(f"{RESULT_FILE} is for experiment {result['experiment']!r}, "
                          f"not {job.name!r}")
    missing = [f for f in result["figures"] if not (job.out_dir / f).is_file()]
    if missing:
        raise ResultError(f"figure(s) listed but not written: {', '.join(missing)}")
    recorded = result["parameters"]
    for key, value in sorted(job.parameters.items()):
        # a notebook that records another value than it was given did not use it
        if key != "out_dir" and recorded.get(key, _ABSENT) != json_value(value):
            got = "nothing" if key not in recorded else f"{key}={recorded[key]!r}"
            raise ResultError(f"{RESULT_FILE} records {got} but the runner passed "
                              f"{key}={value!r}: record the parameters cell's values in Result")
    return result


_ABSENT = object()


def describe_error(e, job):
    """One line saying why the notebook failed, and whether that was a timeout."""
    from nbclient.exceptions import CellTimeoutError
    from papermill.exceptions import PapermillExecutionError

    if isinstance(e, PapermillExecutionError):
        value = " ".join(str(e.evalue).split())
        return Status.FAILED, f"{e.ename}: {value} (In [{e.exec_count}])" if value else \
            f"{e.ename} (In [{e.exec_count}])"
    if isinstance(e, CellTimeoutError):
        return Status.TIMED_OUT, f"a cell ran longer than {job.cell_timeout:g} s"
    if isinstance(e, TimeoutError):
        return Status.TIMED_OUT, str(e)
    if isinstance(e, (ResultError, FileNotFoundError)):
        return Status.FAILED, " ".join(str(e).split())
    text = " ".join(str(e).split())
    return Status.FAILED, f"{type(e).__name__}: {text}" if text else type(e).__name__


def run_job(job):
    """Run one notebook and check its outputs: an Outcome, never an exception."""
    start = time.monotonic()
    try:
        prepare(job)
        if not job.notebook.is_file():
            raise FileNotFoundError(f"notebook {job.notebook} does not exist")
        execute(job)
        result = check_outputs(job)
        status, reason = Status.OK, None
    except Exception as e:     # noqa: BLE001 - one failing notebook must not stop the others
        status, reason, result = *describe_error(e, job), None
    return Outcome(job.name, status, reason, result, time.monotonic() - start)
