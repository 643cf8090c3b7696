"""Statements sent through libpq directly: what ``cursor.execute`` does for kvstore's calls of one
statement (find by key, a bounded read, a put, a guarded write, an update), and what psycopg's
pipeline does for a transaction, without their machinery.

psycopg's cursor spends about as much client CPU on each ``execute`` (query conversion, its
prepared-statement bookkeeping, result state) as a loopback round trip takes on the client, and
its pipeline more (docs/PERFORMANCE.md). kvstore's statements are its own, with ``%s`` and ``%b``
placeholders, so a ``Wire`` can send them itself:

- parameters are dumped and rows loaded by the connection's own adapters (a psycopg
  ``Transformer``, as a cursor uses), with the types psycopg gives them, in binary for ``%b``
  and as text for ``%s``;
- a statement is prepared once it ran ``prepare_threshold`` times on the connection, as psycopg
  does (``None`` there: never), under a name of kvstore's own (``kvstore_N``, new in the
  process), at most ``MAX_PREPARED`` of them a connection;
- a server's error is psycopg's own exception (``error_from_result``), and a lost connection
  raises what the cursor would, so kvstore's error mapping and retries see no difference.

A prepared statement another party deallocated (psycopg's ``DEALLOCATE ALL`` after a rollback,
a ``DISCARD ALL``) or whose result type changed (its table was altered) is sent again unprepared,
when no transaction is open: the statement did not run (in a pipeline: ``Stale``). Anything
unusual (a pipeline already open, a connection not in autocommit or not usable, a named
placeholder) takes the connection's cursor, reused from call to call; a pipeline's statements,
sent as they are made, must be kvstore's own (``%s``, ``%t`` and ``%b`` placeholders).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from typing import Any

import psycopg
from psycopg import pq
from psycopg.abc import PQGen
from psycopg.adapt import PyFormat, Transformer
from psycopg.errors import error_from_result
from psycopg.generators import execute, fetch, send

__all__ = ["MAX_PREPARED", "Stale", "Wire", "numbered"]

MAX_PREPARED = 200
"""Statements a ``Wire`` prepares on its connection at most; later ones run unprepared."""

_OK = (pq.ExecStatus.TUPLES_OK, pq.ExecStatus.COMMAND_OK)
_CONN_OK = pq.ConnStatus.OK
_FATAL = pq.ExecStatus.FATAL_ERROR
_IDLE = pq.TransactionStatus.IDLE
_SQLSTATE = pq.DiagnosticField.SQLSTATE
_GONE = b"26000"
"""invalid_sql_statement_name: the prepared statement no longer exists."""
_CHANGED = b"0A000"
"""feature_not_supported, as in "cached plan must not change result type"."""
_FAIL = b"SELECT 1 / 0"
"""What ends a pipeline whose statements must not be applied: it fails, so the server rolls back
what ran before it in the pipeline's transaction."""
_PLACEHOLDER = re.compile(rb"%(.)", re.DOTALL)
_FORMATS = {b"s": PyFormat.TEXT, b"t": PyFormat.TEXT, b"b": PyFormat.BINARY}
"""How each placeholder's parameter is sent: ``%b`` in binary, ``%s`` and ``%t`` as text."""
Numbered = tuple[bytes, list[PyFormat]]
_numbered: dict[bytes, Numbered | None] = {}
"""Each statement with its placeholders numbered (``None``: one the cursor must read)."""


def numbered(query: bytes) -> Numbered | None:
    """``query`` with its placeholders ``%s``, ``%t`` and ``%b`` numbered ``$1, $2, ...`` and
    ``%%`` made ``%``, as psycopg converts it, and the format of each parameter; ``None`` when
    it holds another placeholder (named ones: the cursor's to read)."""
    if query in _numbered:
        return _numbered[query]
    formats: list[PyFormat] = []

    def replace(match: re.Match[bytes]) -> bytes:
        char = match.group(1)
        if char == b"%":
            return b"%"
        formats.append(_FORMATS[char])  # KeyError: not one of ours
        return b"$%d" % len(formats)

    try:
        converted: Numbered | None = (_PLACEHOLDER.sub(replace, query), formats)
    except KeyError:
        converted = None
    if len(_numbered) >= 4 * MAX_PREPARED:
        _numbered.clear()
    _numbered[query] = converted
    return converted


_numbers = itertools.count()


def _new_name() -> bytes:
    """A prepared statement's name, new in the process (two wires on one connection, which a
    caller could make, never meet)."""
    return b"kvstore_%d" % next(_numbers)


class _Send:
    """One statement of a pipeline: its key (query and parameter types), its numbered text and
    dumped parameters, its formats, the name it is prepared under, and whether it is prepared
    in this pipeline."""

    __slots__ = ("converted", "formats", "key", "name", "ripe", "values")

    def __init__(
        self,
        key: tuple[bytes, tuple[int, ...]],
        converted: bytes,
        values: Sequence[Any],
        formats: list[Any],
        name: bytes | None,
        ripe: bool,
    ) -> None:
        self.key, self.converted, self.values, self.formats = key, converted, values, formats
        self.name, self.ripe = name, ripe


class Stale(Exception):
    """A pipeline's prepared statement was gone or out of date (see ``Wire.pipeline``)."""


def _until_sync(pgconn: pq.abc.PGconn) -> PQGen[list[pq.abc.PGresult]]:
    """Every result of a pipeline up to its Sync (the Sync's own left out)."""
    results: list[pq.abc.PGresult] = []
    while True:
        result = yield from fetch(pgconn)
        if result is None:
            continue  # the end of one statement's results
        if result.status == pq.ExecStatus.PIPELINE_SYNC:
            return results
        results.append(result)


class Wire:
    """Statements of one connection sent through libpq (see the module's docstring)."""

    __slots__ = ("_counts", "_names", "_pgconn", "_tx", "connection", "cursor")

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection
        self.cursor = connection.cursor()
        """The connection's cursor for what the wire does not send (reused, as ``Pool.cursor``
        says)."""
        self._pgconn = connection.pgconn
        self._tx = Transformer(connection)
        self._names: dict[tuple[bytes, tuple[int, ...]], bytes] = {}
        self._counts: dict[tuple[bytes, tuple[int, ...]], int] = {}

    def one(self, query: bytes, params: Sequence[Any]) -> tuple[Any, ...] | None:
        """The first row of ``query`` run with ``params`` (``None`` when it returns none)."""
        result = self._result(query, params)
        if result is None:
            row: tuple[Any, ...] | None = self.cursor.execute(query, params).fetchone()
            return row
        return self.first_row(result)

    def all(self, query: bytes, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Every row of ``query`` run with ``params``."""
        result = self._result(query, params)
        if result is None:
            return self.cursor.execute(query, params).fetchall()
        count = result.ntuples
        if count == 0:
            return []
        tx = self._tx
        tx.set_pgresult(result)
        rows: list[tuple[Any, ...]] = tx.load_rows(0, count, tuple)
        tx.set_pgresult(None)  # a large result is not kept until the next call
        return rows

    def rowcount(self, query: bytes, params: Sequence[Any]) -> int:
        """The rows ``query`` (an INSERT, UPDATE or DELETE) changed."""
        result = self._result(query, params)
        if result is None:
            return self.cursor.execute(query, params).rowcount
        return result.command_tuples or 0

    def first_row(self, result: pq.abc.PGresult) -> tuple[Any, ...] | None:
        """The first row of ``result`` (one of ``pipeline``'s), loaded."""
        if result.ntuples == 0:
            return None
        tx = self._tx
        tx.set_pgresult(result)
        return tx.load_row(0, tuple)

    def pipeline(
        self, statements: Iterable[tuple[bytes | str, Sequence[Any], bool]]
    ) -> list[pq.abc.PGresult] | None:
        """The results of ``statements`` (each a query, its parameters, and whether it may be
        prepared) sent in one pipeline that ends with one Sync: one round trip.

        ``statements`` is read as the statements go out: each is sent as soon as the caller has
        made it, and the server runs it while the caller makes the next. One result a statement:
        the server runs them in order, and after the first that fails (``FATAL_ERROR``) the rest
        are ``PIPELINE_ABORTED``. ``None`` (with nothing read of ``statements``) when the
        connection is in a pipeline already (its caller's) or not usable: psycopg's pipeline must
        send them. ``Stale`` when a prepared statement was gone: nothing after it ran, and the
        names it lost are forgotten (prepared again at the threshold).

        An exception raised by ``statements`` ends the pipeline with a statement that fails, so
        the server applies none of those sent before it (a transaction they run in is left
        aborted, for the caller to roll back), then propagates. An interrupted pipeline closes
        the connection (half a conversation)."""
        connection, pgconn = self.connection, self._pgconn
        if pgconn.pipeline_status or pgconn.status != _CONN_OK:
            return None
        sends: list[_Send] = []
        stopped: Exception | None = None
        with connection.lock:
            pgconn.enter_pipeline_mode()
            try:
                feed = iter(statements)
                while True:
                    try:
                        item = next(feed, None)
                        sent = None if item is None else self._ready(*item)
                    except Exception as exc:
                        stopped = exc
                        pgconn.send_query_params(_FAIL, None)
                        break
                    if sent is None:
                        break
                    self._send(sent)
                    sends.append(sent)
                    pgconn.flush()  # the server starts on it (non-blocking: it never waits)
                pgconn.pipeline_sync()
                connection.wait(send(pgconn))
                results = iter(connection.wait(_until_sync(pgconn)))
                pgconn.exit_pipeline_mode()
            except BaseException:
                if pgconn.pipeline_status:
                    connection.close()
                raise
        found_results = []
        for sent in sends:
            if sent.ripe and next(results).status == pq.ExecStatus.COMMAND_OK:
                assert sent.name is not None
                self._names[sent.key] = sent.name
            found_results.append(next(results))
        if stopped is not None:
            raise stopped
        for sent, result in zip(sends, found_results, strict=True):
            if result.status == _FATAL:
                if not sent.ripe and sent.name is not None and self._stale(sent.key, result):
                    raise Stale()
                break
        return found_results

    def _ready(self, query: bytes | str, params: Sequence[Any], preparable: bool) -> _Send:
        """One statement of a pipeline, numbered and dumped."""
        text = query.encode() if isinstance(query, str) else query
        sent = self._dumped(text, params, preparable)
        if sent is None:
            raise psycopg.ProgrammingError(
                f"kvstore cannot send this statement in a pipeline: {text[:200]!r}"
            )
        return sent

    def _send(self, sent: _Send) -> None:
        """Send one statement of a pipeline (its PREPARE first, when it is ripe)."""
        pgconn = self._pgconn
        if sent.ripe:  # its PREPARE's result comes before its own
            sent.name = _new_name()
            pgconn.send_prepare(sent.name, sent.converted, sent.key[1])
        if sent.name is None:
            pgconn.send_query_params(sent.converted, sent.values, sent.key[1], sent.formats, 0)
        else:
            pgconn.send_query_prepared(sent.name, sent.values, sent.formats, 0)

    def _result(
        self, query: bytes, params: Sequence[Any], again: bool = False
    ) -> pq.abc.PGresult | None:
        """``query``'s result, sent through libpq; ``None`` when the cursor should send it."""
        connection = self.connection
        pgconn = self._pgconn
        if pgconn.pipeline_status or pgconn.status != _CONN_OK or not connection.autocommit:
            return None
        sent = self._dumped(query, params, True)
        if sent is None:
            return None
        with connection.lock:
            if sent.ripe:
                sent.name = self._prepare(sent.key, sent.converted)
            if sent.name is None:
                pgconn.send_query_params(sent.converted, sent.values, sent.key[1], sent.formats, 0)
            else:
                pgconn.send_query_prepared(sent.name, sent.values, sent.formats, 0)
            result: pq.abc.PGresult = connection.wait(execute(pgconn))[-1]
        if result.status in _OK:
            return result
        if (
            sent.name is not None
            and not again
            and self._stale(sent.key, result)  # forgets it
            and pgconn.transaction_status == _IDLE  # no transaction was open: it did not run
        ):
            return self._result(query, params, again=True)
        raise error_from_result(result, encoding=connection.info.encoding)

    def _dumped(self, query: bytes, params: Sequence[Any], preparable: bool) -> _Send | None:
        """``query`` numbered and ``params`` dumped, with the name the statement is prepared
        under and whether to prepare it now (a ``preparable`` one counts one more use);
        ``None`` when the cursor must send it (its placeholders, or a count that does not fit:
        the cursor says what is wrong)."""
        found = numbered(query)
        if found is None or len(found[1]) != len(params):
            return None
        converted, formats = found
        tx = self._tx
        values = tx.dump_sequence(params, formats)
        key = (query, tx.types or ())
        name = self._names.get(key) if preparable else None
        ripe = preparable and name is None and self._ripe(key)
        return _Send(key, converted, values, list(tx.formats or ()), name, ripe)

    def _ripe(self, key: tuple[bytes, tuple[int, ...]]) -> bool:
        """Whether the statement of ``key`` is to be prepared now (it counts one more use)."""
        threshold = self.connection.prepare_threshold
        if threshold is None or len(self._names) >= MAX_PREPARED:
            return False
        uses = self._counts.get(key, 0) + 1
        if uses < threshold:
            if len(self._counts) >= 4 * MAX_PREPARED:
                self._counts.clear()  # bounded: forgetting costs a few unprepared runs
            self._counts[key] = uses
            return False
        self._counts.pop(key, None)
        return True

    def _prepare(self, key: tuple[bytes, tuple[int, ...]], converted: bytes) -> bytes:
        """Prepare ``converted`` with the parameter types of ``key`` (one round trip; the
        server's refusal is the caller's error)."""
        pgconn = self._pgconn
        name = _new_name()
        pgconn.send_prepare(name, converted, key[1])
        result = self.connection.wait(execute(pgconn))[-1]
        if result.status != pq.ExecStatus.COMMAND_OK:
            raise error_from_result(result, encoding=self.connection.info.encoding)
        self._names[key] = name
        return name

    def _stale(self, key: tuple[bytes, tuple[int, ...]], result: pq.abc.PGresult) -> bool:
        """Whether ``result`` says the prepared statement of ``key`` is gone or out of date
        (then forgotten: the next run prepares it again)."""
        state = result.error_field(_SQLSTATE)
        if state == _GONE:
            self._names.clear()  # DEALLOCATE ALL or DISCARD ALL took every one
        elif state == _CHANGED:
            self._names.pop(key, None)
        else:
            return False
        return True
