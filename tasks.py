#!/usr/bin/env python3
"""Set up and run microkernel-lab with nothing but Python 3.11 and pip.

    python3 tasks.py reproduce [ARGS...]   set up, then run the main job (microlab reproduce ARGS)
    python3 tasks.py test [PYTEST ARGS...] set up (with test tools), then run the whole test suite

Set-up creates .venv when missing and (re)installs the package when pyproject.toml changed.
The tests need gcc and valgrind (for lackey traces); they are installed with apt-get when
missing.  A tool that cannot be installed stops the test run with a message naming it: nothing is skipped silently.
"""
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".installed"
SYSTEM_TOOLS = {"gcc": "gcc", "valgrind": "valgrind"}


def sh(*cmd, **kw):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], **kw)


def setup(extras):
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want:
        return
    if sys.version_info < (3, 11):
        sys.exit(f"tasks.py: Python 3.11 or newer needed, this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        sh(sys.executable, "-m", "venv", VENV, check=True)
    sh(BIN / "python", "-m", "pip", "install", "-q", "--upgrade", "pip", check=True)
    sh(BIN / "python", "-m", "pip", "install", "-q", "-e", f".{extras}", cwd=ROOT, check=True)
    # rfc3987-syntax adds 2-3 s to every nbformat import and nothing here needs it
    sh(BIN / "python", "-m", "pip", "uninstall", "-y", "-q", "rfc3987-syntax")
    STAMP.write_text(want)


def system_tools():
    missing = [pkg for tool, pkg in SYSTEM_TOOLS.items() if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        sys.exit(f"tasks.py: the tests need {', '.join(missing)}; install them "
                 "(Debian: apt-get install " + " ".join(missing) + ")")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    sh("apt-get", "update", "-q", env=env, check=True)
    r = sh("apt-get", "install", "-y", "-q", "--no-install-recommends", *missing, env=env)
    still = [t for t in SYSTEM_TOOLS if shutil.which(t) is None]
    if r.returncode or still:
        sys.exit(f"tasks.py: could not install {', '.join(still or missing)}; the tests need them")


def main(argv):
    if not argv:
        sys.exit(__doc__)
    if argv[0] not in ("reproduce", "test"):
        print(f"tasks.py: unknown command {argv[0]!r}; use `python3 tasks.py reproduce [ARGS...]` "
              "or `python3 tasks.py test [PYTEST ARGS...]`", file=sys.stderr)
        return 2
    env = dict(os.environ, NUMBA_NUM_THREADS="1", PYTHONHASHSEED="0")
    if argv[0] == "reproduce":
        setup("")
        return sh(BIN / "microlab", "reproduce", *argv[1:], cwd=ROOT, env=env).returncode
    setup("[test]")
    system_tools()
    return sh(BIN / "python", "-m", "pytest", *argv[1:], cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
