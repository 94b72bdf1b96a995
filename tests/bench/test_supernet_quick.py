from __future__ import annotations

import json

from bench import supernet


def test_supernet_quick_completes_and_writes_json(tmp_path) -> None:
    out = tmp_path / "supernet.json"
    supernet.main(["--quick", "--json", str(out)])
    data = json.loads(out.read_text())
    (result,) = data["results"]
    assert len(result["rows"]) == 6
    assert set(result["search"]) == {"evolution", "random"}
    assert "Kendall tau" in data["table"]
