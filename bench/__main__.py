"""``python -m bench``: run the benchmark and print its markdown table (``--help`` for options)."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from importlib.metadata import version
from typing import Any

from bench.harness import (
    Case,
    Row,
    Throughput,
    failed_row,
    measure,
    measure_throughput,
    render_table,
    write_json,
)

SECTIONS = ("aurora", "dynamo", "migration", "cold", "memory")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="kvstore against psycopg 3 and the boto3 client, same servers, interleaved.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, few rounds (smoke run)")
    parser.add_argument(
        "--only",
        choices=SECTIONS,
        action="append",
        help="run only this section (repeatable); memory runs only with --memory or --only memory",
    )
    parser.add_argument(
        "--case", metavar="TEXT", help="time only the cases whose operation contains TEXT"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help="timed rounds per case (default: what fills ~6 s, 7 to 21; quick 3)",
    )
    parser.add_argument("--cold-runs", type=int, help="processes per cold-start side (default 21)")
    parser.add_argument("--json", metavar="PATH", help="also write the results, samples included")
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="also profile kvstore's side of each case with pyinstrument, one text file a case",
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="also time other libraries doing the reads (extra bench-peers): boto3's Table "
        "resource and PynamoDB, SQLAlchemy Core and dataset",
    )
    parser.add_argument(
        "--memory", action="store_true", help="also measure iter_all's peak RSS on big tables"
    )
    parser.add_argument("--memory-rows", type=int, help="aurora rows (--memory; 1,000,000)")
    parser.add_argument("--memory-mb", type=int, help="DynamoDB table MB (--memory; 50)")
    return parser


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _load() -> str:
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


PACKAGES = ("kvstore", "psycopg", "boto3", "botocore")
PEER_PACKAGES = ("pynamodb", "sqlalchemy", "dataset")


def _info(args: argparse.Namespace, servers: dict[str, str]) -> dict[str, Any]:
    packages = {}
    for name in PACKAGES + (PEER_PACKAGES if args.peers else ()):
        try:
            packages[name] = version(name)
        except Exception:
            packages[name] = "not installed"
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {_cpu()}, {os.cpu_count()} CPUs, {platform.system()} "
        f"{platform.release()}",
        "load average": _load(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "packages": packages,
        "servers": servers,
        "options": {key: value for key, value in vars(args).items() if value not in (None, False)},
    }


def _header(info: dict[str, Any]) -> list[str]:
    packages = ", ".join(f"{name} {value}" for name, value in info["packages"].items())
    servers = "; ".join(f"{name}: {value}" for name, value in info["servers"].items()) or "none"
    return [
        f"kvstore benchmark, {info['date']}",
        "",
        f"- machine: {info['machine']} (load average at start {info['load average']}, "
        f"at end {_load()}; a load near the CPU count makes single-call rows rough)",
        f"- Python {info['python'].split()[-1]} ({info['python'].split()[0]}); {packages}",
        f"- servers: {servers}",
        f"- options: {' '.join(f'{k}={v}' for k, v in info['options'].items()) or 'defaults'}",
        "- speeds: calls a second for single calls, records a second for batch calls; ratio: "
        "median over interleaved rounds of the library's time (kvstore's, or a peer's) / the raw "
        "side's time (lower is better); round trips, per call: PostgreSQL client/server turns, "
        "DynamoDB API calls; shapes: flat (~115 bytes of JSON), nested (~146 bytes, with a map, "
        "floats and a list); see docs/PERFORMANCE.md",
        "",
    ]


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _profile(case: Case, directory: str) -> None:
    from pyinstrument import Profiler

    os.makedirs(directory, exist_ok=True)
    profiler = Profiler(interval=0.0005)
    for _ in range(3):
        if case.before is not None:
            case.before()
        profiler.start()
        case.kvstore()
        profiler.stop()
    name = "".join(
        c if c.isalnum() else "-" for c in f"{case.backend}-{case.operation}-{case.shape}"
    )
    path = os.path.join(directory, name + ".txt")
    with open(path, "w", encoding="utf-8") as out:
        out.write(profiler.output_text(unicode=False, color=False, show_all=False))
    _progress(f"  profile: {path}")


def _throughput(work: Throughput) -> list[Row]:
    started = time.perf_counter()
    found = measure_throughput(work)
    speeds = ", ".join(f"{row.operation.rsplit(', ', 1)[-1]} {row.library_value}" for row in found)
    _progress(
        f"  {work.backend}: {work.operation} [{work.shape}]: {speeds} "
        f"({work.rounds} rounds, {time.perf_counter() - started:.1f} s)"
    )
    return found


def _run_cases(
    cases: Sequence[Case | Throughput],
    rounds: int | None,
    profile: str | None,
    only: str | None,
    warm_up: float,
) -> list[Row]:
    rows: list[Row] = []
    for case in cases:
        if only and only not in case.operation:
            continue
        started = time.perf_counter()
        try:
            if isinstance(case, Throughput):
                rows += _throughput(case)
                continue
            found = measure(case, rounds, warm_up)
        except Exception as exc:  # a finding: reported in the table and on stderr, not hidden
            _progress(f"  {case.backend}: {case.operation} [{case.shape}]: FAILED")
            traceback.print_exc()
            rows.append(failed_row(case.operation, case.backend, case.shape, exc))
            continue
        if profile:
            _profile(case, profile)
        ratios = ", ".join(
            f"{'' if row.library == 'kvstore' else row.library + ' '}vs {row.versus} "
            f"{row.ratio:.2f}"
            for row in found
        )
        _progress(
            f"  {case.backend}: {case.operation} [{case.shape}]: {ratios} "
            f"({len(found[0].samples['kvstore'])} rounds, {time.perf_counter() - started:.1f} s)"
        )
        rows += found
    return rows


def _section(
    name: str,
    build: Callable[[], tuple[Sequence[Case | Throughput], Any]],
    rounds: int | None,
    profile: str | None,
    only: str | None,
    warm_up: float,
) -> list[Row]:
    _progress(f"{name}: loading data")
    started = time.perf_counter()
    try:
        cases, cleanup = build()
    except Exception as exc:  # the section's cases cannot run: one FAILED row says why
        _progress(f"{name}: FAILED while loading data")
        traceback.print_exc()
        return [failed_row("loading data", name, "-", exc)]
    _progress(f"{name}: data ready in {time.perf_counter() - started:.1f} s")
    try:
        return _run_cases(cases, rounds, profile, only, warm_up)
    finally:
        cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the sections chosen, print the table, write JSON when asked; 0 even when targets miss,
    1 when a case failed (its row says why, its traceback went to stderr)."""
    from bench.aurora import aurora_cases
    from bench.cold import cold_rows
    from bench.servers import dynamo_endpoint, postgres_conninfo, postgres_version
    from bench.workload import Sizes

    args = _parser().parse_args(argv)
    chosen = args.only or ["aurora", "dynamo", "migration", "cold"]
    if args.memory and "memory" not in chosen:
        chosen.append("memory")
    backends = [name for name in ("aurora", "dynamo") if name in chosen] or ["aurora", "dynamo"]
    if "migration" in chosen:  # a kind moving from DynamoDB Local to PostgreSQL: both servers
        backends = ["aurora", "dynamo"]
    rounds = args.rounds or (3 if args.quick else None)
    warm_up = 0.2 if args.quick else 1.0  # seconds of untimed runs before each case
    cold_runs = args.cold_runs or (3 if args.quick else 21)
    sizes = Sizes(quick=args.quick)
    tag = f"{os.getpid()}"
    servers: dict[str, str] = {}
    conninfo = None
    if "aurora" in backends or "cold" in chosen:
        from bench.servers import database_url

        conninfo = postgres_conninfo()
        os.environ["DATABASE_URL"] = database_url(conninfo)
        servers["aurora"] = postgres_version(conninfo)
    if "dynamo" in backends or "cold" in chosen:
        from bench.dynamo import dynamo_environment

        endpoint, description = dynamo_endpoint()
        dynamo_environment(endpoint, prefix=f"bench-{tag}-")
        servers["dynamo"] = description
    info = _info(args, servers)
    rows: list[Row] = []
    if "aurora" in chosen:
        assert conninfo is not None
        rows += _section(
            "aurora",
            lambda: aurora_cases(conninfo, sizes, tag, peers=args.peers),
            rounds,
            args.profile,
            args.case,
            warm_up,
        )
    if "dynamo" in chosen:
        from bench.dynamo import dynamo_cases

        rows += _section(
            "dynamo",
            lambda: dynamo_cases(sizes, tag, peers=args.peers),
            rounds,
            args.profile,
            args.case,
            warm_up,
        )
    if "migration" in chosen:
        from bench.migrating import migration_cases

        assert conninfo is not None
        rows += _section(
            "migration",
            lambda: migration_cases(conninfo, sizes, tag),
            rounds,
            args.profile,
            args.case,
            warm_up,
        )
    if "cold" in chosen:
        _progress("cold start")
        try:
            rows += cold_rows(["aurora", "dynamo"], tag, cold_runs)
        except Exception as exc:  # as a case's failure: a row, and the traceback on stderr
            traceback.print_exc()
            rows.append(failed_row("import + first find", "cold", "-", exc))
    if "memory" in chosen:
        from bench.rss import memory_rows

        rows += memory_rows(
            backends,
            tag,
            rows=args.memory_rows or 1_000_000,
            megabytes=args.memory_mb or 50,
            progress=_progress,
        )
    table = render_table(rows, _header(info))
    print(table)
    if args.json:
        write_json(args.json, rows, info)
    return 1 if any(row.error for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
