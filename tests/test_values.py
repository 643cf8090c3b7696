"""kvstore.values against hand-computed DynamoDB sizes and the contract's value rules."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from kvstore import InvalidArgument
from kvstore.values import (
    check_field_name,
    check_item_size,
    check_key_value,
    check_kind,
    item_size,
    normalize_value,
    number_from_float_text,
    number_from_text,
    number_size,
    same_value,
    value_identity,
)

# Sizes by AWS's documented rules ("DynamoDB item sizes and formats"): a string is its UTF-8 bytes,
# a null or boolean 1 byte, a number 1 byte per two significant digits plus 1 (leading and
# trailing zeros trimmed), a list or map 3 bytes plus its elements plus 1 byte per element, a map
# element also counting its key's UTF-8 bytes; an item adds up its attribute names and values.
HAND_SIZES: list[tuple[dict[str, Any], int]] = [
    ({"id": "abc"}, 2 + 3),
    ({"id": "é"}, 2 + 2),  # UTF-8 bytes, not characters
    ({"€uro": "\U0001f600"}, 6 + 4),  # names count their UTF-8 bytes too
    ({"id": "a", "t": True}, 3 + 1 + 1),
    ({"id": "a", "f": False}, 3 + 1 + 1),
    ({"id": "a", "n": None}, 3),  # a top-level None is absent
    ({"id": "a", "l": []}, 3 + 1 + 3),
    ({"id": "a", "m": {}}, 3 + 1 + 3),
    ({"id": "a", "l": ["ab", True, None]}, 3 + 1 + 3 + (2 + 1) + (1 + 1) + (1 + 1)),
    ({"id": "a", "m": {"key": "v", "é": False}}, 3 + 1 + 3 + (3 + 1 + 1) + (2 + 1 + 1)),
    ({"id": "a", "l": [[]]}, 3 + 1 + 3 + (3 + 1)),
    ({"id": "a", "m": {"k": {"j": [1]}}}, 3 + 1 + 3 + (1 + (3 + (1 + (3 + 2 + 1) + 1)) + 1)),
    ({"n": 12}, 1 + (1 + 1)),  # two digits: one byte, plus one
    ({"n": 7}, 1 + (1 + 1)),
    ({"n": 1234}, 1 + (2 + 1)),
    ({"n": 1200}, 1 + (1 + 1)),  # trailing zeros are trimmed
    ({"n": 0.12}, 1 + (1 + 1)),
    ({"n": 0.0012}, 1 + (1 + 1)),  # leading zeros are trimmed
    ({"n": 12345678}, 1 + (4 + 1)),
    ({"n": 10**18}, 1 + (1 + 1)),
    ({"n": 0}, 1 + 1),
]


@pytest.mark.parametrize(("record", "size"), HAND_SIZES, ids=repr)
def test_item_size_matches_dynamodb_documented_rules(record: dict[str, Any], size: int) -> None:
    assert item_size(record) == size


@pytest.mark.parametrize(
    ("number", "size"),
    [
        (Decimal("1" * 38), 19 + 1),  # 38 digits: 19 pairs
        (Decimal("0." + "12" * 19), 19 + 1),
        (-5, 1 + 1 + 1),  # kvstore's reading: a negative number takes one byte more
        (Decimal("-1234"), 2 + 1 + 1),
        (Decimal("1E+125"), 1 + 1),
        (Decimal("1E-130"), 1 + 1),
    ],
    ids=repr,
)
def test_number_size_counts_pairs_of_significant_digits(number: Any, size: int) -> None:
    assert number_size(number) == size


def test_number_sizes_pair_digits_around_the_decimal_point() -> None:
    # DynamoDB stores numbers base 100 from the decimal point: 1.2 is "1" "20" (two pairs), 12 is
    # one pair; by digit count alone both would be one byte plus one.
    assert number_size(12) == 2
    assert number_size(1.2) == 3
    assert number_size(123) == 3
    assert number_size(12.3) == 3
    assert number_size(0.5) == 2


@given(st.text(max_size=50), st.text(min_size=1, max_size=10).filter(lambda s: "\x00" not in s))
def test_a_string_attribute_is_its_name_and_value_utf8_bytes(value: str, name: str) -> None:
    try:
        value.encode("utf-8")
        name.encode("utf-8")
    except UnicodeEncodeError:
        return
    assert item_size({name: value}) == len(name.encode("utf-8")) + len(value.encode("utf-8"))


def test_check_item_size_refuses_exactly_400_kib() -> None:
    check_item_size({"id": "k", "blob": "x" * (409_599 - 7)})
    with pytest.raises(InvalidArgument):
        check_item_size({"id": "k", "blob": "x" * (409_600 - 7)})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2.0, 2),
        (Decimal("2.50"), 2.5),
        (Decimal("0.1"), 0.1),
        (1e20, 1e20),
        ((1, (2,)), [1, [2]]),
        ({"a": (None,)}, {"a": [None]}),
        (-0.0, 0),
        (Decimal("-0"), 0),
        (Decimal("9223372036854775807"), 2**63 - 1),
        (Decimal("9223372036854775808"), 9.223372036854776e18),
        (Decimal("-9223372036854775808"), -(2**63)),
    ],
    ids=repr,
)
def test_normalize_value_returns_canonical_values(value: Any, expected: Any) -> None:
    got = normalize_value(value, "f")
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize(
    "value",
    [Decimal("1" * 39), Decimal("1E+126"), Decimal("9.99999E-131"), 2**63, float("nan"), {1}],
    ids=repr,
)
def test_normalize_value_refuses_naming_the_field(value: Any) -> None:
    with pytest.raises(InvalidArgument, match="myfield"):
        normalize_value(value, "myfield")


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_every_int64_is_its_own_canonical_value(number: int) -> None:
    assert normalize_value(number, "f") == number


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_float_in_range_reads_back_equal(number: float) -> None:
    if number != 0 and not 1e-130 <= abs(number) < 1e126:
        with pytest.raises(InvalidArgument):
            normalize_value(number, "f")
        return
    assert normalize_value(number, "f") == number


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (1, 1.0, True),
        (1, True, False),
        (0, False, False),
        ("1", 1, False),
        ([1, 2], [2, 1], False),
        ([1], [1.0], True),
        ({"a": 1, "b": 2}, {"b": 2, "a": 1}, True),
        ({"a": 1}, {"a": 1, "b": None}, False),
        (None, None, True),
        ([True], [1], False),
    ],
    ids=repr,
)
def test_same_value_and_value_identity_agree_on_typed_equality(a: Any, b: Any, same: bool) -> None:
    assert same_value(a, b) is same
    assert same_value(b, a) is same
    assert (value_identity(a) == value_identity(b)) is same


@pytest.mark.parametrize("kind", ["abc", "a" * 63, "a_1"])
def test_check_kind_accepts_valid_kinds(kind: str) -> None:
    assert check_kind(kind) == kind


@pytest.mark.parametrize("kind", ["ab", "a" * 64, "1ab", "Abc", None, 5, "ab\n"], ids=repr)
def test_check_kind_refuses_invalid_kinds(kind: Any) -> None:
    with pytest.raises(InvalidArgument):
        check_kind(kind)


@pytest.mark.parametrize("name", ["", "1a", "a-b", "x" * 64, None, "é"], ids=repr)
def test_check_field_name_refuses_invalid_names(name: Any) -> None:
    with pytest.raises(InvalidArgument):
        check_field_name(name)


_NAME_CHARS = st.sampled_from("aAzZ09_-. \néß\u0131\u212a\u00aa\uff41\u0661")


def _accepted(check: Any, text: str) -> bool:
    try:
        check(text)
    except InvalidArgument:
        return False
    return True


@given(st.text(_NAME_CHARS, max_size=70))
@example("a" * 63)
@example("a" * 64)
@example("\u212a" + "a" * 2)  # KELVIN SIGN: an identifier, not ASCII
@example("a\u0131b")  # dotless i: lower case, not ASCII
@example("a1_")
@example("_ab")
@example("9ab")
def test_names_follow_the_contracts_patterns(text: str) -> None:
    # CONTRACT.md states names as patterns; check_kind/check_field_name use string methods.
    assert _accepted(check_kind, text) == bool(re.fullmatch(r"[a-z][a-z0-9_]{2,62}", text))
    assert _accepted(check_field_name, text) == bool(
        re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", text)
    )


def test_check_key_value_follows_the_key_type() -> None:
    assert check_key_value("x" * 1024, "id", str) == "x" * 1024
    assert check_key_value(5, "id", int) == 5
    for value, key_type in (("x" * 1025, str), ("", str), (True, int), (1.0, int), ("1", int)):
        with pytest.raises(InvalidArgument):
            check_key_value(value, "id", key_type)


@given(
    st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False, places=None),
        st.floats(allow_nan=False, allow_infinity=False),
        st.integers(),
    )
)
@example(Decimal("0." + "9" * 38))
@example(Decimal("9007199254740993.5"))
def test_a_canonical_number_is_its_own_canonical_form(number: Any) -> None:
    try:
        once = normalize_value(number, "f")
    except InvalidArgument:
        return
    twice = normalize_value(once, "f")
    assert (type(twice), twice) == (type(once), once)
    assert not isinstance(once, Decimal)
    if isinstance(once, float):
        assert not (once.is_integer() and -(2**63) <= once < 2**63)


def test_copy_record_shares_no_dict_or_list_with_the_original() -> None:
    from kvstore.records import copy_record

    original = {"id": "a", "tags": ["x", {"deep": [1, 2.5, None, True]}], "m": {"n": {"o": []}}}
    copied = copy_record(original)
    assert copied == original
    copied["tags"][1]["deep"].append("more")
    copied["m"]["n"]["o"].append(1)
    copied["tags"].append("y")
    assert original == {
        "id": "a",
        "tags": ["x", {"deep": [1, 2.5, None, True]}],
        "m": {"n": {"o": []}},
    }


def _contract_reading(text: str) -> int | float:
    """The contract's reading of a number written with a point or an exponent, spelt out through
    ``Decimal`` for every integral float: the text's integer when the text is integral, else the
    integer its float rounds to; a float when not integral or past int64."""
    value, exact = float(text), Decimal(text)
    if exact == exact.to_integral_value():  # as an integer's text reads (number_from_text)
        return int(exact) if -(2**63) <= exact <= 2**63 - 1 else value
    if value.is_integer() and -(2**63) <= value <= 2**63 - 1:
        return int(value)
    return value


near_exact = st.one_of(
    st.integers(min_value=-(2**54), max_value=2**54),
    st.integers(min_value=2**63 - 2**11, max_value=2**63 + 2**11),  # the signed 64-bit ends
    st.integers(min_value=-(2**63) - 2**11, max_value=-(2**63) + 2**11),
)
fraction_texts = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.builds(
        lambda whole, digits: f"{whole}.{digits}",
        near_exact,
        st.sampled_from(["0", "5", "00", "0000000001", "9999999999"]),
    ),
    st.builds(
        lambda whole, power: f"{whole}e{power}", st.integers(-(10**6), 10**6), st.integers(-30, 30)
    ),
)


@given(fraction_texts)
@example("1.0")
@example("-0.0")
@example("9007199254740991.0")  # 2**53 - 1: still exact in a float
@example("9007199254740993.0")  # 2**53 + 1: the float rounds it, the text does not
@example("9007199254740992.5")
@example("1.0000000000000001")  # not integral, though its float is
@example("1E+20")
@example("9223372036854775806.0")  # 2**63 - 2: its float is 2**63, the text an int64
@example("9223372036854775807.5")  # not integral; its float 2**63 is past int64
@example("-9223372036854775808.0")
@example("-9223372036854775809.0")  # past int64, though its float is -2**63
def test_number_from_float_text_reads_as_the_contract_does(text: str) -> None:
    found, wanted = number_from_float_text(text), _contract_reading(text)
    assert type(found) is type(wanted)
    assert found == wanted
    assert number_from_text(text) == wanted
