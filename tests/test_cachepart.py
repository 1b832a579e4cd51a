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
