"""The Store on every backend (SQLite, PostgreSQL: tests/store_backends.py): group commit, read-back,
durability across reopen, isolation of a refused append; plus what is particular to each backend."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from app.store import Record
from app.store.postgres import SCHEMA_VERSION, PostgresStore
from app.store.sqlite import SQLiteStore
from monitors.models import DeviceAlarm, DeviceState, DeviceStatus, Priority, Quality, Reading
from tests.conftest import running_server, small_settings
from tests.store_backends import AnyStore, Backend, PgSchema

T0 = datetime(2026, 11, 25, 14, 0, tzinfo=UTC)


def hr(i: int, device: str = "d1") -> Reading:
    t = T0 + timedelta(seconds=i)
    return Reading(device_id=device, param="hr", value=60 + i % 30, unit="/min", t_device=t, t_received=t)


async def test_append_resolves_after_commit_and_reads_back(store_backend: Backend) -> None:
    store = store_backend.make(gather_s=0.0)
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


async def test_group_commit_batches_many_appends_into_few_transactions(store_backend: Backend) -> None:
    store = store_backend.make(gather_s=0.05)
    await store.open()
    calls = 0
    if isinstance(store, SQLiteStore):
        original = store._write_sync

        def counting(records: list[Record]) -> None:
            nonlocal calls
            calls += 1
            original(records)

        store._write_sync = counting  # type: ignore[method-assign]
    else:
        original_batch = store._write_batch

        async def counting_batch(records: list[Record]) -> None:
            nonlocal calls
            calls += 1
            await original_batch(records)

        store._write_batch = counting_batch  # type: ignore[method-assign]
    try:
        await asyncio.gather(*(store.append([Record("bay1", hr(i))]) for i in range(500)))
        assert calls <= 2
    finally:
        await store.close()


async def test_close_commits_pending_and_data_survives_reopen(store_backend: Backend) -> None:
    store = store_backend.make(gather_s=0.05)
    await store.open()
    fut = store.append([Record("bay1", hr(i)) for i in range(10)])
    await store.close()  # must not lose the pending append
    assert fut.done() and fut.exception() is None
    again = store_backend.make()
    await again.open()
    try:
        assert [r.reading for r in await again.readings()] == [hr(i) for i in range(10)]
    finally:
        await again.close()


async def test_sqlite_close_checkpoints_the_wal(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = SQLiteStore(path, gather_s=0.05)
    await store.open()
    store.append([Record("bay1", hr(i)) for i in range(10)])
    await store.close()
    wal = os.path.getsize(str(path) + "-wal") if os.path.exists(str(path) + "-wal") else 0
    assert wal == 0
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (10,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


async def test_append_to_closed_store_fails_loudly(store_backend: Backend) -> None:
    store = store_backend.make()
    fut = store.append([Record("bay1", hr(0))])
    assert isinstance(fut.exception(), RuntimeError)


async def test_a_refused_append_does_not_take_other_appends_down_with_it(store_backend: Backend) -> None:
    from datetime import date

    from app.sessions.model import Patient

    store = store_backend.make(gather_s=0.05)
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
        with pytest.raises(store_backend.integrity_error):
            await dup
        assert [r.reading.value for r in await store.readings(bay="bay1")] == [61, 62]
    finally:
        await store.close()


# ---- PostgreSQL particulars ------------------------------------------------------------------------------


async def test_postgres_migrations_are_versioned_idempotent_and_refuse_a_newer_schema(
    postgres_schema: PgSchema,
) -> None:
    dsn, schema = postgres_schema.dsn, postgres_schema.name
    # Two instances starting at once: one migrates, the other waits on the lock and finds nothing to do.
    a, b = PostgresStore(dsn, schema=schema), PostgresStore(dsn, schema=schema)
    await asyncio.gather(a.open(), b.open())
    try:
        # both write a device neither has seen, at once: one row in sources, readings from both kept
        await asyncio.gather(a.append([Record("bay1", hr(0))]), b.append([Record("bay1", hr(1))]))
        assert [r.reading for r in await a.readings()] == [hr(0), hr(1)]
    finally:
        await a.close()
        await b.close()
    conn = await asyncpg.connect(postgres_schema.dsn_with_search_path)
    try:
        assert [r["version"] for r in await conn.fetch("SELECT version FROM schema_version ORDER BY version")] == list(
            range(1, SCHEMA_VERSION + 1)
        )
        assert await conn.fetchval("SELECT count(*) FROM sources") == 1
        # the readings view gives one row per value for ad-hoc SQL
        rows = await conn.fetch("SELECT param, value, quality FROM readings ORDER BY t_device")
        assert [tuple(r) for r in rows] == [("hr", 60.0, "valid"), ("hr", 61.0, "valid")]
        await conn.execute("INSERT INTO schema_version (version, description) VALUES (99, 'from the future')")
    finally:
        await conn.close()
    newer = PostgresStore(dsn, schema=schema)
    with pytest.raises(RuntimeError, match="newer than this Vigil"):
        await newer.open()


async def test_postgres_refuses_unstorable_data_for_that_append_only(postgres_schema: PgSchema) -> None:
    from app.recording.model import WaveSegment

    store = PostgresStore(postgres_schema.dsn, schema=postgres_schema.name, gather_s=0.05)
    await store.open()
    try:
        bad = DeviceAlarm(device_id="d1", code="X", priority=Priority.LOW, text="nul\x00here", t=T0)
        loud = WaveSegment("bay1", "d1", "ecg_ii", T0, 250.0, "mV", 0.005, (1, 40_000))  # not int16
        good = store.append([Record("bay1", hr(1))])
        refused = store.append([Record("bay1", bad)])  # PostgreSQL text cannot hold NUL
        unencodable = store.append([Record("bay1", loud)])
        await good
        with pytest.raises(asyncpg.DataError):
            await refused
        with pytest.raises(OverflowError):
            await unencodable
        await store.append([Record("bay1", hr(2))])  # the writer is still alive
        assert [r.reading.value for r in await store.readings()] == [61, 62]
        assert await store.device_alarms() == [] and await store.waveforms() == []
    finally:
        await store.close()


async def test_postgres_writer_reconnects_after_losing_its_connection(postgres_schema: PgSchema) -> None:
    store = PostgresStore(postgres_schema.dsn, schema=postgres_schema.name)
    await store.open()
    try:
        await store.append([Record("bay1", hr(0))])
        admin = await asyncpg.connect(postgres_schema.dsn)
        try:  # every connection of this store: the writer and the reader pool's
            killed = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                f"vigil:{postgres_schema.name}",
            )
        finally:
            await admin.close()
        assert killed >= 2
        assert [r.reading.value for r in await store.readings()] == [60]  # a read retried on a new connection
        await store.append([Record("bay1", hr(1))])  # retried on a new connection
        assert [r.reading.value for r in await store.readings()] == [60, 61]
        assert store.committed_records == 2
    finally:
        await store.close()


async def test_a_server_configured_for_postgres_records_a_simulated_monitor_there(
    tmp_path: Path, postgres_schema: PgSchema
) -> None:
    settings = small_settings(
        tmp_path, bays=1, store="postgres", postgres_dsn=postgres_schema.dsn, postgres_schema=postgres_schema.name
    )
    async with running_server(settings) as srv:
        store = srv.services.store
        assert isinstance(store, PostgresStore)
        for _ in range(200):
            if await store.readings(bay="bay1", param="hr") and await store.waveforms(bay="bay1", channel="ecg_ii"):
                break
            await asyncio.sleep(0.05)
        hr_rows = await store.readings(bay="bay1", param="hr")
        assert hr_rows and hr_rows[0].reading.device_id == "dev1"
        segs = await store.waveforms(bay="bay1", channel="ecg_ii")
        assert segs and segs[0].fs > 0 and len(segs[0].samples) > 0
        statuses = await store.statuses(bay="bay1")
        assert statuses and statuses[0].status.device_id == "dev1"
    assert not settings.db_path.exists()  # nothing went to SQLite
    conn = await asyncpg.connect(postgres_schema.dsn_with_search_path)
    try:  # the rows are really in PostgreSQL, in this test's schema
        assert await conn.fetchval("SELECT count(*) FROM obs o JOIN sources s ON s.id = o.src WHERE s.bay = 'bay1'") > 0
        assert await conn.fetchval("SELECT count(*) FROM waves") > 0
        assert await conn.fetchval("SELECT count(*) FROM readings WHERE param = 'hr'") >= len(hr_rows)
    finally:
        await conn.close()


def _mixed_records(seed: int) -> list[list[Record]]:
    """A seeded mix of every record kind in several appends, with ties in time across devices."""
    import random
    from datetime import date

    from app.alarms.model import AlarmEvent, EventKind, Phase
    from app.recording.model import WaveSegment
    from app.sessions.model import Patient, PhaseChanged, SessionCreated
    from monitors.models import RawMessage

    rng = random.Random(seed)
    units = {"hr": "/min", "spo2": "%", "rr": "/min"}
    appends: list[list[Record]] = []
    for k in range(12):
        recs: list[Record] = []
        t = T0 + timedelta(seconds=k, milliseconds=rng.randrange(0, 1000, 5))
        for dev, bay in (("d1", "bay1"), ("d2", "bay2"), ("dx", None)):
            for param in rng.sample(sorted(units), rng.randint(1, 3)):
                value = None if rng.random() < 0.1 else round(rng.uniform(5, 99), 1)
                quality = Quality.INVALID if value is None else rng.choice([Quality.VALID, Quality.QUESTIONABLE])
                recs.append(
                    Record(
                        bay,
                        Reading(
                            device_id=dev,
                            param=param,
                            value=value,
                            unit=units[param],
                            quality=quality,
                            t_device=t,
                            t_received=t + timedelta(milliseconds=40),
                        ),
                    )
                )
        samples = tuple(rng.randint(-2000, 2000) for _ in range(125))
        recs.append(Record("bay1", WaveSegment("bay1", "d1", "pleth", t, 125.0, "1", 0.01, samples)))
        recs.append(Record("bay2", DeviceStatus(device_id="d2", state=rng.choice(list(DeviceState)), since=t)))
        recs.append(
            Record(
                None, DeviceAlarm(device_id="dx", code=f"C{k}", priority=Priority.LOW, text="x", t=t, active=k % 2 == 0)
            )
        )
        recs.append(
            Record(
                "bay1",
                AlarmEvent(
                    kind=rng.choice(list(EventKind)),
                    t=t,
                    rule_id=f"r{k % 3}",
                    values={"spo2": 88.5, "rr": None},
                    user="nurse" if k % 4 else None,
                ),
            )
        )
        recs.append(
            Record(
                None,
                RawMessage(
                    protocol="hl7v2",
                    source="10.0.0.9:4000",
                    received=t,
                    payload=bytes(rng.randrange(256) for _ in range(40)),
                    control_id=f"MSG{k % 5}",
                    outcome=rng.choice(["AA", "AE"]),
                ),
            )
        )
        appends.append(recs)
    p = Patient(identifier="MRN7", name="C D", birth_date=date(1980, 2, 3), id="p7", created_at=T0, created_by="n")
    created = SessionCreated(
        session_id="s1", seq=0, t=T0, user="n", patient_id="p7", bay="bay1", weight_kg=70.0, plan=None
    )
    phase = PhaseChanged(
        session_id="s1", seq=1, t=T0 + timedelta(seconds=5), user="n", from_phase=Phase.PLANNED, to_phase=Phase.BASELINE
    )
    appends.append([Record(None, p), Record("bay1", created), Record("bay1", phase)])
    return appends


async def test_postgres_reads_back_exactly_what_sqlite_reads_back(tmp_path: Path, postgres_schema: PgSchema) -> None:
    """The same appends into both backends: every read answers the same values, types and order."""
    sqlite_store = SQLiteStore(tmp_path / "parity.sqlite3")
    pg_store = PostgresStore(postgres_schema.dsn, schema=postgres_schema.name)
    stores: list[AnyStore] = [sqlite_store, pg_store]
    for s in stores:
        await s.open()
    try:
        for recs in _mixed_records(seed=3):
            await asyncio.gather(*(s.append(recs) for s in stores))
        mid = T0 + timedelta(seconds=4.5)
        late = T0 + timedelta(seconds=9)

        async def reads(s: AnyStore) -> list[object]:
            return [
                await s.readings(),
                await s.readings(bay="bay1", param="spo2"),
                await s.readings(device_id="dx", since=mid, until=late),
                await s.readings(limit=7),
                await s.readings(param="rr", limit=3),
                await s.waveforms(),
                await s.waveforms(bay="bay1", channel="pleth", since=mid, until=late),
                await s.statuses(),
                await s.statuses(bay="bay2", since=mid, limit=2),
                await s.device_alarms(),
                await s.device_alarms(device_id="dx", until=mid),
                await s.raw_messages(),
                await s.raw_messages(control_id="MSG2", outcome="AA"),
                await s.alarm_events(),
                await s.alarm_events(bay="bay1", since=mid, oldest_first=True, limit=3),
                await s.patients(),
                await s.session_events(),
                await s.session_events(session_id="nope"),
                [await s.count(t) for t in ("readings", "waves", "device_status", "raw_messages", "alarm_events")],
            ]

        got_sqlite, got_pg = await reads(sqlite_store), await reads(pg_store)
        for i, (a, b) in enumerate(zip(got_sqlite, got_pg, strict=True)):
            assert a == b, f"read #{i} differs"
            assert [type(x) for x in a] == [type(x) for x in b]  # type: ignore[attr-defined]
        assert len(got_pg[0]) > 50 and got_pg[1] and got_pg[2]  # type: ignore[arg-type]
        assert all(r.reading.t_device.tzinfo is not None for r in got_pg[0])  # type: ignore[attr-defined]
    finally:
        for s in stores:
            await s.close()


def test_settings_choose_the_store_and_refuse_postgres_without_a_dsn(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from app.config import Settings
    from app.main import build_store

    assert isinstance(build_store(Settings(db_path=tmp_path / "x.sqlite3")), SQLiteStore)  # the default
    pg = build_store(Settings(store="postgres", postgres_dsn="postgresql://u@h/db", postgres_schema="vigil"))
    assert isinstance(pg, PostgresStore) and pg.schema == "vigil" and pg.dsn == "postgresql://u@h/db"
    with pytest.raises(ValidationError, match="needs postgres_dsn"):
        Settings(store="postgres")
    with pytest.raises(ValidationError):
        Settings(store="postgres", postgres_dsn="postgresql://u@h/db", postgres_schema="x; DROP TABLE waves")


async def test_postgres_waves_work_unchanged_on_the_documented_monthly_partitions(postgres_schema: PgSchema) -> None:
    from app.recording.model import WaveSegment
    from app.store.postgres import WAVES_PARTITIONED

    dsn, schema = postgres_schema.dsn, postgres_schema.name
    store = PostgresStore(dsn, schema=schema)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(postgres_schema.dsn_with_search_path)
    try:  # the adoption path the module describes: replace the (empty) table after the first open
        await conn.execute("DROP TABLE waves")
        await conn.execute(WAVES_PARTITIONED)
    finally:
        await conn.close()
    store = PostgresStore(dsn, schema=schema)
    await store.open()
    october = T0 - timedelta(days=30)  # no partition of its own: lands in the DEFAULT one
    segs = [
        WaveSegment("bay1", "d1", "ecg_ii", t, 250.0, "mV", 0.005, (1, 2, 3, 4))
        for t in (october, T0, T0 + timedelta(seconds=1))
    ]
    try:
        await store.append([Record("bay1", s) for s in segs])
        await store.append([Record("bay1", segs[1])])  # a resend is still ignored (the key holds t0)
        assert await store.waveforms(bay="bay1") == segs
        assert (await store.purge(T0 - timedelta(days=1)))["waves"] == 1
        assert await store.waveforms(bay="bay1") == segs[1:]
    finally:
        await store.close()
    conn = await asyncpg.connect(postgres_schema.dsn_with_search_path)
    try:
        rows = await conn.fetch("SELECT tableoid::regclass::text AS part, count(*) FROM waves GROUP BY 1")
        assert {r["part"]: r["count"] for r in rows} == {"waves_2026_11": 2}
    finally:
        await conn.close()
