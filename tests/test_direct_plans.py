"""``DirectPlans`` (``find``'s shortcut) plans exactly what ``plan_read`` plans from
``prepare_filters``, and declines everything it does not cover."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvstore import Index, InvalidArgument, ge
from kvstore.plan import DirectPlans, Plan, plan_read
from kvstore.records import prepare_filters
from kvstore.schema import KindSchema

SCHEMAS = {
    "str key": KindSchema.declare(
        "users", "id", str, [Index("by_email", "email"), Index("by_team", ("team", "rank"))]
    ),
    "int key": KindSchema.declare("orders", "n", int, [Index("by_rank", "rank", key_type=int)]),
    "two indexes, one field": KindSchema.declare(
        "events", "id", str, [Index("first", "grp"), Index("second", ("grp", "at"))]
    ),
    "composite key": KindSchema.declare(
        "lines", ("order", "line"), (str, int), [Index("by_order", "order"), Index("by_sku", "sku")]
    ),
}
FIELDS = ["id", "n", "email", "team", "rank", "grp", "order", "line", "sku", "other"]


def _described(plan: Plan) -> tuple[Any, ...]:
    return (
        plan.access,
        tuple(plan.keys),
        tuple(plan.partitions),
        plan.index,
        plan.sort,
        plan.filters,
        plan.never,
        plan.limit,
    )


values = st.one_of(
    st.text(max_size=8),
    st.text(alphabet="ab\x00é", max_size=3),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.booleans(),
    st.floats(allow_nan=False),
    st.none(),
    st.just(ge(3)),
    st.text(min_size=1020, max_size=1030, alphabet="x"),
)


@settings(max_examples=400, deadline=None)
@given(
    name=st.sampled_from(sorted(SCHEMAS)),
    field=st.sampled_from(FIELDS),
    value=values,
)
def test_a_direct_plan_is_the_general_plan(name: str, field: str, value: Any) -> None:
    schema = SCHEMAS[name]
    filters = {field: value}
    direct = _outcome(lambda: DirectPlans(schema).plan(filters))
    if direct == ("declined",):
        return  # the general path plans it
    assert direct == _outcome(lambda: plan_read(schema, prepare_filters(filters, schema)))


def _outcome(make: Any) -> tuple[Any, ...]:
    """A plan as its attributes, ``("declined",)``, or the error it raised and its message."""
    try:
        plan = make()
    except InvalidArgument as refused:
        return ("refused", str(refused))
    return ("declined",) if plan is None else _described(plan)


@pytest.mark.parametrize(
    ("name", "filters"),
    [
        ("str key", {"id": "a"}),
        ("str key", {"email": "a@b"}),
        ("str key", {"team": "t1"}),
        ("int key", {"n": 7}),
        ("int key", {"rank": 3}),
        ("two indexes, one field", {"grp": "g"}),
        ("composite key", {"sku": "s1"}),
    ],
)
def test_the_commonest_finds_are_planned_directly(name: str, filters: dict[str, Any]) -> None:
    schema = SCHEMAS[name]
    direct = DirectPlans(schema).plan(filters)
    assert direct is not None
    assert _described(direct) == _described(plan_read(schema, prepare_filters(filters, schema)))


@pytest.mark.parametrize(
    ("name", "filters"),
    [
        ("str key", {"id": "a", "email": "b"}),  # two fields
        ("str key", {"id": 3}),  # a key of the wrong type: the general path's error
        ("str key", {"id": "é"}),  # not ASCII
        ("str key", {"email": None}),  # absent
        ("str key", {"other": "x"}),  # a scan
        ("int key", {"n": True}),
        ("int key", {"n": 2**63}),
        ("composite key", {"order": "o1"}),  # the key's partition: a partition read
        ("composite key", {"line": 1}),
    ],
)
def test_other_filters_take_the_general_path(name: str, filters: dict[str, Any]) -> None:
    assert DirectPlans(SCHEMAS[name]).plan(filters) is None


def test_a_kind_with_a_ttl_field_plans_nothing_directly() -> None:
    schema = KindSchema.declare("sessions", "id", str, [Index("by_user", "user")], None, "exp")
    plans = DirectPlans(schema)
    assert plans.plan({"id": "a"}) is None
    assert plans.plan({"user": "u"}) is None
