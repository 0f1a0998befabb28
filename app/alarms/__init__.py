"""Alarm engine: pure ``evaluate(profile, state, input, now) -> (state, events)`` and rules as data.

Use from the server pipeline (one ``BayAlarmState`` per bay, one profile per protocol)::

    profile = load_profile(settings.alarm_profile)      # at start-up: ProfileError names the rule and field
    state = new_state(profile)                          # per bay, when a session starts
    inp = to_input(item)                                # Reading / DeviceStatus / DeviceAlarm from the Supervisor
    state, events = evaluate(profile, state, inp, now)  # now = server receive time (aware datetime)
    # ...and evaluate(profile, state, Tick(), now) about once a second per bay, so that delays, stale data,
    # escalation and the audio pause run out without new data.

Send NIBP sys/dia/mean of one measurement as one ``ReadingsInput``; session phase changes as
``PhaseInput``, charted RASS / MOAA/S / POSS as ``ChartInput``, user actions as ``AckInput``,
``AudioPauseInput`` and ``AudioResumeInput``. Store and publish every ``AlarmEvent`` (JSON as it is);
``active_alarms(state)`` is the snapshot for a newly connected client.
"""

from app.alarms.engine import AlarmEngine, active_alarms, audio_paused_until, evaluate, new_state
from app.alarms.model import (
    AckInput,
    ActiveAlarm,
    AlarmEvent,
    AlarmInput,
    AudioPauseInput,
    AudioResumeInput,
    BaselineInput,
    BayAlarmState,
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
    to_input,
)
from app.alarms.profile import Profile, ProfileError, load_profile

__all__ = [
    "AckInput",
    "ActiveAlarm",
    "AlarmEngine",
    "AlarmEvent",
    "AlarmInput",
    "AudioPauseInput",
    "AudioResumeInput",
    "BaselineInput",
    "BayAlarmState",
    "ChartInput",
    "DeviceConditionInput",
    "DeviceStatusInput",
    "EventKind",
    "Phase",
    "PhaseInput",
    "Profile",
    "ProfileError",
    "ReadingInput",
    "ReadingsInput",
    "Scale",
    "Tick",
    "active_alarms",
    "audio_paused_until",
    "evaluate",
    "load_profile",
    "new_state",
    "to_input",
]
