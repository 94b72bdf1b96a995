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
    capsys.readouterr()
    supernet.main(["--report", str(out)])  # re-prints the tables without training
    printed = capsys.readouterr().out
    assert "tau after log(params) regressed out" in printed
    assert "lr schedule cosine" in printed
