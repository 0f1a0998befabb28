"""Property tests: on random input streams the engine never raises, and alarm life cycles are well formed."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.alarms.engine import active_alarms, evaluate, new_state
from app.alarms.model import (
    SCALE_RANGE,
    AckInput,
    AlarmEvent,
    AlarmInput,
    AudioPauseInput,
    AudioResumeInput,
    BaselineInput,
    ChartInput,
    DeviceConditionInput,
    DeviceStatusInput,
    EventKind,
    Phase,
    PhaseInput,
    ReadingInput,
    ReadingsInput,
    Scale,
    Tick,
)
from app.alarms.profile import DeviceCond, leaves
from monitors import parameters
from monitors.models import DeviceState, Priority, Quality
from tests.alarms.dsl import PROFILE, T0

NUMERICS = list(parameters.NUMERIC_KEYS)
CODES = sorted(
    {
        code
        for r in PROFILE.rules
        for lvl in r.levels
        for c in leaves(lvl.when)
        if isinstance(c, DeviceCond)
        for code in c.device
    }
)
RULE_IDS = [r.id for r in PROFILE.rules]
# Values around the default limits, so that random streams do raise, escalate and clear alarms.
NEAR_LIMITS: dict[str, list[float]] = {
    "hr": [30, 45, 80, 115, 135],
    "pr": [80],
    "spo2": [70, 84, 88, 91, 92, 97],
    "nibp_sys": [75, 85, 120, 165, 185, 205],
    "nibp_dia": [60, 80, 105, 112, 125],
    "nibp_mean": [50, 60, 90],
    "rr": [0, 5, 8, 14, 35],
    "etco2": [0, 20, 38, 52, 62],
    "temp": [35.0, 36.8, 38.5],
}


@st.composite
def readings(draw: st.DrawFn) -> ReadingInput:
    """A reading of a catalogue numeric: plausible value, or no value."""
    param = draw(st.sampled_from(NUMERICS))
    lo, hi = parameters.get(param).plausible
    if draw(st.integers(0, 9)) == 0:
        return ReadingInput(param=param, value=None, quality=Quality.INVALID)
    value = draw(st.sampled_from(NEAR_LIMITS[param]) | st.floats(lo, hi, allow_nan=False))
    return ReadingInput(param=param, value=value, quality=draw(st.sampled_from(list(Quality))))


@st.composite
def charts(draw: st.DrawFn) -> ChartInput:
    """A charted score within its scale."""
    scale = draw(st.sampled_from(list(Scale)))
    lo, hi = SCALE_RANGE[scale]
    return ChartInput(scale=scale, value=draw(st.integers(lo, hi)))


INPUTS: st.SearchStrategy[AlarmInput] = st.one_of(
    readings(),
    readings(),
    readings(),
    st.lists(readings(), min_size=1, max_size=3).map(lambda rs: ReadingsInput(readings=tuple(rs))),
    st.just(Tick()),
    st.just(Tick()),
    st.builds(PhaseInput, phase=st.sampled_from(list(Phase))),
    charts(),
    st.builds(DeviceStatusInput, device_id=st.sampled_from(["m1", "m2"]), state=st.sampled_from(list(DeviceState))),
    st.builds(
        DeviceConditionInput,
        device_id=st.sampled_from(["m1", "m2"]),
        code=st.sampled_from([*CODES, "OTHER"]),
        active=st.booleans(),
    ),
    st.builds(BaselineInput, param=st.sampled_from(NUMERICS), value=st.floats(0, 300, allow_nan=False)),
    st.builds(AckInput, rule_id=st.sampled_from([*RULE_IDS, "all"]), user=st.just("nurse")),
    st.builds(AudioPauseInput, user=st.just("nurse"), duration_s=st.none() | st.floats(1, 1000, allow_nan=False)),
    st.builds(AudioResumeInput, user=st.just("nurse")),
)
STEPS = st.sampled_from([0.0, 0.5, 1.0, 1.0, 1.0, 2.0, 5.0, 12.0, 40.0]) | st.floats(0, 200, allow_nan=False)
STREAMS = st.lists(st.tuples(STEPS, INPUTS), min_size=5, max_size=200).map(
    lambda xs: [(0.0, PhaseInput(phase=Phase.INFUSION)), *xs]
)


def _check_life_cycles(events: list[AlarmEvent], active: dict[str, str], acked: set[str], seen: set[str]) -> None:
    """Raised opens an alarm, cleared closes it, everything else refers to an open one; updates the sets."""
    for e in events:
        if e.rule_id is None:
            assert e.kind in (EventKind.AUDIO_PAUSED, EventKind.AUDIO_RESUMED)
            continue
        assert e.priority is not None
        if e.kind is EventKind.CONFIRMATION_REQUESTED:
            assert e.due is not None and e.due > e.t
            continue
        assert e.alarm_id is not None
        if e.kind is EventKind.RAISED:
            assert e.rule_id not in active, f"second raise while {active.get(e.rule_id)} is active"
            assert e.alarm_id not in seen, "alarm ids must be unique"
            seen.add(e.alarm_id)
            active[e.rule_id] = e.alarm_id
            continue
        assert active.get(e.rule_id) == e.alarm_id, f"{e.kind} without a preceding raise"
        if e.kind is EventKind.ACKNOWLEDGED:
            acked.add(e.alarm_id)
            assert e.time_to_ack_s is not None and e.time_to_ack_s >= 0
        elif e.kind is EventKind.PRIORITY_CHANGED:
            assert e.previous_priority != e.priority
        elif e.kind is EventKind.CLEARED:
            if e.priority in PROFILE.rule(e.rule_id).latch:
                assert e.alarm_id in acked, "a latched alarm cleared without acknowledgement"
            del active[e.rule_id]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(STREAMS)
def test_engine_never_raises_and_life_cycles_are_well_formed(stream: list[tuple[float, AlarmInput]]) -> None:
    state = new_state(PROFILE)
    t = 0.0
    active: dict[str, str] = {}
    acked: set[str] = set()
    seen: set[str] = set()
    last = T0
    for dt, inp in stream:
        t += dt
        before = state.model_dump()
        new, events = evaluate(PROFILE, state, inp, T0 + timedelta(seconds=t))
        assert state.model_dump() == before, "evaluate changed its input state"
        for e in events:
            assert e.t >= last
            last = e.t
        _check_life_cycles(events, active, acked, seen)
        state = new
    assert {a.rule_id: a.alarm_id for a in active_alarms(state)} == active


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0.2, 3, allow_nan=False), st.floats(70, 100, allow_nan=False)), max_size=120))
def test_spo2_alarm_follows_its_definition(samples: list[tuple[float, float]]) -> None:
    """Random SpO2 series: a HIGH alarm exists only if SpO2 was < 85, or < 90 for at least 10 s of samples."""
    state, _ = evaluate(PROFILE, new_state(PROFILE), PhaseInput(phase=Phase.RECOVERY), T0)
    t = 0.0
    run_start: float | None = None
    longest = 0.0
    lowest = 100.0
    for dt, v in samples:
        t += dt
        state, events = evaluate(PROFILE, state, ReadingInput(param="spo2", value=v), T0 + timedelta(seconds=t))
        lowest = min(lowest, v)
        # The "< 90" run counting whole gaps: an upper bound on the engine's count, which pauses on gaps
        # longer than the 5 s hold.
        if v < 90:
            run_start = t if run_start is None else run_start
        else:
            run_start = None
        if run_start is not None:
            longest = max(longest, t - run_start)
        for e in events:
            if e.rule_id == "spo2_low" and e.priority is Priority.HIGH and e.kind is not EventKind.CLEARED:
                assert lowest < 85 or longest >= 10 - 1e-6
