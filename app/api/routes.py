"""REST routes: health, bays, parameter catalogue, simulated-device fault injection."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from app.alarming import alarm_out, event_out
from app.alarms.model import AckInput, AudioPauseInput, AudioResumeInput, Phase
from app.alarms.overrides import LevelOverride
from app.api.deps import CurrentUser, Svc
from app.api.sessions import actor as session_actor
from app.services import Services
from app.sessions.model import Refused, SetAlarmLimits
from app.wire import AlarmEventOut, AlarmOut, DeviceOut
from monitors import parameters
from monitors.adapters.simulated import Fault, SimulatedAdapter

router = APIRouter()

#: How the UI writes UCUM units.
_DISPLAY_UNITS = {"/min": "/min", "%": "%", "mm[Hg]": "mmHg", "Cel": "°C", "mV": "mV", "1": ""}


class Health(BaseModel):
    """Liveness and a little more."""

    status: Literal["ok"]
    epoch: str
    bays: int
    devices: dict[str, str]


class BayInfo(BaseModel):
    """A configured bay and its devices."""

    bay: str
    label: str
    devices: list[DeviceOut]


class ParameterInfo(BaseModel):
    """A catalogue row as the UI needs it."""

    key: str
    label: str
    kind: Literal["numeric", "waveform"]
    ucum: str
    unit_display: str
    decimals: int
    cadence: Literal["continuous", "episodic"]
    group: str | None
    mdc_code: int
    mdc_refid: str
    loinc: str | None
    plausible: tuple[float, float]


class FaultRequest(BaseModel):
    """Fault to inject into a simulated device."""

    model_config = ConfigDict(extra="forbid")
    fault: Fault


@router.get("/healthz")
async def healthz(user: CurrentUser, svc: Svc) -> Health:
    """Liveness: the server runs; device states for a quick look."""
    return Health(
        status="ok",
        epoch=svc.hub.epoch,
        bays=len(svc.settings.bays),
        devices={d: dev.state.value for d, dev in svc.supervisor.devices.items()},
    )


class MonitorInfo(BaseModel):
    """A configured monitor adapter and what it reports about itself."""

    name: str
    type: str
    devices: list[str]
    details: dict[str, object]


@router.get("/api/monitors")
async def monitors(user: CurrentUser, svc: Svc) -> list[MonitorInfo]:
    """Configured monitor adapters (listening addresses, counters) and the devices seen."""
    return [
        MonitorInfo(name=name, type=type(a).__name__, devices=list(a.expected_devices), details=a.describe())
        for name, a in svc.supervisor.adapters.items()
    ]


class DeliveryStats(BaseModel):
    """The hub's delivery counters (read-only; the load benchmark and operators read them)."""

    epoch: str
    seq: int  # the latest published seq: messages up to it have been offered to every client
    clients: int
    published: int
    by_type: dict[str, int]
    reliable_by_bay: dict[str, dict[str, int]]  # status / device_alarm / alarms published per bay
    sent: int
    waves_dropped: int
    vitals_conflated: int
    resyncs: int


@router.get("/api/stats")
async def stats(user: CurrentUser, svc: Svc) -> DeliveryStats:
    """Published messages and what became of them per client (sent, dropped waves, conflated vitals, resyncs)."""
    hub = svc.hub
    totals = hub.client_totals()
    return DeliveryStats(
        epoch=hub.epoch,
        seq=hub.seq,
        clients=len(hub.clients),
        published=hub.stats.published,
        by_type=dict(hub.stats.by_type),
        reliable_by_bay={b: dict(c) for b, c in hub.stats.reliable_by_bay.items()},
        sent=totals.sent,
        waves_dropped=totals.waves_dropped,
        vitals_conflated=totals.vitals_conflated,
        resyncs=totals.resyncs,
    )


@router.get("/api/bays")
async def bays(user: CurrentUser, svc: Svc) -> list[BayInfo]:
    """Configured bays in order, with their devices' states (a nurse's: her bays)."""
    return [BayInfo(bay=b.bay, label=b.label, devices=b.devices) for b in svc.hub.live.bays_out(user.bays)]


@router.get("/api/parameters")
async def catalogue(user: CurrentUser) -> list[ParameterInfo]:
    """The parameter catalogue (labels, units, codes) for screens and integrators."""
    return [
        ParameterInfo(
            key=p.key,
            label=p.label,
            kind=p.kind.value,
            ucum=p.ucum,
            unit_display=_DISPLAY_UNITS.get(p.ucum, p.ucum),
            decimals=p.decimals,
            cadence=p.cadence.value,
            group=p.group,
            mdc_code=p.mdc_code,
            mdc_refid=p.mdc_refid,
            loinc=p.loinc,
            plausible=p.plausible,
        )
        for p in parameters.CATALOGUE.values()
    ]


@router.post("/api/devices/{device_id}/simulation", status_code=status.HTTP_204_NO_CONTENT)
async def simulate_fault(device_id: str, body: FaultRequest, user: CurrentUser, svc: Svc) -> Response:
    """Inject a fault into a simulated device (training and tests); 404 for real devices."""
    for adapter in svc.supervisor.adapters.values():
        if isinstance(adapter, SimulatedAdapter) and adapter.device_id == device_id:
            adapter.set_fault(body.fault)
            return Response(status_code=status.HTTP_204_NO_CONTENT)
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"no simulated device {device_id!r}")


# ---- alarms (Vigil's own rule engine) --------------------------------------------------------------


class AckRequest(BaseModel):
    """Acknowledge one alarm (by rule id) or every alarm of the bay."""

    model_config = ConfigDict(extra="forbid")
    rule_id: str = "all"


class AudioPauseRequest(BaseModel):
    """Pause the bay's alarm audio (duration capped by the profile; default from the profile)."""

    model_config = ConfigDict(extra="forbid")
    duration_s: float | None = Field(default=None, gt=0, le=3600)


class PhaseRequest(BaseModel):
    """Set the bay's session phase (until the session workflow sets it)."""

    model_config = ConfigDict(extra="forbid")
    phase: Phase


class AlarmLogEntry(BaseModel):
    """One row of the alarm log."""

    bay: str | None
    event: AlarmEventOut


class BayAlarms(BaseModel):
    """A bay's active alarms and its recent alarm log (newest first)."""

    bay: str
    phase: str
    active: list[AlarmOut]
    log: list[AlarmLogEntry]


def _bay_or_404(svc: Services, bay: str) -> None:
    if bay not in svc.alarms.states:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no bay {bay!r}")


@router.get("/api/bays/{bay}/alarms")
async def bay_alarms(bay: str, user: CurrentUser, svc: Svc, limit: int = 200) -> BayAlarms:
    """Active alarms and the alarm log of a bay (with who acknowledged what, and how long it took)."""
    _bay_or_404(svc, bay)
    rows = await svc.store.alarm_events(bay=bay, limit=max(1, min(limit, 5_000)))
    return BayAlarms(
        bay=bay,
        phase=svc.alarms.states[bay].phase.value,
        active=[alarm_out(a) for a in svc.alarms.active(bay)],
        log=[AlarmLogEntry(bay=b, event=event_out(e)) for b, e in rows],
    )


@router.post("/api/bays/{bay}/alarms/acknowledge")
async def acknowledge(bay: str, body: AckRequest, user: CurrentUser, svc: Svc) -> list[AlarmEventOut]:
    """Acknowledge an alarm (or all): latched alarms whose condition ended clear; the user is recorded."""
    _bay_or_404(svc, bay)
    return [event_out(e) for e in svc.alarms.apply(bay, [AckInput(rule_id=body.rule_id, user=user.name)])]


@router.post("/api/bays/{bay}/alarms/audio-pause")
async def audio_pause(bay: str, body: AudioPauseRequest, user: CurrentUser, svc: Svc) -> list[AlarmEventOut]:
    """Pause alarm audio for the bay (visual signals go on); the user is recorded."""
    _bay_or_404(svc, bay)
    inp = AudioPauseInput(user=user.name, duration_s=body.duration_s)
    return [event_out(e) for e in svc.alarms.apply(bay, [inp])]


@router.post("/api/bays/{bay}/alarms/audio-resume")
async def audio_resume(bay: str, user: CurrentUser, svc: Svc) -> list[AlarmEventOut]:
    """End an audio pause early."""
    _bay_or_404(svc, bay)
    return [event_out(e) for e in svc.alarms.apply(bay, [AudioResumeInput(user=user.name)])]


@router.post("/api/bays/{bay}/phase")
async def set_phase(bay: str, body: PhaseRequest, request: Request, user: CurrentUser, svc: Svc) -> list[AlarmEventOut]:
    """Move the bay to a session phase (phase-gated rules follow it)."""
    _bay_or_404(svc, bay)
    request.state.audit_before = {"phase": svc.alarms.states[bay].phase.value}
    svc.alarms.phase_source.pop(bay, None)  # a person decided: stop following the simulated scenario
    return [event_out(e) for e in svc.alarms.set_phase(bay, body.phase)]


class AlarmLimits(BaseModel):
    """The patient's own alarm limits: changes to levels of the active profile (empty: the profile's)."""

    model_config = ConfigDict(extra="forbid")
    overrides: list[LevelOverride] = Field(default_factory=list, max_length=200)


class AlarmLimitsOut(AlarmLimits):
    """The limits in force for a bay: its open session's (none without a session)."""

    bay: str
    profile: str
    session_id: str | None = None


async def _limits_out(svc: Services, bay: str) -> AlarmLimitsOut:
    session = None
    if svc.sessions is not None:
        await svc.sessions.refresh()  # set through another instance, perhaps
        session = svc.sessions.active_for_bay(bay)
    return AlarmLimitsOut(
        bay=bay,
        profile=svc.alarms.engine.profile.id,
        session_id=session.id if session is not None else None,
        overrides=list(session.limits) if session is not None else [],
    )


@router.get("/api/bays/{bay}/alarm-limits")
async def alarm_limits(bay: str, user: CurrentUser, svc: Svc) -> AlarmLimitsOut:
    """The bay's patient-specific alarm limits (none: the profile's cited defaults)."""
    _bay_or_404(svc, bay)
    return await _limits_out(svc, bay)


@router.put("/api/bays/{bay}/alarm-limits")
async def set_alarm_limits(
    bay: str, body: AlarmLimits, request: Request, user: CurrentUser, svc: Svc
) -> AlarmLimitsOut:
    """Set the patient's own limits for the bay's open session (physician); 422 names an override that does
    not apply, 409 says there is no open session. They are part of the session's record, replace the previous
    ones and hold until changed, cleared (an empty list) or the session ends; with several instances the
    bay's alarm owner applies them wherever the request arrived."""
    _bay_or_404(svc, bay)
    before = await _limits_out(svc, bay)
    request.state.audit_before = before.model_dump(mode="json", include={"overrides"})
    if svc.sessions is None or before.session_id is None:
        reason = f"No open session in {bay}: a patient's own alarm limits belong to their session."
        raise Refused("no_open_session", reason, status=409)
    await svc.sessions.handle(before.session_id, SetAlarmLimits(overrides=tuple(body.overrides)), session_actor(user))
    return await _limits_out(svc, bay)
