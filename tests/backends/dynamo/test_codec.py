"""The wire codec: every canonical value round-trips exactly; numbers read back by the contract's rule
(core's ``number_from_text``, reached through the codec as DynamoDB sends numbers)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from kvstore.testing.suite.helpers import typed
from kvstore.values import INT64_MAX, INT64_MIN, normalize_value, same_value
from kvstore_dynamo.codec import from_attribute, to_attribute
from tests.strategies import nested

finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.one_of(
    st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00")),
    st.booleans(),
    st.integers(INT64_MIN, INT64_MAX),
    finite,
)
values = nested(scalars, max_leaves=12, key_size=5)


def canonical(value: Any) -> Any:
    try:
        return normalize_value(value, "f")
    except ValueError:
        return None  # out of the contract's range: not something a driver ever sees


@given(values)
def test_canonical_values_round_trip(value: Any) -> None:
    value = canonical(value)
    back = from_attribute(to_attribute(value))
    assert same_value(back, value)
    assert repr(back) == repr(value)  # same types too: int stays int, float stays float


def number(text: str) -> int | float:
    """A number as DynamoDB sends it (``{"N": text}``), read by the codec."""
    value: int | float = from_attribute({"N": text})
    return value


def expected_number(text: str) -> int | float:
    """The contract's reading: integral within int64 -> int, else float, and (as
    ``normalize_value`` stores it) a float that lands on an integer within int64 -> that int."""
    exact = Decimal(text)
    if exact == exact.to_integral_value() and INT64_MIN <= exact <= INT64_MAX:
        return int(exact)
    rounded = float(exact)
    if rounded.is_integer() and INT64_MIN <= rounded <= INT64_MAX:
        return int(rounded)
    return rounded


decimals = st.decimals(min_value=-(10**40), max_value=10**40, places=30)


@given(st.one_of(st.integers(-(10**30), 10**30), finite, decimals))
def test_numbers_read_back_as_the_rule_says(raw: Any) -> None:
    # DynamoDB and DynamoDB Local send numbers in several notations; all read back the same way.
    exact = Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)
    texts = {str(exact), format(exact, "f"), format(exact, "E")}
    if isinstance(raw, float):
        texts.add(repr(raw))
    for text in texts:
        got = number(text)
        want = expected_number(text)
        assert type(got) is type(want)
        assert got == want


def test_plain_notation_past_38_digits_reads_back() -> None:
    assert number("1" + "0" * 125) == 1e125
    assert number("-0." + "0" * 129 + "15") == -1.5e-130
    assert number("9223372036854775807") == INT64_MAX
    assert type(number("9223372036854775808")) is float
    assert number("2.000") == 2
    assert type(number("2.000")) is int
    # Not integral, but its float is: read as normalize_value stores it (an exact server sum).
    text = "4611686018427387905.5"
    assert typed(number(text)) == typed(normalize_value(Decimal(text), "f")) == ("int", 2**62)
