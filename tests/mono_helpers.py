"""Helpers of the monolithic-kernel tests: boot native Linux, run one program, count frames."""
from lab.linux import boot


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
