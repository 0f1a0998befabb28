"""How many waveform samples per second one core generates for 100 simulated bays.

Two measurements, both single-threaded (so the figure is per core), CPU time by ``time.process_time``:

1. **source**: 100 ``SimulatedPatient`` s (a mix of scenarios, seeds 1..100) asked for their three channels
   in 0.2-s chunks, as the adapter asks, plus numerics at 1 Hz and an NIBP every 3 min;
2. **adapter**: the same through ``SimulatedAdapter`` at high speed, i.e. including the pydantic
   ``WaveformChunk``/``Reading`` models the server ingests.

Real time for 100 bays needs 100 × (250 + 125 + 62.5) = 43,750 samples/s.
Run: ``.venv/bin/python -m benchmarks.bench_simulator [--bays 100] [--seconds 120]``; writes
benchmarks/results/simulator.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

from monitors.adapters.simulated import SimulatedAdapter
from monitors.base import Batch
from monitors.models import WaveformChunk
from simulators.patient import CHANNELS, SimulatedPatient
from simulators.scenario import load_scenario

MIX = ("uneventful", "hypertension", "oversedation", "emergence", "sensor_off")
RESULTS = Path(__file__).resolve().parent / "results" / "simulator.json"
PER_BAY_RATE = sum(fs for fs, _ in CHANNELS.values())


def _result(bays: int, seconds: float, samples: int, cpu0: float, wall0: float) -> dict[str, float | int]:
    """Throughput figures for a run that started at process time ``cpu0`` and wall time ``wall0``."""
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    return {
        "bays": bays,
        "simulated_s": seconds,
        "samples": samples,
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "samples_per_cpu_s": round(samples / cpu),
        "realtime_factor_100_bays": round(seconds / cpu * bays / 100, 1),
    }


def patients(bays: int) -> list[SimulatedPatient]:
    """``bays`` patients over a mix of scenarios."""
    scenarios = [load_scenario(n) for n in MIX]
    return [SimulatedPatient(scenarios[i % len(scenarios)], seed=i + 1) for i in range(bays)]


def bench_source(bays: int, seconds: float, chunk_s: float = 0.2) -> dict[str, float]:
    """Samples/s per core asking the sources directly, chunk by chunk, bay by bay."""
    ps = patients(bays)
    sent = [dict.fromkeys(CHANNELS, 0) for _ in ps]
    samples = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    ticks = round(seconds / chunk_s)
    for tick in range(1, ticks + 1):
        t = tick * chunk_s
        for p, s in zip(ps, sent, strict=True):
            for ch, (fs, _) in CHANNELS.items():
                upto = int(t * fs)
                n = upto - s[ch]
                if n > 0:
                    samples += len(p.samples(ch, s[ch], n))
                    s[ch] = upto
            if tick % round(1 / chunk_s) == 0:
                p.numerics(t)
            if tick % round(180 / chunk_s) == 0:
                p.nibp(t)
    return _result(bays, seconds, samples, cpu0, wall0)


class _Clock:
    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


async def _drain(adapter: SimulatedAdapter, seconds: float) -> int:
    samples = 0
    async with adapter:
        async for item in adapter.readings():
            items = item.items if isinstance(item, Batch) else (item,)
            for it in items:
                if isinstance(it, WaveformChunk):
                    samples += len(it.samples)
                    if (it.t0 - adapter_origin).total_seconds() >= seconds:
                        return samples
    return samples


adapter_origin = datetime(2026, 1, 1, tzinfo=UTC)


def bench_adapter(bays: int, seconds: float) -> dict[str, float]:
    """Samples/s per core through the simulated adapter (pydantic models included)."""
    ps = patients(bays)
    samples = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for i, p in enumerate(ps):
        adapter = SimulatedAdapter(
            name=f"sim{i}",
            device_id=f"dev{i}",
            source=p,
            channels=CHANNELS,
            clock=_Clock(0.15),  # two reads per 0.2-s tick advance 0.3 s: never sleeps
            wall=lambda: adapter_origin,
        )
        samples += asyncio.run(_drain(adapter, seconds))
    return _result(bays, seconds, samples, cpu0, wall0)


def main() -> None:
    """Run both measurements, print them and save JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--bays", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=120.0)
    args = ap.parse_args()
    source = bench_source(args.bays, args.seconds)
    adapter = bench_adapter(args.bays, args.seconds / 4)
    result = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "required_samples_per_s_100_bays": PER_BAY_RATE * 100,
        "source": source,
        "adapter": adapter,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
