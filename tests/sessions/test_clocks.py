"""Clocks: infusion elapsed vs planned, the recovery clock from the pump stop, and sedation scores due."""

from __future__ import annotations

import pytest

from app.alarms.model import Phase
from app.sessions import workflow
from app.sessions.model import MedicationItem, PumpAction, SedationItem
from tests.sessions.helpers import at, drive


def test_infusion_clock_with_a_pause() -> None:
    run = drive(Phase.INFUSION)  # started at minute 10, plan 60 min
    c = workflow.clocks(run.state, at(40))
    assert (c.infusion_started_at, c.infusion_elapsed_s, c.infusion_running_s) == (at(10), 1800, 1800)
    assert (c.infusion_planned_s, c.infusion_remaining_s, c.infusion_overrun) == (3600, 1800, False)
    run.pump(PumpAction.PAUSE, 40)
    run.pump(PumpAction.RESUME, 45)
    c = workflow.clocks(run.state, at(75))
    assert c.infusion_elapsed_s == 65 * 60 and c.infusion_running_s == 60 * 60 and c.infusion_remaining_s == 0
    c = workflow.clocks(run.state, at(76))
    assert c.infusion_overrun
    assert c.recovery_started_at is None and c.recovery_elapsed_s is None


def test_recovery_clock_starts_when_the_infusion_stops() -> None:
    run = drive(Phase.INFUSION)
    run.pump(PumpAction.STOP, 68)
    c = workflow.clocks(run.state, at(80))
    assert c.infusion_stopped_at == at(68) and c.infusion_elapsed_s == 58 * 60
    assert (c.recovery_started_at, c.recovery_elapsed_s, c.recovery_required_s) == (at(68), 720, 1800)
    assert c.recovery_remaining_s == 1080 and c.infusion_remaining_s is None
    assert c.phase == "recovery" and c.phase_elapsed_s == 720


def test_reversal_agent_lengthens_the_recovery_requirement() -> None:
    run = drive(Phase.INFUSION)
    run.pump(PumpAction.STOP, 70)
    run.chart(MedicationItem(drug="flumazenil", dose=0.2), 75)
    assert workflow.clocks(run.state, at(80)).recovery_required_s == 7200


@pytest.mark.parametrize(
    ("scores", "now", "due", "overdue"),
    [
        ([], 12, 15, False),  # start at 10: first score within 5 min
        ([14], 16, 19, False),
        ([14, 19, 24], 26, 29, False),  # still inside 15 min of the start: every 5 min
        ([14, 19, 24, 27], 30, 42, False),  # after 15 min: every 15 min
        ([14, 19, 24, 27], 45, 42, True),
    ],
)
def test_sedation_schedule_during_infusion(scores: list[int], now: int, due: int, overdue: bool) -> None:
    run = drive(Phase.INFUSION)
    for m in scores:
        run.chart(SedationItem(rass=0), m)
    c = workflow.clocks(run.state, at(now))
    assert (c.sedation_score_due_at, c.sedation_score_overdue) == (at(due), overdue)


def test_rate_change_and_midazolam_restart_the_5_minute_schedule() -> None:
    run = drive(Phase.INFUSION)
    run.chart(SedationItem(rass=0), 30)
    assert workflow.sedation_due(run.state) == at(45)
    run.pump(PumpAction.RATE, 35, mg_per_kg_h=0.8)
    assert workflow.sedation_due(run.state) == at(40)
    run = drive(Phase.BASELINE)
    assert workflow.sedation_due(run.state) is None
    run.go(Phase.PREMEDICATION, 8)
    run.chart(MedicationItem(drug="midazolam", dose=2), 8)
    assert workflow.sedation_due(run.state) == at(13)  # post-benzodiazepine watch (Table 1b)


def test_no_schedule_once_closed() -> None:
    assert workflow.sedation_due(drive(Phase.DISCHARGED).state) is None
