"""What every serial dialect decoder shares: its output types, technical conditions and value checks.

A decoder is sans-I/O: ``feed(data, now)`` takes whatever bytes arrived at wall time ``now`` (any split,
any garbage) and returns what they completed, in order:

- ``Numerics``: one device report (Masimo: one line a second; Nonin: one second of packets) holding the
  readings and the technical-condition changes (``DeviceAlarm``, active True/False on transitions) that
  belong together; the adapter hands it over as one ``Batch``;
- ``WaveformChunk``: pleth samples (Nonin, key=value ``wave`` lines), about 0.2 s each;
- ``Garbage``: bytes discarded while resynchronising (the first ``GARBAGE_KEEP`` of them kept for audit).

Values a device marks as "no value" (dashes, 127/511) or that lie outside the catalogue's plausible range
become ``Reading(value=None, quality="invalid")``: never a number, never a zero.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from monitors import parameters
from monitors.models import AlarmKind, DeviceAlarm, Priority, Quality, Reading, WaveformChunk

#: Leading bytes of a discarded run kept in ``Garbage.head`` (enough to see what the device sent).
GARBAGE_KEEP = 256


@dataclass(frozen=True, slots=True)
class Numerics:
    """Readings and technical-condition changes from one device report (committed together)."""

    items: tuple[Reading | DeviceAlarm, ...]


@dataclass(frozen=True, slots=True)
class Garbage:
    """Bytes a decoder could not use: ``size`` bytes discarded, ``head`` the first of them, ``reason`` why."""

    head: bytes
    size: int
    reason: str


Decoded = Numerics | WaveformChunk | Garbage
"""What ``Decoder.feed`` returns."""


class Decoder(Protocol):
    """A sans-I/O serial dialect decoder for one device."""

    dialect: str

    def feed(self, data: bytes, now: datetime) -> list[Decoded]:
        """Consume ``data`` (arrived at wall time ``now``); return what it completed, in order."""
        ...

    def reset(self) -> None:
        """Forget partial input and synchronisation (call after the port was reopened)."""
        ...


@dataclass(frozen=True, slots=True)
class Condition:
    """A technical condition a device reports: its alarm code, priority, text and effect on SpO2/PR."""

    code: str
    priority: Priority
    text: str
    #: "invalid": SpO2 and PR have no value while it lasts; "questionable": they are shown with "?".
    effect: str | None = None


#: Technical conditions the serial dialects report. Priorities follow CLINICAL.md Table 1: T1 SpO2 probe off
#: / no pulsatile signal MEDIUM (no sensor, sensor or cable fault and pulse search are the same clinical
#: situation: no usable SpO2); T3 ECG leads off MEDIUM; T4 CO2 sampling line MEDIUM with "APNOEA DETECTION
#: UNAVAILABLE". Artifact and low perfusion are signal-quality advisories (LOW, as the simulated monitor's
#: motion artifact; rule C2) [I]; low battery LOW [I].
CONDITIONS: dict[str, Condition] = {
    "probe_off": Condition("SPO2_PROBE_OFF", Priority.MEDIUM, "SpO2 PROBE OFF", "invalid"),
    "no_sensor": Condition("SPO2_NO_SENSOR", Priority.MEDIUM, "SpO2 NO SENSOR", "invalid"),
    "sensor_fault": Condition("SPO2_SENSOR_FAULT", Priority.MEDIUM, "SpO2 SENSOR / CABLE FAULT", "invalid"),
    "pulse_search": Condition("SPO2_PULSE_SEARCH", Priority.MEDIUM, "SpO2 PULSE SEARCH", "questionable"),
    "artifact": Condition("SPO2_ARTIFACT", Priority.LOW, "SpO2 ARTIFACT", "questionable"),
    "low_perfusion": Condition("SPO2_LOW_PERFUSION", Priority.LOW, "SpO2 LOW PERFUSION", "questionable"),
    "low_battery": Condition("DEVICE_LOW_BATTERY", Priority.LOW, "DEVICE LOW BATTERY"),
    "leads_off": Condition("ECG_LEADS_OFF", Priority.MEDIUM, "ECG LEADS OFF"),
    "co2_line": Condition("CO2_LINE", Priority.MEDIUM, "CO2 CHECK SAMPLING LINE - APNOEA DETECTION UNAVAILABLE"),
}

#: Parameters whose value a pulse-oximetry condition affects.
OXIMETRY_PARAMS = ("spo2", "pr")


def reading(
    device_id: str,
    param: str,
    value: float | None,
    t: datetime,
    now: datetime,
    quality: Quality = Quality.VALID,
) -> Reading:
    """A reading of ``param``; no value, NaN or an implausible value become ``value=None, quality=invalid``."""
    p = parameters.get(param)
    if value is None or quality is Quality.INVALID or math.isnan(value) or not p.is_plausible(value):
        return Reading(
            device_id=device_id,
            param=param,
            value=None,
            unit=p.ucum,
            t_device=t,
            t_received=now,
            quality=Quality.INVALID,
        )
    return Reading(
        device_id=device_id, param=param, value=value, unit=p.ucum, t_device=t, t_received=now, quality=quality
    )


def oximetry_quality(active: Collection[str]) -> Quality:
    """The quality SpO2/PR carry while ``active`` conditions last."""
    effects = {CONDITIONS[c].effect for c in active if c in CONDITIONS}
    if "invalid" in effects:
        return Quality.INVALID
    if "questionable" in effects:
        return Quality.QUESTIONABLE
    return Quality.VALID


class ConditionTracker:
    """Turns the set of conditions a device reports now into DeviceAlarm transitions (start and end).

    ``clear_after`` reports: a condition ends only after that many consecutive reports without it, so a
    status bit that flickers (artifact flags come per pulse) does not make alarms chatter.
    """

    def __init__(self, device_id: str, clear_after: int = 1) -> None:
        self.device_id = device_id
        self.clear_after = max(1, clear_after)
        self.active: set[str] = set()
        self._absent: dict[str, int] = {}

    def update(self, current: Iterable[str], t: datetime) -> list[DeviceAlarm]:
        """Alarms for conditions that started or ended with this report."""
        now_set = {c for c in current if c in CONDITIONS}
        out: list[DeviceAlarm] = []
        for cond in sorted(now_set - self.active):
            self.active.add(cond)
            out.append(self._alarm(cond, t, True))
        for cond in sorted(self.active - now_set):
            n = self._absent.get(cond, 0) + 1
            if n >= self.clear_after:
                self.active.discard(cond)
                self._absent.pop(cond, None)
                out.append(self._alarm(cond, t, False))
            else:
                self._absent[cond] = n
        for cond in now_set:
            self._absent.pop(cond, None)
        return out

    def _alarm(self, cond: str, t: datetime, active: bool) -> DeviceAlarm:
        c = CONDITIONS[cond]
        return DeviceAlarm(
            device_id=self.device_id,
            code=c.code,
            priority=c.priority,
            text=c.text,
            t=t,
            alarm_kind=AlarmKind.TECHNICAL,
            active=active,
        )

    def reset(self) -> None:
        """Forget what was reported (the next report starts afresh)."""
        self.active.clear()
        self._absent.clear()


class GarbageRun:
    """Accumulates discarded bytes into one ``Garbage`` per run (a run ends when good data resumes)."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.size = 0
        self.reason = ""
        self.total = 0  # bytes discarded since creation (diagnostics)

    def add(self, data: bytes | bytearray | memoryview, reason: str) -> None:
        """Count ``data`` as discarded."""
        if not data:
            return
        if self.size == 0:
            self.reason = reason
        room = GARBAGE_KEEP - len(self.head)
        if room > 0:
            self.head += bytes(data[:room])
        self.size += len(data)
        self.total += len(data)

    def flush(self, out: list[Decoded]) -> None:
        """Append the finished run (if any) to ``out`` and start a new one."""
        if self.size:
            out.append(Garbage(bytes(self.head), self.size, self.reason))
        self.head = bytearray()
        self.size = 0
        self.reason = ""
