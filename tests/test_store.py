"""SQLite store: group commit, read-back, durability across reopen."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.store import Record
from app.store.sqlite import SQLiteStore
from monitors.models import DeviceAlarm, DeviceState, DeviceStatus, Priority, Quality, Reading

T0 = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


def hr(i: int, device: str = "d1") -> Reading:
    t = T0 + timedelta(seconds=i)
    return Reading(device_id=device, param="hr", value=60 + i % 30, unit="/min", t_device=t, t_received=t)


async def test_append_resolves_after_commit_and_reads_back(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3", gather_s=0.0)
    await store.open()
    try:
        futs = [store.append([Record("bay1", hr(i))]) for i in range(100)]
        await asyncio.gather(*futs)
        invalid = Reading(
            device_id="d1", param="spo2", value=None, unit="%", quality=Quality.INVALID, t_device=T0, t_received=T0
        )
        await store.append(
            [
                Record("bay1", invalid),
                Record("bay1", DeviceStatus(device_id="d1", state=DeviceState.STALE, since=T0, detail="quiet")),
                Record(None, DeviceAlarm(device_id="d9", code="X", priority=Priority.LOW, text="x", t=T0)),
            ]
        )
        got = await store.readings(bay="bay1", param="hr")
        assert [s.reading for s in got] == [hr(i) for i in range(100)]
        spo2 = await store.readings(param="spo2")
        assert spo2[0].reading.value is None and spo2[0].reading.quality is Quality.INVALID
        window = await store.readings(since=T0 + timedelta(seconds=10), until=T0 + timedelta(seconds=20))
        assert len(window) == 10
        statuses = await store.statuses(device_id="d1")
        assert statuses[0].status.state is DeviceState.STALE and statuses[0].bay == "bay1"
        alarms = await store.device_alarms()
        assert alarms[0].code == "X"
        assert store.committed_records == 103
    finally:
        await store.close()


async def test_group_commit_batches_many_appends_into_few_transactions(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3", gather_s=0.05)
    await store.open()
    calls = 0
    original = store._write_sync

    def counting(records: list[Record]) -> None:
        nonlocal calls
        calls += 1
        original(records)

    store._write_sync = counting  # type: ignore[method-assign]
    try:
        await asyncio.gather(*(store.append([Record("bay1", hr(i))]) for i in range(500)))
        assert calls <= 2
    finally:
        await store.close()


async def test_close_commits_pending_and_data_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = SQLiteStore(path, gather_s=0.05)
    await store.open()
    fut = store.append([Record("bay1", hr(i)) for i in range(10)])
    await store.close()  # must not lose the pending append
    assert fut.done() and fut.exception() is None
    wal = os.path.getsize(str(path) + "-wal") if os.path.exists(str(path) + "-wal") else 0
    assert wal == 0
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (10,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    again = SQLiteStore(path)
    await again.open()
    try:
        assert len(await again.readings()) == 10
    finally:
        await again.close()


async def test_append_to_closed_store_fails_loudly(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    fut = store.append([Record("bay1", hr(0))])
    assert isinstance(fut.exception(), RuntimeError)


async def test_a_refused_append_does_not_take_other_appends_down_with_it(tmp_path: Path) -> None:
    from datetime import date

    from app.sessions.model import Patient

    store = SQLiteStore(tmp_path / "s.sqlite3", gather_s=0.05)
    await store.open()
    try:
        p = Patient(
            identifier="MRN1", name="A B", birth_date=date(1970, 1, 1), id="p1", created_at=T0, created_by="nurse"
        )
        await store.append([Record(None, p)])
        # In one group commit: readings, a duplicate patient (UNIQUE identifier), more readings.
        before = store.append([Record("bay1", hr(1))])
        dup = store.append([Record(None, p.model_copy(update={"id": "p2"}))])
        after = store.append([Record("bay1", hr(2))])
        await asyncio.gather(before, after)
        with pytest.raises(sqlite3.IntegrityError):
            await dup
        assert [r.reading.value for r in await store.readings(bay="bay1")] == [61, 62]
    finally:
        await store.close()
