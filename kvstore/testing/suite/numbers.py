"""Contract, "Records and values", numbers: digits, range, int64, and which type reads back."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kvstore import InvalidArgument
from kvstore.testing.fixtures import StoreFactory, StoreFixtures
from kvstore.testing.suite.helpers import typed

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

ACCEPTED: list[tuple[Any, Any]] = [
    # (written, read back)
    (2.0, 2),
    (-0.0, 0),
    (0.0, 0),
    (1e18, 10**18),
    (1e20, 1e20),
    (0.1, 0.1),
    (Decimal("0.1"), 0.1),
    (Decimal("2"), 2),
    (Decimal("2.50"), 2.5),
    (Decimal("-7.000"), -7),
    (Decimal("1E+20"), 1e20),
    (Decimal("9223372036854775808"), 9.223372036854776e18),  # integral but past int64
    (INT64_MAX, INT64_MAX),
    (INT64_MIN, INT64_MIN),
    (2**53 + 1, 2**53 + 1),
    (Decimal("1" * 38), float("1" * 38)),  # 38 significant digits
    (Decimal("0." + "9" * 38), 1),  # the nearest float, 1.0, is integral
    (Decimal("0." + "1" * 38), float("0." + "1" * 38)),
    (Decimal("1" * 38 + "0" * 20), float("1" * 38 + "0" * 20)),  # trailing zeros don't count
    (Decimal("1.5" + "0" * 60), 1.5),
    (Decimal("0.0000" + "3" * 38), float("0.0000" + "3" * 38)),  # leading zeros don't count
    (Decimal("1E-130"), 1e-130),
    (Decimal("-1E-130"), -1e-130),
    (1e-130, 1e-130),
    (Decimal("9.99E+125"), 9.99e125),
    (-9.99e125, -9.99e125),
    (Decimal("0E-500"), 0),  # zero at any exponent is zero
]

REFUSED: list[Any] = [
    2**63,
    INT64_MIN - 1,
    10**40,
    Decimal("1" * 39),  # 39 significant digits
    Decimal("1." + "1" * 38),
    Decimal("0.000" + "1" * 39),
    Decimal("9.9E-131"),
    Decimal("1E-131"),
    1e-131,
    -1e-131,
    5e-324,
    Decimal("1E+126"),
    Decimal("-1E+126"),
    1e126,
    -1e126,
    1.7976931348623157e308,
]


class AbstractNumberTests(StoreFixtures):
    """Numbers' limits and their normalisation: ints stay ints, integral numbers become ints."""

    @pytest.mark.parametrize(("written", "expected"), ACCEPTED, ids=repr)
    def test_a_number_is_accepted_and_reads_back_normalised(
        self, make_store: StoreFactory, written: Any, expected: Any
    ) -> None:
        store = make_store()
        record = {"id": "a", "n": written, "nested": [written, {"k": written}]}
        wanted = {"id": "a", "n": expected, "nested": [expected, {"k": expected}]}
        assert typed(store.put(record)) == typed(wanted)
        found = store.find({"id": "a"})
        assert typed(found) == typed(wanted)
        assert not isinstance(found["n"], Decimal)

    @pytest.mark.parametrize("value", REFUSED, ids=repr)
    def test_a_number_out_of_range_or_too_precise_is_refused(
        self, make_store: StoreFactory, value: Any
    ) -> None:
        store = make_store()
        for where in (value, [value], {"k": value}):
            with pytest.raises(InvalidArgument) as info:
                store.put({"id": "a", "num_field": where})
            assert "num_field" in str(info.value)
        assert store.count() == 0

    @pytest.mark.parametrize(
        "value",
        [0.1 + 0.2, 1 / 3, -123456.789e-50, 6.02214076e23, 2.0**-100, 123456789.12345679],
        ids=repr,
    )
    def test_a_float_reads_back_exactly_equal(self, make_store: StoreFactory, value: float) -> None:
        store = make_store()
        store.put({"id": "a", "f": value})
        found = store.find({"id": "a"})["f"]
        assert type(found) is float
        assert found == value

    def test_a_read_never_returns_decimal(self, make_store: StoreFactory) -> None:
        store = make_store()
        values = [Decimal("1.25"), Decimal("3"), Decimal("1E+30"), Decimal("-0.5E-10")]
        store.put({"id": "a", "d": values, "m": {"x": Decimal("4.5")}})
        found = store.find({"id": "a"})
        assert typed(found) == typed({"id": "a", "d": [1.25, 3, 1e30, -0.5e-10], "m": {"x": 4.5}})
        for record in (*store.find_all(), *store.iter_all(), *store.find_in("id", ["a"])):
            assert not any(isinstance(value, Decimal) for value in record["d"])

    def test_numbers_filter_by_their_normalised_value(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.put({"id": "a", "n": Decimal("2.0")})
        store.put({"id": "b", "n": 0.5})
        assert store.find({"n": 2})["id"] == "a"
        assert store.find({"n": 2.0})["id"] == "a"
        assert store.find({"n": Decimal("0.50")})["id"] == "b"
