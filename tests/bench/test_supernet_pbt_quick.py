from __future__ import annotations

import json

import pytest

from bench import supernet_pbt


def test_supernet_pbt_quick_completes_and_writes_json(tmp_path) -> None:
    out = tmp_path / "supernet_pbt.json"
    supernet_pbt.main(["--quick", "--json", str(out), "--standalone", ""])
    data = json.loads(out.read_text())
    (result,) = data["results"]
    for label in ("default", "random", "pbt"):
        assert 0.0 <= result[label]["score"] <= 1.0
        assert 0.0 < result[label]["mean_inherited_heldout"] <= 1.0
    assert result["pbt"]["hparams"] is not None and "lr" in result["pbt"]["hparams"]
    assert "| pbt" in data["table"] and "| random" in data["table"]


def test_standalone_accuracies_are_matched_by_architecture(tmp_path) -> None:
    archs = [{"depth": 1, "width0": 8}, {"depth": 2, "width0": 16, "width1": 8}]
    saved = {
        "results": [
            {
                "task": "digits",
                "family": "mlp",
                "rows": [
                    {"arch": archs[1], "standalone": [0.9, 0.8]},
                    {"arch": archs[0], "standalone": [0.5, 0.7]},
                ],
            }
        ]
    }
    path = tmp_path / "supernet_mlp.json"
    path.write_text(json.dumps(saved))
    assert supernet_pbt._standalone(path, archs) == pytest.approx([0.6, 0.85])
    assert supernet_pbt._standalone(path, [*archs, {"depth": 1, "width0": 32}]) is None
    assert supernet_pbt._standalone(tmp_path / "missing.json", archs) is None
