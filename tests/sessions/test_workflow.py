"""The phase state machine as a table: every (from, to) pair is allowed or refused with a reason; each change
is timed and attributed; refused commands change nothing; a session rebuilds from its events."""

from __future__ import annotations

import itertools

import pytest

from app.alarms.model import Phase
from app.sessions import workflow
from app.sessions.model import PhaseChanged, PumpAction, PumpEvent, RecordBaseline, Transition
from tests.sessions.helpers import DOCTOR, NURSE, TRY_AT, Run, at, drive, good_vitals

P = Phase
#: The specification (ARCHITECTURE.md): the forward path, optional premedication, fall-back from ready to
#: recovery, and abort from any phase that is not final.
ALLOWED = {
    (P.PLANNED, P.BASELINE),
    (P.BASELINE, P.PREMEDICATION),
    (P.BASELINE, P.INFUSION),
    (P.PREMEDICATION, P.INFUSION),
    (P.INFUSION, P.RECOVERY),
    (P.RECOVERY, P.READY_FOR_DISCHARGE),
    (P.READY_FOR_DISCHARGE, P.DISCHARGED),
    (P.READY_FOR_DISCHARGE, P.RECOVERY),
    *((p, P.ABORTED) for p in P if p not in (P.DISCHARGED, P.ABORTED)),
}


def _try(run: Run, to: Phase, minute: float) -> None:
    run.go(to, minute, vitals=good_vitals(minute), reason="test reason")


@pytest.mark.parametrize(("frm", "to"), list(itertools.product(P, P)), ids=lambda p: p.value)
def test_transition_table(frm: Phase, to: Phase) -> None:
    run = drive(frm)
    assert run.state.phase is frm
    minute = TRY_AT[frm]
    if (frm, to) in ALLOWED:
        before = len(run.state.events)
        _try(run, to, minute)
        assert run.state.phase is to
        change = [e for e in run.state.events[before:] if isinstance(e, PhaseChanged)]
        assert len(change) == 1
        assert (change[0].from_phase, change[0].to_phase, change[0].t, change[0].user) == (
            frm,
            to,
            at(minute),
            NURSE.name,
        )
        assert run.state.phase_since == at(minute)
    else:
        refusal = run.refuse(Transition(to=to, reason="x"), minute, vitals=good_vitals(minute))
        assert refusal.code in ("invalid_transition", "same_phase", "session_closed")
        assert refusal.reason
        assert frm.value in refusal.reason


def test_table_matches_the_implementation() -> None:
    assert {(f, t) for f, tos in workflow.TRANSITIONS.items() for t in tos} == ALLOWED


def test_invalid_transition_names_the_allowed_ones() -> None:
    run = drive(P.PLANNED)
    r = run.refuse(Transition(to=P.INFUSION), 1)
    assert r.code == "invalid_transition" and r.status == 409
    assert "Cannot go from planned to infusion" in r.reason and "baseline" in r.reason


def test_abort_needs_a_reason_and_stops_a_running_pump() -> None:
    run = drive(P.INFUSION)
    assert run.refuse(Transition(to=P.ABORTED), 20).code == "reason_required"
    events = run.go(P.ABORTED, 20, reason="emergence reaction")
    assert [type(e).__name__ for e in events] == ["PumpEvent", "PhaseChanged"]
    assert isinstance(events[0], PumpEvent) and events[0].action is PumpAction.STOP
    assert run.state.pump_state == "stopped"
    assert [e.seq for e in run.state.events] == list(range(len(run.state.events)))


def test_leaving_infusion_stops_the_pump_and_starts_recovery() -> None:
    run = drive(P.INFUSION)
    run.go(P.RECOVERY, 55)
    assert run.state.pump_state == "stopped"
    assert workflow.recovery_started(run.state) == at(55)


def test_recovery_needs_a_started_infusion() -> None:
    run = drive(P.BASELINE)
    run.go(P.INFUSION, 10)
    assert run.refuse(Transition(to=P.RECOVERY), 12).code == "infusion_not_started"


def test_closed_session_refuses_everything_but_charting() -> None:
    run = drive(P.DISCHARGED)
    assert run.refuse(RecordBaseline(vitals=good_vitals(1)), 120).code == "session_closed"
    r = run.refuse(Transition(to=P.RECOVERY), 120)
    assert r.code == "session_closed"


def test_baseline_only_before_the_infusion() -> None:
    run = drive(P.INFUSION)
    assert run.refuse(RecordBaseline(vitals=good_vitals(20)), 20).code == "baseline_too_late"


def test_rebuild_from_events_gives_the_same_state() -> None:
    run = drive(P.DISCHARGED)
    again = workflow.rebuild(run.state.id, list(reversed(run.state.events)))
    assert again == run.state


def test_events_out_of_order_are_rejected() -> None:
    run = drive(P.BASELINE)
    with pytest.raises(ValueError, match="seq"):
        workflow.evolve(run.state, run.state.events[1])


def test_physician_attribution_is_recorded() -> None:
    run = drive(P.PLANNED)
    (e,) = run.go(P.BASELINE, 3, actor=DOCTOR)
    assert e.user == "dr.d" and e.t == at(3)
