"""The one seed normaliser of slimtune (after scikit-learn's ``check_random_state``)."""

from __future__ import annotations

import numpy as np

__all__ = ["check_seed", "spawn_seed", "trial_rng"]

_MAX_SEED = 2**63 - 1


def check_seed(seed: int | None, *, name: str = "seed") -> int | None:
    """Validate a user seed; ``None`` means fresh entropy."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise TypeError(f"`{name}` must be an int or None, got {seed!r}. Pass e.g. {name}=0.")
    if not 0 <= int(seed) <= _MAX_SEED:
        raise ValueError(
            f"`{name}` must be in [0, 2**63 - 1], got {seed}. Pass a non-negative int."
        )
    return int(seed)


def spawn_seed(study_seed: int | None, number: int) -> int:
    """The seed of trial ``number``: spawned from the study seed, fresh entropy without one."""
    if study_seed is None:
        seq = np.random.SeedSequence()
    else:
        seq = np.random.SeedSequence(study_seed, spawn_key=(number,))
    return int(seq.generate_state(1, dtype=np.uint64)[0] & _MAX_SEED)


def trial_rng(seed: int, *, stream: int = 0) -> np.random.Generator:
    """A generator for one use (``stream``) of a trial seed; never the global RNG."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(stream,)))
