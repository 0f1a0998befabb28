"""Replay (app/recording/replay.py): a recorded session played through the replay's own hub equals the
recording; seek rebuilds the exact state at t; the alarm fold equals the engine's own active list."""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.alarming import alarm_out, event_out
from app.alarms.engine import AlarmEngine, active_alarms, audio_paused_until
from app.alarms.model import (
    AckInput,
    AlarmInput,
    AudioPauseInput,
    DeviceConditionInput,
    Phase,
    PhaseInput,
    ReadingInput,
    ReadingsInput,
    Tick,
)
from app.alarms.profile import load_profile
from app.hub import ClientChannel, Subscription, WaveDetail
from app.recording.load import load_recording
from app.recording.model import SessionRecording
from app.recording.replay import AlarmFold, HubOptions, ReplayPlayer, ReplayRegistry
from app.sessions.model import Refused
from app.store.sqlite import SQLiteStore
from app.wire import SERVER_MESSAGE, AlarmOut
from monitors.adapters.simulated import TECHNICAL_CONDITIONS
from monitors.models import Quality
from simulators.patient import SimulatedPatient
from simulators.scenario import load_scenario
from tests.conftest import RecordedSession

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
ALARM_FIELDS = (
    "alarm_id",
    "rule_id",
    "row",
    "priority",
    "category",
    "text",
    "values",
    "raised_at",
    "priority_since",
    "condition_active",
    "latched",
    "acknowledged_at",
    "acknowledged_by",
)


def _alarm_key(a: AlarmOut | dict[str, Any]) -> tuple[Any, ...]:
    d = a.model_dump() if isinstance(a, AlarmOut) else a
    return tuple(d[f] for f in ALARM_FIELDS)


# ---- the alarm fold against the engine itself -----------------------------------------------------------


def _readings(values: dict[str, float | None]) -> ReadingsInput:
    return ReadingsInput(
        readings=tuple(
            ReadingInput(param=k, value=v, quality=Quality.VALID if v is not None else Quality.INVALID)
            for k, v in values.items()
        )
    )


@pytest.mark.parametrize(("scenario", "ack_every_s", "minutes"), [("oversedation", 240, 45), ("apnoea", 0, 33)])
def test_alarm_fold_equals_engine_active_list(scenario: str, ack_every_s: int, minutes: int) -> None:
    """Folding only the engine's events rebuilds its active list (latching, escalation, acks, audio) exactly."""
    engine = AlarmEngine(load_profile("ketamine_chronic_pain"))
    patient = SimulatedPatient(load_scenario(scenario), seed=3)
    state = engine.new_state()
    fold = AlarmFold()
    phase: str | None = None
    reported: set[str] = set()
    kinds: set[str] = set()
    compared = 0
    for s in range(minutes * 60):
        inputs: list[AlarmInput] = []
        if (p := patient.phase_at(s)) != phase:
            inputs.append(PhaseInput(phase=Phase(p)))
            phase = p
        conditions = set(patient.conditions(s))
        for c in sorted(set(TECHNICAL_CONDITIONS) & (conditions ^ reported)):
            inputs.append(
                DeviceConditionInput(device_id="sim", code=TECHNICAL_CONDITIONS[c][0], active=c in conditions)
            )
        reported = set(TECHNICAL_CONDITIONS) & conditions
        inputs.append(_readings(patient.numerics(s)))
        if s % 180 == 5:
            inputs.append(_readings(patient.nibp(s)))
        if ack_every_s and s % ack_every_s == ack_every_s - 1:
            inputs.append(AckInput(user="nurse"))
        if s == 1500:
            inputs.append(AudioPauseInput(user="nurse", duration_s=60))
        inputs.append(Tick())
        for inp in inputs:
            state, events = engine.evaluate(state, inp, T0 + timedelta(seconds=s))
            for e in events:
                fold.apply(e)
                kinds.add(e.kind.value)
            if events:
                want = [_alarm_key(alarm_out(a)) for a in active_alarms(state)]
                assert [_alarm_key(a) for a in fold.out()] == want, f"{scenario} at {s} s"
                paused = audio_paused_until(state)
                assert fold.audio_paused_until == (None if paused is None else paused.timestamp())
                compared += 1
    assert compared > 10
    assert {"raised", "priority_changed", "escalated", "condition_ended", "cleared"} <= kinds
    if ack_every_s:
        assert "acknowledged" in kinds


# ---- one simulated session, recorded once per test run ---------------------------------------------------


@pytest.fixture(scope="session")
def recorded(recorded_session: RecordedSession) -> tuple[Path, str]:
    """The shared over-sedation recording (tests/conftest.py)."""
    return recorded_session.db, recorded_session.session_id


@pytest.fixture
async def store(recorded: tuple[Path, str]) -> Any:
    s = SQLiteStore(recorded[0])
    await s.open()
    yield s
    await s.close()


class Tap:
    """A client of the replay hub that takes everything queued whenever asked (one that always keeps up: a
    client that lags has its numerics conflated, which is the hub's rule, tested with the hub)."""

    def __init__(self, player: ReplayPlayer, waves: WaveDetail = "full") -> None:
        self.ch: ClientChannel = player.hub.attach(Subscription(None, waves), None)
        self.msgs: list[dict[str, Any]] = []

    async def drain(self) -> list[dict[str, Any]]:
        """Every frame queued now, validated and decoded."""
        new: list[dict[str, Any]] = []
        while (text := await self.ch.get(timeout=0)) is not None:
            SERVER_MESSAGE.validate_json(text)
            new.append(json.loads(text))
        self.msgs += new
        return new


def _big() -> HubOptions:
    """Queues large enough that a test client never loses a frame (the drop rules are the hub's tests)."""
    return HubOptions(ring_size=100, max_pending=10_000_000, max_waves=10_000_000)


# ---- (a) the replayed stream equals the recording --------------------------------------------------------


async def test_replay_stream_equals_recording(store: SQLiteStore, recorded: tuple[Path, str]) -> None:
    rec = await load_recording(store, recorded[1])
    assert rec.final and rec.readings and rec.alarm_events
    # The player's clock is driven by hand: 0.5 s of recording per step at 600x, the stream drained after each
    # step like a client that keeps up (a client that lags has its numerics conflated: that is the hub's rule).
    clock = [0.0]
    player = ReplayPlayer(store, rec, label="Bay 1", options=_big(), max_speed=600, monotonic=lambda: clock[0])
    tap, station = Tap(player), Tap(player, "decimated")

    async def drain() -> None:
        await tap.drain()
        await station.drain()

    player.set_speed(600)
    player.play()
    steps = 0
    while player.state == "playing":
        clock[0] += 0.5 / 600
        await player.step()
        await drain()
        steps += 1
    assert player.state == "ended" and steps > (player.end - player.start) / 0.5 - 2
    msgs = tap.msgs
    station_waves = [m for m in station.msgs if m["type"] == "wave"]
    assert msgs[0]["type"] == "hello" and msgs[0]["replay"] is True
    assert msgs[1]["type"] == "snapshot" and msgs[1]["bays"][0]["label"] == "REPLAY · Bay 1"
    data = [m for m in msgs if m["type"] not in ("hello", "snapshot", "replay", "heartbeat")]
    seqs = [m["seq"] for m in data]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert {m["bay"] for m in data} == {rec.bay}

    # every reading, in order, with its value, quality and times; published once the clock passed it
    vitals = [m for m in data if m["type"] == "vitals"]
    got = [
        (r["device_id"], r["param"], r["value"], r["quality"], r["t"], r["tr"]) for m in vitals for r in m["readings"]
    ]
    want = [
        (r.device_id, r.param, r.value, r.quality.value, r.t_device.timestamp(), r.t_received.timestamp())
        for r in sorted(rec.readings, key=lambda r: r.t_device)
    ]
    assert got == want
    assert all(m["t"] >= max(r["t"] for r in m["readings"]) for m in vitals)

    # every waveform sample of every channel: the full-rate frames rebuild the stored segments exactly
    stored = await store.waveforms(bay=rec.bay, since=rec.start, until=rec.end)
    assert len(stored) > 1000
    want_waves: dict[tuple[str, str], list[tuple[float, float, list[int]]]] = defaultdict(list)
    for seg in stored:
        want_waves[(seg.device_id, seg.channel)].append((seg.t0.timestamp(), seg.fs, list(seg.samples)))
    got_waves: dict[tuple[str, str], list[tuple[float, float, list[int]]]] = defaultdict(list)
    for m in data:
        if m["type"] == "wave" and not m["decimated"]:
            got_waves[(m["device_id"], m["channel"])].append((m["t0"], m["fs"], m["samples"]))
    assert set(got_waves) == set(want_waves) and len(want_waves) == 3
    for key, segs in want_waves.items():
        assert got_waves[key] == segs, key
        assert sum(len(s[2]) for s in segs) > 100_000
    # station detail as live: decimated to at most 25 Hz, covering the same time
    assert station_waves and all(w["decimated"] and w["fs"] <= 25 for w in station_waves)
    for (dev, chan), segs in want_waves.items():
        dec = [w for w in station_waves if (w["device_id"], w["channel"]) == (dev, chan)]
        n = sum(len(w["samples"]) for w in dec)
        assert abs(n / dec[0]["fs"] - sum(len(s[2]) / s[1] for s in segs)) < 2.0, chan

    # device status changes and device alarms, in order
    statuses = [
        (m["device"]["device_id"], m["device"]["state"], m["device"]["since"]) for m in data if m["type"] == "status"
    ]
    assert statuses == [(s.device_id, s.state.value, s.since.timestamp()) for s in rec.statuses if s.since >= rec.start]
    # a device's state as the session began (its last change before the start) is in the first snapshot
    before = {s.device_id: s.state.value for s in rec.statuses if s.since < rec.start}
    assert before, "the recording carries each device's link state at the start"
    shown = {d["device_id"]: d["state"] for d in msgs[1]["bays"][0]["devices"]}
    assert shown == before
    dev_alarms = [
        (m["alarm"]["code"], m["alarm"]["active"], m["alarm"]["t"]) for m in data if m["type"] == "device_alarm"
    ]
    assert dev_alarms == [(a.code, a.active, a.t.timestamp()) for a in rec.device_alarms]

    # the rule engine's events, in order, each message with the bay's full active list and the phase
    alarm_msgs = [m for m in data if m["type"] == "alarms"]
    events = [e for m in alarm_msgs for e in m["events"]]
    assert events == [event_out(e).model_dump() for e in rec.alarm_events]
    kinds = {e["kind"] for e in events}
    assert {"raised", "cleared"} <= kinds
    assert [m["phase"] for m in alarm_msgs if not m["events"]][-1] == "discharged"
    active: set[str] = set()
    for m in alarm_msgs:
        for e in m["events"]:
            if e["kind"] == "raised":
                active.add(e["alarm_id"])
            elif e["kind"] == "cleared":
                active.discard(e["alarm_id"])
        assert {a["alarm_id"] for a in m["active"]} == active


# ---- (b) seek ----------------------------------------------------------------------------------------------


def _expected_at(rec: SessionRecording, t: float) -> dict[str, Any]:
    """The bay at ``t`` computed the naive way: scan everything recorded up to ``t``."""
    vitals: dict[str, tuple[float | None, float]] = {}
    for r in rec.readings:
        if r.t_device.timestamp() <= t:
            prev = vitals.get(r.param)
            if prev is None or r.t_device.timestamp() >= prev[1]:
                vitals[r.param] = (r.value, r.t_device.timestamp())
    devices = {s.device_id: s.state.value for s in rec.statuses if s.since.timestamp() <= t}
    dev_alarms: dict[tuple[str, str], bool] = {}
    for a in rec.device_alarms:
        if a.t.timestamp() <= t:
            dev_alarms[(a.device_id, a.code)] = a.active
    raised: dict[str, str] = {}  # alarm id -> priority of its latest event
    acked: dict[str, bool] = {}
    for e in rec.alarm_events:
        if e.t.timestamp() > t or e.alarm_id is None or e.kind.value in ("confirmation_requested",):
            continue
        if e.kind.value == "cleared":
            raised.pop(e.alarm_id, None)
            continue
        if e.kind.value in ("raised", "priority_changed", "escalated") and e.priority is not None:
            raised[e.alarm_id] = e.priority.value
        if e.kind.value == "acknowledged":
            acked[e.alarm_id] = True
        elif e.kind.value == "raised" or (
            e.kind.value == "priority_changed" and (e.previous_priority, e.priority) in _WORSE
        ):
            acked[e.alarm_id] = False
    phase = "planned"
    for p in rec.session.phases:
        if p.t.timestamp() <= t:
            phase = p.to_phase.value
    return {
        "vitals": vitals,
        "devices": devices,
        "device_alarms": {k for k, on in dev_alarms.items() if on},
        "alarms": {a: (p, acked.get(a, False)) for a, p in raised.items()},
        "phase": phase,
    }


_ORDER = ["info", "low", "medium", "high"]
_WORSE = {(a, b) for a in _ORDER for b in _ORDER if _ORDER.index(b) > _ORDER.index(a)}


def _snapshot_state(bay: dict[str, Any]) -> dict[str, Any]:
    return {
        "vitals": {v["param"]: (v["value"], v["t"]) for v in bay["vitals"]},
        "devices": {d["device_id"]: d["state"] for d in bay["devices"]},
        "device_alarms": {(a["device_id"], a["code"]) for a in bay["device_alarms"]},
        "alarms": {a["alarm_id"]: (a["priority"], a["acknowledged_at"] is not None) for a in bay["alarms"]},
        "phase": bay["phase"],
    }


async def test_seek_rebuilds_state_and_continues_from_t(store: SQLiteStore, recorded: tuple[Path, str]) -> None:
    rec = await load_recording(store, recorded[1])
    start, end = rec.start.timestamp(), rec.end.timestamp()
    raised = [e for e in rec.alarm_events if e.kind.value == "raised"]
    acked = [e for e in rec.alarm_events if e.kind.value == "acknowledged"]
    infusion = next(p.t.timestamp() for p in rec.session.phases if p.to_phase is Phase.INFUSION)
    targets = [
        start + 1.0,
        raised[0].t.timestamp(),  # exactly at the first alarm
        raised[0].t.timestamp() + 0.5,
        infusion + 600.3,
        max(e.t.timestamp() for e in rec.alarm_events if e.priority is not None and e.priority.value == "high") + 1,
        end - 30.0,
        start + 61.7,  # back again
    ]
    if acked:
        targets.append(acked[0].t.timestamp() + 0.1)
    clock = [0.0]
    player = ReplayPlayer(store, rec, label="Bay 1", options=_big(), monotonic=lambda: clock[0])
    tap = Tap(player)
    player.set_speed(60)
    player.play()
    for _ in range(20):
        clock[0] += 0.25
        await player.step()
    for t in targets:
        await tap.drain()  # what came before the seek is history
        player.seek(t)
        got = await tap.drain()
        assert [m["type"] for m in got] == ["snapshot", "replay"]
        snap, state = got
        assert snap["reason"] == "seek" and snap["t"] == t and state["position"] == t and state["state"] == "playing"
        (bay,) = snap["bays"]
        assert bay["bay"] == rec.bay and bay["label"] == "REPLAY · Bay 1"
        want = _expected_at(rec, t)
        assert _snapshot_state(bay) == want, f"seek to {t - start:.1f} s"
        if t == raised[0].t.timestamp():
            assert raised[0].alarm_id in want["alarms"]
        # the stream goes on from t: the next numerics are the first recorded after t ...
        for _ in range(200):
            if any(m["type"] == "vitals" for m in got):
                break
            clock[0] += 0.25 / 60
            await player.step()
            got += await tap.drain()
        nxt = next(m for m in got if m["type"] == "vitals")
        after = min(r.t_device.timestamp() for r in rec.readings if r.t_device.timestamp() > t)
        assert min(r["t"] for r in nxt["readings"]) == after
        assert snap["seq"] < nxt["seq"]
        # ... and each channel's waveform is re-sent from 12 s (the longest sweep) before t, through t
        for channel in ("ecg_ii", "pleth", "co2"):
            waves = [m for m in got if m["type"] == "wave" and m["channel"] == channel and not m["decimated"]]
            if t < end - 5:
                first = waves[0]
                assert first["t0"] <= max(start, t - 12.0) < first["t0"] + len(first["samples"]) / first["fs"] + 1e-6
                assert any(w["t0"] <= t < w["t0"] + len(w["samples"]) / w["fs"] + 1e-6 for w in waves), channel
    # every "replay" message tells the truth about the transport
    states = [m for m in tap.msgs if m["type"] == "replay"]
    assert states and all(start <= m["position"] <= end and m["speed"] == 60 for m in states)


async def test_controls_validate_and_report(store: SQLiteStore, recorded: tuple[Path, str]) -> None:
    rec = await load_recording(store, recorded[1])
    clock = [1000.0]
    player = ReplayPlayer(store, rec, monotonic=lambda: clock[0])
    start, end = player.start, player.end
    assert (player.state, player.position, player.speed) == ("paused", start, 1.0)
    for bad in (0.5, 61.0, float("nan")):
        with pytest.raises(Refused) as speed_err:
            player.set_speed(bad)
        assert speed_err.value.status == 422
    for bad_t in (start - 1, end + 1):
        with pytest.raises(Refused) as seek_err:
            player.seek(bad_t)
        assert seek_err.value.code == "bad_position"
    player.set_speed(10)
    player.play()
    clock[0] += 3.0
    assert player.position == pytest.approx(start + 30.0)
    player.pause()
    clock[0] += 5.0
    assert player.position == pytest.approx(start + 30.0)
    player.seek(end - 1)
    player.play()
    clock[0] += 1.0
    assert player.position == end  # clamped; the loop turns it into "ended"
    await player.step()
    assert player.state == "ended"
    player.play()  # from the start again
    assert player.replay_state().state == "playing" and player.position == start


async def test_registry_limits_and_expires_idle_replays(store: SQLiteStore, recorded: tuple[Path, str]) -> None:
    clock = [0.0]
    reg = ReplayRegistry(store, labels={"bay1": "Bay 1"}, max_players=2, idle_timeout_s=600, monotonic=lambda: clock[0])
    try:
        with pytest.raises(Refused) as unknown:
            await reg.create("no-such-session")
        assert unknown.value.status == 404
        a = await reg.create(recorded[1])
        b = await reg.create(recorded[1], speed=30, play=True)
        assert a.label == "REPLAY · Bay 1" and b.state == "playing" and b.speed == 30
        with pytest.raises(Refused) as full:
            await reg.create(recorded[1])
        assert full.value.status == 429
        ch = b.hub.attach(Subscription(None, "none"), None)  # b has a client; a has none
        clock[0] += 599
        assert await reg.reap() == []
        a.pause()  # a control counts as activity
        clock[0] += 599
        assert await reg.reap() == []
        clock[0] += 2
        assert await reg.reap() == [a.replay_id]
        assert a.stopped.is_set() and reg.get(a.replay_id) is None and reg.get(b.replay_id) is b
        b.hub.detach(ch)
        clock[0] += 601
        await asyncio.sleep(0.3)  # b's loop notices it has no client any more
        clock[0] += 601
        assert await reg.reap() == [b.replay_id]
    finally:
        await reg.stop()
    assert not reg.players
