"""Alarm engine contracts: inputs, events, snapshots and the per-bay state.

Inputs are a discriminated union on ``kind``; build them from the monitors' models with the ``from_*``
constructors. They carry no time: the engine has one clock, the ``now`` passed to ``evaluate`` (the
server's receive time, never a device clock, so a skewed device clock cannot stretch or shrink a delay).

Events (``AlarmEvent``) and snapshots (``ActiveAlarm``) are frozen pydantic models that serialise to JSON
as they are. ``BayAlarmState`` is the engine's memory for one bay; treat it as opaque and immutable:
``evaluate`` never changes the state it is given, it returns a new one. It is JSON-serialisable, so a
server may persist it. Its times are Unix seconds (floats), the events' times aware datetimes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from monitors.models import (
    AlarmKind,
    AwareDatetime,
    DeviceAlarm,
    DeviceItem,
    DeviceState,
    DeviceStatus,
    Priority,
    Quality,
    Reading,
)


class Phase(StrEnum):
    """Session phases the alarm engine knows (the session workflow's states)."""

    PLANNED = "planned"
    BASELINE = "baseline"
    PREMEDICATION = "premedication"
    INFUSION = "infusion"
    RECOVERY = "recovery"
    READY_FOR_DISCHARGE = "ready_for_discharge"
    DISCHARGED = "discharged"
    ABORTED = "aborted"


class Scale(StrEnum):
    """Nurse-charted sedation / agitation scales (CLINICAL.md Table 4)."""

    RASS = "rass"
    MOAAS = "moaas"
    POSS = "poss"


#: Allowed values per scale: RASS −5..+4 and MOAA/S 0..5 (CLINICAL.md Table 4 [S]); POSS 1..4, with
#: S ("sleeping, easy to arouse", acceptable) charted as 0 [I].
SCALE_RANGE: dict[Scale, tuple[int, int]] = {Scale.RASS: (-5, 4), Scale.MOAAS: (0, 5), Scale.POSS: (0, 4)}
SCALE_LABEL: dict[Scale, str] = {Scale.RASS: "RASS", Scale.MOAAS: "MOAA/S", Scale.POSS: "POSS"}


def to_datetime(t: float) -> datetime:
    """Unix seconds to an aware UTC datetime."""
    return datetime.fromtimestamp(t, UTC)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- per-patient limits ---------------------------------------------------------------------------------


class LevelOverride(BaseModel):
    """Change one level of one rule: a limit of its condition and/or its persistence delay.

    ``value`` / ``baseline_delta`` / ``baseline_pct`` set the limit of the level's value condition (and
    make it that kind of limit); ``param`` picks the condition when the level compares several parameters
    (e.g. BP HIGH: ``nibp_sys`` or ``nibp_dia``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    rule_id: str = Field(min_length=1, max_length=64)
    level_index: int = Field(default=0, ge=0, le=63)
    param: str | None = Field(default=None, min_length=1, max_length=64)
    value: float | None = None
    baseline_delta: float | None = None
    baseline_pct: float | None = None
    delay_s: float | None = None

    @model_validator(mode="after")
    def _check(self) -> LevelOverride:
        limits = [n for n in ("value", "baseline_delta", "baseline_pct") if getattr(self, n) is not None]
        if len(limits) > 1:
            raise ValueError(f"give at most one of value, baseline_delta, baseline_pct (got {', '.join(limits)})")
        if not limits and self.delay_s is None:
            raise ValueError("nothing to change: give value, baseline_delta, baseline_pct or delay_s")
        if self.param is not None and not limits:
            raise ValueError("param picks the limit to change: give value, baseline_delta or baseline_pct with it")
        return self


# --- inputs -------------------------------------------------------------------------------------------


class ReadingInput(_Frozen):
    """A numeric reading; ``value`` None or quality invalid means "no usable value"."""

    kind: Literal["reading"] = "reading"
    param: str
    value: float | None
    quality: Quality = Quality.VALID
    device_id: str = ""

    @classmethod
    def from_reading(cls, r: Reading) -> ReadingInput:
        """Build from a monitors ``Reading``."""
        return cls(param=r.param, value=r.value, quality=r.quality, device_id=r.device_id)

    @property
    def usable(self) -> float | None:
        """The value if it can be used for alarming, else None."""
        return None if self.quality is Quality.INVALID else self.value


class ReadingsInput(_Frozen):
    """Readings taken together (one NIBP measurement, one monitor message), evaluated as one step.

    Send NIBP sys/dia/mean this way: evaluated one by one, a new systolic would briefly meet the previous
    measurement's diastolic.
    """

    kind: Literal["readings"] = "readings"
    readings: tuple[ReadingInput, ...] = Field(min_length=1)

    @classmethod
    def from_readings(cls, rs: Iterable[Reading]) -> ReadingsInput:
        """Build from monitors ``Reading``s."""
        return cls(readings=tuple(ReadingInput.from_reading(r) for r in rs))


class DeviceStatusInput(_Frozen):
    """A device's connection state changed."""

    kind: Literal["device_status"] = "device_status"
    device_id: str
    state: DeviceState

    @classmethod
    def from_status(cls, s: DeviceStatus) -> DeviceStatusInput:
        """Build from a monitors ``DeviceStatus``."""
        return cls(device_id=s.device_id, state=s.state)


class DeviceConditionInput(_Frozen):
    """A device-reported alarm code started (``active``) or ended: probe off, leads off, apnoea, VF..."""

    kind: Literal["device_condition"] = "device_condition"
    device_id: str
    code: str = Field(min_length=1)
    active: bool = True
    text: str = ""

    @classmethod
    def from_alarm(cls, a: DeviceAlarm) -> DeviceConditionInput:
        """Build from a monitors ``DeviceAlarm`` (the profile decides which codes matter)."""
        return cls(device_id=a.device_id, code=a.code, active=a.active, text=a.text)


class PhaseInput(_Frozen):
    """The session entered a phase."""

    kind: Literal["phase"] = "phase"
    phase: Phase


class ChartInput(_Frozen):
    """The nurse charted a sedation / agitation score."""

    kind: Literal["chart"] = "chart"
    scale: Scale
    value: int
    user: str | None = None

    @model_validator(mode="after")
    def _check(self) -> ChartInput:
        lo, hi = SCALE_RANGE[self.scale]
        if not lo <= self.value <= hi:
            raise ValueError(f"{self.scale.value} must be within {lo}..{hi}, got {self.value}")
        return self


class BaselineInput(_Frozen):
    """A clinician sets a parameter's baseline by hand (overrides the median of the baseline phase)."""

    kind: Literal["baseline"] = "baseline"
    param: str
    value: float
    user: str | None = None


class AckInput(_Frozen):
    """A user acknowledges one alarm (by rule id or alarm id) or all active alarms (``rule_id`` "all")."""

    kind: Literal["ack"] = "ack"
    rule_id: str = "all"
    user: str = Field(min_length=1)


class AudioPauseInput(_Frozen):
    """A user pauses alarm audio; ``duration_s`` None takes the profile default (capped at its maximum)."""

    kind: Literal["audio_pause"] = "audio_pause"
    user: str = Field(min_length=1)
    duration_s: float | None = Field(default=None, gt=0)


class AudioResumeInput(_Frozen):
    """A user ends an audio pause early."""

    kind: Literal["audio_resume"] = "audio_resume"
    user: str = Field(min_length=1)


class LimitsInput(_Frozen):
    """The patient's own limits (a physician's changes to the profile's levels; empty: the profile's). The
    caller evaluates with a profile that has them applied (app/alarms/overrides.py); the state keeps them,
    so whoever evaluates the bay next, here or on another instance, uses the same limits."""

    kind: Literal["limits"] = "limits"
    overrides: tuple[LevelOverride, ...] = ()
    user: str | None = None


class Tick(_Frozen):
    """Nothing happened: advance timers (persistence, staleness, escalation, audio pause) to ``now``."""

    kind: Literal["tick"] = "tick"


AlarmInput = Annotated[
    ReadingInput
    | ReadingsInput
    | DeviceStatusInput
    | DeviceConditionInput
    | PhaseInput
    | ChartInput
    | BaselineInput
    | AckInput
    | AudioPauseInput
    | AudioResumeInput
    | LimitsInput
    | Tick,
    Field(discriminator="kind"),
]
"""Anything ``evaluate`` accepts."""


def to_input(item: DeviceItem) -> AlarmInput | None:
    """The engine input for what an adapter yields (None for waveforms and raw messages)."""
    if isinstance(item, Reading):
        return ReadingInput.from_reading(item)
    if isinstance(item, DeviceStatus):
        return DeviceStatusInput.from_status(item)
    if isinstance(item, DeviceAlarm):
        return DeviceConditionInput.from_alarm(item)
    return None


# --- events and snapshots -----------------------------------------------------------------------------


class EventKind(StrEnum):
    """What happened to an alarm (or to the audio)."""

    RAISED = "raised"
    PRIORITY_CHANGED = "priority_changed"  # the condition got worse or better
    ESCALATED = "escalated"  # unacknowledged too long: re-announce and notify
    CONDITION_ENDED = "condition_ended"  # the condition is gone but the alarm is latched until acknowledged
    CLEARED = "cleared"
    ACKNOWLEDGED = "acknowledged"
    CONFIRMATION_REQUESTED = "confirmation_requested"  # e.g. a repeat NIBP is due by ``due``
    AUDIO_PAUSED = "audio_paused"
    AUDIO_RESUMED = "audio_resumed"


class AlarmEvent(_Frozen):
    """One alarm event, as logged, stored and published."""

    kind: EventKind
    t: AwareDatetime
    rule_id: str | None = None  # None for audio events
    alarm_id: str | None = None  # one id per alarm occurrence, from raised to cleared
    row: str | None = None  # CLINICAL.md Table 1 row
    priority: Priority | None = None
    previous_priority: Priority | None = None
    category: AlarmKind | None = None
    text: str = ""
    values: dict[str, float | None] = Field(default_factory=dict)  # the values that triggered it
    user: str | None = None
    notify: str | None = None  # escalation target, e.g. "physician"
    due: AwareDatetime | None = None  # repeat measurement due, or audio pause end
    time_to_ack_s: float | None = None


class ActiveAlarm(_Frozen):
    """An alarm currently shown (snapshot for the bedside, station and API)."""

    alarm_id: str
    rule_id: str
    row: str
    priority: Priority
    category: AlarmKind
    text: str
    values: dict[str, float | None]
    raised_at: AwareDatetime
    priority_since: AwareDatetime
    condition_priority: Priority | None  # None: the condition ended, the alarm is latched
    latched: bool  # shown at a higher priority than its condition (or after it ended) until acknowledged
    acknowledged_at: AwareDatetime | None
    acknowledged_by: str | None
    escalated_to: tuple[str, ...]


# --- state --------------------------------------------------------------------------------------------


class Sample(BaseModel):
    """The latest sample of one parameter or scale (value None: no usable value)."""

    value: float | None
    t: float
    questionable: bool = False  # quality "questionable" (motion, low perfusion): see Level.questionable_delay_s


class LevelState(BaseModel):
    """Persistence bookkeeping of one level of one rule."""

    running: bool = False  # the condition holds (possibly paused on missing data)
    elapsed: float = 0.0  # seconds the condition has held
    last: float = 0.0  # when ``elapsed`` was last brought up to date
    paused: bool = False  # the condition is unknown (missing data): the timer neither runs nor resets
    valid_until: float | None = None  # the data behind the last "holds" expire then
    count: int = 0  # consecutive new samples for which the condition held
    sample_t: float | None = None  # time of the newest sample counted
    asserted: bool = False
    requested: bool = False  # a repeat measurement was requested for this run
    applicable_since: float | None = None  # when the level's phases were entered


class AlarmRecord(BaseModel):
    """An active alarm."""

    alarm_id: str
    rule_id: str
    row: str
    category: AlarmKind
    priority: Priority
    condition_priority: Priority | None
    text: str
    values: dict[str, float | None]
    raised_at: float
    priority_since: float  # when it reached its current priority (escalation clock)
    unacked_since: float  # when it last became unacknowledged (time-to-acknowledge clock)
    acked_at: float | None = None
    acked_by: str | None = None
    escalated: list[Priority] = Field(default_factory=list)  # priorities already escalated
    notified: list[str] = Field(default_factory=list)
    held: bool = False  # priority raised by escalation: held until acknowledged


class RuleState(BaseModel):
    """Per-rule state: one ``LevelState`` per level and the active alarm, if any."""

    levels: list[LevelState]
    alarm: AlarmRecord | None = None


class BayAlarmState(BaseModel):
    """Everything the engine remembers about one bay. Opaque; ``evaluate`` returns a new one."""

    profile_id: str
    now: float | None = None  # time of the last evaluation (the engine's clock never goes back)
    phase: Phase = Phase.PLANNED
    seq: int = 0  # alarm occurrences so far (alarm ids)
    samples: dict[str, Sample] = Field(default_factory=dict)
    last_valid: dict[str, float] = Field(default_factory=dict)
    last_update: dict[str, float] = Field(default_factory=dict)
    baseline_samples: dict[str, list[tuple[float, float]]] = Field(default_factory=dict)  # (t, value)
    baselines: dict[str, float] = Field(default_factory=dict)
    manual_baselines: dict[str, float] = Field(default_factory=dict)
    devices: dict[str, DeviceState] = Field(default_factory=dict)
    conditions: dict[str, dict[str, float]] = Field(default_factory=dict)  # device_id -> code -> since
    rules: dict[str, RuleState] = Field(default_factory=dict)
    audio_paused_until: float | None = None
    audio_paused_by: str | None = None
    #: The patient's own limits in force (``LimitsInput``); empty: the profile's.
    limits: tuple[LevelOverride, ...] = ()
