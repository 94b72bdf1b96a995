"""Rich tables and one-line formatting for the command line (the only module here that draws)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from slimtune._trial import FrozenTrial, TrialState

__all__ = [
    "best_table",
    "fmt_duration",
    "fmt_params",
    "fmt_value",
    "fmt_values",
    "one_line",
    "pareto_table",
    "print_error",
    "studies_table",
    "top_trials_table",
    "trials_table",
]

STATE_STYLES = {
    TrialState.COMPLETE: "green",
    TrialState.FAILED: "red",
    TrialState.STOPPED: "yellow",
    TrialState.RUNNING: "cyan",
}

_ERROR_WIDTH = 60


# one-line formatting ------------------------------------------------------------------------------
def fmt_value(value: Any) -> str:
    """A number in at most 6 significant digits; ``-`` for none."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def fmt_values(values: Sequence[float] | None) -> str:
    if values is None:
        return "-"
    return ", ".join(fmt_value(v) for v in values)


def _fmt_param(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def fmt_params(params: Mapping[str, Any]) -> str:
    """``name=value`` pairs in suggestion order; floats in 4 significant digits."""
    return ", ".join(f"{k}={_fmt_param(v)}" for k, v in params.items()) or "-"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(seconds, 60)
    if minutes < 60:
        return f"{int(minutes)}m{int(sec):02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{int(hours)}h{int(minutes):02d}m"


def _fmt_time(when: datetime) -> str:
    return when.astimezone().strftime("%Y-%m-%d %H:%M")


def one_line(message: str) -> str:
    """The first non-empty line of ``message`` (and the next one when the first ends in ':')."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return ""
    if lines[0].endswith(":") and len(lines) > 1:
        return f"{lines[0]} {lines[1]}"
    return lines[0]


def _short_error(trial: FrozenTrial) -> str:
    if trial.error is None:
        return ""
    text = one_line(f"{trial.error.get('type', 'Error')}: {trial.error.get('message', '')}")
    return text if len(text) <= _ERROR_WIDTH else text[: _ERROR_WIDTH - 1] + "…"


def _state(state: TrialState) -> Text:
    return Text(state.value, style=STATE_STYLES.get(state, ""))


def _value_header(directions: Sequence[str]) -> str:
    if len(directions) == 1:
        return f"value ({directions[0][:3]})"
    return f"values ({', '.join(d[:3] for d in directions)})"


def print_error(console: Console, message: str) -> None:
    """``error: ...`` in red on one line, never wrapped and never read as markup."""
    text = Text("error: ", style="bold red")
    text.append(one_line(message))
    console.print(text, soft_wrap=True, highlight=False)


# tables -------------------------------------------------------------------------------------------
def studies_table(rows: Sequence[Mapping[str, Any]], *, title: str) -> Table:
    """Rows with name, directions, n_trials, n_complete, best (text) and created (datetime)."""
    table = Table(title=title, title_justify="left")
    table.add_column("study", style="bold")
    table.add_column("directions")
    table.add_column("trials", justify="right")
    table.add_column("complete", justify="right")
    table.add_column("best")
    table.add_column("created")
    for row in rows:
        table.add_row(
            str(row["name"]),
            ", ".join(row["directions"]),
            str(row["n_trials"]),
            str(row["n_complete"]),
            str(row["best"]),
            _fmt_time(row["created"]),
        )
    return table


def trials_table(
    trials: Sequence[FrozenTrial], directions: Sequence[str], *, title: str, caption: str | None
) -> Table:
    table = Table(title=title, title_justify="left", caption=caption, caption_justify="left")
    table.add_column("#", justify="right")
    table.add_column("state")
    table.add_column(_value_header(directions), justify="right")
    table.add_column("params")
    table.add_column("duration", justify="right")
    table.add_column("error", style="red")
    for t in trials:
        table.add_row(
            str(t.number),
            _state(t.state),
            fmt_values(t.values),
            fmt_params(t.params),
            fmt_duration(t.duration),
            _short_error(t),
        )
    return table


def best_table(trial: FrozenTrial, direction: str, *, title: str) -> Table:
    """One trial as a two-column sheet: trial, value, each parameter, each user attribute."""
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("trial", str(trial.number))
    table.add_row(f"value ({direction})", fmt_values(trial.values))
    for k, v in trial.params.items():
        table.add_row(f"params.{k}", _fmt_param(v))
    for k, v in trial.user_attrs.items():
        table.add_row(f"user_attrs.{k}", _fmt_param(v))
    table.add_row("duration", fmt_duration(trial.duration))
    return table


def pareto_table(trials: Sequence[FrozenTrial], directions: Sequence[str], *, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    for i, d in enumerate(directions):
        table.add_column(f"values_{i} ({d[:3]})", justify="right")
    table.add_column("params")
    for t in trials:
        values: Sequence[float | None] = t.values or [None] * len(directions)
        table.add_row(str(t.number), *(fmt_value(v) for v in values), fmt_params(t.params))
    return table


def top_trials_table(trials: Sequence[FrozenTrial], *, title: str) -> Table:
    """The demo's leaderboard: rank, trial, validation accuracy and error, parameters."""
    table = Table(title=title, title_justify="left")
    table.add_column("rank", justify="right")
    table.add_column("#", justify="right")
    table.add_column("val accuracy", justify="right", style="green")
    table.add_column("val error", justify="right")
    table.add_column("params")
    for rank, t in enumerate(trials, start=1):
        error = t.values[0] if t.values else None
        accuracy = "-" if error is None else f"{100 * (1 - error):.2f}%"
        table.add_row(str(rank), str(t.number), accuracy, fmt_value(error), fmt_params(t.params))
    return table
