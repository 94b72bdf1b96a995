"""Member checkpoints for PBT: safetensors weights plus JSON, never pickle.

A checkpoint is a folder. :func:`save_checkpoint` writes ``tensors.safetensors`` and
``meta.json``; :func:`save_training_state` / :func:`load_training_state` do it for a model and
its optimizer (optimizer tensors flattened into the safetensors file, the rest as JSON).
:func:`checkpoint_digest` is the SHA-256 of every file in the folder, used to check that an
exploit copied the weights exactly.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = [
    "Checkpoint",
    "checkpoint_digest",
    "copy_checkpoint",
    "load_checkpoint",
    "load_training_state",
    "save_checkpoint",
    "save_training_state",
]

TENSORS_FILE = "tensors.safetensors"
META_FILE = "meta.json"


@dataclass(frozen=True)
class Checkpoint:
    """Tensors and JSON metadata read back from a checkpoint folder."""

    tensors: dict[str, torch.Tensor]
    metadata: dict[str, Any]


def _folder(directory: str | os.PathLike[str], name: str = "directory") -> Path:
    if not isinstance(directory, str | os.PathLike):
        raise TypeError(f"`{name}` must be a path, got {directory!r}.")
    return Path(directory)


def save_checkpoint(
    directory: str | os.PathLike[str],
    tensors: Mapping[str, torch.Tensor],
    *,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Write ``tensors`` (safetensors) and ``metadata`` (JSON) into ``directory``."""
    import torch
    from safetensors.torch import save_file

    path = _folder(directory)
    if not isinstance(tensors, Mapping):
        raise TypeError(f"`tensors` must be a mapping of names to tensors, got {tensors!r}.")
    for key, t in tensors.items():
        if not isinstance(key, str) or not isinstance(t, torch.Tensor):
            raise TypeError(f"`tensors` must map str to tensors; {key!r} maps to {t!r}.")
    meta = dict(metadata or {})
    try:
        meta_text = json.dumps(meta, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"`metadata` must be JSON-able (no NaN), got {meta!r}: {err}. Store tensors in "
            "`tensors` instead."
        ) from err
    path.mkdir(parents=True, exist_ok=True)
    plain = {k: t.detach().to("cpu").contiguous() for k, t in tensors.items()}
    save_file(plain, str(path / TENSORS_FILE))
    (path / META_FILE).write_text(meta_text)


def load_checkpoint(directory: str | os.PathLike[str]) -> Checkpoint | None:
    """The checkpoint in ``directory``, or ``None`` when it holds none (a fresh member)."""
    from safetensors.torch import load_file

    path = _folder(directory)
    tensors_path = path / TENSORS_FILE
    if not tensors_path.exists():
        return None
    tensors = load_file(str(tensors_path))
    meta_path = path / META_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    return Checkpoint(tensors=dict(tensors), metadata=meta)


def _jsonable(value: Any) -> Any:
    import torch

    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    return value


def save_training_state(
    directory: str | os.PathLike[str],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> None:
    """Save a model's ``state_dict`` and an optimizer's state with :func:`save_checkpoint`."""
    import torch

    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"`model` must be a torch.nn.Module, got {model!r}.")
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    meta: dict[str, Any] = {"user": dict(metadata or {})}
    if optimizer is not None:
        sd = optimizer.state_dict()
        opt_scalars: dict[str, dict[str, Any]] = {}
        for pid, st in sd["state"].items():
            for k, v in st.items():
                if isinstance(v, torch.Tensor) and v.dim() > 0:
                    tensors[f"optimizer.{pid}.{k}"] = v
                else:
                    opt_scalars.setdefault(str(pid), {})[k] = [
                        "tensor" if isinstance(v, torch.Tensor) else "value",
                        _jsonable(v),
                    ]
        meta["optimizer"] = {
            "param_groups": [{k: _jsonable(v) for k, v in g.items()} for g in sd["param_groups"]],
            "scalars": opt_scalars,
        }
    save_checkpoint(directory, tensors, metadata=meta)


def load_training_state(
    directory: str | os.PathLike[str],
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
) -> dict[str, Any] | None:
    """Load what :func:`save_training_state` wrote into ``model`` (and ``optimizer``).

    Returns the user metadata, or ``None`` (nothing loaded) when the folder holds no checkpoint.
    """
    import torch

    ckpt = load_checkpoint(directory)
    if ckpt is None:
        return None
    state = {k[len("model.") :]: v for k, v in ckpt.tensors.items() if k.startswith("model.")}
    model.load_state_dict(state)
    opt_meta = ckpt.metadata.get("optimizer")
    if optimizer is not None:
        if opt_meta is None:
            raise ValueError(
                f"checkpoint {directory!s} holds no optimizer state; load it without `optimizer`."
            )
        opt_state: dict[int, dict[str, Any]] = {}
        for key, t in ckpt.tensors.items():
            if key.startswith("optimizer."):
                _, pid, name = key.split(".", 2)
                opt_state.setdefault(int(pid), {})[name] = t
        for pid, scalars in opt_meta["scalars"].items():
            for name, (kind, value) in scalars.items():
                opt_state.setdefault(int(pid), {})[name] = (
                    torch.tensor(value) if kind == "tensor" else value
                )
        groups = []
        for g in opt_meta["param_groups"]:
            g = dict(g)
            if isinstance(g.get("betas"), list):
                g["betas"] = tuple(g["betas"])
            groups.append(g)
        optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    user: dict[str, Any] = ckpt.metadata.get("user", {})
    return user


def checkpoint_digest(directory: str | os.PathLike[str]) -> str:
    """SHA-256 over the relative paths and bytes of every file in ``directory`` (sorted)."""
    path = _folder(directory)
    h = hashlib.sha256()
    if not path.exists():
        return h.hexdigest()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        h.update(str(file.relative_to(path)).encode())
        h.update(b"\0")
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def copy_checkpoint(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> str:
    """Replace ``target`` with a byte-exact copy of ``source``; returns the verified digest."""
    src, dst = _folder(source, "source"), _folder(target, "target")
    expected = checkpoint_digest(src)
    tmp = dst.with_name(dst.name + ".copying")
    if tmp.exists():
        shutil.rmtree(tmp)
    if src.exists():
        shutil.copytree(src, tmp)
    else:
        tmp.mkdir(parents=True)
    got = checkpoint_digest(tmp)
    if got != expected:
        shutil.rmtree(tmp)
        raise OSError(
            f"copy of checkpoint {src} to {dst} does not match (sha256 {got} != "
            f"{expected}); the disk may be full."
        )
    if dst.exists():
        shutil.rmtree(dst)
    tmp.rename(dst)
    return got
