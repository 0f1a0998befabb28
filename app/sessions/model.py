"""Session workflow contracts: patients, commands, events (the append-only record) and their parts.

A session is event-sourced: everything that happens to it is one frozen ``SessionEvent`` (a discriminated
union on ``kind``), numbered by ``seq`` within the session, timed (``t``, the server's clock) and
attributed (``user``). The state is a fold of the events (``workflow.evolve``), so a restart rebuilds
every session from the store. Commands are what users ask for; ``workflow.decide`` turns a command into
events or refuses it (``Refused``) without changing anything.

Phases are the alarm engine's ``Phase`` (one enum for both). Times are aware datetimes.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.alarms.model import LevelOverride, Phase
from monitors.models import AwareDatetime


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Refused(Exception):
    """A command was refused; nothing changed. ``code`` is stable (for clients), ``reason`` is for people."""

    def __init__(self, code: str, reason: str, *, status: int = 409) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.status = status


class Actor(_Frozen):
    """Who issues a command; ``physician`` may override the gates and dose limits that allow it."""

    name: str = Field(min_length=1)
    physician: bool = False


# ---- patients ------------------------------------------------------------------------------------------


class NewPatient(_Frozen):
    """A patient to register."""

    identifier: str = Field(min_length=1, max_length=64, description="Clinic identifier (MRN); unique")
    name: str = Field(min_length=1, max_length=200)
    birth_date: date
    weight_kg: float | None = Field(default=None, gt=0, le=500, description="Usual weight; a session may override")
    allergies: tuple[str, ...] = ()
    history: tuple[str, ...] = Field(
        default=(), description="Relevant history, e.g. 'hypertension', 'pregnancy', 'psychosis', 'substance abuse'"
    )


class Patient(NewPatient):
    """A registered patient (append-only: never edited in place)."""

    id: str
    created_at: AwareDatetime
    created_by: str


# ---- session parts ---------------------------------------------------------------------------------------


class InfusionPlan(_Frozen):
    """The prescribed infusion: ``dose_mg_per_kg`` over ``duration_min`` from a syringe of the given strength."""

    dose_mg_per_kg: float = Field(gt=0, le=20, description="Total ketamine dose over the planned duration")
    #: CLINICAL.md scenario ("weight-based racemic ketamine infusion of about 1 h") and Table 3 ("Infusion
    #: (~60 min)") [I].
    duration_min: float = Field(default=60.0, gt=0, le=24 * 60)
    concentration_mg_per_ml: float = Field(gt=0, le=100, description="Syringe / bag strength")


class Vitals(_Frozen):
    """Vital signs at a moment (latest monitor values, or entered by hand); None where unknown."""

    sbp: float | None = Field(default=None, ge=0, le=400)
    dbp: float | None = Field(default=None, ge=0, le=300)
    hr: float | None = Field(default=None, ge=0, le=400)
    spo2: float | None = Field(default=None, ge=0, le=100)
    rr: float | None = Field(default=None, ge=0, le=200)
    bp_at: AwareDatetime | None = Field(default=None, description="When the BP was measured")
    at: AwareDatetime | None = Field(default=None, description="When the continuous values were received")


def monitor_vitals(latest: dict[str, tuple[float, datetime]]) -> Vitals | None:
    """Vitals from the latest usable monitor value and its time per catalogue parameter (None without any):
    ``at`` is the newest continuous value (HR, SpO2, RR), ``bp_at`` the NIBP's time."""
    if not latest:
        return None

    def val(p: str) -> float | None:
        got = latest.get(p)
        return None if got is None else got[0]

    cont = [latest[p][1] for p in ("hr", "spo2", "rr") if p in latest]
    bp = latest.get("nibp_sys")
    return Vitals(
        sbp=val("nibp_sys"),
        dbp=val("nibp_dia"),
        hr=val("hr"),
        spo2=val("spo2"),
        rr=val("rr"),
        bp_at=None if bp is None else bp[1],
        at=max(cont) if cont else None,
    )


class PumpAction(StrEnum):
    """Infusion events (ARCHITECTURE: start, rate change, pause, stop), plus resume and bolus."""

    START = "start"
    RATE = "rate"
    PAUSE = "pause"
    RESUME = "resume"
    STOP = "stop"
    BOLUS = "bolus"


class SideEffect(StrEnum):
    """Side effects the nurse can chart (CLINICAL.md Tables 4, 5 and 9)."""

    DIZZINESS = "dizziness"
    HALLUCINATIONS = "hallucinations"
    ANXIETY = "anxiety"
    DYSPHORIA = "dysphoria"
    DISSOCIATION = "dissociation"
    NAUSEA = "nausea"
    VOMITING = "vomiting"
    HEADACHE = "headache"
    BLURRED_VISION = "blurred_vision"
    HYPERSALIVATION = "hypersalivation"
    AGITATION = "agitation"
    OTHER = "other"


class Severity(StrEnum):
    """Severity of a side effect (PADSS wording: minimal / moderate / severe)."""

    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"


class MedCategory(StrEnum):
    """What a given medication is for."""

    BENZODIAZEPINE = "benzodiazepine"
    ANTIEMETIC = "antiemetic"
    ANTIHYPERTENSIVE = "antihypertensive"
    ALPHA2_AGONIST = "alpha2_agonist"
    REVERSAL = "reversal"  # naloxone, flumazenil: longer observation (CLINICAL.md Table 5)
    OTHER = "other"


#: Drugs the clinic commonly gives (CLINICAL.md §2.2: midazolam and ondansetron pretreatment, Patil 2012 [S];
#: clonidine / benzodiazepines for psychotomimetic effects, antiemetics for nausea, Cohen 2018 [R]).
KNOWN_DRUGS: dict[str, MedCategory] = {
    "midazolam": MedCategory.BENZODIAZEPINE,
    "lorazepam": MedCategory.BENZODIAZEPINE,
    "diazepam": MedCategory.BENZODIAZEPINE,
    "ondansetron": MedCategory.ANTIEMETIC,
    "metoclopramide": MedCategory.ANTIEMETIC,
    "dexamethasone": MedCategory.ANTIEMETIC,
    "labetalol": MedCategory.ANTIHYPERTENSIVE,
    "metoprolol": MedCategory.ANTIHYPERTENSIVE,
    "hydralazine": MedCategory.ANTIHYPERTENSIVE,
    "clonidine": MedCategory.ALPHA2_AGONIST,
    "dexmedetomidine": MedCategory.ALPHA2_AGONIST,
    "naloxone": MedCategory.REVERSAL,
    "flumazenil": MedCategory.REVERSAL,
}


# ---- chart items (what the nurse records) ----------------------------------------------------------------


class SedationItem(_Frozen):
    """Sedation / agitation score(s): RASS −5..+4 and/or MOAA/S 0..5 (CLINICAL.md Table 4 [S])."""

    type: Literal["sedation"] = "sedation"
    rass: int | None = Field(default=None, ge=-5, le=4)
    moaas: int | None = Field(default=None, ge=0, le=5)

    @model_validator(mode="after")
    def _one(self) -> SedationItem:
        if self.rass is None and self.moaas is None:
            raise ValueError("chart at least one of rass or moaas")
        return self


class PainItem(_Frozen):
    """Pain on the 0–10 numeric rating scale."""

    type: Literal["pain"] = "pain"
    nrs: int = Field(ge=0, le=10)


class SideEffectsItem(_Frozen):
    """The side effects present now, with their severity; an empty mapping charts "none"."""

    type: Literal["side_effects"] = "side_effects"
    effects: dict[SideEffect, Severity] = Field(default_factory=dict)
    detail: str = Field(default="", max_length=2000)


class MedicationItem(_Frozen):
    """A medication given (premedication, antiemetic, antihypertensive, rescue...)."""

    type: Literal["medication"] = "medication"
    drug: str = Field(min_length=1, max_length=100)
    dose: float = Field(gt=0, le=10_000)
    unit: Literal["mg", "mcg", "g", "mL", "units"] = "mg"
    route: Literal["iv", "po", "im", "sc", "sl", "in", "other"] = "iv"
    category: MedCategory | None = Field(default=None, description="Inferred from the drug name when omitted")

    @property
    def effective_category(self) -> MedCategory:
        """The given category, else the known drug's, else other."""
        return self.category or KNOWN_DRUGS.get(self.drug.strip().lower(), MedCategory.OTHER)


class NoteItem(_Frozen):
    """Free text."""

    type: Literal["note"] = "note"
    text: str = Field(min_length=1, max_length=4000)


class AssessmentItem(_Frozen):
    """Observations for the discharge scores (CLINICAL.md Table 5); only the fields given are charted."""

    type: Literal["assessment"] = "assessment"
    limbs_moving: int | None = Field(default=None, ge=0, le=4, description="Aldrete activity")
    respiration: Literal["deep", "shallow", "apnoeic"] | None = Field(default=None, description="Aldrete respiration")
    consciousness: Literal["awake", "arousable", "unresponsive"] | None = None
    on_oxygen: bool | None = Field(default=None, description="Supplemental O2 (Aldrete SpO2 item)")
    oriented: bool | None = Field(default=None, description="Oriented x3 (PADSS activity/mental status)")
    steady_gait: bool | None = None
    bleeding: Literal["minimal", "moderate", "severe"] | None = None
    tolerating_fluids: bool | None = Field(default=None, description="PADSS intake/output")
    voided: bool | None = Field(default=None, description="PADSS intake/output")
    escort_present: bool | None = Field(default=None, description="Responsible adult escort (PADSS)")


class RetractionItem(_Frozen):
    """Marks the corrected entry as entered in error (requires ``corrects``)."""

    type: Literal["retraction"] = "retraction"
    reason: str = Field(min_length=1, max_length=2000)


ChartItem = Annotated[
    SedationItem | PainItem | SideEffectsItem | MedicationItem | NoteItem | AssessmentItem | RetractionItem,
    Field(discriminator="type"),
]


# ---- commands --------------------------------------------------------------------------------------------


class NewSession(_Frozen):
    """Open a session for a patient in a bay."""

    patient_id: str
    bay: str
    weight_kg: float | None = Field(default=None, gt=0, le=500, description="Today's weight; default: the patient's")
    plan: InfusionPlan | None = None
    indication: str = Field(default="", max_length=500)
    override_reason: str | None = Field(default=None, max_length=2000, description="Physician override of a soft limit")


class Transition(_Frozen):
    """Move the session to another phase (``reason`` is required to abort; ``override_reason`` for gates)."""

    to: Phase
    reason: str | None = Field(default=None, max_length=2000)
    override_reason: str | None = Field(default=None, max_length=2000)


class RecordBaseline(_Frozen):
    """The pre-infusion baseline (Table 1: median of pre-infusion readings) used by gates and scores."""

    vitals: Vitals
    source: Literal["manual", "monitor"] = "manual"
    weight_kg: float | None = Field(default=None, gt=0, le=500, description="Weighed today (replaces the weight)")


class PumpCommand(_Frozen):
    """An infusion event; a rate as mg/kg/h or mL/h (start defaults to the plan's rate)."""

    action: PumpAction
    mg_per_kg_h: float | None = Field(default=None, ge=0, le=100)
    ml_per_h: float | None = Field(default=None, ge=0, le=10_000)
    bolus_mg: float | None = Field(default=None, gt=0, le=2000)
    bolus_mg_per_kg: float | None = Field(default=None, gt=0, le=20)
    override_reason: str | None = Field(default=None, max_length=2000)


class ChartCommand(_Frozen):
    """A chart entry; ``corrects`` names the entry (its ``seq``) it replaces. Entries are never edited."""

    item: ChartItem
    observed_at: AwareDatetime | None = Field(default=None, description="When observed; default now")
    corrects: int | None = Field(default=None, ge=0)


class SetAlarmLimits(_Frozen):
    """The patient's own alarm limits for this session (a physician's changes to the profile's levels; empty:
    back to the profile's cited defaults). They end with the session."""

    overrides: tuple[LevelOverride, ...] = Field(default=(), max_length=200)


Command = NewSession | Transition | RecordBaseline | PumpCommand | ChartCommand | SetAlarmLimits


# ---- events (the append-only record) ---------------------------------------------------------------------


class _Event(_Frozen):
    session_id: str
    seq: int = Field(ge=0)
    t: AwareDatetime
    user: str


class SessionCreated(_Event):
    """The session was opened."""

    kind: Literal["created"] = "created"
    patient_id: str
    bay: str
    weight_kg: float | None
    plan: InfusionPlan | None
    indication: str = ""
    advisories: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    override_reason: str | None = None


class PhaseChanged(_Event):
    """The session moved from one phase to another."""

    kind: Literal["phase"] = "phase"
    from_phase: Phase
    to_phase: Phase
    reason: str | None = None
    advisories: tuple[str, ...] = ()  # gates that warned (e.g. elevated baseline BP)
    overrides: tuple[str, ...] = ()  # gates a physician overrode
    override_reason: str | None = None
    checks: tuple[str, ...] = ()  # what was verified (e.g. discharge criteria met)


class BaselineRecorded(_Event):
    """The baseline vitals (the latest one counts)."""

    kind: Literal["baseline"] = "baseline"
    vitals: Vitals
    source: Literal["manual", "monitor"] = "manual"
    weight_kg: float | None = None


class PumpEvent(_Event):
    """An infusion event; ``mg_per_h`` is the rate in force after it (0 when paused or stopped)."""

    kind: Literal["pump"] = "pump"
    action: PumpAction
    mg_per_h: float = 0.0
    ml_per_h: float = 0.0
    bolus_mg: float = 0.0
    advisories: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    override_reason: str | None = None


class ChartEntry(_Event):
    """A chart entry; ``corrects`` is the seq of the entry it supersedes."""

    kind: Literal["chart"] = "chart"
    item: ChartItem
    observed_at: AwareDatetime
    corrects: int | None = None


class AlarmLimitsSet(_Event):
    """A physician set the patient's own alarm limits (replacing earlier ones; empty: the profile's)."""

    kind: Literal["limits"] = "limits"
    overrides: tuple[LevelOverride, ...] = ()


SessionEvent = Annotated[
    SessionCreated | PhaseChanged | BaselineRecorded | PumpEvent | ChartEntry | AlarmLimitsSet,
    Field(discriminator="kind"),
]


def when(e: ChartEntry) -> datetime:
    """When a chart entry's observation was made."""
    return e.observed_at
