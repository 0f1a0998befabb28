"""Nurse charting: every entry timed and attributed, never edited; corrections are new entries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from app.alarms.model import Phase
from app.sessions import workflow
from app.sessions.model import (
    ChartCommand,
    ChartEntry,
    MedCategory,
    MedicationItem,
    NoteItem,
    PainItem,
    RetractionItem,
    SedationItem,
    Severity,
    SideEffect,
    SideEffectsItem,
)
from tests.sessions.helpers import NURSE, at, drive


def test_entries_are_timed_attributed_and_kept() -> None:
    run = drive(Phase.INFUSION)
    e = run.chart(SedationItem(rass=-1, moaas=4), 15)
    assert isinstance(e, ChartEntry)
    assert (e.t, e.observed_at, e.user, e.corrects) == (at(15), at(15), NURSE.name, None)
    run.chart(SideEffectsItem(effects={SideEffect.NAUSEA: Severity.MILD, SideEffect.DIZZINESS: Severity.MODERATE}), 16)
    run.chart(MedicationItem(drug="Ondansetron", dose=4), 17)
    run.chart(NoteItem(text="patient describes floating sensation"), 18)
    kinds = [c.item.type for c in run.state.effective_chart()]
    assert kinds == ["sedation", "side_effects", "medication", "note"]


def test_late_entry_with_an_observation_time() -> None:
    run = drive(Phase.INFUSION)
    (e,) = run.do(ChartCommand(item=PainItem(nrs=5), observed_at=at(12)), 20)
    assert isinstance(e, ChartEntry) and e.t == at(20) and e.observed_at == at(12)
    assert run.refuse(ChartCommand(item=PainItem(nrs=5), observed_at=at(30)), 20).code == "observed_in_future"


def test_correction_supersedes_without_editing() -> None:
    run = drive(Phase.INFUSION)
    wrong = run.chart(PainItem(nrs=8), 20)
    fixed = run.chart(PainItem(nrs=3), 22, corrects=wrong.seq)
    assert isinstance(fixed, ChartEntry) and fixed.observed_at == at(20)  # about the same observation
    assert wrong in run.state.chart  # the original stays in the record, unchanged
    assert run.state.superseded == {wrong.seq: fixed.seq}
    pains = [c.item for c in run.state.effective_chart() if isinstance(c.item, PainItem)]
    assert pains == [PainItem(nrs=3)]
    assert workflow.observations(run.state).pain_nrs == (3, at(20))


@pytest.mark.parametrize(
    ("item", "corrects", "code"),
    [
        (PainItem(nrs=1), 999, "no_such_entry"),
        (SedationItem(rass=0), "pain", "correction_type"),
        (PainItem(nrs=1), "corrected", "already_corrected"),
        (PainItem(nrs=1), "retraction", "cannot_correct_retraction"),
        (RetractionItem(reason="wrong patient"), None, "corrects_required"),
    ],
)
def test_invalid_corrections_are_refused(item: object, corrects: object, code: str) -> None:
    run = drive(Phase.INFUSION)
    pain = run.chart(PainItem(nrs=8), 20)
    corrected = run.chart(PainItem(nrs=6), 21)
    run.chart(PainItem(nrs=5), 22, corrects=corrected.seq)
    other = run.chart(NoteItem(text="x"), 23)
    retraction = run.chart(RetractionItem(reason="entered in error"), 24, corrects=other.seq)
    target = {"pain": pain.seq, "corrected": corrected.seq, "retraction": retraction.seq}.get(str(corrects), corrects)
    assert target is None or isinstance(target, int)
    r = run.refuse(ChartCommand.model_validate({"item": item, "corrects": target}), 25)
    assert r.code == code and r.reason


def test_retraction_removes_an_entry_from_the_effective_chart() -> None:
    run = drive(Phase.INFUSION)
    e = run.chart(SedationItem(moaas=2), 20)
    run.chart(RetractionItem(reason="charted for the wrong bay"), 21, corrects=e.seq)
    assert not any(isinstance(c.item, SedationItem) for c in run.state.effective_chart())
    assert len(run.state.chart) == 2


def test_charting_is_allowed_after_discharge() -> None:
    run = drive(Phase.DISCHARGED)
    e = run.chart(NoteItem(text="late entry: phoned, patient well"), 300)
    assert isinstance(e, ChartEntry)


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "sedation"},
        {"type": "sedation", "rass": 5},
        {"type": "sedation", "moaas": -1},
        {"type": "pain", "nrs": 11},
        {"type": "side_effects", "effects": {"levitation": "mild"}},
        {"type": "note", "text": ""},
        {"type": "medication", "drug": "midazolam", "dose": 0},
        {"type": "teleport"},
    ],
)
def test_invalid_items_do_not_validate(payload: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ChartCommand.model_validate({"item": payload})


@pytest.mark.parametrize(
    ("drug", "category"),
    [
        ("midazolam", MedCategory.BENZODIAZEPINE),
        ("Ondansetron", MedCategory.ANTIEMETIC),
        ("labetalol", MedCategory.ANTIHYPERTENSIVE),
        ("naloxone", MedCategory.REVERSAL),
        ("paracetamol", MedCategory.OTHER),
    ],
)
def test_medication_categories(drug: str, category: MedCategory) -> None:
    assert MedicationItem(drug=drug, dose=1).effective_category is category


def test_observation_long_before_the_session_is_refused() -> None:
    run = drive(Phase.BASELINE)
    cmd = ChartCommand(item=PainItem(nrs=2), observed_at=at(0) - timedelta(days=1))
    assert run.refuse(cmd, 5).code == "observed_too_early"
