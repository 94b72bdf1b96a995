from __future__ import annotations

import json

import pytest
import torch

from bench import supernet


def test_supernet_quick_completes_and_writes_json(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "supernet.json"
    supernet.main(["--quick", "--json", str(out)])
    data = json.loads(out.read_text())
    (result,) = data["results"]
    assert len(result["rows"]) == 6
    assert set(result["search"]) == {"evolution", "random"}
    assert "Kendall tau" in data["table"]
    assert data["config"]["lr_schedule"] == "cosine"
    assert data["config"]["mlp_norm"] == "batch"
    # front points are judged on the validation half the search did not score
    assert all("inherited_heldout" in f for f in result["front_retrained"])
    capsys.readouterr()
    supernet.main(["--report", str(out)])  # re-prints the tables without training
    printed = capsys.readouterr().out
    assert "tau after log(params) regressed out" in printed
    assert "lr schedule cosine" in printed
    assert "held-out half" in printed
    assert "Front points within 1.5 points of retraining: digits mlp " in printed


def test_validation_halves_are_disjoint_stratified_and_cover_the_split() -> None:
    from bench._supernet_tasks import digits_task, split_validation

    data = digits_task().data
    search, heldout = split_validation(data, seed=0)
    assert len(search.x_val) + len(heldout.x_val) == len(data.x_val)
    assert search.x_train is data.x_train and heldout.x_train is data.x_train
    rows = {tuple(x.flatten().tolist()) for x in search.x_val}
    assert not rows & {tuple(x.flatten().tolist()) for x in heldout.x_val}
    for c in range(10):
        a, b = int((search.y_val == c).sum()), int((heldout.y_val == c).sum())
        assert abs(a - b) <= 1


def test_validation_halves_keep_copies_of_one_image_together() -> None:
    from bench._supernet_tasks import make_task, split_validation

    task = make_task("noisy-digits-2x")
    assert task.val_groups is not None and len(task.data.x_val) == 2 * 539
    search, heldout = split_validation(task.data, seed=0, groups=task.val_groups)
    assert len(search.x_val) + len(heldout.x_val) == len(task.data.x_val)
    # each source image's two copies sit on one side: the sides share no source image
    data = task.data
    indexed = type(data)(
        data.x_train, data.y_train, torch.arange(len(data.y_val)), data.y_val, data.num_classes
    )
    a, b = split_validation(indexed, seed=0, groups=task.val_groups)
    groups_a = set(task.val_groups[a.x_val].tolist())
    assert groups_a and not groups_a & set(task.val_groups[b.x_val].tolist())
    with pytest.raises(ValueError, match="noisy-digits-Nx"):
        make_task("noisy")


def test_task_epochs_replace_the_defaults_for_their_task_only() -> None:
    cfg = supernet.PRESETS["full"]
    assert "noisy-digits-6x" in cfg["tasks"]
    six = supernet.task_config(cfg, "noisy-digits-6x")
    assert six["epochs"] == {"mlp": 120, "cnn": 20}
    assert six["sa_epochs"] == {"mlp": 60, "cnn": 10}
    assert supernet.task_config(cfg, "digits")["epochs"] == cfg["epochs"]
    # the preset itself is left alone
    assert cfg["epochs"] == {"mlp": 400, "cnn": 60}


def test_epochs_on_the_command_line_hold_for_every_task(tmp_path) -> None:
    out = tmp_path / "supernet.json"
    supernet.main(["--quick", "--epochs", "1,1", "--json", str(out)])
    data = json.loads(out.read_text())
    assert data["config"]["task_epochs"] == {}
    (result,) = data["results"]
    assert (result["epochs"], result["sa_epochs"]) == (1, 1)


def test_front_points_can_also_be_fine_tuned(tmp_path) -> None:
    out = tmp_path / "supernet.json"
    supernet.main(["--quick", "--finetune-epochs", "1", "--json", str(out)])
    data = json.loads(out.read_text())
    (result,) = data["results"]
    assert all(0.0 < f["finetuned_heldout"] <= 1.0 for f in result["front_retrained"])
    assert "difference after fine-tuning (points)" in data["table"]
    with pytest.raises(SystemExit):
        supernet.main(["--quick", "--finetune-epochs", "-1"])
