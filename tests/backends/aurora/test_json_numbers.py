"""Documents read from PostgreSQL decode their numbers by the contract's rules
(``kvstore_aurora.columns.loads``): an integer within the signed 64-bit range as an int, past it
as a float, every other number as ``number_from_text`` reads its text."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore.testing.suite.helpers import typed
from kvstore.values import INT64_MAX, INT64_MIN, number_from_text
from kvstore_aurora.columns import loads


def _reference(text: str) -> Any:
    """Every number through ``number_from_text``, the contract's reading of a number's text."""
    return json.loads(text, parse_int=number_from_text, parse_float=number_from_text)


EDGES = [
    INT64_MAX,
    INT64_MIN,
    INT64_MAX + 1,
    INT64_MIN - 1,
    10**18 - 1,
    10**18,
    -(10**18),
    10**19,
    123456789012345678901234567890,
    0,
]
numbers = st.one_of(
    st.integers(),
    st.sampled_from(EDGES),
    st.floats(allow_nan=False, allow_infinity=False),
)
strings = st.one_of(st.text(max_size=8), st.sampled_from(["1234567890123456789", "x" + "9" * 19]))
values = st.recursive(
    st.one_of(numbers, strings, st.booleans(), st.none()),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(values)
def test_loads_reads_every_number_as_the_contract_does(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False)
    assert typed(loads(text.encode("utf-8"))) == typed(_reference(text))


def test_an_integer_past_int64_reads_as_a_float_also_beside_short_ones() -> None:
    document = '{"small": 5, "big": 9223372036854775808, "neg": -9223372036854775809}'
    found = loads(document.encode())
    assert typed(found) == typed({"small": 5, "big": float(2**63), "neg": float(-(2**63) - 1)})
    # Digits inside a string stay a string.
    assert typed(loads(b'{"s": "1234567890123456789", "n": 7}')) == typed(
        {"s": "1234567890123456789", "n": 7}
    )


def test_loads_takes_what_the_json_module_takes_around_a_document_and_refuses_the_rest() -> None:
    assert loads(b' {"a": [1, 2.5]}\n') == {"a": [1, 2.5]}
    assert loads(memoryview(b'{"a": "\xc3\xa9"}')) == {"a": "\u00e9"}
    for bad in (b"", b"{", b'{"a": 1} x', b"[1] [2]"):
        with pytest.raises(ValueError):
            loads(bad)


@settings(max_examples=500, deadline=None)
@given(values)
def test_dumps_writes_what_the_standard_encoder_writes(value: Any) -> None:
    from kvstore_aurora.columns import dumps

    expected = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    assert dumps(value) == expected


@pytest.mark.parametrize("value", [float("nan"), [float("inf")], {"a": -float("inf")}, {1j}])
def test_dumps_refuses_what_the_standard_encoder_refuses(value: Any) -> None:
    from kvstore_aurora.columns import dumps

    with pytest.raises((ValueError, TypeError)) as standard:
        json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    with pytest.raises(standard.type, match=str(standard.value)):
        dumps(value)
