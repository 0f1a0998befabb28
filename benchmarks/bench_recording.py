"""Full-disclosure recording: bytes per bed-hour, and whether 100 beds of waveforms block the event loop.

1. **Size.** One simulated session (scenario ``uneventful``: ~90 min incl. 30 min recovery) is recorded
   through the real pipeline (``record_simulated_session``: ECG II 250 Hz, pleth 125 Hz, CO2 62.5 Hz, 1 Hz
   numerics, NIBP every 3 min, alarms, charting) into a fresh SQLite file. Reported: bytes per bed-hour for
   the whole file after VACUUM (everything: indexes, session and alarm rows) and per table (SQLite's dbstat),
   against raw int16 for the same samples. Goal (issue 8): <= 1.5 MB per bed-hour.
2. **Event loop.** 100 beds' worth of recording per second (300 one-second waveform segments + 100
   observation sets) is appended for ``--seconds`` while a 10 ms ticker measures event-loop lag; the store
   encodes and writes on its own thread.

Run: ``.venv/bin/python -m benchmarks.bench_recording [--seconds 20] [--scenario uneventful] [--keep-db PATH]``;
writes benchmarks/results/recording.json (with the waveform payload per channel in bytes per second of signal).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.recording.load import load_recording, load_waves
from app.recording.model import WaveSegment
from app.recording.synth import record_simulated_session
from app.store import Record
from app.store.sqlite import SQLiteStore
from benchmarks.common import save
from monitors.models import Reading
from simulators.physiology import CHANNELS, RestingPatient


def _file_sizes(db: Path) -> tuple[dict[str, int], int, int, int]:
    """(bytes per table and index, waveform payload bytes, file bytes before and after VACUUM)."""
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        before = os.path.getsize(db)
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # in WAL mode the vacuumed file is in the WAL until then
        tables = dict(conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall())
        payload = conn.execute("SELECT sum(length(data)) FROM waves").fetchone()[0] or 0
    return tables, int(payload), before, os.path.getsize(db)


def _by_channel(db: Path) -> dict[str, dict[str, Any]]:
    """Waveform payload per channel: segments, seconds of signal, payload bytes per second, codec ids used."""
    out: dict[str, dict[str, Any]] = {}
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT s.channel, s.fs, w.codec, count(*), sum(w.n), sum(length(w.data))"
            " FROM waves w JOIN wave_streams s ON s.id = w.stream GROUP BY s.channel, s.fs, w.codec"
        ).fetchall()
    for channel, fs, codec_id, segments, samples, payload in rows:
        ch = out.setdefault(channel, {"segments": 0, "seconds": 0.0, "payload_bytes": 0, "codecs": {}})
        ch["segments"] += segments
        ch["seconds"] += samples / fs
        ch["payload_bytes"] += payload
        ch["codecs"][str(codec_id)] = segments
    for ch in out.values():
        ch["payload_bytes_per_s"] = round(ch["payload_bytes"] / ch["seconds"], 1) if ch["seconds"] else None
        ch["seconds"] = round(ch["seconds"], 1)
    return dict(sorted(out.items()))


async def size(scenario: str, db: Path) -> dict[str, Any]:
    store = SQLiteStore(db, synchronous="NORMAL")
    await store.open()
    t0 = time.perf_counter()
    sid = await record_simulated_session(store, scenario=scenario, speed=1000.0)
    took = time.perf_counter() - t0
    rec = await load_recording(store, sid)
    hours = (rec.end - rec.start).total_seconds() / 3600
    waves = await load_waves(store, rec, rec.start, rec.end)
    samples = sum(len(w.samples) for w in waves)
    await store.close()
    tables, payload, as_written, total = _file_sizes(db)
    channels = _by_channel(db)
    mb = 1e6
    return {
        "scenario": scenario,
        "session_hours": round(hours, 3),
        "recorded_in_s": round(took, 1),
        "samples": samples,
        "readings": len(rec.readings),
        "file_mb_per_bed_hour": round(total / hours / mb, 3),
        "file_as_written_mb_per_bed_hour": round(as_written / hours / mb, 3),
        "raw_int16_waveforms_mb_per_bed_hour": round(2 * samples / hours / mb, 3),
        "waveform_payload_mb_per_bed_hour": round(payload / hours / mb, 3),
        "compression_vs_raw_int16": round(2 * samples / payload, 2) if payload else None,
        "waveform_payload_by_channel": channels,
        "by_table_mb_per_bed_hour": {
            k: round(v / hours / mb, 3) for k, v in sorted(tables.items(), key=lambda kv: -kv[1])
        },
        "goal_mb_per_bed_hour": 1.5,
    }


async def loop_lag(seconds: float, db: Path, beds: int = 100) -> dict[str, Any]:
    store = SQLiteStore(db)  # synchronous=FULL, as the server runs
    await store.open()
    src = RestingPatient(3)
    blocks = {ch: [src.samples(ch, k * int(fs), int(fs)) for k in range(20)] for ch, (fs, _) in CHANNELS.items()}
    lags: list[float] = []
    stop = False

    async def ticker() -> None:
        while not stop:
            t = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append((time.perf_counter() - t - 0.01) * 1000)

    tick = asyncio.create_task(ticker())
    cpu0, wall0 = time.process_time(), time.perf_counter()
    t_base = datetime.now(UTC)
    futs = []
    for s in range(int(seconds)):
        t = t_base + timedelta(seconds=s)
        records: list[Record] = []
        for b in range(beds):
            for ch, (fs, gain) in CHANNELS.items():
                samples = blocks[ch][(s + b) % 20]
                unit = {"ecg_ii": "mV", "pleth": "1", "co2": "mm[Hg]"}[ch]
                records.append(
                    Record(f"bay{b}", WaveSegment(f"bay{b}", f"d{b}", ch, t, fs, unit, gain, tuple(samples)))
                )
            for p, v, u in (("hr", 72.0, "/min"), ("spo2", 97.0, "%"), ("rr", 14.0, "/min"), ("pr", 72.0, "/min")):
                r = Reading.model_construct(
                    device_id=f"d{b}", param=p, value=v + random.random(), unit=u, t_device=t, t_received=t
                )
                records.append(Record(f"bay{b}", r))
        futs.append(store.append(records))
        await asyncio.sleep(max(0.0, wall0 + s + 1 - time.perf_counter()))
    await asyncio.gather(*futs)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    stop = True
    await tick
    await store.close()
    lags.sort()
    return {
        "beds": beds,
        "seconds": seconds,
        "segments_per_s": beds * len(CHANNELS),
        "process_cpu_percent": round(100 * cpu / wall, 1),
        "loop_lag_ms": {
            "p50": round(statistics.median(lags), 2),
            "p99": round(lags[int(0.99 * (len(lags) - 1))], 2),
            "max": round(lags[-1], 2),
        },
    }


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--scenario", default="uneventful")
    ap.add_argument("--keep-db", type=Path, help="copy the recorded session's SQLite file here (for codec work)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sz = await size(args.scenario, Path(tmp) / "size.sqlite3")
        if args.keep_db is not None:
            shutil.copyfile(Path(tmp) / "size.sqlite3", args.keep_db)
        print(
            f"recording size: {sz['file_mb_per_bed_hour']} MB per bed-hour after VACUUM "
            f"({sz['file_as_written_mb_per_bed_hour']} MB as written; goal 1.5); raw int16 waveforms "
            f"alone {sz['raw_int16_waveforms_mb_per_bed_hour']} MB; waveform payload "
            f"{sz['waveform_payload_mb_per_bed_hour']} MB ({sz['compression_vs_raw_int16']}x)"
        )
        for channel, c in sz["waveform_payload_by_channel"].items():
            print(
                f"  {channel:8s} {c['payload_bytes_per_s']:7.1f} B/s of signal "
                f"({c['segments']} segments, codec ids {c['codecs']})"
            )
        for table, v in sz["by_table_mb_per_bed_hour"].items():
            print(f"  {table:28s} {v:7.3f} MB/bed-hour")
        lag = await loop_lag(args.seconds, Path(tmp) / "lag.sqlite3")
        print(
            f"100 beds recording: loop lag p50 {lag['loop_lag_ms']['p50']} ms, p99 {lag['loop_lag_ms']['p99']} ms, "
            f"max {lag['loop_lag_ms']['max']} ms; process CPU {lag['process_cpu_percent']} %"
        )
    path = save("recording", {"size": sz, "event_loop": lag, "load_note": f"loadavg at start {os.getloadavg()}"})
    print(f"saved {path}")


if __name__ == "__main__":
    asyncio.run(main())
