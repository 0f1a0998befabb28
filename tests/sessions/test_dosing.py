"""Dose calculator, guardrails (CLINICAL.md Table 1b), pump events, running total and PK estimates."""

from __future__ import annotations

import pytest

from app.alarms.model import Phase
from app.sessions import dosing
from app.sessions.model import InfusionPlan, NewSession, PumpAction, PumpCommand, PumpEvent, Refused
from app.sessions.workflow import Ctx, create
from tests.sessions.helpers import DOCTOR, NURSE, T0, at, drive, patient


@pytest.mark.parametrize(
    ("weight", "mg_per_kg", "minutes", "conc", "total", "mg_kg_h", "mg_h", "ml_h"),
    [
        (70, 0.5, 60, 1.0, 35.0, 0.5, 35.0, 35.0),  # CLINICAL.md Table 7 regimen B
        (70, 1.0, 60, 1.0, 70.0, 1.0, 70.0, 70.0),  # regimen C
        (70, 0.5, 40, 10.0, 35.0, 0.75, 52.5, 5.25),  # APA reference 0.5 mg/kg over 40 min
        (80, 1.4, 240, 2.0, 112.0, 0.35, 28.0, 14.0),  # CRPS 0.35 mg/kg/h x 4 h
    ],
)
def test_calculator(
    weight: float, mg_per_kg: float, minutes: float, conc: float, total: float, mg_kg_h: float, mg_h: float, ml_h: float
) -> None:
    c = dosing.calculate(
        InfusionPlan(dose_mg_per_kg=mg_per_kg, duration_min=minutes, concentration_mg_per_ml=conc), weight
    )
    assert (c.total_mg, c.mg_per_kg_h, c.mg_per_h, c.ml_per_h) == pytest.approx((total, mg_kg_h, mg_h, ml_h))
    assert c.volume_ml == pytest.approx(total / conc)


def test_plan_duration_defaults_to_60_min() -> None:
    assert InfusionPlan(dose_mg_per_kg=0.5, concentration_mg_per_ml=1).duration_min == 60


@pytest.mark.parametrize(
    ("rate", "actor", "reason", "outcome"),
    [
        (0.5, NURSE, None, "ok"),
        (1.0, NURSE, None, "ok"),
        (1.5, NURSE, None, "advisory"),
        (2.0, NURSE, None, "advisory"),
        (2.1, NURSE, None, "rate_above_soft_limit/422"),
        (2.1, NURSE, "refractory", "rate_above_soft_limit/403"),
        (2.1, DOCTOR, None, "rate_above_soft_limit/422"),
        (2.1, DOCTOR, "refractory CRPS", "override"),
        (7.5, DOCTOR, "x", "rate_above_hard_limit/422"),
    ],
)
def test_rate_guardrails(rate: float, actor: object, reason: str | None, outcome: str) -> None:
    physician = actor is DOCTOR
    if "/" in outcome:
        code, status = outcome.split("/")
        with pytest.raises(Refused) as info:
            dosing.check_rate(rate, physician=physician, override_reason=reason)
        assert (info.value.code, info.value.status) == (code, int(status))
        assert "mg/kg/h" in info.value.reason
        return
    check = dosing.check_rate(rate, physician=physician, override_reason=reason)
    assert bool(check.advisories) == (outcome in ("advisory", "override"))
    assert check.overrides == (("rate_above_soft_limit",) if outcome == "override" else ())


@pytest.mark.parametrize(
    ("mg_per_kg", "physician", "outcome"),
    [
        (0.2, False, None),
        (0.35, False, None),
        (0.4, False, "bolus_above_soft_limit"),
        (0.4, True, "override"),
        (1.2, True, "bolus_above_hard_limit"),
    ],
)
def test_bolus_guardrails(mg_per_kg: float, physician: bool, outcome: str | None) -> None:
    reason = "ok" if physician else None
    if outcome in ("bolus_above_soft_limit", "bolus_above_hard_limit"):
        with pytest.raises(Refused, match="mg/kg") as info:
            dosing.check_bolus(mg_per_kg, physician=physician, override_reason=reason)
        assert info.value.code == outcome
    else:
        check = dosing.check_bolus(mg_per_kg, physician=physician, override_reason=reason)
        assert check.overrides == (("bolus_above_soft_limit",) if outcome == "override" else ())


def test_a_plan_above_the_soft_limit_is_refused_at_creation() -> None:
    plan = InfusionPlan(dose_mg_per_kg=3, duration_min=60, concentration_mg_per_ml=1)
    cmd = NewSession(patient_id="p1", bay="bay1", plan=plan)
    with pytest.raises(Refused) as info:
        create("s", patient(), cmd, Ctx(T0, NURSE))
    assert info.value.code == "rate_above_soft_limit"
    ok = create("s", patient(), cmd.model_copy(update={"override_reason": "refractory"}), Ctx(T0, DOCTOR))
    assert ok.overrides == ("rate_above_soft_limit",)


#: Pump actions allowed from each pump state (everything else refused with code pump_state).
PUMP = {
    "idle": {PumpAction.START, PumpAction.BOLUS},
    "running": {PumpAction.RATE, PumpAction.PAUSE, PumpAction.STOP, PumpAction.BOLUS},
    "paused": {PumpAction.RESUME, PumpAction.STOP, PumpAction.BOLUS},
}


@pytest.mark.parametrize("state", list(PUMP))
@pytest.mark.parametrize("action", list(PumpAction))
def test_pump_state_table(state: str, action: PumpAction) -> None:
    run = drive(Phase.BASELINE)
    run.go(Phase.INFUSION, 10)
    if state != "idle":
        run.pump(PumpAction.START, 10)
    if state == "paused":
        run.pump(PumpAction.PAUSE, 12)
    assert run.state.pump_state == state
    kw: dict[str, object] = {"mg_per_kg_h": 0.8} if action is PumpAction.RATE else {}
    if action is PumpAction.BOLUS:
        kw = {"bolus_mg_per_kg": 0.2}
    if action in PUMP[state]:
        events = run.do(PumpCommand.model_validate({"action": action, **kw}), 15)
        assert events[0].t == at(15) and events[0].user == NURSE.name
    else:
        assert run.refuse(PumpCommand.model_validate({"action": action, **kw}), 15).code == "pump_state"


def test_stop_moves_to_recovery_and_infusion_events_need_the_infusion_phase() -> None:
    run = drive(Phase.INFUSION)
    events = run.pump(PumpAction.STOP, 70)
    assert [e.kind for e in events] == ["pump", "phase"]
    assert run.state.phase is Phase.RECOVERY
    r = run.refuse(PumpCommand(action=PumpAction.START), 71)
    assert r.code == "not_in_infusion" and "recovery" in r.reason


def test_rates_in_ml_per_h_and_defaults() -> None:
    run = drive(Phase.BASELINE)
    run.go(Phase.INFUSION, 10)
    (start,) = run.pump(PumpAction.START, 10)
    assert (
        isinstance(start, PumpEvent) and start.mg_per_h == pytest.approx(35.0) and start.ml_per_h == pytest.approx(35)
    )
    (rate,) = run.pump(PumpAction.RATE, 20, ml_per_h=49)
    assert isinstance(rate, PumpEvent) and rate.mg_per_h == pytest.approx(49.0)
    assert run.refuse(PumpCommand(action=PumpAction.RATE), 21).code == "rate_required"
    assert run.refuse(PumpCommand(action=PumpAction.RATE, ml_per_h=1, mg_per_kg_h=1), 21).code == "ambiguous_rate"
    assert run.refuse(PumpCommand(action=PumpAction.RATE, mg_per_kg_h=0), 21).code == "rate_zero"
    r = run.refuse(PumpCommand(action=PumpAction.RATE, mg_per_kg_h=2.5), 21)
    assert r.code == "rate_above_soft_limit" and r.status == 422
    (adv,) = run.pump(PumpAction.RATE, 22, mg_per_kg_h=1.5)
    assert isinstance(adv, PumpEvent) and adv.advisories
    (ov,) = run.pump(PumpAction.RATE, 23, actor=DOCTOR, mg_per_kg_h=2.5, override_reason="refractory")
    assert isinstance(ov, PumpEvent) and ov.overrides == ("rate_above_soft_limit",)
    r = run.refuse(PumpCommand(action=PumpAction.BOLUS, bolus_mg=30), 24)  # 0.43 mg/kg
    assert r.code == "bolus_above_soft_limit"


def test_running_total_with_pause_rate_change_and_bolus() -> None:
    run = drive(Phase.BASELINE)
    run.go(Phase.INFUSION, 0)
    run.pump(PumpAction.START, 0)  # 35 mg/h
    run.pump(PumpAction.BOLUS, 5, bolus_mg=10)
    run.pump(PumpAction.PAUSE, 30)
    run.pump(PumpAction.RESUME, 40)
    run.pump(PumpAction.RATE, 50, mg_per_kg_h=1.0)  # 70 mg/h
    tot = dosing.totals(run.state.pump, at(55), 1.0)
    assert tot.total_mg == pytest.approx(17.5 + 5.833333 + 5.833333 + 10, rel=1e-5)
    run.pump(PumpAction.STOP, 60)
    tot = dosing.totals(run.state.pump, at(90), 1.0)
    assert (tot.infused_mg, tot.bolus_mg, tot.total_mg) == pytest.approx((35.0, 10.0, 45.0))
    assert tot.running_s == pytest.approx(50 * 60)
    assert tot.volume_ml == pytest.approx(45.0)
    assert tot.started_at == at(0) and tot.stopped_at == at(60) and not tot.running


def test_estimated_concentrations_match_clinical_table_7() -> None:
    """0.5 mg/kg/h x 60 min in 70 kg, Clements: Cp 150 / 111 / 88 ng/mL at end / +15 / +30; Ce 136 at 60 min."""
    run = drive(Phase.BASELINE)
    run.go(Phase.INFUSION, 0)
    run.pump(PumpAction.START, 0)
    run.pump(PumpAction.STOP, 60)
    est = dosing.Estimator(70.0, run.state.pump)
    for minute, cp_ref in ((60, 150), (75, 111), (90, 88)):
        cp, _ = est.at(at(minute))
        assert cp == pytest.approx(cp_ref, rel=0.03), minute
    assert est.at(at(60))[1] == pytest.approx(136, rel=0.03)
    assert est.at(at(-5)) == (0.0, 0.0)
    assert "not a measurement" in dosing.ESTIMATE_LABEL
