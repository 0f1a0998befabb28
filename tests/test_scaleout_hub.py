"""RedisHub instances in one event loop against the real Redis (unique cluster name per test; skips without
Redis), and the shadow alarm state that non-owners keep (pure)."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from app.alarming import alarm_out
from app.alarms.engine import AlarmEngine, active_alarms
from app.alarms.model import AckInput, DeviceConditionInput, DeviceStatusInput, Phase, PhaseInput, Tick
from app.alarms.profile import load_profile
from app.hub import Subscription
from app.live import LiveState
from app.scale.ownership import shadow_state
from app.scale.redis_hub import RedisHub, connect, redis_problem
from app.wire import (
    SERVER_MESSAGE,
    Alarms,
    DeviceAlarmMsg,
    DeviceAlarmOut,
    DeviceOut,
    ResumePoint,
    Status,
    VitalOut,
    Vitals,
)
from monitors.models import DeviceState

REDIS_URL = os.environ.get("VIGIL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
BAYS = [("bay1", "Bay 1"), ("bay2", "Bay 2")]


@pytest.fixture
async def cluster() -> AsyncIterator[str]:
    problem = redis_problem(REDIS_URL, timeout_s=2)
    if problem is not None:
        pytest.skip(f"{problem}; set VIGIL_TEST_REDIS_URL")
    name = f"t{secrets.token_hex(5)}"
    yield name
    client = connect(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=f"vigil:{{{name}}}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


async def _hub(cluster: str, name: str) -> RedisHub:
    hub = RedisHub(LiveState(BAYS), connect(REDIS_URL), cluster=cluster, instance_id=name, bays=BAYS, ring_size=500)
    await hub.start()
    return hub


def _vitals(bay: str, hr: float) -> Vitals:
    r = VitalOut(param="hr", value=hr, unit="/min", quality="valid", t=1.0, tr=1.0, device_id=f"dev-{bay}")
    return Vitals(seq=0, t=0, bay=bay, device_id=f"dev-{bay}", readings=[r])


def _status(bay: str, state: str) -> Status:
    return Status(
        seq=0,
        t=0,
        bay=bay,
        device=DeviceOut(device_id=f"dev-{bay}", state=state, since=1.0),
    )


async def _until(pred: object, timeout: float = 10.0) -> None:
    assert callable(pred)
    async with asyncio.timeout(timeout):
        while not pred():  # noqa: ASYNC110  (polling state the hubs change from their own tasks)
            await asyncio.sleep(0.01)


async def test_two_hubs_share_seq_text_and_live_state_and_a_late_one_joins_identically(cluster: str) -> None:
    a, b = await _hub(cluster, "a"), await _hub(cluster, "b")
    try:
        assert a.epoch == b.epoch
        a.publish(_status("bay1", "online"))
        for i in range(20):
            bay = "bay1" if i % 3 else "bay2"
            msg = _status(bay, "stale" if i % 4 == 1 else "online") if i % 2 else _vitals(bay, 60 + i)
            (a if i % 3 == 1 else b).publish(msg)
        b.publish(_status("bay2", "stale"))
        await _until(lambda: a.seq == b.seq == 22)
        assert [e.text for e in a._ring] == [e.text for e in b._ring], "the same bytes under the same seq"
        assert [e.seq for e in a._ring] == list(range(1, 23))
        assert a.live.bays_out() == b.live.bays_out()
        late = await _hub(cluster, "c")  # joins from the latest-per-key hash and the stream
        try:
            assert late.seq == 22 and late.live.bays_out() == a.live.bays_out()
            assert [e.text for e in late._ring] == [e.text for e in a._ring]
            # A client of A resumes on the late instance: exactly the entries after its point.
            ch = late.attach(Subscription(None, "full"), ResumePoint(epoch=a.epoch, seq=15))
            texts = []
            while (t := await ch.get(timeout=0.1)) is not None:
                texts.append(SERVER_MESSAGE.validate_json(t))
            assert texts[0].type == "hello" and texts[0].resumed and texts[0].seq == 15
            got = [m.seq for m in texts[1:]]
            statuses = [e.seq for e in a._ring if e.seq > 15 and '"type":"status"' in e.text]
            assert got == sorted(set(got)) and set(statuses) <= set(got) and set(got) <= set(range(16, 23))
            assert got[-1] == 22  # numerics conflated to the latest, status never dropped
        finally:
            await late.stop()
    finally:
        await a.stop()
        await b.stop()


async def test_a_lost_epoch_starts_a_new_one_and_clients_resync(cluster: str) -> None:
    a = await _hub(cluster, "a")
    try:
        a.publish(_vitals("bay1", 70))
        await _until(lambda: a.seq == 1)
        old = a.epoch
        ch = a.attach(Subscription(None, "none"), None)
        await a.redis.delete(a.keys.epoch)  # Redis restarted empty, as far as the stream is concerned
        a.publish(_vitals("bay1", 71))
        await _until(lambda: a.epoch not in (old, f"{old}.local1") and a.seq >= 1 and a.connected, timeout=15)
        await _until(lambda: a.live.bays_out(["bay1"])[0].vitals[0].value == 71, timeout=15)
        kinds = []
        while (t := await ch.get(timeout=0.1)) is not None:
            kinds.append(SERVER_MESSAGE.validate_json(t))
        hellos = [m for m in kinds if m.type == "hello"]
        assert hellos[-1].epoch == a.epoch
        assert any(m.type == "snapshot" and m.reason == "resync" for m in kinds)
    finally:
        await a.stop()


def test_shadow_state_carries_the_active_list_phase_and_acknowledgement() -> None:
    engine = AlarmEngine(load_profile("ketamine_chronic_pain"))
    t0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)
    state = engine.new_state()
    state, _ = engine.evaluate(state, PhaseInput(phase=Phase.BASELINE), t0)
    state, _ = engine.evaluate(state, DeviceStatusInput(device_id="d", state=DeviceState.ONLINE), t0)
    state, _ = engine.evaluate(state, DeviceConditionInput(device_id="d", code="SPO2_PROBE_OFF"), t0)
    raised = []
    for i in range(1, 12):
        state, events = engine.evaluate(state, Tick(), t0 + timedelta(seconds=i))
        raised += [e for e in events if e.kind.value == "raised"]
    assert raised
    state, _ = engine.evaluate(state, AckInput(rule_id="all", user="nurse"), t0 + timedelta(seconds=12))
    # The live state of the bay on another instance: the owner's alarms message, the device and its INOP.
    live = LiveState([("bay1", "Bay 1")])
    t = t0.timestamp()
    live.apply(Status(seq=1, t=t, bay="bay1", device=DeviceOut(device_id="d", state="online", since=t)))
    inop = DeviceAlarmOut(
        device_id="d", code="SPO2_PROBE_OFF", priority="medium", alarm_kind="technical", text="", t=t, active=True
    )
    live.apply(DeviceAlarmMsg(seq=2, t=t, bay="bay1", alarm=inop))
    active = [alarm_out(a) for a in active_alarms(state)]
    live.apply(Alarms(seq=3, t=t, bay="bay1", events=[], active=active, phase=state.phase.value))
    shadow = shadow_state(engine.new_state(), live.bays_out()[0], engine.profile)
    assert [alarm_out(a) for a in active_alarms(shadow)] == active
    assert shadow.phase is state.phase and shadow.seq >= 1
    # A successor that starts from the shadow does not raise the alarm again while the condition persists.
    later = []
    for i in range(13, 40):
        shadow, events = engine.evaluate(shadow, Tick(), t0 + timedelta(seconds=i))
        later += [e for e in events if e.kind.value == "raised" and e.rule_id == active[0].rule_id]
    assert not later
    assert [a.rule_id for a in active_alarms(shadow)] == [active[0].rule_id]
