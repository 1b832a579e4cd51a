"""What `microlab reproduce` shows while notebooks run.

One line when an experiment starts, one when it finishes (status, elapsed time, reason), and
the steps a notebook reports with lab.results.step() (read from its $MICROLAB_PROGRESS file).
On a terminal the steps go to one status line that is redrawn in place; otherwise (a log, a
pipe, CI) every step is a plain line.  Elapsed times are for the eye only: they never reach the
result or summary files.
"""
import shutil
import time

from .execute import Status

NAME_WIDTH = 20


class ProgressTail:
    """The complete new lines of a progress file since the last call."""

    def __init__(self, path):
        self.path = path
        self.offset = 0

    def new_lines(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1          # a half-written line waits for the next call
        self.offset += end
        return [ln for ln in data[:end].decode("utf-8", "replace").splitlines() if ln.strip()]


class Display:
    """Start/step/finish reports of the running experiments (called from one thread)."""

    def __init__(self, stream, total, live=None):
        self.stream = stream
        self.total = total
        self.live = stream.isatty() if live is None else live
        self.started_at = {}
        self.last_step = {}
        self.count = 0
        self._status_shown = False
        self._status_text = ""

    def _line(self, text):
        self._clear_status()
        self.stream.write(text + "\n")
        self.stream.flush()

    def _clear_status(self):
        if self._status_shown:
            self.stream.write("\r\x1b[K")
            self._status_shown = False

    def started(self, name):
        self.count += 1
        self.started_at[name] = time.monotonic()
        self._line(f"[{self.count:>2}/{self.total}] {name:<{NAME_WIDTH}} started")

    def step(self, name, text):
        self.last_step[name] = text
        if not self.live:
            self._line(f"        {name:<{NAME_WIDTH}} · {text} ({self._elapsed(name):.1f} s)")

    def finished(self, outcome):
        elapsed = outcome.elapsed
        status = outcome.status.value if outcome.status is Status.OK else outcome.status.value.upper()
        why = f": {outcome.reason}" if outcome.reason else ""
        self._line(f"        {outcome.name:<{NAME_WIDTH}} {status} in {elapsed:.1f} s{why}")
        self.started_at.pop(outcome.name, None)
        self.last_step.pop(outcome.name, None)

    def tick(self):
        """Redraw the status line of the running experiments (terminal only)."""
        if not self.live or not self.started_at:
            return
        parts = []
        for name in sorted(self.started_at):
            step = self.last_step.get(name)
            parts.append(f"{name} {self._elapsed(name):.0f}s" + (f" ({step})" if step else ""))
        width = shutil.get_terminal_size((100, 20)).columns - 1
        text = ("running: " + " | ".join(parts))[:width]
        if self._status_shown and text == self._status_text:
            return
        self._status_text = text
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()
        self._status_shown = True

    def close(self):
        self._clear_status()
        self.stream.flush()

    def _elapsed(self, name):
        return time.monotonic() - self.started_at.get(name, time.monotonic())
