"""Smoke test of the benchmark: ``python -m bench --quick`` runs and reports every case (no timing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_quick_run_prints_a_table_with_a_ratio_for_every_case(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(out)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    rows = result["rows"]
    table = done.stdout
    assert "| operation | vs raw | kvstore | raw | ratio |" in table
    for row in rows:
        assert f"{row['backend']}: {row['operation']}" in table
    timed = [row for row in rows if row["backend"] != "cold"]
    assert {row["backend"] for row in timed} == {"aurora", "dynamo"}
    for row in timed:
        assert row["ratio"] > 0, row
        assert row["kvstore_round_trips"] > 0, row
        assert f"{row['ratio']:.2f}" in table
    # A single prepared SELECT or GetItem is one round trip: the counters see every call.
    singles = {(row["backend"], row["versus"]): row["raw_round_trips"] for row in timed}
    assert singles[("aurora", "prepared SELECT")] == 1
    assert singles[("dynamo", "GetItem")] == 1
    cold = {row["operation"]: row for row in rows if row["backend"] == "cold"}
    assert cold["import kvstore"]["note"] == "drivers imported: none"
    for backend in ("aurora", "dynamo"):
        row = cold[f"{backend} import + first find"]
        assert row["ratio"] > 0
        # The driver import both sides share is timed apart: each run's part is inside its whole.
        samples = row["samples"]
        for side in ("kvstore", row["versus"]):
            for whole, shared in zip(samples[side], samples[f"shared {side}"], strict=True):
                assert 0 < shared < whole
    for name in ("date", "machine", "python", "servers"):
        assert result["info"][name]
