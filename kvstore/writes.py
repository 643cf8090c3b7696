"""Writes as core hands them to drivers: ``Put``, ``Update``, ``Delete`` and ``Check``, each with a
``Guard`` saying when it may happen, and the reference evaluation of one on a stored record.

A write happens atomically when its guard holds on the key's *live* record (stored and, for a kind
with a ``ttl_field``, not expired at ``Guard.now``); otherwise nothing is written and the driver
raises ``Conflict`` with the record it found. Core then explains the conflict (``failure``): the
rules behind every guard (``expect``, versions, index fields, increments) live here, once.

Drivers that keep records in the process (memory, sqlite) call ``apply`` under their lock; network
drivers translate the guard into the server's condition and report what the server found.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Context, Decimal
from typing import Any

from kvstore.conditions import NotExpired, is_number
from kvstore.errors import (
    AlreadyExists,
    ConditionFailed,
    InvalidArgument,
    NotFound,
    StoreError,
)
from kvstore.plan import Conditions
from kvstore.schema import Key, KindSchema
from kvstore.values import (
    INT64_MAX,
    INT64_MIN,
    check_item_size,
    normalize_value,
)

__all__ = [
    "Check",
    "Conflict",
    "Delete",
    "Guard",
    "Put",
    "Update",
    "Write",
    "add_numbers",
    "apply",
    "failure",
    "is_live",
    "matches_all",
    "merged",
]

Record = dict[str, Any]


def matches_all(record: Mapping[str, Any], conditions: Conditions) -> bool:
    """Whether ``record`` matches every one of ``conditions`` (an empty record: ``{}``)."""
    for field, condition in conditions:
        present = field in record
        if not condition.matches(present, record[field] if present else None):
            return False
    return True


def is_live(schema: KindSchema, record: Mapping[str, Any] | None, now: float | None) -> bool:
    """Whether ``record`` is stored and, for a kind with a ``ttl_field``, not expired at ``now``."""
    if record is None:
        return False
    ttl = schema.ttl_field
    if ttl is None or now is None or ttl not in record:
        return True
    return NotExpired(now).matches(True, record[ttl])


class Guard:
    """When a write may happen, judged on the key's live record.

    With a live record, it must match every one of ``when_present`` (``None``: a live record makes
    the write fail); with none (no record, or an expired one), the write happens when
    ``when_absent``. ``now`` is the caller's clock (seconds since the epoch) that decides expiry,
    for a kind with a ``ttl_field``.
    """

    __slots__ = ("now", "when_absent", "when_present")

    def __init__(
        self, when_present: Conditions | None, when_absent: bool, now: float | None = None
    ) -> None:
        self.when_present = when_present
        self.when_absent = when_absent
        self.now = now

    def __repr__(self) -> str:
        return f"Guard(when_present={self.when_present!r}, when_absent={self.when_absent})"

    @property
    def unconditional(self) -> bool:
        """Whether the write happens whatever is stored."""
        return self.when_absent and self.when_present == ()

    def holds(self, schema: KindSchema, current: Mapping[str, Any] | None) -> bool:
        """Whether the guard holds on ``current``, the stored record (``None``: none)."""
        if not is_live(schema, current, self.now):
            return self.when_absent
        assert current is not None
        return self.when_present is not None and matches_all(current, self.when_present)


ALWAYS = Guard((), True)
"""The guard of a write that happens whatever is stored (a plain ``put``)."""


class Put:
    """Store ``record`` whole, replacing the live record, when ``guard`` holds."""

    __slots__ = ("expect", "guard", "record", "size_bound", "verb")

    def __init__(
        self,
        record: Record,
        guard: Guard = ALWAYS,
        *,
        verb: str = "put",
        expect: Conditions = (),
        size_bound: int | None = None,
    ) -> None:
        self.record = record
        self.guard = guard
        self.verb = verb
        """``"put"`` or ``"create"``: which call made it (and so which error a conflict means)."""
        self.expect = expect
        self.size_bound = size_bound
        """At least ``item_size(record)``, when its maker knows such a bound from its own checks
        (``None``: unknown); a transaction sizes records exactly only when the bounds no longer
        show that they fit."""

    def key(self, schema: KindSchema) -> Key:
        """The key written."""
        return schema.key_of(self.record)


class Update:
    """Merge into the live record at ``key``: set ``sets``, remove ``removes``, add
    ``increments`` (field -> number) to stored numbers; only when ``guard`` holds (it never holds
    without a live record) and every increment is valid (``add_numbers``).

    ``guard.when_present`` is ``expect`` (the caller's, and the version check) followed by
    ``required``, the rules the merged record must keep (index fields stay complete): a record
    failing ``expect`` makes the update ``ConditionFailed``, one failing ``required``
    ``InvalidArgument``.
    """

    __slots__ = (
        "expect",
        "guard",
        "increments",
        "key",
        "removes",
        "required",
        "sets",
        "size_bound",
    )

    def __init__(
        self,
        key: Key,
        sets: Record,
        removes: tuple[str, ...] = (),
        increments: Mapping[str, int | float] | None = None,
        guard: Guard | None = None,
        *,
        expect: Conditions = (),
        required: Conditions = (),
        size_bound: int | None = None,
    ) -> None:
        self.key = key
        self.sets = sets
        self.removes = removes
        self.increments = dict(increments or {})
        self.guard = guard if guard is not None else Guard((), False)
        self.expect = expect
        self.required = required
        self.size_bound = size_bound
        """At least the ``item_size`` of the key's fields, ``sets`` and the incremented fields
        (each at the most a number takes, ``number_entry_bound``) together, when its maker knows
        such a bound from its own checks (``None``: unknown)."""

    verb = "update"


class Delete:
    """Delete the live record at ``key`` when ``guard`` holds (no record is not an error)."""

    __slots__ = ("guard", "key")

    def __init__(self, key: Key, guard: Guard = ALWAYS) -> None:
        self.key = key
        self.guard = guard

    verb = "remove"


class Check:
    """Write nothing; hold only when ``guard`` holds on the record at ``key`` (transactions)."""

    __slots__ = ("expect", "guard", "key")

    def __init__(self, key: Key, guard: Guard, *, expect: Conditions = ()) -> None:
        self.key = key
        self.guard = guard
        self.expect = expect

    verb = "check"


Write = Put | Update | Delete | Check


def key_of(schema: KindSchema, op: Write) -> Key:
    """The key an operation writes or checks."""
    return op.key(schema) if isinstance(op, Put) else op.key


class Conflict(Exception):
    """A driver's report that a write's guard did not hold (or an increment was not valid):
    nothing was written.

    ``current`` is the stored record the guard was judged on (``None``: no record), as read in
    the same atomic step when the server can say, else read right after. ``index`` is the
    operation's position in a transaction. ``retried`` says the request had been sent before (the
    driver or its client retried after losing the answer), so an earlier attempt of this very
    write may be what ``current`` shows.
    """

    def __init__(
        self, current: Record | None, *, index: int | None = None, retried: bool = False
    ) -> None:
        super().__init__("the write's guard did not hold")
        self.current = current
        self.index = index
        self.retried = retried


_EXACT = Context(prec=400)  # enough digits for any sum of two valid numbers, exactly


def _decimal(value: int | float) -> Decimal:
    return Decimal(value) if type(value) is int else Decimal(repr(value))


def add_numbers(stored: Any, amount: int | float, field: str) -> int | float:
    """``stored + amount`` as an increment computes it: exactly, in decimal (as DynamoDB does),
    then normalised like every stored number; ``InvalidArgument`` when ``stored`` is not a
    number or the result breaks the number rules (an int result past the signed 64-bit range
    when both are ints, more than 38 significant digits, out of range)."""
    if stored is None:
        stored = 0
    if not is_number(stored):
        raise InvalidArgument(
            f"field {field!r}: increment() needs a stored number, not {type(stored).__name__}"
        )
    if type(stored) is int and type(amount) is int:
        total = stored + amount
        if not INT64_MIN <= total <= INT64_MAX:
            raise InvalidArgument(
                f"field {field!r}: {stored} + {amount} is outside the signed 64-bit range"
            )
        return total
    exact = _EXACT.add(_decimal(stored), _decimal(amount))
    result: int | float = normalize_value(exact, field)
    return result


def merged(schema: KindSchema, op: Update, live: Record) -> Record:
    """The record ``op`` leaves when it updates ``live``: the increments summed (``add_numbers``),
    the changes set and removed; ``InvalidArgument`` when it breaks the number or size rules. A
    driver whose server returns the old record (DynamoDB's ``ALL_OLD``) reports this one."""
    merged = dict(live)
    for field, amount in op.increments.items():
        merged[field] = add_numbers(live.get(field), amount, field)
    merged.update(op.sets)
    for field in op.removes:
        merged.pop(field, None)
    check_item_size(merged)
    return merged


def apply(schema: KindSchema, op: Write, current: Record | None) -> Record | None:
    """What ``op`` leaves stored at its key when ``current`` is stored there (``None``: nothing),
    for drivers that evaluate writes themselves (under a lock, in a transaction).

    Raises ``Conflict(current)`` when the guard does not hold, and ``InvalidArgument`` when an
    update's increments or size break the rules; a ``Check`` leaves ``current`` as it is.
    """
    if not op.guard.holds(schema, current):
        raise Conflict(current)
    if isinstance(op, Put):
        return op.record
    if isinstance(op, Delete):
        return None
    if isinstance(op, Check):
        return current
    assert current is not None  # an update's guard never holds without a live record
    return merged(schema, op, current)


def failure(schema: KindSchema, op: Write, current: Record | None) -> StoreError | None:
    """The error a write fails with when its guard did not hold on ``current``, in this order: no
    live record for an update (``NotFound``); a live record for a create (``AlreadyExists``); the
    caller's ``expect`` or the version check (``ConditionFailed``); the rules an update must keep
    (``InvalidArgument``). ``None`` when ``current`` explains nothing (it was read after a racing
    write changed it): the caller may try the write again.
    """
    kind = schema.kind
    live = current if is_live(schema, current, op.guard.now) else None
    key = key_of(schema, op)
    if isinstance(op, Update):
        if live is None:
            return NotFound(f"no {kind} record has key {key!r}")
        if not matches_all(live, op.expect):
            return ConditionFailed(_condition_message(kind, key, op.expect, live))
        for field, condition in op.required:
            if not condition.matches(field in live, live.get(field)):
                return InvalidArgument(
                    f"the update of {kind} key {key!r} would leave index field {field!r} "
                    "without the other field of its index"
                )
        try:
            merged(schema, op, live)
        except InvalidArgument as exc:
            return exc
        return None
    if live is None:
        if op.guard.when_absent:
            return None
        return ConditionFailed(_condition_message(kind, key, _expect(op), {}))
    if isinstance(op, Put) and op.verb == "create":
        return AlreadyExists(f"a {kind} record with key {key!r} exists")
    if op.guard.when_present is not None and matches_all(live, op.guard.when_present):
        return None
    return ConditionFailed(_condition_message(kind, key, _expect(op), live))


def _expect(op: Write) -> Conditions:
    return op.expect if isinstance(op, (Put, Check, Update)) else ()


def _condition_message(kind: str, key: Key, expect: Conditions, record: Mapping[str, Any]) -> str:
    """Which fields of ``expect`` the record fails (their names only, never a stored value)."""
    failed = sorted(
        {
            field
            for field, condition in expect
            if not condition.matches(field in record, record.get(field))
        }
    )
    detail = f" on {', '.join(map(repr, failed))}" if failed else ""
    if not record:
        return f"no {kind} record has key {key!r}, and the write's condition needs one{detail}"
    return f"the {kind} record with key {key!r} does not meet the write's condition{detail}"
