"""Executors: a general ``submit`` whose dead worker fails only its own future; bad input."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
from concurrent.futures import Future

import pytest

import slimtune
from slimtune.executors import (
    Executor,
    ExecutorError,
    InlineExecutor,
    ProcessExecutor,
    RayExecutor,
    WorkerLostError,
)
from tests.executors import _tasks


@pytest.fixture(scope="module")
def pool():
    with ProcessExecutor(max_workers=2) as ex:
        yield ex


def test_inline_executor_runs_at_once_and_keeps_exceptions():
    ex = InlineExecutor()
    assert isinstance(ex, Executor) and ex.max_workers == 1
    assert ex.submit(_tasks.add, 2, b=3).result() == 5
    future = ex.submit(_tasks.fail, "boom")
    assert isinstance(future.exception(), ValueError)


def test_process_executor_runs_functions_with_args(pool):
    assert isinstance(pool, Executor) and pool.max_workers == 2
    futures = [pool.submit(_tasks.add, i, b=10) for i in range(6)]
    assert all(isinstance(f, Future) for f in futures)
    assert [f.result(timeout=60) for f in futures] == [10 + i for i in range(6)]


def test_an_exception_is_set_on_its_future(pool):
    with pytest.raises(ValueError, match="boom"):
        pool.submit(_tasks.fail, "boom").result(timeout=60)


def test_a_dead_worker_fails_only_its_future_and_is_replaced(pool):
    before = set(pool.worker_pids())
    slow = pool.submit(_tasks.nap, 0.5)
    dead = pool.submit(_tasks.die, 9)
    with pytest.raises(WorkerLostError, match="exit code 9"):
        dead.result(timeout=60)
    assert slow.result(timeout=60) in before  # the other task finished normally
    assert pool.submit(_tasks.add, 1, b=1).result(timeout=60) == 2  # still usable
    assert len(set(pool.worker_pids()) - before) == 1  # one fresh worker


@pytest.mark.parametrize("signum", [signal.SIGSEGV, signal.SIGKILL])
def test_a_segfault_or_oom_kill_is_reported_with_the_signal(pool, signum):
    with pytest.raises(WorkerLostError, match=f"signal {signum.name}"):
        pool.submit(_tasks.signal_self, int(signum)).result(timeout=60)
    assert pool.submit(_tasks.add, 2).result(timeout=60) == 2


def test_unpicklable_task_is_rejected_at_submit(pool):
    with pytest.raises(Exception, match=r"pickle|Can.t"):
        pool.submit(lambda: 1)


def test_gpus_set_cuda_visible_devices_per_worker():
    with ProcessExecutor(gpus=[3]) as ex:
        assert ex.max_workers == 1
        assert ex.submit(_tasks.env, "CUDA_VISIBLE_DEVICES").result(timeout=60) == "3"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_workers": 0}, "`max_workers` must be a positive int"),
        ({"gpus": "0,1"}, "`gpus` must be a list of device ids"),
        ({"gpus": []}, "`gpus` must not be empty"),
    ],
)
def test_process_executor_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ProcessExecutor(**kwargs)


def test_submit_after_shutdown_is_an_error():
    ex = ProcessExecutor(max_workers=1)
    ex.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(_tasks.add, 1)


def test_ray_missing_names_the_ray_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(slimtune.MissingExtraError, match=r"slimtune\[ray\]"):
        RayExecutor()


def test_unreachable_ray_address_is_a_clear_one_line_error():
    pytest.importorskip("ray")
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with pytest.raises(ExecutorError, match="unreachable") as info:
        RayExecutor(address=f"127.0.0.1:{port}", connect_timeout=2.0)
    assert "\n" not in str(info.value) and f"127.0.0.1:{port}" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"resources": {"cpus": 1}}, "unknown key 'cpus'"),
        ({"resources": {"num_gpus": -1}}, "must be a number >= 0"),
        ({"max_workers": 0}, "`max_workers` must be a positive int"),
        ({"address": "nohostport"}, "`address` must be"),
    ],
)
def test_ray_executor_bad_arguments(kwargs, match):
    pytest.importorskip("ray")
    with pytest.raises((ValueError, ExecutorError), match=match):
        RayExecutor(**kwargs)


def test_optimize_rejects_bad_executor_arguments(tmp_path):
    study = slimtune.create_study(storage=f"sqlite:///{tmp_path}/x.db")
    with pytest.raises(TypeError, match="`executor` must have submit"):
        study.optimize(_tasks.add, n_trials=1, executor=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="either `n_jobs`"):
        study.optimize(_tasks.add, n_trials=1, n_jobs=2, executor=InlineExecutor())
    with pytest.raises(TypeError, match="`heartbeat` must be"):
        study.optimize(_tasks.add, n_trials=1, heartbeat=5)  # type: ignore[arg-type]


def test_process_executor_with_the_memory_storage_is_a_clear_error():
    study = slimtune.create_study(storage="memory")
    with (
        ProcessExecutor(max_workers=1) as ex,
        pytest.raises(slimtune.SlimtuneError, match="cannot see the in-memory storage"),
    ):
        study.optimize(_tasks.add, n_trials=1, executor=ex)


def _record(study: slimtune.Study, trial: slimtune.FrozenTrial) -> None:
    study.set_user_attr(f"seen_{trial.number}", trial.state.value)


def test_optimize_on_a_process_executor_runs_callbacks_in_the_driver(tmp_path, pool):
    from tests.distributed import _objectives

    study = slimtune.create_study(storage=f"sqlite:///{tmp_path}/p.db", seed=0)
    study.optimize(_objectives.quick, n_trials=5, executor=pool, callbacks=[_record])
    assert [t.state for t in study.trials] == [slimtune.TrialState.COMPLETE] * 5
    assert {study.user_attrs[f"seen_{i}"] for i in range(5)} == {"COMPLETE"}
    assert pool.submit(_tasks.add, 1).result(timeout=60) == 1  # the caller's pool stays open


def test_optimize_on_an_inline_executor_is_the_plain_loop(tmp_path):
    study = slimtune.create_study(storage="memory", seed=0)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3, executor=InlineExecutor())
    assert len(study.trials) == 3


def test_workers_that_die_while_starting_break_the_pool_instead_of_respawning(tmp_path):
    script = tmp_path / "unguarded.py"  # no `if __name__ == "__main__":` guard
    script.write_text(
        "from slimtune.executors import ProcessExecutor\n"
        "pool = ProcessExecutor(max_workers=1)\n"
        "for _ in range(4):\n"
        "    try:\n"
        "        pool.submit(abs, -1).result(timeout=120)\n"
        "    except Exception as err:\n"
        "        print(type(err).__name__, err)\n"
    )
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=180, check=False
    )
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 4 and all(x.startswith("WorkerLostError") for x in lines)
    assert "died while starting" in lines[0] and "__main__" in lines[0]
    assert "the ProcessExecutor is broken" in lines[2]  # after 3 failed starts: no respawn
    assert "the ProcessExecutor is broken" in lines[3]
