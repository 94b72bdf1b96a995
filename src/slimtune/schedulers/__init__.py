"""Schedulers: when to stop a trial early (never "prune": that word is for weights).

A scheduler reads the values trials report with ``trial.report(step, value)``; the objective
asks ``trial.should_stop()`` and raises ``TrialStopped``, and the trial is recorded STOPPED
with its last value. Any sampler works with any scheduler (BOHB = ``Hyperband`` scheduler +
``slimtune.samplers.BOHBSampler``).
"""

from __future__ import annotations

from slimtune.schedulers._asha import ASHA
from slimtune.schedulers._base import Decision, NeverStop, Scheduler
from slimtune.schedulers._hyperband import Hyperband
from slimtune.schedulers._median import MedianStopping

__all__ = ["ASHA", "Decision", "Hyperband", "MedianStopping", "NeverStop", "Scheduler"]
