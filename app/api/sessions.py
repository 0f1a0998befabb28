"""REST routes for patients and infusion sessions (issue 7).

Every command answers with the events it recorded and the session as it now is. A refused command answers
4xx with ``{"detail": {"code": ..., "reason": ...}}`` and changes nothing: 404 unknown patient / session /
bay, 409 not allowed in the current state (invalid transition, gate blocking, pump state), 422 invalid
input or a dose over a limit, 403 an override by someone who is not a physician, 503 not stored durably.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import CurrentUser, Svc, User
from app.security.roles import Perm
from app.services import Services
from app.sessions import dosing
from app.sessions.model import (
    Actor,
    ChartCommand,
    Command,
    InfusionPlan,
    NewPatient,
    NewSession,
    Patient,
    PumpCommand,
    RecordBaseline,
    Refused,
    SessionEvent,
    Transition,
    Vitals,
)
from app.sessions.scores import DISCHARGE_INSTRUCTIONS
from app.sessions.service import Instruction, PatientHistory, SessionService, SessionSummary, SessionView

router = APIRouter(tags=["sessions"])


def actor(user: User) -> Actor:
    """The workflow's view of the user: only a physician (the LIMITS permission) may override gates and soft
    dose limits."""
    return Actor(name=user.name, physician=user.may(Perm.LIMITS))


def _service(svc: Services) -> SessionService:
    """The session service, for commands: each catches up with other instances under its own lock."""
    if svc.sessions is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "sessions are not running")
    return svc.sessions


async def _sessions(svc: Services) -> SessionService:
    """The session service, for views: caught up with what other instances changed (a no-op with one)."""
    sessions = _service(svc)
    await sessions.refresh()
    return sessions


async def refused_handler(request: Request, exc: Exception) -> JSONResponse:
    """Every handler lets ``Refused`` propagate; the app answers it here: 4xx with code and reason."""
    assert isinstance(exc, Refused)
    return JSONResponse(status_code=exc.status, content={"detail": {"code": exc.code, "reason": exc.reason}})


class CommandResult(BaseModel):
    """What a command recorded, and the session after it."""

    model_config = ConfigDict(frozen=True)
    events: list[SessionEvent]
    session: SessionView


class BaselineRequest(BaseModel):
    """The baseline: given values, or ``from_monitor`` (median of the baseline-phase readings, else latest)."""

    model_config = ConfigDict(extra="forbid")
    vitals: Vitals | None = None
    from_monitor: bool = False


class DoseCalculation(BaseModel):
    """A plan worked out for a weight, with the guardrails that apply."""

    weight_kg: float
    total_mg: float
    mg_per_kg_h: float
    mg_per_h: float
    ml_per_h: float
    volume_ml: float
    duration_min: float
    concentration_mg_per_ml: float
    advisories: list[str]
    needs_override: str | None = Field(description="The soft limit a physician must override, if any")


# ---- patients ----------------------------------------------------------------------------------------


@router.post("/api/patients", status_code=status.HTTP_201_CREATED)
async def create_patient(body: NewPatient, user: CurrentUser, svc: Svc) -> Patient:
    """Register a patient (identifier unique: 409 if taken)."""
    return await _service(svc).create_patient(body, actor(user))


@router.get("/api/patients")
async def list_patients(user: CurrentUser, svc: Svc, q: str | None = None) -> list[Patient]:
    """Patients in registration order; ``q`` filters by identifier or name (case-insensitive)."""
    out = list((await _sessions(svc)).patients.values())
    if q:
        needle = q.lower()
        out = [p for p in out if needle in p.identifier.lower() or needle in p.name.lower()]
    return out


@router.get("/api/patients/{patient_id}")
async def get_patient(patient_id: str, user: CurrentUser, svc: Svc) -> Patient:
    """One patient."""
    return (await _sessions(svc)).patient(patient_id)


@router.get("/api/patients/{patient_id}/history")
async def patient_history(patient_id: str, user: CurrentUser, svc: Svc) -> PatientHistory:
    """Every session of the patient: dose given against pain relief, sedation and side effects."""
    return (await _sessions(svc)).history(patient_id)


# ---- sessions ----------------------------------------------------------------------------------------


@router.post("/api/sessions", status_code=status.HTTP_201_CREATED)
async def create_session(body: NewSession, user: CurrentUser, svc: Svc) -> CommandResult:
    """Open a session for a patient in a bay (phase "planned"); the bay's alarms now follow the session."""
    sessions = _service(svc)
    state, events = await sessions.create_session(body, actor(user))
    return CommandResult(events=events, session=sessions.view(state.id))


@router.get("/api/sessions")
async def list_sessions(
    user: CurrentUser, svc: Svc, bay: str | None = None, active: bool | None = None
) -> list[SessionSummary]:
    """Sessions, optionally only one bay's and only open (``active=true``) or closed ones."""
    sessions = await _sessions(svc)
    out = [
        sessions.summary(s)
        for s in sessions.sessions.values()
        if (bay is None or s.bay == bay) and (active is None or active != s.final)
    ]
    return sorted(out, key=lambda s: s.created_at or datetime.min.replace(tzinfo=UTC))


@router.get("/api/sessions/{session_id}")
async def get_session(session_id: str, user: CurrentUser, svc: Svc) -> SessionView:
    """The session now: phase, clocks, dose total, estimated concentrations, chart, discharge scores."""
    return (await _sessions(svc)).view(session_id)


@router.get("/api/bays/{bay}/session")
async def bay_session(bay: str, user: CurrentUser, svc: Svc) -> SessionView:
    """The bay's open session (404 if none)."""
    sessions = await _sessions(svc)
    s = sessions.active_for_bay(bay)
    if s is None:
        reason = f"No open session in {bay}."
        raise HTTPException(status.HTTP_404_NOT_FOUND, {"code": "no_open_session", "reason": reason})
    return sessions.view(s.id)


@router.get("/api/sessions/{session_id}/events")
async def session_events(session_id: str, user: CurrentUser, svc: Svc) -> list[SessionEvent]:
    """The session's append-only record, in order."""
    return list((await _sessions(svc)).get(session_id).events)


async def _run(svc: Services, session_id: str, cmd: Command, user: User) -> CommandResult:
    sessions = _service(svc)
    state, events = await sessions.handle(session_id, cmd, actor(user))
    return CommandResult(events=events, session=sessions.view(state.id))


@router.post("/api/sessions/{session_id}/transition")
async def transition(session_id: str, body: Transition, user: CurrentUser, svc: Svc) -> CommandResult:
    """Move to another phase. Entering infusion checks the Table 1b gates; ready-for-discharge checks Table 5."""
    return await _run(svc, session_id, body, user)


@router.post("/api/sessions/{session_id}/baseline")
async def baseline(session_id: str, body: BaselineRequest, user: CurrentUser, svc: Svc) -> CommandResult:
    """Record the pre-infusion baseline (given, or from the monitor); the alarm engine gets it too."""
    sessions = await _sessions(svc)
    vitals = body.vitals
    source: Literal["manual", "monitor"] = "manual"
    if body.from_monitor:
        bay = sessions.get(session_id).bay
        vitals = sessions.monitor_baseline(bay)
        source = "monitor"
        if vitals is None:
            raise HTTPException(422, {"code": "no_monitor_values", "reason": "The monitor has no values yet."})
    if vitals is None:
        raise HTTPException(422, {"code": "vitals_required", "reason": "Give vitals or from_monitor: true."})
    return await _run(svc, session_id, RecordBaseline(vitals=vitals, source=source), user)


@router.post("/api/sessions/{session_id}/infusion")
async def infusion(session_id: str, body: PumpCommand, user: CurrentUser, svc: Svc) -> CommandResult:
    """An infusion event: start (default: the plan's rate), rate, pause, resume, stop (→ recovery), bolus."""
    return await _run(svc, session_id, body, user)


@router.post("/api/sessions/{session_id}/chart")
async def chart(session_id: str, body: ChartCommand, user: CurrentUser, svc: Svc) -> CommandResult:
    """A chart entry (sedation, pain, side effects, medication, note, assessment, retraction).

    Entries are never edited: a correction is a new entry with ``corrects`` = the corrected entry's seq.
    Sedation scores also go to the alarm engine."""
    return await _run(svc, session_id, body, user)


# ---- reference -------------------------------------------------------------------------------------


@router.post("/api/dosing/calculate")
async def calculate(body: InfusionPlan, user: CurrentUser, weight_kg: float) -> DoseCalculation:
    """Work out a plan for a weight (mg/kg over the duration → mL/h) and report the guardrails that apply."""
    calc = dosing.calculate(body, weight_kg)
    advisories: list[str] = []
    needs: str | None = None
    try:
        advisories = list(dosing.check_rate(calc.mg_per_kg_h).advisories)
    except Refused as e:
        if e.code.endswith("hard_limit"):
            raise
        needs = e.reason
    return DoseCalculation(
        weight_kg=calc.weight_kg,
        total_mg=calc.total_mg,
        mg_per_kg_h=calc.mg_per_kg_h,
        mg_per_h=calc.mg_per_h,
        ml_per_h=calc.ml_per_h,
        volume_ml=calc.volume_ml,
        duration_min=calc.duration_min,
        concentration_mg_per_ml=calc.concentration_mg_per_ml,
        advisories=advisories,
        needs_override=needs,
    )


@router.get("/api/discharge-instructions")
async def discharge_instructions(user: CurrentUser) -> list[Instruction]:
    """The discharge instructions given with every discharge, each with its source."""
    return [Instruction(text=t, source=s) for t, s in DISCHARGE_INSTRUCTIONS]
