"""GET /api/bays/{bay}/trends and GET /api/station/sessions against the real server and SQLite store.

Known readings are written straight into the store of a server with no monitors (nothing else writes), then
read back through HTTP: the min/max buckets keep every peak and trough, the density stays ≤ 1 point per
10 s on average, invalid readings are left out, silences become gaps, and bad queries are refused.
"""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.api.trends import MIN_BUCKET_S, bucket_for, downsample, initials
from app.store.base import Record
from monitors.models import Quality, Reading
from tests.conftest import RunningServer, running_server, small_settings

PATIENT = {"identifier": "MRN-7001", "name": "Jane Quinn Doe", "birth_date": "1970-01-02", "weight_kg": 70}
PLAN = {"dose_mg_per_kg": 0.5, "duration_min": 40, "concentration_mg_per_ml": 1}
UNITS = {"hr": "/min", "spo2": "%", "nibp_sys": "mm[Hg]", "rr": "/min", "etco2": "mm[Hg]"}


# ---- the pure downsampler ------------------------------------------------------------------------------


def test_downsample_keeps_min_and_max_of_each_bucket_in_time_order() -> None:
    rng = random.Random(7)
    pts = [(1000.0 + i, 70.0 + rng.uniform(-3, 3)) for i in range(600)]
    pts[123] = (pts[123][0], 150.0)  # a peak
    pts[124] = (pts[124][0], 35.0)  # and a trough right after it, in the same 20 s bucket
    out = downsample(pts, 20.0)
    ts = [t for t, _ in out]
    assert ts == sorted(ts) and len(set(ts)) == len(ts)
    assert len(out) <= 600 / 10 + 2  # ≤ 1 point per 10 s on average
    assert (pts[123][0], 150.0) in out and (pts[124][0], 35.0) in out
    for b in range(30):  # every bucket: exactly its min and max
        inside = [p for p in pts if p[0] // 20 == (1000 // 20) + b]
        kept = [p for p in out if p[0] // 20 == (1000 // 20) + b]
        assert {min(v for _, v in inside), max(v for _, v in inside)} == {v for _, v in kept}


def test_downsample_single_reading_and_flat_bucket_give_one_point() -> None:
    assert downsample([(40.0, 97.0)], 20.0) == [(40.0, 97.0)]
    assert downsample([(40.0, 97.0), (41.0, 97.0), (42.0, 97.0)], 20.0) == [(40.0, 97.0)]
    assert downsample([], 20.0) == []


def test_downsample_marks_silences_as_gaps() -> None:
    pts = [(0.0, 1.0), (10.0, 2.0), (300.0, 3.0)]
    out = downsample(pts, 20.0, gap_s=60.0)
    assert out == [(0.0, 1.0), (10.0, 2.0), (155.0, None), (300.0, 3.0)]


def test_bucket_grows_with_the_window() -> None:
    assert bucket_for(2 * 3600) == MIN_BUCKET_S
    assert bucket_for(24 * 3600) == 90.0  # 24 h → ≤ 2000 points: 86400 * 2 / 2000 = 86.4 → 90
    assert initials("Jane Quinn Doe") == "J.Q.D." and initials("al-Rashid Omar") == "A.R.O."


# ---- over HTTP ---------------------------------------------------------------------------------------------


def _reading(param: str, t: float, value: float | None, quality: Quality = Quality.VALID) -> Record:
    when = datetime.fromtimestamp(t, UTC)
    r = Reading(
        device_id="devT", param=param, value=value, unit=UNITS[param], t_device=when, t_received=when, quality=quality
    )
    return Record(bay="bay1", item=r)


async def _ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
async def server(tmp_path: Path) -> Any:
    async with running_server(small_settings(tmp_path, bays=2, monitors=[])) as srv:
        yield srv


async def test_trends_bucket_peaks_gaps_and_invalid_readings(server: RunningServer) -> None:
    t0 = 20.0 * (time.time() // 20) - 1800  # bucket-aligned, 30 min ago
    recs = []
    for i in range(1200):  # 20 min of 1 Hz HR and SpO2
        hr = 70.0 + (i % 7)
        recs.append(_reading("hr", t0 + i, 182.0 if i == 500 else 31.0 if i == 700 else hr))
        recs.append(_reading("spo2", t0 + i, 84.0 if i == 333 else 97.0))
    recs.append(_reading("spo2", t0 + 900.5, None, Quality.INVALID))  # probe off: never a point
    for i in range(1500, 1600):  # HR comes back after a 300 s silence
        recs.append(_reading("hr", t0 + i, 75.0))
    recs.append(_reading("nibp_sys", t0 + 10, 131.0))
    recs.append(_reading("nibp_sys", t0 + 12, 133.0))  # episodic: every measurement kept
    await server.services.store.append(recs)
    await server.services.store.flush()

    async with httpx.AsyncClient(base_url=server.http) as http:
        body = await _ok(
            await http.get(
                "/api/bays/bay1/trends",
                params=[("since", t0), ("until", t0 + 1700), ("param", "hr"), ("param", "spo2"), ("param", "nibp_sys")],
            )
        )
    assert body["bay"] == "bay1" and body["bucket_s"] == 20.0 and body["phases"] == []
    series = {s["param"]: s for s in body["series"]}
    assert list(series) == ["hr", "spo2", "nibp_sys"]

    hr = series["hr"]
    assert hr["unit"] == "/min" and not hr["episodic"]
    values = [v for v in hr["v"] if v is not None]
    assert max(values) == 182.0 and min(values) == 31.0  # peak and trough survive
    assert hr["t"][hr["v"].index(182.0)] == pytest.approx(t0 + 500, abs=0.01)
    assert len(hr["t"]) <= 1700 / 10 + 3  # ≤ 1 point per 10 s (+ the gap marker)
    assert hr["t"] == sorted(hr["t"])
    gaps = [t for t, v in zip(hr["t"], hr["v"], strict=True) if v is None]
    assert len(gaps) == 1 and t0 + 1199 < gaps[0] < t0 + 1500  # the silence is a break, not a line

    spo2 = series["spo2"]
    assert min(spo2["v"]) == 84.0 and None not in spo2["v"]  # the desaturation; the invalid reading is absent
    assert len(spo2["t"]) <= 1200 / 10 + 2

    assert series["nibp_sys"]["episodic"] and series["nibp_sys"]["v"] == [131.0, 133.0]


async def test_trends_default_window_and_session_phase_bands(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        body = await _ok(await http.get("/api/bays/bay2/trends"))
        assert body["session_id"] is None
        assert body["until"] - body["since"] == pytest.approx(7200, abs=1)  # no session: the last 2 h
        assert [s["param"] for s in body["series"]] == [
            "hr",
            "nibp_sys",
            "nibp_dia",
            "nibp_mean",
            "spo2",
            "rr",
            "etco2",
        ]
        assert all(s["t"] == [] for s in body["series"])

        pid = (await http.post("/api/patients", json=PATIENT)).json()["id"]
        created = await http.post("/api/sessions", json={"patient_id": pid, "bay": "bay2", "plan": PLAN})
        assert created.status_code == 201, created.text
        sid = created.json()["session"]["id"]
        r = await http.post(f"/api/sessions/{sid}/transition", json={"to": "baseline"})
        assert r.status_code == 200, r.text

        body = await _ok(await http.get("/api/bays/bay2/trends"))
        assert body["session_id"] == sid
        created_at = datetime.fromisoformat(created.json()["session"]["created_at"]).timestamp()
        assert body["since"] == pytest.approx(created_at, abs=0.01)  # the session so far
        assert [b["phase"] for b in body["phases"]] == ["planned", "baseline"]
        assert body["phases"][0]["start"] == pytest.approx(created_at, abs=0.01)
        assert body["phases"][0]["end"] == body["phases"][1]["start"]
        assert body["phases"][-1]["end"] is None and body["phases"][-1]["session_id"] == sid

        clocks = await _ok(await http.get("/api/station/sessions"))
        assert [(c["bay"], c["phase"], c["patient_initials"]) for c in clocks] == [("bay2", "baseline", "J.Q.D.")]
        assert clocks[0]["recovery_required_s"] >= 1800 and not clocks[0]["infusion_running"]


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/api/bays/nope/trends", [], 404),
        ("/api/bays/bay1/trends", [("param", "bogus")], 422),
        ("/api/bays/bay1/trends", [("param", "pleth")], 422),  # a waveform is not a trend
        ("/api/bays/bay1/trends", [("since", "yesterday")], 422),
        ("/api/bays/bay1/trends", [("since", "1000"), ("until", "900")], 422),
        ("/api/bays/bay1/trends", [("since", "1000"), ("until", str(1000 + 25 * 3600))], 422),  # > 24 h
        ("/api/bays/bay1/trends", [("since", str(time.time() + 3600))], 422),  # starts in the future
        ("/api/bays/bay1/trends", [("since", "-5")], 422),
        ("/api/bays/bay1/trends", [("colour", "red")], 422),
    ],
)
async def test_trends_refuse_bad_queries(
    server: RunningServer, path: str, params: list[tuple[str, Any]], status: int
) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        r = await http.get(path, params=params)
    assert r.status_code == status, r.text
