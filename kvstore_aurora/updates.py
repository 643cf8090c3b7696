"""Updates (``kvstore.writes.Update``) as single statements: ``UPDATE ... WHERE key AND live AND
guard [AND increments valid AND a size bound]``, with ``p`` in its ``FROM``: every value the
statement binds but its guard's (its changes, key, increments' amounts and size bound). Each
increment's stored number is computed once, in a correlated subquery
(``increments.from_derived``).

A single update is the plain ``UPDATE ... RETURNING`` the merged row: when it returns nothing, the
driver reads the record to say why (two statements then, one for every update that writes). A
transaction's step ends with ``SELECT 1 / (SELECT count(*) FROM w)``, which fails when the guard
did not hold. The updates of one table in one transaction whose guards bind no value (no
``expect``, version or expiry) and whose statements have one shape share one step
(``shared_update``): ``p`` is then a ``VALUES`` list of their rows, and the step fails unless
every one of them wrote.

The size rule of an ``Update`` (``check_item_size`` of the merged record) is kept by a bound the
statement checks, never below the merged record's DynamoDB size: twice the stored ``doc``'s JSON
text (a value's JSON text is at least half its item size; a one-digit number in a list is the
worst case), plus the changes' bound (``Update.size_bound``, increments included). The common
update is then one autocommit statement; one whose bound reaches the limit (a stored record of
about 200 KB of JSON or more) writes nothing, and the driver runs it again without the bound in a
transaction whose COMMIT waits for core's exact check of the merged record
(``kvstore_aurora.conditional``).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from kvstore.errors import InvalidArgument
from kvstore.schema import KindSchema
from kvstore.values import MAX_ITEM_SIZE, item_size, number_entry_bound
from kvstore.writes import Update
from kvstore_aurora import increments as inc
from kvstore_aurora.columns import decimal
from kvstore_aurora.guarded import Statement, all_of, key_match, live_conditions, tokens_of
from kvstore_aurora.layout import Layout
from kvstore_aurora.predicates import ALIAS, Token, column_sql

__all__ = ["shared_update", "update_sql"]

_ALIAS = sql.Identifier(ALIAS)


def update_sql(
    layout: Layout,
    schema: KindSchema,
    op: Update,
    mode: str,
    bounded: bool = True,
    rows: int = 1,
    idle: bool = False,
    optimistic: bool = False,
) -> Statement:
    """The statement of an ``Update``: ``mode`` ``"write"`` (returns the merged row, or nothing
    when it wrote nothing: the caller reads the current row to say why), ``"step"`` (a
    transaction's step), ``"checked"`` (a step returning the merged row). ``bounded``: only when
    the size bound shows the merged record is small enough.

    An increment that breaks the number rules fails a step, and a write on an ``idle``
    connection (in no transaction, whose failure aborts nothing else), by a division by zero;
    any other write then writes nothing. ``optimistic`` (a statement whose failure aborts
    nothing that is not run again: a write on an ``idle`` connection, a transaction's step):
    increments that are ``increments.summable`` are summed in ``bigint`` (``Statement.summed``),
    and the statement fails with a data exception where the number rules need the full form,
    which the caller then runs (``increments``' docstring).

    Every value of ``op`` that the statement binds is a column of ``p`` (its changes, key,
    increments' amounts and size bound), except its guard's: a statement whose guard binds none
    (``Statement.shareable``) may be a step of ``rows`` updates of the same shape, with ``p`` a
    ``VALUES`` list of their rows (``shared_update``), that fails unless every one wrote."""
    guard = op.guard
    amounts = tuple(op.increments.items())
    optimistic = optimistic and bool(amounts) and inc.summable(layout, amounts)
    # p's columns in order: the doc's removes and sets, the real columns' values, the key, the
    # increments' amounts, the size bound. Their parameters come first, then WHERE's.
    params: list[Any] = []
    column_sets: list[str] = []
    column_removes: list[str] = []
    if layout.default:  # every field but the key's (which core keeps out of changes) in doc
        doc_removes = list(op.removes)  # a list: psycopg sends a list as an array
        doc_sets = op.sets
    else:
        doc_removes, doc_sets = _places(layout, op, list(amounts), column_sets, column_removes)
    if doc_removes:
        params.append(doc_removes)
    if doc_sets:
        params.append(Jsonb(doc_sets))
    if column_sets:
        params += [layout.encode(field, op.sets[field]) for field in column_sets]
    params += op.key
    if amounts:
        # An amount in bigint is sent as its decimal text, which the statement casts: an int's
        # own type would follow its size (int2 for 1, and one statement a size).
        params += (
            [str(a) for _field, a in amounts] if optimistic else [decimal(a) for _f, a in amounts]
        )
    if bounded:
        # The merged record's fields come from the stored record (bounded in SQL by
        # _size_bound) or from the changes, sets and increments (their bound, or sized here):
        # their sum is never below the merged record's size.
        room = op.size_bound
        if room is None:
            room = item_size(dict(zip(schema.id_fields, op.key, strict=True)) | op.sets)
            room += sum(number_entry_bound(field) for field, _amount in amounts)
        if layout.columns:
            room += sum(
                number_entry_bound(column.name)
                for column in layout.columns.values()
                if column.kind in ("int", "numeric", "double", "boolean")
            )
        params.append(room)
    bound = len(params)
    if schema.ttl_field is None and not guard.when_present:  # most updates: no guard to bind
        live: tuple[Token, ...] = ()
        present: tuple[Token, ...] = ()
    else:
        live = tokens_of(layout, live_conditions(schema, guard), params)
        present = tokens_of(layout, guard.when_present or (), params)
    failing = mode != "write" or idle
    shape = (
        "update",
        mode,
        failing,
        # Which amounts are ints matters to the full form only (summed ones all are).
        tuple(op.increments) if optimistic else tuple((f, type(a) is int) for f, a in amounts),
        bool(doc_removes),
        bool(doc_sets),
        tuple(column_sets) if column_sets else (),
        tuple(column_removes) if column_removes else (),
        live,
        present,
        bounded,
        optimistic,
        rows,
    )
    build = partial(
        _build,
        layout,
        amounts,
        column_sets,
        column_removes,
        live,
        present,
        mode=mode,
        failing=failing,
        doc_removes=bool(doc_removes),
        doc_sets=bool(doc_sets),
        bounded=bounded,
        optimistic=optimistic,
        rows=rows,
    )
    return Statement(shape, params, build, shareable=bound == len(params), summed=optimistic)


def _build(
    layout: Layout,
    amounts: tuple[tuple[str, int | float], ...],
    column_sets: list[str],
    column_removes: list[str],
    live: tuple[Token, ...],
    present: tuple[Token, ...],
    *,
    mode: str,
    failing: bool,
    doc_removes: bool,
    doc_sets: bool,
    bounded: bool,
    optimistic: bool,
    rows: int,
) -> sql.Composable:
    """The statement ``update_sql`` describes (composed only when the driver has not cached its
    text): its arguments are ``update_sql``'s, or what it made of them."""
    p: list[tuple[str, sql.Composable]] = []  # p's columns: (name, cast)
    if doc_removes:
        p.append(("x", sql.SQL("text[]")))
    if doc_sets:
        p.append(("d", sql.SQL("jsonb")))
    p += [(f"c{i}", _column(layout, field).cast) for i, field in enumerate(column_sets)]
    p += [(f"k{i}", column.cast) for i, column in enumerate(layout.keys)]
    amount_cast = sql.SQL("bigint" if optimistic else "numeric")
    p += [(f"a{i}", amount_cast) for i in range(len(amounts))]
    if bounded:
        p.append(("b", sql.SQL("bigint")))
    assignments, checks = _update_parts(
        layout, list(amounts), doc_removes, doc_sets, failing, optimistic
    )
    assignments += [
        sql.SQL("{} = p.{}").format(sql.Identifier(field), sql.Identifier(f"c{i}"))
        for i, field in enumerate(column_sets)
    ]
    assignments += [sql.SQL("{} = NULL").format(sql.Identifier(f)) for f in column_removes]
    if not assignments:
        first = layout.keys[0].name
        assignments.append(sql.SQL("{} = {}").format(sql.Identifier(first), column_sql(first)))
    where = [key_match(layout), all_of(layout, live), all_of(layout, present), *checks]
    if bounded:
        where.append(sql.SQL("{} + p.b < {}").format(_size_bound(layout), MAX_ITEM_SIZE))
    returned = sql.SQL(", ").join(column_sql(name) for name in layout.selected)
    write = sql.SQL("UPDATE {} AS {} SET {} FROM {} WHERE {} RETURNING {}").format(
        layout.table,
        _ALIAS,
        sql.SQL(", ").join(assignments),
        _rows_of_p(p, rows),
        sql.SQL(" AND ").join(where),
        sql.SQL("1") if mode == "step" else returned,
    )
    if mode == "write":
        return write
    if mode == "step":
        every = sql.SQL("WITH w AS ({}) SELECT 1 / ((SELECT count(*) FROM w) = {})::int")
        return every.format(write, sql.Literal(rows))
    names = sql.SQL(", ").join(sql.Identifier("w", name) for name in layout.selected)
    return sql.SQL(
        "WITH w AS ({}) SELECT (1 / (SELECT count(*) FROM w))::int, {} "
        "FROM (SELECT 1) AS one LEFT JOIN w ON TRUE"
    ).format(write, names)


def _places(
    layout: Layout,
    op: Update,
    amounts: list[tuple[str, int | float]],
    column_sets: list[str],
    column_removes: list[str],
) -> tuple[list[str], dict[str, Any]]:
    """The removes and sets of ``op`` on fields in ``doc``; those on real columns go in
    ``column_sets`` and ``column_removes``. ``InvalidArgument`` for an increment of a field the
    table has no place for."""
    doc_removes: list[str] = []
    doc_sets: dict[str, Any] = {}
    for field in op.removes:
        place = layout.place(field)
        if place.kind == "json" and place.column is None:
            doc_removes.append(field)
        elif place.kind in ("column", "json"):
            column_removes.append(field)
    for field, value in op.sets.items():
        place = layout.place(field)
        if place.kind == "json" and place.column is None:
            doc_sets[field] = value
        else:
            column_sets.append(field)
    for field, _amount in amounts:
        if layout.place(field).kind == "none":
            layout.encode(field, 0)  # raises: the table has no place for it
    return doc_removes, doc_sets


def shared_update(
    layout: Layout,
    schema: KindSchema,
    first: Update,
    statements: list[Statement],
    optimistic: bool = False,
) -> Statement:
    """One transaction step for updates of one table (each key once, ``first`` the first of
    them) whose ``statements`` (``update_sql``'s, in step mode, ``optimistic`` or not) are
    shareable and of one shape: their shared statement, with their parameters row after row
    (``update_sql``'s docstring)."""
    params = [value for statement in statements for value in statement.params]
    rows = len(statements)

    def build() -> sql.Composable:
        return update_sql(layout, schema, first, "step", rows=rows, optimistic=optimistic).build()

    return Statement(("shared", rows, statements[0].shape), params, build)


def _rows_of_p(columns: list[tuple[str, sql.Composable]], rows: int) -> sql.Composed:
    """``p``: one row of ``columns`` (each a name and a cast) bound as parameters, or ``rows``
    rows of them in a ``VALUES`` list."""
    names = [sql.Identifier(name) for name, _cast in columns]
    if rows == 1:
        return sql.SQL("(SELECT {}) AS p").format(
            sql.SQL(", ").join(
                sql.SQL("%s::{} AS {}").format(cast, name)
                for (_name, cast), name in zip(columns, names, strict=True)
            )
        )
    row = sql.SQL("({})").format(
        sql.SQL(", ").join(sql.SQL("%s::{}").format(cast) for _name, cast in columns)
    )
    return sql.SQL("(VALUES {}) AS p ({})").format(
        sql.SQL(", ").join([row] * rows), sql.SQL(", ").join(names)
    )


def _column(layout: Layout, field: str) -> Any:
    column = layout.column(field)
    if column is None:  # pragma: no cover: layout.encode raised already
        raise InvalidArgument(f"field {field!r} has no column")
    return column


def _update_parts(
    layout: Layout,
    amounts: list[tuple[str, int | float]],
    doc_removes: bool,
    doc_sets: bool,
    failing: bool,
    optimistic: bool = False,
) -> tuple[list[sql.Composable], list[sql.Composable]]:
    """The assignments of ``doc`` and of incremented columns, and the increments' checks for
    the WHERE (none when ``failing``: the first assignment fails the statement instead).

    Each increment's stored number (``S``) is computed once a value, in a correlated subquery
    (``inc.from_derived``): written inline, every check and assignment would repeat ``S``'s
    expression, and PostgreSQL prepares each copy at every execution (the statement took
    several times a plain UPDATE's time). A check in the SET spares the WHERE a subquery of its
    own, which the server would start at every run too. ``optimistic``: the increments (all
    ``increments.summable``) summed in ``bigint``, with no subquery and no checks.
    """
    # (column, value, its type, whether the value reads y's S)
    targets: list[tuple[str, sql.Composable, sql.Composable, bool]] = []
    checks: list[sql.Composable] = []
    doc_increments: list[sql.Composable] = []
    if optimistic:  # each a field in doc: its sum in bigint
        for number, (field, _amount) in enumerate(amounts):
            bound = sql.SQL("p.{}").format(sql.Identifier(f"a{number}"))
            doc_increments += [sql.Literal(field), inc.summed(layout.place(field), bound)]
    full = [] if optimistic else amounts  # the increments that follow the rules in numeric
    places = [layout.place(field) for field, _amount in full]
    for number, ((field, amount), place) in enumerate(zip(full, places, strict=True)):
        stored, total, result = inc.derived_names(number)
        column = None if place.kind == "json" else place.column
        checks += [
            sql.SQL("y.{}").format(sql.Identifier(f"ok{number}")),
            inc.valid(stored, total, type(amount) is int),
            inc.fits(column, result),
        ]
        if place.kind == "json" and place.column is None:
            doc_increments += [sql.Literal(field), sql.SQL("to_jsonb({})").format(result)]
        else:
            assert place.column is not None
            column = place.column
            targets.append((column.name, inc.as_column(column, result), column.cast, True))
    if doc_removes or doc_sets or doc_increments:
        doc: sql.Composable = column_sql("doc")
        if doc_removes:
            doc = sql.SQL("({} - p.x)").format(doc)
        if doc_sets:
            doc = sql.SQL("({} || p.d)").format(doc)
        # A function takes at most 100 arguments: 50 fields a jsonb_build_object.
        for start in range(0, len(doc_increments), 100):
            doc = sql.SQL("({} || jsonb_build_object({}))").format(
                doc, sql.SQL(", ").join(doc_increments[start : start + 100])
            )
        targets.insert(0, ("doc", doc, sql.SQL("jsonb"), bool(places) and bool(doc_increments)))
    assignments: list[sql.Composable] = []
    for position, (name, value, cast, derived) in enumerate(targets):
        if checks and failing and position == 0:
            value, derived = inc.failing_unless(sql.SQL(" AND ").join(checks), value, cast), True
        if derived:
            value = inc.from_derived(places, value)
        assignments.append(sql.SQL("{} = {}").format(sql.Identifier(name), value))
    if checks and not failing:
        return assignments, [inc.from_derived(places, sql.SQL(" AND ").join(checks))]
    return assignments, []


def _size_bound(layout: Layout) -> sql.Composable:
    """Never below the stored record's item size: twice the JSON text of ``doc`` and of jsonb
    columns (a value's item size is at most twice its JSON text, a one-digit number in a list
    being the worst case), text columns' bytes and names (number and boolean columns are counted
    in the parameter added to it)."""
    parts: list[sql.Composable] = []
    if layout.has_doc:
        parts.append(sql.SQL("2 * octet_length({}::text)").format(column_sql("doc")))
    for column in layout.columns.values():
        name = column_sql(column.name)
        size = len(column.name)
        if column.kind == "jsonb":
            parts.append(sql.SQL("coalesce(2 * octet_length({}::text) + {}, 0)").format(name, size))
        elif column.kind == "text":
            parts.append(sql.SQL("coalesce(octet_length({}) + {}, 0)").format(name, size))
    return sql.SQL(" + ").join(parts) if parts else sql.SQL("0")
