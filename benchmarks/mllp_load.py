"""MLLP load client shared by the HL7 benchmark and the durability test.

Each connection is an original-mode sender: write a frame, wait for its ACK, then the next, recording
the ACK latency and code per message.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from monitors import parameters
from monitors.models import Reading
from monitors.protocols import encode, hl7, mllp

#: A typical PCD-01 monitor message: 9 OBX (MDS row, HR, SpO2, RR, EtCO2, NIBP container, sys, dia, mean).
TYPICAL = {"hr": 72.0, "spo2": 97.0, "rr": 14.0, "etco2": 38.0, "nibp_sys": 128.0, "nibp_dia": 82.0, "nibp_mean": 97.0}


def typical_message(
    control_id: str, device_id: str = "0011223344556677", at: datetime | None = None, location: str = "ICU^BED1^1"
) -> bytes:
    """One 9-OBX ORU^R01 as a bedside monitor sends it every second."""
    t = at or datetime.now(UTC)
    readings = [
        Reading(device_id=device_id, param=k, value=v, unit=parameters.get(k).ucum, t_device=t, t_received=t)
        for k, v in TYPICAL.items()
    ]
    return encode.encode_oru(readings, device_id=device_id, control_id=control_id, now=t, location=location)


@dataclass
class ConnectionResult:
    """What one sender connection saw."""

    acked: list[str] = field(default_factory=list)  # control ids answered AA/CA
    other: dict[str, str] = field(default_factory=dict)  # control id -> other answer code
    unanswered: list[str] = field(default_factory=list)  # sent (or not yet sent) without an answer
    latencies: list[float] = field(default_factory=list)  # seconds, per answered message
    error: str | None = None


def ack_code(frame: bytes) -> str:
    """MSA-1 of an ACK frame payload."""
    msa = hl7.parse(frame.decode("latin-1")).segment("MSA")
    return msa.raw(1) if msa is not None else "?"


async def run_connection(
    host: str,
    port: int,
    payloads: Sequence[tuple[str, bytes]],
    *,
    deadline: float | None = None,
    timeout_s: float = 10.0,
    on_ack: Callable[[str], None] | None = None,
) -> ConnectionResult:
    """Send ``payloads`` (control id, bytes) one at a time, each after the previous ACK."""
    res = ConnectionResult()
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError as e:
        res.error = str(e)
        res.unanswered = [c for c, _ in payloads]
        return res
    framer = mllp.MLLPFramer(1 << 20)
    answers: list[bytes] = []
    i = 0
    try:
        for i, (control, payload) in enumerate(payloads):  # noqa: B007 - i is read after the loop
            if deadline is not None and time.monotonic() >= deadline:
                break
            t0 = time.perf_counter()
            writer.write(mllp.frame(payload))
            await writer.drain()
            while not answers:
                data = await asyncio.wait_for(reader.read(65536), timeout_s)
                if not data:
                    raise ConnectionError("closed by receiver")
                answers.extend(f for f in framer.feed(data) if isinstance(f, bytes))
            code = ack_code(answers.pop(0))
            res.latencies.append(time.perf_counter() - t0)
            if code in ("AA", "CA"):
                res.acked.append(control)
                if on_ack is not None:
                    on_ack(control)
            else:
                res.other[control] = code
        else:
            i = len(payloads)
    except (OSError, ConnectionError, TimeoutError, asyncio.IncompleteReadError) as e:
        res.error = f"{type(e).__name__}: {e}"
    finally:
        writer.close()
    answered = set(res.acked) | set(res.other)
    res.unanswered = [c for c, _ in payloads[: i + 1] if c not in answered] if res.error else []
    return res


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by nearest rank; NaN for no values."""
    if not values:
        return float("nan")
    s = sorted(values)
    k = max(0, min(len(s) - 1, round(q / 100 * (len(s) - 1))))
    return s[k]


def spaced_times(n: int, start: datetime | None = None) -> list[datetime]:
    """n timestamps one second apart (as a monitor would stamp successive messages)."""
    t0 = start or datetime.now(UTC)
    return [t0 + timedelta(seconds=i) for i in range(n)]
