"""Core's guarded writes as DynamoDB requests: one request each, the guard a ConditionExpression.

- ``Put``: PutItem; ``Delete``: DeleteItem; both with ``ReturnValuesOnConditionCheckFailure=
  ALL_OLD``, so a refusal reports the record it found without a second read (on a server that
  lacks it, a consistent GetItem right after).
- ``Update``: UpdateItem (``SET``, ``REMOVE``, ``ADD #f n`` for an increment), its condition
  the guard and each increment's validity (``increment_checks``). It asks for ``ALL_OLD``: the
  record after the update is that one with the changes applied (the update is atomic), computed
  by core's own rules, and the old values are what puts the record back in the one case
  DynamoDB stores what the contract refuses: a record of exactly 409,600 bytes (DynamoDB's limit
  is inclusive, the contract's strict), or, on servers that do not check numbers (moto), an
  increment's result outside the number rules. A reader racing that restoring write could see
  the refused record briefly.
- ``Check``: a consistent GetItem judged here (it writes nothing, so reading is the whole step).
- a transaction: one TransactWriteItems (a ``ClientRequestToken`` makes botocore's retries
  idempotent); the first ``ConditionalCheckFailed`` of its ``CancellationReasons`` is the op that
  failed, reported with the record it found. It returns no values, so an update in it that
  leaves a record of exactly 409,600 bytes is stored (see docs/DECISIONS.md, DynamoDB).
- ``remove_one``: the remove of one whole key, one DeleteItem whose condition is the read's
  filters (the record live and matching): no read first.

Retries (``kvstore_dynamo.retries``): botocore sends a PutItem or DeleteItem again after a failure
that may have reached the server (the same record stored, the same key deleted: idempotent); a
conditional one refused on its retry is reported as ``Conflict(retried=True)``, since the first
attempt may be what refused it. An UpdateItem is sent again only when it is idempotent: no
increment, and a condition on no field it changes (``repeatable``); otherwise the failure is
raised (``BackendUnavailable``: it may have been applied).
"""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Sequence
from decimal import Context, Decimal
from typing import Any

from botocore.exceptions import ClientError

from kvstore.backend import Conflict, Key, KindSchema, Record
from kvstore.conditions import Absent, Exists
from kvstore.errors import BackendUnavailable, InvalidArgument, StoreError
from kvstore.plan import Conditions
from kvstore.writes import Delete, Guard, Put, Update, Write, key_of, merged
from kvstore_dynamo.codec import Item, from_item, key_item, to_attribute, to_item
from kvstore_dynamo.errors import error_code, error_message, retried, validation_error
from kvstore_dynamo.expressions import (
    Expression,
    beyond_increments,
    guard_expression,
    increment_checks,
    update_expression,
)
from kvstore_dynamo.retries import once

__all__ = ["Writer", "repeatable", "transact", "transact_items"]

_FAILED = "ConditionalCheckFailedException"
_EXACT = Context(prec=200)
"""Exact sums of two valid numbers (as DynamoDB's ``ADD`` computes them)."""


def _old(exc: ClientError) -> Record | None:
    item = exc.response.get("Item")
    return from_item(item) if item else None  # type: ignore[arg-type]


class Writer:
    """Writes to one table of one kind; ``old_on_failure`` is False once the server has said it
    does not know ``ReturnValuesOnConditionCheckFailure``."""

    def __init__(self, schema: KindSchema, table: str) -> None:
        self.schema = schema
        self.table = table
        self.old_on_failure = True

    def _key(self, op: Write) -> Item:
        return key_item(self.schema.id_fields, key_of(self.schema, op))

    def _get(self, client: Any, key: Item) -> Record | None:
        item = client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        return from_item(item) if item else None

    def _conditional(
        self, client: Any, call: str, params: dict[str, Any], key: Item
    ) -> dict[str, Any]:
        """``client.<call>(**params)``; a failed condition becomes ``Conflict`` with the record
        at ``key`` the server found (read right after on a server without ALL_OLD on failure)."""
        operation = getattr(client, call)
        try:
            if self.old_on_failure and "ConditionExpression" in params:
                try:
                    response: dict[str, Any] = operation(
                        **params, ReturnValuesOnConditionCheckFailure="ALL_OLD"
                    )
                    return response
                except ClientError as exc:
                    message = error_message(exc)
                    if error_code(exc) != "ValidationException" or (
                        "ReturnValuesOnConditionCheckFailure" not in message
                    ):
                        raise
                    self.old_on_failure = False
            done: dict[str, Any] = operation(**params)
            return done
        except ClientError as exc:
            if error_code(exc) != _FAILED:
                raise
            current = _old(exc) if self.old_on_failure else self._get(client, key)
            raise Conflict(current, retried=retried(exc)) from None

    def write(self, client: Any, op: Write) -> Record | None:
        """Apply ``op`` when its guard holds (``Conflict`` otherwise); an update returns the
        record it leaves."""
        if isinstance(op, Put):
            if op.guard.unconditional:  # a plain put: the hot path, nothing to build
                client.put_item(TableName=self.table, Item=to_item(op.record))
                return None
            expr = Expression()
            params: dict[str, Any] = {"TableName": self.table, "Item": to_item(op.record)}
            condition = guard_expression(expr, self.schema, op.guard)
            if condition is not None:
                params.update(ConditionExpression=condition, **expr.params())
            self._conditional(client, "put_item", params, self._key(op))
            return None
        if isinstance(op, Update):
            return self._update(client, op)
        if isinstance(op, Delete):
            expr = Expression()
            params = {"TableName": self.table, "Key": self._key(op)}
            condition = guard_expression(expr, self.schema, op.guard)
            if condition is not None:
                params.update(ConditionExpression=condition, **expr.params())
            self._conditional(client, "delete_item", params, params["Key"])
            return None
        current = self._get(client, self._key(op))
        if not op.guard.holds(self.schema, current):
            raise Conflict(current)
        return None

    def _update(self, client: Any, op: Update) -> Record:
        key = self._key(op)
        if not (op.sets or op.removes or op.increments):
            current = self._get(client, key)  # nothing to change: reading is the whole step
            if not op.guard.holds(self.schema, current):
                raise Conflict(current)
            assert current is not None
            return current
        try:
            response = self._send_update(client, op, key, exact=False)
        except Conflict as conflict:
            # Refused by the one-sided bound of an increment (a stored number beyond the
            # int64 range)? Nothing was written: the exact checks decide.
            if not beyond_increments(op.increments, conflict.current):
                raise
            response = self._send_update(client, op, key, exact=True)
        old: Item = response.get("Attributes") or {}
        try:
            record = merged(self.schema, op, from_item(old))
        except InvalidArgument:
            self._restore(client, key, old, op)
            raise
        if op.increments:
            self._normalise(client, key, old, op, record)
        return record

    def _send_update(self, client: Any, op: Update, key: Item, *, exact: bool) -> dict[str, Any]:
        """One UpdateItem of ``op`` asking for ``ALL_OLD`` (``exact``: ``increment_checks``)."""
        update, condition, placeholders = _update_parts(self.schema, op, exact)
        params: dict[str, Any] = {
            "TableName": self.table,
            "Key": key,
            "UpdateExpression": update,
            "ReturnValues": "ALL_OLD",
            "ConditionExpression": condition,
            **placeholders,
        }
        if repeatable(self.schema, op):
            return self._conditional(client, "update_item", params, key)
        with once("UpdateItem"):
            return self._conditional(client, "update_item", params, key)

    def remove_one(self, client: Any, key: Key, filters: Conditions) -> int:
        """Delete the record at ``key`` when it is live and matches ``filters`` (core's, its
        expiry among them), in one conditional DeleteItem; 1 when it did, else 0."""
        expr = Expression()
        condition = guard_expression(expr, self.schema, Guard(filters, False))
        assert condition is not None  # it needs a live record
        wire = key_item(self.schema.id_fields, key)
        try:
            client.delete_item(
                TableName=self.table, Key=wire, ConditionExpression=condition, **expr.params()
            )
        except ClientError as exc:
            if error_code(exc) != _FAILED:
                raise
            if not retried(exc):
                return 0
            # An attempt before the refused one may have deleted the record. A record still at
            # the key means it did not (it is not a match); none leaves the count unknown.
            if self._get(client, wire) is not None:
                return 0
            raise BackendUnavailable(
                f"the remove of {self.schema.kind} key {key!r} was sent again after its answer "
                "was lost, and the retry found no record: the first attempt may have removed "
                "it or not (the record is gone either way)"
            ) from exc
        return 1

    def _normalise(self, client: Any, key: Item, old: Item, op: Update, record: Record) -> None:
        """Store each increment's sum as ``record`` has it, normalised, where ``ADD`` stored the
        exact sum with more digits than a double holds (``2**53 + 0.5``): the server's filters
        and later increments must see the value a read returns. Only while the field still
        holds that exact sum (a later write stores its own result)."""
        wrong = {}
        for field, amount in op.increments.items():
            stored = old.get(field, {}).get("N", "0")
            digits = stored.lstrip("-")
            if type(amount) is int and digits.isdigit() and len(digits) < 19:
                continue  # an int added to an int64: the guard kept the sum one, stored exactly
            exact = _EXACT.add(Decimal(stored), Decimal(to_attribute(amount)["N"]))
            if exact != Decimal(to_attribute(record[field])["N"]):
                wrong[field] = exact
        if not wrong:
            return
        expr = Expression()
        sets = ", ".join(f"{expr.name(f)} = {expr.value(record[f])}" for f in wrong)
        held = " AND ".join(
            f"{expr.name(f)} = {expr.attribute({'N': format(exact, 'f')})}"
            for f, exact in wrong.items()
        )
        try:
            client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression=f"SET {sets}",
                ConditionExpression=held,
                **expr.params(),
            )
        except ClientError as exc:
            if error_code(exc) != _FAILED:  # a write since then stored its own result
                raise

    def _restore(self, client: Any, key: Item, old: Item, op: Update) -> None:
        """Put the fields ``op`` touched back as they were in ``old`` (undoing an update the
        server stored but the contract refuses)."""
        fields = [*op.sets, *op.removes, *op.increments]
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
            client.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression=" ".join(clauses),
                ConditionExpression=f"attribute_exists({expr.name(self.schema.partition)})",
                **expr.params(),
            )
        except ClientError as exc:
            # A failed condition means the record was removed meanwhile: nothing left to undo.
            if error_code(exc) != _FAILED:
                raise


_PARTS: dict[Hashable, tuple[str, str, dict[str, Any]]] = {}
"""``_update_parts`` of the updates whose expressions hold no value that varies from call to
call, by ``_fixed_shape``: counters, the commonest update, build theirs once."""
_MAX_PARTS = 1024
_VALUELESS = (Exists, Absent)


def _fixed_shape(schema: KindSchema, op: Update, exact: bool) -> Hashable | None:
    """What decides every part of ``op``'s expressions when none of them is a value that the
    op carries (no field set, no condition with an operand, no clock): the fields, amounts and
    removes, the guard's form, the kind's key and expiry fields; ``None`` otherwise."""
    guard = op.guard
    present = guard.when_present
    if op.sets or (guard.now is not None and schema.ttl_field is not None):
        return None
    if present is not None and not all(isinstance(c, _VALUELESS) for _f, c in present):
        return None
    return (
        schema.partition,
        schema.ttl_field,
        exact,
        guard.when_absent,
        None if present is None else tuple((field, type(c)) for field, c in present),
        op.removes,
        # repr tells a float amount from an equal int, and -0.0 from 0.0
        tuple((field, a if type(a) is int else repr(a)) for field, a in op.increments.items()),
    )


def _update_parts(schema: KindSchema, op: Update, exact: bool) -> tuple[str, str, dict[str, Any]]:
    """An update's UpdateExpression, ConditionExpression (its guard and ``increment_checks``)
    and the placeholders' ``ExpressionAttributeNames``/``Values``."""
    shape = _fixed_shape(schema, op, exact)
    if shape is not None:
        cached = _PARTS.get(shape)
        if cached is not None:  # copies: a client's hooks may change a request's params
            return cached[0], cached[1], {key: dict(value) for key, value in cached[2].items()}
    expr = Expression()
    update = update_expression(expr, op.sets, op.removes, op.increments)
    checks = increment_checks(expr, op.increments, exact=exact)
    condition = guard_expression(expr, schema, op.guard, checks)
    assert condition is not None  # an update's guard needs a live record
    params = expr.params()
    if shape is not None:
        if len(_PARTS) >= _MAX_PARTS:
            _PARTS.clear()
        _PARTS[shape] = (update, condition, params)
        params = {key: dict(value) for key, value in params.items()}
    return update, condition, params


def repeatable(schema: KindSchema, op: Update) -> bool:
    """Whether sending ``op`` twice leaves what sending it once does, and refuses nothing the
    first did not: no increment, and its condition reads no field it sets or removes (the
    expiry field included)."""
    if op.increments:
        return False
    changed = {*op.sets, *op.removes}
    if schema.ttl_field in changed:
        return False
    return not any(field in changed for field, _ in op.guard.when_present or ())


def _item(schema: KindSchema, table: str, op: Write, exact: bool) -> dict[str, Any]:
    """One TransactItems entry for ``op`` (``exact``: ``increment_checks``)."""
    if isinstance(op, Update) and (op.sets or op.removes or op.increments):
        update, guard, placeholders = _update_parts(schema, op, exact)
        return {
            "Update": {
                "TableName": table,
                "Key": key_item(schema.id_fields, op.key),
                "UpdateExpression": update,
                "ConditionExpression": guard,
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                **placeholders,
            }
        }
    expr = Expression()
    body: dict[str, Any] = {"TableName": table}
    if isinstance(op, Put):  # its key is in its item
        action = "Put"
        body["Item"] = to_item(op.record)
        condition = guard_expression(expr, schema, op.guard)
    else:
        body["Key"] = key_item(schema.id_fields, op.key)
        if isinstance(op, Delete):
            action = "Delete"
            condition = guard_expression(expr, schema, op.guard)
        else:  # a Check, or an update with nothing to change: a condition alone
            action = "ConditionCheck"
            condition = guard_expression(expr, schema, op.guard)
            if condition is None:  # a check that always holds
                name = expr.name(schema.partition)
                condition = f"attribute_exists({name}) OR attribute_not_exists({name})"
    if condition is not None:
        body["ConditionExpression"] = condition
        body["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        body.update(expr.params())
    return {action: body}


def transact_items(
    ops: Sequence[tuple[KindSchema, str, Write]], *, exact: bool = True
) -> list[dict[str, Any]]:
    """The TransactItems of ``ops`` (each op with its kind's schema and table; ``exact``:
    ``increment_checks``)."""
    return [_item(schema, table, op, exact) for schema, table, op in ops]


def transact(client: Any, ops: Sequence[tuple[KindSchema, str, Write]]) -> None:
    """Apply ``ops`` in one TransactWriteItems, all or nothing; ``Conflict(current, index=i)``
    for the first op whose condition failed.

    Increments are checked with one-sided bounds first (``increment_checks``); a refusal that
    only the exact checks may lift (``beyond_increments``) sends the transaction again with
    them: the refused one wrote nothing.
    """
    try:
        _transact(client, ops, exact=False)
    except Conflict as conflict:
        index = conflict.index
        op = ops[index][2] if index is not None and 0 <= index < len(ops) else None
        if not (isinstance(op, Update) and beyond_increments(op.increments, conflict.current)):
            raise
        _transact(client, ops, exact=True)


def _transact(client: Any, ops: Sequence[tuple[KindSchema, str, Write]], *, exact: bool) -> None:
    try:
        client.transact_write_items(
            TransactItems=transact_items(ops, exact=exact), ClientRequestToken=str(uuid.uuid4())
        )
    except ClientError as exc:
        if error_code(exc) != "TransactionCanceledException":
            raise
        reasons: list[dict[str, Any]] = exc.response.get("CancellationReasons") or []  # type: ignore[assignment]
        for index, reason in enumerate(reasons):
            if reason.get("Code") == "ConditionalCheckFailed":
                item = reason.get("Item")
                raise Conflict(from_item(item) if item else None, index=index) from None
        raise _cancelled(exc, reasons, ops) from exc


def _cancelled(
    exc: ClientError,
    reasons: list[dict[str, Any]],
    ops: Sequence[tuple[KindSchema, str, Write]],
) -> StoreError:
    """The error of a transaction cancelled for another reason than a failed condition."""
    for index, reason in enumerate(reasons):
        code = str(reason.get("Code") or "None")
        if code == "None":
            continue
        table = ops[index][1] if index < len(ops) else "?"
        message = str(reason.get("Message") or code)
        error: StoreError
        if code == "ValidationError":
            error = validation_error(message, table) or StoreError(
                f"DynamoDB refused the transaction's operation {index} on {table!r}: {message}"
            )
        elif code in ("TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"):
            error = BackendUnavailable(
                f"DynamoDB cancelled the transaction ({code} on {table!r}): try again"
            )
        else:
            error = StoreError(f"DynamoDB cancelled the transaction ({code}): {message}")
        error.index = index
        return error
    return StoreError(f"DynamoDB cancelled the transaction: {error_message(exc)}")
