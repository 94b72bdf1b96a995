from __future__ import annotations

import math

import pytest
import torch

from slimtune import create_study
from slimtune.executors import InlineExecutor
from slimtune.hpo import PBT, MemberStep, PBTConfig, schedule_of
from slimtune.nas import MLPSupernet, Supernet
from slimtune.pipeline import SupernetTrainer
from slimtune.space import Float, SearchSpace


def make_supernet() -> Supernet:
    torch.manual_seed(0)
    return MLPSupernet(16, 5, width_choices=(8, 16), depth_choices=(1, 2))


def make_data() -> tuple[list, list]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(384, 16, generator=g)
    y = x[:, :5].argmax(dim=1)
    batches = [(x[i : i + 32], y[i : i + 32]) for i in range(0, 384, 32)]
    return batches[:8], batches[8:]


def test_pbt_tunes_supernet_training_hyperparameters(tmp_path) -> None:
    space = SearchSpace({"lr": Float(3e-3, 3e-2, log=True), "temperature": Float(1.0, 4.0)})
    pbt = PBT(
        SupernetTrainer(make_supernet, make_data),
        space,
        study=create_study(storage="memory", seed=0),
        config=PBTConfig(population_size=2, rounds=3, interval=2, quantile=0.5, seed=0),
        executor=InlineExecutor(),
        workdir=tmp_path,
    )
    result = pbt.run()
    assert 0.0 <= result.best_score < 0.6  # chance is 0.8 on five classes
    trial = result.trial(result.best_member)
    schedule = schedule_of(trial)
    assert sum(seg.steps for seg in schedule) == 6
    assert all(space.contains(seg.hparams) for seg in schedule)


def test_supernet_trainer_needs_a_learning_rate(tmp_path) -> None:
    step = MemberStep(
        hparams={}, checkpoint_dir=str(tmp_path), steps=1, start_step=0, member=0, seed=0
    )
    with pytest.raises(KeyError, match="'lr'"):
        SupernetTrainer(make_supernet, make_data)(step)


def test_supernet_trainer_resumes_from_its_checkpoint(tmp_path) -> None:
    trainer = SupernetTrainer(make_supernet, make_data)
    first = trainer(MemberStep({"lr": 1e-2}, str(tmp_path), 3, 0, 0, 0))
    second = trainer(MemberStep({"lr": 1e-2}, str(tmp_path), 3, 3, 0, 1))
    assert math.isfinite(first) and second <= first + 0.05


def test_supernet_trainer_scores_the_architectures_it_is_given(tmp_path) -> None:
    net = make_supernet()
    one = (net.smallest_arch(),)
    both = (net.largest_arch(), net.smallest_arch())
    step = MemberStep({"lr": 1e-2}, str(tmp_path / "a"), 2, 0, 0, 0)
    small_only = SupernetTrainer(make_supernet, make_data, score_archs=one)(step)
    step_b = MemberStep({"lr": 1e-2}, str(tmp_path / "b"), 2, 0, 0, 0)
    default = SupernetTrainer(make_supernet, make_data)(step_b)
    step_c = MemberStep({"lr": 1e-2}, str(tmp_path / "c"), 2, 0, 0, 0)
    explicit = SupernetTrainer(make_supernet, make_data, score_archs=both)(step_c)
    assert default == explicit  # the default is the largest and the smallest
    assert math.isfinite(small_only) and small_only != default
    with pytest.raises(ValueError, match="score_archs"):
        SupernetTrainer(make_supernet, make_data, score_archs=())
    with pytest.raises(ValueError, match="score_archs"):
        SupernetTrainer(make_supernet, make_data, score_archs=("largest",))  # type: ignore[arg-type]
