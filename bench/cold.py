"""Cold start, in fresh processes: ``import kvstore`` alone, and import + first ``find`` per backend,
each with bytecode compiled and without any.

Each run is a new interpreter (``-S``, ``PYTHONDONTWRITEBYTECODE=1``) whose packages all come from a
Lambda-like code directory (``bench.codedir``): compiled by ``compileall``, or without bytecode, as a
read-only Lambda package shipped without ``.pyc`` files is, so every package is compiled from source
at every start (the standard library stays compiled, as the Lambda runtime's is). Each times itself
from just before its first import to just after the call (interpreter start-up is left out: it is
the same for both sides); kvstore and raw runs alternate, after one untimed run of each.

Both sides of a first-find run start with the same import, that of the driver's core (``psycopg``,
``botocore.session``), timed apart. It is most of a run (100 to 200 ms) and identical work on both
sides, yet it varied by +-15 ms from run to run: in the difference of two whole runs it buried the
few ms being measured (one version of the code read +5.2, +8.5 and +9.1 ms in three runs of 21
processes a side). kvstore's extra is therefore the median difference of the rest of each run;
the times shown are whole runs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.codedir import ROOT, CodeDirs, make_code_dirs
from bench.harness import Row

__all__ = ["cold_rows"]

DRIVERS = ("boto3", "botocore", "psycopg", "sqlalchemy", "pluggy", "click")
IMPORT_TARGET_MS = 20.0
FIRST_CALL_EXTRA_MS = 10.0

_PRELUDE = "import json, os, sys, time\nstart = time.perf_counter()\n"
_SHARED = "shared = time.perf_counter() - start\n"
_REPORT = (
    "elapsed = time.perf_counter() - start\n"
    "print(json.dumps({'seconds': elapsed, 'shared': globals().get('shared', 0.0), "
    f"'drivers': [m for m in {DRIVERS!r} if m in sys.modules], "
    "'files': [getattr(sys.modules.get(m), '__file__', None) for m in ('kvstore', 'psycopg', "
    "'botocore')], 'pyc': [os.path.exists(getattr(sys.modules.get(m), '__cached__', None) or '') "
    "for m in ('kvstore', 'psycopg', 'botocore') if m in sys.modules]}))\n"
)

SHARED_IMPORT = {"aurora": "import psycopg\n", "dynamo": "import botocore.session\n"}
"""The import both sides of a backend's first-find run begin with, timed apart."""

IMPORT_ONLY = "import kvstore\n"
KVSTORE_FIND = (
    "import kvstore\n"
    "kvstore.create_store(os.environ['BENCH_KIND'], backend=os.environ['BENCH_BACKEND'])"
    ".find({'id': 'cold'})\n"
)
PSYCOPG_FIND = (
    "import psycopg\n"
    "conn = psycopg.connect(os.environ['DATABASE_URL'])\n"
    "conn.execute('SELECT id, doc FROM \"' + os.environ['BENCH_KIND'] + '\" WHERE id = %s', "
    "('cold',)).fetchone()\n"
)
BOTO3_FIND = (
    "import boto3\n"
    "boto3.client('dynamodb').get_item(TableName=os.environ['DYNAMO_TABLE_PREFIX'] + "
    "os.environ['BENCH_KIND'], Key={'id': {'S': 'cold'}}, ConsistentRead=True)['Item']\n"
)


BYTECODE = {"compiled": "bytecode compiled", "source": "no bytecode"}
"""The variants of each row: the code directory used, and how the table names it."""


def _run(body: str, env: dict[str, str], code: Path) -> dict[str, Any]:
    # Nothing is written: a Lambda's code directory is read-only. -S keeps site-packages (and the
    # editable install's finder, which imports a third of what kvstore needs) off the path; the
    # working directory, first on the path of ``-c``, is the code directory, as on Lambda.
    env = {**env, "PYTHONPATH": str(code), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-S", "-c", _PRELUDE + body + _REPORT],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cold-start run failed:\n{done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    strays = [file for file in result["files"] if file and not file.startswith(str(code))]
    if strays:
        raise RuntimeError(f"a cold-start run imported from outside {code}: {strays}")
    compiled = code.name == "compiled"
    if any(found != compiled for found in result["pyc"]):
        raise RuntimeError(f"a cold-start run in {code} found bytecode {result['pyc']}")
    return result


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def import_row(runs: int, code: Path, variant: str) -> Row:
    """``import kvstore`` alone: its time, and the drivers it imported (there must be none).

    The target applies to compiled bytecode; without it, the time is shown with none."""
    env = dict(os.environ)
    _run(IMPORT_ONLY, env, code)  # untimed: warms the file cache
    results = [_run(IMPORT_ONLY, env, code) for _ in range(runs)]
    seconds = statistics.median(r["seconds"] for r in results)
    drivers = sorted({name for r in results for name in r["drivers"]})
    compiled = variant == "compiled"
    return Row(
        operation=f"import kvstore, {BYTECODE[variant]}",
        backend="cold",
        versus="-",
        unit="ms",
        library_ops_s=None,
        raw_ops_s=None,
        ratio=None,
        target=f"< {IMPORT_TARGET_MS:.0f} ms, no driver" if compiled else "no driver",
        met=(seconds * 1000 < IMPORT_TARGET_MS or not compiled) and not drivers,
        library_value=_ms(seconds),
        raw_value="-",
        note="drivers imported: " + (", ".join(drivers) if drivers else "none"),
        samples={"kvstore": [r["seconds"] for r in results]},
    )


def first_find_row(backend: str, kind: str, runs: int, code: Path, variant: str) -> Row:
    """Import + create_store + first find on ``backend`` against import + connect + the raw call.

    The target (kvstore's extra) applies to compiled bytecode; without it, none is set."""
    env = {**os.environ, "BENCH_KIND": kind, "BENCH_BACKEND": backend}
    raw_body, raw_label = (
        (PSYCOPG_FIND, "import psycopg + SELECT")
        if backend == "aurora"
        else (BOTO3_FIND, "import boto3 + GetItem")
    )
    shared = SHARED_IMPORT[backend] + _SHARED
    kv: list[dict[str, Any]] = []
    raw: list[dict[str, Any]] = []
    _run(shared + KVSTORE_FIND, env, code)  # untimed, as in import_row
    _run(shared + raw_body, env, code)
    for number in range(runs):
        order = [(KVSTORE_FIND, kv), (raw_body, raw)]
        for body, into in order if number % 2 == 0 else reversed(order):
            into.append(_run(shared + body, env, code))
    extra = statistics.median(
        (k["seconds"] - k["shared"]) - (r["seconds"] - r["shared"])
        for k, r in zip(kv, raw, strict=True)
    )
    whole = {"kvstore": [k["seconds"] for k in kv], raw_label: [r["seconds"] for r in raw]}
    shared_ms = statistics.median(run["shared"] for run in kv + raw) * 1000
    compiled = variant == "compiled"
    return Row(
        operation=f"{backend} import + first find, {BYTECODE[variant]}",
        backend="cold",
        versus=raw_label,
        unit="ms",
        library_ops_s=None,
        raw_ops_s=None,
        ratio=statistics.median(
            k / r for k, r in zip(whole["kvstore"], whole[raw_label], strict=True)
        ),
        target=f"<= raw + {FIRST_CALL_EXTRA_MS:.0f} ms" if compiled else "-",
        met=extra * 1000 <= FIRST_CALL_EXTRA_MS if compiled else None,
        library_value=_ms(statistics.median(whole["kvstore"])),
        raw_value=_ms(statistics.median(whole[raw_label])),
        note=f"kvstore {extra * 1000:+.1f} ms; {SHARED_IMPORT[backend].strip()!r} "
        f"{shared_ms:.0f} ms on both sides, timed apart",
        samples={
            **whole,
            "shared kvstore": [k["shared"] for k in kv],
            f"shared {raw_label}": [r["shared"] for r in raw],
        },
    )


def cold_rows(backends: list[str], tag: str, runs: int) -> list[Row]:
    """The cold-start rows, compiled then without bytecode: ``import kvstore``, then first find
    on each of ``backends``."""
    import shutil

    from kvstore import create_store

    base = ROOT / ".cache" / f"bench-cold-{tag}"
    dirs: CodeDirs = make_code_dirs(base)
    code = {"compiled": dirs.compiled, "source": dirs.source}
    kind = f"bench_cold_{tag}"
    try:
        rows = [import_row(runs, code[variant], variant) for variant in BYTECODE]
        for backend in backends:
            store = create_store(kind, backend=backend)
            store.ensure()
            store.put({"id": "cold", "name": "first call", "n": 1})
            try:
                rows += [
                    first_find_row(backend, kind, runs, code[variant], variant)
                    for variant in BYTECODE
                ]
            finally:
                drop_table(backend, kind)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return rows


def drop_table(backend: str, kind: str) -> None:
    """Drop ``kind``'s table on ``backend`` with the raw driver."""
    if backend == "dynamo":
        import boto3

        table = os.environ.get("DYNAMO_TABLE_PREFIX", "") + kind
        boto3.client("dynamodb").delete_table(TableName=table)
    else:
        import psycopg

        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
            conn.execute(f'DROP TABLE IF EXISTS "{kind}"')
