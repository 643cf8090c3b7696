"""Plans as DynamoDB reads: GetItem, BatchGetItem, Query (on the table or a global secondary index)
and Scan, page by page, with every LastEvaluatedKey followed.

- ``key``: one key is a consistent GetItem, many keys consistent BatchGetItems (100 a call).
- ``partition``: a consistent Query per partition, its key condition the partition and the plan's
  sort condition; ``index``: the same on the index (``IndexName``; a global secondary index has
  no consistent reads).
- ``scan``: a consistent Scan; one segment of a resumable read is a parallel Scan's segment
  (``Segment``/``TotalSegments``), in DynamoDB's own order, after ``ExclusiveStartKey``.

Filters go to the server as a FilterExpression (``kvstore_dynamo.expressions``) except on the key
a Query reads, which DynamoDB refuses there; core checks every record anyway.

Ordered reads (pages) ask for pages of ``plan.limit`` items first (on an index, one or two more:
see ``_query``), doubling while more are needed, in the read's direction (``ScanIndexForward``). A position to continue after becomes part of the
key condition, not an ExclusiveStartKey: DynamoDB refuses a start key outside the key condition,
and its order of index items whose index keys tie is not the contract's (DynamoDB Local orders
them by a hash of the table key): the items of each tie are read whole and ordered by the primary
key here, so a page inside a tie reads the whole tie (an index without a sort field is one tie).

Streaming reads (``iter_all``, a delete's read: no limit) ask for pages of at most
``STREAM_PAGE_LIMIT`` items, so memory stays bounded by that, whatever the item size; a read core
collects whole (``find_all``, ``find_in``: ``plan.collected``) and a limited unordered read with a
filter (``find``) keep DynamoDB's full 1 MB pages (see docs/PERFORMANCE.md).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from kvstore.backend import Plan, Record
from kvstore.conditions import BeginsWith, Between, Condition, Eq, Ge, Gt, Le, Lt
from kvstore.values import value_identity
from kvstore_dynamo.batch import batch_get
from kvstore_dynamo.codec import Item, from_item, key_item
from kvstore_dynamo.expressions import Expression, filter_expression, key_condition
from kvstore_dynamo.settings import Limits

__all__ = ["MAX_PAGE", "STREAM_PAGE_LIMIT", "Table", "count", "fields_of", "item_key", "read"]

STREAM_PAGE_LIMIT = 1000
"""Items a page of a streaming read holds at most (see the module docstring)."""
MAX_PAGE = 1000
"""The most items an ordered or limited read asks for in one page."""


class Table:
    """What a read needs: the client, the table's name, and the time budget of a batch's
    retries."""

    __slots__ = ("client", "limits", "name")

    def __init__(self, client: Any, name: str, limits: Limits | None = None) -> None:
        self.client = client
        self.name = name
        self.limits = limits


def fields_of(plan: Plan) -> list[str]:
    """The fields a projected read must fetch so that core can check and key its records: the
    key, the fields the plan's filters name, the fields of the serving key."""
    fields = [*plan.schema.id_fields, *(field for field, _ in plan.filters)]
    fields += [field for field in (plan.partition_field, plan.sort_field) if field is not None]
    return list(dict.fromkeys(fields))


def _projection(expr: Expression, project: Sequence[str]) -> dict[str, Any]:
    if not project:
        return {}
    return {"ProjectionExpression": ", ".join(expr.name(field) for field in project)}


def _limits(plan: Plan, filtered: bool, margin: int = 0) -> Iterator[int | None]:
    """The ``Limit`` of each page of a Query or Scan (``None``: DynamoDB's full 1 MB pages);
    ``margin`` items more in the first page of an ordered or limited read."""
    if plan.limit is None:
        while True:
            yield None if plan.collected else STREAM_PAGE_LIMIT
    if plan.descending is None and filtered:
        while True:
            yield None  # find(): a selective filter must not cost a call per few items
    size = max(1, min(plan.limit + margin, MAX_PAGE))
    while True:
        yield size
        size = min(size * 2, MAX_PAGE)


def _pages(
    operation: Callable[..., Any], params: dict[str, Any], limits: Iterator[int | None]
) -> Iterator[dict[str, Any]]:
    """Every page of a Query or Scan: ``LastEvaluatedKey`` is followed until there is none."""
    while True:
        limit = next(limits)
        page: dict[str, Any] = operation(**params, **({"Limit": limit} if limit else {}))
        yield page
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        params = {**params, "ExclusiveStartKey": last}


# -- keys --------------------------------------------------------------------------------------


def _get(table: Table, plan: Plan, project: Sequence[str]) -> Iterator[Record]:
    expr = Expression()
    fields = plan.schema.id_fields
    if len(plan.keys) == 1:
        response = table.client.get_item(
            TableName=table.name,
            Key=key_item(fields, plan.keys[0]),
            ConsistentRead=True,
            **_projection(expr, project),
            **expr.params(),
        )
        item = response.get("Item")
        records: Iterator[Record] = iter(() if item is None else (from_item(item),))
    else:
        keys = [key_item(fields, key) for key in plan.keys]
        items = batch_get(table.client, table.name, keys, project, table.limits)
        records = map(from_item, items)
    if plan.descending is None:
        yield from records
        return
    ordered = sorted(records, key=plan.position, reverse=plan.descending)
    yield from filter(plan.after_start, ordered)


# -- partitions and indexes ---------------------------------------------------------------------


def _interval(sort: Condition | None) -> tuple[Any, bool, Any, bool]:
    """``sort`` as ``(low, low included, high, high included)``; ``None`` for an open end."""
    if isinstance(sort, (Gt, Ge)):
        return sort.value, isinstance(sort, Ge), None, False
    if isinstance(sort, (Lt, Le)):
        return None, False, sort.value, isinstance(sort, Le)
    if isinstance(sort, Between):
        return sort.low, True, sort.high, True
    return None, False, None, False


def _after(sort: Condition | None, start: Any, descending: bool, inclusive: bool) -> Any:
    """The key condition reading ``sort``'s values from ``start`` on, in the read's direction
    (``inclusive``: ``start``'s own value too), a superset the caller re-checks with ``sort``;
    ``False`` when no value can follow ``start``."""
    if isinstance(sort, Eq):
        value = sort.value
        follows = value <= start if descending else value >= start
        return sort if follows and (inclusive or value != start) else False
    if isinstance(sort, BeginsWith):
        prefix = sort.prefix
        if not start.startswith(prefix):  # every prefixed string is on one side of start
            return sort if (start < prefix) != descending else False
        sort = None  # from start on, until a value leaves the prefix (the caller stops there)
    low, low_in, high, high_in = _interval(sort)
    if descending:
        if high is None or start < high:
            high, high_in = start, inclusive
        elif start == high:
            high_in = high_in and inclusive
    elif low is None or start > low:
        low, low_in = start, inclusive
    elif start == low:
        low_in = low_in and inclusive
    if low is not None and high is not None:
        if low > high or (low == high and not (low_in and high_in)):
            return False
        return Eq(low) if low == high else Between(low, high)
    if low is not None:
        return Ge(low) if low_in else Gt(low)
    return Le(high) if high_in else Lt(high)


def _query(table: Table, plan: Plan, partition: Any, project: Sequence[str]) -> Iterator[Record]:
    """The records of one partition (of the table or the plan's index), in the read's order."""
    index = plan.index
    sort_field = plan.sort_field
    partition_field = plan.partition_field
    assert partition_field is not None
    ordered = plan.descending is not None
    sort: Any = plan.sort
    if plan.start is not None and sort_field is not None:
        # A table's sort keys are unique: start strictly after. An index's tie: read it whole.
        sort = _after(plan.sort, plan.start[0], bool(plan.descending), inclusive=index is not None)
        if sort is False:
            return
    expr = Expression()
    params: dict[str, Any] = {
        "TableName": table.name,
        "KeyConditionExpression": key_condition(expr, partition_field, partition, sort_field, sort),
    }
    if index is None:
        params["ConsistentRead"] = True
        keys: Sequence[str] = plan.schema.id_fields
    else:
        params["IndexName"] = index.name
        keys = index.fields
    if plan.descending:
        params["ScanIndexForward"] = False
    text, _exact = filter_expression(expr, plan.filters, skip=keys)
    if text is not None:
        params["FilterExpression"] = text
    params.update(_projection(expr, project))
    params.update(expr.params())
    check = plan.sort if sort is not plan.sort else None  # the key condition was widened
    # An ordered index read yields its last record once the next item ends that record's tie,
    # and a read after a position reads that position's tie again: one item more for each, so
    # that a page whose values do not tie is one Query.
    margin = 0
    if ordered and index is not None and sort_field is not None:
        margin = 1 + (plan.start is not None)
    filtered = text is not None or bool(check)
    pages = _pages(table.client.query, params, _limits(plan, filtered, margin))
    records: Iterator[Record] = (
        from_item(item) for page in pages for item in page.get("Items", ())
    )
    if check is not None:
        records = _until(records, check, sort_field)
    if not ordered:
        yield from records
    elif index is None:
        yield from filter(plan.after_start, records)
    else:
        yield from _ties_by_key(records, plan)


def _until(records: Iterator[Record], check: Condition, field: str | None) -> Iterator[Record]:
    """``records`` until the first whose ``field`` fails ``check``: the read left its range."""
    for record in records:
        if field is not None and not check.matches(field in record, record.get(field)):
            return
        yield record


def _ties_by_key(records: Iterator[Record], plan: Plan) -> Iterator[Record]:
    """An index's records in the plan's order: DynamoDB orders them by the index's sort field,
    and each run of equal values (a tie) is ordered here by the primary key."""
    sort_field = plan.sort_field
    tie: list[Record] = []
    value: Any = None

    def flush() -> list[Record]:
        done = sorted(tie, key=plan.position, reverse=bool(plan.descending))
        return [record for record in done if plan.after_start(record)]

    for record in records:
        current = value_identity(record.get(sort_field)) if sort_field is not None else None
        if tie and current != value:
            yield from flush()
            tie = []
        value = current
        tie.append(record)
    if tie:
        yield from flush()


def _partitions(table: Table, plan: Plan, project: Sequence[str]) -> Iterator[Record]:
    reads = [_query(table, plan, partition, project) for partition in plan.partitions]
    if plan.descending is None or len(reads) == 1:
        for records in reads:
            yield from records
        return
    import heapq  # an ordered read of several partitions: rare, off the cold path

    yield from heapq.merge(*reads, key=plan.position, reverse=plan.descending)


# -- scans --------------------------------------------------------------------------------------


def _scan(table: Table, plan: Plan, project: Sequence[str]) -> Iterator[Record]:
    expr = Expression()
    params: dict[str, Any] = {"TableName": table.name, "ConsistentRead": True}
    if plan.stable:  # one segment of a resumable read: DynamoDB's parallel scan, after a key
        if plan.segments > 1:
            params.update(Segment=plan.segment, TotalSegments=plan.segments)
        if plan.after is not None:
            params["ExclusiveStartKey"] = key_item(plan.schema.id_fields, plan.after)
    text, _exact = filter_expression(expr, plan.filters)
    if text is not None:
        params["FilterExpression"] = text
    params.update(_projection(expr, project))
    params.update(expr.params())
    pages = _pages(table.client.scan, params, _limits(plan, text is not None))
    records = (from_item(item) for page in pages for item in page.get("Items", ()))
    if plan.descending is None:
        yield from records
        return
    ordered = sorted(records, key=plan.position, reverse=plan.descending)
    yield from filter(plan.after_start, ordered)


def read(table: Table, plan: Plan, project: Sequence[str] = ()) -> Iterator[Record]:
    """The records ``plan`` selects (a superset of its filters' matches), lazily, in its order
    when it is ordered; with ``project``, records hold only those fields."""
    if plan.never:
        return iter(())
    if plan.access == "key":
        return _get(table, plan, project)
    if plan.access == "scan":
        return _scan(table, plan, project)
    return _partitions(table, plan, project)


def count(table: Table, plan: Plan) -> int:
    """How many records ``plan`` selects: the server counts (``Select=COUNT``) when it applies
    the filters exactly, else keys and filtered fields are read and checked here."""
    if plan.never:
        return 0
    keys: Sequence[str] = ()
    if plan.access in ("partition", "index"):
        keys = plan.index.fields if plan.index is not None else plan.schema.id_fields
    _text, exact = filter_expression(Expression(), plan.filters, skip=keys)
    if plan.access == "key" or not exact:
        return sum(1 for record in read(table, plan, fields_of(plan)) if plan.accepts(record))
    total = 0
    for partition in plan.partitions if plan.access != "scan" else (None,):
        expr = Expression()
        params: dict[str, Any] = {"TableName": table.name, "Select": "COUNT"}
        if plan.access == "scan":
            operation = table.client.scan
            params["ConsistentRead"] = True
        else:
            operation = table.client.query
            field = plan.partition_field
            assert field is not None
            params["KeyConditionExpression"] = key_condition(
                expr, field, partition, plan.sort_field, plan.sort
            )
            if plan.index is None:
                params["ConsistentRead"] = True
            else:
                params["IndexName"] = plan.index.name
        text, _exact = filter_expression(expr, plan.filters, skip=keys)
        if text is not None:
            params["FilterExpression"] = text
        params.update(expr.params())
        for page in _pages(operation, params, itertools.repeat(None)):
            total += int(page.get("Count", 0))
    return total


def item_key(plan: Plan, record: Record) -> Item:
    """The wire key of a record read for ``plan``'s kind."""
    fields = plan.schema.id_fields
    return key_item(fields, plan.schema.key_of(record))
