"""``ProcessExecutor(timeout=...)``: a task past the timeout loses its worker, nothing else does."""

from __future__ import annotations

import math

import pytest

from slimtune.executors import ProcessExecutor, WorkerLostError
from tests.executors import _tasks


@pytest.mark.slow
def test_a_task_past_the_timeout_fails_alone_and_its_worker_is_replaced():
    with ProcessExecutor(1, timeout=2.0) as pool:
        assert pool.timeout == 2.0 and "timeout=2.0" in repr(pool)
        dead = pool.submit(_tasks.die, 3)
        bad = pool.submit(_tasks.fail, "bad 1")
        hung = pool.submit(_tasks.nap, 60.0)
        fine = [pool.submit(_tasks.add, i, b=i) for i in range(3)]
        with pytest.raises(WorkerLostError, match="exit code 3"):
            dead.result(timeout=60)
        with pytest.raises(ValueError, match="bad 1"):
            bad.result(timeout=60)
        before = pool.worker_pids()
        with pytest.raises(WorkerLostError, match=r"ran nap past timeout=2\.0 s"):
            hung.result(timeout=60)
        assert [f.result(timeout=60) for f in fine] == [0, 2, 4]  # the queue goes on
        assert pool.worker_pids() != before  # a fresh worker took the killed one's place
        assert pool.submit(_tasks.nap, 0.5).result(timeout=60) in pool.worker_pids()


@pytest.mark.slow
def test_tasks_under_the_timeout_and_on_other_workers_are_unaffected():
    with ProcessExecutor(2, timeout=2.0) as pool:
        killed = pool.worker_pids()[0]  # the first free worker takes the first task
        hung = pool.submit(_tasks.nap, 60.0)
        short = [pool.submit(_tasks.nap, 0.4) for _ in range(3)]  # 1.2 s on one worker in all
        with pytest.raises(WorkerLostError, match=r"past timeout=2\.0 s") as info:
            hung.result(timeout=60)
        assert "`timeout`" in str(info.value) and "SIGKILL" in str(info.value)
        pids = {f.result(timeout=60) for f in short}  # each ran to the end
        assert killed not in pids


@pytest.mark.parametrize("timeout", [0, -1.0, math.inf, math.nan, True, "3"])
def test_bad_timeout_is_rejected(timeout):
    with pytest.raises(ValueError, match=r"`timeout` must be None or a finite number") as info:
        ProcessExecutor(1, timeout=timeout)
    assert repr(timeout) in str(info.value) and "timeout=None" in str(info.value)
