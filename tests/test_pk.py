"""Ketamine and midazolam PK: the published simulations of CLINICAL.md Table 7 and exact integration."""

from __future__ import annotations

import math

import pytest

from simulators.pk import CLEMENTS, DOMINO, MIDAZOLAM, Action, DoseEvent, DrugModel, PKParams, expm


def infusion(mg_per_min: float, start_s: float, stop_s: float) -> list[DoseEvent]:
    return [DoseEvent(start_s, Action.START, mg_per_min=mg_per_min), DoseEvent(stop_s, Action.STOP)]


def test_clements_regimen_a_end_of_infusion_matches_published_figure() -> None:
    # CLINICAL.md Table 7, regimen A: 0.5 mg/kg over 40 min (35 mg) in a 70-kg adult. Clements model:
    # 177 ng/mL at the end of the infusion; observed anchor ~185 ng/mL (Zarate 2006, via Zanos 2018).
    model = DrugModel(CLEMENTS, 70.0, infusion(35.0 / 40.0, 0.0, 40 * 60.0))
    cp = model.cp(40 * 60.0)
    assert cp == pytest.approx(177.0, rel=0.10)
    assert cp == pytest.approx(185.0, rel=0.10)
    assert cp == pytest.approx(177.0, abs=1.0)  # in fact it reproduces the table to the ng/mL


@pytest.mark.parametrize(
    ("params", "regimen", "expected"),
    [
        # Table 7 regimen A, end of infusion, each model's column
        (DOMINO, (35.0 / 40.0, 40), {40: (240.0, None)}),
        # Table 7 regimen B (0.5 mg/kg/h × 60 min) and the Cp/Ce line below the table (ke0 0.114/min)
        (
            CLEMENTS,
            (35.0 / 60.0, 60),
            {10: (41, 17), 30: (98, 75), 60: (150, 136), 75: (111, 126), 90: (88, 101), 120: (64, 70)},
        ),
        (DOMINO, (35.0 / 60.0, 60), {60: (176, 169), 75: (55, 86), 90: (46, 55)}),
        # regimen C (1 mg/kg/h × 60 min): end / +15 / +30 min
        (CLEMENTS, (70.0 / 60.0, 60), {60: (300, None), 75: (222, None), 90: (175, None)}),
        # regimen D (0.35 mg/kg/h × 4 h, CRPS): end
        (CLEMENTS, (24.5 / 60.0, 240), {240: (207, None)}),
        (DOMINO, (24.5 / 60.0, 240), {240: (182, None)}),
    ],
)
def test_table7_simulations(
    params: PKParams, regimen: tuple[float, int], expected: dict[int, tuple[float, float | None]]
) -> None:
    rate, minutes = regimen
    model = DrugModel(params, 70.0, infusion(rate, 0.0, minutes * 60.0))
    for minute, (cp, ce) in expected.items():
        got_cp, got_ce = model.concentrations(minute * 60.0)
        assert got_cp == pytest.approx(cp, rel=0.03), (minute, got_cp)
        if ce is not None:
            assert got_ce == pytest.approx(ce, rel=0.03), (minute, got_ce)


def test_regimen_e_bolus_plus_infusion() -> None:
    # Table 7 regimen E: 2 mg/kg bolus + 41 µg/kg/min, 60 min: Clements ~1070 ng/mL.
    events = [DoseEvent(0.0, Action.BOLUS, mg=140.0), DoseEvent(0.0, Action.START, mg_per_min=0.041 * 70)]
    assert DrugModel(CLEMENTS, 70.0, events).cp(3600.0) == pytest.approx(1070.0, rel=0.05)


def test_one_compartment_matches_the_analytic_solution() -> None:
    p = PKParams("one", v1_l_per_kg=0.5, k10=0.1, ke0=0.3)
    model = DrugModel(p, 70.0, infusion(2.0, 0.0, 600.0))
    v = 35.0
    for t in (30.0, 299.5, 600.0, 1234.5):
        tm = min(t, 600.0) / 60.0
        amount = 2.0 / 0.1 * (1.0 - math.exp(-0.1 * tm))
        if t > 600.0:
            amount *= math.exp(-0.1 * (t - 600.0) / 60.0)
        assert model.exact_state(t)[0] == pytest.approx(amount, rel=1e-9)
        assert model.cp(t) == pytest.approx(amount * 1000.0 / v, rel=1e-4)  # 1-s grid interpolation


def test_expm_of_a_diagonal_and_a_nilpotent_matrix() -> None:
    e = expm([[-2.0, 0.0], [0.0, 3.0]])
    assert e[0][0] == pytest.approx(math.exp(-2.0), rel=1e-12)
    assert e[1][1] == pytest.approx(math.exp(3.0), rel=1e-12)
    n = expm([[0.0, 5.0], [0.0, 0.0]])
    assert n == [[1.0, 5.0], [0.0, 1.0]]


def test_pause_resume_and_rate_change() -> None:
    rate = 1.0
    paused = DrugModel(
        CLEMENTS,
        70.0,
        [
            DoseEvent(0.0, Action.START, mg_per_min=rate),
            DoseEvent(600.0, Action.PAUSE),
            DoseEvent(900.0, Action.RESUME),
            DoseEvent(1800.5, Action.RATE, mg_per_min=2 * rate),
            DoseEvent(2400.0, Action.STOP),
        ],
    )
    assert paused.rate_at(700.0) == 0.0
    assert paused.rate_at(1000.0) == rate
    assert paused.rate_at(2000.0) == 2 * rate
    assert paused.rate_at(2500.0) == 0.0
    # during the pause the concentration falls; after resuming it rises again
    assert paused.cp(890.0) < paused.cp(600.0) < paused.cp(1700.0)
    # total dose = 10 + 15 + 2·10 min ≈ 45 mg: compare with a model that received 45 mg as one bolus long ago
    x = paused.exact_state(2400.0)
    assert x[0] + x[1] + x[2] < 45.0  # some has been eliminated
    assert x[0] + x[1] + x[2] > 30.0


def test_bolus_jumps_the_plasma_concentration_by_dose_over_v1() -> None:
    model = DrugModel(DOMINO, 80.0, [DoseEvent(120.0, Action.BOLUS, mg=20.0)])
    assert model.cp(119.0) == 0.0
    assert model.exact_state(120.0)[0] == pytest.approx(20.0)
    assert model.cp(120.0) == pytest.approx(20.0 * 1000 / (0.063 * 80))
    assert model.ce(120.0) == 0.0  # the effect site lags
    assert model.ce(300.0) > 0.0


def test_between_subject_variability_scales_clearance_and_volume() -> None:
    typical = DrugModel(CLEMENTS, 70.0, infusion(1.0, 0.0, 3600.0))
    small_v = DrugModel(CLEMENTS, 70.0, infusion(1.0, 0.0, 3600.0), v1_factor=0.7)
    fast_cl = DrugModel(CLEMENTS, 70.0, infusion(1.0, 0.0, 3600.0), cl_factor=1.4)
    assert small_v.cp(600.0) > typical.cp(600.0) * 1.3
    assert fast_cl.cp(3600.0) < typical.cp(3600.0)


def test_midazolam_premed_peaks_within_minutes_and_has_a_plausible_half_life() -> None:
    # CLINICAL.md §2.5: peak effect 3–5 min after IV midazolam (our placeholder peaks later: allow ≤ 12),
    # elimination half-life 2–6 h.
    model = DrugModel(MIDAZOLAM, 70.0, [DoseEvent(0.0, Action.BOLUS, mg=2.0)])
    ce = [model.ce(m * 60.0) for m in range(0, 31)]
    peak_min = max(range(len(ce)), key=ce.__getitem__)
    assert 3 <= peak_min <= 12
    c4, c6 = model.cp(4 * 3600.0), model.cp(6 * 3600.0)
    half_life_h = 2.0 * math.log(2) / math.log(c4 / c6)
    assert 2.0 <= half_life_h <= 6.0


def test_same_inputs_same_floats() -> None:
    a = DrugModel(DOMINO, 70.0, infusion(0.9, 30.0, 2000.0))
    b = DrugModel(DOMINO, 70.0, infusion(0.9, 30.0, 2000.0))
    assert [a.concentrations(t * 7.3) for t in range(500)] == [b.concentrations(t * 7.3) for t in range(500)]
