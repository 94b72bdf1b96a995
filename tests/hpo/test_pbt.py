from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import slimtune
from slimtune import Categorical, Conditional, Float, Int, SearchSpace, TrialState
from slimtune.executors import InlineExecutor, ProcessExecutor
from slimtune.hpo import (
    PBT,
    PBTConfig,
    PBTError,
    checkpoint_digest,
    explore,
    load_checkpoint,
    load_training_state,
    replay_schedule,
    save_training_state,
    schedule_of,
    select_exploits,
)
from tests.hpo import _members, _tasks

SPACE = SearchSpace({"lr": Float(0.001, 0.3, log=True), "momentum": Float(0.0, 0.9)})


def _study(seed=0):
    return slimtune.create_study(storage="memory", seed=seed)


def _inline_pbt(tmp_path, seed=0, **kw):
    _members.LOG.clear()
    config = PBTConfig(population_size=4, interval=4, rounds=4, quantile=0.25, seed=seed, **kw)
    study = slimtune.create_study(storage="memory", seed=seed)
    pbt = PBT(
        _members.train_linear,
        SPACE,
        config=config,
        study=study,
        executor=InlineExecutor(),
        workdir=tmp_path / "pbt",
    )
    return pbt.run()


def test_exploit_copies_weights_exactly(tmp_path):
    result = _inline_pbt(tmp_path)
    exploits = [e for e in result.events if e["kind"] == "exploit"]
    assert len(exploits) == 3  # one per round but the last (quantile 0.25 of 4)
    for e in exploits:
        assert e["source_sha256"] == e["copied_sha256"]
        # the winner's checkpoint at the end of that round ...
        src = [
            r
            for r in _members.LOG
            if r["member"] == e["source"] and r["end_digest"] == e["source_sha256"]
        ]
        # ... is exactly what the loser starts from in the next round
        nxt = [
            r
            for r in _members.LOG
            if r["member"] == e["member"] and r["start_digest"] == e["source_sha256"]
        ]
        assert src and nxt
        assert nxt[0]["start_step"] == src[0]["start_step"] + 4
        assert e["new_hparams"] != e["old_hparams"]
    # hyperparameters were copied then explored from the source's
    e = exploits[0]
    for name, v in e["new_hparams"].items():
        src = e["source_hparams"][name]
        assert (
            v == pytest.approx(src * 0.8)
            or v == pytest.approx(src * 1.2)
            or SPACE[name].contains(v)
        )


def test_schedule_is_recorded_and_replays_to_the_same_weights(tmp_path):
    result = _inline_pbt(tmp_path)
    best = result.best_member
    trial = result.trial(best)
    assert trial.state is TrialState.COMPLETE
    assert trial.value == result.best_score
    assert sorted(trial.intermediate_values) == [4, 8, 12, 16]
    schedule = schedule_of(trial)
    assert schedule == result.schedules[best]
    assert [s.start_step for s in schedule] == [0, 4, 8, 12]
    score = replay_schedule(_members.train_linear, trial, tmp_path / "replay")
    assert score == result.best_score
    assert checkpoint_digest(tmp_path / "replay") == checkpoint_digest(result.checkpoint_dirs[best])
    assert PBT.replay_schedule is replay_schedule
    # every member's trial has its schedule; the initial population came from the study
    for m in range(4):
        t = result.trial(m)
        assert t.user_attrs["pbt_member"] == m
        assert len(schedule_of(t)) == 4
        assert SPACE.contains(t.params)


def test_same_seed_same_run(tmp_path):
    a = _inline_pbt(tmp_path / "a", seed=3)
    b = _inline_pbt(tmp_path / "b", seed=3)
    assert a.scores == b.scores
    assert a.hparams == b.hparams


def test_population_improves_over_rounds(tmp_path):
    result = _inline_pbt(tmp_path)
    first = [result.trial(m).intermediate_values[4] for m in range(4)]
    assert result.best_score < min(first)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("executor", "synchronous"), [("own", True), ("ProcessExecutor", True), ("own", False)]
)
def test_member_death_does_not_end_the_population(tmp_path, monkeypatch, executor, synchronous):
    monkeypatch.setenv(_tasks.CRASH_ENV, str(tmp_path / "crashed"))
    url = f"sqlite:///{tmp_path}/pbt.db"
    study = slimtune.create_study(storage=url, seed=0)
    config = PBTConfig(
        population_size=4, interval=4, rounds=3, n_workers=2, seed=0, synchronous=synchronous
    )
    pool = None if executor == "own" else ProcessExecutor(2)
    try:
        result = PBT(
            _tasks.train_quadratic,
            SPACE,
            config=config,
            study=study,
            executor=pool,
            workdir=tmp_path / "w",
        ).run()
    finally:
        if pool is not None:
            pool.shutdown()
    assert (tmp_path / "crashed").exists()
    failures = [e for e in result.events if e["kind"] == "failure"]
    assert len(failures) == 1
    assert failures[0]["member"] == 1 and "WorkerLostError" in failures[0]["error"]
    assert all(s is not None and math.isfinite(s) for s in result.scores)
    trials = slimtune.load_study(study.name, storage=url).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    assert trials[1].user_attrs["pbt_events"][0]["kind"] == "failure"
    assert len(trials[1].intermediate_values) == 3  # the retried round was reported once
    exploits = [e for e in result.events if e["kind"] == "exploit"]
    assert all(e["source_sha256"] == e["copied_sha256"] for e in exploits)
    if not synchronous:  # finishing order decides asynchronous runs: no exact comparison
        assert all(sum(seg.steps for seg in s) == 12 for s in result.schedules)
        return
    assert len(exploits) == 2
    # the run is the same as one without the crash: the retry restarted from the checkpoint
    monkeypatch.delenv(_tasks.CRASH_ENV)
    calm = PBT(
        _tasks.train_quadratic,
        SPACE,
        config=config,
        study=slimtune.create_study(storage="memory", seed=0),
        executor=InlineExecutor(),
        workdir=tmp_path / "calm",
    ).run()
    assert calm.scores == result.scores


def test_a_member_failing_every_retry_is_reseeded_by_exploit(tmp_path):
    calls = {"n": 0}

    def flaky(step):
        if step.member == 0 and step.start_step == 4:
            calls["n"] += 1
            raise RuntimeError("boom")
        return _members.train_linear(step)

    config = PBTConfig(population_size=4, interval=4, rounds=3, max_restarts=1, seed=0)
    result = PBT(
        flaky, SPACE, study=_study(), config=config, executor=InlineExecutor(), workdir=tmp_path
    ).run()
    assert calls["n"] == 2  # the first try and one restart
    kinds = [(e["member"], e["kind"]) for e in result.events]
    assert kinds.count((0, "failure")) == 2
    assert (0, "exploit") in kinds  # ranked last, then re-seeded from a top member
    assert result.scores[0] is not None


def test_select_exploits_on_hand_made_scores():
    rng = np.random.default_rng(0)
    pairs = select_exploits([0.5, 0.1, 0.9, 0.3], n=1, direction="minimize", rng=rng)
    assert pairs == [(2, 1)]
    pairs = select_exploits([0.5, 0.1, 0.9, 0.3], n=1, direction="maximize", rng=rng)
    assert pairs == [(1, 2)]
    pairs = select_exploits(
        [0.5, None, 0.9, 0.3, float("nan"), 0.2], n=2, direction="minimize", rng=rng
    )
    assert sorted(p[0] for p in pairs) == [1, 4]
    assert all(p[1] in (5, 3) for p in pairs)
    assert select_exploits([None, None], n=1, direction="minimize", rng=rng) == []
    pairs = select_exploits([0.1, None, float("nan"), None], n=2, direction="minimize", rng=rng)
    assert sorted(pairs) == [(2, 0), (3, 0)]  # only finite scores are copied


def test_explore_perturbs_or_resamples_inside_the_space():
    space = SearchSpace(
        {
            "lr": Float(1e-4, 1.0, log=True),
            "layers": Int(1, 8),
            "act": Categorical(["relu", "gelu", "tanh"]),
            "opt": Categorical(["sgd", "adam"]),
            "momentum": Conditional(Float(0.0, 0.99), parent="opt", values=["sgd"]),
        }
    )
    params = {"lr": 0.01, "layers": 4, "act": "gelu", "opt": "adam"}
    cfg = PBTConfig(resample_probability=0.0, perturb_factors=(0.5, 2.0))
    rng = np.random.default_rng(0)
    for _ in range(20):
        new = explore(params, space, config=cfg, rng=rng)
        assert space.contains(new)
        assert new["lr"] in (pytest.approx(0.005), pytest.approx(0.02))
        assert new["layers"] in (2, 8)
        assert new["act"] in ("relu", "tanh")
        if new["opt"] == "sgd":
            assert "momentum" in new  # became active: sampled
    resampled = explore(params, space, config=PBTConfig(resample_probability=1.0), rng=rng)
    assert space.contains(resampled)


def test_training_state_round_trips_without_pickle(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(5, 3)).sum().backward()
        opt.step()
    save_training_state(tmp_path, model, opt, metadata={"epoch": 3})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta.json", "tensors.safetensors"]
    model2 = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    opt2 = torch.optim.Adam(model2.parameters(), lr=0.5)
    assert load_training_state(tmp_path, model2, opt2) == {"epoch": 3}
    for a, b in zip(model.state_dict().values(), model2.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    x = torch.randn(5, 3)
    for o, m in ((opt, model), (opt2, model2)):
        o.zero_grad()
        m(x).sum().backward()
        o.step()
    for a, b in zip(model.parameters(), model2.parameters(), strict=True):
        assert torch.equal(a, b)
    assert load_checkpoint(tmp_path / "empty") is None


def test_bad_configuration_is_rejected():
    with pytest.raises(ValueError, match="population_size"):
        PBTConfig(population_size=1)
    with pytest.raises(ValueError, match="quantile"):
        PBTConfig(quantile=0.7)
    with pytest.raises(ValueError, match="perturb_factors"):
        PBTConfig(perturb_factors=(0.8, -1.0))
    with pytest.raises(TypeError, match="space"):
        PBT(_members.train_linear, [1, 2], study=_study())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="study"):
        PBT(_members.train_linear, SPACE, study="memory")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="one objective"):
        two = slimtune.create_study(storage="memory", directions=["minimize", "maximize"])
        PBT(_members.train_linear, SPACE, study=two)
    with pytest.raises(TypeError, match="executor"):
        PBT(_members.train_linear, SPACE, study=_study(), executor=object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="schedule"):
        replay_schedule(_members.train_linear, [], ".")


def test_any_executor_with_submit_runs_the_members(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    config = PBTConfig(population_size=4, interval=2, rounds=2, seed=0)
    with ThreadPoolExecutor(2) as pool:
        result = PBT(
            _members.train_linear,
            SPACE,
            study=_study(),
            config=config,
            executor=pool,
            workdir=tmp_path,
        ).run()
    assert all(s is not None for s in result.scores)
    assert all(len(s) == 2 for s in result.schedules)


def test_a_train_function_that_does_not_pickle_is_rejected_up_front():
    with pytest.raises(TypeError, match="module level"):
        PBT(lambda step: 0.0, SPACE, study=_study(), config=PBTConfig(seed=0)).run()


def test_a_population_that_fails_entirely_raises_and_fails_its_trials(tmp_path):
    def broken(step):
        raise RuntimeError("no data")

    study = slimtune.create_study(storage="memory")
    config = PBTConfig(population_size=2, rounds=2, max_restarts=0, seed=0)
    with pytest.raises(PBTError, match="no data"):
        PBT(
            broken, SPACE, config=config, study=study, executor=InlineExecutor(), workdir=tmp_path
        ).run()
    assert [t.state for t in study.trials] == [TrialState.FAILED] * 2
    assert study.user_attrs["pbt_config"]["population_size"] == 2


def test_a_used_workdir_is_refused(tmp_path):
    config = PBTConfig(population_size=2, rounds=1, seed=0)
    PBT(
        _members.train_linear,
        SPACE,
        study=_study(),
        config=config,
        executor=InlineExecutor(),
        workdir=tmp_path,
    ).run()
    study = slimtune.create_study(storage="memory")
    with pytest.raises(ValueError, match="already holds a PBT run"):
        PBT(
            _members.train_linear,
            SPACE,
            config=config,
            study=study,
            executor=InlineExecutor(),
            workdir=tmp_path,
        ).run()
    assert study.trials == []  # refused before anything was created


def test_asynchronous_pbt_trains_every_member_to_the_end(tmp_path):
    config = PBTConfig(population_size=4, interval=4, rounds=4, seed=0, synchronous=False)
    study = slimtune.create_study(storage="memory", seed=0)
    result = PBT(
        _members.train_linear,
        SPACE,
        config=config,
        study=study,
        executor=InlineExecutor(),
        workdir=tmp_path / "pbt",
    ).run()
    assert all(s is not None and math.isfinite(s) for s in result.scores)
    for schedule in result.schedules:  # contiguous lineages of 16 steps
        assert [seg.start_step for seg in schedule] == [0, 4, 8, 12]
    exploits = [e for e in result.events if e["kind"] == "exploit"]
    assert exploits
    assert all(e["source_sha256"] == e["copied_sha256"] for e in exploits)
    best = result.trial(result.best_member)
    assert replay_schedule(_members.train_linear, best, tmp_path / "replay") == best.value
    assert study.user_attrs["pbt_config"]["synchronous"] is False


def test_explore_keeps_step_lattices_and_ranges_through_zero():
    space = SearchSpace(
        {"a": Float(0.0, 1.0, step=0.1), "c": Float(-1.0, 1.0), "d": Int(0, 10, step=2)}
    )
    cfg = PBTConfig(resample_probability=0.0, perturb_factors=(0.8, 1.2))
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(40):
        new = explore({"a": 0.5, "c": 0.0, "d": 4}, space, config=cfg, rng=rng)
        assert space.contains(new)
        assert round(new["a"], 9) in (0.3, 0.7)  # +- 20% of the range: it reaches zero
        assert new["c"] == pytest.approx(0.4) or new["c"] == pytest.approx(-0.4)
        seen.add(new["d"])
    assert seen == {2, 6}


def test_own_pool_is_a_process_executor_with_the_step_timeout(tmp_path, monkeypatch):
    from slimtune.hpo import _pbt

    made = []

    class Recorder(InlineExecutor):
        def __init__(self, max_workers, *, timeout):
            made.append((max_workers, timeout))
            super().__init__()

    monkeypatch.setattr(_pbt, "ProcessExecutor", Recorder)
    config = PBTConfig(
        population_size=4, interval=2, rounds=2, n_workers=3, step_timeout=7.5, seed=0
    )
    result = PBT(
        _members.train_linear, SPACE, study=_study(), config=config, workdir=tmp_path
    ).run()
    assert made == [(3, 7.5)] and len(result.scores) == 4
