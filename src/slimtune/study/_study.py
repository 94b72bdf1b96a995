"""``Study``: ask-tell over a storage; ``create_study`` / ``load_study`` / ``delete_study``."""

from __future__ import annotations

import logging
import math
import traceback as tb
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from slimtune._pareto import best_single, pareto_front
from slimtune._rng import check_seed, spawn_seed, trial_rng
from slimtune._trial import FrozenTrial, TrialState
from slimtune.exceptions import SlimtuneError, StorageError
from slimtune.samplers import RandomSampler, Sampler
from slimtune.schedulers import NeverStop, Scheduler
from slimtune.space import Conditional, Distribution, SearchSpace
from slimtune.storage import Storage, get_storage
from slimtune.storage._replay import StudyState
from slimtune.study._export import trials_to_csv, trials_to_dataframe, trials_to_json
from slimtune.study._heartbeat import Heartbeat, reap_lost_trials, retry_of
from slimtune.study._trial import Trial

if TYPE_CHECKING:
    from slimtune.executors import Executor

__all__ = ["Study", "TrialFinishedError", "create_study", "delete_study", "load_study"]

logger = logging.getLogger(__name__)

_DIRECTIONS = ("minimize", "maximize")
_MAX_ASK_ATTEMPTS = 10_000


class TrialFinishedError(SlimtuneError, RuntimeError):
    """``tell`` on a trial that is already finished (by this process or another)."""


def _check_directions(direction: str | None, directions: Sequence[str] | None) -> list[str]:
    if direction is not None and directions is not None:
        raise ValueError(
            "pass either `direction` or `directions`, not both. Use directions=[...] for "
            "several objectives."
        )
    out = [direction or "minimize"] if directions is None else list(directions)
    if not out:
        raise ValueError("`directions` must not be empty. Pass e.g. ['minimize', 'maximize'].")
    for d in out:
        if d not in _DIRECTIONS:
            raise ValueError(f"`direction` must be 'minimize' or 'maximize', got {d!r}.")
    return out


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"`name` must be a non-empty string, got {name!r}.")
    return name


@dataclass
class _Proposal:
    stored: dict[str, Any] = field(default_factory=dict)  # written with the trial
    distributions: dict[str, Distribution] = field(default_factory=dict)
    pending: dict[str, Any] = field(default_factory=dict)  # written when suggested
    claim: str | None = None
    system_attrs: dict[str, Any] = field(default_factory=dict)


class _IntersectionSpace:
    """Parameters every COMPLETE trial has with the same distribution (define-by-run), kept
    incrementally: each ask looks only at new trials and at trials still running."""

    def __init__(self) -> None:
        self._next = 0  # next trial number not yet looked at
        self._open: list[FrozenTrial] = []  # RUNNING when last looked at
        self._common: dict[str, Distribution] | None = None
        self._space = SearchSpace({})

    def update(self, trials: Sequence[FrozenTrial]) -> SearchSpace:
        self._open.extend(trials[self._next :])
        self._next = len(trials)
        still_open = []
        changed = False
        for t in self._open:
            if t.state is TrialState.RUNNING:
                still_open.append(t)
            elif t.state is TrialState.COMPLETE:
                changed = True
                if self._common is None:
                    self._common = dict(t.distributions)
                else:
                    self._common = {
                        k: d for k, d in self._common.items() if t.distributions.get(k) == d
                    }
        self._open = still_open
        if changed:
            self._space = SearchSpace(dict(sorted((self._common or {}).items())))
        return self._space


class Study:
    """A named optimisation problem whose trials live in a storage. Use :func:`create_study`."""

    def __init__(
        self,
        name: str,
        storage: Storage,
        *,
        sampler: Sampler | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self._storage = storage
        st = storage.study_state(name)
        self.name = name
        self._study_id = st.study_id
        self.directions: list[str] = list(st.directions)
        self._directions = tuple(self.directions)
        self.seed: int | None = st.seed
        self.space: SearchSpace | None = (
            SearchSpace.from_json(st.space) if st.space is not None else None
        )
        self._intersection = _IntersectionSpace()
        self._heartbeat: Heartbeat | None = None  # set by optimize() / workers while they run
        self.sampler: Sampler = sampler if sampler is not None else RandomSampler()
        self.scheduler: Scheduler = scheduler if scheduler is not None else NeverStop()
        if not hasattr(self.sampler, "sample"):
            raise TypeError(
                f"`sampler` must have a sample(space, trials, rng) method, got {sampler!r}."
            )
        if not hasattr(self.scheduler, "decide"):
            raise TypeError(
                f"`scheduler` must have a decide(trial, trials) method, got {scheduler!r}."
            )

    def __repr__(self) -> str:
        return f"Study(name={self.name!r}, directions={self.directions}, storage={self._storage!r})"

    # state ------------------------------------------------------------------------------------
    def _state(self) -> StudyState:
        return self._storage.study_by_id(self._study_id)

    def _trials_for_sampling(self) -> list[FrozenTrial]:
        return self._storage.get_trials(self._study_id, copy=False)

    @property
    def storage(self) -> Storage:
        return self._storage

    @property
    def direction(self) -> str:
        if len(self.directions) != 1:
            raise ValueError(
                f"study {self.name!r} has {len(self.directions)} objectives; use `directions`."
            )
        return self.directions[0]

    @property
    def trials(self) -> list[FrozenTrial]:
        """Copies of every trial, in number order."""
        return self._storage.get_trials(self._study_id)

    def get_trials(self, states: Iterable[TrialState] | None = None) -> list[FrozenTrial]:
        return self._storage.get_trials(self._study_id, states=states)

    @property
    def best_trial(self) -> FrozenTrial:
        """The best feasible COMPLETE trial (single objective)."""
        best = best_single(self.get_trials([TrialState.COMPLETE]), self.direction)
        if best is None:
            raise ValueError(
                f"study {self.name!r} has no feasible COMPLETE trial yet. Run some trials first."
            )
        return best

    @property
    def best_value(self) -> float:
        value = self.best_trial.value
        assert value is not None
        return value

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.best_trial.params)

    @property
    def best_trials(self) -> list[FrozenTrial]:
        """The feasible Pareto set of COMPLETE trials (the best trial for one objective)."""
        return pareto_front(self.get_trials([TrialState.COMPLETE]), self.directions)

    @property
    def user_attrs(self) -> dict[str, Any]:
        return dict(self._state().user_attrs)

    def set_user_attr(self, key: str, value: Any) -> None:
        self._storage.set_study_attr(self._study_id, key, value)

    # enqueue ----------------------------------------------------------------------------------
    def enqueue(self, params: Mapping[str, Any]) -> None:
        """Evaluate ``params`` next, before the sampler is asked. Each enqueued configuration is
        taken by exactly one trial, whichever process asks first. With a declared ``space`` it
        must be a full configuration; define-by-run, parameters not given are sampled."""
        if not isinstance(params, Mapping):
            raise TypeError(f"`params` must be a mapping of names to values, got {params!r}.")
        params = dict(params)
        if self.space is not None:
            params = self.space.check(params)
        self._storage.enqueue(self._study_id, params)

    # ask / tell -------------------------------------------------------------------------------
    def ask(self) -> Trial:
        """Create a RUNNING trial; its parameters come from the queue, the space, or suggests.

        Journal order settles races: when another process took this trial number (or the grid
        point) first, the proposal is redone on the updated history. Trials of lost workers
        (see :class:`~slimtune.study.Heartbeat`) are failed, and retried per their policy, first.
        """
        trial = self._ask(budget=None)
        assert trial is not None
        return trial

    def _free_slot(self, st: StudyState, budget: int) -> int | None:
        for k in range(budget):
            holder = st.slots.get(k)
            if holder is None or holder.state is TrialState.FAILED:
                return k
        return None

    def _ask(self, *, budget: int | None) -> Trial | None:
        """``ask``; with a study-wide ``budget``, the trial takes one of ``budget`` slots that no
        unfailed trial holds, and ``None`` is returned when every slot is held."""
        for _ in range(_MAX_ASK_ATTEMPTS):
            st = self._state()
            if st.watched:
                reap_lost_trials(self._storage, self._study_id)
                st = self._state()
            slot = None
            if budget is not None:
                slot = self._free_slot(st, budget)
                if slot is None:
                    return None
            number = len(st.trials)
            seed = spawn_seed(self.seed, number)
            rng = trial_rng(seed)
            proposal = self._propose(st, rng)
            retry_seed = proposal.system_attrs.get("retry_seed")
            if isinstance(retry_seed, int) and not isinstance(retry_seed, bool):
                seed = retry_seed  # a retry runs with the lost trial's seed (queued: no draws yet)
                rng = trial_rng(seed)
            frozen = self._storage.create_trial(
                self._study_id,
                number=number,
                seed=seed,
                params=proposal.stored,
                distributions=proposal.distributions,
                claim=proposal.claim,
                system_attrs=proposal.system_attrs,
                slot=slot,
            )
            if frozen is not None:
                return Trial(self, frozen, pending=proposal.pending, rng=rng)
        raise StorageError(
            f"study {self.name!r}: could not create a trial after {_MAX_ASK_ATTEMPTS} attempts "
            "(other processes kept winning). Is the storage being flooded?"
        )

    def _propose(self, st: StudyState, rng: np.random.Generator) -> _Proposal:
        out = _Proposal()
        if self._heartbeat is not None:
            out.system_attrs["heartbeat"] = self._heartbeat.to_json()
        if st.queue:
            enqueue_id, fixed = next(iter(st.queue.items()))
            out.claim = "enqueue:" + enqueue_id
            out.system_attrs["fixed_params"] = dict(fixed)
            out.system_attrs.update(st.queue_attrs.get(enqueue_id, {}))
            if self.space is None:
                out.pending = dict(fixed)  # used when the objective suggests them
                return out
            out.stored = dict(fixed)
            out.distributions = {k: self.space[k] for k in fixed}
            return out
        space = self.space
        if space is None:
            sampler_space = getattr(self.sampler, "space", None)
            if isinstance(sampler_space, SearchSpace):
                space = sampler_space  # a sampler that brings its own space (GridSampler)
        if space is None:
            relative = self._intersection.update(st.trials)
            if len(relative):
                out.pending = dict(
                    self.sampler.sample(relative, st.trials, rng, directions=self._directions)
                )
            return out
        params = dict(self.sampler.sample(space, st.trials, rng, directions=self._directions))
        if self.space is not None:
            params = self.space.check(params)
        out.stored = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in params.items()}
        out.distributions = {k: space[k] for k in out.stored}
        claim_fn: Callable[[Mapping[str, Any]], str | None] | None = getattr(
            self.sampler, "claim", None
        )
        out.claim = claim_fn(out.stored) if claim_fn is not None else None
        return out

    def tell(
        self,
        trial: Trial | int,
        values: float | Sequence[float] | None = None,
        *,
        state: TrialState | None = None,
        error: BaseException | None = None,
    ) -> FrozenTrial:
        """Finish a trial. ``values`` that are NaN, infinite, non-numeric or of the wrong count
        make it FAILED with the reason; ``state=STOPPED`` keeps its last reported value."""
        frozen = self._resolve(trial)
        if frozen.state.is_finished():
            raise TrialFinishedError(
                f"trial {frozen.number} of study {self.name!r} is already {frozen.state.value}."
            )
        if state is TrialState.RUNNING:
            raise ValueError("`state` must be COMPLETE, FAILED or STOPPED, got RUNNING.")
        err_info: dict[str, str] | None = None
        out_values: list[float] | None = None
        if error is not None:
            state = TrialState.FAILED
            err_info = {
                "type": type(error).__name__,
                "message": str(error),
                "traceback": "".join(tb.format_exception(error)),
            }
        elif state is TrialState.FAILED:
            err_info = {"type": "Failed", "message": "marked FAILED by tell()", "traceback": ""}
        elif state is TrialState.STOPPED:
            if values is None and frozen.last_step is not None and len(self.directions) == 1:
                values = frozen.intermediate_values[frozen.last_step]
            if values is not None:
                # a NaN or infinite last value is dropped: STOPPED trials keep finite values only
                out_values, reason = self._check_values(values)
                if reason is not None:
                    out_values = None
        else:
            out_values, reason = self._check_values(values)
            if reason is None:
                state = TrialState.COMPLETE
            else:
                state = TrialState.FAILED
                out_values = None
                err_info = {"type": "InvalidValue", "message": reason, "traceback": ""}
                logger.warning("trial %d failed: %s", frozen.number, reason)
        assert state is not None
        done = self._storage.finish_trial(frozen.trial_id, state, values=out_values, error=err_info)
        if done.state is not state:
            raise TrialFinishedError(
                f"trial {done.number} of study {self.name!r} was finished by another process as "
                f"{done.state.value} first."
            )
        return done.copy()

    def _fail(self, trial_id: str, error: dict[str, str], *, retry: bool = False) -> FrozenTrial:
        """Record a RUNNING trial FAILED for a reason outside its objective (its worker died or
        was shut down); with ``retry``, enqueue its parameters again if its heartbeat policy
        allows. Returns the trial as stored (another process may have finished it first)."""
        frozen = self._storage.get_trial(trial_id)
        if frozen.state.is_finished():
            return frozen.copy()
        again = retry_of(frozen) if retry else None
        done = self._storage.finish_trial(
            trial_id, TrialState.FAILED, error=dict(error), retry=again
        )
        return done.copy()

    def _resolve(self, trial: Trial | int) -> FrozenTrial:
        if isinstance(trial, Trial):
            return self._storage.get_trial(trial.trial_id)
        if isinstance(trial, int) and not isinstance(trial, bool):
            trials = self._trials_for_sampling()
            if not 0 <= trial < len(trials):
                raise ValueError(
                    f"`trial` number {trial} does not exist in study {self.name!r} "
                    f"({len(trials)} trials)."
                )
            return trials[trial]
        raise TypeError(f"`trial` must be a Trial or a trial number, got {trial!r}.")

    def _check_values(self, values: Any) -> tuple[list[float] | None, str | None]:
        n = len(self.directions)
        if values is None:
            return None, "the objective returned None; return a number."
        seq = list(values) if isinstance(values, list | tuple | np.ndarray) else [values]
        if len(seq) != n:
            return None, (
                f"the objective returned {len(seq)} value(s) for {n} objective(s): {values!r}."
            )
        out = []
        for v in seq:
            if isinstance(v, bool):
                return None, f"the objective returned a bool ({v!r}); return a number."
            try:
                f = float(v)
            except (TypeError, ValueError):
                return None, (
                    f"the objective returned a non-number {v!r} "
                    f"({type(v).__name__}); return a float."
                )
            if math.isnan(f):
                return None, "the objective returned NaN."
            if math.isinf(f):
                return None, f"the objective returned {f} (infinite)."
            out.append(f)
        return out, None

    # optimize and export ----------------------------------------------------------------------
    def optimize(
        self,
        objective: Callable[[Trial], Any],
        n_trials: int | None = None,
        *,
        timeout: float | None = None,
        n_jobs: int = 1,
        catch: type[BaseException] | tuple[type[BaseException], ...] = (),
        callbacks: Sequence[Callable[[Study, FrozenTrial], None]] = (),
        executor: Executor | None = None,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        """Run ``objective`` on new trials until ``n_trials`` (this call), ``timeout`` seconds,
        or the sampler's space is exhausted. ``n_jobs > 1`` runs objectives in that many
        processes; ``executor`` (``ProcessExecutor``, ``RayExecutor``, ...) picks where they run;
        ``heartbeat`` lets other processes fail and retry the trials of a dead one. See
        :func:`slimtune.study.optimize`."""
        from slimtune.study._optimize import optimize

        optimize(
            self,
            objective,
            n_trials=n_trials,
            timeout=timeout,
            n_jobs=n_jobs,
            catch=catch,
            callbacks=callbacks,
            executor=executor,
            heartbeat=heartbeat,
        )

    def to_csv(self, path: str | Path | None = None) -> str:
        text = trials_to_csv(self.trials, len(self.directions))
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_json(self, path: str | Path | None = None) -> str:
        info = {
            "name": self.name,
            "directions": self.directions,
            "seed": self.seed,
            "space": None if self.space is None else self.space.to_json(),
            "user_attrs": self.user_attrs,
        }
        text = trials_to_json(info, self.trials)
        if path is not None:
            Path(path).write_text(text)
        return text

    def to_dataframe(self) -> Any:
        """The trials as a pandas DataFrame (needs pandas)."""
        return trials_to_dataframe(self.trials, len(self.directions))


def create_study(
    name: str | None = None,
    *,
    storage: str | Storage | None = None,
    direction: str | None = None,
    directions: Sequence[str] | None = None,
    sampler: Sampler | None = None,
    scheduler: Scheduler | None = None,
    seed: int | None = None,
    space: Mapping[str, Distribution | Conditional] | None = None,
    load_if_exists: bool = False,
) -> Study:
    """Create a study (or resume it with ``load_if_exists=True``).

    ``storage`` is a URL: ``"sqlite:///slimtune.db"`` (the default, a file in the working
    folder), ``"memory"`` (nothing kept) or ``"postgresql://user:pass@host:port/db"``.
    ``seed`` makes suggestions reproducible: trial ``n`` draws from a seed spawned from it.
    ``space`` declares every parameter up front (conditionals with ``Conditional``); the
    objective then reads ``trial.params``.
    """
    import uuid

    dirs = _check_directions(direction, directions)
    seed = check_seed(seed)
    study_name = _check_name(name) if name is not None else f"study-{uuid.uuid4().hex[:8]}"
    declared = SearchSpace(space) if space is not None else None
    store = get_storage(storage)
    study_id = store.create_study(
        study_name,
        directions=dirs,
        seed=seed,
        space=None if declared is None else declared.to_json(),
        load_if_exists=load_if_exists,
    )
    st = store.study_by_id(study_id)
    explicit = direction is not None or directions is not None
    if load_if_exists and explicit and st.directions != dirs:
        raise ValueError(
            f"study {study_name!r} exists with directions {st.directions}, not {dirs}. "
            "Pass the same directions or another name."
        )
    return Study(study_name, store, sampler=sampler, scheduler=scheduler)


def load_study(
    name: str,
    *,
    storage: str | Storage | None = None,
    sampler: Sampler | None = None,
    scheduler: Scheduler | None = None,
) -> Study:
    """Open an existing study; :class:`StudyNotFoundError` when there is none of that name."""
    return Study(_check_name(name), get_storage(storage), sampler=sampler, scheduler=scheduler)


def delete_study(name: str, *, storage: str | Storage | None = None) -> None:
    """Delete a study and its trials (the journal keeps the history; replay hides it)."""
    get_storage(storage).delete_study(_check_name(name))
