"""The session workflow: a pure state machine over the session's events (no clock, no I/O).

    decide(state, patient, command, ctx) -> events      (or raises Refused: nothing changes)
    evolve(state, event) -> state                       (folding every event rebuilds a session)
    handle(...) = decide + evolve

Phases: planned → baseline → premedication (optional) → infusion → recovery → ready_for_discharge →
discharged, or aborted from any phase that is not final. ``ctx.now`` is the only clock; every event is
timed with it and attributed to ``ctx.actor``.

Gates (CLINICAL.md Table 1b) are checked when the infusion phase is entered; dose guardrails when a rate or
bolus is given (``dosing``); discharge criteria (Table 5) when ready-for-discharge is entered (``scores``).
Stopping the pump ends the infusion phase (the recovery clock starts then); leaving the infusion phase
stops a running pump.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypedDict

from app.alarms.model import LevelOverride, Phase
from app.sessions import dosing
from app.sessions.model import (
    Actor,
    AlarmLimitsSet,
    AssessmentItem,
    BaselineRecorded,
    ChartCommand,
    ChartEntry,
    Command,
    InfusionPlan,
    MedCategory,
    MedicationItem,
    NewSession,
    PainItem,
    Patient,
    PhaseChanged,
    PumpAction,
    PumpCommand,
    PumpEvent,
    RecordBaseline,
    Refused,
    RetractionItem,
    SedationItem,
    SessionCreated,
    SessionEvent,
    SetAlarmLimits,
    SideEffectsItem,
    Transition,
    Vitals,
)
from app.sessions.scores import Observations, Readiness, readiness

#: Allowed phase changes (ARCHITECTURE.md session workflow). Premedication is optional; a patient who is
#: ready for discharge may fall back to recovery; any phase that is not final may be aborted.
TRANSITIONS: dict[Phase, frozenset[Phase]] = {
    Phase.PLANNED: frozenset({Phase.BASELINE, Phase.ABORTED}),
    Phase.BASELINE: frozenset({Phase.PREMEDICATION, Phase.INFUSION, Phase.ABORTED}),
    Phase.PREMEDICATION: frozenset({Phase.INFUSION, Phase.ABORTED}),
    Phase.INFUSION: frozenset({Phase.RECOVERY, Phase.ABORTED}),
    Phase.RECOVERY: frozenset({Phase.READY_FOR_DISCHARGE, Phase.ABORTED}),
    Phase.READY_FOR_DISCHARGE: frozenset({Phase.DISCHARGED, Phase.RECOVERY, Phase.ABORTED}),
    Phase.DISCHARGED: frozenset(),
    Phase.ABORTED: frozenset(),
}
FINAL = frozenset({Phase.DISCHARGED, Phase.ABORTED})

#: Baseline BP ≥ 180/110 blocks the start unless a physician overrides (Table 1b; Cohen 2018 relative
#: contraindication "poorly controlled cardiovascular disease" [S]; the numbers are [I]).
BP_BLOCK = (180.0, 110.0)
#: Baseline BP ≥ 140/90: ADVISORY "elevated baseline BP – physician review before start" (Table 1b [R]).
BP_ADVISORY = (140.0, 90.0)
#: Baseline SpO₂ < 94 % on room air: ADVISORY (Table 1b [I]).
SPO2_ADVISORY = 94.0
#: Relative contraindications (Cohen 2018, CLINICAL.md Table 2 / §2.2 [S]) looked for in the patient's history.
RELATIVE_CONTRAINDICATIONS = (
    "pregnan",
    "psychosis",
    "psychotic",
    "hepatic",
    "liver",
    "intracranial",
    "icp",
    "glaucoma",
    "intraocular",
    "substance",
    "cardiovascular",
)
#: Predictors of a larger BP rise: older age, hypertension (CLINICAL.md Table 9 [S]; ×1.5 in the simulator).
BP_RISE_PREDICTORS = ("hypertens", "high blood pressure")
#: Sedation charting schedule (CLINICAL.md Table 3 [I]): every 5 min for 15 min after the start, a rate change
#: or midazolam; otherwise every 15 min during the infusion and recovery.
SCORE_FAST = timedelta(minutes=5)
SCORE_SLOW = timedelta(minutes=15)
FAST_WINDOW = timedelta(minutes=15)


@dataclass(frozen=True)
class Ctx:
    """Everything a decision may depend on besides the state: time, who, and the latest vitals."""

    now: datetime
    actor: Actor
    vitals: Vitals | None = None
    recovery_min: timedelta | None = None  # None: the clinical default (Table 5); shorter only for training


@dataclass(frozen=True)
class SessionState:
    """One session, as folded from its events. Immutable; ``evolve`` returns a new one."""

    id: str
    patient_id: str = ""
    bay: str = ""
    weight_kg: float | None = None
    plan: dosing.DoseCalc | None = None
    plan_input: InfusionPlan | None = None
    phase: Phase = Phase.PLANNED
    phase_since: datetime | None = None
    created_at: datetime | None = None
    events: tuple[SessionEvent, ...] = ()
    phases: tuple[PhaseChanged, ...] = ()
    baseline: Vitals | None = None
    pump: tuple[PumpEvent, ...] = ()
    chart: tuple[ChartEntry, ...] = ()
    superseded: dict[int, int] = field(default_factory=dict)  # corrected seq -> correcting seq
    limits: tuple[LevelOverride, ...] = ()  # the patient's own alarm limits (empty: the profile's)

    @property
    def next_seq(self) -> int:
        """The seq the next event gets."""
        return len(self.events)

    @property
    def final(self) -> bool:
        """Discharged or aborted."""
        return self.phase in FINAL

    @property
    def pump_state(self) -> str:
        """idle (never started), running, paused or stopped."""
        for e in reversed(self.pump):
            if e.action is PumpAction.BOLUS:
                continue
            if e.action is PumpAction.STOP:
                return "stopped"
            return "paused" if e.action is PumpAction.PAUSE else "running"
        return "idle"

    def phase_started(self, phase: Phase) -> datetime | None:
        """When the phase was last entered."""
        for p in reversed(self.phases):
            if p.to_phase is phase:
                return p.t
        return None

    def effective_chart(self) -> list[ChartEntry]:
        """Chart entries in force: corrected entries and retractions left out, in observation order."""
        live = [e for e in self.chart if e.seq not in self.superseded and not isinstance(e.item, RetractionItem)]
        return sorted(live, key=lambda e: (e.observed_at, e.seq))


# ---- evolve --------------------------------------------------------------------------------------------


def evolve(state: SessionState, event: SessionEvent) -> SessionState:
    """Fold one event into the state (no checks: events are facts)."""
    if event.seq != state.next_seq:
        raise ValueError(f"session {state.id}: event seq {event.seq}, expected {state.next_seq}")
    s = replace(state, events=(*state.events, event))
    if isinstance(event, SessionCreated):
        return replace(
            s,
            patient_id=event.patient_id,
            bay=event.bay,
            weight_kg=event.weight_kg,
            plan=_calc(event.plan, event.weight_kg),
            plan_input=event.plan,
            phase=Phase.PLANNED,
            phase_since=event.t,
            created_at=event.t,
        )
    if isinstance(event, PhaseChanged):
        return replace(s, phase=event.to_phase, phase_since=event.t, phases=(*s.phases, event))
    if isinstance(event, BaselineRecorded):
        if event.weight_kg is None:
            return replace(s, baseline=event.vitals)
        return replace(s, baseline=event.vitals, weight_kg=event.weight_kg, plan=_calc(s.plan_input, event.weight_kg))
    if isinstance(event, PumpEvent):
        return replace(s, pump=(*s.pump, event))
    if isinstance(event, AlarmLimitsSet):
        return replace(s, limits=event.overrides)
    superseded = dict(s.superseded)
    if event.corrects is not None:
        superseded[event.corrects] = event.seq
    return replace(s, chart=(*s.chart, event), superseded=superseded)


def _calc(plan: InfusionPlan | None, weight_kg: float | None) -> dosing.DoseCalc | None:
    if plan is None:
        return None
    try:
        return dosing.calculate(plan, weight_kg)
    except Refused:
        return None  # weight missing or implausible: the infusion gate says so


def rebuild(session_id: str, events: list[SessionEvent]) -> SessionState:
    """A session from its stored events."""
    state = SessionState(id=session_id)
    for e in sorted(events, key=lambda e: e.seq):
        state = evolve(state, e)
    return state


# ---- decide --------------------------------------------------------------------------------------------


class _Base(TypedDict):
    session_id: str
    seq: int
    t: datetime
    user: str


def _base(state: SessionState, ctx: Ctx, offset: int = 0) -> _Base:
    return {"session_id": state.id, "seq": state.next_seq + offset, "t": ctx.now, "user": ctx.actor.name}


def _override(ctx: Ctx, reason: str | None, code: str, message: str) -> None:
    """Refuse unless a physician overrides with a reason."""
    if not reason:
        raise Refused(code, f"{message} A physician may override it with a reason.", status=409)
    if not ctx.actor.physician:
        raise Refused(code, f"{message} Only a physician may override it.", status=403)


def create(session_id: str, patient: Patient, cmd: NewSession, ctx: Ctx) -> SessionCreated:
    """The first event of a session (weight defaults to the patient's; the plan is checked if given)."""
    weight = cmd.weight_kg if cmd.weight_kg is not None else patient.weight_kg
    advisories: list[str] = []
    overrides: tuple[str, ...] = ()
    if cmd.plan is not None:
        # The rate in mg/kg/h does not depend on the weight: check it now, even before the patient is weighed.
        mg_per_kg_h = cmd.plan.dose_mg_per_kg / (cmd.plan.duration_min / 60.0)
        check = dosing.check_rate(mg_per_kg_h, physician=ctx.actor.physician, override_reason=cmd.override_reason)
        advisories += check.advisories
        overrides = check.overrides
        try:
            dosing.check_weight(weight)
        except Refused as e:
            advisories.append(e.reason + " Record the weight with the baseline.")
    return SessionCreated(
        session_id=session_id,
        seq=0,
        t=ctx.now,
        user=ctx.actor.name,
        patient_id=patient.id,
        bay=cmd.bay,
        weight_kg=weight,
        plan=cmd.plan,
        indication=cmd.indication,
        advisories=tuple(advisories),
        overrides=overrides,
        override_reason=cmd.override_reason if overrides else None,
    )


def decide(state: SessionState, patient: Patient, cmd: Command, ctx: Ctx) -> list[SessionEvent]:
    """The events a command produces, or ``Refused`` with a clear reason (nothing changes)."""
    if isinstance(cmd, NewSession):
        raise Refused("already_created", "The session already exists.")
    if isinstance(cmd, ChartCommand):
        return [_chart(state, cmd, ctx)]
    if state.final:
        raise Refused("session_closed", f"The session is {state.phase.value}: only chart entries can be added.")
    if isinstance(cmd, Transition):
        return _transition(state, patient, cmd, ctx)
    if isinstance(cmd, SetAlarmLimits):
        if not ctx.actor.physician:
            raise Refused("physician_only", "Only a physician may set a patient's own alarm limits.", status=403)
        return [AlarmLimitsSet(**_base(state, ctx), overrides=cmd.overrides)]
    if isinstance(cmd, RecordBaseline):
        if state.phase not in (Phase.PLANNED, Phase.BASELINE, Phase.PREMEDICATION):
            raise Refused("baseline_too_late", "The baseline can only be recorded before the infusion starts.")
        return [BaselineRecorded(**_base(state, ctx), vitals=cmd.vitals, source=cmd.source, weight_kg=cmd.weight_kg)]
    return _pump(state, cmd, ctx)


def _transition(state: SessionState, patient: Patient, cmd: Transition, ctx: Ctx) -> list[SessionEvent]:
    to, frm = cmd.to, state.phase
    if to is frm:
        raise Refused("same_phase", f"The session is already in {frm.value}.")
    if to not in TRANSITIONS[frm]:
        allowed = ", ".join(sorted(p.value for p in TRANSITIONS[frm])) or "none"
        raise Refused("invalid_transition", f"Cannot go from {frm.value} to {to.value} (allowed: {allowed}).")
    events: list[SessionEvent] = []
    advisories: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    checks: tuple[str, ...] = ()
    if to is Phase.ABORTED and not cmd.reason:
        raise Refused("reason_required", "Give a reason to abort the session.", status=422)
    if to is Phase.INFUSION:
        advisories, overrides = infusion_gates(state, patient, cmd.override_reason, ctx)
    if to is Phase.RECOVERY and state.pump_state == "idle":
        raise Refused("infusion_not_started", "The infusion was never started: start it, or abort the session.")
    if to is Phase.READY_FOR_DISCHARGE:
        r = discharge_readiness(state, ctx.vitals, ctx.now, ctx.recovery_min)
        if not r.ready:
            raise Refused("discharge_criteria_unmet", "Not ready for discharge: " + "; ".join(r.unmet))
        checks = tuple(f"{c.name}: {c.detail}" for c in r.checks)
    if frm is Phase.INFUSION and state.pump_state in ("running", "paused"):
        events.append(PumpEvent(**_base(state, ctx), action=PumpAction.STOP))
    events.append(
        PhaseChanged(
            **_base(state, ctx, len(events)),
            from_phase=frm,
            to_phase=to,
            reason=cmd.reason,
            advisories=advisories,
            overrides=overrides,
            override_reason=cmd.override_reason if overrides else None,
            checks=checks,
        )
    )
    return events


def infusion_gates(
    state: SessionState, patient: Patient, override_reason: str | None, ctx: Ctx
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Pre-infusion gates (CLINICAL.md Table 1b): (advisories, overridden gates), or ``Refused``."""
    if state.plan is None:
        if state.plan_input is None:
            raise Refused("no_plan", "No infusion plan: the dose cannot be calculated.")
        dosing.calculate(state.plan_input, state.weight_kg)  # raises the weight refusal
    advisories: list[str] = []
    overrides: list[str] = []
    b = state.baseline
    if b is None or b.sbp is None or b.dbp is None:
        # Table 3: baseline NIBP ×2 before the start; §2.4: capture a pre-sedation baseline (scores need it) [I].
        _override(ctx, override_reason, "baseline_bp_missing", "No baseline blood pressure recorded (Table 3).")
        overrides.append("baseline_bp_missing")
    else:
        if b.sbp >= BP_BLOCK[0] or b.dbp >= BP_BLOCK[1]:
            _override(
                ctx,
                override_reason,
                "baseline_bp_high",
                f"Baseline BP {b.sbp:.0f}/{b.dbp:.0f} is at or above {BP_BLOCK[0]:.0f}/{BP_BLOCK[1]:.0f}: "
                "the start is blocked (Table 1b; Cohen 2018 'poorly controlled cardiovascular disease').",
            )
            overrides.append("baseline_bp_high")
        elif b.sbp >= BP_ADVISORY[0] or b.dbp >= BP_ADVISORY[1]:
            advisories.append(
                f"Elevated baseline BP {b.sbp:.0f}/{b.dbp:.0f} (>= 140/90): physician review before start (Table 1b)."
            )
    if b is not None and b.spo2 is not None and b.spo2 < SPO2_ADVISORY:
        advisories.append(f"Baseline SpO2 {b.spo2:.0f} % < 94 % on room air (Table 1b).")
    if any("ketamine" in a.lower() for a in patient.allergies):
        _override(ctx, override_reason, "ketamine_allergy", "The patient has a recorded ketamine allergy [I].")
        overrides.append("ketamine_allergy")
    flagged = [h for h in patient.history if any(k in h.lower() for k in RELATIVE_CONTRAINDICATIONS)]
    if flagged:
        advisories.append(
            "Relative contraindication in history: " + ", ".join(flagged) + " (Cohen 2018, CLINICAL.md §2.2)."
        )
    htn = [h for h in patient.history if any(k in h.lower() for k in BP_RISE_PREDICTORS)]
    if htn:
        advisories.append(
            "History of " + ", ".join(htn) + ": larger BP rises are expected during the infusion "
            "(CLINICAL.md Table 9, predictors of a larger BP rise)."
        )
    return tuple(advisories), tuple(overrides)


def _rate_mg_per_h(state: SessionState, cmd: PumpCommand) -> float:
    weight = dosing.check_weight(state.weight_kg)
    if cmd.mg_per_kg_h is not None and cmd.ml_per_h is not None:
        raise Refused("ambiguous_rate", "Give the rate as mg/kg/h or as mL/h, not both.", status=422)
    if cmd.mg_per_kg_h is not None:
        return cmd.mg_per_kg_h * weight
    if cmd.ml_per_h is not None:
        if state.plan is None:
            raise Refused("no_concentration", "A rate in mL/h needs the plan's syringe concentration.", status=422)
        return cmd.ml_per_h * state.plan.concentration_mg_per_ml
    if cmd.action is PumpAction.START and state.plan is not None:
        return state.plan.mg_per_h
    raise Refused("rate_required", "Give the rate (mg/kg/h or mL/h).", status=422)


def _pump(state: SessionState, cmd: PumpCommand, ctx: Ctx) -> list[SessionEvent]:
    if state.phase is not Phase.INFUSION:
        raise Refused(
            "not_in_infusion", f"Infusion events need the infusion phase (the session is {state.phase.value})."
        )
    pump, act = state.pump_state, cmd.action
    conc = state.plan.concentration_mg_per_ml if state.plan else None
    base = _base(state, ctx)

    def ml(mg_per_h: float) -> float:
        return mg_per_h / conc if conc else 0.0

    if act is PumpAction.BOLUS:
        weight = dosing.check_weight(state.weight_kg)
        if (cmd.bolus_mg is None) == (cmd.bolus_mg_per_kg is None):
            raise Refused("bolus_dose", "Give the bolus as bolus_mg or bolus_mg_per_kg (one of them).", status=422)
        mg = cmd.bolus_mg if cmd.bolus_mg is not None else (cmd.bolus_mg_per_kg or 0.0) * weight
        check = dosing.check_bolus(mg / weight, physician=ctx.actor.physician, override_reason=cmd.override_reason)
        rate = next((e.mg_per_h for e in reversed(state.pump) if e.action is not PumpAction.BOLUS), 0.0)
        return [
            PumpEvent(
                **base,
                action=act,
                bolus_mg=mg,
                mg_per_h=rate,
                ml_per_h=ml(rate),
                overrides=check.overrides,
                override_reason=cmd.override_reason if check.overrides else None,
            )
        ]
    allowed_from = {
        PumpAction.START: ("idle",),
        PumpAction.RATE: ("running",),
        PumpAction.PAUSE: ("running",),
        PumpAction.RESUME: ("paused",),
        PumpAction.STOP: ("running", "paused"),
    }[act]
    if pump not in allowed_from:
        raise Refused("pump_state", f"Cannot {act.value} the infusion: it is {pump}.")
    if act in (PumpAction.START, PumpAction.RATE):
        mg_per_h = _rate_mg_per_h(state, cmd)
        if mg_per_h <= 0:
            raise Refused("rate_zero", "The rate must be above zero (use pause or stop).", status=422)
        check = dosing.check_rate(
            mg_per_h / (state.weight_kg or 1.0), physician=ctx.actor.physician, override_reason=cmd.override_reason
        )
        return [
            PumpEvent(
                **base,
                action=act,
                mg_per_h=mg_per_h,
                ml_per_h=ml(mg_per_h),
                advisories=check.advisories,
                overrides=check.overrides,
                override_reason=cmd.override_reason if check.overrides else None,
            )
        ]
    if act is PumpAction.PAUSE:
        return [PumpEvent(**base, action=act)]
    if act is PumpAction.RESUME:
        rated = (PumpAction.START, PumpAction.RATE, PumpAction.RESUME)
        before = next(e for e in reversed(state.pump) if e.action in rated)
        return [PumpEvent(**base, action=act, mg_per_h=before.mg_per_h, ml_per_h=before.ml_per_h)]
    # stop: the infusion phase ends, the recovery clock starts
    stop = PumpEvent(**base, action=act)
    change = PhaseChanged(
        **_base(state, ctx, 1),
        from_phase=Phase.INFUSION,
        to_phase=Phase.RECOVERY,
        reason="infusion stopped",
    )
    return [stop, change]


def _chart(state: SessionState, cmd: ChartCommand, ctx: Ctx) -> ChartEntry:
    observed = cmd.observed_at or ctx.now
    if observed > ctx.now + timedelta(seconds=60):
        raise Refused("observed_in_future", "The observation time is in the future.", status=422)
    if state.created_at is not None and observed < state.created_at - timedelta(hours=12):
        raise Refused("observed_too_early", "The observation time is long before the session.", status=422)
    if isinstance(cmd.item, RetractionItem) and cmd.corrects is None:
        raise Refused("corrects_required", "A retraction must name the entry it retracts (corrects).", status=422)
    if cmd.corrects is not None:
        target = next((e for e in state.chart if e.seq == cmd.corrects), None)
        if target is None:
            raise Refused("no_such_entry", f"There is no chart entry {cmd.corrects} in this session.", status=404)
        if cmd.corrects in state.superseded:
            raise Refused(
                "already_corrected",
                f"Entry {cmd.corrects} was already corrected by entry {state.superseded[cmd.corrects]}: "
                "correct that one.",
            )
        if isinstance(target.item, RetractionItem):
            raise Refused("cannot_correct_retraction", "A retraction cannot be corrected.")
        if not isinstance(cmd.item, RetractionItem) and cmd.item.type != target.item.type:
            raise Refused(
                "correction_type",
                f"Entry {cmd.corrects} is a {target.item.type} entry; a correction must be one too (or a retraction).",
                status=422,
            )
        if cmd.observed_at is None:
            observed = target.observed_at  # a correction is about the same observation
    return ChartEntry(**_base(state, ctx), item=cmd.item, observed_at=observed, corrects=cmd.corrects)


def handle(state: SessionState, patient: Patient, cmd: Command, ctx: Ctx) -> tuple[SessionState, list[SessionEvent]]:
    """Decide and fold: the new state and the events to record."""
    events = decide(state, patient, cmd, ctx)
    for e in events:
        state = evolve(state, e)
    return state, events


# ---- views ---------------------------------------------------------------------------------------------


def observations(state: SessionState) -> Observations:
    """The latest charted values after corrections (for the discharge scores)."""
    rass = moaas = pain = effects = None
    assessment: dict[str, tuple[object, datetime]] = {}
    reversal = False
    for e in state.effective_chart():
        it, t = e.item, e.observed_at
        if isinstance(it, SedationItem):
            if it.rass is not None:
                rass = (it.rass, t)
            if it.moaas is not None:
                moaas = (it.moaas, t)
        elif isinstance(it, PainItem):
            pain = (it.nrs, t)
        elif isinstance(it, SideEffectsItem):
            effects = (dict(it.effects), t)
        elif isinstance(it, AssessmentItem):
            for name, value in it.model_dump(exclude={"type"}, exclude_none=True).items():
                assessment[name] = (value, t)
        elif isinstance(it, MedicationItem) and it.effective_category is MedCategory.REVERSAL:
            reversal = True
    return Observations(
        rass=rass, moaas=moaas, pain_nrs=pain, side_effects=effects, assessment=assessment, reversal_given=reversal
    )


def recovery_started(state: SessionState) -> datetime | None:
    """When the recovery clock started: the pump stop (or entering recovery if later events say otherwise)."""
    entered = state.phase_started(Phase.RECOVERY)
    if entered is None:
        return None
    first = next((p.t for p in state.phases if p.to_phase is Phase.RECOVERY), entered)
    stop = next((e.t for e in state.pump if e.action is PumpAction.STOP), None)
    return stop or first


def discharge_readiness(
    state: SessionState, vitals: Vitals | None, now: datetime, recovery_min: timedelta | None = None
) -> Readiness:
    """Table 5 criteria as of ``now``."""
    return readiness(observations(state), state.baseline, vitals, recovery_started(state), now, recovery_min)


@dataclass(frozen=True)
class Clocks:
    """Session clocks as of ``now`` (seconds)."""

    phase: str
    phase_elapsed_s: float
    infusion_started_at: datetime | None
    infusion_stopped_at: datetime | None
    infusion_elapsed_s: float | None  # since the start (pauses included)
    infusion_running_s: float  # pump running time
    infusion_planned_s: float | None
    infusion_remaining_s: float | None
    infusion_overrun: bool
    recovery_started_at: datetime | None
    recovery_elapsed_s: float | None
    recovery_required_s: float
    recovery_remaining_s: float | None
    sedation_score_due_at: datetime | None
    sedation_score_overdue: bool


def clocks(state: SessionState, now: datetime, recovery_min: timedelta | None = None) -> Clocks:
    """Infusion elapsed vs planned, recovery clock (≥ 30 min, Table 5) and the next sedation score due."""
    from app.sessions.scores import RECOVERY_AFTER_REVERSAL, RECOVERY_MIN

    tot = dosing.totals(state.pump, now, None)
    start, stop = tot.started_at, tot.stopped_at
    planned = state.plan.duration_min * 60.0 if state.plan else None
    if state.plan is None and state.plan_input is not None:
        planned = state.plan_input.duration_min * 60.0
    elapsed = None if start is None else ((stop or now) - start).total_seconds()
    rec = recovery_started(state)
    obs = observations(state)
    need = (RECOVERY_AFTER_REVERSAL if obs.reversal_given else recovery_min or RECOVERY_MIN).total_seconds()
    rec_elapsed = None if rec is None else (now - rec).total_seconds()
    due = sedation_due(state)
    return Clocks(
        phase=state.phase.value,
        phase_elapsed_s=(now - state.phase_since).total_seconds() if state.phase_since else 0.0,
        infusion_started_at=start,
        infusion_stopped_at=stop,
        infusion_elapsed_s=elapsed,
        infusion_running_s=tot.running_s,
        infusion_planned_s=planned,
        infusion_remaining_s=None if planned is None or start is None or stop else max(0.0, planned - tot.running_s),
        infusion_overrun=bool(planned is not None and start is not None and stop is None and tot.running_s > planned),
        recovery_started_at=rec,
        recovery_elapsed_s=rec_elapsed,
        recovery_required_s=need,
        recovery_remaining_s=None if rec_elapsed is None else max(0.0, need - rec_elapsed),
        sedation_score_due_at=due,
        sedation_score_overdue=due is not None and now > due,
    )


def sedation_due(state: SessionState) -> datetime | None:
    """When the next sedation score is due (CLINICAL.md Table 3 [I]); None when no schedule applies."""
    if state.final or state.phase in (Phase.PLANNED, Phase.READY_FOR_DISCHARGE):
        return None
    chart = state.effective_chart()
    scores = [e.observed_at for e in chart if isinstance(e.item, SedationItem)]
    last = scores[-1] if scores else None
    triggers = [e.t for e in state.pump if e.action in (PumpAction.START, PumpAction.RATE)]
    triggers += [
        e.observed_at
        for e in chart
        if isinstance(e.item, MedicationItem) and e.item.effective_category is MedCategory.BENZODIAZEPINE
    ]
    trigger = max(triggers, default=None)
    ref = max(t for t in (last, trigger, state.phase_since) if t is not None)
    fast = trigger is not None and ref - trigger < FAST_WINDOW
    if state.phase in (Phase.BASELINE, Phase.PREMEDICATION) and not fast:
        return None  # before the infusion, scores are charted once at baseline and after midazolam only
    return ref + (SCORE_FAST if fast else SCORE_SLOW)
