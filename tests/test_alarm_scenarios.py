"""Clinical regression suite: every simulator scenario, played for 90 minutes through the alarm engine with
the default profile, raises the alarms it is about and no others.

The simulator's monitor output (1 Hz numerics, NIBP on its cuff cycle, technical conditions, the phase its
regimen implies) is fed to the engine exactly as the pipeline does, one simulated second per step, much
faster than real time. Allowed everywhere: the sedation-score reminder (nobody charts in a simulation)
and the sentinel marker (INFO, a log flag).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.alarms.engine import AlarmEngine
from app.alarms.model import AlarmInput, DeviceConditionInput, Phase, PhaseInput, ReadingInput, ReadingsInput, Tick
from app.alarms.profile import load_profile
from monitors.adapters.simulated import TECHNICAL_CONDITIONS
from monitors.models import Quality
from simulators.patient import SimulatedPatient
from simulators.scenario import load_scenario, scenario_names

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
RANK = {"info": 0, "low": 1, "medium": 2, "high": 3}
ALWAYS_ALLOWED = {"sedation_overdue", "spo2_sentinel"}

# scenario: (rules that must fire with their minimum priority, other rules allowed to fire)
EXPECTED: dict[str, tuple[dict[str, str], set[str]]] = {
    "uneventful": ({}, set()),
    "hypertension": ({"bp_high": "high"}, set()),
    "tachycardia": ({"hr_high": "medium"}, {"bp_high"}),
    "oversedation": (
        {"etco2_high": "medium", "rr_abnormal": "medium", "resp_depression": "high", "spo2_low": "medium"},
        {"no_breath"},
    ),
    "apnoea": ({"no_breath": "medium", "spo2_low": "high"}, {"rr_abnormal", "etco2_low", "resp_depression"}),
    "emergence": ({"hr_high": "medium"}, {"bp_high", "nibp", "spo2_low", "emergence", "agitation"}),
    "vasovagal": ({"bp_low": "medium", "hr_low": "medium"}, set()),
    "sensor_off": (
        {"spo2_probe_off": "medium", "ecg_leads_off": "medium", "co2_line": "medium"},
        {"capno_absent", "spo2_stale"},
    ),
    # Without the server's device status, a silent device shows as stale values and absent capnography;
    # through the server the link rule (T6, no_data) fires as well.
    "disconnect": ({"spo2_stale": "medium"}, {"capno_absent", "nibp", "no_data"}),
}


def play(name: str, seed: int = 2, minutes: int = 90) -> dict[str, str]:
    """Highest priority each rule reached while the scenario played."""
    engine = AlarmEngine(load_profile("ketamine_chronic_pain"))
    patient = SimulatedPatient(load_scenario(name), seed=seed)
    state = engine.new_state()
    reached: dict[str, str] = {}
    reported: set[str] = set()
    phase: str | None = None
    k, next_nibp = 0, 5.0
    for s in range(minutes * 60):
        inputs: list[AlarmInput] = []
        if (p := patient.phase_at(s)) != phase:
            inputs.append(PhaseInput(phase=Phase(p)))
            phase = p
        conditions = set(patient.conditions(s))
        if "disconnected" not in conditions:
            for c in sorted(set(TECHNICAL_CONDITIONS) & (conditions ^ reported)):
                inputs.append(
                    DeviceConditionInput(device_id="sim", code=TECHNICAL_CONDITIONS[c][0], active=c in conditions)
                )
            reported = set(TECHNICAL_CONDITIONS) & conditions
            inputs.append(readings(patient.numerics(s)))
            if s >= next_nibp:
                inputs.append(readings(patient.nibp(s)))
                k += 1
                next_nibp = 5.0 + k * 180 + patient.nibp_duration(k)
        inputs.append(Tick())
        for inp in inputs:
            state, events = engine.evaluate(state, inp, T0 + timedelta(seconds=s))
            for e in events:
                if e.kind.value not in ("raised", "priority_changed", "escalated") or not e.rule_id or not e.priority:
                    continue
                if RANK[e.priority.value] >= RANK.get(reached.get(e.rule_id, "info"), 0):
                    reached[e.rule_id] = e.priority.value
    return reached


def readings(values: dict[str, float | None]) -> ReadingsInput:
    return ReadingsInput(
        readings=tuple(
            ReadingInput(param=k, value=v, quality=Quality.VALID if v is not None else Quality.INVALID)
            for k, v in values.items()
        )
    )


def test_every_scenario_has_expectations() -> None:
    assert set(scenario_names()) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scenario_raises_its_alarms_and_no_others(name: str) -> None:
    must, allowed = EXPECTED[name]
    reached = play(name)
    for rule, priority in must.items():
        assert rule in reached, f"{name}: {rule} never fired; fired: {reached}"
        assert RANK[reached[rule]] >= RANK[priority], f"{name}: {rule} reached only {reached[rule]}"
    unexpected = set(reached) - set(must) - allowed - ALWAYS_ALLOWED
    assert not unexpected, f"{name}: unexpected alarms {sorted(unexpected)} ({reached})"
