"""``RayExecutor``: objectives as Ray tasks with per-trial resources; study state stays in the
storage (every task opens the study from its URL)."""

from __future__ import annotations

import logging
import math
import socket
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

from slimtune.exceptions import MissingExtraError
from slimtune.executors._base import ExecutorError

__all__ = ["RayExecutor"]

logger = logging.getLogger(__name__)

_RESOURCE_KEYS = ("num_cpus", "num_gpus", "memory", "resources", "accelerator_type")


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as err:
        raise MissingExtraError(
            "RayExecutor needs Ray, which is not installed. "
            "Install it with: pip install 'slimtune[ray]'"
        ) from err
    return ray


def _call(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return fn(*args, **kwargs)


def _check_reachable(address: str, timeout: float) -> None:
    """Fail fast (one line) when ``host:port`` of a Ray address does not accept connections."""
    rest = address.split("://", 1)[1] if "://" in address else address
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        raise ExecutorError(
            f"`address` must be 'host:port', 'ray://host:port', 'auto' or None, got {address!r}."
        )
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as err:
        raise ExecutorError(
            f"Ray cluster at `address`={address!r} is unreachable ({err.strerror or err}). "
            "Check that `ray start --head` runs there and the port is open, or pass "
            "address=None for a local Ray."
        ) from None


def _check_resources(resources: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(resources, Mapping):
        raise ValueError(
            f"`resources` must be a dict such as {{'num_cpus': 1, 'num_gpus': 0.5}}, "
            f"got {resources!r}."
        )
    out = dict(resources)
    for key, value in out.items():
        if key not in _RESOURCE_KEYS:
            raise ValueError(
                f"`resources` has unknown key {key!r}. Use {', '.join(_RESOURCE_KEYS)} "
                "(custom resources go in resources={'resources': {'name': amount}})."
            )
        if key in ("num_cpus", "num_gpus", "memory") and (
            isinstance(value, bool) or not isinstance(value, int | float) or value < 0
        ):
            raise ValueError(f"`resources[{key!r}]` must be a number >= 0, got {value!r}.")
    return out


class RayExecutor:
    """Run objectives as Ray tasks.

    ``address``: ``None`` (start a local Ray, or use the one already initialised in this
    process), ``"auto"`` (the cluster of this host) or ``"host:port"`` / ``"ray://host:port"``.
    ``resources``: what each trial's task needs, e.g. ``{"num_cpus": 1, "num_gpus": 0.5}``.
    ``max_workers``: trials in flight (default: what the cluster's CPUs / GPUs allow for one
    task's resources). Tasks are never retried by Ray: a task whose worker dies fails its trial
    with the reason. ``init_kwargs`` are passed to ``ray.init`` (e.g. ``num_cpus=2``,
    ``runtime_env=...``). The storage must be reachable from every node (PostgreSQL across hosts).
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        resources: Mapping[str, Any] | None = None,
        max_workers: int | None = None,
        init_kwargs: Mapping[str, Any] | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        res = _check_resources({"num_cpus": 1} if resources is None else resources)
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise ValueError(f"`max_workers` must be a positive int or None, got {max_workers!r}.")
        if address is not None and not isinstance(address, str):
            raise ValueError(f"`address` must be a str or None, got {address!r}.")
        ray = _import_ray()
        self._ray = ray
        self._owns = False
        if not ray.is_initialized():
            if address not in (None, "auto", "local"):
                _check_reachable(address, connect_timeout)
            kwargs = dict(init_kwargs or {})
            kwargs.setdefault("log_to_driver", False)
            kwargs.setdefault("include_dashboard", False)
            try:
                ray.init(address=address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError, TimeoutError) as err:
                first = (str(err).strip().splitlines() or [type(err).__name__])[0]
                raise ExecutorError(
                    f"cannot start Ray with `address`={address!r}: {first}. Pass address=None "
                    "for a local Ray, or the address printed by `ray start --head`."
                ) from None
            self._owns = True
        self._resources = res
        self._remote = ray.remote(max_retries=0, **res)(_call)
        self._max_workers = max_workers or self._capacity(res)

    def _capacity(self, res: Mapping[str, Any]) -> int:
        total = self._ray.cluster_resources()
        fits = []
        for key, name in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
            need = float(res.get(key, 0) or 0)
            if need > 0:
                fits.append(math.floor(float(total.get(name, 0.0)) / need + 1e-9))
        n = min(fits) if fits else int(total.get("CPU", 1))
        if n < 1:
            raise ExecutorError(
                f"the Ray cluster ({dict(total)}) cannot fit one task needing {dict(res)}. "
                "Lower `resources` or add nodes."
            )
        return n

    @property
    def max_workers(self) -> int:
        return self._max_workers

    def __repr__(self) -> str:
        return f"RayExecutor(resources={self._resources}, max_workers={self._max_workers})"

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        ref = self._remote.remote(fn, args, kwargs)
        future: Future[Any] = ref.future()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Disconnect from (and stop) a Ray this executor started; a Ray that was already
        initialised is left running. Tasks already submitted are not cancelled."""
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
            self._owns = False
