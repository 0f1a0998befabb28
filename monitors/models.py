"""Reading contracts: what every adapter yields, whatever wire it speaks.

All models are frozen pydantic models. Times are timezone-aware UTC datetimes; naive datetimes are refused
so that no adapter can smuggle in local time. Values are validated against the parameter catalogue:
a reading carries the catalogue's UCUM unit (adapters convert), a number only when it is a real
measurement (``quality`` invalid means "no value", never a zero), and nothing physiologically impossible.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from monitors import parameters
from monitors.parameters import Kind


def _aware(t: datetime) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    return t


AwareDatetime = Annotated[datetime, AfterValidator(_aware)]
DeviceId = Annotated[str, Field(min_length=1, max_length=128)]


class Quality(StrEnum):
    """How far a value can be trusted."""

    VALID = "valid"
    QUESTIONABLE = "questionable"  # shown with "?" (e.g. low perfusion, motion)
    INVALID = "invalid"  # no usable value: artifact, probe off, "cannot be obtained"


class DeviceState(StrEnum):
    """Connection state of one device as the server sees it."""

    CONNECTING = "connecting"
    ONLINE = "online"
    STALE = "stale"  # connected, or so we believe, but no data for longer than the stale budget
    OFFLINE = "offline"  # no data for longer than the offline budget, or the link is down


class Priority(StrEnum):
    """IEC 60601-1-8 alarm priorities, plus ``info`` for device messages that are not alarms."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


class AlarmKind(StrEnum):
    """Physiological (patient), technical (equipment) or advisory."""

    PHYSIOLOGICAL = "physiological"
    TECHNICAL = "technical"
    ADVISORY = "advisory"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Reading(_Frozen):
    """One numeric observation of one parameter from one device."""

    kind: Literal["reading"] = "reading"
    device_id: DeviceId
    param: str
    value: float | None
    unit: str
    t_device: AwareDatetime
    t_received: AwareDatetime
    quality: Quality = Quality.VALID

    @model_validator(mode="after")
    def _check(self) -> Reading:
        p = parameters.get(self.param)
        if p.kind is not Kind.NUMERIC:
            raise ValueError(f"{self.param} is a waveform, not a numeric")
        if self.unit != p.ucum:
            raise ValueError(f"{self.param} must be in {p.ucum!r}, got {self.unit!r}")
        if self.value is None:
            if self.quality is not Quality.INVALID:
                raise ValueError("a reading without a value must have quality 'invalid'")
        elif self.value != self.value or not p.is_plausible(self.value):  # NaN or impossible
            raise ValueError(f"{self.param}={self.value} is outside the plausible range {p.plausible}")
        return self


class WaveformChunk(_Frozen):
    """A block of evenly sampled waveform data; ``samples * gain`` is in ``unit``."""

    kind: Literal["wave"] = "wave"
    device_id: DeviceId
    channel: str
    t0: AwareDatetime
    fs: float = Field(gt=0, le=10_000)
    samples: tuple[int, ...] = Field(min_length=1, max_length=100_000)
    unit: str
    gain: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> WaveformChunk:
        p = parameters.get(self.channel)
        if p.kind is not Kind.WAVEFORM:
            raise ValueError(f"{self.channel} is a numeric, not a waveform")
        if self.unit != p.ucum:
            raise ValueError(f"{self.channel} must be in {p.ucum!r}, got {self.unit!r}")
        for s in self.samples:
            if not -32768 <= s <= 32767:
                raise ValueError("waveform samples must fit in int16")
        return self

    @property
    def duration(self) -> timedelta:
        """Time covered by the chunk."""
        return timedelta(seconds=len(self.samples) / self.fs)


class DeviceStatus(_Frozen):
    """A device's connection state changed (or is being reported)."""

    kind: Literal["status"] = "status"
    device_id: DeviceId
    state: DeviceState
    since: AwareDatetime
    detail: str = ""


class DeviceAlarm(_Frozen):
    """An alarm or INOP the device itself reports (e.g. ORU^R40, a serial status bit)."""

    kind: Literal["device_alarm"] = "device_alarm"
    device_id: DeviceId
    code: str = Field(min_length=1)
    priority: Priority
    text: str
    t: AwareDatetime
    alarm_kind: AlarmKind = AlarmKind.TECHNICAL
    active: bool = True  # False when the device reports the condition ended


class RawMessage(_Frozen):
    """A device message exactly as it arrived (kept for audit and re-processing, whatever its fate).

    ``outcome`` is what the receiver answered or decided (e.g. HL7 AA/AE/AR); ``detail`` says why.
    """

    kind: Literal["raw"] = "raw"
    protocol: Literal["hl7v2", "serial"]
    source: str  # peer address or port
    received: AwareDatetime
    payload: bytes
    control_id: str | None = None
    outcome: str
    detail: str = ""
    device_id: str | None = None


DeviceItem = Annotated[Reading | WaveformChunk | DeviceStatus | DeviceAlarm | RawMessage, Field(discriminator="kind")]
"""Anything an adapter may yield."""
