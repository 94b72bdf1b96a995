"""Export of a study's trials to CSV, JSON and a pandas DataFrame."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from slimtune._trial import FrozenTrial
from slimtune.exceptions import MissingExtraError

__all__ = ["trials_to_csv", "trials_to_dataframe", "trials_to_json", "trials_to_rows"]


def trials_to_rows(trials: Sequence[FrozenTrial], n_objectives: int) -> list[dict[str, Any]]:
    """Flat rows: number, state, value(s), params_*, user_attrs_*, times, error."""
    rows = []
    for t in trials:
        row: dict[str, Any] = {"number": t.number, "state": t.state.value}
        vals = t.values if t.values is not None else [None] * n_objectives
        if n_objectives == 1:
            row["value"] = vals[0]
        else:
            for i, v in enumerate(vals):
                row[f"values_{i}"] = v
        for k, v in t.params.items():
            row[f"params_{k}"] = v
        for k, v in t.user_attrs.items():
            row[f"user_attrs_{k}"] = v if isinstance(v, str | int | float | bool) else json.dumps(v)
        if t.constraints is not None:
            row["constraints"] = json.dumps(t.constraints)
        row["feasible"] = t.feasible
        row["seed"] = t.seed
        row["datetime_start"] = t.datetime_start.isoformat()
        row["datetime_complete"] = t.datetime_complete.isoformat() if t.datetime_complete else None
        row["duration"] = t.duration
        row["error"] = (
            None if t.error is None else f"{t.error.get('type')}: {t.error.get('message')}"
        )
        rows.append(row)
    return rows


def _columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    cols: list[str] = []
    seen: set[str] = set()
    for row in rows:
        for k in row:
            if k not in seen:
                seen.add(k)
                cols.append(k)
    return cols


def trials_to_csv(trials: Sequence[FrozenTrial], n_objectives: int) -> str:
    rows = trials_to_rows(trials, n_objectives)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=_columns(rows) or ["number"], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
    return buf.getvalue()


def trials_to_json(study_info: dict[str, Any], trials: Sequence[FrozenTrial]) -> str:
    return json.dumps({**study_info, "trials": [t.to_dict() for t in trials]}, indent=2)


def trials_to_dataframe(trials: Sequence[FrozenTrial], n_objectives: int) -> Any:
    try:
        import pandas as pd
    except ImportError as err:
        raise MissingExtraError(
            "to_dataframe() needs pandas. Install it with: pip install pandas "
            "(or pip install 'slimtune[bench]')."
        ) from err
    rows = trials_to_rows(trials, n_objectives)
    return pd.DataFrame(rows, columns=_columns(rows) or ["number"])
