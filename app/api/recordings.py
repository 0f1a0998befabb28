"""REST routes for recorded sessions (the review page) and their replays.

Times are Unix seconds (float), as on the websocket, so a timeline time can be sent back as a seek target.

- ``GET /api/recordings``: every recorded session, newest first.
- ``GET /api/recordings/{sid}/timeline``: everything the review page draws in one request: patient, phases,
  every numeric as a column series (``null`` where the value was invalid), alarm events, device alarms,
  chart entries and pump events.
- ``POST /api/replays`` ``{session_id, position?, speed?, play?}``: open a replay (paused at the start unless
  asked otherwise); its stream is ``ws`` (``/ws/replay/<id>``, the live protocol with ``hello.replay`` true
  and ``replay`` transport messages).
- ``GET /api/replays/{rid}``, ``POST /api/replays/{rid}/control`` ``{action: play|pause|seek|speed, t?, speed?}``,
  ``DELETE /api/replays/{rid}``.

Refusals answer 4xx with ``{"detail": {"code", "reason"}}`` (404 unknown session/replay, 422 bad position or
speed, 429 too many open replays); malformed bodies answer FastAPI's 422.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field

from app.alarming import event_out
from app.api.deps import CurrentUser, Svc
from app.recording.load import list_recordings, load_recording
from app.recording.replay import MAX_SPEED, MIN_SPEED, ReplayPlayer, ReplayRegistry
from app.services import Services
from app.sessions.model import (
    AssessmentItem,
    ChartEntry,
    MedicationItem,
    NoteItem,
    PainItem,
    Refused,
    RetractionItem,
    SedationItem,
    SideEffectsItem,
)
from app.wire import AlarmEventOut, DeviceAlarmOut
from monitors import parameters
from monitors.models import Quality

router = APIRouter(tags=["recordings"])


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class RecordingOut(_Out):
    """One recorded session in the list."""

    session_id: str
    patient_id: str
    patient_name: str
    identifier: str
    bay: str
    start: float
    end: float | None = Field(description="None while the session is still open")
    phase: str
    final: bool


class PatientOut(_Out):
    """Who the session was for."""

    id: str
    name: str
    identifier: str
    birth_date: date
    weight_kg: float | None = Field(description="The session's weight (weighed that day), else the patient's usual")


class PhaseSpan(_Out):
    """One phase of the session, from when it was entered until the next (or the session's end)."""

    phase: str
    start: float
    end: float


class SeriesOut(_Out):
    """One numeric over the session, columnar: ``v[i]`` at ``t[i]``; null where there was no valid value."""

    label: str
    unit: str
    t: list[float]
    v: list[float | None]


class ChartOut(_Out):
    """A chart entry in force (corrections applied, retractions left out), at its observation time."""

    t: float
    kind: str  # sedation | pain | side_effects | medication | note | assessment
    text: str
    user: str
    seq: int


class PumpOut(_Out):
    """An infusion event; rates are those in force after it."""

    t: float
    action: str
    mg_per_h: float
    ml_per_h: float
    bolus_mg: float
    user: str


class TimelineOut(_Out):
    """Everything the review page's session timeline needs."""

    session_id: str
    patient: PatientOut
    bay: str
    start: float
    end: float
    final: bool
    phases: list[PhaseSpan]
    series: dict[str, SeriesOut]
    alarms: list[AlarmEventOut]
    device_alarms: list[DeviceAlarmOut]
    chart: list[ChartOut]
    pump: list[PumpOut]


class ReplayCreate(BaseModel):
    """Open a replay of a recorded session."""

    model_config = ConfigDict(extra="forbid")
    session_id: str = Field(min_length=1, max_length=128)
    position: float | None = Field(default=None, description="Start here (Unix s) instead of the session start")
    speed: float = Field(default=1.0, ge=MIN_SPEED, le=MAX_SPEED)
    play: bool = False


class ReplayControl(BaseModel):
    """A transport control: ``seek`` needs ``t`` (Unix s within the session), ``speed`` needs ``speed``."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["play", "pause", "seek", "speed"]
    t: float | None = None
    speed: float | None = Field(default=None, ge=MIN_SPEED, le=MAX_SPEED)


class ReplayOut(_Out):
    """A replay and where its stream is."""

    replay_id: str
    session_id: str
    bay: str
    label: str
    start: float
    end: float
    position: float
    speed: float
    state: Literal["playing", "paused", "ended"]
    ws: str


def _replays(svc: Services) -> ReplayRegistry:
    if svc.replays is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "replays are not running")
    return svc.replays


def replay_out(p: ReplayPlayer) -> ReplayOut:
    """Wire form of a player."""
    return ReplayOut(
        replay_id=p.replay_id,
        session_id=p.session_id,
        bay=p.bay,
        label=p.label,
        start=p.start,
        end=p.end,
        position=p.position,
        speed=p.speed,
        state=p.state,
        ws=f"/ws/replay/{p.replay_id}",
    )


def chart_text(e: ChartEntry) -> str:
    """A one-line summary of a chart entry."""
    item = e.item
    if isinstance(item, SedationItem):
        parts = ([] if item.rass is None else [f"RASS {item.rass:+d}"]) + (
            [] if item.moaas is None else [f"MOAA/S {item.moaas}"]
        )
        return " · ".join(parts)
    if isinstance(item, PainItem):
        return f"Pain NRS {item.nrs}"
    if isinstance(item, SideEffectsItem):
        effects = ", ".join(f"{k.value.replace('_', ' ')} ({v.value})" for k, v in item.effects.items())
        text = f"Side effects: {effects}" if effects else "No side effects"
        return f"{text} — {item.detail}" if item.detail else text
    if isinstance(item, MedicationItem):
        return f"{item.drug} {item.dose:g} {item.unit} {item.route} ({item.effective_category.value})"
    if isinstance(item, NoteItem):
        return item.text
    if isinstance(item, AssessmentItem):
        given = item.model_dump(exclude_none=True, exclude={"type"})
        return "Assessment: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in given.items())
    assert isinstance(item, RetractionItem)
    return f"Retracted: {item.reason}"


@router.get("/api/recordings")
async def recordings(user: CurrentUser, svc: Svc) -> list[RecordingOut]:
    """Every recorded session with its patient, newest first."""
    return [
        RecordingOut(
            session_id=r.session_id,
            patient_id=r.patient_id,
            patient_name=r.patient_name,
            identifier=r.identifier,
            bay=r.bay,
            start=r.start.timestamp(),
            end=None if r.end is None else r.end.timestamp(),
            phase=r.phase,
            final=r.final,
        )
        for r in await list_recordings(svc.store)
    ]


@router.get("/api/recordings/{session_id}/timeline")
async def timeline(session_id: str, user: CurrentUser, svc: Svc) -> TimelineOut:
    """The whole session for the review page's timeline (404 if there is no such session)."""
    rec = await load_recording(svc.store, session_id)
    s = rec.session
    end = rec.end.timestamp()
    marks = [("planned", rec.start.timestamp())] + [(p.to_phase.value, p.t.timestamp()) for p in s.phases]
    phases = [
        PhaseSpan(phase=ph, start=t, end=max(t, marks[i + 1][1] if i + 1 < len(marks) else end))
        for i, (ph, t) in enumerate(marks)
    ]
    columns: dict[str, tuple[list[float], list[float | None], str]] = {}
    for r in sorted(rec.readings, key=lambda r: r.t_device):
        ts, vs, _ = columns.setdefault(r.param, ([], [], r.unit))
        ts.append(r.t_device.timestamp())
        vs.append(None if r.quality is Quality.INVALID else r.value)
    series = {}
    for param, (ts, vs, unit) in columns.items():
        label = parameters.CATALOGUE[param].label if param in parameters.CATALOGUE else param
        series[param] = SeriesOut(label=label, unit=unit, t=ts, v=vs)
    patient = rec.patient
    return TimelineOut(
        session_id=s.id,
        patient=PatientOut(
            id=patient.id,
            name=patient.name,
            identifier=patient.identifier,
            birth_date=patient.birth_date,
            weight_kg=s.weight_kg if s.weight_kg is not None else patient.weight_kg,
        ),
        bay=rec.bay,
        start=rec.start.timestamp(),
        end=end,
        final=rec.final,
        phases=phases,
        series=series,
        alarms=[event_out(e) for e in rec.alarm_events],
        device_alarms=[
            DeviceAlarmOut(
                device_id=a.device_id,
                code=a.code,
                priority=a.priority.value,
                alarm_kind=a.alarm_kind.value,
                text=a.text,
                t=a.t.timestamp(),
                active=a.active,
            )
            for a in rec.device_alarms
        ],
        chart=[
            ChartOut(t=e.observed_at.timestamp(), kind=e.item.type, text=chart_text(e), user=e.user, seq=e.seq)
            for e in s.effective_chart()
        ],
        pump=[
            PumpOut(
                t=e.t.timestamp(),
                action=e.action.value,
                mg_per_h=e.mg_per_h,
                ml_per_h=e.ml_per_h,
                bolus_mg=e.bolus_mg,
                user=e.user,
            )
            for e in s.pump
        ],
    )


@router.post("/api/replays", status_code=status.HTTP_201_CREATED)
async def create_replay(body: ReplayCreate, user: CurrentUser, svc: Svc) -> ReplayOut:
    """Open a replay of a recorded session (404 unknown session, 422 position outside it, 429 too many)."""
    player = await _replays(svc).create(body.session_id, position=body.position, speed=body.speed, play=body.play)
    return replay_out(player)


@router.get("/api/replays/{replay_id}")
async def get_replay(replay_id: str, user: CurrentUser, svc: Svc) -> ReplayOut:
    """A replay's state (404 if closed or expired)."""
    return replay_out(_replays(svc).require(replay_id))


@router.post("/api/replays/{replay_id}/control")
async def control_replay(replay_id: str, body: ReplayControl, user: CurrentUser, svc: Svc) -> ReplayOut:
    """Play, pause, seek (``t``) or change speed (``speed``); answers the state after it."""
    p = _replays(svc).require(replay_id)
    if body.action == "play":
        p.play()
    elif body.action == "pause":
        p.pause()
    elif body.action == "seek":
        if body.t is None:
            raise Refused("missing_t", "A seek needs t (Unix seconds within the session).", status=422)
        p.seek(body.t)
    else:
        if body.speed is None:
            raise Refused("missing_speed", f"A speed change needs speed ({MIN_SPEED:g}..{MAX_SPEED:g}).", status=422)
        p.set_speed(body.speed)
    return replay_out(p)


@router.delete("/api/replays/{replay_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_replay(replay_id: str, user: CurrentUser, svc: Svc) -> Response:
    """Close a replay (its clients are disconnected); 404 if there is none."""
    if not await _replays(svc).remove(replay_id):
        raise Refused("no_such_replay", f"No replay {replay_id!r}.", status=404)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
