"""Helpers of the monolithic-kernel tests: boot native Linux, run one program, count frames."""
from lab.errors import KernelError
from lab.linux import boot
from lab.mono.errors import FatalSignal


def run_program(program, *args, system="linux", **options):
    """Boot `system`, run `program(p, *args)` as a process to completion; (kernel, process)."""
    linux = boot(system, **options)
    p = linux.spawn(program, *args)
    linux.run()
    return linux, p


def events(linux, operation, **match):
    return linux.m.events.find(operation, kernel="linux", **match)


def allocated_frames(k):
    """The frames in use (the engine's allocator), by number."""
    mem = k.m.memory
    return {f for f in range(1, mem.nframes) if mem.is_allocated(f)}


def kept_frames(k):
    """Frames that may stay after every process has gone: the buffer cache's buffers and the
    page tables of spaces that live on (the server's, the kernel's)."""
    ps = k.m.fmt.page_size
    kept = {b.pa // ps for b in k.bcache.lru.values()}
    for sid in k.m.space_ids():
        kept.update(pa // ps for pa in k.m.table_frames(sid))
    return kept


# -- the interpreters of the reference-model tests (a process runs a list of ops) --
def call(fn, *args):
    """("ok", result) or ("error", errno name) of a call; a fatal signal passes through (the
    process is dying: `run_ops` stops)."""
    try:
        return ("ok", fn(*args))
    except FatalSignal:
        raise
    except KernelError as e:
        return ("error", e.code)


def run_ops(c, prog, traces, skips, key, run_op):
    """The trace of one process's `prog`: (op name, result) per op, each run by
    `run_op(c, name, args, traces, skips, position)`; positions in `skips` (calls the model
    says would sleep forever) are not made.  A fatal signal ends it: the program returns,
    and the kernel kills the process with the signal on its way out."""
    trace = []
    for i, op in enumerate(prog):
        if key + (i,) in skips:
            trace.append((op[0], ("skipped",)))
            continue
        try:
            trace.append((op[0], run_op(c, op[0], op[1:], traces, skips, key + (i,))))
        except FatalSignal as e:
            trace.append((op[0], ("killed", e.signal)))
            break
    return trace
