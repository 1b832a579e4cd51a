"""`microlab`: the lab's command line (DESIGN.md §5).

    microlab list                      the experiments, one line each
    microlab reproduce [NAME ...] ...  run experiment notebooks through papermill
    microlab mmu TRACE ...             run a memory trace through the simulated MMU

Each subcommand lives in its own module exposing `add_arguments(parser)` and `run(args)`;
imports are deferred so that `microlab --help` stays fast.  Errors the user can fix print one
line naming the bad value and exit 2; no traceback.
"""
import argparse
import importlib
import os
import sys

SUBCOMMANDS = {
    "list": ("lab.runner.cli", "list the experiments"),
    "reproduce": ("lab.runner.cli", "run experiment notebooks and summarise paper vs simulation"),
    "mmu": ("lab.mmu_cli", "run a memory trace through the simulated MMU"),
}


class UsageError(Exception):
    """A bad command-line value: printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but a syntax error is one line (no usage block), exit status 2.  The lab's
    `python -m` tools use it too, with the argument types below."""

    def error(self, message):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def run_tool(main):
    """`sys.exit(run_tool(main))` for the lab's `python -m` tools: a reader that closes the
    pipe early (`| head`) ends the output quietly, not with a traceback."""
    try:
        status = main()
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def natural(minimum=1):
    """An argparse type: an integer (decimal or 0x hex) >= `minimum`, else a one-line error
    naming the value."""
    def convert(text):
        try:
            v = int(text, 0)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if v < minimum:
            raise argparse.ArgumentTypeError(f"{v} is not allowed: must be an integer >= {minimum}")
        return v
    convert.__name__ = f"integer >= {minimum}"
    return convert


def cpu_profile(name):
    """An argparse type: the name of a CPU profile that exists (engine/profiles/ or a .json
    path), checked before any work starts."""
    from engine.errors import ProfileError
    from engine.profile import load_profile
    try:
        load_profile(name)
    except ProfileError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return name


def _parser(chosen):
    """The parser; only the chosen subcommand's module is imported (for its arguments)."""
    p = Parser(prog="microlab", description="microkernel-lab command line")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub.required = True
    for name, (mod, helptext) in SUBCOMMANDS.items():
        sp = sub.add_parser(name, help=helptext, description=helptext)
        if name == chosen:
            module = importlib.import_module(mod)
            getattr(module, f"add_{name}_arguments", getattr(module, "add_arguments", None))(sp)
    return p


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser(argv[0] if argv else None).parse_args(argv)
    module = importlib.import_module(SUBCOMMANDS[args.command][0])
    runner = getattr(module, f"run_{args.command}", getattr(module, "run", None))
    from engine.errors import EngineError
    from lab.errors import KernelError
    try:
        return runner(args) or 0
    except BrokenPipeError:     # `microlab list | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (UsageError, EngineError, KernelError, ValueError, OSError) as e:
        print(f"microlab {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"microlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
