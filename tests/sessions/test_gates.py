"""Pre-infusion gates (CLINICAL.md Table 1b) when the infusion phase is entered."""

from __future__ import annotations

import pytest

from app.alarms.model import Phase
from app.sessions.model import PhaseChanged, RecordBaseline, Transition, Vitals
from tests.sessions.helpers import DOCTOR, NURSE, Run, new_run, patient


def _at_baseline(sbp: float | None, dbp: float | None, spo2: float | None = 98, **pat: object) -> Run:
    run = new_run(patient(**pat)) if pat else new_run()
    run.go(Phase.BASELINE, 1)
    if sbp is not None or dbp is not None:
        run.do(RecordBaseline(vitals=Vitals(sbp=sbp, dbp=dbp, hr=70, spo2=spo2)), 6)
    return run


@pytest.mark.parametrize(
    ("sbp", "dbp", "blocked", "advisory"),
    [
        (125, 80, False, None),
        (139, 89, False, None),
        (140, 80, False, "Elevated baseline BP 140/80"),
        (130, 90, False, "Elevated baseline BP"),
        (179, 109, False, "Elevated baseline BP"),
        (180, 80, True, None),
        (150, 110, True, None),
        (210, 125, True, None),
    ],
)
def test_baseline_bp_gate(sbp: float, dbp: float, blocked: bool, advisory: str | None) -> None:
    run = _at_baseline(sbp, dbp)
    if blocked:
        r = run.refuse(Transition(to=Phase.INFUSION), 10)
        assert r.code == "baseline_bp_high" and r.status == 409
        assert "physician may override" in r.reason and "Table 1b" in r.reason
        return
    (e,) = run.go(Phase.INFUSION, 10)
    assert isinstance(e, PhaseChanged)
    if advisory is None:
        assert e.advisories == ()
    else:
        assert any(advisory in a for a in e.advisories)


def test_high_bp_override_needs_a_physician_and_a_reason() -> None:
    run = _at_baseline(185, 100)
    assert run.refuse(Transition(to=Phase.INFUSION), 10, actor=DOCTOR).code == "baseline_bp_high"
    r = run.refuse(Transition(to=Phase.INFUSION, override_reason="repeat 150/90"), 10, actor=NURSE)
    assert r.status == 403 and "Only a physician" in r.reason
    (e,) = run.go(Phase.INFUSION, 10, actor=DOCTOR, override_reason="repeat BP 150/90 after rest")
    assert isinstance(e, PhaseChanged)
    assert e.overrides == ("baseline_bp_high",)
    assert e.override_reason == "repeat BP 150/90 after rest" and e.user == "dr.d"


def test_missing_baseline_bp_blocks_unless_overridden() -> None:
    run = _at_baseline(None, None)
    r = run.refuse(Transition(to=Phase.INFUSION), 10)
    assert r.code == "baseline_bp_missing"
    (e,) = run.go(Phase.INFUSION, 10, actor=DOCTOR, override_reason="cuff failing, manual BP normal")
    assert isinstance(e, PhaseChanged) and e.overrides == ("baseline_bp_missing",)


def test_low_baseline_spo2_is_an_advisory() -> None:
    run = _at_baseline(120, 80, spo2=93)
    (e,) = run.go(Phase.INFUSION, 10)
    assert isinstance(e, PhaseChanged) and any("SpO2 93" in a for a in e.advisories)


@pytest.mark.parametrize(
    ("weight", "code"), [(None, "weight_missing"), (30.0, "weight_implausible"), (210.0, "weight_implausible")]
)
def test_weight_blocks_the_calculation_even_for_a_physician(weight: float | None, code: str) -> None:
    run = _at_baseline(120, 80, weight_kg=weight)
    assert run.refuse(Transition(to=Phase.INFUSION, override_reason="x"), 10, actor=DOCTOR).code == code


def test_no_plan_blocks_the_start() -> None:
    run = new_run(plan=None)
    run.go(Phase.BASELINE, 1)
    run.do(RecordBaseline(vitals=Vitals(sbp=120, dbp=80)), 5)
    assert run.refuse(Transition(to=Phase.INFUSION), 10).code == "no_plan"


def test_ketamine_allergy_blocks_and_history_warns() -> None:
    run = _at_baseline(120, 80, allergies=("Ketamine (rash)",))
    assert run.refuse(Transition(to=Phase.INFUSION), 10).code == "ketamine_allergy"
    run = _at_baseline(120, 80, history=("hypertension", "Pregnancy 12 weeks"))
    (e,) = run.go(Phase.INFUSION, 10)
    assert isinstance(e, PhaseChanged)
    assert any("Pregnancy 12 weeks" in a and "Cohen 2018" in a for a in e.advisories)


def test_weight_recorded_with_the_baseline_unblocks_the_calculation() -> None:
    run = _at_baseline(None, None, weight_kg=None)
    assert run.state.plan is None and any("Weight is missing" in a for a in run.state.events[0].advisories)  # type: ignore[union-attr]
    run.do(RecordBaseline(vitals=Vitals(sbp=120, dbp=80), weight_kg=64), 6)
    after = run.state  # a new name: the state changed under mypy's narrowing of ``run.state.plan`` above
    assert after.weight_kg == 64 and after.plan is not None
    assert after.plan.ml_per_h == 32
    run.go(Phase.INFUSION, 10)


def test_session_weight_overrides_the_patients() -> None:
    run = new_run(patient(weight_kg=None), weight_kg=82.0)
    assert run.state.weight_kg == 82.0 and run.state.plan is not None
    assert run.state.plan.mg_per_h == pytest.approx(41.0)
