"""Engine semantics beyond single rules: escalation, acknowledgement, audio pause, baselines, purity, JSON."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from app.alarms.engine import AlarmEngine, active_alarms, audio_paused_until, evaluate, new_state
from app.alarms.model import (
    AlarmEvent,
    AlarmInput,
    BayAlarmState,
    DeviceConditionInput,
    DeviceStatusInput,
    EventKind,
    Phase,
    PhaseInput,
    ReadingInput,
    ReadingsInput,
    Tick,
    to_input,
)
from app.alarms.profile import Profile, load_profile, parse_profile
from monitors.models import DeviceAlarm, DeviceState, DeviceStatus, Priority, Quality, Reading, WaveformChunk
from tests.alarms.dsl import PROFILE, T0, Step, events_of, every, run, ticks

INF = [(0.0, "phase infusion")]


def kinds(evs: list[tuple[float, AlarmEvent]], rule: str | None = None) -> list[str]:
    """``"t kind"`` of the events (of one rule, or the audio events when rule is None)."""
    return [f"{t:g} {e.kind.value}" for t, e in evs if e.rule_id == rule]


# --- escalation -----------------------------------------------------------------------------------------


def test_unacknowledged_medium_escalates_after_2_min_to_second_device() -> None:
    _, evs = run([*INF, *every("spo2=91", 1, 200)])
    esc = [(t, e) for t, e in evs if e.kind is EventKind.ESCALATED and e.rule_id == "spo2_low"]
    assert [(t, e.rule_id, e.priority, e.notify) for t, e in esc] == [
        (136, "spo2_low", Priority.MEDIUM, "second_device")
    ]


def test_unacknowledged_high_escalates_after_30_s_to_physician() -> None:
    _, evs = run([*INF, *every("spo2=88", 1, 60)])
    esc = [(t, e.notify, e.priority) for t, e in evs if e.kind is EventKind.ESCALATED and e.rule_id == "spo2_low"]
    assert esc == [(41, "physician", Priority.HIGH)]


def test_acknowledged_alarm_does_not_escalate() -> None:
    _, evs = run([*INF, *every("spo2=91", 1, 200), (20, "ack spo2_low")])
    assert not [e for _, e in evs if e.kind is EventKind.ESCALATED and e.rule_id == "spo2_low"]


def test_worse_condition_needs_a_new_acknowledgement_and_escalates_again() -> None:
    steps = [*INF, *every("spo2=91", 1, 20), (17, "ack"), *every("spo2=88", 21, 70)]
    assert events_of(steps, "spo2_low") == [
        "16 raised medium",
        "17 acknowledged medium",
        "31 priority_changed high",
        "61 escalated high",
    ]


def _with_raise_to() -> Profile:
    raw = PROFILE.model_dump(mode="json")
    raw["escalation"][0]["raise_to"] = "high"
    return parse_profile(raw)


def test_escalation_can_raise_medium_to_high_and_hold_it() -> None:
    steps = [*INF, *every("spo2=91", 1, 200)]
    assert events_of(steps, "spo2_low", _with_raise_to()) == [
        "16 raised medium",
        "136 escalated high",  # MEDIUM for 2 min: raised to HIGH, notify the second device
        "166 escalated high",  # then HIGH unacknowledged for 30 s: the physician
    ]


def test_escalated_priority_is_held_until_ack_then_drops() -> None:
    steps = [*INF, *every("spo2=91", 1, 140), (150, "ack")]
    _, evs = run(steps, _with_raise_to())
    assert [f"{t:g} {e.kind.value} {e.priority}" for t, e in evs if e.rule_id == "spo2_low"][-2:] == [
        "150 acknowledged high",
        "150 priority_changed medium",
    ]


# --- acknowledgement --------------------------------------------------------------------------------------


def test_ack_all_acknowledges_every_active_alarm_with_time_to_ack() -> None:
    steps = [*INF, *every("spo2=88; hr=38", 1, 20), (25, "ack")]
    _, evs = run(steps)
    acks = {e.rule_id: e for _, e in evs if e.kind is EventKind.ACKNOWLEDGED}
    assert set(acks) == {"spo2_low", "hr_low"}
    assert acks["spo2_low"].time_to_ack_s == 14  # raised at 11
    assert acks["hr_low"].user == "nurse"


def test_ack_of_one_rule_leaves_the_others() -> None:
    s, _ = run([*INF, *every("spo2=88; hr=38", 1, 20), (25, "ack hr_low")])
    by_rule = {a.rule_id: a for a in active_alarms(s)}
    assert by_rule["hr_low"].acknowledged_by == "nurse"
    assert by_rule["spo2_low"].acknowledged_at is None


def test_ack_by_alarm_id_and_info_flags_are_not_acknowledged() -> None:
    s, evs = run([*INF, *every("spo2=74", 1, 5), (6, "ack spo2_low-1"), (7, "ack")])
    acks = [(t, e.alarm_id) for t, e in evs if e.kind is EventKind.ACKNOWLEDGED]
    assert acks == [(6, "spo2_low-1")]  # the sentinel flag (spo2_sentinel-2) is not acknowledged
    assert {a.rule_id for a in active_alarms(s)} == {"spo2_low", "spo2_sentinel"}


def test_ack_of_nothing_is_silent() -> None:
    _, evs = run([*INF, (1, "ack"), (2, "ack spo2_low"), (3, "ack no_such_rule")])
    assert evs == []


# --- audio pause ----------------------------------------------------------------------------------------


def test_audio_pause_defaults_to_120_s_and_resumes() -> None:
    s, evs = run([*INF, (10, "pause"), *ticks(11, 140)])
    assert kinds(evs) == ["10 audio_paused", "130 audio_resumed"]
    assert evs[0][1].due == T0 + timedelta(seconds=130)
    assert audio_paused_until(s) is None


def test_audio_pause_is_capped_at_the_profile_maximum() -> None:
    s, evs = run([*INF, (10, "pause 600")])
    assert evs[0][1].due == T0 + timedelta(seconds=130)
    assert audio_paused_until(s) == T0 + timedelta(seconds=130)


def test_audio_resume_early_and_pause_does_not_stop_escalation() -> None:
    _, evs = run([*INF, (0, "pause 60"), *every("spo2=88", 1, 50), (45, "resume")])
    assert kinds(evs) == ["0 audio_paused", "45 audio_resumed"]
    assert "41 escalated" in kinds(evs, "spo2_low")


# --- baselines ------------------------------------------------------------------------------------------


def test_baseline_is_the_median_of_the_baseline_phase() -> None:
    steps: list[Step] = [
        (0, "phase baseline"),
        *every("hr=70", 1, 60),
        *every("hr=90", 61, 150),
        (151, "phase infusion"),
    ]
    s, _ = run(steps)
    assert s.baselines["hr"] == 90  # 60 readings at 70, 90 at 90
    assert "nibp_sys" not in s.baselines


def test_questionable_readings_are_left_out_of_the_baseline() -> None:
    state = new_state(PROFILE)
    state, _ = evaluate(PROFILE, state, _phase("baseline"), T0)
    for i, q in enumerate([Quality.VALID, Quality.QUESTIONABLE, Quality.VALID]):
        r = ReadingInput(param="nibp_sys", value=100 + 50 * (q is Quality.QUESTIONABLE), quality=q)
        state, _ = evaluate(PROFILE, state, r, T0 + timedelta(seconds=10 * i + 1))
    state, _ = evaluate(PROFILE, state, _phase("infusion"), T0 + timedelta(seconds=60))
    assert state.baselines["nibp_sys"] == 100


def test_manual_baseline_overrides() -> None:
    steps = [*INF, (0, "baseline nibp_sys 100"), (10, "nibp_sys=141; nibp_dia=70")]
    assert events_of(steps, "bp_high") == ["10 confirmation_requested medium", "10 raised medium"]


def _phase(name: str) -> PhaseInput:
    return PhaseInput(phase=Phase(name))


# --- BP confirmation details ------------------------------------------------------------------------------


def test_confirmation_request_names_the_due_time_and_values() -> None:
    _, evs = run([*INF, (30, "nibp_sys=185; nibp_dia=95; nibp_mean=125")])
    req = next(e for _, e in evs if e.kind is EventKind.CONFIRMATION_REQUESTED)
    assert req.due == T0 + timedelta(seconds=150)
    assert req.values["nibp_sys"] == 185
    assert "185 ≥ 180" in req.text


def test_nibp_sent_as_separate_readings_is_still_one_measurement() -> None:
    steps = [*INF, (1, "nibp_sys=185 | nibp_dia=115 | nibp_mean=135"), *ticks(2, 25)]
    assert events_of(steps, "bp_high") == ["1 confirmation_requested high", "1 raised medium"]


# --- events, snapshots, JSON ------------------------------------------------------------------------------


def test_raised_event_carries_text_values_ids_and_source_row() -> None:
    _, evs = run([*INF, *every("spo2=86", 1, 11)])
    e = next(e for _, e in evs if e.kind is EventKind.RAISED)
    assert e.text == "SpO₂ LOW 86 < 90"
    assert e.values == {"spo2": 86}
    assert (e.rule_id, e.row, e.alarm_id, e.priority) == ("spo2_low", "1", "spo2_low-1", Priority.HIGH)
    assert e.t == T0 + timedelta(seconds=11)


def test_baseline_relative_text_names_the_baseline() -> None:
    _, evs = run([*INF, (0, "baseline nibp_sys 100"), (0, "baseline nibp_dia 60"), (5, "nibp_sys=145; nibp_dia=70")])
    e = next(e for _, e in evs if e.kind is EventKind.RAISED and e.rule_id == "bp_high")
    assert e.text == "BP HIGH NIBP sys 145 ≥ 140 (baseline 100 +40)"
    assert e.values["baseline_nibp_sys"] == 100


def test_active_alarms_highest_priority_first_and_latched_flag() -> None:
    s, _ = run([*INF, *every("spo2=91", 1, 20), *every("hr=38", 1, 12), *every("hr=70", 13, 20)])
    snap = active_alarms(s)
    assert [(a.rule_id, a.priority, a.latched) for a in snap] == [
        ("hr_low", Priority.HIGH, True),
        ("spo2_low", Priority.MEDIUM, False),
    ]
    assert snap[0].condition_priority is None


def test_events_and_state_round_trip_through_json() -> None:
    s, evs = run([*INF, *every("spo2=88; hr=38", 1, 50), (30, "pause"), (40, "ack spo2_low")])
    for _, e in evs:
        assert AlarmEvent.model_validate_json(e.model_dump_json()) == e
    s2 = BayAlarmState.model_validate_json(s.model_dump_json())
    assert s2 == s
    json.loads(active_alarms(s)[0].model_dump_json())
    # The restored state carries on exactly like the original.
    now = T0 + timedelta(seconds=51)
    assert evaluate(PROFILE, s2, Tick(), now) == evaluate(PROFILE, s, Tick(), now)


def test_evaluate_never_changes_its_input_state() -> None:
    s, _ = run([*INF, *every("spo2=91; hr=120", 1, 100), (50, "ack")])
    before = s.model_dump()
    inputs: list[AlarmInput] = [ReadingInput(param="spo2", value=80), Tick(), ReadingInput(param="hr", value=30)]
    for inp in inputs:
        evaluate(PROFILE, s, inp, T0 + timedelta(seconds=200))
    assert s.model_dump() == before


def test_clock_never_goes_back() -> None:
    s, _ = run([*INF, *every("spo2=88", 1, 20)])
    s2, evs = evaluate(PROFILE, s, Tick(), T0)  # an earlier now
    assert s2.now == s.now and evs == []


def test_unknown_and_waveform_params_are_ignored() -> None:
    s, _ = run([*INF, (1, "ecg_ii=1"), (2, "whatever=3")])
    assert "ecg_ii" not in s.samples and "whatever" not in s.samples


def test_state_of_another_profile_is_refused() -> None:
    raw = PROFILE.model_dump(mode="json")
    raw["id"] = "other"
    other = parse_profile(raw)
    with pytest.raises(ValueError, match="belongs to profile"):
        evaluate(other, new_state(PROFILE), Tick(), T0)


# --- building inputs from the monitors' models ------------------------------------------------------------


def test_inputs_from_monitor_models() -> None:
    r = Reading(device_id="m1", param="spo2", value=None, unit="%", t_device=T0, t_received=T0, quality=Quality.INVALID)
    assert ReadingInput.from_reading(r).usable is None
    batch = ReadingsInput.from_readings([r, r])
    assert len(batch.readings) == 2
    st = DeviceStatusInput.from_status(DeviceStatus(device_id="m1", state=DeviceState.OFFLINE, since=T0))
    assert st.state is DeviceState.OFFLINE
    a = DeviceAlarm(device_id="m1", code="SPO2_PROBE_OFF", priority=Priority.MEDIUM, text="SpO2 PROBE OFF", t=T0)
    c = DeviceConditionInput.from_alarm(a)
    assert (c.code, c.active) == ("SPO2_PROBE_OFF", True)


def test_to_input_maps_adapter_items() -> None:
    r = Reading(device_id="m1", param="hr", value=72, unit="/min", t_device=T0, t_received=T0)
    assert to_input(r) == ReadingInput(param="hr", value=72, device_id="m1")
    st = DeviceStatus(device_id="m1", state=DeviceState.STALE, since=T0)
    assert to_input(st) == DeviceStatusInput(device_id="m1", state=DeviceState.STALE)
    a = DeviceAlarm(device_id="m1", code="ECG_LEADS_OFF", priority=Priority.MEDIUM, text="", t=T0, active=False)
    assert to_input(a) == DeviceConditionInput(device_id="m1", code="ECG_LEADS_OFF", active=False)
    w = WaveformChunk(device_id="m1", channel="ecg_ii", t0=T0, fs=250, samples=(1, 2), unit="mV")
    assert to_input(w) is None


def test_device_conditions_are_per_device() -> None:
    steps = [*INF, (1, "on ECG_LEADS_OFF"), *ticks(2, 20)]
    s, _ = run(steps)
    s, evs = evaluate(
        PROFILE,
        s,
        DeviceConditionInput(device_id="other", code="ECG_LEADS_OFF", active=False),
        T0 + timedelta(seconds=21),
    )
    assert evs == []  # the other device ending it does not clear ours
    s, evs = evaluate(
        PROFILE,
        s,
        DeviceConditionInput(device_id="mon", code="ECG_LEADS_OFF", active=False),
        T0 + timedelta(seconds=22),
    )
    assert [e.kind for e in evs] == [EventKind.CLEARED]


def test_engine_class_binds_a_profile() -> None:
    eng = AlarmEngine(load_profile("ketamine_chronic_pain"))
    s = eng.new_state()
    s, evs = eng.evaluate(s, ReadingInput(param="spo2", value=97), T0)
    assert evs == [] and s.samples["spo2"].value == 97


def test_a_patients_own_limits_travel_in_the_state() -> None:
    """``LimitsInput`` keeps the limits in the bay's state (which an owner saves and a successor adopts as JSON);
    the caller evaluates with the profile they apply to (app/alarming.py)."""
    from app.alarms.model import BayAlarmState, LevelOverride, LimitsInput
    from app.alarms.overrides import OverrideError, apply_overrides

    profile = load_profile()
    own = (LevelOverride(rule_id="hr_high", level_index=0, value=40, delay_s=1),)
    state, events = evaluate(profile, new_state(profile), LimitsInput(overrides=own, user="phil"), T0)
    assert state.limits == own and events == []
    assert BayAlarmState.model_validate_json(state.model_dump_json()).limits == own
    changed = apply_overrides(profile, own)
    assert changed.id == profile.id, "a state evaluates with the changed profile as with the original"
    s, _ = run(every("phase baseline | hr=80", 1, 6), profile=changed, state=state)  # no rules run while planned
    assert "hr_high" in {a.rule_id for a in active_alarms(s)}
    cleared, _ = evaluate(profile, s, LimitsInput(overrides=()), T0 + timedelta(seconds=7))
    assert cleared.limits == ()
    with pytest.raises(OverrideError):
        apply_overrides(profile, (LevelOverride(rule_id="no_such_rule", value=1),))
