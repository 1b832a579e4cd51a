"""Cache partitioning (S97 §6.3): the task is interrupted once per interval of its own running
time by a load that sweeps the L2."""
import pytest

from engine import Machine
from lab.workloads import cachepart


def test_one_interruption_per_interval_of_the_tasks_time():
    """The task is interrupted every `interval_us` of its own running time: the count of
    interruptions is its time divided by the interval (S97 §6.3: every 100 us)."""
    m = Machine("pentium-133")
    r = cachepart.run(m, n=32, interval_us=100.0)
    assert r["interruptions"] == int(r["task_ms"] * 1000 // 100.0)


def test_an_interval_shorter_than_a_slice_is_refused_not_merged():
    """The timer can interrupt only between slices of the task's loop; an interval shorter
    than a slice would put several interruptions into one gap and count one -- a wrong
    number.  It fails loudly, naming the interval."""
    with pytest.raises(ValueError, match="interval_us 1:"):
        cachepart.run(Machine("pentium-133"), n=32, interval_us=1.0)


def test_another_setup_than_the_papers_is_shown_not_scored(tmp_path):
    """S97 §6.3 interrupts every 100 us and gives the task 3 colours: a run with another
    interval is another experiment -- its rows keep the paper's numbers beside them but are
    illustrations, not predictions, and the paper's cost per interruption is computed with
    the paper's interval."""
    import json
    from pathlib import Path
    from lab.cli import main
    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    assert main(["reproduce", "cache-partitioning", "--quick", "--jobs", "1", "-p",
                 "interval_us=200", "--notebooks", str(notebooks), "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "cache-partitioning" / "result.json").read_text())["rows"]
    assert rows and all(r["role"] == "illustration" and "not scored" in r["note"] for r in rows)
    assert cachepart.PAPER_INTERVAL_US == 100.0 and cachepart.PAPER_TASK_COLOURS == 3
