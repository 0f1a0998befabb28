"""Runs the pure alarm engine (app/alarms/) for every bay: the only place its state lives.

Inputs come from the ingest pipeline (readings, device status, device alarms), from a one-second tick (so
delays, staleness, escalation and the audio pause run out without new data), and from users over the API
(acknowledge, audio pause, phase). Every event is appended to the store and published on the hub as one
``alarms`` message carrying the events and the bay's complete active list (reliable lane: never dropped).

Until the session workflow (issue 7) sets phases, a simulated bay follows its scenario's regimen
(``phase_source``) and any other bay stays in the phase set over the API (default: none, so phase-gated
rules stay quiet and the technical/absolute rules that apply in every phase still run).

With several instances (hub = "redis", app/scale/) an ``AlarmGate`` decides which bays this instance owns:
only the owner evaluates a bay; on other instances the bay's state is a shadow of the owner's published
``alarms`` messages, and state-changing calls (acknowledge, audio pause, phase, baselines, charting) are
forwarded to the owner instead of evaluated here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Protocol

from app.alarms.engine import AlarmEngine, active_alarms, audio_paused_until
from app.alarms.model import (
    ActiveAlarm,
    AlarmEvent,
    AlarmInput,
    BayAlarmState,
    DeviceConditionInput,
    DeviceStatusInput,
    LimitsInput,
    Phase,
    PhaseInput,
    ReadingsInput,
    Tick,
)
from app.alarms.overrides import LevelOverride, apply_overrides
from app.hub import Hub
from app.store import Record, Store
from app.wire import AlarmEventOut, AlarmOut, Alarms
from monitors.base import Item
from monitors.models import DeviceAlarm, DeviceStatus, Reading

log = logging.getLogger(__name__)


def _ts(t: datetime | None) -> float | None:
    return None if t is None else t.timestamp()


def alarm_out(a: ActiveAlarm) -> AlarmOut:
    """Wire form of an active alarm."""
    return AlarmOut(
        alarm_id=a.alarm_id,
        rule_id=a.rule_id,
        row=a.row,
        priority=a.priority.value,
        category=a.category.value,
        text=a.text,
        values=dict(a.values),
        raised_at=a.raised_at.timestamp(),
        priority_since=a.priority_since.timestamp(),
        condition_active=a.condition_priority is not None,
        latched=a.latched,
        acknowledged_at=_ts(a.acknowledged_at),
        acknowledged_by=a.acknowledged_by,
    )


def event_out(e: AlarmEvent) -> AlarmEventOut:
    """Wire form of an alarm event."""
    return AlarmEventOut(
        kind=e.kind.value,
        t=e.t.timestamp(),
        rule_id=e.rule_id,
        alarm_id=e.alarm_id,
        priority=None if e.priority is None else e.priority.value,
        previous_priority=None if e.previous_priority is None else e.previous_priority.value,
        text=e.text,
        values=dict(e.values),
        user=e.user,
        notify=e.notify,
        due=_ts(e.due),
        time_to_ack_s=e.time_to_ack_s,
    )


class AlarmGate(Protocol):
    """Which bays this instance evaluates, and where the others' inputs go (app/scale/ownership.py)."""

    def owns(self, bay: str) -> bool:
        """Whether this instance evaluates the bay's alarms now."""
        ...

    def forward(self, bay: str, inputs: Sequence[AlarmInput], *, manual_phase: bool = False) -> None:
        """Send inputs for a bay evaluated elsewhere to its owner (``manual_phase``: a person or session set the
        phase, so the owner stops following a simulated scenario)."""
        ...

    def emitting(self, bay: str, state: BayAlarmState) -> None:
        """Called before a bay's new ``alarms`` message is published (the owner saves the state first)."""
        ...


class AlarmService:
    """Per-bay alarm state, fed by the pipeline, a tick and the API."""

    def __init__(
        self,
        engine: AlarmEngine,
        bays: Iterable[str],
        hub: Hub,
        store: Store,
        *,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.engine = engine
        self.hub = hub
        self.store = store
        self._wall = wall
        self.states: dict[str, BayAlarmState] = {b: engine.new_state() for b in bays}
        #: Where a bay's phase comes from when no session sets it: a callable returning the phase name.
        self.phase_source: dict[str, Callable[[], str | None]] = {}
        #: A bay's clock when it is not the wall clock: a simulated bay running faster than real time
        #: times its alarm delays on the simulated device's clock, so a scenario at 60x alarms as at 1x.
        self.clocks: dict[str, Callable[[], datetime | None]] = {}
        self.events_total = 0
        #: None: one instance evaluates every bay. Else only the bays the gate says this instance owns.
        self.gate: AlarmGate | None = None
        self._forwarded_phase: dict[str, str] = {}
        #: Engines for per-patient limits (a bay's ``state.limits``), by limits.
        self._engines: dict[tuple[LevelOverride, ...], AlarmEngine] = {}

    def owns(self, bay: str) -> bool:
        """Whether this instance evaluates the bay (always, without a gate)."""
        return self.gate is None or self.gate.owns(bay)

    def engine_for(self, bay: str) -> AlarmEngine:
        """The engine a bay runs: the profile, with the patient's own limits if the bay's state has any."""
        state = self.states.get(bay)
        return self._engine(state.limits if state is not None else ())

    def _engine(self, limits: tuple[LevelOverride, ...]) -> AlarmEngine:
        if not limits:
            return self.engine
        engine = self._engines.get(limits)
        if engine is None:
            if len(self._engines) >= 64:  # a handful of bays have limits at a time
                self._engines.clear()
            engine = self._engines[limits] = AlarmEngine(apply_overrides(self.engine.profile, limits))
        return engine

    def check_limits(self, overrides: Sequence[LevelOverride]) -> None:
        """``OverrideError`` naming the first override that does not apply to the active profile."""
        self._engine(tuple(overrides))

    def apply(self, bay: str, inputs: Sequence[AlarmInput], now: datetime | None = None) -> list[AlarmEvent]:
        """Evaluate inputs in order for one bay; persist and publish what happened. For a bay another
        instance owns, the inputs go to that owner and the result arrives as its ``alarms`` message (so this
        returns no events)."""
        state = self.states.get(bay)
        if state is None or not inputs:
            return []
        if self.gate is not None and not self.gate.owns(bay):
            self.gate.forward(bay, inputs)
            return []
        at = now or self._now(bay)
        events: list[AlarmEvent] = []
        phase_before = state.phase
        for inp in inputs:
            engine = self._engine(inp.overrides if isinstance(inp, LimitsInput) else state.limits)
            state, evs = engine.evaluate(state, inp, at)
            events.extend(evs)
        self.states[bay] = state
        if events or state.phase is not phase_before:
            self._emit(bay, state, events)
        return events

    def on_items(self, bay: str | None, items: Sequence[Item]) -> None:
        """Feed what a device sent (already bound to ``bay``); ignored for a bay another instance owns (its
        owner reads the same items from the shared stream)."""
        if bay is None or bay not in self.states or not self.owns(bay):
            return
        inputs: list[AlarmInput] = []
        readings = [it for it in items if isinstance(it, Reading)]
        now: datetime | None = None
        if readings:
            inputs.append(ReadingsInput.from_readings(readings))
            if bay in self.clocks:  # an accelerated simulated device: its own clock is the true one
                now = max(r.t_device for r in readings)
        for it in items:
            if isinstance(it, DeviceStatus):
                inputs.append(DeviceStatusInput.from_status(it))
            elif isinstance(it, DeviceAlarm):
                inputs.append(DeviceConditionInput.from_alarm(it))
        self.apply(bay, inputs, now)

    def set_phase(self, bay: str, phase: Phase, now: datetime | None = None) -> list[AlarmEvent]:
        """The session (or a person) moved the bay to another phase."""
        if self.gate is not None and bay in self.states and not self.gate.owns(bay):
            self.gate.forward(bay, [PhaseInput(phase=phase)], manual_phase=True)
            return []
        return self.apply(bay, [PhaseInput(phase=phase)], now)

    def republish(self, bay: str) -> None:
        """Publish the bay's current active list again (an instance that just took the bay over)."""
        state = self.states.get(bay)
        if state is not None:
            self._emit(bay, state, [])

    def _now(self, bay: str) -> datetime:
        clock = self.clocks.get(bay)
        t = clock() if clock is not None else None
        return t or self._wall()

    def tick(self, now: datetime | None = None) -> None:
        """Advance every bay's timers; follow scenario phases of simulated bays."""
        for bay in self.states:
            if self.gate is not None and not self.gate.owns(bay):
                self._follow_remote(bay)
                continue
            at = now or self._now(bay)
            inputs: list[AlarmInput] = []
            source = self.phase_source.get(bay)
            if source is not None:
                wanted = source()
                if wanted is not None and wanted != self.states[bay].phase.value:
                    inputs.append(PhaseInput(phase=Phase(wanted)))
            inputs.append(Tick())
            self.apply(bay, inputs, at)

    def _follow_remote(self, bay: str) -> None:
        """A simulated bay whose monitor runs here but whose alarms another instance owns: send the scenario's
        phase changes to the owner (once per change)."""
        source = self.phase_source.get(bay)
        wanted = None if source is None else source()
        if wanted is None or self._forwarded_phase.get(bay) == wanted:
            return
        self._forwarded_phase[bay] = wanted
        if wanted != self.states[bay].phase.value and self.gate is not None:
            self.gate.forward(bay, [PhaseInput(phase=Phase(wanted))])

    def active(self, bay: str) -> list[ActiveAlarm]:
        """The bay's active alarms, highest priority first."""
        state = self.states.get(bay)
        return [] if state is None else active_alarms(state)

    def _emit(self, bay: str, state: BayAlarmState, events: list[AlarmEvent]) -> None:
        self.events_total += len(events)
        if events:
            fut = self.store.append([Record(bay, e) for e in events])
            fut.add_done_callback(_log_failure)
        paused = audio_paused_until(state)
        if self.gate is not None:
            self.gate.emitting(bay, state)
        self.hub.publish(
            Alarms(
                seq=0,
                t=0,
                bay=bay,
                events=[event_out(e) for e in events],
                active=[alarm_out(a) for a in active_alarms(state)],
                audio_paused_until=_ts(paused),
                phase=state.phase.value,
            )
        )
        for e in events:
            if e.kind.value in ("raised", "escalated", "priority_changed"):
                log.info("alarm %s %s %s: %s", bay, e.kind.value, e.priority.value if e.priority else "", e.text)


def _log_failure(fut: object) -> None:
    import asyncio

    assert isinstance(fut, asyncio.Future)
    if not fut.cancelled() and fut.exception() is not None:
        log.error("alarm events could not be stored: %s", fut.exception())
