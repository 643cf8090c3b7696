"""The guarded write of each call: the rules of ``expect``, versions and keys, as pure functions
of checked arguments (``RecordStore`` checks them; ``transaction()`` and migrations reuse these).
"""

from __future__ import annotations

from kvstore.conditions import Condition, Eq, OneOf
from kvstore.plan import Conditions
from kvstore.records import Changes, Record
from kvstore.schema import Key, KindSchema
from kvstore.values import number_entry_bound
from kvstore.writes import Check, Guard, Put, Update, matches_all

__all__ = ["check_op", "create_op", "put_op", "update_op", "version_condition"]


def version_condition(version: int) -> Condition:
    """A stored version equal to ``version``; a record without one counts as version 0."""
    return OneOf([0], absent=True) if version == 0 else Eq(version)


def _versioned_bound(schema: KindSchema, bound: int | None) -> int | None:
    """``bound`` (of a record's ``item_size``) once the store sets its version field: the field
    counted again, at the most a number can take (``number_entry_bound``)."""
    field = schema.version_field
    if bound is None or field is None:
        return bound
    return bound + number_entry_bound(field)


def put_op(
    schema: KindSchema,
    record: Record,
    expect: Conditions,
    now: float | None,
    size_bound: int | None = None,
) -> Put:
    """``put``: the record (its version stepped), written when ``expect`` holds on the stored
    record (an empty one for a new key) and, for a versioned kind, when the version it carries is
    the stored one (without a version: only on a new key). ``size_bound``: at least the record's
    ``item_size`` as given, when known (``Put.size_bound``)."""
    field = schema.version_field
    bound = _versioned_bound(schema, size_bound)
    if field is None:
        if not expect:
            return Put(record, size_bound=bound)
        guard = Guard(expect, matches_all({}, expect), now)
        return Put(record, guard, expect=expect, size_bound=bound)
    given = record.get(field)
    if given is None:
        record[field] = 1
        guard = Guard(None, matches_all({}, expect), now)
        return Put(record, guard, expect=expect, size_bound=bound)
    record[field] = given + 1
    checks = (*expect, (field, version_condition(given)))
    guard = Guard(checks, given == 0 and matches_all({}, expect), now)
    return Put(record, guard, expect=checks, size_bound=bound)


def create_op(
    schema: KindSchema, record: Record, now: float | None, size_bound: int | None = None
) -> Put:
    """``create``: the record (version 1), written only on a key with no live record."""
    if schema.version_field is not None:
        record[schema.version_field] = 1
    bound = _versioned_bound(schema, size_bound)
    return Put(record, Guard(None, True, now), verb="create", size_bound=bound)


def update_op(
    schema: KindSchema, changes: Changes, expect: Conditions, now: float | None
) -> Update:
    """``update``: the changes merged into a live record when ``expect`` (and the version given)
    hold and the record keeps the index rules; every update steps the version."""
    field = schema.version_field
    bound = changes.size_bound
    if field is not None:
        if changes.version is None:
            changes.increments[field] = 1  # an update without a version is not checked
        else:
            changes.sets[field] = changes.version + 1
            expect = (*expect, (field, version_condition(changes.version)))
            bound = _versioned_bound(schema, bound)
    if bound is not None:
        for name in changes.increments:
            bound += number_entry_bound(name)
    return Update(
        changes.key,
        changes.sets,
        changes.removes,
        changes.increments,
        Guard((*expect, *changes.required), False, now),
        expect=expect,
        required=changes.required,
        size_bound=bound,
    )


def check_op(key: Key, expect: Conditions, now: float | None) -> Check:
    """A transaction's ``check``: ``expect`` on the record at ``key`` (an empty record when
    there is none)."""
    return Check(key, Guard(expect, matches_all({}, expect), now), expect=expect)
