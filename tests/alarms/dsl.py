"""A compact notation for alarm-engine scenarios: timed input strings in, event strings out.

Inputs (``a; b``: readings in one batch; ``a | b``: separate inputs at the same time):
``spo2=88`` reading · ``spo2=88?`` questionable · ``spo2=-`` invalid · ``tick`` · ``phase infusion`` ·
``chart rass -3`` · ``on CODE`` / ``off CODE`` device condition · ``status mon offline`` · ``baseline hr 80`` ·
``ack`` / ``ack RULE`` · ``pause`` / ``pause 60`` · ``resume``.

Events print as ``"<t> <kind> <priority>"`` (seconds from T0), or with the rule id when several rules are
watched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from app.alarms.engine import evaluate, new_state
from app.alarms.model import (
    AckInput,
    AlarmEvent,
    AlarmInput,
    AudioPauseInput,
    AudioResumeInput,
    BaselineInput,
    BayAlarmState,
    ChartInput,
    DeviceConditionInput,
    DeviceStatusInput,
    Phase,
    PhaseInput,
    ReadingInput,
    ReadingsInput,
    Scale,
    Tick,
)
from app.alarms.profile import Profile, load_profile
from monitors.models import DeviceState, Quality

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
PROFILE = load_profile()

Step = tuple[float, str]


def parse(text: str) -> AlarmInput:
    """One input from its short form."""
    w = text.split()
    head = w[0]
    if head == "tick":
        return Tick()
    if head == "phase":
        return PhaseInput(phase=Phase(w[1]))
    if head == "chart":
        return ChartInput(scale=Scale(w[1]), value=int(w[2]), user="nurse")
    if head in ("on", "off"):
        return DeviceConditionInput(device_id="mon", code=w[1], active=head == "on")
    if head == "status":
        return DeviceStatusInput(device_id=w[1], state=DeviceState(w[2]))
    if head == "baseline":
        return BaselineInput(param=w[1], value=float(w[2]))
    if head == "ack":
        return AckInput(rule_id=w[1] if len(w) > 1 else "all", user="nurse")
    if head == "pause":
        return AudioPauseInput(user="nurse", duration_s=float(w[1]) if len(w) > 1 else None)
    if head == "resume":
        return AudioResumeInput(user="nurse")
    param, _, value = text.partition("=")
    if value.strip() == "-":
        return ReadingInput(param=param.strip(), value=None, quality=Quality.INVALID, device_id="mon")
    if value.endswith("?"):
        return ReadingInput(param=param.strip(), value=float(value[:-1]), quality=Quality.QUESTIONABLE, device_id="mon")
    return ReadingInput(param=param.strip(), value=float(value), device_id="mon")


def parse_step(text: str) -> list[AlarmInput]:
    """``a; b`` is one batch of readings (one ``ReadingsInput``); ``a | b`` are inputs one after the other."""
    out: list[AlarmInput] = []
    for group in text.split("|"):
        inputs = [parse(part.strip()) for part in group.split(";")]
        if len(inputs) > 1:
            assert all(isinstance(i, ReadingInput) for i in inputs), f"only readings batch: {group!r}"
            out.append(ReadingsInput(readings=tuple(i for i in inputs if isinstance(i, ReadingInput))))
        else:
            out.extend(inputs)
    return out


def every(inputs: str, start: float, end: float, step: float = 1.0) -> list[Step]:
    """The same inputs at start, start+step, ... up to and including end."""
    out = []
    t = start
    while t <= end + 1e-9:
        out.append((t, inputs))
        t += step
    return out


def ticks(start: float, end: float, step: float = 1.0) -> list[Step]:
    """Ticks from start to end."""
    return every("tick", start, end, step)


def run(
    steps: Iterable[Step], profile: Profile = PROFILE, state: BayAlarmState | None = None
) -> tuple[BayAlarmState, list[tuple[float, AlarmEvent]]]:
    """Evaluate the steps in time order (stable for equal times); return the final state and all events."""
    s = state if state is not None else new_state(profile)
    out: list[tuple[float, AlarmEvent]] = []
    for t, text in sorted(steps, key=lambda x: x[0]):
        for inp in parse_step(text):
            s, events = evaluate(profile, s, inp, T0 + timedelta(seconds=t))
            out.extend((t, e) for e in events)
    return s, out


def fmt(t: float, e: AlarmEvent, with_rule: bool) -> str:
    """``"<t> <kind> [rule] <priority>"``."""
    parts = [f"{t:g}", e.kind.value]
    if with_rule:
        parts.append(e.rule_id or "-")
    if e.priority is not None:
        parts.append(e.priority.value)
    return " ".join(parts)


def events_of(steps: Iterable[Step], rules: str | Sequence[str], profile: Profile = PROFILE) -> list[str]:
    """The events of the given rule(s) (one rule: without the rule id)."""
    watched = [rules] if isinstance(rules, str) else list(rules)
    _, evs = run(steps, profile)
    return [fmt(t, e, len(watched) > 1) for t, e in evs if e.rule_id in watched]
