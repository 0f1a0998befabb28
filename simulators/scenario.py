"""Scenarios as data: one TOML file per scenario under simulators/scenarios/, loaded into pydantic models.

A scenario names a patient (weight, age, risk factors, optional baseline overrides), a regimen (midazolam
premedication, ketamine infusion events in mg/kg/h or mg/kg boluses) and timed events (physiological
episodes and technical artifacts). ``expect`` lists the named event the scenario must produce; the test
suite checks every scenario against it, so a scenario file cannot silently stop illustrating its point.
Times are minutes since monitoring started.
"""

from __future__ import annotations

import tomllib
from importlib import resources
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulators.pk import Action, DoseEvent

#: Technical conditions a scenario may inject (and the simulated monitor reports as device alarms).
ARTIFACTS = ("probe_off", "leads_off", "cannula_dislodged", "motion", "disconnected")

EventKind = Literal["physio", "apnoea", "probe_off", "leads_off", "cannula_dislodged", "motion", "disconnected"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PatientSpec(_Model):
    """Who is on the chair; unset values are drawn from CLINICAL.md Table 11 ranges with the seed."""

    weight_kg: float = Field(default=70.0, ge=35, le=200)  # Table 1b: < 35 or > 200 kg is implausible
    age: int = Field(default=45, ge=18, le=100)
    hypertensive: bool | None = None  # None: drawn (~35 % of outpatients, Table 11)
    supplemental_o2: bool = False  # masks hypoventilation, lengthens the desaturation lag (§2.5)
    anxiety: float | None = Field(default=None, ge=0, le=0.3)  # HR/BP offset fraction (§2.5: +5–10 %)
    pressor_eta: float | None = Field(default=None, gt=0, le=6)  # individual pressor sensitivity (§2.5)
    pk_variability: bool = False  # log-normal CV 35 % on CL and V1 (§2.5)
    baseline: dict[Literal["hr", "sbp", "dbp", "spo2", "rr", "etco2", "temp"], float] = Field(default_factory=dict)


class Dose(_Model):
    """One ketamine dosing event."""

    at_min: float = Field(ge=0)
    action: Action
    mg_kg: float | None = Field(default=None, gt=0, le=5)  # bolus
    mg_kg_h: float | None = Field(default=None, ge=0, le=10)  # start / rate

    @model_validator(mode="after")
    def _check(self) -> Dose:
        if self.action is Action.BOLUS and self.mg_kg is None:
            raise ValueError("a bolus needs mg_kg")
        if self.action in (Action.START, Action.RATE) and self.mg_kg_h is None:
            raise ValueError(f"{self.action.value} needs mg_kg_h")
        return self


class Regimen(_Model):
    """Premedication and the ketamine infusion."""

    model: Literal["clements", "domino"] = "clements"  # CLINICAL.md Table 7 recommendation
    midazolam_mg: float = Field(default=0.0, ge=0, le=5)  # premed typically 1–2 mg IV (CLINICAL.md preamble)
    midazolam_at_min: float = Field(default=2.0, ge=0)
    ketamine: list[Dose] = Field(default_factory=list)

    def dose_events(self, weight_kg: float) -> list[DoseEvent]:
        """Ketamine events in absolute units (seconds, mg, mg/min)."""
        out = []
        for d in self.ketamine:
            out.append(
                DoseEvent(
                    t=d.at_min * 60.0,
                    action=d.action,
                    mg=(d.mg_kg or 0.0) * weight_kg,
                    mg_per_min=(d.mg_kg_h or 0.0) * weight_kg / 60.0,
                )
            )
        return out

    @property
    def infusion_window_min(self) -> tuple[float, float] | None:
        """First start and last stop of the ketamine infusion, in minutes."""
        starts = [d.at_min for d in self.ketamine if d.action in (Action.START, Action.BOLUS)]
        stops = [d.at_min for d in self.ketamine if d.action is Action.STOP]
        if not starts:
            return None
        return min(starts), max(stops) if stops else float("inf")


class Event(_Model):
    """A timed episode: physiological deltas (``physio``), an apnoea, or a technical artifact."""

    kind: EventKind
    label: str = ""
    at_min: float = Field(ge=0)
    duration_min: float = Field(gt=0)
    onset_s: float = Field(default=60.0, ge=0)
    offset_s: float = Field(default=60.0, ge=0)
    # physio deltas at full effect (absolute units; perfusion is a fraction of baseline)
    hr: float = 0.0
    sbp: float = 0.0
    dbp: float = 0.0
    spo2: float = 0.0
    rr: float = 0.0
    etco2: float = 0.0
    temp: float = 0.0
    sedation: float = 0.0  # MOAA/S points (negative = deeper)
    agitation: float = 0.0  # RASS points above 0
    perfusion: float = 0.0
    # apnoea: SpO2 lag and fall (None: drawn per CLINICAL.md §2.5, median 60 s, 5–240 s; 0.5–1 %/s)
    lag_s: float | None = Field(default=None, ge=0, le=600)
    fall_pct_per_s: float | None = Field(default=None, gt=0, le=5)
    spo2_floor: float = Field(default=70.0, ge=40, le=99)

    @property
    def start_s(self) -> float:
        """Start in seconds."""
        return self.at_min * 60.0

    @property
    def end_s(self) -> float:
        """End (before the offset ramp) in seconds."""
        return (self.at_min + self.duration_min) * 60.0


class Expect(_Model):
    """The named event a scenario must produce: a state value crossing a threshold, or a condition."""

    what: str  # e.g. "SBP crosses 180 during the infusion"
    param: str | None = None  # a SimState field (hr, sbp, spo2, rr, etco2, sedation, ...) or numerics key
    op: Literal[">=", "<="] = ">="
    value: float = 0.0
    condition: str | None = None
    between_min: tuple[float, float]

    @model_validator(mode="after")
    def _check(self) -> Expect:
        if (self.param is None) == (self.condition is None):
            raise ValueError("expect exactly one of param / condition")
        return self


class Scenario(_Model):
    """One scenario file."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    title: str
    description: str
    source: str  # the clinical source it illustrates (CLINICAL.md rows, papers)
    seed: int = 1
    duration_min: float = Field(default=90.0, gt=0)
    patient: PatientSpec = PatientSpec()
    regimen: Regimen = Regimen()
    events: list[Event] = Field(default_factory=list)
    expect: list[Expect] = Field(default_factory=list)


def _dir() -> resources.abc.Traversable:
    return resources.files("simulators") / "scenarios"


def scenario_names() -> list[str]:
    """Names of the bundled scenarios, sorted."""
    return sorted(p.name.removesuffix(".toml") for p in _dir().iterdir() if p.name.endswith(".toml"))


def parse_scenario(text: str) -> Scenario:
    """A scenario from TOML text (validated)."""
    return Scenario.model_validate(tomllib.loads(text))


def load_scenario(name: str) -> Scenario:
    """A bundled scenario by name; KeyError lists the known names."""
    path = _dir() / f"{name}.toml"
    if not path.is_file():
        raise KeyError(f"unknown scenario {name!r}; known: {', '.join(scenario_names())}")
    sc = parse_scenario(path.read_text(encoding="utf-8"))
    if sc.name != name:
        raise ValueError(f"scenario file {name}.toml declares name {sc.name!r}")
    return sc
