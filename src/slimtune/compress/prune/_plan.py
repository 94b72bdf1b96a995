"""``PrunePlan``: the kept channels of every pruned module, as JSON; replay on a fresh model."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from slimtune.compress.prune._apply import apply_entry, current_size, owner
from slimtune.exceptions import PlanMismatchError

__all__ = ["PlanEntry", "PrunePlan", "apply_plan_", "load_pruned", "save_pruned"]

_VERSION = 1
_WEIGHTS = "model.safetensors"
_PLAN = "prune_plan.json"


@dataclass(frozen=True, kw_only=True)
class PlanEntry:
    """Channels ``keep`` (of ``size``) of ``role`` of module or parameter ``name``."""

    name: str
    role: str
    size: int
    keep: tuple[int, ...]
    dim: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "size": self.size,
            "keep": list(self.keep),
            "dim": self.dim,
        }


@dataclass(frozen=True, kw_only=True)
class PrunePlan:
    """What a structured pruning removed: kept indices per module, replayable on a fresh model."""

    entries: tuple[PlanEntry, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def removed(self) -> int:
        """Channels removed, summed over entries (a channel shared by k modules counts k times)."""
        return sum(e.size - len(e.keep) for e in self.entries)

    def to_json(self) -> str:
        data = {
            "version": _VERSION,
            "entries": [e.to_dict() for e in self.entries],
            "meta": self.meta,
        }
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str) -> PrunePlan:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != _VERSION:
            raise PlanMismatchError(
                f"Not a slimtune prune plan of version {_VERSION}: got "
                f"{data.get('version') if isinstance(data, dict) else type(data).__name__!r}."
            )
        allowed = {"name", "role", "size", "keep", "dim"}
        entries = []
        for e in data["entries"]:
            if set(e) - allowed:
                raise PlanMismatchError(f"Unknown plan entry fields {sorted(set(e) - allowed)}.")
            entries.append(
                PlanEntry(
                    name=str(e["name"]),
                    role=str(e["role"]),
                    size=int(e["size"]),
                    keep=tuple(int(k) for k in e["keep"]),
                    dim=int(e.get("dim", 0)),
                )
            )
        return cls(entries=tuple(entries), meta=dict(data.get("meta", {})))

    def then(self, later: PrunePlan) -> PrunePlan:
        """The plan of applying ``self`` and then ``later`` (indices of the original model)."""
        first = {(e.name, e.role): e for e in self.entries}
        out: dict[tuple[str, str], PlanEntry] = dict(first)
        for e in later.entries:
            prev = first.get((e.name, e.role))
            if prev is None:
                out[(e.name, e.role)] = e
            else:
                keep = tuple(prev.keep[k] for k in e.keep)
                out[(e.name, e.role)] = PlanEntry(
                    name=e.name, role=e.role, size=prev.size, keep=keep, dim=e.dim
                )
        return PrunePlan(entries=tuple(out.values()), meta={**self.meta, **later.meta})


def check_plan(model: nn.Module, plan: PrunePlan) -> None:
    """Raise :class:`PlanMismatchError` unless every entry fits ``model`` (changes nothing)."""
    for e in plan.entries:
        target = owner(model, e.name, e.role)
        size = current_size(target, e.role, e.dim)
        if size != e.size:
            raise PlanMismatchError(
                f"Plan entry {e.name!r} ({e.role}) expects {e.size} channels, the model has "
                f"{size}. Apply the plan to a fresh, unpruned model of the same architecture."
            )
        if any(not 0 <= k < e.size for k in e.keep) or len(set(e.keep)) != len(e.keep):
            raise PlanMismatchError(f"Plan entry {e.name!r} ({e.role}) has invalid indices.")


def apply_plan_(model: nn.Module, plan: PrunePlan) -> nn.Module:
    """Prune ``model`` in place exactly as ``plan`` says; checks everything before changing it."""
    check_plan(model, plan)
    with torch.no_grad():
        for e in plan.entries:
            if len(e.keep) != e.size:
                apply_entry(model, e.name, e.role, list(e.keep), e.dim)
    return model


def save_pruned(model: nn.Module, directory: str | Path, plan: PrunePlan) -> Path:
    """Write ``model.safetensors`` and ``prune_plan.json`` into ``directory``; return it."""
    from safetensors.torch import save_model

    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    save_model(model, str(path / _WEIGHTS))  # handles tied (shared) weights
    (path / _PLAN).write_text(plan.to_json())
    return path


def load_pruned(model: nn.Module, directory: str | Path) -> PrunePlan:
    """Prune a fresh ``model`` with the saved plan, then load the saved weights; return the plan."""
    from safetensors.torch import load_model

    path = Path(directory)
    plan = PrunePlan.from_json((path / _PLAN).read_text())
    apply_plan_(model, plan)
    load_model(model, str(path / _WEIGHTS))
    return plan
