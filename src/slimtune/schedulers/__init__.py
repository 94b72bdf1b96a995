"""Schedulers: when to stop a trial early (never "prune": that word is for weights)."""

from __future__ import annotations

from slimtune.schedulers._base import Decision, NeverStop, Scheduler

__all__ = ["Decision", "NeverStop", "Scheduler"]
