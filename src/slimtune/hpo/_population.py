"""The state of one PBT run: members' checkpoints, scores, schedules and events; the rounds.

:class:`Population` trains the members in synchronous rounds (``train_round`` then
``exploit_and_explore``) or asynchronously (``run_async``: a member exploits as soon as it
finishes a step). Used by :class:`slimtune.hpo.PBT`.
"""

from __future__ import annotations

import logging
import math
import shutil
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from slimtune._rng import _MAX_SEED
from slimtune._trial import FrozenTrial, TrialState
from slimtune.exceptions import SlimtuneError
from slimtune.hpo._checkpoint import checkpoint_digest, copy_checkpoint
from slimtune.hpo._explore import explore, select_exploits
from slimtune.hpo._schedule import SCHEDULE_KEY, MemberStep, Segment, TrainFn

if TYPE_CHECKING:
    from slimtune.hpo._pbt import PBT
    from slimtune.study import Study, Trial

__all__ = ["EVENTS_KEY", "PBTError", "PBTResult", "Population"]

logger = logging.getLogger(__name__)

EVENTS_KEY = "pbt_events"


class PBTError(SlimtuneError, RuntimeError):
    """The whole population failed in a round; nothing is left to exploit."""


def _call_train(train_fn: TrainFn, step: MemberStep) -> float:
    return train_fn(step)


def _outcome(fut: Future[Any]) -> tuple[float, str | None]:
    """``(score, None)`` for a finished member step, ``(nan, reason)`` for a failed one."""
    try:
        score = float(fut.result())
    except KeyboardInterrupt:
        raise
    except BaseException as err:  # SystemExit in a task, a lost worker, ...
        return math.nan, f"{type(err).__name__}: {err}"
    if not math.isfinite(score):
        return math.nan, f"train_fn returned a non-finite score {score!r}"
    return score, None


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


@dataclass
class Population:
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
                score, error = _outcome(fut)
                if error is None:
                    self._succeeded(i, rnd, score)
                    ok += 1
                    continue
                attempts[i] += 1
                last_error = error
                self._failed(i, rnd, attempts[i], error)
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

    def run_async(self, pool: Any) -> None:
        """Asynchronous PBT: each member, when its step ends, exploits a top member if it ranks
        in the bottom quantile of the latest scores, then trains on, until it has trained
        ``rounds * interval`` steps. Decisions depend on the order steps finish, so runs on
        several workers are not reproducible (the schedules still replay)."""
        cfg = self.pbt.config
        n = len(self.trials)
        total = cfg.rounds * cfg.interval
        ticks = [0] * n  # steps this member has trained itself (its seeds and report steps)
        attempts = [0] * n
        running = {self._launch(pool, i, 0): i for i in range(n)}
        last_error = ""
        while running:
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                i = running.pop(fut)
                score, error = _outcome(fut)
                if error is None:
                    self._succeeded(i, ticks[i], score)
                    ticks[i] += 1
                    attempts[i] = 0
                else:
                    attempts[i] += 1
                    last_error = error
                    self._failed(i, ticks[i], attempts[i], error)
                    if attempts[i] <= cfg.max_restarts:
                        running[self._launch(pool, i, ticks[i])] = i
                        continue
                    self.scores[i] = None
                    attempts[i] = 0
                if self.progress[i] >= total:
                    continue
                exploited = self._exploit_async(i, ticks[i], total)
                if self.scores[i] is None and not exploited:
                    continue  # failed for good and nobody to copy: this member stops
                if self.progress[i] < total:
                    running[self._launch(pool, i, ticks[i])] = i
        if all(s is None for s in self.scores):
            raise PBTError(
                f"every member failed after {cfg.max_restarts} restarts (last error: "
                f"{last_error}); see the 'pbt_events' user attributes of study "
                f"{self.pbt.study.name!r}."
            )

    def _exploit_async(self, member: int, tick: int, total: int) -> bool:
        cfg = self.pbt.config
        k = cfg.n_exploit()
        sign = 1.0 if self.direction == "minimize" else -1.0

        def key(j: int) -> tuple[int, float, int]:
            s = self.scores[j]
            return (1, 0.0, j) if s is None else (0, sign * s, j)

        order = sorted(range(len(self.trials)), key=key)
        if member not in order[len(order) - k :]:
            return False
        top = [
            j
            for j in order[:k]
            if j != member and self.scores[j] is not None and self.progress[j] < total
        ]
        if not top:
            return False
        rng = np.random.default_rng([self.base_seed, 3, member, tick])
        self._exploit(member, top[int(rng.integers(len(top)))], tick, rng)
        return True

    def _failed(self, member: int, rnd: int, attempt: int, error: str) -> None:
        logger.warning("PBT member %d failed in round %d: %s", member, rnd, error)
        self._event(member, {"kind": "failure", "round": rnd, "attempt": attempt, "error": error})

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
            self._exploit(loser, winner, rnd, rng)

    def _exploit(self, loser: int, winner: int, rnd: int, rng: np.random.Generator) -> None:
        """``loser`` takes ``winner``'s checkpoint (byte-exact), schedule and progress, and an
        explored copy of its hyperparameters."""
        cfg = self.pbt.config
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
