"""An HL7 v2 / IHE PCD-01 device emulator: a gateway that sends a monitor's data over MLLP.

It takes the item stream of a simulated monitor (``monitors.adapters.simulated.SimulatedAdapter``: numerics
each second, NIBP on its cycle, waveform chunks, technical alarms) and behaves like a real gateway:

- one ORU^R01 per second with that second's numerics and each waveform channel as one NA block;
- an ORU^R40 for each device alarm as it starts and ends;
- original-mode MLLP: send, wait for the ACK, only then send the next message; on a timeout or a closed
  connection reconnect (capped, jittered backoff) and resend the same message; on AR wait and resend;
  on AE give the message up (its content will not improve) and log it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from monitors.base import Batch, Item
from monitors.models import DeviceAlarm, Reading, WaveformChunk
from monitors.protocols import encode, hl7, mllp

log = logging.getLogger(__name__)


@dataclass
class SenderStats:
    """What the emulator did."""

    sent: int = 0  # distinct messages
    acked: int = 0  # AA / CA
    errors: int = 0  # AE / CE (given up)
    rejected: int = 0  # AR / CR answers (each followed by a resend)
    resent: int = 0  # resends after timeout, disconnect or AR
    reconnects: int = 0


def merge_waves(chunks: Sequence[WaveformChunk]) -> list[WaveformChunk]:
    """Join contiguous chunks of each channel into one block (a gap starts a new block)."""
    out: list[WaveformChunk] = []
    for ch in sorted({c.channel for c in chunks}):
        run: list[WaveformChunk] = []
        for c in (c for c in chunks if c.channel == ch):
            if run:
                end = run[-1].t0 + run[-1].duration
                if abs((c.t0 - end).total_seconds()) > 1.5 / c.fs or c.fs != run[-1].fs:
                    out.append(_join(run))
                    run = []
            run.append(c)
        if run:
            out.append(_join(run))
    return out


def _join(run: list[WaveformChunk]) -> WaveformChunk:
    if len(run) == 1:
        return run[0]
    samples = tuple(s for c in run for s in c.samples)
    return run[0].model_copy(update={"samples": samples})


class Hl7Sender:
    """Sends a simulated monitor's stream to an MLLP receiver, one acknowledged message at a time."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        device_id: str,
        location: str | None = None,
        patient_id: str | None = None,
        ack_timeout_s: float = 10.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 10.0,
        control_prefix: str | None = None,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.host = host
        self.port = port
        self.device_id = device_id
        self.location = location
        self.patient_id = patient_id
        self._ack_timeout = ack_timeout_s
        self._backoff0 = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._prefix = control_prefix or f"{device_id[-6:]}-{random.randrange(16**6):06X}-"
        self._wall = wall
        self._n = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._framer = mllp.MLLPFramer(1024 * 1024)
        self._answers: list[bytes] = []
        self.stats = SenderStats()

    def _control_id(self) -> str:
        self._n += 1
        return f"{self._prefix}{self._n}"

    async def run(self, stream: AsyncIterator[Item | Batch]) -> None:
        """Consume ``stream`` until it ends or the task is cancelled."""
        pending: list[Reading | WaveformChunk] = []
        try:
            async for got in stream:
                items = got.items if isinstance(got, Batch) else (got,)
                flush = False
                for it in items:
                    if isinstance(it, DeviceAlarm):
                        await self.send(
                            encode.encode_alarm(
                                it,
                                control_id=self._control_id(),
                                now=self._wall(),
                                location=self.location,
                                patient_id=self.patient_id,
                            )
                        )
                    elif isinstance(it, WaveformChunk):
                        pending.append(it)
                    elif isinstance(it, Reading):
                        pending.append(it)
                        flush = True
                if flush:  # numerics arrive once a second: send them with the waveforms gathered so far
                    await self.send_items(pending)
                    pending = []
        finally:
            await self.close()

    async def send_items(self, items: Sequence[Reading | WaveformChunk]) -> None:
        """Encode readings and (merged) waveform blocks as one ORU^R01 and send it."""
        readings = [it for it in items if isinstance(it, Reading)]
        waves = merge_waves([it for it in items if isinstance(it, WaveformChunk)])
        if not readings and not waves:
            return
        payload = encode.encode_oru(
            [*readings, *waves],
            device_id=self.device_id,
            control_id=self._control_id(),
            now=self._wall(),
            location=self.location,
            patient_id=self.patient_id,
        )
        await self.send(payload)

    async def send(self, payload: bytes) -> str:
        """Send one message until it is accepted (AA/CA) or refused for its content (AE/CE); returns the code."""
        self.stats.sent += 1
        backoff = self._backoff0
        first = True
        while True:
            if not first:
                self.stats.resent += 1
            first = False
            try:
                await self._ensure_connected()
                assert self._writer is not None
                self._writer.write(mllp.frame(payload))
                await self._writer.drain()
                code = await asyncio.wait_for(self._read_ack(), self._ack_timeout)
            except (OSError, TimeoutError, ConnectionError, asyncio.IncompleteReadError) as e:
                log.warning("HL7 sender: %s; reconnecting in ≤%.1f s", e or type(e).__name__, backoff)
                await self.close()
                await asyncio.sleep(random.uniform(backoff / 2, backoff))
                backoff = min(backoff * 2, self._backoff_max)
                continue
            if code in ("AA", "CA"):
                self.stats.acked += 1
                return code
            if code in ("AE", "CE"):
                self.stats.errors += 1
                log.warning("HL7 sender: message refused for its content (%s); not resending", code)
                return code
            self.stats.rejected += 1  # AR / CR: receiver cannot take it now
            await asyncio.sleep(random.uniform(backoff / 2, backoff))
            backoff = min(backoff * 2, self._backoff_max)

    async def _ensure_connected(self) -> None:
        if self._writer is not None and not self._writer.is_closing():
            return
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        self._framer = mllp.MLLPFramer(1024 * 1024)
        self._answers = []
        self.stats.reconnects += 1

    async def _read_ack(self) -> str:
        assert self._reader is not None
        while not self._answers:
            data = await self._reader.read(65536)
            if not data:
                raise ConnectionError("receiver closed the connection")
            self._answers.extend(f for f in self._framer.feed(data) if isinstance(f, bytes))
        answer = self._answers.pop(0)
        msg = hl7.parse(answer.decode("latin-1"))
        msa = msg.segment("MSA")
        return msa.raw(1).strip().upper() if msa is not None else "AR"

    async def close(self) -> None:
        """Close the connection (the next send reconnects)."""
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._writer.wait_closed(), 1)
        self._reader = self._writer = None


def parse_target(url: str) -> tuple[str, int]:
    """``mllp://host:port`` → (host, port)."""
    parts = urlsplit(url)
    if parts.scheme != "mllp" or not parts.hostname or parts.port is None:
        raise ValueError(f"expected mllp://host:port, got {url!r}")
    return parts.hostname, parts.port


async def emulate(
    target: str,
    *,
    scenario: str | None = None,
    seed: int = 0,
    device_id: str = "00A0C9FFFE000001",
    location: str | None = None,
    speed: float = 1.0,
    offset_min: float = 0.0,
) -> SenderStats:
    """Run a simulated monitor (a scenario, or a resting patient) and send it to ``target`` until cancelled."""
    from simulators.devices.common import simulated_monitor

    host, port = parse_target(target)
    device = simulated_monitor(
        "hl7-emulator", device_id, scenario=scenario, seed=seed, speed=speed, offset_min=offset_min
    )
    sender = Hl7Sender(host, port, device_id=device_id, location=location)
    try:
        async with device:
            await sender.run(device.readings())
    finally:
        log.info("HL7 emulator: %s", sender.stats)
    return sender.stats


def main(argv: list[str] | None = None) -> int:
    """``python -m simulators.devices.hl7_sender --to mllp://host:port [--scenario NAME] ...``"""
    ap = argparse.ArgumentParser(description="Send a simulated monitor to an HL7 MLLP receiver, like a gateway.")
    ap.add_argument("--to", required=True, help="mllp://host:port")
    ap.add_argument("--scenario", default=None, help="scenario name (default: a resting patient)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device-id", default="00A0C9FFFE000001", help="EUI-64 sent in OBX-18")
    ap.add_argument("--location", default=None, help="PV1-3 unit^room^bed (how the receiver finds the bay)")
    ap.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    ap.add_argument("--offset-min", type=float, default=0.0, help="start this far into the scenario")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        parse_target(args.to)
    except ValueError as e:
        print(f"hl7_sender: {e}", file=sys.stderr)
        return 2
    what = repr(args.scenario) if args.scenario else "a resting patient"
    print(f"Vigil emulator: {what} as device {args.device_id} -> {args.to} (Ctrl-C to stop)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            emulate(
                args.to,
                scenario=args.scenario,
                seed=args.seed,
                device_id=args.device_id,
                location=args.location,
                speed=args.speed,
                offset_min=args.offset_min,
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
