"""Store backends compared: append throughput and read latency, SQLite vs PostgreSQL (issue 12).

1. **Appends.** ``--beds`` producers each append one bed-second of recording at a time (one observation set
   of 6 numerics and 3 one-second waveform segments: ECG 250 Hz, pleth 125 Hz, CO2 62.5 Hz) and wait for
   its future (durable: the HL7 adapter ACKs only then) before the next one, as fast as the store allows,
   for ``--seconds``. Reported: bed-seconds and records committed per second, commit latency percentiles
   and transactions (group commit: appends made while a commit runs share the next one). SQLite runs with
   synchronous=FULL as the server does; PostgreSQL with its default synchronous_commit=on (WAL flushed
   before COMMIT returns), so both figures are for durable commits.
2. **Reads.** ``--preload-min`` minutes of 4 beds are loaded, then each query is timed ``--repeat`` times:
   a 5-minute numeric trend of one bed, the replay seek (10 s of one bed's three channels), a minute of ECG,
   the whole bed's numerics, and the newest 100 alarm events.

Run: ``.venv/bin/python -m benchmarks.bench_store [--seconds 10] [--beds 1 10 50]`` (PostgreSQL at
VIGIL_BENCH_POSTGRES_DSN, default postgresql://postgres@127.0.0.1:5432/test; a scratch schema is created and
dropped); writes benchmarks/results/store.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

from app.alarms.model import AlarmEvent, EventKind
from app.recording.model import WaveSegment
from app.store import Record
from app.store.postgres import PostgresStore
from app.store.sqlite import SQLiteStore
from benchmarks.common import save
from monitors.models import Priority, Reading

DSN = os.environ.get("VIGIL_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
NUMERICS = {"hr": ("/min", 72.0), "spo2": ("%", 97.0), "rr": ("/min", 14.0), "etco2": ("mm[Hg]", 38.0)}
NUMERICS |= {"nibp_sys": ("mm[Hg]", 120.0), "nibp_dia": ("mm[Hg]", 75.0)}
CHANNELS = (("ecg_ii", 250.0, "mV", 0.005), ("pleth", 125.0, "1", 0.01), ("co2", 62.5, "mm[Hg]", 0.1))

AnyStore = SQLiteStore | PostgresStore


def _walk(rng: random.Random, n: int) -> tuple[int, ...]:
    v, out = 0, []
    for _ in range(n):
        v = max(-32768, min(32767, v + rng.randint(-30, 30)))
        out.append(v)
    return tuple(out)


class Bed:
    """One bed's recording, one second at a time (waveform samples precomputed so that both backends
    pay the same encoding cost and the generator costs nothing)."""

    def __init__(self, i: int) -> None:
        rng = random.Random(i)
        self.bay, self.dev = f"bay{i}", f"dev{i}"
        self.waves = {ch: [_walk(rng, int(fs)) for _ in range(8)] for ch, fs, _, _ in CHANNELS}

    def second(self, k: int) -> list[Record]:
        t = T0 + timedelta(seconds=k)
        recs = [
            Record(
                self.bay,
                Reading(device_id=self.dev, param=p, value=v - k % 7, unit=u, t_device=t, t_received=t),
            )
            for p, (u, v) in NUMERICS.items()
        ]
        recs += [
            Record(self.bay, WaveSegment(self.bay, self.dev, ch, t, fs, unit, gain, self.waves[ch][k % 8]))
            for ch, fs, unit, gain in CHANNELS
        ]
        if k % 60 == 0:
            recs.append(
                Record(self.bay, AlarmEvent(kind=EventKind.RAISED, t=t, rule_id="bench", priority=Priority.LOW))
            )
        return recs


def _pct(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    if not xs:
        return {}

    def at(q: float) -> float:
        return round(xs[min(len(xs) - 1, int(q * len(xs)))] * 1000, 2)

    return {"n": len(xs), "p50_ms": at(0.5), "p95_ms": at(0.95), "p99_ms": at(0.99), "max_ms": round(xs[-1] * 1000, 2)}


@asynccontextmanager
async def opened(kind: str, workdir: Path) -> AsyncIterator[AnyStore]:
    """A fresh, opened store of ``kind`` (SQLite file or PostgreSQL scratch schema), removed afterwards."""
    if kind == "sqlite":
        path = workdir / f"bench-{secrets.token_hex(4)}.sqlite3"
        store: AnyStore = SQLiteStore(path)  # synchronous=FULL, as the server runs
        await store.open()
        try:
            yield store
        finally:
            await store.close()  # the file goes with the temporary directory
        return
    schema = f"bench_{secrets.token_hex(4)}"
    store = PostgresStore(DSN, schema=schema)
    await store.open()
    try:
        yield store
    finally:
        await store.close()
        conn = await asyncpg.connect(DSN)
        try:
            await conn.execute(f"DROP SCHEMA {schema} CASCADE")
        finally:
            await conn.close()


def _count_commits(store: AnyStore) -> Callable[[], int]:
    calls = [0]
    if isinstance(store, SQLiteStore):
        original = store._write_sync

        def counting(records: list[Record]) -> None:
            calls[0] += 1
            original(records)

        store._write_sync = counting  # type: ignore[method-assign]
    else:
        original_batch = store._write_batch

        async def counting_batch(records: list[Record]) -> None:
            calls[0] += 1
            await original_batch(records)

        store._write_batch = counting_batch  # type: ignore[method-assign]
    return lambda: calls[0]


async def appends(kind: str, beds: int, seconds: float, workdir: Path) -> dict[str, Any]:
    async with opened(kind, workdir) as store:
        commits = _count_commits(store)
        latencies: list[float] = []
        done = [0]
        stop = time.perf_counter() + seconds
        bed_list = [Bed(i) for i in range(1, beds + 1)]

        async def producer(bed: Bed) -> None:
            k = 0
            while time.perf_counter() < stop:
                recs = bed.second(k)
                t = time.perf_counter()
                await store.append(recs)
                latencies.append(time.perf_counter() - t)
                done[0] += 1
                k += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(producer(b) for b in bed_list))
        took = time.perf_counter() - t0
        n = done[0]
        return {
            "store": kind,
            "beds": beds,
            "seconds": round(took, 2),
            "bed_seconds_per_s": round(n / took, 1),
            "records_per_s": round(n * (len(NUMERICS) + len(CHANNELS)) / took, 1),
            "transactions": commits(),
            "appends_per_transaction": round(n / max(1, commits()), 2),
            "commit_latency": _pct(latencies),
        }


async def _timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> tuple[dict[str, float], int]:
    xs: list[float] = []
    size = 0
    for _ in range(repeat):
        t = time.perf_counter()
        out = await fn()
        xs.append(time.perf_counter() - t)
        size = len(out)
    return _pct(xs), size


async def reads(kind: str, preload_min: float, repeat: int, workdir: Path) -> dict[str, Any]:
    async with opened(kind, workdir) as store:
        bed_list = [Bed(i) for i in range(1, 5)]
        seconds = int(preload_min * 60)
        t_load = time.perf_counter()
        for k0 in range(0, seconds, 60):  # a minute of all beds per append
            await store.append([r for k in range(k0, min(seconds, k0 + 60)) for b in bed_list for r in b.second(k)])
        load_s = time.perf_counter() - t_load
        mid = T0 + timedelta(seconds=seconds // 2)
        queries: dict[str, Callable[[], Awaitable[Any]]] = {
            "trend_5min_one_bed": lambda: store.readings(bay="bay2", since=mid, until=mid + timedelta(minutes=5)),
            "seek_10s_three_channels": lambda: store.waveforms(
                bay="bay2", since=mid, until=mid + timedelta(seconds=10)
            ),
            "ecg_60s": lambda: store.waveforms(
                bay="bay2", channel="ecg_ii", since=mid, until=mid + timedelta(seconds=60)
            ),
            "all_numerics_one_bed": lambda: store.readings(bay="bay3", limit=1_000_000),
            "alarm_log_newest_100": lambda: store.alarm_events(limit=100),
        }
        out: dict[str, Any] = {"store": kind, "preload_bed_minutes": 4 * preload_min, "preload_s": round(load_s, 2)}
        for name, fn in queries.items():
            stats, size = await _timed(fn, repeat)
            out[name] = {**stats, "rows": size}
        return out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each append run")
    ap.add_argument("--beds", type=int, nargs="+", default=[1, 10, 50], help="concurrent producers per run")
    ap.add_argument("--preload-min", type=float, default=30.0, help="minutes of 4 beds loaded before the reads")
    ap.add_argument("--repeat", type=int, default=30, help="times each read is timed")
    args = ap.parse_args()
    try:
        conn = await asyncpg.connect(DSN, timeout=3)
        await conn.close()
    except (OSError, TimeoutError, asyncpg.PostgresError) as e:
        raise SystemExit(f"PostgreSQL not reachable at {DSN}: {e} (set VIGIL_BENCH_POSTGRES_DSN)") from e
    append_rows: list[dict[str, Any]] = []
    read_rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="vigil-bench-store-") as tmp:
        workdir = Path(tmp)
        for beds in args.beds:
            for kind in ("sqlite", "postgres"):
                row = await appends(kind, beds, args.seconds, workdir)
                append_rows.append(row)
                lat = row["commit_latency"]
                print(
                    f"append {kind:8} beds={beds:3}  {row['bed_seconds_per_s']:8.1f} bed-s/s"
                    f"  {row['records_per_s']:9.1f} rec/s  {row['appends_per_transaction']:6.2f} appends/txn"
                    f"  p50 {lat['p50_ms']:7.2f} ms  p99 {lat['p99_ms']:7.2f} ms"
                )
        for kind in ("sqlite", "postgres"):
            row = await reads(kind, args.preload_min, args.repeat, workdir)
            read_rows.append(row)
            for name, stats in row.items():
                if isinstance(stats, dict):
                    print(
                        f"read   {kind:8} {name:26} p50 {stats['p50_ms']:8.2f} ms  p95 {stats['p95_ms']:8.2f} ms"
                        f"  ({stats['rows']} rows)"
                    )
    path = save(
        "store",
        {
            "postgres_dsn_host": DSN.split("@")[-1],
            "durability": "SQLite synchronous=FULL (WAL); PostgreSQL synchronous_commit=on (server default)",
            "append_seconds": args.seconds,
            "appends": append_rows,
            "reads": read_rows,
        },
    )
    print(f"saved {path}")


if __name__ == "__main__":
    asyncio.run(main())
