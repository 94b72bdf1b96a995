"""Population-based training (Jaderberg et al. 2017), synchronous rounds.

Every round each member trains ``interval`` steps in a worker process, from a fresh copy of its
last checkpoint. Then the bottom quantile copies a top member's checkpoint (byte-exact, checked
by SHA-256) and hyperparameters and explores them. A member whose step fails (its process dies or
it raises) is retried from its last checkpoint; after ``max_restarts`` it ranks last and is
re-seeded by exploit. Each member is one trial of the study: intermediate values per round, the
schedule (``"pbt_schedule"``) and events (``"pbt_events"``) in its user attributes.
"""

from __future__ import annotations

import logging
import math
import pickle
import shutil
import tempfile
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from slimtune._rng import _MAX_SEED, spawn_seed
from slimtune._trial import FrozenTrial, TrialState
from slimtune.exceptions import SlimtuneError
from slimtune.hpo._checkpoint import checkpoint_digest, copy_checkpoint
from slimtune.hpo._explore import PBTConfig, explore, select_exploits
from slimtune.hpo._pool import SpawnPool
from slimtune.hpo._schedule import (
    SCHEDULE_KEY,
    MemberStep,
    Segment,
    TrainFn,
    replay_schedule,
)
from slimtune.space import SearchSpace
from slimtune.study import Study, Trial, create_study

__all__ = ["PBT", "PBTError", "PBTResult", "SubmitExecutor"]

logger = logging.getLogger(__name__)

EVENTS_KEY = "pbt_events"


class PBTError(SlimtuneError, RuntimeError):
    """The whole population failed in a round; nothing is left to exploit."""


def _check_picklable(train_fn: Any) -> None:
    try:
        pickle.dumps(train_fn)
    except Exception as err:
        raise TypeError(
            f"`train_fn` {train_fn!r} does not pickle, so it cannot run in worker processes "
            f"({err}). Define it at module level, or pass executor=InlineExecutor() from "
            "slimtune.executors to run members in this process."
        ) from err


class SubmitExecutor(Protocol):
    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]: ...


def _call_train(train_fn: TrainFn, step: MemberStep) -> float:
    return train_fn(step)


@dataclass
class PBTResult:
    """What a PBT run left: final scores, schedules, events and checkpoint folders."""

    study: Study
    direction: str
    trial_numbers: list[int]
    scores: list[float | None]
    schedules: list[list[Segment]]
    events: list[dict[str, Any]]
    checkpoint_dirs: list[Path]
    hparams: list[dict[str, Any]] = field(default_factory=list)

    @property
    def best_member(self) -> int:
        sign = 1.0 if self.direction == "minimize" else -1.0
        ranked = [
            (sign * s, i) for i, s in enumerate(self.scores) if s is not None and math.isfinite(s)
        ]
        if not ranked:
            raise PBTError("no member has a score; every member failed.")
        return min(ranked)[1]

    @property
    def best_score(self) -> float:
        score = self.scores[self.best_member]
        assert score is not None
        return score

    def trial(self, member: int) -> FrozenTrial:
        return self.study.trials[self.trial_numbers[member]]


class PBT:
    """Population-based training of ``train_fn`` over ``space``.

    ``train_fn(step: MemberStep) -> score`` trains one member ``step.steps`` steps (see
    :class:`MemberStep`); it must be a module-level function so it pickles into worker
    processes. ``study`` (default: an in-memory study minimising) gets one trial per member; its
    sampler draws the initial population. ``executor``: anything with ``submit(fn, *args)``
    returning a future (``slimtune.executors.ProcessExecutor``, ``InlineExecutor``, a thread pool);
    by default PBT runs its own ``n_workers`` spawn processes (:class:`SpawnPool`) that survive a
    member's crash and kill a step running past ``config.step_timeout``. ``workdir`` holds the
    checkpoints (default: a new temporary folder, kept after the run).
    """

    def __init__(
        self,
        train_fn: TrainFn,
        space: SearchSpace,
        *,
        config: PBTConfig | None = None,
        study: Study | None = None,
        executor: SubmitExecutor | None = None,
        workdir: str | Path | None = None,
    ) -> None:
        if not callable(train_fn):
            raise TypeError(f"`train_fn` must be callable, got {train_fn!r}.")
        if isinstance(space, dict):
            space = SearchSpace(space)
        if not isinstance(space, SearchSpace) or not len(space):
            raise TypeError(
                f"`space` must be a non-empty SearchSpace, got {space!r}. Pass e.g. "
                "SearchSpace({'lr': Float(1e-4, 1e-1, log=True)})."
            )
        config = PBTConfig() if config is None else config
        if not isinstance(config, PBTConfig):
            raise TypeError(f"`config` must be a PBTConfig, got {config!r}.")
        if study is not None:
            if not isinstance(study, Study):
                raise TypeError(f"`study` must be a slimtune Study, got {study!r}.")
            if len(study.directions) != 1:
                raise ValueError(
                    f"`study` must have one objective, got directions {study.directions}."
                )
            if study.space is not None and study.space != space:
                raise ValueError(
                    "`study` declares a different space than `space`. Create the study "
                    "without a space or with the same one."
                )
        if executor is not None and not callable(getattr(executor, "submit", None)):
            raise TypeError(f"`executor` must have a submit(fn, *args) method, got {executor!r}.")
        if workdir is not None and not isinstance(workdir, str | Path):
            raise TypeError(f"`workdir` must be a path or None, got {workdir!r}.")
        self.train_fn = train_fn
        self.space = space
        self.config = config
        self.study = study if study is not None else create_study(storage="memory")
        self.executor = executor
        self.workdir = Path(workdir) if workdir is not None else None

    # replay -----------------------------------------------------------------------------------
    replay_schedule = staticmethod(replay_schedule)

    # the run ----------------------------------------------------------------------------------
    def run(self) -> PBTResult:
        """Train the population for ``config.rounds`` rounds; return the result."""
        cfg = self.config
        n = cfg.population_size
        root = (
            self.workdir
            if self.workdir is not None
            else Path(tempfile.mkdtemp(prefix="slimtune-pbt-"))
        )
        if root.exists() and any(root.glob("member-*")):
            raise ValueError(
                f"`workdir` {str(root)!r} already holds a PBT run (member-* folders); members "
                "would start from its checkpoints. Pass an empty or new folder."
            )
        own = self.executor is None
        if own:
            _check_picklable(self.train_fn)
        root.mkdir(parents=True, exist_ok=True)
        base = cfg.seed if cfg.seed is not None else spawn_seed(None, 0)  # fresh entropy
        direction = self.study.direction
        trials = [self._new_member(i) for i in range(n)]
        run = _Run(
            pbt=self,
            root=root,
            base_seed=base,
            direction=direction,
            trials=trials,
            hparams=[t.params for t in trials],
        )
        self.study.set_user_attr(
            "pbt_config",
            {**asdict(cfg), "space": self.space.to_json(), "trials": [t.number for t in trials]},
        )
        pool: Any = SpawnPool(cfg.n_workers, timeout=cfg.step_timeout) if own else self.executor
        try:
            for r in range(cfg.rounds):
                run.train_round(pool, r)
                if r < cfg.rounds - 1:
                    run.exploit_and_explore(r)
        except BaseException as err:
            run.abandon(err)
            raise
        finally:
            if own:
                pool.shutdown(wait=True)
        return run.finish()

    def _new_member(self, member: int) -> Trial:
        trial = self.study.ask()
        params: dict[str, Any] = {}
        for name in self.space:
            if self.space.is_active(name, params):
                params[name] = trial.suggest(name, self.space[name])
        trial.set_user_attr("pbt_member", member)
        return trial


@dataclass
class _Run:
    pbt: PBT
    root: Path
    base_seed: int
    direction: str
    trials: list[Trial]
    hparams: list[dict[str, Any]]
    scores: list[float | None] = field(default_factory=list)
    progress: list[int] = field(default_factory=list)
    schedules: list[list[Segment]] = field(default_factory=list)
    member_events: list[list[dict[str, Any]]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.trials)
        self.scores = [None] * n
        self.progress = [0] * n
        self.schedules = [[] for _ in range(n)]
        self.member_events = [[] for _ in range(n)]
        for i in range(n):
            self.ckpt(i).mkdir(parents=True, exist_ok=True)

    def ckpt(self, member: int) -> Path:
        return self.root / f"member-{member}" / "checkpoint"

    def seed(self, member: int, rnd: int) -> int:
        ss = np.random.SeedSequence([self.base_seed, 2, member, rnd])
        return int(ss.generate_state(1, dtype=np.uint64)[0] & _MAX_SEED)

    def _event(self, member: int, event: dict[str, Any]) -> None:
        self.events.append({"member": member, **event})
        self.member_events[member].append(event)
        self.trials[member].set_user_attr(EVENTS_KEY, self.member_events[member])

    # training ---------------------------------------------------------------------------------
    def _launch(self, pool: Any, member: int, rnd: int) -> Future[Any]:
        work = self.root / f"member-{member}" / "work"
        copy_checkpoint(self.ckpt(member), work)
        step = MemberStep(
            hparams=dict(self.hparams[member]),
            checkpoint_dir=str(work),
            steps=self.pbt.config.interval,
            start_step=self.progress[member],
            member=member,
            seed=self.seed(member, rnd),
        )
        future: Future[Any] = pool.submit(_call_train, self.pbt.train_fn, step)
        return future

    def _commit(self, member: int) -> None:
        ckpt = self.ckpt(member)
        old = ckpt.with_name("checkpoint.old")
        if old.exists():
            shutil.rmtree(old)
        ckpt.rename(old)
        (self.root / f"member-{member}" / "work").rename(ckpt)
        shutil.rmtree(old)

    def train_round(self, pool: Any, rnd: int) -> None:
        cfg = self.pbt.config
        attempts = [0] * len(self.trials)
        running: dict[Future[Any], int] = {}
        for i in range(len(self.trials)):
            running[self._launch(pool, i, rnd)] = i
        ok = 0
        last_error = ""
        while running:
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                i = running.pop(fut)
                error: str | None = None
                score = math.nan
                try:
                    score = float(fut.result())
                except BaseException as err:
                    error = f"{type(err).__name__}: {err}"
                if error is None and not math.isfinite(score):
                    error = f"train_fn returned a non-finite score {score!r}"
                if error is None:
                    self._succeeded(i, rnd, score)
                    ok += 1
                    continue
                attempts[i] += 1
                last_error = error
                logger.warning("PBT member %d failed in round %d: %s", i, rnd, error)
                self._event(
                    i, {"kind": "failure", "round": rnd, "attempt": attempts[i], "error": error}
                )
                if attempts[i] <= cfg.max_restarts:
                    running[self._launch(pool, i, rnd)] = i
                else:
                    self.scores[i] = None
        if ok == 0:
            raise PBTError(
                f"every member failed in round {rnd} after {cfg.max_restarts} restarts each "
                f"(last error: {last_error}); see the 'pbt_events' user attributes of study "
                f"{self.pbt.study.name!r}."
            )

    def abandon(self, err: BaseException) -> None:
        """Mark the members' trials FAILED after the run stopped on ``err``."""
        for trial in self.trials:
            try:
                self.pbt.study.tell(trial, error=err)
            except SlimtuneError:  # already finished
                continue

    def _succeeded(self, member: int, rnd: int, score: float) -> None:
        cfg = self.pbt.config
        self._commit(member)
        self.schedules[member].append(
            Segment(
                start_step=self.progress[member],
                steps=cfg.interval,
                hparams=dict(self.hparams[member]),
                seed=self.seed(member, rnd),
                member=member,
                round=rnd,
            )
        )
        self.progress[member] += cfg.interval
        self.scores[member] = score
        trial = self.trials[member]
        trial.report((rnd + 1) * cfg.interval, score)
        trial.set_user_attr(SCHEDULE_KEY, [s.to_json() for s in self.schedules[member]])

    # exploit and explore ----------------------------------------------------------------------
    def exploit_and_explore(self, rnd: int) -> None:
        cfg = self.pbt.config
        rng = np.random.default_rng([self.base_seed, 1, rnd])
        pairs = select_exploits(self.scores, n=cfg.n_exploit(), direction=self.direction, rng=rng)
        for loser, winner in pairs:
            source_digest = checkpoint_digest(self.ckpt(winner))
            copied = copy_checkpoint(self.ckpt(winner), self.ckpt(loser))
            old = dict(self.hparams[loser])
            self.hparams[loser] = explore(self.hparams[winner], self.pbt.space, config=cfg, rng=rng)
            self.schedules[loser] = list(self.schedules[winner])
            self.progress[loser] = self.progress[winner]
            self.scores[loser] = self.scores[winner]
            self._event(
                loser,
                {
                    "kind": "exploit",
                    "round": rnd,
                    "source": winner,
                    "source_sha256": source_digest,
                    "copied_sha256": copied,
                    "old_hparams": old,
                    "source_hparams": dict(self.hparams[winner]),
                    "new_hparams": dict(self.hparams[loser]),
                },
            )
            logger.info("PBT round %d: member %d exploits member %d", rnd, loser, winner)

    def finish(self) -> PBTResult:
        study = self.pbt.study
        for i, trial in enumerate(self.trials):
            trial.set_user_attr("pbt_final_hparams", self.hparams[i])
            if self.scores[i] is None:
                study.tell(trial, state=TrialState.FAILED)
            else:
                study.tell(trial, self.scores[i])
        return PBTResult(
            study=study,
            direction=self.direction,
            trial_numbers=[t.number for t in self.trials],
            scores=list(self.scores),
            schedules=[list(s) for s in self.schedules],
            events=list(self.events),
            checkpoint_dirs=[self.ckpt(i) for i in range(len(self.trials))],
            hparams=[dict(h) for h in self.hparams],
        )
