"""Discharge scores and readiness (CLINICAL.md Table 5, §2.4): modified Aldrete, PADSS, ketamine checks.

Pure functions of what was charted (``Observations``), the baseline and the latest vitals. Every item is
returned with its points and the basis, not just the total (§2.4: "store each item"). A missing item makes
the total unknown (None) and the score not passed: discharge is criteria-based, not timer-based (Table 5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from app.sessions.model import Severity, SideEffect, Vitals

#: Aldrete ≥ 9 (phase I) and PADSS ≥ 9 of 10 (CLINICAL.md Table 5 [S]; ≥ 9 for Aldrete [S2]).
ALDRETE_PASS = 9
PADSS_PASS = 9
#: "≥ 30 min after the end of the infusion" (CLINICAL.md Table 5 ketamine additions [I]; scenario: "at least
#: 30 min of recovery monitoring before discharge").
RECOVERY_MIN = timedelta(minutes=30)
#: After flumazenil or naloxone, observe longer: the ASA guideline suggests up to ~2 h (Table 5 [R]).
RECOVERY_AFTER_REVERSAL = timedelta(hours=2)
#: Sedation every 15 min and NIBP every 15 min in recovery (CLINICAL.md Table 3 [I]): older values are stale.
SCORE_MAX_AGE = timedelta(minutes=15)
BP_MAX_AGE = timedelta(minutes=15)
#: Continuous values (HR, SpO₂) must be current [I].
CONTINUOUS_MAX_AGE = timedelta(minutes=2)
#: Below the warning thresholds of CLINICAL.md Table 1: SBP ≥ 160 or DBP ≥ 100 (row 8), HR > 110 (row 6),
#: HR < 50 (row 7), SBP < 90 (row 9) [I].
SBP_RANGE = (90.0, 160.0)
DBP_MAX = 100.0
HR_RANGE = (50.0, 110.0)
#: SpO₂ ≥ 92 % on room air or at baseline (Table 5 ketamine additions [I]; Aldrete > 92 % [S]).
SPO2_MIN = 92.0
#: Symptoms that must not be ongoing at discharge (Table 5: "no ongoing hallucinations, dysphoria or anxiety").
BLOCKING_EFFECTS = (SideEffect.HALLUCINATIONS, SideEffect.DYSPHORIA, SideEffect.ANXIETY, SideEffect.AGITATION)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class ItemScore(_Out):
    """One item of a score."""

    item: str
    points: int | None  # None: not charted / not measured
    basis: str


class Score(_Out):
    """A discharge score with its items."""

    name: str
    total: int | None  # None while an item is missing
    max: int
    pass_at: int
    passed: bool
    items: list[ItemScore]
    missing: list[str]
    source: str


class Check(_Out):
    """One discharge criterion."""

    name: str
    ok: bool
    detail: str


class Readiness(_Out):
    """Whether the patient meets every discharge criterion, and which ones are unmet."""

    ready: bool
    unmet: list[str]
    checks: list[Check]
    aldrete: Score
    padss: Score


@dataclass(frozen=True)
class Observations:
    """The latest charted values (after corrections) the scores need; each with when it was observed."""

    rass: tuple[int, datetime] | None = None
    moaas: tuple[int, datetime] | None = None
    pain_nrs: tuple[int, datetime] | None = None
    side_effects: tuple[dict[SideEffect, Severity], datetime] | None = None
    assessment: dict[str, tuple[object, datetime]] = field(default_factory=dict)
    reversal_given: bool = False

    def get(self, name: str) -> object | None:
        """An assessment field's latest value."""
        v = self.assessment.get(name)
        return None if v is None else v[0]


def _consciousness(obs: Observations) -> tuple[int | None, str]:
    """Aldrete consciousness: the charted item, or derived from the latest sedation score if more recent."""
    charted = obs.assessment.get("consciousness")
    latest_score_t = max((s[1] for s in (obs.rass, obs.moaas) if s is not None), default=None)
    if charted is not None and (latest_score_t is None or charted[1] >= latest_score_t):
        pts = {"awake": 2, "arousable": 1, "unresponsive": 0}[str(charted[0])]
        return pts, f"charted {charted[0]}"
    if latest_score_t is None:
        return None, "no consciousness item or sedation score charted"
    # Mapping [I]: MOAA/S 5 or RASS ≥ 0 = fully awake; MOAA/S 3–4 or RASS −1..−3 ("responds to name / voice")
    # = arousable on calling; MOAA/S ≤ 2 or RASS ≤ −4 (needs touch or pain) = not responding (Table 4).
    pts_list: list[int] = []
    if obs.rass is not None and obs.rass[1] == latest_score_t:
        r = obs.rass[0]
        pts_list.append(2 if r >= 0 else 1 if r >= -3 else 0)
    if obs.moaas is not None and obs.moaas[1] == latest_score_t:
        m = obs.moaas[0]
        pts_list.append(2 if m == 5 else 1 if m >= 3 else 0)
    return min(pts_list), "from the latest sedation score (MOAA/S 5 / RASS >= 0 awake; 3-4 / -1..-3 arousable)"


def aldrete(
    obs: Observations, baseline: Vitals | None, vitals: Vitals | None, circulation: Literal["mmhg", "percent"] = "mmhg"
) -> Score:
    """Modified Aldrete (Aldrete 1995; CLINICAL.md Table 5): activity, respiration, circulation, consciousness, SpO₂."""
    items: list[ItemScore] = []
    limbs = obs.get("limbs_moving")
    if isinstance(limbs, int):
        pts = 2 if limbs >= 4 else 1 if limbs >= 2 else 0
        items.append(ItemScore(item="activity", points=pts, basis=f"{limbs} limbs"))
    else:
        items.append(ItemScore(item="activity", points=None, basis="limbs moving not charted"))
    resp = obs.get("respiration")
    resp_pts = {"deep": 2, "shallow": 1, "apnoeic": 0}.get(str(resp)) if resp is not None else None
    items.append(ItemScore(item="respiration", points=resp_pts, basis=str(resp) if resp else "not charted"))
    sbp0 = baseline.sbp if baseline else None
    sbp = vitals.sbp if vitals else None
    if sbp0 is None or sbp is None:
        items.append(ItemScore(item="circulation", points=None, basis="needs baseline and current systolic BP"))
    else:
        d = abs(sbp - sbp0)
        if circulation == "percent":
            pct = 100.0 * d / sbp0 if sbp0 else 100.0
            pts = 2 if pct <= 20 else 1 if pct <= 50 else 0
            basis = f"SBP {sbp:.0f} vs baseline {sbp0:.0f} ({pct:.0f} %)"
        else:
            pts = 2 if d <= 20 else 1 if d <= 50 else 0
            basis = f"SBP {sbp:.0f} vs baseline {sbp0:.0f} ({d:.0f} mmHg)"
        items.append(ItemScore(item="circulation", points=pts, basis=basis))
    c_pts, c_basis = _consciousness(obs)
    items.append(ItemScore(item="consciousness", points=c_pts, basis=c_basis))
    spo2 = vitals.spo2 if vitals else None
    on_o2 = obs.get("on_oxygen")
    if spo2 is None or on_o2 is None:
        items.append(ItemScore(item="spo2", points=None, basis="needs SpO2 and whether on supplemental O2"))
    elif on_o2:
        items.append(ItemScore(item="spo2", points=1 if spo2 >= 90 else 0, basis=f"SpO2 {spo2:.0f} % on O2"))
    else:
        # > 92 % on room air = 2 [S]; 90–92 % on room air is not in the table: scored 1 [I]; < 90 % = 0 [S].
        pts = 2 if spo2 > 92 else 1 if spo2 >= 90 else 0
        items.append(ItemScore(item="spo2", points=pts, basis=f"SpO2 {spo2:.0f} % on room air"))
    return _score("modified_aldrete", items, ALDRETE_PASS, "Aldrete 1995 via CLINICAL.md Table 5 [S]; pass >= 9 [S2]")


def _dev_pct(now: float | None, base: float | None) -> float | None:
    if now is None or base is None or base <= 0:
        return None
    return 100.0 * abs(now - base) / base


def padss(obs: Observations, baseline: Vitals | None, vitals: Vitals | None) -> Score:
    """PADSS (Chung 1995; CLINICAL.md Table 5): vitals, activity/mental status, pain/PONV, bleeding, intake/output."""
    items: list[ItemScore] = []
    devs = {
        k: _dev_pct(getattr(vitals, k, None) if vitals else None, getattr(baseline, k, None) if baseline else None)
        for k in ("sbp", "dbp", "hr")
    }
    known = {k: v for k, v in devs.items() if v is not None}
    if "sbp" not in known or "hr" not in known:
        items.append(ItemScore(item="vital_signs", points=None, basis="needs baseline and current BP and HR"))
    else:
        worst = max(known.values())
        pts = 2 if worst <= 20 else 1 if worst <= 40 else 0
        basis = ", ".join(f"{k.upper()} {v:.0f} %" for k, v in known.items()) + " from baseline"
        items.append(ItemScore(item="vital_signs", points=pts, basis=basis))
    oriented, gait = obs.get("oriented"), obs.get("steady_gait")
    if oriented is None or gait is None:
        items.append(ItemScore(item="activity_mental_status", points=None, basis="oriented x3 and gait not charted"))
    else:
        pts = int(bool(oriented)) + int(bool(gait))
        items.append(
            ItemScore(item="activity_mental_status", points=pts, basis=f"oriented={oriented}, steady gait={gait}")
        )
    if obs.pain_nrs is None or obs.side_effects is None:
        items.append(ItemScore(item="pain_nausea_vomiting", points=None, basis="pain NRS and side effects not charted"))
    else:
        nrs = obs.pain_nrs[0]
        # NRS 0–3 minimal, 4–6 moderate, 7–10 severe: conventional bands [I].
        pain_pts = 2 if nrs <= 3 else 1 if nrs <= 6 else 0
        effects = obs.side_effects[0]
        sev = [effects[e] for e in (SideEffect.NAUSEA, SideEffect.VOMITING) if e in effects]
        nv_pts = min((2 if s is Severity.MILD else 1 if s is Severity.MODERATE else 0 for s in sev), default=2)
        items.append(
            ItemScore(
                item="pain_nausea_vomiting",
                points=min(pain_pts, nv_pts),
                basis=f"pain NRS {nrs}; nausea/vomiting {', '.join(s.value for s in sev) or 'none'}",
            )
        )
    bleeding = obs.get("bleeding")
    if bleeding is None:
        items.append(ItemScore(item="bleeding", points=2, basis="no procedure: scored 2 for infusions (Table 5)"))
    else:
        pts = {"minimal": 2, "moderate": 1, "severe": 0}[str(bleeding)]
        items.append(ItemScore(item="bleeding", points=pts, basis=str(bleeding)))
    fluids, voided = obs.get("tolerating_fluids"), obs.get("voided")
    if fluids is None and voided is None:
        items.append(ItemScore(item="intake_output", points=None, basis="oral fluids / voiding not charted"))
    else:
        pts = int(bool(fluids)) + int(bool(voided))
        items.append(ItemScore(item="intake_output", points=pts, basis=f"fluids={fluids}, voided={voided}"))
    return _score("padss", items, PADSS_PASS, "Chung 1995 via CLINICAL.md Table 5 [S]; pass >= 9 of 10 plus an escort")


def _score(name: str, items: list[ItemScore], pass_at: int, source: str) -> Score:
    missing = [i.item for i in items if i.points is None]
    total = None if missing else sum(i.points or 0 for i in items)
    return Score(
        name=name,
        total=total,
        max=2 * len(items),
        pass_at=pass_at,
        passed=total is not None and total >= pass_at,
        items=items,
        missing=missing,
        source=source,
    )


def readiness(
    obs: Observations,
    baseline: Vitals | None,
    vitals: Vitals | None,
    recovery_started: datetime | None,
    now: datetime,
    recovery_min: timedelta | None = None,
) -> Readiness:
    """Every discharge criterion of CLINICAL.md Table 5 (scores plus the ketamine-specific additions)."""
    checks: list[Check] = []

    def check(name: str, ok: bool, detail: str) -> None:
        checks.append(Check(name=name, ok=ok, detail=detail))

    need = RECOVERY_AFTER_REVERSAL if obs.reversal_given else recovery_min or RECOVERY_MIN
    if recovery_started is None:
        check("recovery_time", False, "recovery has not started (the infusion has not ended)")
    else:
        elapsed = now - recovery_started
        check(
            "recovery_time",
            elapsed >= need,
            f"{elapsed.total_seconds() / 60:.0f} of {need.total_seconds() / 60:.0f} min since the end of the infusion"
            + (" (reversal agent given: observe ~2 h)" if obs.reversal_given else ""),
        )
    recent = [s for s in (obs.rass, obs.moaas) if s is not None and now - s[1] <= SCORE_MAX_AGE]
    if not recent:
        check("sedation", False, "no sedation score in the last 15 min")
    else:
        ok = (obs.rass is None or obs.rass[0] == 0) and (obs.moaas is None or obs.moaas[0] == 5)
        parts = [f"RASS {obs.rass[0]}" if obs.rass else "", f"MOAA/S {obs.moaas[0]}" if obs.moaas else ""]
        check("sedation", ok, " / ".join(p for p in parts if p) + " (needs RASS 0 / MOAA/S 5)")
    if obs.side_effects is None:
        check("psychotomimetic", False, "side effects not charted (chart 'none' explicitly)")
    else:
        ongoing = [e.value for e in BLOCKING_EFFECTS if e in obs.side_effects[0]]
        check("psychotomimetic", not ongoing, "ongoing: " + ", ".join(ongoing) if ongoing else "none ongoing")
    bp_fresh = vitals is not None and vitals.bp_at is not None and now - vitals.bp_at <= BP_MAX_AGE
    if vitals is None or vitals.sbp is None or vitals.dbp is None or not bp_fresh:
        check("blood_pressure", False, "no NIBP in the last 15 min")
    else:
        ok = SBP_RANGE[0] <= vitals.sbp < SBP_RANGE[1] and vitals.dbp < DBP_MAX
        check("blood_pressure", ok, f"{vitals.sbp:.0f}/{vitals.dbp:.0f} (needs SBP 90-159 and DBP < 100)")
    cont_fresh = vitals is not None and vitals.at is not None and now - vitals.at <= CONTINUOUS_MAX_AGE
    if vitals is None or vitals.hr is None or not cont_fresh:
        check("heart_rate", False, "no current heart rate")
    else:
        check("heart_rate", HR_RANGE[0] <= vitals.hr <= HR_RANGE[1], f"HR {vitals.hr:.0f} (needs 50-110)")
    if vitals is None or vitals.spo2 is None or not cont_fresh:
        check("spo2", False, "no current SpO2")
    else:
        on_o2 = obs.get("on_oxygen")
        base = baseline.spo2 if baseline else None
        ok = on_o2 is False and (vitals.spo2 >= SPO2_MIN or (base is not None and vitals.spo2 >= base))
        where = "room air" if on_o2 is False else "on O2" if on_o2 else "O2 status not charted"
        check("spo2", ok, f"SpO2 {vitals.spo2:.0f} % ({where}; needs >= 92 % on room air or at baseline)")
    gait = obs.get("steady_gait")
    check("steady_gait", gait is True, "steady gait" if gait else "steady gait not confirmed")
    escort = obs.get("escort_present")
    check("escort", escort is True, "responsible adult escort present" if escort else "escort not confirmed")
    a = aldrete(obs, baseline, vitals)
    p = padss(obs, baseline, vitals)
    check("aldrete", a.passed, f"modified Aldrete {a.total if a.total is not None else '?'} (needs >= 9)")
    check("padss", p.passed, f"PADSS {p.total if p.total is not None else '?'} (needs >= 9)")
    unmet = [f"{c.name}: {c.detail}" for c in checks if not c.ok]
    return Readiness(ready=not unmet, unmet=unmet, checks=checks, aldrete=a, padss=p)


#: Discharge instructions given with every discharge (CLINICAL.md Table 5 and §2.4). Each line cites its basis.
DISCHARGE_INSTRUCTIONS: tuple[tuple[str, str], ...] = (
    (
        "Do not drive, cycle or operate machinery until the next day after a restful sleep (at least 24 hours).",
        "CLINICAL.md Table 5: no driving until the next day after restful sleep, by analogy with the esketamine "
        "label [S]; the 24-hour minimum is [I]",
    ),
    (
        "Go home with a responsible adult; do not stay alone for the rest of the day.",
        "CLINICAL.md Table 5: PADSS pass requires a responsible adult escort [S]",
    ),
    (
        "No alcohol, sleeping tablets or other sedatives for 24 hours; do not sign important documents today.",
        "Ketamine and midazolam delay recovery (CLINICAL.md Table 5, Akhlaghi 2019 [S]); the 24-hour rule is [I]",
    ),
    (
        "Vivid or unpleasant dreams can recur for up to about three nights; this is expected and passes.",
        "CLINICAL.md §2.4: unpleasant dreams can recur for up to ~3 nights (textbook chapter) [S]",
    ),
    (
        "Call the clinic or emergency services for chest pain, severe headache, breathing difficulty, confusion, "
        "hallucinations that do not settle, or persistent vomiting.",
        "CLINICAL.md §2.2 (stop criteria: hypertension, respiratory compromise, psychotomimetic effects) [R]; [I]",
    ),
)
