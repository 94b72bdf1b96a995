"""``ProcessExecutor``: a pool of spawned worker processes in which a crash fails one task only.

Unlike ``concurrent.futures.ProcessPoolExecutor``, a worker that dies (``os._exit``, a segfault,
the out-of-memory killer, ``kill -9``) breaks nothing but the future of the task it was running:
that future gets a :class:`WorkerLostError` with the exit code, a fresh worker takes the dead
one's place, and the executor stays usable. With ``timeout`` a task that runs longer (counted
from when its worker has finished starting) is killed with its worker and fails the same way.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing as mp
import os
import pickle
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from multiprocessing.connection import Connection, wait
from typing import Any

from slimtune.exceptions import SlimtuneError
from slimtune.executors._base import WorkerLostError

__all__ = ["ProcessExecutor"]

logger = logging.getLogger(__name__)


_READY = b"ready"
_MAX_BAD_STARTS = 3  # workers in a row that die before they start: the pool is broken


class _RemoteError(SlimtuneError, RuntimeError):
    """Stands in for a task's exception that could not be pickled back; keeps its text."""


def _worker_main(conn: Connection, env: dict[str, str]) -> None:
    os.environ.update(env)
    # Ctrl-C reaches the whole process group: the parent decides what happens to running tasks
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        conn.send_bytes(_READY)  # started: a death from now on is a task's, not start-up's
    except (EOFError, OSError):
        return
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if not message:
            return
        task_id = -1
        try:
            task_id, fn, args, kwargs = pickle.loads(message)
            reply = (task_id, True, fn(*args, **kwargs))
            payload = pickle.dumps(reply)
        except BaseException as err:
            try:
                payload = pickle.dumps((task_id, False, err))
            except Exception:
                text = f"{type(err).__name__}: {err}"
                payload = pickle.dumps((task_id, False, _RemoteError(text)))
        try:
            conn.send_bytes(payload)
        except (EOFError, OSError):
            return


def _signal_name(code: int | None) -> str:
    if code is None or code >= 0:
        return f"exit code {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:
        return f"signal {-code}"


def check_timeout(name: str, value: Any, example: str) -> float | None:
    """``value`` as seconds (None: no limit); a clear error naming ``name`` otherwise."""
    if value is not None and (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(
            f"`{name}` must be None or a finite number of seconds > 0, got {value!r}. "
            f"Pass e.g. {example}, or {name}=None for no limit."
        )
    return None if value is None else float(value)


class _Task:
    __slots__ = ("future", "name", "payload", "task_id")

    def __init__(self, task_id: int, payload: bytes, future: Future[Any], name: str) -> None:
        self.task_id = task_id
        self.payload = payload
        self.future = future
        self.name = name


class _Worker:
    def __init__(self, ctx: Any, index: int, env: dict[str, str]) -> None:
        self.index = index
        self.env = env
        self.conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_worker_main, args=(child, env), daemon=True)
        self.proc.start()
        child.close()
        self.task: _Task | None = None
        self.ready = False
        self.started: float | None = None  # monotonic time ``task`` began running (worker ready)
        self.timed_out = False


class ProcessExecutor:
    """Run tasks in ``max_workers`` spawned processes (default: one per GPU in ``gpus``, else
    one per CPU core).

    ``gpus``: device ids; worker ``i`` sees only ``gpus[i % len(gpus)]`` through
    ``CUDA_VISIBLE_DEVICES`` (set before the task runs, so before CUDA initialises). Functions
    and arguments are pickled (define objectives at module level). ``submit(fn, *args,
    **kwargs)`` returns a ``concurrent.futures.Future``; a worker that dies sets
    :class:`WorkerLostError` on its task's future only and is replaced.

    ``timeout``: seconds a task may run once its worker has started (imports done); a task
    running longer has its worker killed, its future gets :class:`WorkerLostError`, and a fresh
    worker takes the place. ``None`` (default): no limit.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        *,
        gpus: Sequence[int | str] | None = None,
        timeout: float | None = None,
    ) -> None:
        devices: list[str] | None = None
        if gpus is not None:
            if isinstance(gpus, str) or not all(
                isinstance(g, int | str) and not isinstance(g, bool) for g in gpus
            ):
                raise ValueError(
                    f"`gpus` must be a list of device ids such as [0, 1], got {gpus!r}."
                )
            devices = [str(g) for g in gpus]
            if not devices:
                raise ValueError("`gpus` must not be empty; pass None to leave devices alone.")
        if max_workers is None:
            max_workers = len(devices) if devices else (os.cpu_count() or 1)
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"`max_workers` must be a positive int, got {max_workers!r}.")
        self._max_workers = max_workers
        self._timeout = check_timeout("timeout", timeout, "timeout=600.0")
        self._gpus = devices
        self._ctx = mp.get_context("spawn")
        self._lock = threading.Lock()
        self._queue: deque[_Task] = deque()
        self._next_id = 0
        self._shutdown = False
        self._broken: str | None = None
        self._bad_starts = 0
        self._closed = threading.Event()
        self._wake_r, self._wake_w = self._ctx.Pipe(duplex=False)
        self._wake_pending = False  # at most one wake-up byte in the pipe: it never fills
        self._workers = [self._spawn(i) for i in range(max_workers)]
        self._thread = threading.Thread(
            target=self._dispatch, name="slimtune-process-executor", daemon=True
        )
        self._thread.start()

    @property
    def max_workers(self) -> int:
        return self._max_workers

    @property
    def timeout(self) -> float | None:
        return self._timeout

    def __repr__(self) -> str:
        gpus = "" if self._gpus is None else f", gpus={self._gpus}"
        timeout = "" if self._timeout is None else f", timeout={self._timeout}"
        return f"ProcessExecutor(max_workers={self._max_workers}{gpus}{timeout})"

    def __enter__(self) -> ProcessExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(wait=True)

    def _spawn(self, index: int) -> _Worker:
        env = {}
        if self._gpus:
            env["CUDA_VISIBLE_DEVICES"] = self._gpus[index % len(self._gpus)]
        return _Worker(self._ctx, index, env)

    def worker_pids(self) -> list[int | None]:
        """Process ids of the current workers (for monitoring and tests)."""
        return [w.proc.pid for w in self._workers]

    # submitting ---------------------------------------------------------------------------------
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Schedule ``fn(*args, **kwargs)`` in a worker; pickling errors are raised here."""
        with self._lock:
            if self._broken is not None:
                raise WorkerLostError(self._broken)
            if self._shutdown:
                raise RuntimeError("cannot submit to a ProcessExecutor after shutdown().")
            task_id = self._next_id
            self._next_id += 1
        payload = pickle.dumps((task_id, fn, args, kwargs))
        future: Future[Any] = Future()
        name = getattr(fn, "__qualname__", repr(fn))
        with self._lock:
            self._queue.append(_Task(task_id, payload, future, name))
        self._wake()
        return future

    def _wake(self) -> None:
        with self._lock:
            if self._wake_pending:
                return
            self._wake_pending = True
        self._wake_w.send_bytes(b"x")

    # the dispatcher thread ------------------------------------------------------------------------
    def _assign(self) -> None:
        for worker in self._workers:
            if worker.task is not None:
                continue
            while True:
                with self._lock:
                    task = self._queue.popleft() if self._queue else None
                if task is None:
                    return
                if task.future.set_running_or_notify_cancel():
                    break
            worker.task = task
            worker.started = time.monotonic() if worker.ready else None  # else: at its ready
            # if the worker died, its sentinel reports it in _dispatch
            with contextlib.suppress(OSError, ValueError):
                worker.conn.send_bytes(task.payload)

    def _dispatch(self) -> None:
        while True:
            self._assign()
            with self._lock:
                idle = not self._queue and all(w.task is None for w in self._workers)
                if self._shutdown and idle:
                    break
            waitables: list[Any] = [self._wake_r]
            for w in self._workers:
                waitables += [w.proc.sentinel, w.conn]
            ready = wait(waitables, timeout=self._wait_time())
            if self._wake_r in ready:
                while self._wake_r.poll():
                    self._wake_r.recv_bytes()
                with self._lock:  # after draining: a later submit sends a fresh byte, and one
                    self._wake_pending = False  # queued before is assigned at the loop's top
            for w in list(self._workers):
                if w.conn in ready or w.proc.sentinel in ready:
                    self._collect(w)
                if w.proc.sentinel in ready or not w.proc.is_alive():
                    self._replace(w)
            self._kill_overdue()
        self._closed.set()

    def _deadline(self, w: _Worker) -> float | None:
        if self._timeout is None or w.task is None or w.started is None:
            return None
        return w.started + self._timeout

    def _wait_time(self) -> float:
        """Seconds the dispatcher may block: at most 1, and not past a running task's deadline."""
        deadlines = [d for d in map(self._deadline, self._workers) if d is not None]
        if not deadlines:
            return 1.0
        return min(1.0, max(0.0, min(deadlines) - time.monotonic()))

    def _kill_overdue(self) -> None:
        for w in list(self._workers):
            deadline = self._deadline(w)
            if deadline is None or time.monotonic() < deadline:
                continue
            self._collect(w)  # an answer that came in just now still counts
            if w.task is None or not w.proc.is_alive():
                continue
            w.timed_out = True
            w.proc.kill()
            self._replace(w)

    def _collect(self, w: _Worker) -> None:
        while True:
            try:
                if not w.conn.poll():
                    return
                message = w.conn.recv_bytes()
            except (EOFError, OSError):
                return
            if message == _READY:
                w.ready = True
                w.started = time.monotonic()  # a task sent before counts from here
                self._bad_starts = 0
                continue
            task, w.task = w.task, None
            if task is None:
                continue
            try:
                _task_id, ok, value = pickle.loads(message)
            except Exception as err:  # the result could not be unpickled here
                task.future.set_exception(err)
                continue
            if ok:
                task.future.set_result(value)
            else:
                task.future.set_exception(value)

    def _replace(self, w: _Worker) -> None:
        w.proc.join(timeout=1.0)
        code = w.proc.exitcode
        if not w.ready:
            self._bad_starts += 1
        if self._bad_starts >= _MAX_BAD_STARTS and self._broken is None:
            self._broken = (
                f"{self._bad_starts} worker processes in a row died while starting "
                f"({_signal_name(code)}): the ProcessExecutor is broken. A script that creates "
                "it must guard its main code with `if __name__ == '__main__':` (spawned "
                "workers import the main module); see the first worker's stderr."
            )
            logger.error("%s", self._broken)
        if w.task is not None:
            task, w.task = w.task, None
            if self._broken is not None:
                message = self._broken
            elif w.timed_out:
                message = (
                    f"worker process {w.proc.pid} ran {task.name} past timeout={self._timeout} s "
                    f"and was killed ({_signal_name(code)}); pass a larger `timeout` (or None) "
                    "to ProcessExecutor if the task needs longer"
                )
            elif not w.ready:
                message = (
                    f"worker process {w.proc.pid} died while starting ({_signal_name(code)}), "
                    f"before running {task.name}: is the main module guarded by "
                    "`if __name__ == '__main__':`? See the worker's stderr."
                )
            else:
                message = (
                    f"worker process {w.proc.pid} died ({_signal_name(code)}) while running "
                    f"{task.name}: killed, crashed or out of memory"
                )
            logger.warning("%s", message)
            task.future.set_exception(WorkerLostError(message))
        w.conn.close()
        if self._broken is not None:
            with self._lock:
                self._shutdown = True
                while self._queue:
                    queued = self._queue.popleft()
                    if queued.future.set_running_or_notify_cancel():
                        queued.future.set_exception(WorkerLostError(self._broken))
        with self._lock:
            shutting_down = self._shutdown
        if not shutting_down:
            self._workers[self._workers.index(w)] = self._spawn(w.index)
        else:
            self._workers = [x for x in self._workers if x is not w]

    # shutting down --------------------------------------------------------------------------------
    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop accepting tasks; with ``cancel_futures`` drop those not started; with ``wait``
        block until the running ones are done. Workers exit when idle."""
        with self._lock:
            self._shutdown = True
            if cancel_futures:
                while self._queue:
                    self._queue.popleft().future.cancel()
        self._wake()
        if wait:
            self._closed.wait()
            self._stop_workers(timeout=5.0)
        else:
            threading.Thread(target=self._reap_later, daemon=True).start()

    def _reap_later(self) -> None:
        self._closed.wait()
        self._stop_workers(timeout=5.0)

    def terminate(self) -> None:
        """Kill every worker now; running tasks fail with :class:`WorkerLostError`."""
        self.shutdown(wait=False, cancel_futures=True)
        for w in list(self._workers):
            if w.proc.is_alive():
                w.proc.kill()
        self._closed.wait(timeout=10.0)

    def _stop_workers(self, timeout: float) -> None:
        for w in list(self._workers):
            with contextlib.suppress(OSError, ValueError):
                w.conn.send_bytes(b"")
        for w in list(self._workers):
            w.proc.join(timeout=timeout)
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join(timeout=1.0)
