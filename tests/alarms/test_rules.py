"""Every default rule as a table: (inputs over time, phase) -> the rule's events.

Times are seconds from the scenario start; continuous numerics arrive at 1 Hz like the simulated monitor.
"""

from __future__ import annotations

import pytest

from tests.alarms.dsl import Step, events_of, every, ticks

INF = [(0.0, "phase infusion")]
REC = [(0.0, "phase recovery")]


def case(id: str, rule: str, steps: list[Step], expected: list[str]) -> object:
    """One table row."""
    return pytest.param(rule, steps, expected, id=id)


# Baseline phase 0..150 s with 1 Hz HR/EtCO2 at the given values and two NIBP readings, then infusion at 150.
def baseline(hr: float = 80, etco2: float = 35, sys: float = 120, dia: float = 70, mean: float = 85) -> list[Step]:
    """A complete baseline phase (2.5 min of 1 Hz data, 2 NIBP readings), infusion from t=150."""
    return [
        (0, "phase baseline"),
        *every(f"hr={hr}; etco2={etco2}", 1, 149),
        (10, f"nibp_sys={sys - 2}; nibp_dia={dia - 2}; nibp_mean={mean - 2}"),
        (140, f"nibp_sys={sys + 2}; nibp_dia={dia + 2}; nibp_mean={mean + 2}"),
        (150, "phase infusion"),
    ]


CASES = [
    # --- row 1: SpO2 low -------------------------------------------------------------------------------
    case(
        "spo2-9s-dip-below-10s-delay", "spo2_low", [*INF, *every("spo2=88", 1, 9), (10, "spo2=96"), *ticks(11, 30)], []
    ),
    case("spo2-88-high-after-10s", "spo2_low", [*INF, *every("spo2=88", 1, 20)], ["11 raised high"]),
    case("spo2-91-medium-after-15s", "spo2_low", [*INF, *every("spo2=91", 1, 30)], ["16 raised medium"]),
    case("spo2-84-high-at-once", "spo2_low", [*INF, (1, "spo2=84")], ["1 raised high"]),
    case(
        "spo2-medium-then-worse-high",
        "spo2_low",
        [*INF, *every("spo2=91", 1, 20), *every("spo2=88", 21, 40)],
        ["16 raised medium", "31 priority_changed high"],
    ),
    case(
        "spo2-medium-clears-only-beyond-hysteresis",
        "spo2_low",
        [*INF, *every("spo2=91", 1, 20), *every("spo2=92", 21, 40), *every("spo2=93", 41, 45)],
        ["16 raised medium", "41 cleared medium"],
    ),
    case(
        "spo2-no-chattering-around-limit",
        "spo2_low",
        [*INF, *every("spo2=91", 1, 16), *every("spo2=92", 17, 79, 2), *every("spo2=91", 18, 80, 2), (81, "spo2=97")],
        ["16 raised medium", "81 cleared medium"],
    ),
    case(
        "spo2-high-latches-until-ack",
        "spo2_low",
        [*INF, *every("spo2=88", 1, 12), *every("spo2=97", 13, 20), (25, "ack")],
        ["11 raised high", "13 condition_ended high", "25 acknowledged high", "25 cleared high"],
    ),
    case(
        "spo2-acked-high-clears-with-condition",
        "spo2_low",
        [*INF, *every("spo2=88", 1, 12), (12, "ack"), *every("spo2=97", 13, 14)],
        ["11 raised high", "12 acknowledged high", "13 cleared high"],
    ),
    case(
        "spo2-latched-high-drops-to-medium-on-ack",
        "spo2_low",
        [*INF, *every("spo2=88", 1, 12), *every("spo2=91", 13, 20), (20, "ack")],
        ["11 raised high", "20 acknowledged high", "20 priority_changed medium"],
    ),
    case(
        "spo2-missing-data-pauses-the-timer",
        "spo2_low",
        [*INF, *every("spo2=88", 1, 5), *every("spo2=-", 6, 20), *every("spo2=88", 21, 30)],
        ["26 raised high"],  # 5 s before the gap + 5 s after it
    ),
    case("spo2-silence-is-not-abnormal", "spo2_low", [*INF, *every("spo2=88", 1, 3), *ticks(4, 60)], []),
    case(
        "spo2-missing-data-does-not-clear",
        "spo2_low",
        [*INF, *every("spo2=91", 1, 20), *every("spo2=-", 21, 60), *ticks(61, 100), (101, "spo2=97")],
        ["16 raised medium", "101 cleared medium"],
    ),
    case("spo2-questionable-deferred-15s", "spo2_low", [*INF, *every("spo2=88?", 1, 40)], ["26 raised high"]),
    case("spo2-questionable-below-85-not-deferred", "spo2_low", [*INF, (1, "spo2=80?")], ["1 raised high"]),
    case("spo2-not-in-planned-phase", "spo2_low", every("spo2=80", 1, 20), []),
    case(
        "spo2-medium-clears-on-discharge",
        "spo2_low",
        [*INF, *every("spo2=91", 1, 20), (21, "phase discharged")],
        ["16 raised medium", "21 cleared medium"],
    ),
    # --- row 1a: sentinel flag -------------------------------------------------------------------------
    case("sentinel-spo2-below-90-for-60s", "spo2_sentinel", [*INF, *every("spo2=88", 1, 70)], ["61 raised info"]),
    case(
        "sentinel-spo2-below-75",
        "spo2_sentinel",
        [*INF, (1, "spo2=74"), (2, "spo2=97")],
        ["1 raised info", "2 cleared info"],
    ),
    case("sentinel-apnoea-60s", "spo2_sentinel", [*INF, *every("rr=0; etco2=0", 1, 70)], ["61 raised info"]),
    # --- row 2: no breath ------------------------------------------------------------------------------
    case(
        "no-breath-medium-15s-high-30s",
        "no_breath",
        [*INF, *every("rr=0; etco2=0", 1, 35)],
        ["16 raised medium", "31 priority_changed high"],
    ),
    case("no-breath-14s-nothing", "no_breath", [*INF, *every("rr=0; etco2=0", 1, 14), (15, "rr=12; etco2=36")], []),
    case(
        "no-breath-device-apnoea",
        "no_breath",
        [*INF, (1, "on MDC_EVT_APNEA"), *ticks(2, 20), (20, "off MDC_EVT_APNEA"), (20, "rr=12; etco2=36")],
        ["16 raised medium", "20 cleared medium"],
    ),
    case("no-breath-not-rr-abnormal", "rr_abnormal", [*INF, *every("rr=0; etco2=0", 1, 90)], []),
    # --- row 3: EtCO2 high -----------------------------------------------------------------------------
    case("etco2-52-medium-30s", "etco2_high", [*INF, *every("etco2=52", 1, 40)], ["31 raised medium"]),
    case("etco2-62-high-30s", "etco2_high", [*INF, *every("etco2=62", 1, 40)], ["31 raised high"]),
    case(
        "etco2-high-non-latching",
        "etco2_high",
        [*INF, *every("etco2=62", 1, 35), *every("etco2=40", 36, 37)],
        ["31 raised high", "36 cleared high"],
    ),
    case(
        "etco2-baseline-plus-10-after-60s",
        "etco2_high",
        [*baseline(etco2=35), *every("etco2=46", 151, 220)],
        ["211 raised medium"],
    ),
    case("etco2-below-baseline-plus-10", "etco2_high", [*baseline(etco2=35), *every("etco2=44", 151, 260)], []),
    # --- row 4: EtCO2 low while breathing ----------------------------------------------------------------
    case("etco2-low-advisory-60s", "etco2_low", [*INF, *every("etco2=20; rr=14", 1, 70)], ["61 raised low"]),
    case("etco2-low-not-when-apnoeic", "etco2_low", [*INF, *every("etco2=0; rr=0", 1, 90)], []),
    # --- row 5: RR -------------------------------------------------------------------------------------
    case("rr-8-medium-30s", "rr_abnormal", [*INF, *every("rr=8", 1, 40)], ["31 raised medium"]),
    case("rr-5-high-30s", "rr_abnormal", [*INF, *every("rr=5", 1, 40)], ["31 raised high"]),
    case("rr-35-medium-60s", "rr_abnormal", [*INF, *every("rr=35", 1, 70)], ["61 raised medium"]),
    case(
        "rr-high-non-latching",
        "rr_abnormal",
        [*INF, *every("rr=5", 1, 32), *every("rr=9", 33, 34), *every("rr=14", 35, 36)],
        ["31 raised high", "33 priority_changed medium", "35 cleared medium"],
    ),
    # --- row 6: HR high --------------------------------------------------------------------------------
    case("hr-115-medium-60s", "hr_high", [*INF, *every("hr=115", 1, 70)], ["61 raised medium"]),
    case("hr-135-high-30s", "hr_high", [*INF, *every("hr=135", 1, 40)], ["31 raised high"]),
    case("hr-baseline-plus-30pct", "hr_high", [*baseline(hr=80), *every("hr=105", 151, 220)], ["211 raised medium"]),
    case("hr-below-baseline-plus-30pct", "hr_high", [*baseline(hr=80), *every("hr=103", 151, 260)], []),
    case(
        "hr-relative-rule-not-in-baseline-phase",
        "hr_high",
        [(0, "phase baseline"), (0, "baseline hr 80"), *every("hr=105", 1, 100)],
        [],
    ),
    case(
        "hr-baseline-needs-2-min-of-data",
        "hr_high",
        [(0, "phase baseline"), *every("hr=80", 1, 60), (61, "phase infusion"), *every("hr=105", 62, 200)],
        [],
    ),
    # --- row 7: HR low ---------------------------------------------------------------------------------
    case("hr-45-medium-30s", "hr_low", [*INF, *every("hr=45", 1, 40)], ["31 raised medium"]),
    case("hr-38-high-10s", "hr_low", [*INF, *every("hr=38", 1, 20)], ["11 raised high"]),
    case(
        "hr-arrhythmia-high-at-once-latches",
        "hr_low",
        [*INF, (1, "on MDC_EVT_ECG_V_FIB"), (5, "off MDC_EVT_ECG_V_FIB"), (9, "ack hr_low")],
        ["1 raised high", "5 condition_ended high", "9 acknowledged high", "9 cleared high"],
    ),
    # --- row 8: BP high with confirmation -----------------------------------------------------------------
    case(
        "bp-185-medium-then-high-on-repeat",
        "bp_high",
        [*INF, (1, "nibp_sys=185; nibp_dia=90; nibp_mean=120"), (60, "nibp_sys=182; nibp_dia=88; nibp_mean=118")],
        ["1 confirmation_requested high", "1 raised medium", "60 priority_changed high"],
    ),
    case(
        "bp-185-not-confirmed",
        "bp_high",
        [*INF, (1, "nibp_sys=185; nibp_dia=90; nibp_mean=120"), (60, "nibp_sys=150; nibp_dia=85; nibp_mean=105")],
        ["1 confirmation_requested high", "1 raised medium", "60 cleared medium"],
    ),
    case(
        "bp-sys-and-dia-of-one-measurement-are-not-a-repeat",
        "bp_high",
        [*INF, (1, "nibp_sys=185; nibp_dia=115; nibp_mean=135"), *ticks(2, 100)],
        ["1 confirmation_requested high", "1 raised medium"],
    ),
    case(
        "bp-dia-112-confirmed-on-repeat",
        "bp_high",
        [*INF, (1, "nibp_sys=150; nibp_dia=112; nibp_mean=125"), (45, "nibp_sys=150; nibp_dia=111; nibp_mean=124")],
        ["1 confirmation_requested high", "1 raised medium", "45 priority_changed high"],
    ),
    case(
        "bp-205-high-at-once",
        "bp_high",
        [*INF, (1, "nibp_sys=205; nibp_dia=100; nibp_mean=135")],
        ["1 confirmation_requested high", "1 raised high"],
    ),
    case(
        "bp-165-medium-with-repeat",
        "bp_high",
        [*INF, (1, "nibp_sys=165; nibp_dia=90; nibp_mean=115")],
        ["1 confirmation_requested medium", "1 raised medium"],
    ),
    case(
        "bp-baseline-plus-40",
        "bp_high",
        [*baseline(sys=100, dia=60, mean=73), (200, "nibp_sys=145; nibp_dia=70; nibp_mean=95")],
        ["200 confirmation_requested medium", "200 raised medium"],
    ),
    case(
        "bp-baseline-needs-2-nibp",
        "bp_high",
        [
            (0, "phase baseline"),
            (10, "nibp_sys=100; nibp_dia=60"),
            (20, "phase infusion"),
            (200, "nibp_sys=145; nibp_dia=70"),
        ],
        [],
    ),
    case(
        "bp-high-latches",
        "bp_high",
        [*INF, (1, "nibp_sys=210; nibp_dia=100"), (300, "nibp_sys=130; nibp_dia=80"), (301, "ack bp_high")],
        [
            "1 confirmation_requested high",
            "1 raised high",
            "300 condition_ended high",
            "300 escalated high",  # no Tick in between: escalation runs on the next input
            "301 acknowledged high",
            "301 cleared high",
        ],
    ),
    # --- row 9: BP low ---------------------------------------------------------------------------------
    case(
        "bp-low-sys-85",
        "bp_low",
        [*INF, (1, "nibp_sys=85; nibp_dia=50; nibp_mean=62")],
        ["1 confirmation_requested medium", "1 raised medium"],
    ),
    case(
        "bp-low-map-52-high",
        "bp_low",
        [*INF, (1, "nibp_sys=85; nibp_dia=40; nibp_mean=52")],
        ["1 confirmation_requested high", "1 raised high"],
    ),
    case(
        "bp-low-25pct-below-baseline",
        "bp_low",
        [*baseline(sys=140, dia=85, mean=103), (200, "nibp_sys=104; nibp_dia=70; nibp_mean=81")],
        ["200 confirmation_requested medium", "200 raised medium"],
    ),
    case(
        "bp-low-24pct-below-baseline",
        "bp_low",
        [*baseline(sys=140, dia=85, mean=103), (200, "nibp_sys=107; nibp_dia=70; nibp_mean=82")],
        [],
    ),
    # --- row 10: sedation depth (charted) ----------------------------------------------------------------
    case("moaas-3-medium", "sedation_deep", [*INF, (5, "chart moaas 3")], ["5 raised medium"]),
    case("moaas-2-high", "sedation_deep", [*INF, (5, "chart moaas 2")], ["5 raised high"]),
    case("poss-3-medium", "sedation_deep", [*INF, (5, "chart poss 3")], ["5 raised medium"]),
    case(
        "rass-minus-4-high-latches",
        "sedation_deep",
        [*INF, (5, "chart rass -4"), *ticks(10, 40, 5), (300, "chart rass 0"), (310, "ack")],
        ["5 raised high", "35 escalated high", "300 condition_ended high", "310 acknowledged high", "310 cleared high"],
    ),
    case("rass-minus-2-nothing", "sedation_deep", [*INF, (5, "chart rass -2")], []),
    # --- row 11: agitation -----------------------------------------------------------------------------
    case(
        "rass-plus-2-then-3-then-calm",
        "agitation",
        [*INF, (5, "chart rass 2"), (60, "chart rass 3"), (120, "chart rass 0")],
        ["5 raised medium", "60 priority_changed high", "120 cleared high"],
    ),
    # --- row 12: sedation score overdue --------------------------------------------------------------------
    case(
        "sedation-overdue-infusion",
        "sedation_overdue",
        [*INF, *ticks(0, 1600, 10), (1000, "chart rass 0")],
        ["910 raised low", "1000 cleared low"],
    ),
    case(
        "sedation-overdue-becomes-medium",
        "sedation_overdue",
        [*INF, *ticks(0, 1600, 10)],
        ["910 raised low", "1510 priority_changed medium"],
    ),
    case("sedation-overdue-recovery-20-min", "sedation_overdue", [*REC, *ticks(0, 1300, 10)], ["1210 raised low"]),
    case("sedation-overdue-not-at-baseline", "sedation_overdue", [(0, "phase baseline"), *ticks(0, 3000, 10)], []),
    # --- row 13: temperature ---------------------------------------------------------------------------
    case("temp-35-advisory-60s", "temp_abnormal", [*INF, *every("temp=35.0", 1, 70)], ["61 raised low"]),
    case("temp-38.5-advisory-60s", "temp_abnormal", [*INF, *every("temp=38.5", 0, 70, 10)], ["60 raised low"]),
    # --- T1 .. T6 and capnography absent -------------------------------------------------------------------
    case(
        "probe-off-medium-10s-high-60s-in-infusion",
        "spo2_probe_off",
        [*INF, (1, "on SPO2_PROBE_OFF"), *ticks(2, 70), (70, "off SPO2_PROBE_OFF")],
        ["11 raised medium", "61 priority_changed high", "70 cleared high"],
    ),
    case(
        "probe-off-stays-medium-in-recovery",
        "spo2_probe_off",
        [*REC, (1, "on SPO2_PROBE_OFF"), *ticks(2, 90)],
        ["11 raised medium"],
    ),
    case(
        "probe-off-9s-nothing",
        "spo2_probe_off",
        [*INF, (1, "on SPO2_PROBE_OFF"), *ticks(2, 9), (10, "off SPO2_PROBE_OFF"), *ticks(11, 30)],
        [],
    ),
    case(
        "spo2-stale-after-30s",
        "spo2_stale",
        [*INF, *every("spo2=97", 0, 10), *ticks(11, 45), (46, "spo2=97")],
        ["41 raised medium", "46 cleared medium"],
    ),
    case("leads-off-10s", "ecg_leads_off", [*INF, (1, "on ECG_LEADS_OFF"), *ticks(2, 12)], ["11 raised medium"]),
    case("co2-line-10s", "co2_line", [*INF, (1, "on CO2_LINE"), *ticks(2, 12)], ["11 raised medium"]),
    case("capnography-absent-60s", "capno_absent", [(0, "phase premedication"), *ticks(1, 70)], ["61 raised medium"]),
    case("capnography-present", "capno_absent", [*INF, *every("etco2=36", 0, 120)], []),
    case(
        "nibp-failed-advisory",
        "nibp",
        [*INF, (1, "nibp_sys=-"), (40, "nibp_sys=120")],
        ["1 raised low", "40 cleared low"],
    ),
    case(
        "nibp-overdue-in-infusion",
        "nibp",
        [*INF, (0, "nibp_sys=120"), *ticks(1, 620, 10)],
        ["361 raised low", "601 priority_changed medium"],
    ),
    case("nibp-on-time", "nibp", [*INF, *every("nibp_sys=120", 0, 900, 300), *ticks(1, 900, 10)], []),
    case(
        "no-data-medium-10s-high-30s-latches",
        "no_data",
        [*INF, (1, "status mon stale"), *ticks(2, 40), (40, "status mon online"), (50, "ack")],
        [
            "11 raised medium",
            "31 priority_changed high",
            "40 condition_ended high",
            "50 acknowledged high",
            "50 cleared high",
        ],
    ),
    case("no-data-connecting-is-not-lost", "no_data", [*INF, (1, "status mon connecting"), *ticks(2, 40)], []),
    # --- C1 and C4 -------------------------------------------------------------------------------------
    case(
        "resp-depression-etco2-and-slow-rr",
        "resp_depression",
        [*INF, *every("etco2=52; rr=8", 1, 40)],
        ["31 raised high"],
    ),
    case("resp-depression-etco2-alone", "resp_depression", [*INF, *every("etco2=52; rr=14; spo2=97", 1, 90)], []),
    case(
        "resp-depression-etco2-and-moaas-3",
        "resp_depression",
        [*INF, (1, "chart moaas 3"), *every("etco2=52; rr=14", 1, 40)],
        ["31 raised high"],
    ),
    case(
        "emergence-reaction",
        "emergence",
        [
            *baseline(hr=80, sys=120),
            (160, "chart rass 2"),
            *every("hr=100", 151, 170),
            (165, "nibp_sys=150; nibp_dia=80"),
        ],
        ["165 raised medium"],
    ),
]


@pytest.mark.parametrize(("rule", "steps", "expected"), CASES)
def test_rule_table(rule: str, steps: list[Step], expected: list[str]) -> None:
    assert events_of(steps, rule) == expected


def test_every_default_rule_has_a_row() -> None:
    from tests.alarms.dsl import PROFILE

    covered = {c.values[0] for c in CASES}  # type: ignore[attr-defined]
    assert covered == {r.id for r in PROFILE.rules}
