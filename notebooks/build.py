"""Build the committed notebooks from their sources and execute them.

    python notebooks/build.py [NAME ...]      # all sources in notebooks/src/ by default

A source is a percent-format Python file (`notebooks/src/NAME.py`): `# %%` starts a code cell,
`# %% [markdown]` a markdown cell (its lines start with "# "), `# %% tags=["parameters"]` the
parameters cell.  The notebook is executed in a temporary directory (result files go there, not
into the repository) with the parameters as written, and saved executed as notebooks/NAME.ipynb,
so that `pytest --nbval` has outputs to compare.
"""
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
SRC = HERE / "src"
CELL = re.compile(r"^# %%(?P<md> \[markdown\])?(?: tags=(?P<tags>\[.*\]))?\s*$")


def parse(text):
    """Percent-format text -> list of nbformat cells."""
    cells, kind, tags, lines = [], None, [], []

    def close():
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            body = "\n".join(l[2:] if l.startswith("# ") else l.lstrip("#") for l in body.split("\n"))
            cells.append(nbformat.v4.new_markdown_cell(body))
        else:
            c = nbformat.v4.new_code_cell(body)
            if tags:
                c.metadata["tags"] = tags
            cells.append(c)

    for line in text.split("\n"):
        m = CELL.match(line)
        if m:
            close()
            kind = "markdown" if m.group("md") else "code"
            tags = json.loads(m.group("tags")) if m.group("tags") else []
            lines = []
        elif kind is not None:
            lines.append(line)
    close()
    return cells


def build(name, execute=True, timeout=900):
    src = SRC / f"{name}.py"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = parse(src.read_text())
    for i, c in enumerate(nb.cells):        # stable ids: diffs stay small between builds
        c["id"] = f"{name[:20]}-{i:02d}".replace("_", "-")
    if execute:
        with tempfile.TemporaryDirectory() as tmp:
            env_before = os.environ.get("NUMBA_NUM_THREADS")
            os.environ["NUMBA_NUM_THREADS"] = "1"
            try:
                NotebookClient(nb, timeout=timeout, kernel_name="python3",
                               resources={"metadata": {"path": tmp}}).execute()
            finally:
                if env_before is None:
                    os.environ.pop("NUMBA_NUM_THREADS", None)
                else:
                    os.environ["NUMBA_NUM_THREADS"] = env_before
    out = HERE / f"{name}.ipynb"
    nbformat.write(nb, out)
    return out


def main(argv):
    names = argv or sorted(p.stem for p in SRC.glob("*.py"))
    for n in names:
        print(f"building {n} ...", flush=True)
        print("  ->", build(n).relative_to(HERE.parent))


if __name__ == "__main__":
    main(sys.argv[1:])
