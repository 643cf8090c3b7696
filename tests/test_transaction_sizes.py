"""A transaction sizes its records exactly only when their bounds no longer show that they fit:
the same transactions are refused as when every record was sized exactly (issue 17)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore import InvalidArgument, create_store, transaction
from kvstore.testing import unique_kind
from kvstore.transactions import MAX_TRANSACTION_BYTES
from kvstore.values import item_size, normalize_value
from tests.strategies import nested


def numbers(n: int) -> dict[str, object]:
    # 2,000 small ints: sized 2 bytes each, bounded at 21 (the most a number takes).
    return {"id": f"r{n:03}", "v": list(range(2_000)), "version": None}


def test_puts_whose_bounds_exceed_the_limit_but_whose_sizes_fit_are_written() -> None:
    store = create_store(unique_kind(), backend="memory", version_field="version")
    store.ensure()
    records = [numbers(n) for n in range(100)]
    assert sum(item_size({**r, "version": 1}) for r in records) < MAX_TRANSACTION_BYTES
    assert MAX_TRANSACTION_BYTES < 100 * 2_000 * 21  # the bounds alone would refuse them
    with transaction() as tx:
        for record in records:
            tx.put(store, record)
    assert store.count() == 100


def test_a_transaction_over_the_limit_is_refused_at_the_same_operation() -> None:
    store = create_store(unique_kind(), backend="memory")
    store.ensure()
    records = [{"id": f"big{n}", "v": "x" * 399_000} for n in range(10)]
    records += [numbers(n) for n in range(100)]
    total, fitting = 0, 0
    for record in records:
        total += item_size(record)
        if total > MAX_TRANSACTION_BYTES:
            break
        fitting += 1
    assert 10 < fitting < len(records)
    added: list[int] = []

    def block() -> None:
        with transaction() as tx:
            for record in records:
                tx.put(store, record)
                added.append(len(tx))

    with pytest.raises(InvalidArgument, match="bytes of records"):
        block()
    assert len(added) == fitting
    assert store.count() == 0


@pytest.mark.parametrize("versioned", [False, True])
def test_an_updates_size_bound_covers_its_sets_and_increments(versioned: bool) -> None:
    """``Update.size_bound`` (what aurora's update and a transaction rely on) is never below the
    item size of the key, the sets and any numbers the increments store."""
    from kvstore import increment

    store = create_store(
        unique_kind(), backend="memory", version_field="version" if versioned else None
    )
    name = "n" * 63  # the longest field name
    changes = {"id": "a", "s": "text", name: increment(1), "n": increment(0.5)}
    if versioned:
        changes["version"] = 3
    op = store.update_op(changes, None)
    assert op.size_bound is not None
    widest = -(2**63)  # the largest item size a number takes
    merged = {"id": "a", **op.sets, **dict.fromkeys(op.increments, widest)}
    assert op.size_bound >= item_size(merged)


scalars = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", "plain", "nul\x00inside", "é", "\U0001f600"]),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e120, max_value=1e120),
    st.booleans(),
)
record_values = nested(scalars)
field_names = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).filter(lambda n: n != "id")


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(field_names, record_values, max_size=6))
def test_a_puts_size_bound_is_never_below_the_records_size(fields: dict[str, Any]) -> None:
    """``Put.size_bound`` (``prepare_sized``'s one pass) may skip the exact size only because it
    is never below it; the record is the canonical one ``normalize_value`` makes."""
    store = create_store("sizes", backend="memory")
    try:
        op = store.put_op({"id": "k", **fields})
    except InvalidArgument:
        with pytest.raises(InvalidArgument):  # refused as normalize_value refuses it
            {name: normalize_value(value, name) for name, value in fields.items()}
        return
    assert op.size_bound is not None
    assert op.size_bound >= item_size(op.record)
    assert op.record == {"id": "k", **{n: normalize_value(v, n) for n, v in fields.items()}}
