"""The client's instructions per call, counted by valgrind's callgrind: kvstore's aurora update with
expect and increment against the same statement sent through psycopg's cursor.

    .venv/bin/python -m bench.instructions [--calls N] [CASE ...]

Each case runs twice under callgrind, with ``CALLS`` timed calls and with none after the same
warm-up, and one call's instructions are the difference over ``CALLS``. Unlike time, a count does
not move with the machine's load (another process, a CI run), so it shows a change of a few
hundred instructions on the client; what a call costs on the server and on the wire it leaves out
(the ``bench`` ratios have those). Needs valgrind and a PostgreSQL as ``bench`` finds one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

__all__ = ["CALLS", "CASES", "count", "main"]

CALLS = 1000
"""Timed calls in the counted run."""
CASES = ("kvstore_increment", "raw_increment", "kvstore_expect", "raw_expect")
_KEYS = 200
_COLLECTED = re.compile(r"Collected : (\d+)")


def _calls(
    case: str, conninfo: dict[str, Any]
) -> tuple[Callable[[str], object], list[str], Any, str]:
    """One case's call (of a key), its keys, its connection and its table (the caller drops
    it)."""
    import psycopg
    from psycopg.types.json import Jsonb

    from kvstore import create_store, increment

    conn = psycopg.connect(**conninfo, autocommit=True)
    kind = f"instructions_{uuid.uuid4().hex[:8]}"
    store = create_store(kind, backend="aurora", connection=conn)
    store.ensure()
    keys = [f"k{i:03}" for i in range(_KEYS)]
    store.put_many([{"id": key, "n": 1, "name": key, "price": 1.5} for key in keys])
    cursor = conn.cursor()
    added = "COALESCE((doc ->> 'n')::bigint, 0) + %s"
    increment_sql = (
        f"UPDATE \"{kind}\" SET doc = doc || jsonb_build_object('n', {added}) "
        "WHERE id = %s RETURNING id, doc"
    )
    expect_sql = (
        f"UPDATE \"{kind}\" SET doc = doc || %s WHERE id = %s AND doc ->> 'name' = %s "
        "RETURNING id, doc"
    )

    def raw(sql: str, params: Callable[[str], tuple[Any, ...]]) -> Callable[[str], object]:
        def call(key: str) -> object:
            row = cursor.execute(sql, params(key), prepare=True).fetchone()
            assert row is not None
            return {"id": row[0], **row[1]}

        return call

    calls: dict[str, Callable[[str], object]] = {
        "kvstore_increment": lambda key: store.update({"id": key, "n": increment(1)}),
        "raw_increment": raw(increment_sql, lambda key: (1, key)),
        "kvstore_expect": lambda key: store.update({"id": key, "price": 2.5}, expect={"name": key}),
        "raw_expect": raw(expect_sql, lambda key: (Jsonb({"price": 2.5}), key, key)),
    }
    return calls[case], keys, conn, kind


def _inner(case: str, calls: int, conninfo: dict[str, Any]) -> None:
    """The run callgrind counts: a warm-up over every key, then ``calls`` calls."""
    call, keys, conn, kind = _calls(case, conninfo)
    for key in keys:
        call(key)
    for number in range(calls):
        call(keys[number % _KEYS])
    conn.execute(f'DROP TABLE "{kind}"')


def count(case: str, conninfo: dict[str, Any], calls: int = CALLS) -> float:
    """Instructions per call of ``case``, over ``calls`` calls (two runs under callgrind)."""
    totals = []
    for counted in (0, calls):
        done = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                sys.executable,
                "-m",
                "bench.instructions",
                "--inner",
                case,
                str(counted),
            ],
            env={**os.environ, "KVSTORE_INSTRUCTIONS_DB": repr(conninfo)},
            capture_output=True,
            text=True,
            check=True,
        )
        found = _COLLECTED.search(done.stderr)
        if found is None:
            raise RuntimeError(f"callgrind printed no total:\n{done.stderr[-2000:]}")
        totals.append(int(found.group(1)))
    return (totals[1] - totals[0]) / calls


def main(argv: list[str]) -> None:
    """Print each case's instructions per call (every case when none is named)."""
    import ast

    if argv[:1] == ["--inner"]:
        _inner(argv[1], int(argv[2]), ast.literal_eval(os.environ["KVSTORE_INSTRUCTIONS_DB"]))
        return
    calls = CALLS
    if argv[:1] == ["--calls"]:
        calls, argv = int(argv[1]), argv[2:]
    unknown = sorted(set(argv) - set(CASES))
    if unknown:
        raise SystemExit(f"unknown case(s) {', '.join(unknown)}: the cases are {', '.join(CASES)}")
    from bench.servers import postgres_conninfo

    conninfo = postgres_conninfo()
    for case in argv or CASES:
        print(f"{case}: {count(case, conninfo, calls):,.0f} instructions a call", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
