"""Replay of a recorded session: the live envelope, through a hub of its own, with play/pause/speed/seek.

A ``ReplayPlayer`` plays one ``SessionRecording`` through its own ``InProcessHub`` whose clock is the replay
position (Unix seconds of recorded time), so every message a client sees (``vitals``, ``wave``, ``status``,
``device_alarm``, ``alarms`` with the bay's full active list) is exactly what a live client would have seen,
stamped with the recorded time. A replay never enters the live hub: it cannot appear on a station screen as
a live patient. Its bay keeps the recorded bay id; its label is prefixed "REPLAY · ".

Numerics, status and alarms are published when the clock passes their time. Waveform segments are read
from the store in windows ahead of the position (never a whole session at once) and published about one
second of wall time ahead of the clock, so the browser's sweep renderer, which places samples by their own
time, has them before its cursor gets there.

Seek computes the bay's state at ``t`` from precomputed per-parameter and per-device indexes (bisection, no
scan of the session), rebuilds the hub's ``LiveState`` from it and gives every client a fresh ``snapshot``
(reason "seek"); playback continues from ``t``. The rule engine's active-alarm list at any time is folded
once, at load, from the recorded alarm events (raised, priority_changed, escalated, condition_ended,
acknowledged, cleared), following the engine's own transitions (app/alarms/engine.py).

``ReplayRegistry`` owns the players of one server: a bounded number, each stopped and removed after
``idle_timeout_s`` with no client and no control.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from app.alarming import event_out
from app.alarms.model import AlarmEvent, EventKind, to_datetime
from app.alarms.profile import rank
from app.decimate import Decimator
from app.hub import ClientChannel, InProcessHub, Publishable
from app.ingest import device_out, vital_out
from app.live import LiveState
from app.recording.load import load_recording, load_waves
from app.recording.model import SessionRecording, WaveSegment
from app.sessions.model import Refused
from app.store import Store
from app.wire import AlarmOut, Alarms, DeviceAlarmMsg, DeviceAlarmOut, DeviceOut, ReplayState, Status, VitalOut, Vitals
from app.wire import Wave as WaveMsg
from monitors.models import AlarmKind, Priority, Reading

log = logging.getLogger(__name__)

LABEL_PREFIX = "REPLAY · "
#: Speeds the API accepts (issue 8: "speed 1×–60×").
MIN_SPEED, MAX_SPEED = 1.0, 60.0
PlayState = Literal["playing", "paused", "ended"]
_BEFORE = 1e-6  # "just before" a time: the state before anything recorded at it

# Order of messages recorded at the same instant, as the live pipeline publishes them (app/ingest.py):
# status and device alarms inline, then the numerics, then the rule engine's verdict on them.
_STATUS, _DEVICE_ALARM, _VITALS, _PHASE, _ALARMS = range(5)


def _ts(t: datetime) -> float:
    return t.timestamp()


# ---- the rule engine's active list, folded from its events ---------------------------------------------


@dataclass(slots=True)
class _Active:
    alarm_id: str
    rule_id: str
    row: str
    category: AlarmKind
    priority: Priority
    condition: Priority | None  # the condition's own priority; None once it ended (latched)
    text: str
    values: dict[str, float | None]
    raised_at: float
    priority_since: float
    acked_at: float | None = None
    acked_by: str | None = None

    def out(self) -> AlarmOut:
        return AlarmOut(
            alarm_id=self.alarm_id,
            rule_id=self.rule_id,
            row=self.row,
            priority=self.priority.value,
            category=self.category.value,
            text=self.text,
            values=dict(self.values),
            raised_at=self.raised_at,
            priority_since=self.priority_since,
            condition_active=self.condition is not None,
            latched=rank(self.condition) < rank(self.priority),
            acknowledged_at=self.acked_at,
            acknowledged_by=self.acked_by,
        )


class AlarmFold:
    """The engine's active alarms and audio pause, rebuilt event by event (mirrors app/alarms/engine.py)."""

    def __init__(self) -> None:
        self.active: dict[str, _Active] = {}
        self.audio_paused_until: float | None = None

    def apply(self, e: AlarmEvent) -> None:
        """Fold one recorded event."""
        t = _ts(e.t)
        if e.kind is EventKind.AUDIO_PAUSED:
            self.audio_paused_until = None if e.due is None else _ts(e.due)
            return
        if e.kind is EventKind.AUDIO_RESUMED:
            self.audio_paused_until = None
            return
        if e.alarm_id is None or e.priority is None or e.kind is EventKind.CONFIRMATION_REQUESTED:
            return  # a request for a repeat measurement is not an alarm
        a = self.active.get(e.alarm_id)
        if e.kind is EventKind.CLEARED:
            self.active.pop(e.alarm_id, None)
            return
        if a is None:  # raised (or, for a session that began mid-alarm, first seen now)
            a = self.active[e.alarm_id] = _Active(
                alarm_id=e.alarm_id,
                rule_id=e.rule_id or "",
                row=e.row or "",
                category=e.category or AlarmKind.PHYSIOLOGICAL,
                priority=e.priority,
                condition=e.priority,
                text=e.text,
                values=dict(e.values),
                raised_at=t,
                priority_since=t,
            )
            if e.kind is EventKind.RAISED:
                return
        a.text, a.values = e.text, dict(e.values)
        if e.kind is EventKind.PRIORITY_CHANGED:
            if rank(e.priority) > rank(e.previous_priority):  # worse: unacknowledged again
                a.acked_at = a.acked_by = None
            a.priority, a.condition, a.priority_since = e.priority, e.priority, t
        elif e.kind is EventKind.ESCALATED:
            if e.priority is not a.priority:  # raised by escalation, held until acknowledged
                a.priority, a.priority_since = e.priority, t
        elif e.kind is EventKind.CONDITION_ENDED:
            a.condition = None
        elif e.kind is EventKind.ACKNOWLEDGED:
            a.acked_at, a.acked_by = t, e.user

    def out(self) -> list[AlarmOut]:
        """The active list as the engine orders it: highest priority first, then oldest, then rule."""
        ordered = sorted(self.active.values(), key=lambda a: (-rank(a.priority), a.raised_at, a.rule_id))
        return [a.out() for a in ordered]


# ---- the recording as a timeline ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BayStateAt:
    """The replayed bay's state at one instant (what a snapshot shows)."""

    t: float
    devices: list[DeviceOut]
    vitals: list[VitalOut]
    device_alarms: list[DeviceAlarmOut]
    alarms: Alarms  # the last rule-engine message at or before t (active list, audio pause, phase)
    last_data: dict[str, float]  # device -> time of its latest numerics


@dataclass(slots=True)
class _Series:
    times: list[float] = field(default_factory=list)
    items: list[Reading] = field(default_factory=list)


class Timeline:
    """A recording turned into time-ordered hub messages plus indexes for computing the state at any t.

    Everything except waveforms (which stay in the store until needed) is built once, at load.
    """

    def __init__(self, rec: SessionRecording) -> None:
        self.rec = rec
        self.bay = rec.bay
        self.start = _ts(rec.start)
        self.end = max(self.start, _ts(rec.end))
        staged: list[tuple[float, int, int, Publishable | list[Reading]]] = []
        order = itertools.count()

        # numerics: one vitals message per device and instant, like one monitor message (built when due: a
        # 90-minute session holds ~30,000 readings, and opening a replay must not stall the event loop)
        self._series: dict[str, _Series] = {}
        self._device_vitals: dict[str, list[float]] = {}
        group: list[Reading] = []
        group_key: tuple[str, float] = ("", 0.0)
        for r in sorted(rec.readings, key=lambda r: r.t_device):
            t = r.t_device.timestamp()
            if group and group_key != (r.device_id, t):
                staged.append((group_key[1], _VITALS, next(order), group))
                group = []
            group_key = (r.device_id, t)
            group.append(r)
            s = self._series.get(r.param)
            if s is None:
                s = self._series[r.param] = _Series()
            s.times.append(t)
            s.items.append(r)
            self._device_vitals.setdefault(r.device_id, []).append(t)
        if group:
            staged.append((group_key[1], _VITALS, next(order), group))

        self._status: dict[str, _StatusSeries] = {}
        for st in rec.statuses:
            d = device_out(st)
            staged.append((d.since, _STATUS, next(order), Status(seq=0, t=0, bay=self.bay, device=d)))
            self._status.setdefault(d.device_id, _StatusSeries()).add(d)

        self._device_alarm_times: list[float] = []
        self._device_alarms: list[DeviceAlarmOut] = []
        for a in sorted(rec.device_alarms, key=lambda a: a.t):
            out = DeviceAlarmOut(
                device_id=a.device_id,
                code=a.code,
                priority=a.priority.value,
                alarm_kind=a.alarm_kind.value,
                text=a.text,
                t=_ts(a.t),
                active=a.active,
            )
            self._device_alarm_times.append(out.t)
            self._device_alarms.append(out)
            staged.append((out.t, _DEVICE_ALARM, next(order), DeviceAlarmMsg(seq=0, t=0, bay=self.bay, alarm=out)))

        # rule-engine messages: alarm events grouped by instant, and one message per phase change
        self._phase_times = [self.start] + [_ts(p.t) for p in rec.session.phases]
        self._phases = ["planned"] + [p.to_phase.value for p in rec.session.phases]
        fold = AlarmFold()
        self.alarm_times: list[float] = []
        self.alarm_msgs: list[Alarms] = []
        steps: list[tuple[float, int, list[AlarmEvent]]] = [(t, _PHASE, []) for t in self._phase_times]
        by_t: dict[float, list[AlarmEvent]] = {}
        for e in rec.alarm_events:
            by_t.setdefault(_ts(e.t), []).append(e)
        steps += [(t, _ALARMS, evs) for t, evs in by_t.items()]
        steps.sort(key=lambda s: (s[0], s[1]))
        for t, kind, evs in steps:
            for e in evs:
                fold.apply(e)
            msg = Alarms(
                seq=0,
                t=0,
                bay=self.bay,
                events=[event_out(e) for e in evs],
                active=fold.out(),
                audio_paused_until=fold.audio_paused_until,
                phase=self.phase_at(t),
            )
            self.alarm_times.append(t)
            self.alarm_msgs.append(msg)
            staged.append((t, kind, next(order), msg))

        staged.sort(key=lambda x: (x[0], x[1], x[2]))
        self.times: list[float] = [x[0] for x in staged]
        self._messages: list[Publishable | list[Reading]] = [x[3] for x in staged]

    def message(self, i: int) -> Publishable:
        """The i-th message in time order."""
        m = self._messages[i]
        if isinstance(m, list):
            return Vitals(seq=0, t=0, bay=self.bay, device_id=m[0].device_id, readings=[vital_out(r) for r in m])
        return m

    def index_from(self, t: float) -> int:
        """Index of the first message at or after ``t``."""
        return bisect_left(self.times, t)

    def index_after(self, t: float) -> int:
        """Index of the first message later than ``t``."""
        return bisect_right(self.times, t)

    def phase_at(self, t: float) -> str:
        """The session's phase at ``t``."""
        i = bisect_right(self._phase_times, t) - 1
        return self._phases[max(i, 0)]

    def state_at(self, t: float) -> BayStateAt:
        """The bay at ``t``: everything recorded at or before ``t`` folded (bisection per parameter/device)."""
        vitals: list[VitalOut] = []
        for s in self._series.values():
            i = bisect_right(s.times, t) - 1
            if i >= 0:
                vitals.append(vital_out(s.items[i]))
        devices = [d for d in (s.at(t) for s in self._status.values()) if d is not None]
        alarms_on: dict[tuple[str, str], DeviceAlarmOut] = {}
        for a in self._device_alarms[: bisect_right(self._device_alarm_times, t)]:
            if a.active:
                alarms_on[(a.device_id, a.code)] = a
            else:
                alarms_on.pop((a.device_id, a.code), None)
        rule = self.alarm_msgs[max(bisect_right(self.alarm_times, t) - 1, 0)]  # the first is at the start
        last_data: dict[str, float] = {}
        for dev, times in self._device_vitals.items():
            k = bisect_right(times, t) - 1
            if k >= 0:
                last_data[dev] = times[k]
        return BayStateAt(t, devices, vitals, list(alarms_on.values()), rule, last_data)

    def live_at(self, t: float, label: str) -> LiveState:
        """A fresh ``LiveState`` holding the bay as it was at ``t``."""
        st = self.state_at(t)
        live = LiveState([(self.bay, label)])
        for d in st.devices:
            live.apply(Status(seq=0, t=t, bay=self.bay, device=d))
        by_device: dict[str, list[VitalOut]] = {}
        for v in st.vitals:
            by_device.setdefault(v.device_id, []).append(v)
        for dev, vs in by_device.items():
            live.apply(Vitals(seq=0, t=st.last_data.get(dev, t), bay=self.bay, device_id=dev, readings=vs))
        for a in st.device_alarms:
            live.apply(DeviceAlarmMsg(seq=0, t=t, bay=self.bay, alarm=a))
        live.apply(st.alarms)
        return live


@dataclass(slots=True)
class _StatusSeries:
    times: list[float] = field(default_factory=list)
    items: list[DeviceOut] = field(default_factory=list)

    def add(self, d: DeviceOut) -> None:
        i = bisect_right(self.times, d.since)
        self.times.insert(i, d.since)
        self.items.insert(i, d)

    def at(self, t: float) -> DeviceOut | None:
        i = bisect_right(self.times, t) - 1
        return self.items[i] if i >= 0 else None


# ---- the player ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HubOptions:
    """Client queue budgets for a replay hub (the live hub's settings)."""

    ring_size: int = 5_000
    max_pending: int = 2_000
    max_waves: int = 300
    stale_after_s: float = 3.0
    offline_after_s: float = 10.0
    decimate_hz: float = 25.0


class ReplayPlayer:
    """Plays one recording through its own hub. Create with ``ReplayPlayer.open`` (loads the recording)."""

    def __init__(
        self,
        store: Store,
        rec: SessionRecording,
        *,
        replay_id: str | None = None,
        label: str | None = None,
        options: HubOptions = HubOptions(),
        max_speed: float = MAX_SPEED,
        lead_s: float = 1.0,
        max_lead_s: float = 60.0,
        wave_window_s: float = 20.0,
        backfill_s: float = 12.0,
        tick_s: float = 0.05,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.rec = rec
        self.replay_id = replay_id or uuid.uuid4().hex[:12]
        self.timeline = Timeline(rec)
        self.bay = rec.bay
        self.label = LABEL_PREFIX + (label or rec.bay)
        self.start = self.timeline.start
        self.end = self.timeline.end
        self.max_speed = max_speed
        self._lead_s = lead_s
        self._max_lead_s = max_lead_s
        self._window_s = wave_window_s
        #: After a seek, waveforms are re-sent from this long before the position (the longest sweep on the
        #: bedside page is 12 s), so the traces are full at once, also when paused.
        self._backfill_s = backfill_s
        self._tick_s = tick_s
        self._mono = monotonic
        self._options = options
        self.hub = InProcessHub(
            self.timeline.live_at(self.start - _BEFORE, self.label),
            ring_size=options.ring_size,
            max_pending=options.max_pending,
            max_waves=options.max_waves,
            stale_after_s=options.stale_after_s,
            offline_after_s=options.offline_after_s,
            clock=lambda: self.position,
            replay=True,
        )
        self.state: PlayState = "paused"
        self.speed = 1.0
        self._pos = self.start  # position at ``_anchor`` (or now, when not playing)
        self._anchor = 0.0
        self._cursor = self.timeline.index_from(self.start)  # at the start, items at exactly the start are due
        self._gen = 0  # bumped by every seek: wave reads begun before it are discarded
        self._waves: deque[WaveSegment] = deque()
        self._waves_until = self.start  # segments starting before this have been read
        self._overlap = True  # the next read also takes the segment already running at its start
        self._decimator = Decimator(options.decimate_hz)
        self._wake = asyncio.Event()
        self._greeted: set[ClientChannel] = set()
        self._last_state_sent = -1e9
        self.last_activity = monotonic()
        self.stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.published_waves = 0
        self.failures = 0

    # ---- clock ---------------------------------------------------------------------------------------

    @property
    def position(self) -> float:
        """The replay clock: recorded time (Unix seconds) now."""
        if self.state != "playing":
            return self._pos
        return min(self.end, self._pos + (self._mono() - self._anchor) * self.speed)

    @property
    def session_id(self) -> str:
        """The replayed session."""
        return self.rec.session.id

    # ---- controls (synchronous: each answers at once; the loop catches up) -----------------------

    def play(self) -> None:
        """Play from the current position (from the start again once ended)."""
        self._touch()
        if self.state == "ended":
            self.seek(self.start)
        if self.state != "playing":
            self._pos, self._anchor, self.state = self.position, self._mono(), "playing"
        self._changed()

    def pause(self) -> None:
        """Stop the clock where it is."""
        self._touch()
        if self.state == "playing":
            self._pos, self.state = self.position, "paused"
        self._changed()

    def set_speed(self, speed: float) -> None:
        """Change the speed without moving the position."""
        if not MIN_SPEED <= speed <= self.max_speed:
            raise Refused(
                "bad_speed", f"Speed must be within {MIN_SPEED:g}..{self.max_speed:g}, got {speed:g}.", status=422
            )
        self._touch()
        self._pos, self._anchor, self.speed = self.position, self._mono(), speed
        self._changed()

    def seek(self, t: float) -> None:
        """Jump to ``t`` (recorded Unix seconds within [start, end]): state rebuilt, clients re-snapshotted."""
        if not self.start <= t <= self.end:
            raise Refused(
                "bad_position",
                f"Position {t:.3f} is outside the session ({self.start:.3f}..{self.end:.3f}).",
                status=422,
            )
        self._touch()
        self._pos, self._anchor = t, self._mono()
        if self.state == "ended":
            self.state = "paused"
        self._gen += 1
        self._waves.clear()
        self._waves_until, self._overlap = max(self.start, t - self._backfill_s), True
        self._decimator = Decimator(self._options.decimate_hz)
        if t <= self.start:  # from the very start, as when opened: everything is still to come
            self._cursor = self.timeline.index_from(t)
            self.hub.reset_live(self.timeline.live_at(t - _BEFORE, self.label))
        else:
            self._cursor = self.timeline.index_after(t)
            self.hub.reset_live(self.timeline.live_at(t, self.label))
        self._changed()

    def replay_state(self) -> ReplayState:
        """The transport state as sent to clients."""
        pos = self.position
        return ReplayState(
            seq=self.hub.seq,
            t=pos,
            replay_id=self.replay_id,
            session_id=self.session_id,
            state=self.state,
            speed=self.speed,
            position=pos,
            start=self.start,
            end=self.end,
        )

    def _touch(self) -> None:
        self.last_activity = self._mono()

    def _changed(self) -> None:
        self._send_state()
        self._wake.set()

    def _send_state(self) -> None:
        self.hub.push_all(self.replay_state().model_dump_json())
        self._greeted = set(self.hub.clients)
        self._last_state_sent = self._mono()

    # ---- lifecycle -------------------------------------------------------------------------------

    def start_task(self) -> None:
        """Start the playing loop (named task owned by the player)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"replay:{self.replay_id}")

    async def stop(self) -> None:
        """Stop the loop; connected clients are told to go (``stopped`` is set)."""
        self.stopped.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
            except asyncio.CancelledError:
                raise
            except Exception:  # a bad row (or a closed store) must not kill the loop: pause, say so once
                self.failures += 1
                if self.failures == 1 or self.failures % 100 == 0:
                    log.exception(
                        "replay %s failed at %.3f (%d times); paused", self.replay_id, self.position, self.failures
                    )
                self.pause()
            if self.hub.clients:
                self._touch()
            if self.state != "playing":
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.25):
                        await self._wake.wait()
            else:
                await asyncio.sleep(self._sleep_s())

    def _sleep_s(self) -> float:
        """Until the next recorded item is due, at most one tick."""
        if self._cursor < len(self.timeline.times):
            due = (self.timeline.times[self._cursor] - self.position) / self.speed
            return max(0.0, min(self._tick_s, due))
        return self._tick_s

    async def step(self) -> None:
        """Publish everything due at the current position (public for tests and benchmarks)."""
        pos = self.position
        self._publish_until(pos)
        lead = min(self._lead_s * self.speed, self._max_lead_s)
        await self._read_waves(pos + lead)
        self._publish_waves(self.position + lead)
        if self.state == "playing" and self.position >= self.end:
            self._publish_until(self.end)
            self._pos, self.state = self.end, "ended"
            self._send_state()
        elif self.state == "playing" and self._mono() - self._last_state_sent >= 1.0:
            self._send_state()
        elif not set(self.hub.clients) <= self._greeted:
            for ch in set(self.hub.clients) - self._greeted:
                ch.push_text(self.replay_state().model_dump_json())
            self._greeted = set(self.hub.clients)

    def _publish_until(self, pos: float) -> None:
        times = self.timeline.times
        while self._cursor < len(times) and times[self._cursor] <= pos:
            self.hub.publish(self.timeline.message(self._cursor))
            self._cursor += 1

    async def _read_waves(self, horizon: float) -> None:
        """Read the next window(s) of segments from the store until ``horizon`` is covered."""
        while self._waves_until < min(horizon, self.end):
            gen, since = self._gen, self._waves_until
            until = since + max(self._window_s, 2 * min(self._lead_s * self.speed, self._max_lead_s))
            segs = await load_waves(self.store, self.rec, to_datetime(since), to_datetime(until))
            if gen != self._gen:
                return  # a seek happened meanwhile: its own reads take over
            if not self._overlap:
                segs = [s for s in segs if _ts(s.t0) >= since]
            self._overlap = False
            self._waves.extend(s for s in segs if _ts(s.t0) < until)
            self._waves_until = until

    def _publish_waves(self, horizon: float) -> None:
        while self._waves and _ts(self._waves[0].t0) <= horizon:
            seg = self._waves.popleft()
            t0 = _ts(seg.t0)
            self._wave(seg, t0, seg.fs, list(seg.samples), decimated=False)
            dec = self._decimator.feed((seg.device_id, seg.channel), t0, seg.fs, seg.samples)
            if dec is not None:
                self._wave(seg, *dec, decimated=True)

    def _wave(self, seg: WaveSegment, t0: float, fs: float, samples: list[int], *, decimated: bool) -> None:
        self.published_waves += 1
        self.hub.publish(
            WaveMsg(
                seq=0,
                t=0,
                bay=self.bay,
                device_id=seg.device_id,
                channel=seg.channel,
                t0=t0,
                fs=fs,
                gain=seg.gain,
                unit=seg.unit,
                samples=samples,
                decimated=decimated,
            )
        )


# ---- the registry ---------------------------------------------------------------------------------------


class ReplayRegistry:
    """The replays of one server: at most ``max_players``; idle ones (no client, no control for
    ``idle_timeout_s``) are stopped and removed."""

    def __init__(
        self,
        store: Store,
        *,
        labels: dict[str, str] | None = None,
        options: HubOptions = HubOptions(),
        max_players: int = 8,
        idle_timeout_s: float = 600.0,
        reap_every_s: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.labels = dict(labels or {})
        self.options = options
        self.max_players = max_players
        self.idle_timeout_s = idle_timeout_s
        self._reap_every_s = reap_every_s
        self._mono = monotonic
        self.players: dict[str, ReplayPlayer] = {}
        self._reaper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the idle reaper."""
        self._reaper = asyncio.create_task(self._reap_loop(), name="replays:reaper")

    async def stop(self) -> None:
        """Stop every player and the reaper."""
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        for rid in list(self.players):
            await self.remove(rid)

    async def create(
        self, session_id: str, *, position: float | None = None, speed: float = 1.0, play: bool = False
    ) -> ReplayPlayer:
        """A new player for a recorded session (``Refused`` 404 unknown session, 429 too many replays)."""
        await self.reap()
        if len(self.players) >= self.max_players:
            raise Refused(
                "too_many_replays",
                f"{len(self.players)} replays are open (the limit); close one or wait for an idle one to expire.",
                status=429,
            )
        rec = await load_recording(self.store, session_id)
        player = ReplayPlayer(
            self.store,
            rec,
            label=self.labels.get(rec.bay, rec.bay),
            options=self.options,
            monotonic=self._mono,
        )
        player.set_speed(speed)
        if position is not None:
            player.seek(position)
        if play:
            player.play()
        self.players[player.replay_id] = player
        player.start_task()
        log.info("replay %s of session %s opened (%d open)", player.replay_id, session_id, len(self.players))
        return player

    def get(self, replay_id: str) -> ReplayPlayer | None:
        """A player, or None."""
        return self.players.get(replay_id)

    def require(self, replay_id: str) -> ReplayPlayer:
        """A player, or ``Refused`` 404."""
        p = self.players.get(replay_id)
        if p is None:
            raise Refused("no_such_replay", f"No replay {replay_id!r} (closed, expired or never opened).", status=404)
        return p

    async def remove(self, replay_id: str) -> bool:
        """Stop and forget a player; False if there was none."""
        p = self.players.pop(replay_id, None)
        if p is None:
            return False
        await p.stop()
        log.info("replay %s closed", replay_id)
        return True

    def idle(self) -> list[str]:
        """Players with no client and no control for longer than the idle timeout."""
        now = self._mono()
        return [
            rid for rid, p in self.players.items() if not p.hub.clients and now - p.last_activity > self.idle_timeout_s
        ]

    async def reap(self) -> list[str]:
        """Stop and remove idle players; returns their ids."""
        gone = self.idle()
        for rid in gone:
            await self.remove(rid)
        return gone

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(self._reap_every_s)
            try:
                await self.reap()
            except Exception:
                log.exception("replay reaper failed")
