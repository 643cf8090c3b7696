"""The ``dynamo`` backend's driver: a kind's records in one DynamoDB table, in the fewest calls.

``find`` on a whole key is a consistent GetItem, a filter on the partition key a consistent Query,
anything else a consistent Scan; Query and Scan always follow ``LastEvaluatedKey`` (the 1 MB page
limit counts before the filter). Every record is also checked with ``kvstore.records.matches``, so
nested values and servers that compare loosely (moto) still give the contract's typed equality.

A streaming select (``iter_all``, ``find_all``: no ``limit``) asks for pages of at most
``STREAM_PAGE_LIMIT`` (1,000) items. A full 1 MB page of small items is 10,000 items or more, which
botocore parses into ~28 MiB of Python objects at once: with the cap, peak memory no longer depends
on the kind's size (``kvstore copy`` DynamoDB Local -> PostgreSQL, 60-byte records: 96 MB at 10,000
and 175 MB at 100,000 records without it, 66 MB at both with it). It costs no time: ``iter_all``
over those 100,000 records took 0.83 of a raw paginated Scan with it, 0.98 with full pages (2,500:
0.88), and the bench's 600-byte case 0.88 (0.95 before). Items of ~1 KB or more fill 1 MB before
1,000, so the cap only adds calls for small items, where 1,000 a call keeps the per-call latency
negligible. Selects with a ``limit`` (``find``) and key-only reads keep full pages.

``update`` is one UpdateItem (SET/REMOVE, ``attribute_exists`` condition, ``ReturnValues=ALL_OLD``):
the merged record is the old one plus the changes (UpdateItem is atomic, so that is what was
stored). DynamoDB itself refuses an item past 409,600 bytes (``InvalidArgument``, nothing changed);
the contract also refuses exactly 409,600 (its limit is strict), and moto sizes its own way, so
``check(merged)`` runs after the write and, when it fails, a conditional UpdateItem puts the touched
attributes back before the error is raised: the record ends unchanged, though a reader racing that
one boundary case could see it briefly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from kvstore.backend import Driver, Filters, Key, KindSchema, Record, write_behind
from kvstore.errors import AlreadyExists, ConfigError, NotFound
from kvstore.records import matches, matching
from kvstore.values import value_identity
from kvstore_dynamo.batch import batch_get, batch_write
from kvstore_dynamo.codec import Item, from_item, to_attribute, to_item
from kvstore_dynamo.connection import Connection, connection_from_options
from kvstore_dynamo.errors import error_code, map_exceptions
from kvstore_dynamo.expressions import Expression, filter_expression
from kvstore_dynamo.tables import ensure_table

__all__ = ["DynamoDriver", "DynamoNative", "open_driver"]

_IN_LIMIT = 100
"""DynamoDB's limit of values in one ``IN`` list."""

STREAM_PAGE_LIMIT = 1000
"""Items per Scan/Query page when a select streams (no ``limit``): see the module docstring."""


def _paginate(operation: Callable[..., Any], params: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every page of a Query or Scan: ``LastEvaluatedKey`` is followed until there is none."""
    while True:
        page: dict[str, Any] = operation(**params)
        yield page
        last = page.get("LastEvaluatedKey")
        if not last:
            return
        params = {**params, "ExclusiveStartKey": last}


class DynamoNative(NamedTuple):
    """``store.native()`` on DynamoDB: the boto3 ``Table`` resource and the low-level client."""

    table: Any
    client: Any
    table_name: str


class DynamoDriver(Driver):
    """A kind's records in the table ``table_prefix + kind``."""

    batch_size = 100

    def __init__(self, schema: KindSchema, connection: Connection) -> None:
        super().__init__(schema)
        self._connection = connection
        self.table_name = connection.table_prefix + schema.kind
        self._partition = schema.id_fields[0]
        self._return_old_on_failure = True

    # -- helpers ----------------------------------------------------------------------------------

    def _client(self) -> Any:
        return self._connection.client()

    def _errors(self) -> Any:
        return map_exceptions(self.table_name)

    def _key_item(self, key: Key) -> Item:
        return {
            field: to_attribute(value)
            for field, value in zip(self.schema.id_fields, key, strict=True)
        }

    def _key_of_item(self, item: Item) -> Item:
        return {field: item[field] for field in self.schema.id_fields}

    def _get(self, key: Key, project: Sequence[str] = ()) -> Record | None:
        expr = Expression()
        params: dict[str, Any] = {}
        if project:
            params["ProjectionExpression"] = ", ".join(expr.name(field) for field in project)
        response = self._client().get_item(
            TableName=self.table_name,
            Key=self._key_item(key),
            ConsistentRead=True,
            **params,
            **expr.params(),
        )
        item = response.get("Item")
        return from_item(item) if item is not None else None

    def get(self, key: Key) -> Record | None:
        with self._errors():
            return self._get(key)

    def _pages(
        self,
        filters: Filters,
        *,
        count: bool = False,
        project: Sequence[str] = (),
        page_limit: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every Query (when the partition key is filtered) or Scan page for ``filters``."""
        expr = Expression()
        params: dict[str, Any] = {"TableName": self.table_name, "ConsistentRead": True}
        if count:
            params["Select"] = "COUNT"
        if page_limit:
            params["Limit"] = page_limit
        if project:
            params["ProjectionExpression"] = ", ".join(expr.name(field) for field in project)
        if self._partition in filters:
            operation = self._client().query
            params["KeyConditionExpression"] = (
                f"{expr.name(self._partition)} = {expr.value(filters[self._partition])}"
            )
            condition = filter_expression(expr, filters, skip=[self._partition])
        else:
            operation = self._client().scan
            condition = filter_expression(expr, filters)
        if condition:
            params["FilterExpression"] = condition
        params.update(expr.params())
        return _paginate(operation, params)

    # -- reads ----------------------------------------------------------------------------------

    def ensure(self) -> None:
        """Create the table (PAY_PER_REQUEST, key schema from the kind) unless it exists; wait for it."""
        with self._errors():
            ensure_table(self._client(), self.table_name, self.schema)

    def select(self, filters: Filters, limit: int | None = None) -> Iterator[Record]:
        return self._matching(filters, limit)

    def _matching(
        self, filters: Filters, limit: int | None, project: Sequence[str] = ()
    ) -> Iterator[Record]:
        """``select``; with ``project``, records hold only those fields (plus the filtered ones)."""
        if limit is not None and limit <= 0:
            return
        if project:
            project = list(dict.fromkeys([*project, *filters]))
        with self._errors():
            key = self.schema.key_filters(filters)
            if key is not None:
                record = self._get(key, project)
                if record is not None and matches(record, filters):
                    yield record
                return
            page_limit = STREAM_PAGE_LIMIT if limit is None and not project else None
            pages = self._pages(filters, project=project, page_limit=page_limit)
            items = (item for page in pages for item in page.get("Items", []))
            yield from matching(map(from_item, items), filters, limit)

    def count(self, filters: Filters) -> int:
        nested = any(isinstance(value, (list, dict)) for value in filters.values())
        if nested or self.schema.key_filters(filters) is not None:
            # Nested equality is checked here, not by the server (see kvstore_dynamo.expressions).
            return sum(1 for _ in self._matching(filters, None, self.schema.id_fields))
        with self._errors():
            return sum(page.get("Count", 0) for page in self._pages(filters, count=True))

    def find_in(self, field: str, values: Sequence[Any]) -> Iterator[Record]:
        return self._in(field, values)

    def _in(
        self, field: str, values: Sequence[Any], project: Sequence[str] = ()
    ) -> Iterator[Record]:
        """``find_in``; with ``project``, records hold only those fields (plus ``field``)."""
        if project:
            project = list(dict.fromkeys([*project, field]))
        with self._errors():
            if field == self._partition and len(self.schema.id_fields) == 1:
                keys = [self._key_item((value,)) for value in values]
                for item in batch_get(self._client(), self.table_name, keys, project):
                    yield from_item(item)
                return
            if field == self._partition:
                for value in values:
                    yield from self._matching({field: value}, None, project)
                return
            wanted = {value_identity(value) for value in values if value is not None}
            absent_ok = any(value is None for value in values)
            for page in self._in_pages(field, values, project):
                for item in page.get("Items", []):
                    record = from_item(item)
                    if field in record:
                        if value_identity(record[field]) in wanted:
                            yield record
                    elif absent_ok:
                        yield record

    def _in_pages(
        self, field: str, values: Sequence[Any], project: Sequence[str]
    ) -> Iterator[dict[str, Any]]:
        expr = Expression()
        params: dict[str, Any] = {"TableName": self.table_name, "ConsistentRead": True}
        if project:
            params["ProjectionExpression"] = ", ".join(expr.name(field) for field in project)
        if len(values) <= _IN_LIMIT:
            name = expr.name(field)
            parts: list[str] = []
            scalars = [v for v in values if v is not None and not isinstance(v, (list, dict))]
            if scalars:
                parts.append(f"{name} IN ({', '.join(expr.value(v) for v in scalars)})")
            if any(v is None for v in values):
                parts.append(f"attribute_not_exists({name})")
            for tag in sorted(
                {"L" if isinstance(v, list) else "M" for v in values if isinstance(v, (list, dict))}
            ):
                parts.append(f"attribute_type({name}, {expr.type_tag(tag)})")
            params["FilterExpression"] = " OR ".join(parts)
        params.update(expr.params())
        # Past 100 values one unfiltered Scan, matched here, beats several filtered ones.
        return _paginate(self._client().scan, params)

    # -- writes ---------------------------------------------------------------------------------

    def put(self, record: Record) -> None:
        with self._errors():
            self._client().put_item(TableName=self.table_name, Item=to_item(record))

    def create(self, record: Record) -> None:
        expr = Expression()
        params: dict[str, Any] = {
            "TableName": self.table_name,
            "Item": to_item(record),
            "ConditionExpression": f"attribute_not_exists({expr.name(self._partition)})",
            **expr.params(),
        }
        with self._errors():
            try:
                self._put_new(params)
            except ClientError as exc:
                if error_code(exc) != "ConditionalCheckFailedException":
                    raise
                old: Item | None = exc.response.get("Item")  # type: ignore[assignment]
                raise AlreadyExists(
                    f"a {self.schema.kind} record with key {self.schema.key_of(record)!r} exists",
                    existing=from_item(old) if old else None,
                ) from None

    def _put_new(self, params: dict[str, Any]) -> None:
        client = self._client()
        if self._return_old_on_failure:
            try:
                client.put_item(**params, ReturnValuesOnConditionCheckFailure="ALL_OLD")
                return
            except ClientError as exc:
                # A server without ReturnValuesOnConditionCheckFailure: do without the old item.
                if error_code(exc) != "ValidationException" or "ReturnValuesOnCondition" not in str(
                    exc
                ):
                    raise
                self._return_old_on_failure = False
        client.put_item(**params)

    def update(
        self, key: Key, sets: Record, removes: Sequence[str], check: Callable[[Record], None]
    ) -> Record:
        with self._errors():
            if not sets and not removes:
                current = self._get(key)
                if current is None:
                    raise NotFound(f"no {self.schema.kind} record has key {key!r}")
                check(current)
                return current
            expr = Expression()
            clauses = []
            if sets:
                clauses.append(
                    "SET " + ", ".join(f"{expr.name(f)} = {expr.value(v)}" for f, v in sets.items())
                )
            if removes:
                clauses.append("REMOVE " + ", ".join(expr.name(f) for f in removes))
            try:
                response = self._client().update_item(
                    TableName=self.table_name,
                    Key=self._key_item(key),
                    UpdateExpression=" ".join(clauses),
                    ConditionExpression=f"attribute_exists({expr.name(self._partition)})",
                    ReturnValues="ALL_OLD",
                    **expr.params(),
                )
            except ClientError as exc:
                if error_code(exc) == "ConditionalCheckFailedException":
                    raise NotFound(f"no {self.schema.kind} record has key {key!r}") from None
                raise
            old: Item = response.get("Attributes", {})
            merged = from_item(old)
            merged.update(sets)
            for field in removes:
                merged.pop(field, None)
            try:
                check(merged)
            except Exception:
                self._restore(key, old, [*sets, *removes])
                raise
            return merged

    def _restore(self, key: Key, old: Item, fields: Sequence[str]) -> None:
        """Put the touched ``fields`` back as they were in ``old`` (undoing a refused update)."""
        expr = Expression()
        back = [f for f in fields if f in old]
        gone = [f for f in fields if f not in old]
        clauses = []
        if back:
            clauses.append(
                "SET " + ", ".join(f"{expr.name(f)} = {expr.attribute(old[f])}" for f in back)
            )
        if gone:
            clauses.append("REMOVE " + ", ".join(expr.name(f) for f in gone))
        try:
            self._client().update_item(
                TableName=self.table_name,
                Key=self._key_item(key),
                UpdateExpression=" ".join(clauses),
                ConditionExpression=f"attribute_exists({expr.name(self._partition)})",
                **expr.params(),
            )
        except ClientError as exc:
            # A failed condition means the record was removed meanwhile: nothing left to undo.
            if error_code(exc) != "ConditionalCheckFailedException":
                raise

    def _delete_keys(self, keys: Iterator[Item]) -> int:
        """Delete the items at ``keys`` (streamed), 25 a call; return how many keys were given."""
        client = self._client()
        removed = 0
        chunk: list[dict[str, Any]] = []
        for key in keys:
            chunk.append({"DeleteRequest": {"Key": key}})
            removed += 1
            if len(chunk) >= self.batch_size:
                batch_write(client, self.table_name, chunk, self.schema.id_fields)
                chunk = []
        if chunk:
            batch_write(client, self.table_name, chunk, self.schema.id_fields)
        return removed

    def remove(self, filters: Filters) -> int:
        with self._errors():
            records = self._matching(filters, None, self.schema.id_fields)
            return self._delete_keys(self._key_item(self.schema.key_of(r)) for r in records)

    def remove_in(self, field: str, values: Sequence[Any]) -> int:
        with self._errors():
            records = self._in(field, values, self.schema.id_fields)
            return self._delete_keys(self._key_item(self.schema.key_of(r)) for r in records)

    def truncate(self) -> int:
        with self._errors():
            pages = self._pages({}, project=self.schema.id_fields)
            return self._delete_keys(
                self._key_of_item(item) for page in pages for item in page.get("Items", [])
            )

    def encode_many(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        """``records`` as BatchWriteItem put requests."""
        return [{"PutRequest": {"Item": to_item(record)}} for record in records]

    def write_many(self, batch: list[dict[str, Any]]) -> None:
        with self._errors():
            batch_write(self._client(), self.table_name, batch, self.schema.id_fields)

    def put_many(self, records: Sequence[Record]) -> None:
        self.write_many(self.encode_many(records))

    def writer(self, many: bool) -> AbstractContextManager[Callable[[list[Any]], None]]:
        """With more than one chunk, each is written from a helper thread while core prepares the
        next (a BatchWriteItem mostly waits on the network)."""
        return write_behind(self.write_chunk) if many else nullcontext(self.write_chunk)

    def native(self) -> DynamoNative:
        """The boto3 ``Table`` resource (its own client, same configuration) and the client."""
        with self._errors():
            table = self._connection.resource().Table(self.table_name)
            return DynamoNative(table, self._client(), self.table_name)


def open_driver(schema: KindSchema, options: Mapping[str, Any]) -> Driver:
    """A DynamoDB driver for ``schema``'s kind; no I/O (options: ``connection_from_options``)."""
    if len(schema.key_types) != len(schema.id_fields):  # pragma: no cover - core guarantees it
        raise ConfigError("key_type must name one type per id field")
    return DynamoDriver(schema, connection_from_options(options))
