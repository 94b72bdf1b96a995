from __future__ import annotations

import numpy as np
import pytest
import torch

from slimtune.exceptions import InvalidSpaceError
from slimtune.nas import MLPSupernet
from slimtune.space import Categorical, Int, SearchSpace
from tests.nas._supernets import KINDS, make


@pytest.mark.parametrize("kind", KINDS)
def test_search_space_is_a_slimtune_space_containing_the_extremes(kind: str) -> None:
    net, _ = make(kind)
    space = net.search_space()
    assert isinstance(space, SearchSpace)
    assert all(isinstance(space[n], Int | Categorical) for n in space)
    assert space.contains(net.largest_arch()) and space.contains(net.smallest_arch())
    rng = np.random.default_rng(0)
    for _ in range(10):
        assert space.contains(net.sample_arch(rng))


def test_set_arch_rejects_values_outside_the_space_and_leaves_the_net_unchanged() -> None:
    net = MLPSupernet(8, 3, width_choices=(4, 8), depth_choices=(1, 2))
    before = net.arch
    with pytest.raises(InvalidSpaceError, match="width0"):
        net.set_arch({"depth": 1, "width0": 5})
    with pytest.raises(InvalidSpaceError, match="unknown parameters"):
        net.set_arch({"depth": 1, "width0": 4, "heads": 2})
    with pytest.raises(InvalidSpaceError, match="depth"):
        net.set_arch({"depth": 3, "width0": 4, "width1": 4})
    with pytest.raises(TypeError, match="mapping"):
        net.set_arch([1, 2])  # type: ignore[arg-type]
    assert net.arch == before


def test_canonical_collapses_choices_of_blocks_the_depth_leaves_out() -> None:
    net = MLPSupernet(8, 3, width_choices=(4, 8), depth_choices=(1, 2))
    a = net.canonical({"depth": 1, "width0": 4, "width1": 8})
    b = net.canonical({"depth": 1, "width0": 4, "width1": 4})
    assert a == b == {"depth": 1, "width0": 4}


def test_uneven_choices_become_categorical_and_even_ones_int() -> None:
    net = MLPSupernet(8, 3, width_choices=(4, 8, 16), depth_choices=(1, 2, 3))
    space = net.search_space()
    assert isinstance(space["depth"], Int)
    assert isinstance(space["width0"], Categorical)


def test_elastic_layers_reject_choices_they_do_not_have() -> None:
    from slimtune.nas import ElasticConv2d, ElasticLinear, ElasticSequential

    with pytest.raises(ValueError, match="width 5 is not one of the `width_choices`"):
        ElasticLinear(4, 8, width_choices=(4, 8)).set_width(5)
    with pytest.raises(ValueError, match="kernel 7"):
        ElasticConv2d(2, 4, 5, kernel_choices=(3, 5)).set_kernel(7)
    with pytest.raises(ValueError, match="depth 3"):
        ElasticSequential(torch.nn.Identity(), depth_choices=(1,)).set_depth(3)
    with pytest.raises(ValueError, match="`width_choices` must be"):
        ElasticLinear(4, 8, width_choices=(16,))
