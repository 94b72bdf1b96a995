from __future__ import annotations

import json

import pytest

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
