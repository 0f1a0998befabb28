"""The websocket protocol: one envelope, a discriminated union on ``type``.

Server → client. Every message carries ``v`` (envelope version), ``seq`` and ``t`` (server time, Unix
seconds). ``seq`` is the hub's sequence number: strictly increasing across everything one server
instance publishes, and delivered in increasing order, so the highest ``seq`` a client has seen on
``snapshot``, ``vitals``, ``wave``, ``status`` and ``device_alarm`` says exactly where it left off.
``hello`` carries the point the stream continues from (the resume point, or the snapshot's seq);
``heartbeat`` and ``error`` carry the hub's latest seq for information only: do not resume from them.
``epoch`` (in ``hello``) names the server instance; a seq from another epoch is meaningless.
Device times (``VitalOut.t``, ``Wave.t0``) are on the device's clock; ``tr`` and ``t`` on the server's.

1. On connect the client sends ``subscribe`` (bays, wave detail, optional resume point).
2. The server answers ``hello`` (epoch, budgets, whether it resumed), then either the missed deltas
   (resume) or a ``snapshot``, then deltas: ``vitals``, ``wave``, ``status``, ``device_alarm``, ``alarms``
   (the rule engine's events plus the bay's full active list, so a client never has to merge).
3. ``heartbeat`` is sent when nothing else was sent for a second; its ``seq`` is the latest published.
4. A client that cannot keep up gets a fresh ``snapshot`` (``reason`` "resync") in place of what it
   missed; waveform frames may be dropped for it (it sees a time gap), numerics are conflated to the
   latest, status and alarm messages are never dropped.
5. ``error`` reports a bad client message; the connection stays open unless ``fatal``.

Client → server: ``subscribe`` (may be sent again at any time to change bays or detail).

Framing: one message per websocket text frame, unless the client subscribed with ``batch`` true: then each
frame is a JSON array of one or more messages, in the order they would have been sent one by one (a busy
connection costs one frame per send rather than one per message). A batching client should still accept a
bare object (anything sent before its subscribe took effect, e.g. an error answering a bad subscribe).

Times are Unix seconds (float) on the wire: cheap to encode, exact enough, trivial in JavaScript.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

ENVELOPE_VERSION: Literal[1] = 1


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---- payload parts -------------------------------------------------------------------------------


class VitalOut(_Wire):
    """One numeric as the browser sees it; ``value`` null means "no valid value" (never a zero)."""

    param: str
    value: float | None
    unit: str
    quality: Literal["valid", "questionable", "invalid"]
    t: float  # device time of the observation
    tr: float  # server receipt time
    device_id: str


class DeviceOut(_Wire):
    """A device's connection state."""

    device_id: str
    state: Literal["connecting", "online", "stale", "offline"]
    since: float
    detail: str = ""
    last_data: float | None = None  # server time of the last item received from it


class DeviceAlarmOut(_Wire):
    """An alarm or INOP reported by the device itself."""

    device_id: str
    code: str
    priority: Literal["high", "medium", "low", "info"]
    alarm_kind: Literal["physiological", "technical", "advisory"]
    text: str
    t: float
    active: bool


class AlarmOut(_Wire):
    """An active alarm of Vigil's own rule engine (IEC 60601-1-8 priority; latched until acknowledged)."""

    alarm_id: str
    rule_id: str
    row: str  # CLINICAL.md Table 1 row the rule implements
    priority: Literal["high", "medium", "low", "info"]  # info: a log marker (e.g. sentinel event), no signal
    category: Literal["physiological", "technical", "advisory"]
    text: str  # e.g. "SpO2 LOW 86 < 90"
    values: dict[str, float | None]
    raised_at: float
    priority_since: float
    condition_active: bool  # False: the condition ended but the alarm is latched until acknowledged
    latched: bool
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None


class AlarmEventOut(_Wire):
    """Something that happened to an alarm (raised, escalated, acknowledged, cleared, audio paused ...)."""

    kind: str
    t: float
    rule_id: str | None = None
    alarm_id: str | None = None
    priority: Literal["high", "medium", "low", "info"] | None = None
    previous_priority: Literal["high", "medium", "low", "info"] | None = None
    text: str = ""
    values: dict[str, float | None] = Field(default_factory=dict)
    user: str | None = None
    notify: str | None = None  # e.g. "physician": escalations to show on remote screens with sound
    due: float | None = None
    time_to_ack_s: float | None = None


class BayOut(_Wire):
    """Everything a screen needs to draw one bay from scratch."""

    bay: str
    label: str
    devices: list[DeviceOut]
    vitals: list[VitalOut]
    device_alarms: list[DeviceAlarmOut]
    alarms: list[AlarmOut] = Field(default_factory=list)
    audio_paused_until: float | None = None
    phase: str | None = None


# ---- server → client -----------------------------------------------------------------------------


class _Envelope(_Wire):
    v: Literal[1] = ENVELOPE_VERSION
    seq: int = Field(ge=0)
    t: float


class Hello(_Envelope):
    """First message on every connection."""

    type: Literal["hello"] = "hello"
    epoch: str
    resumed: bool
    stale_after_s: float
    offline_after_s: float
    bays: list[str]  # the bays this connection is subscribed to
    waves: Literal["full", "decimated", "none"]
    replay: bool = False  # true when the stream is a replay of a recorded session, not live


class Snapshot(_Envelope):
    """Full state of the subscribed bays as of ``seq``."""

    type: Literal["snapshot"] = "snapshot"
    reason: Literal["connect", "resync", "resubscribe", "seek"]  # seek: a replay jumped to another time
    bays: list[BayOut]


class Vitals(_Envelope):
    """New numerics from one device of one bay (usually all its 1 Hz numerics at once)."""

    type: Literal["vitals"] = "vitals"
    bay: str
    device_id: str
    readings: list[VitalOut]


class Wave(_Envelope):
    """A block of waveform samples; physical value = sample * gain, in ``unit``."""

    type: Literal["wave"] = "wave"
    bay: str
    device_id: str
    channel: str
    t0: float
    fs: float
    gain: float
    unit: str
    samples: list[int]
    decimated: bool


class Status(_Envelope):
    """A device's connection state changed."""

    type: Literal["status"] = "status"
    bay: str
    device: DeviceOut


class DeviceAlarmMsg(_Envelope):
    """A device reported an alarm (or its end)."""

    type: Literal["device_alarm"] = "device_alarm"
    bay: str
    alarm: DeviceAlarmOut


class Alarms(_Envelope):
    """The rule engine's events for a bay, with the bay's complete list of active alarms after them."""

    type: Literal["alarms"] = "alarms"
    bay: str
    events: list[AlarmEventOut]
    active: list[AlarmOut]
    audio_paused_until: float | None = None
    phase: str | None = None


class ReplayState(_Envelope):
    """A replay's transport state (replay streams only): sent on every control change and every second while
    playing. ``position``, ``start`` and ``end`` are recorded times (Unix seconds); ``t`` equals ``position``."""

    type: Literal["replay"] = "replay"
    replay_id: str
    session_id: str
    state: Literal["playing", "paused", "ended"]
    speed: float
    position: float
    start: float
    end: float


class Heartbeat(_Envelope):
    """Sent on an otherwise idle connection once a second; proves the link and carries server time."""

    type: Literal["heartbeat"] = "heartbeat"


class Error(_Envelope):
    """The server could not act on something the client sent."""

    type: Literal["error"] = "error"
    code: Literal["bad_message", "unknown_bay", "forbidden", "internal"]
    message: str
    fatal: bool = False


ServerMessage = Annotated[
    Hello | Snapshot | Vitals | Wave | Status | DeviceAlarmMsg | Alarms | ReplayState | Heartbeat | Error,
    Field(discriminator="type"),
]
SERVER_MESSAGE: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)


# ---- client → server -----------------------------------------------------------------------------


class ResumePoint(_Wire):
    """Where a reconnecting client left off."""

    epoch: str
    seq: int = Field(ge=0)


class Subscribe(_Wire):
    """Which bays to receive, and at what waveform detail.

    ``bays`` null means every bay. ``waves``: "full" (bedside: full-rate waveforms), "decimated"
    (station: at most 25 Hz), "none" (numerics, status and alarms only). ``batch``: frames carry JSON arrays
    of messages (see the module docstring).
    """

    type: Literal["subscribe"] = "subscribe"
    bays: list[str] | None = Field(default=None, max_length=256)
    waves: Literal["full", "decimated", "none"] = "full"
    resume: ResumePoint | None = None
    batch: bool = False


ClientMessage = Annotated[Subscribe, Field(discriminator="type")]
CLIENT_MESSAGE: TypeAdapter[Subscribe] = TypeAdapter(Subscribe)
