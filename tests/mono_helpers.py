"""Helpers of the monolithic-kernel tests: boot native Linux, run one program."""
from lab.linux import boot


def run_program(program, *args, system="linux", **options):
    """Boot `system`, run `program(p, *args)` as a process to completion; (kernel, process)."""
    linux = boot(system, **options)
    p = linux.spawn(program, *args)
    linux.run()
    return linux, p


def events(linux, operation, **match):
    return linux.m.events.find(operation, kernel="linux", **match)
