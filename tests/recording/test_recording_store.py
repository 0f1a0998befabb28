"""Full-disclosure recording: the waveform codec, the chunker, waveform/observation storage, schema
migration and retention — against the real stores (SQLite and PostgreSQL: tests/store_backends.py)."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.alarms.model import AlarmEvent, EventKind
from app.recording import codec
from app.recording.chunker import WaveChunker
from app.recording.model import WaveSegment
from app.store import Record
from app.store.sqlite import SQLiteStore
from monitors.models import DeviceState, DeviceStatus, Quality, Reading, WaveformChunk
from tests.store_backends import AnyStore

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@given(st.lists(st.integers(-32768, 32767), min_size=1, max_size=600))
@settings(max_examples=300, deadline=None)
def test_codec_round_trips_any_int16_sequence(xs: list[int]) -> None:
    c, data = codec.encode(xs)
    assert codec.decode(c, data, len(xs)) == xs


def test_codec_compresses_a_smooth_signal_and_refuses_a_wrong_length() -> None:
    xs = [round(800 * ((i % 250) / 250) ** 3) for i in range(250)]
    c, data = codec.encode(xs)
    assert len(data) < 2 * len(xs) / 3
    with pytest.raises(ValueError, match="expected 251"):
        codec.decode(c, data, 251)
    with pytest.raises(ValueError, match="unknown waveform codec"):
        codec.decode(99, data, 250)


def chunk(t: datetime, samples: list[int], fs: float = 250.0, channel: str = "ecg_ii") -> WaveformChunk:
    unit = {"ecg_ii": "mV", "pleth": "1", "co2": "mm[Hg]"}[channel]
    return WaveformChunk(device_id="d1", channel=channel, t0=t, fs=fs, samples=tuple(samples), unit=unit, gain=0.005)


def test_chunker_joins_contiguous_chunks_into_one_second_segments() -> None:
    ch = WaveChunker(1.0)
    out: list[WaveSegment] = []
    for k in range(12):  # 12 x 0.2 s = 2.4 s
        out += ch.add("bay1", chunk(T0 + timedelta(seconds=0.2 * k), list(range(50 * k, 50 * k + 50))))
    assert [len(s.samples) for s in out] == [250, 250]
    assert out[0].t0 == T0 and out[1].t0 == T0 + timedelta(seconds=1)
    assert out[0].samples + out[1].samples == tuple(range(500))
    rest = ch.flush()
    assert len(rest) == 1 and rest[0].samples == tuple(range(500, 600)) and rest[0].t0 == T0 + timedelta(seconds=2)
    assert ch.buffered_samples == 0


def test_chunker_closes_a_segment_at_a_gap_and_cuts_long_chunks() -> None:
    ch = WaveChunker(1.0)
    assert ch.add("bay1", chunk(T0, [1] * 100)) == []
    out = ch.add("bay1", chunk(T0 + timedelta(seconds=2), [2] * 600))  # a 1.6 s gap, then 2.4 s
    assert [(s.t0, len(s.samples)) for s in out] == [
        (T0, 100),
        (T0 + timedelta(seconds=2), 250),
        (T0 + timedelta(seconds=3), 250),
    ]
    assert ch.buffered_samples == 100


def test_chunker_flushes_idle_streams_only() -> None:
    now = [0.0]
    ch = WaveChunker(1.0, clock=lambda: now[0])
    ch.add("bay1", chunk(T0, [1] * 100))
    now[0] = 1.0
    ch.add("bay1", chunk(T0, [1] * 10, fs=125.0, channel="pleth"))
    now[0] = 2.5
    idle = ch.flush_idle(2.0)
    assert [s.channel for s in idle] == ["ecg_ii"]
    assert ch.buffered_samples == 10


def _segments() -> list[WaveSegment]:
    rng = random.Random(7)
    segs = []
    v = 0
    for k in range(30):
        samples = []
        for _ in range(250):
            v = max(-32768, min(32767, v + rng.randint(-40, 40)))
            samples.append(v)
        segs.append(WaveSegment("bay1", "d1", "ecg_ii", T0 + timedelta(seconds=k), 250.0, "mV", 0.005, tuple(samples)))
    return segs


async def test_waveforms_are_stored_and_read_back_exactly(any_store: AnyStore) -> None:
    store = any_store
    segs = _segments()
    await store.append([Record(s.bay, s) for s in segs])
    await store.append([Record("bay1", segs[3])])  # a resend of the same segment is ignored, not an error
    got = await store.waveforms(bay="bay1")
    assert got == segs
    window = await store.waveforms(bay="bay1", since=T0 + timedelta(seconds=10.5), until=T0 + timedelta(seconds=12))
    assert [s.t0 for s in window] == [T0 + timedelta(seconds=10), T0 + timedelta(seconds=11)]
    assert await store.waveforms(bay="bay2") == []
    assert await store.waveforms(channel="pleth") == []
    assert await store.count("waves") == 30


async def test_sqlite_stores_waveforms_compressed(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "w.sqlite3")
    await store.open()
    try:
        await store.append([Record(s.bay, s) for s in _segments()])
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "w.sqlite3") as conn:
        stored = conn.execute("SELECT sum(length(data)) FROM waves").fetchone()[0]
    assert stored < 30 * 250 * 2 * 0.75  # smaller than raw int16


def reading(param: str, value: float | None, t: datetime, device: str = "d1", q: Quality = Quality.VALID) -> Reading:
    unit = {"hr": "/min", "spo2": "%", "rr": "/min"}[param]
    quality = Quality.INVALID if value is None else q
    return Reading(device_id=device, param=param, value=value, unit=unit, quality=quality, t_device=t, t_received=t)


async def test_numerics_round_trip_as_observation_sets(any_store: AnyStore) -> None:
    store = any_store
    t1 = T0 + timedelta(seconds=1)
    batch = [
        reading("hr", 72, T0),
        reading("spo2", 97.5, T0, q=Quality.QUESTIONABLE),
        reading("rr", None, T0),
        reading("hr", 73, T0),  # the same parameter twice at one time: kept, in order
        reading("hr", 74, t1),
        reading("hr", 60, T0, device="d2"),
    ]
    await store.append([Record("bay1", r) for r in batch[:5]] + [Record("bay2", batch[5])])
    got = [(s.bay, s.reading) for s in await store.readings()]
    assert sorted((b or "", r.device_id, r.t_device, r.param, r.value, r.quality) for b, r in got) == sorted(
        (b, r.device_id, r.t_device, r.param, r.value, r.quality)
        for b, r in [("bay1", x) for x in batch[:5]] + [("bay2", batch[5])]
    )
    # within one observation set, values come back in the order they arrived
    assert [r.reading.param for r in await store.readings(bay="bay1", until=t1)] == ["hr", "spo2", "rr", "hr"]
    assert [r.reading.value for r in await store.readings(bay="bay1", param="hr")] == [72, 73, 74]
    assert [r.reading.value for r in await store.readings(bay="bay1", param="hr", limit=2)] == [72, 73]
    assert [r.reading.unit for r in await store.readings(param="spo2")] == ["%"]
    assert [r.reading.value for r in await store.readings(bay="bay1", since=t1)] == [74]
    assert await store.count("readings") == 6


async def test_sqlite_keeps_a_readings_view_for_ad_hoc_sql(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "n.sqlite3")
    await store.open()
    try:
        await store.append(
            [
                Record("bay1", r)
                for r in (
                    reading("hr", 72, T0),
                    reading("spo2", 97.5, T0, q=Quality.QUESTIONABLE),
                    reading("rr", None, T0),
                    reading("hr", 73, T0),
                )
            ]
        )
    finally:
        await store.close()
    with sqlite3.connect(tmp_path / "n.sqlite3") as conn:  # the view keeps one row per value for ad-hoc SQL
        rows = conn.execute(
            "SELECT param, value, quality FROM readings WHERE bay = 'bay1' AND t_device = ?", (T0.timestamp(),)
        ).fetchall()
    assert sorted(rows, key=str) == sorted(
        [("hr", 72, "valid"), ("spo2", 97.5, "questionable"), ("rr", None, "invalid"), ("hr", 73, "valid")], key=str
    )


def test_a_schema_1_store_is_migrated_without_losing_readings(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    with sqlite3.connect(db) as conn:
        conn.executescript(
            """
            CREATE TABLE readings (id INTEGER PRIMARY KEY, bay TEXT, device_id TEXT NOT NULL,
                param TEXT NOT NULL, value REAL, unit TEXT NOT NULL, quality TEXT NOT NULL,
                t_device REAL NOT NULL, t_received REAL NOT NULL);
            CREATE INDEX readings_bay_t ON readings (bay, t_device);
            PRAGMA user_version = 1;
            """
        )
        conn.executemany(
            "INSERT INTO readings (bay, device_id, param, value, unit, quality, t_device, t_received)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                ("bay1", "d1", "hr", 70.0, "/min", "valid", 100.0, 100.5),
                ("bay1", "d1", "spo2", None, "%", "invalid", 100.0, 100.5),
                (None, "dx", "hr", 80.0, "/min", "questionable", 101.0, 101.5),
            ],
        )

    async def check() -> None:
        store = SQLiteStore(db)
        await store.open()
        try:
            got = {(s.bay, s.reading.param, s.reading.value, s.reading.quality.value) for s in await store.readings()}
            assert got == {
                ("bay1", "hr", 70.0, "valid"),
                ("bay1", "spo2", None, "invalid"),
                (None, "hr", 80.0, "questionable"),
            }
        finally:
            await store.close()

    asyncio.run(check())
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (2,)


async def test_purge_deletes_only_what_is_older_than_the_cutoff(any_store: AnyStore) -> None:
    store = any_store
    old, new = T0 - timedelta(days=40), T0
    seg = WaveSegment("bay1", "d1", "ecg_ii", old, 250.0, "mV", 0.005, (1, 2, 3))
    await store.append(
        [
            Record("bay1", reading("hr", 70, old)),
            Record("bay1", reading("hr", 71, new)),
            Record("bay1", seg),
            Record("bay1", DeviceStatus(device_id="d1", state=DeviceState.ONLINE, since=old)),
            Record("bay1", AlarmEvent(kind=EventKind.AUDIO_PAUSED, t=old)),
        ]
    )
    deleted = await store.purge(T0 - timedelta(days=30))
    assert deleted["obs"] == 1 and deleted["waves"] == 1 and deleted["device_status"] == 1
    assert deleted["alarm_events"] == 1 and deleted["sessions"] == 0
    assert [r.reading.value for r in await store.readings()] == [71]
    assert await store.waveforms() == []
    assert await store.alarm_events() == []


@pytest.mark.timeout(300)
async def test_a_whole_simulated_session_is_recorded_loaded_and_purged(any_store: AnyStore) -> None:
    """The recording loader and retention of ended sessions, on both backends."""
    await _record_load_and_purge(any_store)


async def _record_load_and_purge(store: AnyStore) -> None:
    from app.recording.load import list_recordings, load_recording
    from app.recording.synth import record_simulated_session

    ended_before = datetime(2026, 10, 1, 12, 0, tzinfo=UTC)
    sid = await record_simulated_session(
        store, scenario="oversedation", bay="bay7", speed=600.0, waveforms=False, ended_before=ended_before
    )
    [summary] = await list_recordings(store)
    assert summary.session_id == sid and summary.final and summary.bay == "bay7"
    assert summary.end is not None and summary.start < summary.end <= ended_before
    rec = await load_recording(store, sid)
    assert rec.readings and all(summary.start <= r.t_device < summary.end for r in rec.readings)
    assert any(e.kind is EventKind.RAISED for e in rec.alarm_events)  # over-sedation raises alarms
    assert [e.t for e in rec.alarm_events] == sorted(e.t for e in rec.alarm_events)
    assert rec.session.final
    # retention: a cut-off before the session's end keeps it; one after it removes the session
    kept = await store.purge(summary.start - timedelta(days=1))
    assert kept["sessions"] == 0 and await list_recordings(store) != []
    deleted = await store.purge(ended_before + timedelta(hours=1))  # the monitor ran on a little
    assert deleted["sessions"] == 1 and deleted["obs"] > 0 and deleted["alarm_events"] > 0
    assert await list_recordings(store) == []
    assert await store.readings(bay="bay7") == []


async def test_sqlite_an_unencodable_record_fails_alone_and_the_writer_lives_on(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "bad.sqlite3")
    await store.open()
    try:
        bad = WaveSegment("bay1", "d1", "ecg_ii", T0, 250.0, "mV", 0.005, (1, 40_000))  # not int16
        good = store.append([Record("bay1", reading("hr", 70, T0))])
        refused = store.append([Record("bay1", bad)])
        await good
        with pytest.raises((ValueError, OverflowError)):
            await refused
        await store.append([Record("bay1", reading("hr", 71, T0 + timedelta(seconds=1)))])  # still writing
        assert [r.reading.value for r in await store.readings()] == [70, 71]
    finally:
        await store.close()


@pytest.mark.timeout(120)
async def test_a_fast_recording_keeps_the_scenario_timeline(tmp_path: Path) -> None:
    """At 1000x the store cannot commit waveforms as fast as the simulated device makes them; the device waits
    for the store (back-pressure) instead of running ahead, so charting and phase changes land at their scenario
    minutes (before, a 94-minute session was recorded as fifteen hours)."""
    from app.recording.load import load_recording
    from app.recording.synth import record_simulated_session

    store = SQLiteStore(tmp_path / "fast.sqlite3", synchronous="NORMAL")
    await store.open()
    try:
        sid = await record_simulated_session(store, scenario="uneventful", speed=1000.0)
        rec = await load_recording(store, sid)
    finally:
        await store.close()
    minutes = (rec.end - rec.start).total_seconds() / 60
    assert 92 <= minutes <= 96, f"session recorded as {minutes:.1f} min; the scenario discharges at ~94 min"
