"""Record a whole simulated session at high speed through the real pipeline (demo data, tests, benchmarks).

The simulated monitor runs ``speed`` times faster than real time on a device clock that ends before
``ended_before`` (so the session is finished and in the past). Everything goes the way live data goes: the
Pipeline records and publishes (to a private hub nobody watches), the alarm engine evaluates on the device
clock, and a scripted nurse drives the session workflow through the SessionService at the scenario's times:
register, baseline from the monitor, premedication, infusion start/stop at the scenario's rate, sedation
scores every 5 minutes, recovery (CLINICAL.md Table 5: at least 30 minutes), discharge charting and discharge.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, date, datetime, timedelta

from app.alarming import AlarmService
from app.alarms.engine import AlarmEngine
from app.alarms.model import AckInput, Phase
from app.alarms.profile import load_profile
from app.config import SimulatedMonitor
from app.decimate import Decimator
from app.devices import build_adapter
from app.hub import InProcessHub
from app.ingest import Pipeline, Supervisor
from app.live import LiveState
from app.recording.chunker import WaveChunker
from app.sessions.model import (
    Actor,
    AssessmentItem,
    ChartCommand,
    Command,
    InfusionPlan,
    MedicationItem,
    NewPatient,
    NewSession,
    PainItem,
    PumpAction,
    PumpCommand,
    RecordBaseline,
    Refused,
    SedationItem,
    SideEffectsItem,
    Transition,
    Vitals,
)
from app.sessions.service import SessionService
from app.store import Store
from monitors.adapters.simulated import SimulatedAdapter
from simulators.patient import SimulatedPatient
from simulators.scenario import Scenario, load_scenario

log = logging.getLogger(__name__)

NURSE = Actor(name="demo.nurse")
PHYSICIAN = Actor(name="demo.physician", physician=True)
#: The scripted nurse acknowledges alarms this long after they are raised (device time).
ACK_AFTER_S = 40.0
#: CLINICAL.md Table 5: discharge not before 30 minutes of recovery.
RECOVERY_MIN = timedelta(minutes=30)


async def record_simulated_session(
    store: Store,
    *,
    scenario: str = "oversedation",
    bay: str = "bay1",
    seed: int = 1,
    speed: float = 600.0,
    waveforms: bool = True,
    ended_before: datetime | None = None,
    patient_name: str | None = None,
) -> str:
    """Run one simulated session from check-in to discharge into ``store``; returns the session id.

    The device clock advances in fixed steps of ``0.01 * speed`` seconds, at most ``speed`` times real time,
    and each step waits until the store has committed the previous one: without that back-pressure the device
    ran ahead of a store busy with waveforms, and every charting step landed minutes of scenario time late (a
    90-minute session was recorded as fifteen hours). A 90-minute session takes ~10 s at 1000x."""
    sc = load_scenario(scenario)
    window = sc.regimen.infusion_window_min
    start_min, stop_min = window if window is not None else (5.0, 45.0)
    if stop_min == float("inf"):
        stop_min = start_min + 40.0
    discharge_min = max(stop_min + RECOVERY_MIN.total_seconds() / 60 + 4, sc.duration_min)
    total_s = (discharge_min + 1) * 60
    end = ended_before or datetime.now(UTC) - timedelta(minutes=5)
    origin = end - timedelta(seconds=total_s)

    cfg = SimulatedMonitor(
        name=f"synth-{bay}",
        device_id=f"sim-{bay}",
        bay=bay,
        seed=seed,
        scenario=scenario,
        waveforms=waveforms,
        speed=speed,
        chunk_s=0.01,
        nibp_first_s=30.0,
    )
    holder: list[SimulatedAdapter] = []

    def wall() -> datetime:  # scenario time 0 at ``origin``; "received" at the device time, as if live then
        t = holder[0].scenario_time if holder else None
        return origin if t is None else origin + timedelta(seconds=t)

    adapter = build_adapter(cfg, wall=wall, fixed_step=True, pace=store.flush)
    assert isinstance(adapter, SimulatedAdapter)
    holder.append(adapter)
    source = adapter.source
    assert isinstance(source, SimulatedPatient)

    def device_now() -> datetime:
        return adapter.device_now() or origin

    hub = InProcessHub(LiveState([(bay, bay)]))
    alarms = AlarmService(AlarmEngine(load_profile()), [bay], hub, store, wall=device_now)
    alarms.clocks[bay] = adapter.device_now
    pipeline = Pipeline(
        store, hub, Decimator(25.0), alarms, chunker=WaveChunker(1.0) if waveforms else None, publish_waves=False
    )
    supervisor = Supervisor(
        pipeline,
        stale_after_s=3.0 * speed,
        offline_after_s=10.0 * speed,
        backoff_initial_s=0.1,
        backoff_max_s=1.0,
        wall=device_now,
    )
    supervisor.add(adapter, bay=bay)
    sessions = SessionService(store, alarms, hub, wall=device_now, recovery_min=RECOVERY_MIN)

    async def until(minute: float) -> None:
        while (adapter.scenario_time or 0.0) < minute * 60:  # noqa: ASYNC110 - polls the device clock
            await asyncio.sleep(0.002)

    async def tick() -> None:
        """Alarm timers (readings every second already advance them), and the nurse at the bedside, who
        acknowledges an alarm about ACK_AFTER_S after it is raised (so the record has times to acknowledge)."""
        last = 0.0
        while True:
            await asyncio.sleep(0.001)
            t = adapter.scenario_time or 0.0
            if t - last >= 5.0:
                last = t
                alarms.tick()
                now = device_now()
                for a in alarms.active(bay):
                    if a.acknowledged_at is None and (now - a.raised_at).total_seconds() >= ACK_AFTER_S:
                        alarms.apply(bay, [AckInput(rule_id=a.rule_id, user=NURSE.name)])

    await supervisor.start()
    ticker = asyncio.create_task(tick(), name="synth:tick")
    try:
        await until(0.2)
        weight = sc.patient.weight_kg
        p = await sessions.create_patient(
            NewPatient(
                identifier=f"DEMO-{seed:04d}-{origin:%Y%m%d%H%M}",
                name=patient_name or f"Demo Patient {seed}",
                birth_date=date(origin.year - int(sc.patient.age), 3, 14),
                weight_kg=weight,
                history=("hypertension",) if sc.patient.hypertensive else (),
            ),
            NURSE,
        )
        duration = stop_min - start_min
        rate = _rate_mg_kg_h(sc)
        plan = InfusionPlan(
            dose_mg_per_kg=round(rate * duration / 60, 3), duration_min=duration, concentration_mg_per_ml=1.0
        )
        state, _ = await sessions.create_session(
            NewSession(patient_id=p.id, bay=bay, plan=plan, indication=f"chronic pain (simulated: {sc.title})"),
            PHYSICIAN,
        )
        sid = state.id
        await sessions.handle(sid, Transition(to=Phase.BASELINE), NURSE)
        await until(2.5)
        baseline = sessions.monitor_baseline(bay) or Vitals(sbp=125, dbp=80, hr=72, spo2=98)
        await sessions.handle(sid, RecordBaseline(vitals=baseline, source="monitor"), NURSE)
        await _try(sessions, sid, Transition(to=Phase.PREMEDICATION))
        mdz = sc.regimen.midazolam_mg
        if mdz:
            await until(sc.regimen.midazolam_at_min or 3.0)
            await _try(sessions, sid, ChartCommand(item=MedicationItem(drug="midazolam", dose=mdz)))
        await until(start_min)
        await _try(sessions, sid, Transition(to=Phase.INFUSION))
        await _try(sessions, sid, PumpCommand(action=PumpAction.START, mg_per_kg_h=rate), PHYSICIAN)
        minute = start_min
        while minute + 5 < stop_min:
            minute += 5
            await until(minute)
            await _chart_sedation(sessions, sid, source, minute)
        await until(stop_min)
        await _try(sessions, sid, PumpCommand(action=PumpAction.STOP))
        await _try(sessions, sid, Transition(to=Phase.RECOVERY))
        for minute in (stop_min + 10, stop_min + 20, stop_min + 30):
            await until(minute)
            await _chart_sedation(sessions, sid, source, minute)
        await _try(sessions, sid, ChartCommand(item=PainItem(nrs=2)))
        await _try(sessions, sid, ChartCommand(item=SideEffectsItem(effects={})))
        await _try(
            sessions,
            sid,
            ChartCommand(
                item=AssessmentItem(
                    limbs_moving=4,
                    respiration="deep",
                    consciousness="awake",
                    on_oxygen=False,
                    oriented=True,
                    steady_gait=True,
                    tolerating_fluids=True,
                    voided=True,
                    escort_present=True,
                )
            ),
        )
        await until(stop_min + RECOVERY_MIN.total_seconds() / 60 + 1)
        if source.state((stop_min + 31) * 60).sedation >= 4.0:  # awake, answers normally: charted as alert
            await _try(sessions, sid, ChartCommand(item=SedationItem(rass=0, moaas=5)))
        ready = Transition(to=Phase.READY_FOR_DISCHARGE)
        if not await _try(sessions, sid, ready):
            over = Transition(to=Phase.READY_FOR_DISCHARGE, override_reason="Reviewed by physician (simulated)")
            await _try(sessions, sid, over, PHYSICIAN)
        await until(discharge_min)
        await _try(sessions, sid, Transition(to=Phase.DISCHARGED))
        await until(discharge_min + 0.5)
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        await supervisor.stop()
        await pipeline.flush_waves()
        await store.flush()
    log.info("recorded simulated session %s (%s, %s) ending %s", sid, scenario, bay, device_now().isoformat())
    return sid


def _rate_mg_kg_h(sc: Scenario) -> float:
    """The scenario's first ketamine infusion rate (mg/kg/h); 0.5 mg/kg/h if it names none."""
    for d in sc.regimen.ketamine:
        if d.action == "start" and d.mg_kg_h:
            return float(d.mg_kg_h)
    return 0.5


async def _chart_sedation(sessions: SessionService, sid: str, source: SimulatedPatient, minute: float) -> None:
    moaas = max(0, min(5, round(source.state(minute * 60).sedation)))
    await _try(sessions, sid, ChartCommand(item=SedationItem(moaas=moaas)))


async def _try(sessions: SessionService, sid: str, cmd: Command, actor: Actor = NURSE) -> bool:
    """Issue a command; a refusal is logged (the script goes on, as a nurse would)."""
    try:
        await sessions.handle(sid, cmd, actor)
    except Refused as e:
        log.info("synthetic session %s: %s refused: %s", sid, type(cmd).__name__, e)
        return False
    return True
