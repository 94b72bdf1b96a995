from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from slimtune.exceptions import InvalidSpaceError, SlimtuneError
from slimtune.space import Categorical, Float, Int, distribution_from_json

# ---------------------------------------------------------------- bad input: one-line errors


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: Float(5.0, 1.0), "`low` must be <= `high`"),
        (lambda: Int(5, 1), "`low` must be <= `high`"),
        (lambda: Float(0.0, 1.0, log=True), "`low` must be > 0 when log=True"),
        (lambda: Float(-1.0, 1.0, log=True), "got low=-1.0"),
        (lambda: Int(0, 10, log=True), "`low` must be >= 1 when log=True"),
        (lambda: Categorical([]), "must not be empty"),
        (lambda: Float(0.0, 1.0, step=0.3), "`step` must divide high - low"),
        (lambda: Int(0, 10, step=3), "`step` must divide high - low"),
        (lambda: Float(0.0, 1.0, step=-0.1), "`step` must be > 0"),
        (lambda: Float(1.0, 10.0, step=1.0, log=True), "cannot be combined"),
        (lambda: Int(1, 10, step=3, log=True), "`step` must be 1 when log=True"),
        (lambda: Float(0.0, math.inf), "must be finite"),
        (lambda: Float("a", 1.0), "`low` must be a real number"),
        (lambda: Int(0.5, 3), "`low` must be an integer"),
        (lambda: Categorical([1, 1]), "distinct"),
        (lambda: Categorical([object()]), "JSON-able"),
        (lambda: Categorical("abc"), "list or tuple"),
    ],
)
def test_bad_distributions_raise_one_line_named_errors(build, fragment):
    with pytest.raises(InvalidSpaceError) as info:
        build()
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message
    assert isinstance(info.value, SlimtuneError) and isinstance(info.value, ValueError)


def test_error_messages_name_value_and_fix():
    with pytest.raises(InvalidSpaceError, match=r"low=5.0, high=1.0\. Swap the bounds"):
        Float(5.0, 1.0)
    with pytest.raises(InvalidSpaceError, match=r"Adjust `high` to 0\.9"):
        Float(0.0, 1.0, step=0.3)


# ---------------------------------------------------------------- membership and grids


def test_float_step_grid_and_membership():
    d = Float(0.0, 1.0, step=0.25)
    assert d.grid() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert d.contains(0.5) and not d.contains(0.3) and not d.contains(1.25)
    assert d.check("x", 0.5000000001) == 0.5


def test_int_membership_respects_step_and_type():
    d = Int(2, 10, step=2)
    assert d.grid() == [2, 4, 6, 8, 10]
    assert d.contains(4) and d.contains(4.0) and not d.contains(5) and not d.contains(True)
    assert not d.contains(12) and not d.contains("4")


def test_categorical_distinguishes_bool_and_int():
    d = Categorical([1, True, "1", None])
    assert d.index(True) == 1 and d.index(1) == 0 and d.index(None) == 3
    assert d.contains(np.int64(1))
    assert not d.contains(2)


def test_unbounded_float_has_no_grid():
    with pytest.raises(InvalidSpaceError, match="no finite grid"):
        Float(0.0, 1.0).grid()


@pytest.mark.parametrize(
    "dist",
    [
        Float(-3.0, 7.5),
        Float(1e-5, 10.0, log=True),
        Float(0.0, 2.0, step=0.5),
        Float(1.0, 1.0),
        Int(-4, 9),
        Int(1, 1000, log=True),
        Int(0, 12, step=3),
        Categorical(["a", 2, 3.5, None, False]),
    ],
)
def test_json_round_trip(dist):
    assert distribution_from_json(dist.to_json()) == dist


def test_unknown_kind_in_json_is_rejected():
    with pytest.raises(InvalidSpaceError, match="unknown distribution kind"):
        distribution_from_json({"kind": "pickle"})


# ---------------------------------------------------------------- properties (hypothesis)

bounds = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)


@st.composite
def float_dists(draw):
    kind = draw(st.sampled_from(["plain", "log", "step"]))
    if kind == "log":
        low = draw(st.floats(1e-8, 1e4))
        high = low * draw(st.floats(1.0, 1e6))
        return Float(low, high, log=True)
    low = draw(bounds)
    if kind == "step":
        step = draw(st.sampled_from([0.5, 1.0, 0.25, 2.0]))
        n = draw(st.integers(0, 50))
        return Float(low, low + n * step, step=step)
    high = low + draw(st.floats(0.0, 1e6))
    return Float(low, high)


@st.composite
def int_dists(draw):
    if draw(st.booleans()):
        low = draw(st.integers(1, 10_000))
        return Int(low, low + draw(st.integers(0, 10**6)), log=True)
    low = draw(st.integers(-(10**6), 10**6))
    step = draw(st.integers(1, 7))
    return Int(low, low + step * draw(st.integers(0, 500)), step=step)


cat_dists = st.lists(
    st.one_of(st.none(), st.booleans(), st.integers(-100, 100), st.text(max_size=5)),
    min_size=1,
    max_size=8,
    unique_by=lambda v: (type(v), v),
).map(Categorical)

any_dist = st.one_of(float_dists(), int_dists(), cat_dists)


@given(any_dist, st.floats(0.0, 1.0))
def test_from_unit_always_gives_a_member(dist, u):
    assert dist.contains(dist.from_unit(u))


@given(any_dist, st.integers(0, 2**32 - 1))
def test_samples_are_members(dist, seed):
    rng = np.random.default_rng(seed)
    for _ in range(5):
        assert dist.contains(dist.sample(rng))


@given(any_dist, st.floats(0.0, 1.0))
def test_unit_round_trip_on_members(dist, u):
    value = dist.from_unit(u)
    unit = dist.to_unit(value)
    assert 0.0 <= unit <= 1.0
    back = dist.from_unit(unit)
    if isinstance(dist, Float) and dist.step is None:
        assert back == pytest.approx(value, rel=1e-9, abs=1e-9)
    else:
        assert back == value and type(back) is type(value)
