"""The optimised engine (copy-on-write, compiled profile) behaves exactly like the straightforward one.

``tests/alarms/reference_engine.py`` is the engine before the optimisation. On random input streams and on
the benchmark's 90-minute session both must give the same events and equal states after every input, and
evaluating an older state again (a branch, as the what-if review and retries do) must not see changes made
for a later one.
"""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings

from app.alarms import engine
from app.alarms.model import AlarmEvent, AlarmInput, BayAlarmState, Phase, PhaseInput, Tick
from benchmarks.bench_alarm_engine import session
from tests.alarms import reference_engine as reference
from tests.alarms.dsl import PROFILE, T0
from tests.alarms.test_properties import STREAMS

_Result = tuple[BayAlarmState, list[AlarmEvent]]


def _same(a: _Result, b: _Result, where: str) -> None:
    assert a[1] == b[1], f"events differ {where}"
    assert a[0].model_dump() == b[0].model_dump(), f"states differ {where}"
    assert a[0] == b[0]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(STREAMS)
def test_same_events_and_states_as_the_reference(stream: list[tuple[float, AlarmInput]]) -> None:
    state = engine.new_state(PROFILE)
    assert state == reference.new_state(PROFILE)
    t = 0.0
    history: list[tuple[BayAlarmState, float]] = []
    for i, (dt, inp) in enumerate(stream):
        t += dt
        now = T0 + timedelta(seconds=t)
        before = state.model_dump()
        got = engine.evaluate(PROFILE, state, inp, now)
        want = reference.evaluate(PROFILE, state, inp, now)
        _same(got, want, f"at input {i} ({inp!r})")
        assert state.model_dump() == before, "evaluate changed its input state"
        history.append((state, t))
        state = got[0]
        if i % 7 == 6:  # branch off an older state: later steps must not have changed what it shares
            old, old_t = history[len(history) // 2]
            later = T0 + timedelta(seconds=old_t + 3)
            _same(
                engine.evaluate(PROFILE, old, Tick(), later),
                reference.evaluate(PROFILE, old, Tick(), later),
                f"branching from an older state at input {i}",
            )
    assert engine.active_alarms(state) == reference.active_alarms(state)


def test_same_events_and_states_on_the_benchmark_session() -> None:
    """The benchmark's stream up to minute 45 (desaturation, hypertension, tachycardia, probe off, acks)."""
    state = engine.new_state(PROFILE)
    ref = reference.new_state(PROFILE)
    n_events = 0
    for t, inp in session():
        if t >= 2700:
            break
        now = T0 + timedelta(seconds=t)
        state, events = engine.evaluate(PROFILE, state, inp, now)
        ref, ref_events = reference.evaluate(PROFILE, ref, inp, now)
        assert events == ref_events, f"events differ at {t} s"
        n_events += len(events)
    assert state == ref
    assert state.model_dump_json() == ref.model_dump_json()
    assert n_events >= 10


def test_a_profile_is_compiled_once_and_a_changed_copy_on_its_own() -> None:
    """The compiled profile is cached per profile object; an edited copy (what-if overrides) gets its own."""
    other = PROFILE.model_copy(update={"sample_hold_s": 60.0})
    s = engine.new_state(PROFILE)
    s, _ = engine.evaluate(PROFILE, s, PhaseInput(phase=Phase.INFUSION), T0)
    assert engine._compiled(PROFILE) is engine._compiled(PROFILE)
    assert engine._compiled(other) is not engine._compiled(PROFILE)
    assert engine._compiled(other).profile is other
