"""PBT's default pool: spawned worker processes in which a crash or a hang fails one task only.

Like :class:`slimtune.executors.ProcessExecutor` (whose :class:`WorkerLostError` it raises), plus
a per-task ``timeout`` that kills a hung member step. Each worker is a ``multiprocessing`` spawn
process fed by one thread of the parent; when it dies (``os._exit``, a segfault, the
out-of-memory killer) or runs past ``timeout``, the future of its task gets a
:class:`WorkerLostError` and a fresh process takes its place at the next task.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import pickle
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from multiprocessing.connection import Connection
from typing import Any

from slimtune.exceptions import SlimtuneError
from slimtune.executors import WorkerLostError

__all__ = ["SpawnPool"]

logger = logging.getLogger(__name__)


class _RemoteError(SlimtuneError, RuntimeError):
    """A task's exception that could not be pickled back; the message keeps its text."""


def _child_main(conn: Connection) -> None:
    try:
        conn.send_bytes(b"ready")  # imports are done: task timeouts start counting from here
    except (EOFError, OSError):
        return
    while True:
        try:
            message = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if not message:
            return
        try:
            fn, args, kwargs = pickle.loads(message)
            payload = pickle.dumps((True, fn(*args, **kwargs)))
        except BaseException as err:
            try:
                payload = pickle.dumps((False, err))
            except Exception:
                payload = pickle.dumps((False, _RemoteError(f"{type(err).__name__}: {err}")))
        try:
            conn.send_bytes(payload)
        except (EOFError, OSError):
            return


_STOP = object()


class _Worker:
    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx
        self.process: Any = None
        self.conn: Connection | None = None

    def ensure(self) -> None:
        if self.process is not None and self.process.is_alive():
            return
        self.discard()
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_child_main, args=(child,), daemon=True)
        proc.start()
        child.close()
        self.process, self.conn = proc, parent
        parent.recv_bytes()  # the ready message; EOFError when the process dies starting

    def discard(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
        if self.process is not None:
            if self.process.is_alive():
                self.process.kill()
            self.process.join(timeout=5)
        self.process, self.conn = None, None

    def close(self) -> None:
        if self.conn is not None and self.process is not None and self.process.is_alive():
            with contextlib.suppress(OSError):
                self.conn.send_bytes(b"")
            self.process.join(timeout=5)
        self.discard()


class SpawnPool:
    """``max_workers`` spawn processes; ``submit(fn, *args, **kwargs)`` returns a Future.

    ``fn`` and its arguments must pickle (module-level functions). ``timeout`` (seconds) kills a
    task that runs longer and fails its future with :class:`WorkerLostError`.
    """

    def __init__(self, max_workers: int = 2, *, timeout: float | None = None) -> None:
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(f"`max_workers` must be an int >= 1, got {max_workers!r}.")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0
        ):
            raise ValueError(f"`timeout` must be a positive number of seconds, got {timeout!r}.")
        self.max_workers = max_workers
        self.timeout = None if timeout is None else float(timeout)
        self._ctx = mp.get_context("spawn")
        self._tasks: queue.Queue[Any] = queue.Queue()
        self._closed = False
        self._threads = [
            threading.Thread(target=self._serve, name=f"slimtune-pool-{i}", daemon=True)
            for i in range(max_workers)
        ]
        for t in self._threads:
            t.start()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self._closed:
            raise RuntimeError("cannot submit to a SpawnPool after shutdown().")
        future: Future[Any] = Future()
        self._tasks.put((future, fn, args, kwargs))
        return future

    def _serve(self) -> None:
        worker = _Worker(self._ctx)
        try:
            while True:
                item = self._tasks.get()
                if item is _STOP:
                    return
                future, fn, args, kwargs = item
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    payload = pickle.dumps((fn, args, kwargs))
                except Exception as err:
                    future.set_exception(
                        TypeError(f"the task does not pickle for a worker process: {err}")
                    )
                    continue
                self._run(worker, future, payload)
        finally:
            worker.close()

    def _run(self, worker: _Worker, future: Future[Any], payload: bytes) -> None:
        try:
            worker.ensure()
            assert worker.conn is not None and worker.process is not None
            worker.conn.send_bytes(payload)
            answered = worker.conn.poll(self.timeout)
            if answered:
                ok, value = pickle.loads(worker.conn.recv_bytes())
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
                return
            reason = f"ran past its timeout of {self.timeout} s and was killed"
        except (EOFError, OSError):
            reason = "died"
        except Exception as err:  # an answer that does not unpickle
            future.set_exception(err)
            return
        proc = worker.process
        worker.discard()
        code = None if proc is None else proc.exitcode
        logger.warning("worker process %s (exit code %s)", reason, code)
        future.set_exception(WorkerLostError(f"the worker process {reason} (exit code {code})."))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self._closed:
            return
        self._closed = True
        if cancel_futures:
            while True:
                try:
                    item = self._tasks.get_nowait()
                except queue.Empty:
                    break
                item[0].cancel()
        for _ in self._threads:
            self._tasks.put(_STOP)
        if wait:
            for t in self._threads:
                t.join()

    def __enter__(self) -> SpawnPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
