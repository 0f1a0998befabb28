"""Modified Aldrete, PADSS (CLINICAL.md Table 5) and the discharge readiness criteria."""

from __future__ import annotations

from typing import Any

import pytest

from app.alarms.model import Phase
from app.sessions import scores, workflow
from app.sessions.model import (
    AssessmentItem,
    MedicationItem,
    PainItem,
    PhaseChanged,
    PumpAction,
    SedationItem,
    Severity,
    SideEffect,
    SideEffectsItem,
    Transition,
    Vitals,
)
from app.sessions.scores import Observations
from tests.sessions.helpers import GOOD_BASELINE, at, drive, good_vitals

T = at(100)
FIT = {
    "limbs_moving": 4,
    "respiration": "deep",
    "consciousness": "awake",
    "on_oxygen": False,
    "oriented": True,
    "steady_gait": True,
    "tolerating_fluids": True,
    "voided": True,
}


def obs(assessment: dict[str, object] | None = None, **kw: object) -> Observations:
    a = FIT if assessment is None else assessment
    values: dict[str, object] = {
        "rass": (0, T),
        "moaas": (5, T),
        "pain_nrs": (2, T),
        "side_effects": ({}, T),
        "assessment": {k: (v, T) for k, v in a.items()},
    }
    values.update(kw)
    return Observations(**values)  # type: ignore[arg-type]


def vit(**kw: object) -> Vitals:
    return good_vitals(100).model_copy(update=kw)


def items(score: scores.Score) -> dict[str, int | None]:
    return {i.item: i.points for i in score.items}


@pytest.mark.parametrize(
    ("change", "vitals", "item", "points", "total"),
    [
        ({}, {}, "activity", 2, 10),
        ({"limbs_moving": 2}, {}, "activity", 1, 9),
        ({"limbs_moving": 0}, {}, "activity", 0, 8),
        ({"respiration": "shallow"}, {}, "respiration", 1, 9),
        ({"respiration": "apnoeic"}, {}, "respiration", 0, 8),
        ({}, {"sbp": 145}, "circulation", 2, 10),  # +20 mmHg from 125
        ({}, {"sbp": 146}, "circulation", 1, 9),
        ({}, {"sbp": 75}, "circulation", 1, 9),  # -50
        ({}, {"sbp": 74}, "circulation", 0, 8),
        ({"consciousness": "arousable"}, {}, "consciousness", 1, 9),
        ({"consciousness": "unresponsive"}, {}, "consciousness", 0, 8),
        ({}, {"spo2": 93}, "spo2", 2, 10),
        ({}, {"spo2": 92}, "spo2", 1, 9),
        ({}, {"spo2": 89}, "spo2", 0, 8),
        ({"on_oxygen": True}, {"spo2": 95}, "spo2", 1, 9),
        ({"on_oxygen": True}, {"spo2": 88}, "spo2", 0, 8),
    ],
)
def test_aldrete_items(
    change: dict[str, object], vitals: dict[str, object], item: str, points: int, total: int
) -> None:
    s = scores.aldrete(obs({**FIT, **change}), GOOD_BASELINE, vit(**vitals))
    assert items(s)[item] == points
    assert s.total == total and s.max == 10
    assert s.passed == (total >= 9)


@pytest.mark.parametrize(
    ("rass", "moaas", "points"),
    [(0, 5, 2), (1, None, 2), (-1, None, 1), (-3, 3, 1), (None, 4, 1), (-4, None, 0), (None, 2, 0), (0, 3, 1)],
)
def test_aldrete_consciousness_from_sedation_scores(rass: int | None, moaas: int | None, points: int) -> None:
    later = at(101)
    o = obs(
        {k: v for k, v in FIT.items() if k != "consciousness"},
        rass=None if rass is None else (rass, later),
        moaas=None if moaas is None else (moaas, later),
    )
    assert items(scores.aldrete(o, GOOD_BASELINE, vit()))["consciousness"] == points


def test_aldrete_percent_variant_and_missing_items() -> None:
    s = scores.aldrete(obs(), GOOD_BASELINE, vit(sbp=155), circulation="percent")  # +24 %
    assert items(s)["circulation"] == 1
    s = scores.aldrete(obs({}), None, None)
    assert s.total is None and not s.passed
    assert set(s.missing) == {"activity", "respiration", "circulation", "spo2"}


@pytest.mark.parametrize(
    ("change", "vitals", "kw", "item", "points"),
    [
        ({}, {}, {}, "vital_signs", 2),
        ({}, {"hr": 88}, {}, "vital_signs", 1),  # +22 % from 72
        ({}, {"sbp": 180}, {}, "vital_signs", 0),  # +44 %
        ({"steady_gait": False}, {}, {}, "activity_mental_status", 1),
        ({"steady_gait": False, "oriented": False}, {}, {}, "activity_mental_status", 0),
        ({}, {}, {"pain_nrs": (5, T)}, "pain_nausea_vomiting", 1),
        ({}, {}, {"pain_nrs": (8, T)}, "pain_nausea_vomiting", 0),
        ({}, {}, {"side_effects": ({SideEffect.NAUSEA: Severity.MODERATE}, T)}, "pain_nausea_vomiting", 1),
        ({}, {}, {"side_effects": ({SideEffect.VOMITING: Severity.SEVERE}, T)}, "pain_nausea_vomiting", 0),
        ({}, {}, {"side_effects": ({SideEffect.NAUSEA: Severity.MILD}, T)}, "pain_nausea_vomiting", 2),
        ({}, {}, {}, "bleeding", 2),
        ({"bleeding": "moderate"}, {}, {}, "bleeding", 1),
        ({"voided": False}, {}, {}, "intake_output", 1),
    ],
)
def test_padss_items(
    change: dict[str, object], vitals: dict[str, object], kw: dict[str, object], item: str, points: int
) -> None:
    s = scores.padss(obs({**FIT, **change}, **kw), GOOD_BASELINE, vit(**vitals))
    assert items(s)[item] == points
    assert s.total == 8 + points and s.passed == (8 + points >= 9)


def test_padss_needs_intake_output_charted() -> None:
    a = {k: v for k, v in FIT.items() if k not in ("tolerating_fluids", "voided")}
    s = scores.padss(obs(a), GOOD_BASELINE, vit())
    assert s.missing == ["intake_output"] and not s.passed


READY_OBS = obs({**FIT, "escort_present": True})


def _ready() -> scores.Readiness:
    return scores.readiness(READY_OBS, GOOD_BASELINE, vit(), at(70), at(100))


def test_ready_when_every_criterion_is_met() -> None:
    r = _ready()
    assert r.ready and r.unmet == [] and r.aldrete.total == 10 and r.padss.total == 10


@pytest.mark.parametrize(
    ("case", "unmet"),
    [
        ({"start": at(75)}, "recovery_time"),
        ({"start": None}, "recovery_time"),
        ({"obs": {"rass": (-1, T)}}, "sedation"),
        ({"obs": {"moaas": (4, T)}}, "sedation"),
        ({"obs": {"rass": (0, at(80)), "moaas": (5, at(80))}}, "sedation"),  # older than 15 min
        ({"obs": {"side_effects": ({SideEffect.HALLUCINATIONS: Severity.MILD}, T)}}, "psychotomimetic"),
        ({"obs": {"side_effects": ({SideEffect.DYSPHORIA: Severity.MILD}, T)}}, "psychotomimetic"),
        ({"obs": {"side_effects": None}}, "psychotomimetic"),
        ({"obs": {"reversal_given": True}}, "recovery_time"),
        ({"vitals": {"sbp": 162}}, "blood_pressure"),
        ({"vitals": {"dbp": 100}}, "blood_pressure"),
        ({"vitals": {"sbp": 88}}, "blood_pressure"),
        ({"vitals": {"bp_at": at(80)}}, "blood_pressure"),
        ({"vitals": {"hr": 115}}, "heart_rate"),
        ({"vitals": {"at": at(95)}}, "heart_rate"),
        ({"vitals": {"spo2": 91}}, "spo2"),
        ({"assessment": {"on_oxygen": True}}, "spo2"),
        ({"assessment": {"steady_gait": False}}, "steady_gait"),
        ({"assessment": {"escort_present": False}}, "escort"),
        ({"assessment": {"limbs_moving": 0, "respiration": "shallow"}}, "aldrete"),
        ({"assessment": {"voided": False, "tolerating_fluids": False}}, "padss"),
    ],
)
def test_each_criterion_blocks_discharge(case: dict[str, Any], unmet: str) -> None:
    a = {**FIT, "escort_present": True, **case.get("assessment", {})}
    o = obs(a, **case.get("obs", {}))
    v = vit(**case.get("vitals", {}))
    r = scores.readiness(o, GOOD_BASELINE, v, case.get("start", at(70)), at(100))
    assert not r.ready
    assert unmet in {c.name for c in r.checks if not c.ok}
    assert any(u.startswith(unmet + ":") for u in r.unmet)


def test_spo2_at_baseline_is_acceptable() -> None:
    base = GOOD_BASELINE.model_copy(update={"spo2": 91})
    r = scores.readiness(READY_OBS, base, vit(spo2=91), at(70), at(100))
    assert next(c for c in r.checks if c.name == "spo2").ok


def test_ready_for_discharge_transition_uses_the_criteria() -> None:
    run = drive(Phase.INFUSION)

    run.pump(PumpAction.STOP, 70)
    r = run.refuse(Transition(to=Phase.READY_FOR_DISCHARGE), 80, vitals=good_vitals(80))
    assert r.code == "discharge_criteria_unmet" and "recovery_time" in r.reason and "escort" in r.reason
    run.chart(SedationItem(rass=0, moaas=5), 100)
    run.chart(PainItem(nrs=1), 100)
    run.chart(SideEffectsItem(effects={}), 100)
    run.chart(AssessmentItem.model_validate({**FIT, "escort_present": True}), 100)
    (e,) = run.go(Phase.READY_FOR_DISCHARGE, 101, vitals=good_vitals(101))
    assert isinstance(e, PhaseChanged) and any(c.startswith("aldrete") for c in e.checks)
    # a benzodiazepine does not lengthen recovery; a reversal agent does (~2 h)
    run.go(Phase.RECOVERY, 102, reason="dizzy on standing")
    run.chart(MedicationItem(drug="naloxone", dose=0.1), 103)
    r = run.refuse(Transition(to=Phase.READY_FOR_DISCHARGE), 104, vitals=good_vitals(104))
    assert "reversal agent" in r.reason
    assert not workflow.discharge_readiness(run.state, good_vitals(104), at(104)).ready


def test_discharge_instructions_cite_sources() -> None:
    texts = [t for t, _ in scores.DISCHARGE_INSTRUCTIONS]
    assert any("drive" in t for t in texts)
    assert all("CLINICAL.md" in src for _, src in scores.DISCHARGE_INSTRUCTIONS)
