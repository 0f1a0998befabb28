"""MLLP sender processes for the load benchmark: K simulated monitors, each an HL7 gateway connection.

Each device is the HL7 emulator of ``simulators.devices.hl7_sender`` (one ORU^R01 per second with that
second's numerics and 1-s waveform blocks, ORU^R40 for device alarms, original-mode: wait for each ACK),
timed: the ACK latency of every message is kept. Commands on stdin: ``start`` (the measurement window opens),
``silence DEVICE 1|0`` (the device stops / resumes sending, so the server raises NO DATA), ``stop`` (the
result is printed as one ``RESULT {json}`` line).

Run: ``python -m benchmarks.load_senders --port N --spec FILE`` (the harness does).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from monitors.base import Batch, Item
from simulators.devices.common import simulated_monitor
from simulators.devices.hl7_sender import Hl7Sender


class TimedSender(Hl7Sender):
    """An HL7 sender that records how long each message took to be acknowledged (resends included)."""

    latencies: list[float]

    async def send(self, payload: bytes) -> str:
        """Send, wait for the ACK, record the time."""
        t0 = time.perf_counter()
        code = await super().send(payload)
        self.latencies.append(time.perf_counter() - t0)
        return code


async def run(port: int, devices: list[dict[str, Any]]) -> dict[str, Any]:
    """Run every device until ``stop`` arrives on stdin."""
    senders: list[TimedSender] = []
    silent: set[str] = set()
    tasks: list[asyncio.Task[None]] = []
    for d in devices:
        monitor = simulated_monitor(
            f"bench-{d['device_id']}",
            d["device_id"],
            scenario=d["scenario"],
            seed=d["seed"],
            speed=1.0,
            offset_min=d["offset_min"],
        )
        sender = TimedSender("127.0.0.1", port, device_id=d["device_id"], location=d["location"])
        sender.latencies = []
        senders.append(sender)

        async def one(m: Any = monitor, s: TimedSender = sender) -> None:
            async def stream() -> AsyncIterator[Item | Batch]:
                async for got in m.readings():
                    if s.device_id not in silent:  # a silenced gateway sends nothing (the server sees silence)
                        yield got

            async with m:
                await s.run(stream())

        tasks.append(asyncio.create_task(one()))
    print("STARTED", flush=True)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    marks: dict[str, int] = {}

    def stdin() -> None:
        for line in sys.stdin:
            cmd = line.strip()
            if cmd == "start":
                loop.call_soon_threadsafe(marks.update, {s.device_id: len(s.latencies) for s in senders})
            elif cmd.startswith("silence "):
                _, dev, on = cmd.split()
                loop.call_soon_threadsafe(silent.add if on == "1" else silent.discard, dev)
            elif cmd == "stop":
                break
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=stdin, daemon=True).start()
    await stop.wait()
    for _ in range(20):  # Python 3.11's wait_for can swallow a cancellation that races a reply: cancel again
        pending = [t for t in tasks if not t.done()]
        if not pending:
            break
        for t in pending:
            t.cancel()
        await asyncio.wait(pending, timeout=0.5)
    for t in tasks:
        if t.done() and not t.cancelled():
            with contextlib.suppress(Exception):
                t.result()
    window = [x for s in senders for x in s.latencies[marks.get(s.device_id, 0) :]]
    return {
        "devices": len(senders),
        "sent": sum(s.stats.sent for s in senders),
        "acked": sum(s.stats.acked for s in senders),
        "errors": sum(s.stats.errors for s in senders),
        "rejected": sum(s.stats.rejected for s in senders),
        "resent": sum(s.stats.resent for s in senders),
        "ack_latencies": window,
    }


def main() -> None:
    """Entry point (started by the harness)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--spec", type=Path, required=True)
    args = ap.parse_args()
    result = asyncio.run(run(args.port, json.loads(args.spec.read_text())))
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
