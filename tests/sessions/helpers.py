"""A tiny driver for the pure workflow: a session, a clock in minutes, and the phase walk used by the tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest

from app.alarms.model import Phase
from app.sessions import workflow
from app.sessions.model import (
    Actor,
    AssessmentItem,
    ChartCommand,
    ChartItem,
    Command,
    InfusionPlan,
    MedicationItem,
    NewSession,
    PainItem,
    Patient,
    PumpAction,
    PumpCommand,
    RecordBaseline,
    Refused,
    SedationItem,
    SessionEvent,
    SideEffectsItem,
    Transition,
    Vitals,
)
from app.sessions.workflow import Ctx, SessionState

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NURSE = Actor(name="nurse.n")
DOCTOR = Actor(name="dr.d", physician=True)
PLAN = InfusionPlan(dose_mg_per_kg=0.5, duration_min=60, concentration_mg_per_ml=1.0)
GOOD_BASELINE = Vitals(sbp=125, dbp=80, hr=72, spo2=98)


def at(minutes: float) -> datetime:
    """T0 + minutes."""
    return T0 + timedelta(minutes=minutes)


def patient(**changes: object) -> Patient:
    """A 70-kg adult with no relevant history."""
    values: dict[str, object] = {
        "id": "p1",
        "identifier": "MRN-1",
        "name": "Test Patient",
        "birth_date": date(1970, 1, 1),
        "weight_kg": 70.0,
        "created_at": T0 - timedelta(days=30),
        "created_by": "admin",
    }
    values.update(changes)
    return Patient.model_validate(values)


def good_vitals(minutes: float) -> Vitals:
    """Vitals close to the baseline, measured at ``minutes``."""
    return Vitals(sbp=128, dbp=82, hr=75, spo2=97, rr=14, bp_at=at(minutes), at=at(minutes))


@dataclass
class Run:
    """One session driven through the pure workflow."""

    state: SessionState
    patient: Patient

    def do(self, cmd: Command, minute: float, actor: Actor = NURSE, vitals: Vitals | None = None) -> list[SessionEvent]:
        """Apply a command at T0 + minute; fails the test if it is refused."""
        self.state, events = workflow.handle(self.state, self.patient, cmd, Ctx(at(minute), actor, vitals))
        return events

    def refuse(self, cmd: Command, minute: float, actor: Actor = NURSE, vitals: Vitals | None = None) -> Refused:
        """Apply a command that must be refused; checks nothing changed."""
        before = self.state
        with pytest.raises(Refused) as info:
            self.do(cmd, minute, actor, vitals)
        assert self.state is before
        return info.value

    def go(self, to: Phase, minute: float, **kw: object) -> list[SessionEvent]:
        """Transition."""
        vitals = kw.pop("vitals", None)
        actor = kw.pop("actor", NURSE)
        assert isinstance(actor, Actor)
        assert vitals is None or isinstance(vitals, Vitals)
        return self.do(Transition.model_validate({"to": to, **kw}), minute, actor, vitals)

    def chart(self, item: ChartItem, minute: float, corrects: int | None = None) -> SessionEvent:
        """One chart entry; returns it."""
        (e,) = self.do(ChartCommand(item=item, corrects=corrects), minute)
        return e

    def pump(self, action: PumpAction, minute: float, actor: Actor = NURSE, **kw: object) -> list[SessionEvent]:
        """An infusion event."""
        return self.do(PumpCommand.model_validate({"action": action, **kw}), minute, actor)


def new_run(p: Patient | None = None, plan: InfusionPlan | None = PLAN, weight_kg: float | None = None) -> Run:
    """A planned session at T0."""
    pat = p or patient()
    cmd = NewSession(patient_id=pat.id, bay="bay1", weight_kg=weight_kg, plan=plan)
    event = workflow.create("s1", pat, cmd, Ctx(T0, NURSE))
    return Run(workflow.evolve(SessionState(id="s1"), event), pat)


def chart_recovered(run: Run, minute: float) -> None:
    """Everything the discharge criteria need, charted as fit for discharge."""
    run.chart(SedationItem(rass=0, moaas=5), minute)
    run.chart(PainItem(nrs=2), minute)
    run.chart(SideEffectsItem(effects={}), minute)
    run.chart(
        AssessmentItem(
            limbs_moving=4,
            respiration="deep",
            consciousness="awake",
            on_oxygen=False,
            oriented=True,
            steady_gait=True,
            tolerating_fluids=True,
            voided=True,
            escort_present=True,
        ),
        minute,
    )


#: Minutes at which ``drive`` leaves the session in each phase, and when a table's transition is tried.
TRY_AT = {
    Phase.PLANNED: 1,
    Phase.BASELINE: 8,
    Phase.PREMEDICATION: 9,
    Phase.INFUSION: 40,
    Phase.RECOVERY: 105,
    Phase.READY_FOR_DISCHARGE: 106,
    Phase.DISCHARGED: 110,
    Phase.ABORTED: 5,
}


def drive(phase: Phase) -> Run:
    """A session walked by the usual route into ``phase`` (with baseline, plan and charting done)."""
    run = new_run()
    if phase is Phase.PLANNED:
        return run
    if phase is Phase.ABORTED:
        run.go(Phase.ABORTED, 2, reason="patient declined")
        return run
    run.go(Phase.BASELINE, 1)
    run.do(RecordBaseline(vitals=GOOD_BASELINE), 7)
    if phase is Phase.BASELINE:
        return run
    if phase is Phase.PREMEDICATION:
        run.go(Phase.PREMEDICATION, 8)
        run.chart(MedicationItem(drug="midazolam", dose=2), 8)
        return run
    run.go(Phase.INFUSION, 10)
    run.pump(PumpAction.START, 10)
    if phase is Phase.INFUSION:
        return run
    run.pump(PumpAction.STOP, 70)
    chart_recovered(run, 104)
    if phase is Phase.RECOVERY:
        return run
    run.go(Phase.READY_FOR_DISCHARGE, 105, vitals=good_vitals(105))
    if phase is Phase.READY_FOR_DISCHARGE:
        return run
    run.go(Phase.DISCHARGED, 108)
    assert run.state.phase is Phase.DISCHARGED
    return run
