"""A generic line dialect for devices Vigil has no decoder for yet: ``key=value`` fields, one report per line.

Format (ASCII or UTF-8; a line ends with LF, CR or CR LF; at most ``MAX_LINE`` bytes)::

    # a comment; blank lines are ignored
    spo2=97 pr=78 rr=14 etco2=38 cond=motion
    hr=72; nibp_sys=121 nibp_dia=79 nibp_mean=93
    spo2=-- pr=-- cond=probe_off
    wave=pleth fs=75 samples=120,131,150,170,168,152

- Fields are separated by spaces, tabs or semicolons (commas separate list items); keys are case-insensitive.
- A numeric key is a parameter catalogue key (``hr``, ``spo2``, ``pr``, ``rr``, ``etco2``, ``temp``,
  ``nibp_sys`` ...) or an alias (``SPO2``, ``BPM``/``PULSE`` → pr, ``HR``, ``RESP`` → rr, ``CO2`` → etco2,
  ``T`` → temp); its value is a plain decimal number in the catalogue's UCUM unit (no unit suffix).
- ``-``, ``--``, ``---``, ``nan``, ``null``, ``none`` or an empty value mean "no value"; so does a value outside
  the catalogue's plausible range. Either becomes a reading with quality ``invalid``, never a number.
- ``cond=a,b`` lists the technical conditions active now (``probe_off``, ``no_sensor``, ``sensor_fault``,
  ``pulse_search``, ``artifact`` or ``motion``, ``low_perfusion``, ``low_battery``, ``leads_off``,
  ``co2_line``); ``cond=`` (empty) or ``cond=none`` means none. Conditions start and end as DeviceAlarms; a
  line without ``cond`` leaves them as they were.
- A ``wave=<channel>`` line carries waveform samples: ``fs`` (Hz), optional ``gain`` (unit per count,
  default 1) and ``samples`` (integers, comma-separated, int16). Samples are timed back from arrival.
- Unknown keys are ignored (counted in ``unknown_keys``); a line with no usable field is Garbage.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta

from monitors import parameters
from monitors.models import WaveformChunk
from monitors.parameters import Kind
from monitors.protocols.serial_common import (
    CONDITIONS,
    ConditionTracker,
    Decoded,
    GarbageRun,
    Numerics,
    oximetry_quality,
    reading,
)

DIALECT = "keyvalue"
MAX_LINE = 16_384

ALIASES: dict[str, str] = {
    "bpm": "pr",
    "pulse": "pr",
    "pulse_rate": "pr",
    "heart_rate": "hr",
    "resp": "rr",
    "co2": "etco2",
    "t": "temp",
    "sys": "nibp_sys",
    "dia": "nibp_dia",
    "map": "nibp_mean",
}
COND_ALIASES: dict[str, str] = {"motion": "artifact"}
_NO_VALUE = {"", "-", "--", "---", "nan", "null", "none", "n/a"}
_SPLIT = re.compile(r"[\s;]+")
_LIST = re.compile(r"[\s,;]+")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def _param(key: str) -> str | None:
    key = ALIASES.get(key, key)
    p = parameters.CATALOGUE.get(key)
    return key if p is not None and p.kind is Kind.NUMERIC else None


class KeyValueDecoder:
    """Decodes the generic ``key=value`` line dialect (see the module docstring)."""

    dialect = DIALECT

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self._buf = bytearray()
        self._garbage = GarbageRun()
        self._conditions = ConditionTracker(device_id)
        self.unknown_keys: dict[str, int] = {}
        self.lines = 0

    def reset(self) -> None:
        """Forget a partial line."""
        self._buf.clear()

    def feed(self, data: bytes, now: datetime) -> list[Decoded]:
        """Consume ``data``; return one item per good line and Garbage for bad ones."""
        out: list[Decoded] = []
        self._buf += data
        while True:
            cr = self._buf.find(b"\r")
            lf = self._buf.find(b"\n")
            end = lf if cr < 0 else cr if lf < 0 else min(cr, lf)
            if end < 0:
                break
            raw = bytes(self._buf[:end])
            del self._buf[: end + 1]
            if len(raw) > MAX_LINE:
                self._garbage.add(raw, "line too long")
                continue
            item = self._line(raw, now)
            if isinstance(item, str):
                self._garbage.add(raw, item)
            elif item is not None:
                self._garbage.flush(out)
                out.append(item)
                self.lines += 1
        if len(self._buf) > MAX_LINE:
            self._garbage.add(self._buf, "line too long")
            self._buf.clear()
        if self._garbage.size and not self._buf:
            self._garbage.flush(out)
        return out

    def _line(self, raw: bytes, now: datetime) -> Numerics | WaveformChunk | str | None:
        """The line's item, None for a blank or comment line, or why it is garbage."""
        try:
            text = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            return "not UTF-8"
        if not text or text.startswith("#"):
            return None
        fields: dict[str, str] = {}
        for tok in _SPLIT.split(text):
            if not tok:
                continue
            key, eq, value = tok.partition("=")
            if not eq or not key:
                return f"not key=value: {tok[:20]!r}"
            fields[key.strip().lower()] = value.strip()
        if "wave" in fields:
            return self._wave(fields, now)
        return self._numerics(fields, now)

    def _numerics(self, fields: Mapping[str, str], now: datetime) -> Numerics | str:
        values: dict[str, float | None] = {}
        for key, value in fields.items():
            if key == "cond":
                continue
            param = _param(key)
            if param is None:
                self.unknown_keys[key] = self.unknown_keys.get(key, 0) + 1
                continue
            values[param] = _value(value)
        alarms = []
        active = set(self._conditions.active)
        if "cond" in fields:
            names = {COND_ALIASES.get(c, c) for c in _LIST.split(fields["cond"].lower()) if c and c != "none"}
            unknown = names - CONDITIONS.keys()
            for c in unknown:
                self.unknown_keys[f"cond:{c}"] = self.unknown_keys.get(f"cond:{c}", 0) + 1
            active = names & CONDITIONS.keys()
            alarms = self._conditions.update(active, now)
        if not values and not alarms and "cond" not in fields:
            return "no known key"
        quality = oximetry_quality(active)
        readings = tuple(
            reading(self.device_id, p, v, now, now, quality if p in ("spo2", "pr") else _VALID)
            for p, v in values.items()
        )
        return Numerics((*alarms, *readings))

    def _wave(self, fields: Mapping[str, str], now: datetime) -> WaveformChunk | str:
        channel = ALIASES.get(fields["wave"].lower(), fields["wave"].lower())
        p = parameters.CATALOGUE.get(channel)
        if p is None or p.kind is not Kind.WAVEFORM:
            return f"unknown waveform {channel[:20]!r}"
        fs = _value(fields.get("fs", ""))
        gain = _value(fields.get("gain", "1"))
        if fs is None or not 0 < fs <= 10_000 or gain is None or gain <= 0:
            return "wave line needs fs in (0, 10000] and a positive gain"
        try:
            samples = tuple(int(s) for s in fields.get("samples", "").split(",") if s)
        except ValueError:
            return "samples must be integers"
        if not samples or len(samples) > 100_000 or any(not -32768 <= s <= 32767 for s in samples):
            return "samples must be 1..100000 int16 values"
        return WaveformChunk(
            device_id=self.device_id,
            channel=channel,
            t0=now - timedelta(seconds=len(samples) / fs),
            fs=fs,
            samples=samples,
            unit=p.ucum,
            gain=gain,
        )


_VALID = oximetry_quality(())


def _value(text: str) -> float | None:
    """A number, or None for a no-value marker or anything that is not a plain finite decimal."""
    if text.lower() in _NO_VALUE or not _NUMBER.fullmatch(text):
        return None
    v = float(text)
    return v if math.isfinite(v) else None


def encode(values: Mapping[str, float | None], conditions: set[str] | None = None) -> bytes:
    """One numerics line (LF-terminated) for the emulator; ``conditions`` None leaves ``cond`` out."""
    parts = [f"{k}={'--' if v is None else f'{v:g}'}" for k, v in values.items()]
    if conditions is not None:
        parts.append("cond=" + (",".join(sorted(conditions)) or "none"))
    return (" ".join(parts) + "\n").encode("ascii")


def encode_wave(channel: str, fs: float, samples: list[int] | tuple[int, ...], gain: float = 1.0) -> bytes:
    """One waveform line (LF-terminated)."""
    return f"wave={channel} fs={fs:g} gain={gain:g} samples={','.join(map(str, samples))}\n".encode("ascii")
