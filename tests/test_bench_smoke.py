"""Smoke test of the load benchmark harness (benchmarks/bench_load.py): 2 beds, 3 viewers, Vigil and the bare
websockets peer, each for one short cell. Checks the structure of the results and that the figures are real
(latencies positive, frames delivered, alarms raised by fault injection delivered, nothing reliable lost);
speed targets live in the benchmark itself, not here."""

from __future__ import annotations

from typing import Any

import pytest

from benchmarks import bench_load

pytestmark = pytest.mark.timeout(400)


def _check_row(row: dict[str, Any], server: str) -> None:
    assert row["server"] == server and row["beds"] == 2 and row["viewers"] == 3
    assert row["viewers_ready"] == 3 and not row["viewer_errors"]
    assert row["frames_per_s"] > 0 and row["published_per_s"] > 0
    for key in ("delivery", "delivery_waves", "delivery_vitals", "delivery_bedside", "delivery_station"):
        d = row[key]
        assert d["n"] > 0, key
        assert 0 < d["p50_ms"] <= d["p95_ms"] <= d["p99_ms"] <= d["max_ms"], key
    alarm = row["alarm"]
    assert alarm["n"] > 0 and alarm["p50_ms"] > 0  # a NO DATA alarm reached the viewers of its bay
    assert row["alarms_published"] > 0
    assert row["reliable_lost"] == {"alarms": 0, "status": 0, "device_alarm": 0}
    assert row["drops"]["resyncs"] == 0
    assert row["server_cpu_pct"] > 0 and row["server_rss_mb"] > 0 and row["viewer_cpu_pct"] > 0
    assert row["mean_bytes"]["wave"] > 0 and row["mean_bytes"]["vitals"] > 0


def test_viewer_mix_follows_the_issue() -> None:
    specs = bench_load.viewer_specs(100, 300)
    bedside = [s for s in specs if s["group"] == "bedside"]
    stations = [s for s in specs if s["group"] == "station"]
    assert len(bedside) == 200 and len(stations) == 100
    assert all(len(s["bays"]) == 1 and s["waves"] == "full" for s in bedside)
    assert all(len(s["bays"]) == 16 and s["waves"] == "decimated" for s in stations)
    assert {b for s in bedside for b in s["bays"]} == {f"bay{i}" for i in range(1, 101)}
    slow = bench_load.viewer_specs(10, 10, slow=True)
    assert [s["group"] for s in slow].count("slow") == 1 and slow[-1]["pause_s"] == 60.0


def test_harness_runs_one_small_cell_against_vigil_and_the_peer() -> None:
    # Silenced devices raise NO DATA ~13 s after the silence starts (3 s stale + the rule's 10-s delay), so the
    # window must be long enough to contain one.
    rows = bench_load.run_matrix((2,), (3,), seconds=16.0, warmup_s=1.0)
    assert [r["server"] for r in rows] == ["vigil", "bare-websockets"]
    _check_row(rows[0], "vigil")
    _check_row(rows[1], "bare-websockets")
    # Vigil's viewers subscribe with batch: several messages share a frame; the peer sends one per frame.
    assert 0 < rows[0]["ws_frames_per_s"] < rows[0]["frames_per_s"]
    assert rows[1]["ws_frames_per_s"] == rows[1]["frames_per_s"]
    assert all(r["cell_wall_s"] > 16.0 for r in rows)
    ratios = bench_load.ratios(rows)
    assert len(ratios) == 1 and ratios[0]["frames_per_s"] is not None and ratios[0]["frames_per_s"] > 0
    text = bench_load.table(rows)
    assert "vigil" in text and "bare-websockets" in text
