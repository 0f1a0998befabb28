"""Masimo Radical-7 / Rad-8 / Rad-97 "ASCII 1" serial output, sans-I/O: decoder and encoder.

The device writes one text line per second (9600 baud 8N1 [unverified: PROTOCOLS.md §2]), e.g. (one line)::

    02/22/16 22:47:45 SN=0000056661 SPO2=098% BPM=097 PI=03.60% SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+--
    ALARM=0000 EXC=000800

Facts used, and where they were checked (public sources, read 2026-11-25):

- Line layout ``MM/DD/YY HH:MM:SS`` then space-separated ``KEY=value`` fields, ending with ``ALARM`` and
  ``EXC``; fields vary by model (the Radical-5 sends only SPO2, BPM, PI, ALARM, EXC; the Radical-7 adds SN,
  SPCO, SPMET, DESAT, PIDELTA, PVI); a field filled with ``-`` has no valid value; CR LF ends the line:
  MD PnP Program driver ``poxrad_discrete.h`` (2012, LGPL; Radical-5/7 example strings and field table) and
  real Rad-8 captures in the README of github.com/yahnatan/pulseox (which also shows ``EXC=000800`` during
  normal operation). "ASCII 1" is a setup choice (the Rad-8 defaults to "ASCII 2"):
  github.com/remkolems/masimo-datacapture README.
- ``ALARM`` and ``EXC`` are hexadecimal bit fields. ALARM: 0x01/0x02 SpO2 high/low limit, 0x04/0x08 pulse
  rate high/low limit, 0x10 alarm active, 0x20 alarm silenced, 0x40 low battery, 0x100–0x2000 SpCO / SpMet /
  desaturation-index / PI-delta limits. EXC: 0x01 no sensor, 0x02 defective sensor, 0x04 low perfusion,
  0x08 pulse search, 0x10 interference, 0x20 sensor off, 0x40 ambient light, 0x80 unrecognised sensor,
  0x100 incompatible sensor, 0x400 low signal IQ, 0x800 "Masimo SET" (informational), 0x1000 no cable,
  0x2000–0x10000 cable expired / incompatible / unrecognised / defective, 0x20000 sensor calibrating,
  0x40000 sensor life expired, 0x80000 emitter temperature, 0x100000 sensor current limit: ``poxrad_discrete.h``.
- Not verified: the exact dash pattern of each field ("---%" for SpO2 is assumed from "--.-%" for SpCO) and
  whether other firmware versions pad ALARM/EXC differently (the decoder accepts 1–8 hex digits).

Decoding rules: there is no checksum, so a line is used only when its whole shape is right (date and time,
every field ``KEY=value``, SPO2 ``ddd%``, BPM ``ddd``, ALARM and EXC hex, EXC last); anything else, including
a half line left by dropped bytes or a line glued to garbage, is discarded as ``Garbage`` up to the next line
start (a date) or line end. The device clock has no time zone and is set by hand, so readings are stamped
with the arrival time. PI (perfusion index), SpCO and SpMet are not in the parameter catalogue and are
dropped; the device's own limit alarms (ALARM bits 0x01–0x08) are ignored because Vigil evaluates its own
rules; technical conditions (EXC bits, low battery) become DeviceAlarms on their transitions.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection
from datetime import datetime

from monitors.models import Quality
from monitors.protocols.serial_common import (
    ConditionTracker,
    Decoded,
    GarbageRun,
    Numerics,
    oximetry_quality,
    reading,
)

DIALECT = "masimo-ascii1"

#: A line longer than this without a line end is garbage (a real line is about 140 bytes).
MAX_LINE = 512

_START = re.compile(rb"\d\d/\d\d/\d\d \d\d:\d\d:\d\d")
_FIELD = re.compile(r"[A-Z][A-Z0-9]*=\S*")
_SPO2 = re.compile(r"(\d{3})%")
_BPM = re.compile(r"\d{3}")
_PI = re.compile(r"\d\d\.\d\d%")
_HEX = re.compile(r"[0-9A-Fa-f]{1,8}")
_NO_VALUE = re.compile(r"[+-]?-+(\.-+)?%?")

#: EXC bits → condition (see the module docstring for the sources).
EXC_CONDITIONS: dict[int, str] = {
    0x000001: "no_sensor",  # No Sensor
    0x000002: "sensor_fault",  # Defective Sensor
    0x000004: "low_perfusion",  # Low Perfusion
    0x000008: "pulse_search",  # Pulse Search
    0x000010: "artifact",  # Interference
    0x000020: "probe_off",  # Sensor Off
    0x000040: "artifact",  # Ambient Light
    0x000080: "sensor_fault",  # Unrecognized Sensor
    0x000100: "sensor_fault",  # Incompatible Sensor
    0x000400: "artifact",  # Low Signal IQ
    0x001000: "no_sensor",  # No Cable Connected
    0x002000: "sensor_fault",  # Cable Life Expired
    0x004000: "sensor_fault",  # Incompatible Cable
    0x008000: "sensor_fault",  # Unrecognized Cable
    0x010000: "sensor_fault",  # Defective Cable
    0x040000: "sensor_fault",  # Sensor Life Expired
    0x080000: "sensor_fault",  # Emitter Temp Out of Range
    0x100000: "sensor_fault",  # Sensor Current Limit Exceeded
}
#: ALARM bits → condition (only the technical ones; limit alarms are Vigil's own business).
ALARM_CONDITIONS: dict[int, str] = {0x0040: "low_battery"}

#: The EXC bit the encoder sets for each condition (first matching bit of EXC_CONDITIONS).
EXC_BIT: dict[str, int] = {
    "no_sensor": 0x000001,
    "sensor_fault": 0x000002,
    "low_perfusion": 0x000004,
    "pulse_search": 0x000008,
    "artifact": 0x000010,
    "probe_off": 0x000020,
}


class LineError(ValueError):
    """A line that does not have the ASCII 1 shape."""


def parse_line(line: str) -> dict[str, str]:
    """Fields of one complete line (``DATE``/``TIME`` plus each ``KEY``); LineError if its shape is wrong."""
    if len(line) < 17 or not _START.fullmatch(line[:17].encode("ascii", "replace")):
        raise LineError("no date and time at the line start")
    fields = {"DATE": line[:8], "TIME": line[9:17]}
    tokens = line[17:].split()
    if not tokens:
        raise LineError("no fields")
    for tok in tokens:
        if not _FIELD.fullmatch(tok):
            raise LineError(f"malformed field {tok[:20]!r}")
        key, _, value = tok.partition("=")
        if key in fields:
            raise LineError(f"field {key} twice")
        fields[key] = value
    if not tokens[-1].startswith("EXC="):
        raise LineError("EXC is not the last field (line cut short?)")
    for key in ("SPO2", "BPM", "ALARM", "EXC"):
        if key not in fields:
            raise LineError(f"no {key} field")
    for key, pattern in (("SPO2", _SPO2), ("BPM", _BPM), ("PI", _PI), ("ALARM", _HEX), ("EXC", _HEX)):
        got = fields.get(key)
        if got is None or pattern.fullmatch(got):
            continue
        if key in ("ALARM", "EXC") or not _NO_VALUE.fullmatch(got):
            raise LineError(f"malformed {key} value {got[:12]!r}")
    return fields


def _number(value: str, pattern: re.Pattern[str]) -> float | None:
    m = pattern.fullmatch(value)
    if m is None:
        return None  # dashes: no valid value
    return float(m.group(1) if m.groups() else m.group(0))


def conditions_of(alarm: int, exc: int) -> set[str]:
    """Technical conditions the ALARM and EXC bit fields report."""
    out = {cond for bit, cond in EXC_CONDITIONS.items() if exc & bit}
    out |= {cond for bit, cond in ALARM_CONDITIONS.items() if alarm & bit}
    return out


class MasimoAscii1Decoder:
    """Decodes a Masimo ASCII 1 byte stream into one ``Numerics`` per line (SpO2, PR, condition changes)."""

    dialect = DIALECT

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self._buf = bytearray()
        self._garbage = GarbageRun()
        self._conditions = ConditionTracker(device_id)
        self.lines = 0  # lines decoded (diagnostics)

    def reset(self) -> None:
        """Forget a partial line (the port was reopened); condition state is kept (the device has not changed)."""
        self._buf.clear()

    def feed(self, data: bytes, now: datetime) -> list[Decoded]:
        """Consume ``data``; return one Numerics per complete good line and Garbage for what was discarded."""
        out: list[Decoded] = []
        self._buf += data
        while True:
            end = _line_end(self._buf)
            if end < 0:
                break
            line = bytes(self._buf[:end])
            del self._buf[: end + 1]
            self._line(line, now, out)
        if len(self._buf) > MAX_LINE:  # no line end for far too long: keep only what may start a line
            m = None
            for found in _START.finditer(self._buf):
                m = found
            cut = m.start() if m is not None and len(self._buf) - m.start() <= MAX_LINE else len(self._buf)
            self._garbage.add(self._buf[:cut], "line too long")
            del self._buf[:cut]
        if self._garbage.size and not self._buf:
            self._garbage.flush(out)
        return out

    def _line(self, raw: bytes, now: datetime, out: list[Decoded]) -> None:
        if not raw.strip(b" \t\x00"):
            return  # blank line (CR LF split in two, or LF CR)
        starts = [m.start() for m in _START.finditer(raw)]
        if not starts:
            self._garbage.add(raw, "no line start")
            return
        if starts[0] > 0:
            self._garbage.add(raw[: starts[0]], "bytes before the line start")
        # Several line starts on one line: all but the last are half lines (their line end was lost).
        bounds = [*starts, len(raw)]
        for a, b in itertools.pairwise(bounds):
            segment = raw[a:b].rstrip(b" \t\x00")
            try:
                fields = parse_line(segment.decode("ascii"))
            except (UnicodeDecodeError, LineError) as e:
                reason = "non-ASCII bytes" if isinstance(e, UnicodeDecodeError) else str(e)
                self._garbage.add(raw[a:b], reason)
                continue
            self._garbage.flush(out)
            out.append(self._numerics(fields, now))
            self.lines += 1

    def _numerics(self, fields: dict[str, str], now: datetime) -> Numerics:
        alarm = int(fields["ALARM"], 16)
        exc = int(fields["EXC"], 16)
        active = conditions_of(alarm, exc)
        alarms = self._conditions.update(active, now)
        quality = oximetry_quality(active)
        spo2 = _number(fields["SPO2"], _SPO2)
        pr = _number(fields["BPM"], _BPM)
        readings = (
            reading(self.device_id, "spo2", spo2, now, now, quality),
            reading(self.device_id, "pr", pr, now, now, quality),
        )
        return Numerics((*alarms, *readings))


def _line_end(buf: bytearray) -> int:
    cr = buf.find(b"\r")
    lf = buf.find(b"\n")
    if cr < 0:
        return lf
    if lf < 0:
        return cr
    return min(cr, lf)


def encode_line(
    t: datetime,
    *,
    spo2: float | None,
    pr: float | None,
    pi: float | None = None,
    conditions: Collection[str] = (),
    alarm: int = 0,
    serial_number: str = "0000000000",
) -> bytes:
    """One Radical-7 style ASCII 1 line (CR LF included) for the emulator; ``None`` values become dashes."""
    exc = 0
    for cond in conditions:
        exc |= EXC_BIT.get(cond, 0)
        if cond == "low_battery":
            alarm |= 0x0040
    invalid = oximetry_quality(conditions) is Quality.INVALID
    spo2_s = "---%" if spo2 is None or invalid else f"{min(100, max(0, round(spo2))):03d}%"
    pr_s = "---" if pr is None or invalid else f"{min(999, max(0, round(pr))):03d}"
    pi_s = "--.--%" if pi is None or invalid else f"{min(99.99, max(0.0, pi)):05.2f}%"
    line = (
        f"{t:%m/%d/%y %H:%M:%S} SN={serial_number[:10]:0>10} SPO2={spo2_s} BPM={pr_s} PI={pi_s} "
        f"SPCO=--.-% SPMET=--.-% DESAT=-- PIDELTA=+-- ALARM={alarm & 0xFFFF:04X} EXC={exc & 0xFFFFFF:06X}\r\n"
    )
    return line.encode("ascii")
