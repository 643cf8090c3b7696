"""The ``dynamo`` driver: a kind's records in one DynamoDB table, each call in the fewest requests.

Reads translate core's plans (``kvstore_dynamo.queries``), writes its guarded ops
(``kvstore_dynamo.writes``), ``ensure`` creates the table, its indexes and its TTL
(``kvstore_dynamo.tables``); ``put_many`` and deletes go through BatchWriteItem
(``kvstore_dynamo.batch``), except the delete of one whole key: one conditional DeleteItem.
Every botocore error is mapped in ``kvstore_dynamo.errors``; every request, with its retries, is
bounded by the call's time budget (``kvstore_dynamo.retries``).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, NamedTuple

from kvstore.backend import Driver, KindSchema, Plan, Record, write_behind
from kvstore.writes import Write
from kvstore_dynamo import queries
from kvstore_dynamo import writes as requests
from kvstore_dynamo.batch import WRITE_BATCH, PutWriter, batch_write
from kvstore_dynamo.client import Connection
from kvstore_dynamo.errors import map_exceptions
from kvstore_dynamo.settings import resolve
from kvstore_dynamo.tables import ensure_table

__all__ = ["DynamoDriver", "DynamoNative", "open_driver"]

DELETE_CHUNK = 4 * WRITE_BATCH
"""Keys gathered before their deletes are sent (in BatchWriteItems of 25) while a read goes on."""


class DynamoNative(NamedTuple):
    """``store.native()`` on DynamoDB: the boto3 ``Table`` resource and the low-level client."""

    table: Any
    client: Any
    table_name: str


class DynamoDriver(Driver):
    """A kind's records in the table ``table_prefix + kind``."""

    batch_size = 100
    scan_segments = 1000
    """A resumable scan is a parallel Scan (``Segment``/``TotalSegments``, up to 1,000,000)."""

    def __init__(self, schema: KindSchema, connection: Connection) -> None:
        super().__init__(schema)
        self._connection = connection
        self.table_name = connection.table_prefix + schema.kind
        self._limits = connection.limits
        self._writer = requests.Writer(schema, self.table_name)

    def __repr__(self) -> str:
        return f"<DynamoDriver kind={self.schema.kind!r} table={self.table_name!r}>"

    @property
    def transaction_scope(self) -> Hashable:
        return self._connection.scope

    def _client(self) -> Any:
        return self._connection.client()

    def _errors(self) -> AbstractContextManager[None]:
        return map_exceptions(self.schema.kind, self.table_name)

    def _table(self) -> queries.Table:
        return queries.Table(self._client(), self.table_name, self._limits)

    def ensure(self) -> None:
        with self._errors():
            ensure_table(self._client(), self.table_name, self.schema)

    # -- reads ----------------------------------------------------------------------------------

    def read(self, plan: Plan) -> Iterator[Record]:
        with self._errors():
            yield from queries.read(self._table(), plan)

    def count(self, plan: Plan) -> int:
        with self._errors():
            return queries.count(self._table(), plan)

    def delete(self, plan: Plan) -> int:
        with self._errors():
            if plan.access == "key" and len(plan.keys) == 1:
                # One conditional DeleteItem instead of a GetItem and a BatchWriteItem.
                return self._writer.remove_one(self._client(), plan.keys[0], plan.filters)
            table = self._table()
            removed = 0
            chunk: list[dict[str, Any]] = []
            for record in queries.read(table, plan, queries.fields_of(plan)):
                if not plan.accepts(record):
                    continue
                chunk.append({"DeleteRequest": {"Key": queries.item_key(plan, record)}})
                removed += 1
                if len(chunk) >= DELETE_CHUNK:
                    self._batch_write(table.client, chunk)
                    chunk = []
            if chunk:
                self._batch_write(table.client, chunk)
            return removed

    def _batch_write(self, client: Any, batch: list[dict[str, Any]]) -> None:
        batch_write(client, self.table_name, batch, self.schema.id_fields, self._limits)

    # -- writes ---------------------------------------------------------------------------------

    def write(self, op: Write) -> Record | None:
        with self._errors():
            return self._writer.write(self._client(), op)

    def put_many(self, records: Sequence[Record]) -> None:
        writer = PutWriter(self._write_chunk)
        writer.store([writer.encode(records)])

    def _write_chunk(self, batches: list[Any]) -> None:
        with self._errors():
            client = self._client()
            for batch in batches:
                self._batch_write(client, batch)

    @contextmanager
    def _batch_writer(self, many: bool) -> Iterator[PutWriter]:
        writer = PutWriter(self._write_chunk)
        if not many:
            yield writer
            return
        # A BatchWriteItem mostly waits on the network: core checks the next chunk meanwhile.
        with write_behind(writer.store) as submit:
            writer.send = submit
            yield writer

    def batch_writer(self, many: bool) -> AbstractContextManager[PutWriter]:
        return self._batch_writer(many)

    def transact(self, ops: Sequence[tuple[Driver, Write]]) -> None:
        tables = []
        for driver, op in ops:
            assert isinstance(driver, DynamoDriver)
            tables.append((driver.schema, driver.table_name, op))
        kinds = sorted({schema.kind for schema, _table, _op in tables})
        names = sorted({table for _schema, table, _op in tables})
        # An error names every table of the transaction: DynamoDB does not say which one failed.
        with map_exceptions(" or ".join(kinds), " or ".join(names)):
            requests.transact(self._client(), tables)

    def native(self) -> DynamoNative:
        """The boto3 ``Table`` resource (its own client, same configuration) and the client."""
        with self._errors():
            table = self._connection.resource().Table(self.table_name)
            return DynamoNative(table, self._client(), self.table_name)


def open_driver(
    schema: KindSchema,
    *,
    client: Any = None,
    session: Any = None,
    table_prefix: str | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    timeout: float | None = None,
) -> Driver:
    """A DynamoDB driver for ``schema``'s kind; no I/O.

    ``client``: a boto3/botocore DynamoDB low-level client, used as is, with its own timeouts
    and retries (it excludes the next three); ``session``: a ``boto3.session.Session`` to make
    the client from; ``endpoint_url`` and ``region`` override ``AWS_ENDPOINT_URL_DYNAMODB`` and
    ``AWS_REGION``/``AWS_DEFAULT_REGION`` (with an endpoint and no region, ``us-east-1``);
    ``table_prefix`` overrides ``DYNAMO_TABLE_PREFIX``; ``timeout`` overrides ``KVSTORE_TIMEOUT``,
    the time budget in seconds of each request with its retries (the client's connect and read
    timeouts come from it; with ``client=``, only kvstore's own retries of a batch's leftovers
    follow it). ``TypeError`` for an option of the wrong type, ``InvalidArgument`` for a
    ``timeout`` that is not a positive number.
    """
    settings = resolve(
        client=client,
        session=session,
        table_prefix=table_prefix,
        endpoint_url=endpoint_url,
        region=region,
        timeout=timeout,
    )
    return DynamoDriver(schema, Connection(settings, client=client, session=session))
