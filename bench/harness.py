"""Interleaved timing of kvstore against raw-driver code, and the table and JSON it produces.

Each case runs its kvstore side, each raw side and each peer library in turn, round after round
(A B C, then C B A: the order flips every round so no side always runs first or last), so drift on
a shared machine hits them alike. A case's ratio is the median, over rounds, of kvstore's (or a
peer's) time over the raw side's time in that round. A case whose check or call raises is not
timed: it shows as one **FAILED** row (``failed_row``), and the traceback goes to stderr.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

__all__ = [
    "HEADER",
    "Action",
    "Case",
    "Counter",
    "Peer",
    "Raw",
    "Row",
    "Throughput",
    "Variant",
    "failed_row",
    "measure",
    "measure_throughput",
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
    target: float | None
    """kvstore time / this side's time must be at most this; ``None``: the row is shown for
    reference, with no target (e.g. a raw call that leaves out a rule kvstore keeps)."""


@dataclass
class Peer:
    """Another library doing the case's work (``--peers``): shown beside kvstore, with no target."""

    label: str
    run: Action


@dataclass
class Case:
    """One operation on one record shape: kvstore's call, the raw driver's ways of doing the same
    work, and (``--peers``) other libraries doing it.

    ``kvstore`` and each raw or peer ``run`` do ``ops`` operations (calls, or records for batch
    calls); ``before`` (untimed) runs before every timed run of any side, e.g. to empty a table.
    Peers' ratios are over the first raw side.
    """

    operation: str
    backend: str
    kvstore: Action
    raws: list[Raw]
    ops: int
    shape: str = "-"
    unit: str = "calls"
    calls: int = 1
    """How many calls of each side one run makes (round trips are shown per call)."""
    before: Action | None = None
    counter: Counter | None = None
    peers: list[Peer] = field(default_factory=list)
    check: Action | None = None
    """Run once before the warm-up: raises when the sides do not do the same work (see
    ``bench.checks``)."""
    slowest_only: bool = False
    """The target applies against the slowest raw side only (by median time; e.g. a shadow
    read against the slower backend's own read); rows against the others show no target."""


@dataclass
class Row:
    """A table row: one case's library (kvstore, or a peer) against one raw side."""

    operation: str
    backend: str
    versus: str
    unit: str
    library_ops_s: float | None
    raw_ops_s: float | None
    ratio: float | None
    target: str
    met: bool | None
    library_round_trips: float | None = None
    raw_round_trips: float | None = None
    library_value: str = ""
    raw_value: str = ""
    note: str = ""
    shape: str = "-"
    library: str = "kvstore"
    samples: dict[str, list[float]] = field(default_factory=dict)
    error: str = ""
    """Why the case could not be measured (its exception); the row then has no numbers."""


def failed_row(operation: str, backend: str, shape: str, error: BaseException) -> Row:
    """The row of a case that raised ``error`` (in its check, its warm-up or a timed run)."""
    message = " ".join(str(error).split())
    return Row(
        operation=operation,
        backend=backend,
        versus="-",
        unit="calls",
        library_ops_s=None,
        raw_ops_s=None,
        ratio=None,
        target="-",
        met=None,
        shape=shape,
        error=f"{type(error).__name__}: {message[:300]}",
    )


@dataclass
class Variant:
    """One way of doing a ``Throughput``'s work; ``unsupported`` (why it cannot run) makes its
    row say so instead of timing it."""

    label: str
    run: Action
    unsupported: str = ""


@dataclass
class Throughput:
    """Work with no raw side to compare with (e.g. ``kvstore copy``): each variant's speed alone,
    its variants alternated round by round like a case's sides, ``before`` (untimed) before
    every run, the median shown."""

    operation: str
    backend: str
    variants: list[Variant]
    ops: int
    rounds: int
    shape: str = "-"
    unit: str = "records"
    before: Action | None = None
    counter: Counter | None = None
    versus: str = "no raw side"
    refused: Callable[[Exception], str] | None = None
    """Given what a variant's first run raised: why the variant is not supported (its row then
    says so), or ``""``: a failure."""
    check: Action | None = None
    """Run after the variants' first runs: raises when the work went wrong."""


def _timed(case: Case | Throughput, action: Action) -> float:
    if case.before is not None:
        case.before()
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _round_trips(case: Case | Throughput, action: Action) -> float | None:
    if case.counter is None:
        return None
    if case.before is not None:
        case.before()
    case.counter.start()
    try:
        action()
    finally:
        count = case.counter.stop()
    return count / (case.calls if isinstance(case, Case) else 1)


MIN_ROUNDS, MAX_ROUNDS, SIDE_SECONDS, WARM_ROUNDS = 7, 21, 3.0, 3
"""Without ``rounds``, a case gets as many rounds as fill about SIDE_SECONDS a side (6 s for kvstore
and one raw side), within these bounds: a round of single calls or of one find_in lasts a fraction
of a second, and 7 such rounds left the same code's ratios anywhere from 0.98 to 1.13 (find by key)
and 1.07 to 1.20 (find_in); 15 to 21 read within 0.04."""


def _row(
    case: Case,
    library: str,
    raw: Raw,
    times: dict[str, list[float]],
    trips: Any,
    targeted: bool = True,
) -> Row:
    lib_times, raw_times = times[library], times[raw.label]
    ratio = statistics.median(k / r for k, r in zip(lib_times, raw_times, strict=True))
    target = raw.target if library == "kvstore" and targeted else None
    return Row(
        operation=case.operation,
        backend=case.backend,
        versus=raw.label,
        unit=case.unit,
        library_ops_s=case.ops / statistics.median(lib_times),
        raw_ops_s=case.ops / statistics.median(raw_times),
        ratio=ratio,
        target="-" if target is None else f"<= {target:.2f}",
        met=None if target is None else ratio <= target,
        library_round_trips=trips[library],
        raw_round_trips=trips[raw.label],
        shape=case.shape,
        library=library,
        samples={library: lib_times, raw.label: raw_times},
    )


def measure(case: Case, rounds: int | None, warm_up: float = 1.0) -> list[Row]:
    """Time ``case`` over ``rounds`` interleaved rounds (``None``: see ``SIDE_SECONDS``), after
    an untimed warm-up and count: one row per raw side for kvstore, then one per peer (over the
    first raw side).

    The warm-up runs every side at least WARM_ROUNDS times and for at least ``warm_up`` seconds
    in all: connections, prepared statements, caches, and DynamoDB Local's JIT compiler. The
    rounds are counted from the fastest of its last WARM_ROUNDS rounds: a slow one (a side still
    being compiled, another process's burst on this shared machine) once cut a case of 43 ms
    rounds to 7 rounds. MAX_ROUNDS bounds the cost of being optimistic.
    """
    if case.check is not None:
        case.check()
    sides: list[tuple[str, Action]] = [("kvstore", case.kvstore)]
    sides += [(raw.label, raw.run) for raw in case.raws]
    sides += [(peer.label, peer.run) for peer in case.peers]
    deadline = time.perf_counter() + warm_up
    warm_rounds: list[float] = []
    while len(warm_rounds) < WARM_ROUNDS or time.perf_counter() < deadline:
        warm_rounds.append(sum(_timed(case, action) for _label, action in sides))
    if rounds is None:
        budget = SIDE_SECONDS * len(sides)
        one_round = min(warm_rounds[-WARM_ROUNDS:])
        rounds = max(MIN_ROUNDS, min(MAX_ROUNDS, round(budget / one_round)))
    trips = {label: _round_trips(case, action) for label, action in sides}
    times: dict[str, list[float]] = {label: [] for label, _ in sides}
    for number in range(rounds):
        for label, action in sides if number % 2 == 0 else reversed(sides):
            times[label].append(_timed(case, action))
    slowest = max(case.raws, key=lambda raw: statistics.median(times[raw.label]))
    rows = [
        _row(case, "kvstore", raw, times, trips, not case.slowest_only or raw is slowest)
        for raw in case.raws
    ]
    rows += [_row(case, peer.label, case.raws[0], times, trips) for peer in case.peers]
    return rows


def measure_throughput(work: Throughput) -> list[Row]:
    """Time each supported variant of ``work`` over ``work.rounds`` alternated rounds, after one
    untimed run each (which counts its round trips, and tells an unsupported variant by
    ``refused``) and ``check``: one row per variant."""
    trips: dict[str, float | None] = {}
    for variant in work.variants:
        try:
            trips[variant.label] = _round_trips(work, variant.run)
        except Exception as exc:
            variant.unsupported = work.refused(exc) if work.refused is not None else ""
            if not variant.unsupported:
                raise
    if work.check is not None:
        work.check()
    runnable = [variant for variant in work.variants if not variant.unsupported]
    times: dict[str, list[float]] = {variant.label: [] for variant in runnable}
    for number in range(work.rounds):
        for variant in runnable if number % 2 == 0 else list(reversed(runnable)):
            times[variant.label].append(_timed(work, variant.run))
    rows = []
    for variant in work.variants:
        row = Row(
            operation=f"{work.operation}, {variant.label}",
            backend=work.backend,
            versus=work.versus,
            unit=work.unit,
            library_ops_s=None,
            raw_ops_s=None,
            ratio=None,
            target="-",
            met=None,
            shape=work.shape,
            raw_value="-",
        )
        if variant.unsupported:
            row.library_value = "not supported"
            row.note = variant.unsupported
        else:
            row.library_ops_s = work.ops / statistics.median(times[variant.label])
            row.library_value = f"{_number(row.library_ops_s)} {work.unit}/s"
            row.library_round_trips = trips[variant.label]
            row.samples = {variant.label: times[variant.label]}
        rows.append(row)
    return rows


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def _trips(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


HEADER = (
    "| operation | shape | library | vs raw | library | raw | ratio | target | met "
    "| round trips library/raw |"
)
"""The table's first line (a library is kvstore or, with ``--peers``, another library)."""


def render_table(rows: Sequence[Row], header: Sequence[str] = ()) -> str:
    """The markdown table of ``rows``, after ``header`` lines; a missed target is marked **MISS**."""
    lines = list(header)
    lines.append(HEADER)
    lines.append("|---|---|---|---|---:|---:|---:|---|---|---|")
    for row in rows:
        if row.error:
            lines.append(
                f"| {row.backend}: {row.operation} | {row.shape} | {row.library} | - | - | - | - "
                f"| - | **FAILED** ({row.error.replace('|', '/')}) | - |"
            )
            continue
        if row.library_value:
            lib, raw = row.library_value, row.raw_value
        else:
            lib = f"{_number(row.library_ops_s)} {row.unit}/s"
            raw = f"{_number(row.raw_ops_s)} {row.unit}/s"
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
        met = {True: "yes", False: "**MISS**", None: "-"}[row.met]
        trips = f"{_trips(row.library_round_trips)} / {_trips(row.raw_round_trips)}"
        operation = f"{row.backend}: {row.operation}"
        if row.note:
            operation += f" ({row.note})"
        lines.append(
            f"| {operation} | {row.shape} | {row.library} | {row.versus} | {lib} | {raw} "
            f"| {ratio} | {row.target} | {met} | {trips} |"
        )
    return "\n".join(lines)


def write_json(path: str, rows: Sequence[Row], info: dict[str, Any]) -> None:
    """Write ``info`` (machine, versions, options) and every row, with its samples, to ``path``."""
    with open(path, "w", encoding="utf-8") as out:
        json.dump({"info": info, "rows": [asdict(row) for row in rows]}, out, indent=2)
        out.write("\n")
