"""The aurora cases of the contract's part 2: indexed reads and pages (issue 13), conditional writes,
increments and transactions (issue 14), against psycopg on the same connection and tables.

The raw side is written as in ``bench.aurora``: one cursor reused, prepared statements, psycopg's
own JSON adapters. Its reads are served by kvstore's own indexes (``<kind>__<index>``): a user
writes the index's typed expression, which kvstore documents (``kvstore_aurora.indexes``), and
the setup checks with ``EXPLAIN`` that the planner serves each raw read from that index. Its
page is a keyset ``SELECT``: the next page starts after the last row's ``(rank, id)``.
"""

from __future__ import annotations

from typing import Any

from bench.aurora import copy_rows, raw_cursor
from bench.checks import check_reads, check_writes
from bench.harness import Action, Case, Raw
from bench.roundtrips import PgCounter
from bench.workload import (
    INDEXES,
    Sizes,
    Targets,
    counter_field,
    email_of,
    group_of,
    indexed_record,
    make_record,
    price_field,
    record_doc,
)

__all__ = ["Part2Tables", "index_expression", "part2_cases"]

Record = dict[str, Any]

_INT64 = "-9223372036854775808 AND 9223372036854775807"


def index_expression(field: str, key_type: type) -> str:
    """The typed expression kvstore's index keeps of ``field`` in ``doc`` (``str`` or ``int``),
    as a user writes it for the planner to serve a raw read from that index."""
    if key_type is str:
        return (
            f"((CASE WHEN jsonb_typeof(doc -> '{field}') = 'string' AND octet_length(doc ->> "
            f"'{field}') BETWEEN 1 AND 1024 THEN doc ->> '{field}' END) COLLATE \"C\")"
        )
    number = f"((doc ->> '{field}')::numeric)"
    return (
        f"(CASE WHEN jsonb_typeof(doc -> '{field}') = 'number' AND {number} = trunc({number}) "
        f"AND {number} BETWEEN {_INT64} THEN {number} END)"
    )


def _indexes() -> list[Any]:
    from kvstore import Index

    types = {"email": str, "grp": str, "rank": int}
    return [
        Index(name, fields, key_type=tuple(types[field] for field in fields))
        for name, fields in INDEXES
    ]


class Part2Tables:
    """One shape's part-2 kinds, made with kvstore's ``ensure()`` and loaded with COPY: the
    indexed kind (``Sizes.indexed`` records) and a ten times smaller one, and the kind that
    conditional updates, increments and transactions change."""

    def __init__(self, conn: Any, sizes: Sizes, tag: str, shape: str) -> None:
        from kvstore import create_store

        self.big, self.small = f"bench_{shape}_idx_{tag}", f"bench_{shape}_idx_small_{tag}"
        self.update = f"bench_{shape}_upd_{tag}"
        self.bigs = create_store(self.big, backend="aurora", connection=conn, indexes=_indexes())
        self.smalls = create_store(
            self.small, backend="aurora", connection=conn, indexes=_indexes()
        )
        self.updates = create_store(self.update, backend="aurora", connection=conn)
        names = (self.big, self.small, self.update)
        for store in (self.bigs, self.smalls, self.updates):
            store.ensure()
        for name in names:
            layout = conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                "AND table_schema = current_schema() ORDER BY ordinal_position",
                (name,),
            ).fetchall()
            if [row[0] for row in layout] != ["id", "doc"]:
                raise RuntimeError(f"unexpected layout of {name}: {layout}; expected (id, doc)")
        conn.execute("TRUNCATE " + ", ".join(f'"{name}"' for name in names))
        cursor = raw_cursor(conn)
        for name, rows in ((self.big, sizes.indexed), (self.small, sizes.indexed_small)):
            records = (indexed_record(n, shape, sizes.page_group) for n in range(rows))
            copy_rows(cursor, name, records)
        copy_rows(cursor, self.update, (make_record(n, shape) for n in range(sizes.updated)))
        cursor.close()
        conn.execute("VACUUM ANALYZE " + ", ".join(f'"{name}"' for name in names))

    def drop(self, conn: Any) -> None:
        """Drop the kinds' tables."""
        conn.execute(f'DROP TABLE IF EXISTS "{self.big}", "{self.small}", "{self.update}"')


def _check_served_by(conn: Any, statement: str, params: tuple[Any, ...], index: str) -> None:
    """``RuntimeError`` unless the planner serves ``statement`` from ``index`` (no Seq Scan)."""
    plan = "\n".join(row[0] for row in conn.execute("EXPLAIN " + statement, params).fetchall())
    if f" {index} " not in plan + " " or "Seq Scan" in plan:
        raise RuntimeError(f"the raw statement is not served by index {index}:\n{plan}")


def part2_cases(
    conn: Any, tables: Part2Tables, sizes: Sizes, shape: str, counter: PgCounter
) -> list[Case]:
    """One shape's part-2 cases (issues 13 and 14), each checked to return the same records on
    both sides before it is timed."""
    return _read_cases(conn, tables, sizes, shape, counter) + _write_cases(
        conn, tables, sizes, shape, counter
    )


def _read_cases(
    conn: Any, tables: Part2Tables, sizes: Sizes, shape: str, counter: PgCounter
) -> list[Case]:
    cur = raw_cursor(conn)
    big, small = tables.bigs, tables.smalls
    email, grp, rank = (
        index_expression("email", str),
        index_expression("grp", str),
        index_expression("rank", int),
    )
    find_sql = f"SELECT id, doc FROM \"{tables.big}\" WHERE {email} = %s AND doc ? 'email'"
    page_head = f"SELECT id, doc FROM \"{tables.big}\" WHERE {grp} = %s AND doc ? 'grp'"
    page_order = f" ORDER BY {rank}, id LIMIT %s"
    first_page_sql = page_head + page_order
    next_page_sql = page_head + f" AND ({rank}, id) > (%s::numeric, %s)" + page_order
    step = max(1, sizes.indexed // sizes.calls)
    emails = [email_of(n, shape) for n in range(0, sizes.indexed, step)][: sizes.calls]
    small_step = max(1, sizes.indexed_small // sizes.calls)
    small_emails = [email_of(n, shape) for n in range(0, sizes.indexed_small, small_step)]
    small_emails = small_emails[: len(emails)]
    groups = sizes.indexed // sizes.page_group
    # Each call of a sample reads the first pages of another partition.
    partitions = [group_of(g * 7 % groups) for g in range(sizes.batch_calls)]
    limit = sizes.page

    def raw_find() -> list[Record]:
        found = []
        for value in emails:
            row = cur.execute(find_sql, (value,), prepare=True).fetchone()
            found.append({"id": row[0], **row[1]})
        return found

    def kv_find() -> list[Record]:
        return [big.find({"email": value}) for value in emails]

    def kv_find_small() -> list[Record]:
        return [small.find({"email": value}) for value in small_emails]

    def raw_pages() -> list[Record]:
        found: list[Record] = []
        for partition in partitions:
            rows = cur.execute(first_page_sql, (partition, limit), prepare=True).fetchall()
            for _ in range(sizes.pages - 1):
                found += [{"id": row[0], **row[1]} for row in rows]
                last = rows[-1]
                params = (partition, last[1]["rank"], last[0], limit)
                rows = cur.execute(next_page_sql, params, prepare=True).fetchall()
            found += [{"id": row[0], **row[1]} for row in rows]
        return found

    def kv_pages() -> list[Record]:
        found: list[Record] = []
        for partition in partitions:
            page = big.find_page({"grp": partition}, limit=limit)
            for _ in range(sizes.pages - 1):
                found += page.records
                page = big.find_page({"grp": partition}, limit=limit, cursor=page.cursor)
            found += page.records
        return found

    def check_find() -> None:
        check_reads(f"aurora find by indexed field [{shape}]", kv_find, raw_find)
        _check_served_by(conn, find_sql, (emails[0],), f"{tables.big}__by_email")

    def check_pages() -> None:
        check_reads(f"aurora find_page [{shape}]", kv_pages, raw_pages)
        by_grp = f"{tables.big}__by_grp"
        _check_served_by(conn, first_page_sql, (partitions[0], limit), by_grp)
        _check_served_by(conn, next_page_sql, (partitions[0], 3, "x", limit), by_grp)

    def check_small() -> None:
        # Every email of the small kind is found (its records are those of the big kind).
        check_reads(f"aurora find on the small kind [{shape}]", kv_find_small, raw_small)

    def raw_small() -> list[Record]:
        return [big.find({"email": value}) for value in small_emails]

    pages = sizes.pages * len(partitions)

    def common(**more: Any) -> dict[str, Any]:
        return {"shape": shape, "counter": counter, **more}

    return [
        Case(
            f"find by indexed field on {sizes.indexed:,} records",
            "aurora",
            kv_find,
            [Raw("prepared SELECT on the index", raw_find, Targets.INDEXED_FIND)],
            **common(ops=len(emails), calls=len(emails), check=check_find),
        ),
        Case(
            f"find_page of {limit} by index partition, with cursor",
            "aurora",
            kv_pages,
            [Raw("keyset SELECT on the index", raw_pages, Targets.PAGE)],
            **common(ops=pages, calls=pages, unit="pages", check=check_pages),
        ),
        Case(
            f"find by indexed field, {sizes.indexed:,} / {sizes.indexed_small:,} records",
            "aurora",
            kv_find,
            [Raw("kvstore on the small kind", kv_find_small, Targets.SCALE)],
            **common(ops=len(emails), calls=len(emails), check=check_small),
        ),
    ]


def _write_cases(
    conn: Any, tables: Part2Tables, sizes: Sizes, shape: str, counter: PgCounter
) -> list[Case]:
    from psycopg.types.json import Jsonb

    from kvstore import increment, transaction

    cur = raw_cursor(conn)
    writes, table = tables.updates, tables.update
    price, counter_name = price_field(shape), counter_field(shape)
    calls = min(sizes.calls, sizes.updated)
    numbers = list(range(calls))
    originals = {n: make_record(n, shape) for n in range(sizes.updated)}
    keys = [originals[n]["id"] for n in numbers]
    names = [originals[n]["name"] for n in numbers]
    prices = [round(n * 1.25 + 0.5, 2) for n in numbers]
    update_sql = (
        f"UPDATE \"{table}\" SET doc = doc || %s WHERE id = %s AND doc ->> 'name' = %s "
        "RETURNING id, doc"
    )
    added = (
        f"doc || jsonb_build_object('{counter_name}', "
        f"COALESCE((doc ->> '{counter_name}')::bigint, 0) + %s)"
    )
    increment_sql = f'UPDATE "{table}" SET doc = {added} WHERE id = %s RETURNING id, doc'
    tx_increment_sql = f'UPDATE "{table}" SET doc = {added} WHERE id = %s'
    upsert_sql = (
        f'INSERT INTO "{table}" (id, doc) VALUES (%s, %s) '
        "ON CONFLICT (id) DO UPDATE SET doc = EXCLUDED.doc"
    )
    half = sizes.transaction // 2
    transactions = [
        (
            [make_record(sizes.updated + t * half + k, shape) for k in range(half)],
            [originals[(t * half + k) % sizes.updated]["id"] for k in range(half)],
        )
        for t in range(max(1, sizes.calls // sizes.transaction))
    ]

    def raw_update() -> list[Record]:
        found = []
        for key, name, value in zip(keys, names, prices, strict=True):
            cur.execute(update_sql, (Jsonb({price: value}), key, name), prepare=True)
            row = cur.fetchone()
            if row is None:
                raise RuntimeError(f"the condition on {key} did not hold")
            found.append({"id": row[0], **row[1]})
        return found

    def kv_update() -> list[Record]:
        return [
            writes.update({"id": key, price: value}, expect={"name": name})
            for key, name, value in zip(keys, names, prices, strict=True)
        ]

    def raw_increment() -> list[Record]:
        found = []
        for key in keys:
            row = cur.execute(increment_sql, (1, key), prepare=True).fetchone()
            if row is None:
                raise RuntimeError(f"no record {key}")
            found.append({"id": row[0], **row[1]})
        return found

    def kv_increment() -> list[Record]:
        return [writes.update({"id": key, counter_name: increment(1)}) for key in keys]

    def raw_transaction() -> None:
        for puts, incremented in transactions:
            # BEGIN, the statements and COMMIT in one pipeline: one round trip (psycopg's
            # conn.transaction() syncs on entry and exit, which made it four).
            with conn.pipeline():
                cur.execute("BEGIN")
                for record in puts:
                    cur.execute(upsert_sql, (record["id"], Jsonb(record_doc(record))), prepare=True)
                for key in incremented:
                    cur.execute(tx_increment_sql, (1, key), prepare=True)
                cur.execute("COMMIT")

    def kv_transaction() -> None:
        for puts, incremented in transactions:
            with transaction() as tx:
                for record in puts:
                    tx.put(writes, record)
                for key in incremented:
                    tx.update(writes, {"id": key, counter_name: increment(1)})

    touched = sorted({*keys, *(key for _, incs in transactions for key in incs)})
    touched += sorted(record["id"] for puts, _ in transactions for record in puts)

    def reset() -> None:
        writes.put_many(originals.values())

    def read_back() -> list[Record]:
        return writes.find_in("id", touched)

    def checked(name: str, kv_side: Action, raw_side: Action) -> Action:
        return lambda: check_writes(f"aurora {name} [{shape}]", reset, kv_side, raw_side, read_back)

    def common(**more: Any) -> dict[str, Any]:
        return {"shape": shape, "counter": counter, **more}

    tx_calls = len(transactions)
    return [
        Case(
            "update with expect",
            "aurora",
            kv_update,
            [Raw("UPDATE ... WHERE ... RETURNING", raw_update, Targets.CONDITIONAL)],
            **common(ops=calls, calls=calls, check=checked("update", kv_update, raw_update)),
        ),
        Case(
            "update with increment",
            "aurora",
            kv_increment,
            [Raw("UPDATE ... RETURNING", raw_increment, Targets.CONDITIONAL)],
            **common(
                ops=calls, calls=calls, check=checked("increment", kv_increment, raw_increment)
            ),
        ),
        Case(
            f"transaction of {sizes.transaction} operations",
            "aurora",
            kv_transaction,
            [Raw("pipelined BEGIN ... COMMIT", raw_transaction, Targets.TRANSACTION)],
            **common(
                ops=tx_calls,
                calls=tx_calls,
                check=checked("transaction", kv_transaction, raw_transaction),
            ),
        ),
    ]
