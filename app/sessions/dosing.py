"""Weight-based ketamine dosing: plan → pump rate, dose guardrails, running total, estimated concentrations.

Pure functions. Limits are CLINICAL.md Table 1b (pre-infusion gates and dose guardrails) and §2.2
(Cohen 2018). Above a soft limit a dose is refused unless a physician overrides it with a recorded
reason (as a smart pump's soft limit); above a hard limit it is refused outright.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from app.sessions.model import InfusionPlan, PumpAction, PumpEvent, Refused
from simulators.pk import CLEMENTS, Action, DoseEvent, DrugModel, PKParams

#: Weight missing or implausible (<35 kg or >200 kg) blocks the weight-based calculation (Table 1b [I]).
WEIGHT_MIN_KG = 35.0
WEIGHT_MAX_KG = 200.0
#: Infusion rate > 1 mg/kg/h: ADVISORY (Table 1b; ASRA acute-pain guideline ≤ 1 mg/kg/h outside intensive
#: monitoring [R]).
RATE_ADVISORY_MG_PER_KG_H = 1.0
#: Infusion rate > 2 mg/kg/h: MEDIUM guardrail (Table 1b; Cohen 2018 infusion range 0.5–2 mg/kg/h [S]).
#: Vigil makes it a soft limit: refused unless a physician overrides with a reason.
RATE_SOFT_MAX_MG_PER_KG_H = 2.0
#: Hard limit: Cohen 2018 allows up to 7 mg/kg/h only in refractory ICU cases [S]; never in this clinic.
RATE_HARD_MAX_MG_PER_KG_H = 7.0
#: Bolus > 0.35 mg/kg: MEDIUM guardrail (Table 1b; Cohen 2018 bolus "up to 0.35 mg/kg" [S]); soft limit.
BOLUS_SOFT_MAX_MG_PER_KG = 0.35
#: Hard limit: 1–2 mg/kg is an anaesthetic induction dose (CLINICAL.md Table 8 [S]); the cut-off is [I].
BOLUS_HARD_MAX_MG_PER_KG = 1.0

ESTIMATE_LABEL = (
    "Estimate from a population PK model (Clements 1981, CLINICAL.md Table 6/7; effect site ke0 0.114/min, §2.5), "
    "not a measurement; individual values vary widely (CV ~30-40 %, §2.5)."
)


def check_weight(weight_kg: float | None) -> float:
    """The weight if usable for a weight-based calculation, else a refusal (Table 1b)."""
    if weight_kg is None:
        raise Refused("weight_missing", "Weight is missing: the weight-based dose cannot be calculated (Table 1b).")
    if not WEIGHT_MIN_KG <= weight_kg <= WEIGHT_MAX_KG:
        raise Refused(
            "weight_implausible",
            f"Weight {weight_kg:g} kg is outside {WEIGHT_MIN_KG:g}-{WEIGHT_MAX_KG:g} kg: the weight-based dose "
            "cannot be calculated (Table 1b).",
        )
    return weight_kg


@dataclass(frozen=True, slots=True)
class DoseCalc:
    """A plan worked out for one patient."""

    weight_kg: float
    total_mg: float
    mg_per_kg_h: float
    mg_per_h: float
    ml_per_h: float
    volume_ml: float
    duration_min: float
    concentration_mg_per_ml: float


def calculate(plan: InfusionPlan, weight_kg: float | None) -> DoseCalc:
    """mg/kg over the planned duration → mg/kg/h, mg/h and mL/h for the syringe strength."""
    w = check_weight(weight_kg)
    total = plan.dose_mg_per_kg * w
    hours = plan.duration_min / 60.0
    mg_per_h = total / hours
    return DoseCalc(
        weight_kg=w,
        total_mg=total,
        mg_per_kg_h=plan.dose_mg_per_kg / hours,
        mg_per_h=mg_per_h,
        ml_per_h=mg_per_h / plan.concentration_mg_per_ml,
        volume_ml=total / plan.concentration_mg_per_ml,
        duration_min=plan.duration_min,
        concentration_mg_per_ml=plan.concentration_mg_per_ml,
    )


@dataclass(frozen=True, slots=True)
class LimitCheck:
    """Outcome of a guardrail check: advisories to record, soft limits that needed (and got) an override."""

    advisories: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()


def _soft(code: str, message: str, *, physician: bool, override_reason: str | None, overrides: list[str]) -> None:
    if override_reason and physician:
        overrides.append(code)
        return
    if override_reason:
        raise Refused(code, f"{message} Only a physician may override this limit.", status=403)
    raise Refused(code, f"{message} A physician may override it with a reason.", status=422)


def check_rate(mg_per_kg_h: float, *, physician: bool = False, override_reason: str | None = None) -> LimitCheck:
    """Guardrails for an infusion rate (Table 1b)."""
    if mg_per_kg_h > RATE_HARD_MAX_MG_PER_KG_H:
        raise Refused(
            "rate_above_hard_limit",
            f"Rate {mg_per_kg_h:.2f} mg/kg/h is above {RATE_HARD_MAX_MG_PER_KG_H:g} mg/kg/h, the maximum ever "
            "described (refractory ICU cases only, Cohen 2018): refused.",
            status=422,
        )
    advisories: list[str] = []
    overrides: list[str] = []
    if mg_per_kg_h > RATE_SOFT_MAX_MG_PER_KG_H:
        _soft(
            "rate_above_soft_limit",
            f"Rate {mg_per_kg_h:.2f} mg/kg/h is above {RATE_SOFT_MAX_MG_PER_KG_H:g} mg/kg/h "
            "(Cohen 2018 range 0.5-2 mg/kg/h; CLINICAL.md Table 1b).",
            physician=physician,
            override_reason=override_reason,
            overrides=overrides,
        )
    if mg_per_kg_h > RATE_ADVISORY_MG_PER_KG_H:
        advisories.append(
            f"Rate {mg_per_kg_h:.2f} mg/kg/h is above {RATE_ADVISORY_MG_PER_KG_H:g} mg/kg/h, suggested as the "
            "limit outside intensive monitoring (ASRA, CLINICAL.md Table 1b)."
        )
    return LimitCheck(tuple(advisories), tuple(overrides))


def check_bolus(mg_per_kg: float, *, physician: bool = False, override_reason: str | None = None) -> LimitCheck:
    """Guardrails for a bolus (Table 1b)."""
    if mg_per_kg > BOLUS_HARD_MAX_MG_PER_KG:
        raise Refused(
            "bolus_above_hard_limit",
            f"Bolus {mg_per_kg:.2f} mg/kg is above {BOLUS_HARD_MAX_MG_PER_KG:g} mg/kg, an anaesthetic induction "
            "dose (CLINICAL.md Table 8): refused.",
            status=422,
        )
    overrides: list[str] = []
    if mg_per_kg > BOLUS_SOFT_MAX_MG_PER_KG:
        _soft(
            "bolus_above_soft_limit",
            f"Bolus {mg_per_kg:.2f} mg/kg is above {BOLUS_SOFT_MAX_MG_PER_KG:g} mg/kg (Cohen 2018; Table 1b).",
            physician=physician,
            override_reason=override_reason,
            overrides=overrides,
        )
    return LimitCheck((), tuple(overrides))


# ---- running total and estimated concentrations -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DoseTotals:
    """Ketamine given so far."""

    total_mg: float
    infused_mg: float
    bolus_mg: float
    volume_ml: float
    mg_per_h: float  # rate in force now
    running: bool
    paused: bool
    started_at: datetime | None
    stopped_at: datetime | None
    running_s: float  # time the pump ran (pauses excluded)


def totals(events: Sequence[PumpEvent], now: datetime, concentration_mg_per_ml: float | None) -> DoseTotals:
    """Integrate the piecewise-constant rate (mg/h) up to ``now`` and add the boluses."""
    infused = bolus = 0.0
    running_s = 0.0
    rate = 0.0
    last: datetime | None = None
    started = stopped = None
    paused = False
    for e in events:
        if e.t > now:
            break
        if last is not None and rate > 0:
            dt = (e.t - last).total_seconds()
            infused += rate * dt / 3600.0
            running_s += dt
        last = e.t
        if e.action is PumpAction.BOLUS:
            bolus += e.bolus_mg
            continue
        if e.action is PumpAction.START and started is None:
            started = e.t
        if e.action is PumpAction.STOP:
            stopped = e.t
        paused = e.action is PumpAction.PAUSE
        rate = e.mg_per_h
    if last is not None and rate > 0:
        dt = max(0.0, (now - last).total_seconds())
        infused += rate * dt / 3600.0
        running_s += dt
    total = infused + bolus
    return DoseTotals(
        total_mg=total,
        infused_mg=infused,
        bolus_mg=bolus,
        volume_ml=total / concentration_mg_per_ml if concentration_mg_per_ml else 0.0,
        mg_per_h=rate,
        running=rate > 0,
        paused=paused,
        started_at=started,
        stopped_at=stopped,
        running_s=running_s,
    )


_ACTIONS = {
    PumpAction.START: Action.START,
    PumpAction.RATE: Action.RATE,
    PumpAction.PAUSE: Action.RATE,  # mg_per_h is 0 while paused
    PumpAction.RESUME: Action.RATE,
    PumpAction.STOP: Action.STOP,
}


@dataclass
class Estimator:
    """Estimated ketamine plasma (Cp) and effect-site (Ce) concentrations for one session's pump events.

    Wraps ``simulators.pk.DrugModel`` (exact linear integration); rebuild it when the events change.
    """

    weight_kg: float
    events: Sequence[PumpEvent]
    params: PKParams = CLEMENTS
    step_s: float = 5.0
    _model: DrugModel | None = field(default=None, init=False)
    _t0: datetime | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if not self.events:
            return
        self._t0 = self.events[0].t
        doses: list[DoseEvent] = []
        for e in self.events:
            t = (e.t - self._t0).total_seconds()
            if e.action is PumpAction.BOLUS:
                doses.append(DoseEvent(t, Action.BOLUS, mg=e.bolus_mg))
            else:
                doses.append(DoseEvent(t, _ACTIONS[e.action], mg_per_min=e.mg_per_h / 60.0))
        self._model = DrugModel(self.params, self.weight_kg, doses, step_s=self.step_s)

    def at(self, now: datetime) -> tuple[float, float]:
        """(Cp, Ce) in ng/mL at ``now`` (0 before the first event)."""
        if self._model is None or self._t0 is None:
            return 0.0, 0.0
        t = (now - self._t0).total_seconds()
        if t < 0:
            return 0.0, 0.0
        cp, ce = self._model.concentrations(t)
        return max(cp, 0.0), max(ce, 0.0)
