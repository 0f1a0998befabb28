"""Runs the pure session workflow against the world: the store (append-only), the alarm engine and the hub.

Every command goes through ``handle`` under one lock: decide → append the events to the store and wait
until they are durable → only then keep the new state and tell the alarm engine (phase, sedation scores,
baseline). A refused command or a failed commit changes nothing. ``load`` rebuilds every session from the
store at start-up and puts each active session's bay back into its phase.

With several instances (app/sessions/sync.py) the lock is cluster-wide and held per bay, and a command first
re-reads what other instances changed, so it is always decided on the session's latest state; readers call
``refresh`` to see other instances' changes. The store's unique (session, seq) is the last guard: a command
decided on a stale state cannot be stored, and the next refresh re-reads everything.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from statistics import median

from pydantic import BaseModel, ConfigDict

from app.alarming import AlarmService
from app.alarms.model import AlarmInput, BaselineInput, ChartInput, LimitsInput, Phase, Scale
from app.alarms.overrides import OverrideError
from app.hub import Hub
from app.sessions import dosing, workflow
from app.sessions.model import (
    Actor,
    AlarmLimitsSet,
    BaselineRecorded,
    ChartEntry,
    Command,
    InfusionPlan,
    MedicationItem,
    NewPatient,
    NewSession,
    PainItem,
    Patient,
    PhaseChanged,
    PumpAction,
    PumpEvent,
    Refused,
    SedationItem,
    SessionCreated,
    SessionEvent,
    SetAlarmLimits,
    SideEffectsItem,
    Vitals,
    monitor_vitals,
)
from app.sessions.scores import DISCHARGE_INSTRUCTIONS, Readiness
from app.sessions.sync import LocalSync, SessionSync
from app.sessions.workflow import Ctx, SessionState
from app.store import Record, Store

log = logging.getLogger(__name__)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class PlanOut(_Out):
    """The prescribed infusion worked out for today's weight."""

    dose_mg_per_kg: float
    duration_min: float
    concentration_mg_per_ml: float
    total_mg: float | None
    mg_per_kg_h: float
    mg_per_h: float | None
    ml_per_h: float | None
    volume_ml: float | None


class PumpOut(_Out):
    """The pump now."""

    state: str  # idle, running, paused, stopped
    mg_per_h: float
    mg_per_kg_h: float | None
    ml_per_h: float | None


class DoseOut(_Out):
    """Ketamine given so far (running total)."""

    total_mg: float
    infused_mg: float
    bolus_mg: float
    total_mg_per_kg: float | None
    volume_ml: float | None


class EstimateOut(_Out):
    """Model-estimated ketamine concentrations: an estimate, never a measurement."""

    estimate: bool = True
    ketamine_cp_ng_ml: float
    ketamine_ce_ng_ml: float
    model: str
    label: str


class ClocksOut(_Out):
    """Session clocks (seconds; times as aware datetimes)."""

    phase: str
    phase_elapsed_s: float
    infusion_started_at: datetime | None
    infusion_stopped_at: datetime | None
    infusion_elapsed_s: float | None
    infusion_running_s: float
    infusion_planned_s: float | None
    infusion_remaining_s: float | None
    infusion_overrun: bool
    recovery_started_at: datetime | None
    recovery_elapsed_s: float | None
    recovery_required_s: float
    recovery_remaining_s: float | None
    sedation_score_due_at: datetime | None
    sedation_score_overdue: bool


class ChartRow(_Out):
    """A chart entry and, if it was corrected, the entry that superseded it."""

    entry: ChartEntry
    superseded_by: int | None


class Instruction(_Out):
    """One discharge instruction and its source."""

    text: str
    source: str


class SessionView(_Out):
    """Everything about one session as of ``now``."""

    id: str
    patient_id: str
    bay: str
    phase: Phase
    phase_since: datetime | None
    created_at: datetime | None
    now: datetime
    weight_kg: float | None
    plan: PlanOut | None
    baseline: Vitals | None
    vitals: Vitals | None
    pump: PumpOut
    dose: DoseOut
    estimate: EstimateOut | None
    clocks: ClocksOut
    readiness: Readiness
    allowed_transitions: list[Phase]
    advisories: list[str]
    phases: list[PhaseChanged]
    pump_events: list[PumpEvent]
    chart: list[ChartRow]
    discharge_instructions: list[Instruction]


class SessionSummary(_Out):
    """One line per session."""

    id: str
    patient_id: str
    bay: str
    phase: Phase
    created_at: datetime | None


class HistoryRow(_Out):
    """One session of a patient: dose against response."""

    session_id: str
    date: date | None
    bay: str
    final_phase: Phase
    weight_kg: float | None
    planned_mg_per_kg: float | None
    total_mg: float
    total_mg_per_kg: float | None
    max_rate_mg_per_kg_h: float | None
    infusion_running_min: float
    pain_before: int | None
    pain_after: int | None
    pain_relief_pct: float | None
    lowest_moaas: int | None
    lowest_rass: int | None
    highest_rass: int | None
    side_effects: list[str]
    medications: list[str]


class PatientHistory(_Out):
    """A patient and their sessions, oldest first."""

    patient: Patient
    sessions: list[HistoryRow]


class SessionService:
    """Sessions and patients in memory, rebuilt from and appended to the store."""

    def __init__(
        self,
        store: Store,
        alarms: AlarmService,
        hub: Hub,
        *,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        recovery_min: timedelta | None = None,
        sync: SessionSync | None = None,
    ) -> None:
        self.recovery_min = recovery_min  # None: CLINICAL.md Table 5's 30 min; shorter only for training/demos
        self.store = store
        self.alarms = alarms
        self.hub = hub
        self.wall = wall
        self.patients: dict[str, Patient] = {}
        self.sessions: dict[str, SessionState] = {}
        self._lock = asyncio.Lock()
        self._estimators: dict[str, tuple[int, dosing.Estimator]] = {}
        self._sync: SessionSync = sync or LocalSync()
        self._suspect = False  # a commit failed: the next refresh re-reads everything

    # ---- start-up --------------------------------------------------------------------------------

    async def load(self) -> None:
        """Rebuild patients and sessions from the store; active sessions put their bay back in phase."""
        await self._changes()  # from here on the feed names what changed after this read
        await self._read_all()
        for s in self.sessions.values():
            if not s.final and s.bay in self.alarms.states:
                self._follow(s.bay, s.phase)
                if s.limits:  # the patient's own alarm limits hold across a restart
                    self.alarms.apply(s.bay, [LimitsInput(overrides=s.limits)])
        if self.sessions:
            log.info("sessions: %d rebuilt (%d active)", len(self.sessions), len(self.active()))

    async def _read_all(self) -> None:
        patients = {p.id: p for p in await self.store.patients()}
        by_session: dict[str, list[SessionEvent]] = {}
        for e in await self.store.session_events():
            by_session.setdefault(e.session_id, []).append(e)
        sessions: dict[str, SessionState] = {}
        for sid, events in by_session.items():
            try:
                sessions[sid] = workflow.rebuild(sid, events)
            except ValueError:
                log.exception("session %s could not be rebuilt from the store", sid)
        self.patients, self.sessions = patients, sessions

    async def _changes(self) -> bool:
        """Fold in what other instances changed; False if everything had to be re-read."""
        changes = await self._sync.changes()
        if self._suspect or not changes.complete:
            self._suspect = False
            await self._read_all()
            self._adopted(self.sessions.values())
            return False
        if changes.patients:
            self.patients = {p.id: p for p in await self.store.patients()}
        adopted = []
        for sid in changes.sessions:
            events = list(await self.store.session_events(session_id=sid))
            if events:
                try:
                    self.sessions[sid] = workflow.rebuild(sid, events)
                except ValueError:
                    log.exception("session %s could not be rebuilt from the store", sid)
                    continue
                adopted.append(self.sessions[sid])
        self._adopted(adopted)
        return True

    def _adopted(self, sessions: Iterable[SessionState]) -> None:
        """Sessions changed by another instance: an open one drives its bay's phase from now on, so this
        instance stops following a simulated scenario's phase there. The alarm engine itself heard the change
        from the instance that made it (its owner is fed through the cluster), so nothing is applied twice."""
        for s in sessions:
            if not s.final:
                self.alarms.phase_source.pop(s.bay, None)

    async def refresh(self) -> None:
        """See what other instances changed (a no-op with one instance); readers call it before a view."""
        if not self._sync.shared:
            return  # this instance's memory is the truth: readers need not wait behind a command's commit
        async with self._lock:
            await self._changes()

    # ---- queries ---------------------------------------------------------------------------------

    def active(self) -> list[SessionState]:
        """Sessions that are neither discharged nor aborted."""
        return [s for s in self.sessions.values() if not s.final]

    def active_for_bay(self, bay: str) -> SessionState | None:
        """The bay's open session, if any."""
        return next((s for s in self.sessions.values() if s.bay == bay and not s.final), None)

    def get(self, session_id: str) -> SessionState:
        """A session, or ``Refused`` 404."""
        s = self.sessions.get(session_id)
        if s is None:
            raise Refused("no_such_session", f"No session {session_id!r}.", status=404)
        return s

    def patient(self, patient_id: str) -> Patient:
        """A patient, or ``Refused`` 404."""
        p = self.patients.get(patient_id)
        if p is None:
            raise Refused("no_such_patient", f"No patient {patient_id!r}.", status=404)
        return p

    def latest_vitals(self, bay: str) -> Vitals | None:
        """The bay's latest monitor values (from the hub's live state); None without any."""
        bays = self.hub.live.bays_out([bay])
        if not bays:
            return None
        return monitor_vitals(
            {
                r.param: (r.value, datetime.fromtimestamp(r.tr, UTC))
                for r in bays[0].vitals
                if r.quality != "invalid" and r.value is not None
            }
        )

    def monitor_baseline(self, bay: str) -> Vitals | None:
        """Baseline from the monitor: the median of the baseline-phase readings the alarm engine collected
        (CLINICAL.md Table 1 heading), else the latest values."""
        latest = self.latest_vitals(bay)
        state = self.alarms.states.get(bay)
        if state is None:
            return latest
        got: dict[str, float | None] = {}
        for key, param in (("sbp", "nibp_sys"), ("dbp", "nibp_dia"), ("hr", "hr"), ("spo2", "spo2"), ("rr", "rr")):
            buf = state.baseline_samples.get(param)
            if buf:
                got[key] = median(v for _, v in buf)
            else:
                got[key] = getattr(latest, key) if latest else None
        if all(v is None for v in got.values()):
            return None
        return Vitals(**got, bp_at=latest.bp_at if latest else None, at=latest.at if latest else None)

    # ---- commands --------------------------------------------------------------------------------

    async def create_patient(self, new: NewPatient, actor: Actor) -> Patient:
        """Register a patient (identifiers are unique)."""
        async with self._lock, self._sync.exclusive("registry"):
            await self._changes()
            ident = new.identifier.strip()
            if any(p.identifier == ident for p in self.patients.values()):
                raise Refused("duplicate_identifier", f"A patient with identifier {ident!r} already exists.")
            p = Patient(
                **{**new.model_dump(), "identifier": ident},
                id=uuid.uuid4().hex[:12],
                created_at=self.wall(),
                created_by=actor.name,
            )
            await self._commit([Record(None, p)])
            self.patients[p.id] = p
            await self._sync.changed(patient=True)
            return p

    async def create_session(self, cmd: NewSession, actor: Actor) -> tuple[SessionState, list[SessionEvent]]:
        """Open a session for a patient in a bay (one open session per bay and per patient)."""
        async with self._lock, self._sync.exclusive(f"bay:{cmd.bay}", "registry"):
            await self._changes()
            patient = self.patient(cmd.patient_id)
            if cmd.bay not in self.alarms.states:
                raise Refused("no_such_bay", f"No bay {cmd.bay!r}.", status=404)
            busy = self.active_for_bay(cmd.bay)
            if busy is not None:
                raise Refused("bay_busy", f"Bay {cmd.bay} already has an open session ({busy.id}, {busy.phase.value}).")
            other = next((s for s in self.active() if s.patient_id == patient.id), None)
            if other is not None:
                raise Refused("patient_busy", f"The patient already has an open session ({other.id} in {other.bay}).")
            sid = uuid.uuid4().hex[:12]
            ctx = Ctx(now=self.wall(), actor=actor, recovery_min=self.recovery_min)
            event = workflow.create(sid, patient, cmd, ctx)
            state = workflow.evolve(SessionState(id=sid), event)
            await self._commit([Record(cmd.bay, event)])
            self.sessions[sid] = state
            self._follow(cmd.bay, state.phase)
            await self._sync.changed(session_id=sid)
            return state, [event]

    async def handle(self, session_id: str, cmd: Command, actor: Actor) -> tuple[SessionState, list[SessionEvent]]:
        """Run one command against a session; refused commands and failed commits change nothing."""
        async with self._lock:
            if session_id not in self.sessions:
                await self._changes()
            bay = self.get(session_id).bay  # a session never changes bay
            async with self._sync.exclusive(f"bay:{bay}"):
                await self._changes()
                return await self._handle(session_id, cmd, actor)

    async def _handle(self, session_id: str, cmd: Command, actor: Actor) -> tuple[SessionState, list[SessionEvent]]:
        if isinstance(cmd, SetAlarmLimits):
            try:
                self.alarms.check_limits(cmd.overrides)
            except OverrideError as e:
                raise Refused("invalid_limits", str(e), status=422) from None
        state = self.get(session_id)
        patient = self.patient(state.patient_id)
        ctx = Ctx(now=self.wall(), actor=actor, vitals=self.latest_vitals(state.bay), recovery_min=self.recovery_min)
        new, events = workflow.handle(state, patient, cmd, ctx)
        await self._commit([Record(state.bay, e) for e in events])
        self.sessions[session_id] = new
        self._after(state, new, events)
        await self._sync.changed(session_id=session_id)
        return new, events

    async def _commit(self, records: list[Record]) -> None:
        try:
            await self.store.append(records)
        except Exception as e:
            log.error("session records could not be stored: %s", e)
            # e.g. another instance stored this event number first: re-read everything before the next command
            self._suspect = self._sync.shared
            reason = f"Could not be recorded durably ({e}); nothing was changed."
            raise Refused("store_failed", reason, status=503) from e

    # ---- effects on the alarm engine -------------------------------------------------------------

    def _follow(self, bay: str, phase: Phase) -> None:
        """The session now drives the bay's phase: stop following a simulated scenario, tell the engine."""
        self.alarms.phase_source.pop(bay, None)
        if bay in self.alarms.states and self.alarms.states[bay].phase is not phase:
            self.alarms.set_phase(bay, phase)

    def _after(self, before: SessionState, after: SessionState, events: list[SessionEvent]) -> None:
        bay = after.bay
        inputs: list[AlarmInput] = []
        for e in events:
            if isinstance(e, PhaseChanged):
                self._follow(bay, e.to_phase)
                if after.final and before.limits:  # the next patient in the bay gets the profile's limits
                    inputs.append(LimitsInput(overrides=(), user=e.user))
            elif isinstance(e, AlarmLimitsSet):
                inputs.append(LimitsInput(overrides=e.overrides, user=e.user))
            elif isinstance(e, BaselineRecorded):
                for key, param in (("sbp", "nibp_sys"), ("dbp", "nibp_dia"), ("hr", "hr"), ("spo2", "spo2")):
                    value = getattr(e.vitals, key)
                    if value is not None:
                        inputs.append(BaselineInput(param=param, value=value, user=e.user))
            elif isinstance(e, ChartEntry) and isinstance(e.item, SedationItem) and not after.final:
                latest = [c for c in after.effective_chart() if isinstance(c.item, SedationItem)]
                if latest and latest[-1].seq == e.seq:  # a late or corrected older score does not reach alarms
                    if e.item.rass is not None:
                        inputs.append(ChartInput(scale=Scale.RASS, value=e.item.rass, user=e.user))
                    if e.item.moaas is not None:
                        inputs.append(ChartInput(scale=Scale.MOAAS, value=e.item.moaas, user=e.user))
        if inputs:
            self.alarms.apply(bay, inputs)

    # ---- views -----------------------------------------------------------------------------------

    def _estimator(self, s: SessionState) -> dosing.Estimator | None:
        if not s.pump or s.weight_kg is None:
            return None
        cached = self._estimators.get(s.id)
        if cached is not None and cached[0] == len(s.pump):
            return cached[1]
        est = dosing.Estimator(s.weight_kg, s.pump)
        self._estimators[s.id] = (len(s.pump), est)
        return est

    def view(self, session_id: str, now: datetime | None = None) -> SessionView:
        """The session as of ``now`` (default: the wall clock)."""
        s = self.get(session_id)
        at = now or self.wall()
        vitals = self.latest_vitals(s.bay) if not s.final else None
        conc = s.plan.concentration_mg_per_ml if s.plan else None
        tot = dosing.totals(s.pump, at, conc)
        w = s.weight_kg if s.weight_kg else None
        est = self._estimator(s)
        estimate = None
        if est is not None:
            cp, ce = est.at(at)
            estimate = EstimateOut(
                ketamine_cp_ng_ml=round(cp, 1),
                ketamine_ce_ng_ml=round(ce, 1),
                model=est.params.name,
                label=dosing.ESTIMATE_LABEL,
            )
        plan = None
        if s.plan_input is not None:
            hours = s.plan_input.duration_min / 60.0
            plan = PlanOut(
                dose_mg_per_kg=s.plan_input.dose_mg_per_kg,
                duration_min=s.plan_input.duration_min,
                concentration_mg_per_ml=s.plan_input.concentration_mg_per_ml,
                total_mg=s.plan.total_mg if s.plan else None,
                mg_per_kg_h=s.plan_input.dose_mg_per_kg / hours,
                mg_per_h=s.plan.mg_per_h if s.plan else None,
                ml_per_h=s.plan.ml_per_h if s.plan else None,
                volume_ml=s.plan.volume_ml if s.plan else None,
            )
        advisories = [
            a for e in s.events if isinstance(e, SessionCreated | PhaseChanged | PumpEvent) for a in e.advisories
        ]
        return SessionView(
            id=s.id,
            patient_id=s.patient_id,
            bay=s.bay,
            phase=s.phase,
            phase_since=s.phase_since,
            created_at=s.created_at,
            now=at,
            weight_kg=s.weight_kg,
            plan=plan,
            baseline=s.baseline,
            vitals=vitals,
            pump=PumpOut(
                state=s.pump_state,
                mg_per_h=tot.mg_per_h,
                mg_per_kg_h=tot.mg_per_h / w if w else None,
                ml_per_h=tot.mg_per_h / conc if conc else None,
            ),
            dose=DoseOut(
                total_mg=round(tot.total_mg, 3),
                infused_mg=round(tot.infused_mg, 3),
                bolus_mg=round(tot.bolus_mg, 3),
                total_mg_per_kg=round(tot.total_mg / w, 4) if w else None,
                volume_ml=round(tot.volume_ml, 3) if conc else None,
            ),
            estimate=estimate,
            clocks=ClocksOut(**asdict(workflow.clocks(s, at, self.recovery_min))),
            readiness=workflow.discharge_readiness(s, vitals, at, self.recovery_min),
            allowed_transitions=sorted(workflow.TRANSITIONS[s.phase]),
            advisories=advisories,
            phases=list(s.phases),
            pump_events=list(s.pump),
            chart=[ChartRow(entry=e, superseded_by=s.superseded.get(e.seq)) for e in s.chart],
            discharge_instructions=[Instruction(text=t, source=src) for t, src in DISCHARGE_INSTRUCTIONS],
        )

    def summary(self, s: SessionState) -> SessionSummary:
        """One line for lists."""
        return SessionSummary(id=s.id, patient_id=s.patient_id, bay=s.bay, phase=s.phase, created_at=s.created_at)

    def history(self, patient_id: str) -> PatientHistory:
        """Dose against response for every session of a patient, oldest first."""
        patient = self.patient(patient_id)
        rows: list[HistoryRow] = []
        mine = sorted(
            (s for s in self.sessions.values() if s.patient_id == patient_id),
            key=lambda s: s.created_at or datetime.min.replace(tzinfo=UTC),
        )
        for s in mine:
            end = s.events[-1].t if s.events else self.wall()
            if not s.final:
                end = self.wall()
            tot = dosing.totals(s.pump, end, None)
            w = s.weight_kg
            rates = [e.mg_per_h for e in s.pump if e.action is not PumpAction.BOLUS]
            start = tot.started_at
            chart = s.effective_chart()
            pains = [(e.observed_at, e.item.nrs) for e in chart if isinstance(e.item, PainItem)]
            before = [n for t, n in pains if start is None or t <= start]
            after = [n for t, n in pains if start is not None and t > start]
            pain_before = before[-1] if before else None
            pain_after = after[-1] if after else None
            relief = (
                round(100.0 * (pain_before - pain_after) / pain_before, 1)
                if pain_before and pain_after is not None
                else None
            )
            sed = [e.item for e in chart if isinstance(e.item, SedationItem)]
            moaas = [x.moaas for x in sed if x.moaas is not None]
            rass = [x.rass for x in sed if x.rass is not None]
            effects = sorted({k.value for e in chart if isinstance(e.item, SideEffectsItem) for k in e.item.effects})
            meds = [f"{e.item.drug} {e.item.dose:g} {e.item.unit}" for e in chart if isinstance(e.item, MedicationItem)]
            plan: InfusionPlan | None = s.plan_input
            rows.append(
                HistoryRow(
                    session_id=s.id,
                    date=s.created_at.date() if s.created_at else None,
                    bay=s.bay,
                    final_phase=s.phase,
                    weight_kg=w,
                    planned_mg_per_kg=plan.dose_mg_per_kg if plan else None,
                    total_mg=round(tot.total_mg, 2),
                    total_mg_per_kg=round(tot.total_mg / w, 3) if w else None,
                    max_rate_mg_per_kg_h=round(max(rates) / w, 3) if rates and w else None,
                    infusion_running_min=round(tot.running_s / 60.0, 1),
                    pain_before=pain_before,
                    pain_after=pain_after,
                    pain_relief_pct=relief,
                    lowest_moaas=min(moaas, default=None),
                    lowest_rass=min(rass, default=None),
                    highest_rass=max(rass, default=None),
                    side_effects=effects,
                    medications=meds,
                )
            )
        return PatientHistory(patient=patient, sessions=rows)
