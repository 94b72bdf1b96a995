from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from slimtune.exceptions import InvalidSpaceError
from slimtune.space import Categorical, Conditional, Float, Int, SearchSpace


def nested_space() -> SearchSpace:
    return SearchSpace(
        {
            "optimizer": Categorical(["adam", "sgd", "rmsprop"]),
            "lr": Float(1e-5, 1.0, log=True),
            "momentum": Conditional(
                Float(0.0, 0.99), parent="optimizer", values=["sgd", "rmsprop"]
            ),
            "nesterov": Conditional(
                Categorical([True, False]), parent="momentum_kind", values=["classic"]
            ),
            "momentum_kind": Conditional(
                Categorical(["classic", "none"]), parent="optimizer", values=["sgd"]
            ),
            "layers": Int(1, 4),
            "width": Int(16, 256, log=True),
        }
    )


def test_order_is_parents_first():
    names = list(nested_space())
    assert names.index("optimizer") < names.index("momentum_kind") < names.index("nesterov")


def test_conditional_activity_follows_parent_chain():
    space = nested_space()
    assert space.active_names({"optimizer": "adam"}) == ["optimizer", "lr", "layers", "width"]
    active = space.active_names({"optimizer": "sgd", "momentum_kind": "classic"})
    assert {"momentum", "momentum_kind", "nesterov"} <= set(active)
    assert not space.is_active("nesterov", {"optimizer": "rmsprop", "momentum_kind": "classic"})


def test_check_rejects_inactive_and_missing_parameters():
    space = nested_space()
    with pytest.raises(InvalidSpaceError, match="'momentum' is inactive"):
        space.check({"optimizer": "adam", "lr": 0.1, "momentum": 0.5, "layers": 1, "width": 16})
    with pytest.raises(InvalidSpaceError, match="'width' is active but missing"):
        space.check({"optimizer": "adam", "lr": 0.1, "layers": 1})
    with pytest.raises(InvalidSpaceError, match="unknown parameters"):
        space.check({"bogus": 1})


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"a": Conditional(Float(0, 1), parent="missing", values=[1])}, "is not in the space"),
        (
            {"p": Categorical(["x"]), "a": Conditional(Float(0, 1), parent="p", values=["y"])},
            "is not in parent",
        ),
        (
            {
                "a": Conditional(Int(0, 1), parent="b", values=[0]),
                "b": Conditional(Int(0, 1), parent="a", values=[0]),
            },
            "cycle",
        ),
        ({"a": [1, 2]}, "Categorical"),
        ({"": Float(0, 1)}, "non-empty strings"),
    ],
)
def test_bad_spaces(params, fragment):
    with pytest.raises(InvalidSpaceError, match=fragment):
        SearchSpace(params)


def test_json_round_trip_keeps_conditions():
    space = nested_space()
    assert SearchSpace.from_json(space.to_json()) == space


def test_decode_shape_is_checked():
    with pytest.raises(InvalidSpaceError, match="must have shape"):
        nested_space().decode([0.5])


@given(st.integers(0, 2**32 - 1))
def test_sampled_configurations_lie_in_the_space(seed):
    space = nested_space()
    config = space.sample(np.random.default_rng(seed))
    assert space.contains(config)
    assert set(config) == set(space.active_names(config))


@given(st.lists(st.floats(0.0, 1.0), min_size=7, max_size=7))
def test_decode_lands_in_space_and_encode_decode_round_trips(u):
    space = nested_space()
    config = space.decode(u)
    assert space.contains(config)
    encoded = space.encode(config)
    names = list(space)
    for i, name in enumerate(names):
        assert np.isnan(encoded[i]) == (name not in config)
    again = space.decode(encoded)
    assert set(again) == set(config)
    for k, v in config.items():
        if isinstance(space[k], Float):
            assert again[k] == pytest.approx(v, rel=1e-9)
        else:
            assert again[k] == v
