"""What a recorded session is, as read back from the store (the contract for replay, report and export).

A session owns its bay from creation to discharge (one open session per bay is enforced by the workflow),
so "the session's data" is everything recorded for that bay between the session's start and end, in
device time. Waveforms are loaded on demand (a 90-minute session holds ~2.4 million samples).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.alarms.model import AlarmEvent
from app.sessions.model import Patient
from app.sessions.workflow import SessionState
from monitors.models import DeviceAlarm, DeviceStatus, Reading


@dataclass(frozen=True, slots=True)
class WaveSegment:
    """A stored block of one waveform channel (about one second): ``samples[i] * gain`` in ``unit`` at
    ``t0 + i / fs``."""

    bay: str | None
    device_id: str
    channel: str
    t0: datetime
    fs: float
    unit: str
    gain: float
    samples: tuple[int, ...]

    @property
    def t_end(self) -> datetime:
        """Time just after the last sample."""
        return self.t0 + timedelta(seconds=len(self.samples) / self.fs)


@dataclass(frozen=True, slots=True)
class RecordingSummary:
    """One recorded session in a list (review page picker, API)."""

    session_id: str
    patient_id: str
    patient_name: str
    identifier: str
    bay: str
    start: datetime
    end: datetime | None  # None while the session is still open
    phase: str  # current/final phase
    final: bool


@dataclass(frozen=True, slots=True)
class SessionRecording:
    """Everything recorded for one session except the waveforms (see ``load_waves``)."""

    session: SessionState  # the workflow fold: phases, pump events, chart, baseline, plan, events
    patient: Patient
    bay: str
    start: datetime  # session created
    end: datetime  # discharged/aborted, or the time of loading while still open
    final: bool
    readings: list[Reading] = field(default_factory=list)  # numerics of the bay, device-time order
    statuses: list[DeviceStatus] = field(default_factory=list)  # device link changes, time order
    device_alarms: list[DeviceAlarm] = field(default_factory=list)  # device-reported alarms, time order
    alarm_events: list[AlarmEvent] = field(default_factory=list)  # rule-engine events incl. acks, time order
