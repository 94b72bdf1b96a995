"""The supernet base class: a search space of sub-networks sharing one set of weights."""

from __future__ import annotations

import abc
import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
from torch import nn

from slimtune.exceptions import InvalidSpaceError
from slimtune.space import Categorical, Conditional, Distribution, Int, SearchSpace

__all__ = ["Supernet", "choice_distribution"]


def choice_distribution(choices: tuple[int, ...]) -> Distribution:
    """An ordered ``Int`` when ``choices`` are evenly spaced, else a ``Categorical``."""
    if len(choices) == 1:
        return Categorical([choices[0]])
    steps = {b - a for a, b in itertools.pairwise(choices)}
    if len(steps) == 1:
        return Int(choices[0], choices[-1], step=steps.pop())
    return Categorical(list(choices))


class Supernet(nn.Module, metaclass=abc.ABCMeta):
    """A network whose sub-networks (architectures) share weights.

    Subclasses build their elastic layers in ``__init__`` and implement ``_space_params()``
    (parameter name -> distribution or ``Conditional``), ``_activate(arch)`` (activate a checked
    architecture) and ``_extract(arch)`` (a plain module for the active architecture). An
    architecture is a plain ``dict`` of parameter values, as a study's trial gives it.
    """

    def __init__(self) -> None:
        super().__init__()
        self._space: SearchSpace | None = None
        self._arch: dict[str, Any] | None = None

    # subclasses ---------------------------------------------------------------------------
    @abc.abstractmethod
    def _space_params(self) -> dict[str, Distribution | Conditional]:
        """Parameter name -> distribution (or ``Conditional``) of every architecture choice."""

    @abc.abstractmethod
    def _activate(self, arch: dict[str, Any]) -> None:
        """Set the elastic layers to the checked, canonical ``arch``."""

    @abc.abstractmethod
    def _extract(self, arch: dict[str, Any]) -> nn.Module:
        """A plain module for ``arch`` (already applied) with copies of its weights."""

    # public API ---------------------------------------------------------------------------
    def search_space(self) -> SearchSpace:
        """The architecture space as ``slimtune.space`` types, so every sampler can search it."""
        if self._space is None:
            self._space = SearchSpace(self._space_params())
        return self._space

    def canonical(self, arch: Mapping[str, Any]) -> dict[str, Any]:
        """``arch`` checked against the space, with parameters it makes inactive dropped.

        Two architectures that build the same sub-network (for example ones that differ only in
        the width of a block their depth leaves out) have the same canonical form.
        """
        if not isinstance(arch, Mapping):
            raise TypeError(f"`arch` must be a mapping of parameter values, got {arch!r}.")
        space = self.search_space()
        unknown = sorted(set(arch) - set(space))
        if unknown:
            raise InvalidSpaceError(
                f"`arch` has unknown parameters {unknown!r}; {type(self).__name__} has "
                f"{list(space)!r}."
            )
        active: dict[str, Any] = {}
        for name in space:
            if space.is_active(name, active) and name in arch:
                active[name] = arch[name]
        return space.check(active)

    def set_arch(self, arch: Mapping[str, Any]) -> None:
        """Activate the sub-network ``arch`` (a value outside the space raises, naming it)."""
        checked = self.canonical(arch)
        self._activate(checked)
        self._arch = checked

    @property
    def arch(self) -> dict[str, Any]:
        """The active architecture (the largest until ``set_arch`` is called)."""
        if self._arch is None:
            self.set_arch(self.largest_arch())
        assert self._arch is not None  # set by set_arch
        return dict(self._arch)

    def largest_arch(self) -> dict[str, Any]:
        """Every choice at its maximum."""
        return self._extreme(max)

    def smallest_arch(self) -> dict[str, Any]:
        """Every choice at its minimum."""
        return self._extreme(min)

    def sample_arch(self, rng: np.random.Generator) -> dict[str, Any]:
        """A uniformly random architecture (canonical)."""
        return self.canonical(self.search_space().sample(rng))

    def _extreme(self, pick: Any) -> dict[str, Any]:
        space = self.search_space()
        out: dict[str, Any] = {}
        for name in space:
            if not space.is_active(name, out):
                continue
            dist = space[name]
            if isinstance(dist, Int):
                out[name] = dist.high if pick is max else dist.low
            elif isinstance(dist, Categorical):
                out[name] = pick(dist.choices)
            else:  # pragma: no cover - supernets only use Int and Categorical
                raise TypeError(f"unsupported distribution {dist!r} for {name!r}")
        return space.check(out)

    def extract(self, arch: Mapping[str, Any] | None = None) -> nn.Module:
        """A plain ``nn.Module`` holding copies of ``arch``'s weights (default: the active one)."""
        checked = self.arch if arch is None else self.canonical(arch)
        previous = self._arch
        self._activate(checked)
        try:
            module = self._extract(checked)
        finally:
            if previous is not None:
                self._activate(previous)
        module.train(self.training)
        return module
