"""Replay seek time in a 90-minute session (issue 8: "seek anywhere in a 90-minute session answers in ≤150 ms").

Records one uneventful simulated session with waveforms through the real pipeline into a fresh SQLite file
(``record_simulated_session``), opens a ``ReplayPlayer`` on it with one client attached, then seeks to 200
random times (seeded) and measures, per seek:

- **seek**: what ``POST /api/replays/{id}/control`` ``seek`` waits for: the state at t (last value of every
  numeric, device status, device alarms, the rule engine's active list, the phase), the rebuilt live state
  and the fresh snapshot queued for the client;
- **first_waves**: seek plus the first playing step: the waveform window read from the store, decoded and
  published (what the browser needs before it draws again);
- **http_seek**: the same seek through the real server (uvicorn on port 0, a websocket client attached to the
  replay), as the review page sends it: ``POST /api/replays/{id}/control`` round trip.

Also: opening the replay (loading the recording and building its timeline). Wall time, ``perf_counter``.
Run: ``.venv/bin/python -m benchmarks.bench_replay_seek [--seeks 200] [--db FILE]`` (``--db`` reuses a
recording made by an earlier run); writes benchmarks/results/replay_seek.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import uvicorn
import websockets

from app.config import BayConfig, Settings
from app.hub import Subscription
from app.main import create_app
from app.recording.load import list_recordings, load_recording
from app.recording.replay import ReplayPlayer
from app.recording.synth import record_simulated_session
from app.store.sqlite import SQLiteStore

RESULTS = Path(__file__).resolve().parent / "results" / "replay_seek.json"
BUDGET_MS = 150.0


def stats(ms: list[float]) -> dict[str, float]:
    """p50 / p95 / max / mean of a list of milliseconds."""
    s = sorted(ms)
    return {
        "p50_ms": round(statistics.median(s), 2),
        "p95_ms": round(s[min(len(s) - 1, round(0.95 * (len(s) - 1)))], 2),
        "max_ms": round(s[-1], 2),
        "mean_ms": round(statistics.fmean(s), 2),
    }


async def run(db: Path, seeks: int, speed: float, seed: int) -> dict[str, Any]:
    """Record (unless ``db`` holds a session already), then time the seeks."""
    store = SQLiteStore(db, synchronous="NORMAL")
    await store.open()
    try:
        recorded = [r for r in await list_recordings(store) if r.final]
        record_s = None
        if recorded:
            sid = recorded[0].session_id
        else:
            t0 = time.perf_counter()
            sid = await record_simulated_session(store, scenario="uneventful", speed=speed, waveforms=True)
            record_s = round(time.perf_counter() - t0, 1)
        t0 = time.perf_counter()
        rec = await load_recording(store, sid)
        player = ReplayPlayer(store, rec, label="Bay 1")
        open_ms = (time.perf_counter() - t0) * 1000
        ch = player.hub.attach(Subscription(None, "full"), None)
        segments = len(await store.waveforms(bay=rec.bay, since=rec.start, until=rec.end, limit=10_000_000))
        rng = random.Random(seed)
        seek_ms: list[float] = []
        first_ms: list[float] = []
        snapshot_bytes = 0
        for _ in range(seeks):
            t = rng.uniform(player.start, player.end)
            t0 = time.perf_counter()
            player.seek(t)
            t1 = time.perf_counter()
            await player.step()  # paused: reads and publishes the waveform window ahead of t
            t2 = time.perf_counter()
            seek_ms.append((t1 - t0) * 1000)
            first_ms.append((t2 - t0) * 1000)
            while (text := await ch.get(timeout=0)) is not None:
                if json.loads(text)["type"] == "snapshot":
                    snapshot_bytes = max(snapshot_bytes, len(text))
        return {
            "session_id": sid,
            "session_minutes": round((player.end - player.start) / 60, 1),
            "readings": len(rec.readings),
            "alarm_events": len(rec.alarm_events),
            "wave_segments": segments,
            "record_s": record_s,
            "open_ms": round(open_ms, 1),
            "seeks": seeks,
            "seek": stats(seek_ms),
            "first_waves": stats(first_ms),
            "snapshot_bytes_max": snapshot_bytes,
            "budget_ms": BUDGET_MS,
            "within_budget": max(seek_ms) <= BUDGET_MS,
        }
    finally:
        await store.close()


async def http_seeks(db: Path, sid: str, seeks: int, seed: int) -> dict[str, Any]:
    """Seek round trips through a real server with a websocket client on the replay."""
    settings = Settings(
        auth="off", host="127.0.0.1", port=0, db_path=db, bays=[BayConfig(id="bay1", label="Bay 1")], monitors=[]
    )
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name="bench:uvicorn")
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            t0 = time.perf_counter()
            out = (await http.post("/api/replays", json={"session_id": sid})).json()
            open_ms = (time.perf_counter() - t0) * 1000
            async with websockets.connect(f"ws://127.0.0.1:{port}{out['ws']}", compression=None) as ws:
                await ws.send(json.dumps({"type": "subscribe", "bays": None, "waves": "full"}))

                async def read() -> None:
                    async for _ in ws:
                        pass

                reader = asyncio.create_task(read(), name="bench:ws")
                rng = random.Random(seed + 1)
                ms: list[float] = []
                for _ in range(seeks):
                    t = rng.uniform(out["start"], out["end"])
                    t0 = time.perf_counter()
                    r = await http.post(f"/api/replays/{out['replay_id']}/control", json={"action": "seek", "t": t})
                    ms.append((time.perf_counter() - t0) * 1000)
                    r.raise_for_status()
                    await asyncio.sleep(0.02)  # let the player and the websocket do their part
                reader.cancel()
        return {"open_ms": round(open_ms, 1), **stats(ms), "within_budget": max(ms) <= BUDGET_MS}
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


def main() -> None:
    """Run, print and save JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeks", type=int, default=200)
    ap.add_argument("--db", type=Path, default=None, help="reuse (or create) this recording")
    ap.add_argument("--speed", type=float, default=120.0, help="recording speed (x real time)")
    ap.add_argument("--seed", type=int, default=8)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or Path(tmp) / "replay-bench.sqlite3"
        figures = asyncio.run(run(db, args.seeks, args.speed, args.seed))
        figures["http_seek"] = asyncio.run(http_seeks(db, figures.pop("session_id"), args.seeks, args.seed))
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2),  # other work on the machine while measuring
        **figures,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
