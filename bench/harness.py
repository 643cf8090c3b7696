"""Interleaved timing of kvstore against raw-driver code, and the table and JSON it produces.

Each case runs its kvstore side and each raw side in turn, round after round (A B B A ...: the order
flips every round so neither side always runs second), so drift on a shared machine hits both alike.
A case's ratio is the median, over rounds, of kvstore's time over the raw side's time in that round.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

__all__ = [
    "Case",
    "Counter",
    "Raw",
    "Row",
    "measure",
    "render_table",
    "write_json",
]

Action = Callable[[], object]


class Counter(Protocol):
    """Counts the round trips (statements, API calls) made between ``start`` and ``stop``."""

    def start(self) -> None:
        """Begin counting."""

    def stop(self) -> int:
        """Stop counting; return the count."""
        ...


@dataclass
class Raw:
    """One raw-driver way of doing a case's work, and the target kvstore must meet against it."""

    label: str
    run: Action
    target: float
    """kvstore time / this side's time must be at most this."""


@dataclass
class Case:
    """One operation: kvstore's call and the raw driver's ways of doing the same work.

    ``run`` and each raw ``run`` do ``ops`` operations (calls, or records for batch calls);
    ``before`` (untimed) runs before every timed run of either side, e.g. to empty a table.
    """

    operation: str
    backend: str
    kvstore: Action
    raws: list[Raw]
    ops: int
    unit: str = "calls"
    calls: int = 1
    """How many kvstore calls one run makes (round trips are shown per call)."""
    before: Action | None = None
    counter: Counter | None = None


@dataclass
class Row:
    """A table row: one case against one raw side."""

    operation: str
    backend: str
    versus: str
    unit: str
    kvstore_ops_s: float | None
    raw_ops_s: float | None
    ratio: float | None
    target: str
    met: bool | None
    kvstore_round_trips: float | None = None
    raw_round_trips: float | None = None
    kvstore_value: str = ""
    raw_value: str = ""
    note: str = ""
    samples: dict[str, list[float]] = field(default_factory=dict)


def _timed(case: Case, action: Action) -> float:
    if case.before is not None:
        case.before()
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _round_trips(case: Case, action: Action) -> float | None:
    if case.counter is None:
        return None
    if case.before is not None:
        case.before()
    case.counter.start()
    try:
        action()
    finally:
        count = case.counter.stop()
    return count / case.calls


MIN_ROUNDS, MAX_ROUNDS, ROUNDS_SECONDS = 7, 21, 6.0
"""Without ``rounds``, a case gets as many rounds as fill about ROUNDS_SECONDS, within these
bounds: a round of single calls or of one find_in lasts a fraction of a second, and 7 such rounds
left the same code's ratios anywhere from 0.98 to 1.13 (find by key) and 1.07 to 1.20 (find_in);
15 to 21 read within 0.04."""


def measure(case: Case, rounds: int | None, warm_up: float = 1.0) -> list[Row]:
    """Time ``case`` over ``rounds`` interleaved rounds (``None``: see ``ROUNDS_SECONDS``), after
    an untimed warm-up and count.

    The warm-up runs every side at least once and for at least ``warm_up`` seconds in all:
    connections, prepared statements, caches, and DynamoDB Local's JIT compiler.
    """
    sides: list[tuple[str, Action]] = [("kvstore", case.kvstore)]
    sides += [(raw.label, raw.run) for raw in case.raws]
    deadline = time.perf_counter() + warm_up
    while True:
        one_round = sum(_timed(case, action) for _label, action in sides)
        if time.perf_counter() >= deadline:
            break
    if rounds is None:
        rounds = max(MIN_ROUNDS, min(MAX_ROUNDS, round(ROUNDS_SECONDS / one_round)))
    trips = {label: _round_trips(case, action) for label, action in sides}
    times: dict[str, list[float]] = {label: [] for label, _ in sides}
    for number in range(rounds):
        for label, action in sides if number % 2 == 0 else reversed(sides):
            times[label].append(_timed(case, action))
    rows = []
    kv_times = times["kvstore"]
    kv_median = statistics.median(kv_times)
    for raw in case.raws:
        raw_times = times[raw.label]
        ratio = statistics.median(k / r for k, r in zip(kv_times, raw_times, strict=True))
        raw_median = statistics.median(raw_times)
        rows.append(
            Row(
                operation=case.operation,
                backend=case.backend,
                versus=raw.label,
                unit=case.unit,
                kvstore_ops_s=case.ops / kv_median,
                raw_ops_s=case.ops / raw_median,
                ratio=ratio,
                target=f"<= {raw.target:.2f}",
                met=ratio <= raw.target,
                kvstore_round_trips=trips["kvstore"],
                raw_round_trips=trips[raw.label],
                samples={"kvstore": kv_times, raw.label: raw_times},
            )
        )
    return rows


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _trips(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def render_table(rows: Sequence[Row], header: Sequence[str] = ()) -> str:
    """The markdown table of ``rows``, after ``header`` lines; a missed target is marked **MISS**."""
    lines = list(header)
    lines.append(
        "| operation | vs raw | kvstore | raw | ratio | target | met | round trips kvstore/raw |"
    )
    lines.append("|---|---|---:|---:|---:|---|---|---|")
    for row in rows:
        if row.kvstore_value:
            kv, raw = row.kvstore_value, row.raw_value
        else:
            kv = f"{_number(row.kvstore_ops_s)} {row.unit}/s"
            raw = f"{_number(row.raw_ops_s)} {row.unit}/s"
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
        met = {True: "yes", False: "**MISS**", None: "-"}[row.met]
        trips = f"{_trips(row.kvstore_round_trips)} / {_trips(row.raw_round_trips)}"
        operation = f"{row.backend}: {row.operation}"
        if row.note:
            operation += f" ({row.note})"
        lines.append(
            f"| {operation} | {row.versus} | {kv} | {raw} | {ratio} | {row.target} | {met} | {trips} |"
        )
    return "\n".join(lines)


def write_json(path: str, rows: Sequence[Row], info: dict[str, Any]) -> None:
    """Write ``info`` (machine, versions, options) and every row, with its samples, to ``path``."""
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"info": info, "rows": [asdict(row) for row in rows]}, out, indent=2)
        out.write("\n")
