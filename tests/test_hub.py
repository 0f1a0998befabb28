"""Hub semantics: fan-out, per-client bounded queues, conflation, drops, resync, resume."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.hub import ClientChannel, InProcessHub, Subscription
from app.live import LiveState
from app.wire import (
    SERVER_MESSAGE,
    DeviceAlarmMsg,
    DeviceAlarmOut,
    DeviceOut,
    ResumePoint,
    Status,
    VitalOut,
    Vitals,
    Wave,
)

ALL_FULL = Subscription(None, "full")


def make_hub(**kw: Any) -> InProcessHub:
    live = LiveState([("bay1", "Bay 1"), ("bay2", "Bay 2")])
    return InProcessHub(live, **kw)


def vitals(bay: str, hr: float, params: tuple[str, ...] = ("hr",)) -> Vitals:
    return Vitals(
        seq=0,
        t=0,
        bay=bay,
        device_id=f"dev-{bay}",
        readings=[
            VitalOut(param=p, value=hr, unit="/min", quality="valid", t=1.0, tr=1.0, device_id=f"dev-{bay}")
            for p in params
        ],
    )


def wave(bay: str, i: int, decimated: bool = False) -> Wave:
    return Wave(
        seq=0,
        t=0,
        bay=bay,
        device_id=f"dev-{bay}",
        channel="ecg_ii",
        t0=i * 0.2,
        fs=250,
        gain=0.005,
        unit="mV",
        samples=[i] * 50,
        decimated=decimated,
    )


def status(bay: str, state: str, since: float) -> Status:
    return Status(
        seq=0,
        t=0,
        bay=bay,
        device=DeviceOut(
            device_id=f"dev-{bay}",
            state=state,
            since=since,
        ),
    )


def alarm(bay: str, code: str, active: bool = True) -> DeviceAlarmMsg:
    return DeviceAlarmMsg(
        seq=0,
        t=0,
        bay=bay,
        alarm=DeviceAlarmOut(
            device_id=f"dev-{bay}",
            code=code,
            priority="medium",
            alarm_kind="technical",
            text=code,
            t=1.0,
            active=active,
        ),
    )


async def drain(ch: ClientChannel) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while (text := await ch.get(timeout=0)) is not None:
        SERVER_MESSAGE.validate_json(text)  # every message is a valid envelope
        out.append(json.loads(text))
    return out


async def test_connect_gets_hello_then_snapshot_then_deltas_in_seq_order() -> None:
    hub = make_hub()
    hub.publish(vitals("bay1", 70))
    hub.publish(status("bay1", "online", 1.0))
    ch = hub.attach(ALL_FULL, None)
    hub.publish(vitals("bay1", 71))
    hub.publish(wave("bay1", 1))
    msgs = await drain(ch)
    assert [m["type"] for m in msgs] == ["hello", "snapshot", "vitals", "wave"]
    assert msgs[0]["resumed"] is False and msgs[0]["epoch"] == hub.epoch
    snap = msgs[1]
    assert snap["seq"] == 2 and snap["reason"] == "connect"
    bay1 = snap["bays"][0]
    assert bay1["vitals"][0]["value"] == 70 and bay1["devices"][0]["state"] == "online"
    assert [m["seq"] for m in msgs[2:]] == [3, 4]
    assert all(m["v"] == 1 for m in msgs)


async def test_subscription_filters_bays_and_wave_detail() -> None:
    hub = make_hub()
    bedside = hub.attach(Subscription(frozenset({"bay1"}), "full"), None)
    station = hub.attach(Subscription(None, "decimated"), None)
    numerics_only = hub.attach(Subscription(None, "none"), None)
    for i in range(3):
        hub.publish(wave("bay1", i))
        hub.publish(wave("bay1", i, decimated=True))
        hub.publish(wave("bay2", i))
        hub.publish(wave("bay2", i, decimated=True))
    hub.publish(vitals("bay2", 80))

    def waves(msgs: list[dict[str, Any]]) -> list[tuple[str, bool]]:
        return [(m["bay"], m["decimated"]) for m in msgs if m["type"] == "wave"]

    b, s, n = await drain(bedside), await drain(station), await drain(numerics_only)
    assert waves(b) == [("bay1", False)] * 3
    assert not any(m["type"] == "vitals" for m in b)  # bay2 is not shown at this bedside
    assert sorted(set(waves(s))) == [("bay1", True), ("bay2", True)] and len(waves(s)) == 6
    assert waves(n) == [] and [m["type"] for m in n][-1] == "vitals"


async def test_slow_client_does_not_hold_back_others_and_memory_is_bounded() -> None:
    hub = make_hub(max_pending=50, max_waves=20)
    fast = hub.attach(ALL_FULL, None)
    slow = hub.attach(ALL_FULL, None)
    await drain(fast)
    received_fast = 0
    for i in range(5_000):
        hub.publish(wave("bay1", i))
        hub.publish(vitals("bay1", 60 + i % 40, ("hr", "spo2")))
        received_fast += len(await drain(fast))
        assert slow.pending <= 50 + 20
        assert len(slow._main) <= 2 * 50 + 1  # superseded slots are compacted
    assert received_fast == 10_000  # the fast client got every message
    assert fast.stats.waves_dropped == 0 and fast.stats.resyncs == 0
    assert slow.stats.waves_dropped > 4_000
    assert slow.stats.vitals_conflated > 4_000
    got = await drain(slow)
    hr = [m for m in got if m["type"] == "vitals"]
    assert len(hr) == 1 and hr[0]["readings"][0]["value"] == 60 + 4_999 % 40  # conflated to the latest
    assert [m["seq"] for m in got] == sorted(m["seq"] for m in got)


async def test_status_and_alarms_are_never_dropped_when_waves_are() -> None:
    hub = make_hub(max_pending=1_000, max_waves=5)
    slow = hub.attach(ALL_FULL, None)
    await drain(slow)
    for i in range(200):
        hub.publish(wave("bay1", i))
        if i % 10 == 0:
            hub.publish(status("bay1", "stale" if i % 20 else "online", float(i)))
            hub.publish(alarm("bay1", f"A{i}"))
    got = await drain(slow)
    assert [m["device"]["since"] for m in got if m["type"] == "status"] == [float(i) for i in range(0, 200, 10)]
    assert [m["alarm"]["code"] for m in got if m["type"] == "device_alarm"] == [f"A{i}" for i in range(0, 200, 10)]
    assert sum(m["type"] == "wave" for m in got) == 5 and slow.stats.waves_dropped == 195


async def test_overflowing_reliable_lane_resyncs_with_current_state() -> None:
    hub = make_hub(max_pending=10, max_waves=5)
    slow = hub.attach(ALL_FULL, None)
    await drain(slow)
    for i in range(25):
        hub.publish(status("bay1", "online" if i % 2 else "stale", float(i)))
    hub.publish(alarm("bay2", "LEADS_OFF"))
    got = await drain(slow)
    assert slow.stats.resyncs >= 1
    snaps = [m for m in got if m["type"] == "snapshot"]
    assert snaps and snaps[0]["reason"] == "resync"
    # What the client knows afterwards equals the hub's state: the last status and the active alarm.
    last_snap = snaps[-1]
    after = [m for m in got if m["seq"] > last_snap["seq"]]
    states = {d["device_id"]: d for b in last_snap["bays"] for d in b["devices"]}
    for m in after:
        if m["type"] == "status":
            states[m["device"]["device_id"]] = m["device"]
    assert states["dev-bay1"]["since"] == 24.0 and states["dev-bay1"]["state"] == "stale"
    alarms = [a["code"] for b in last_snap["bays"] for a in b["device_alarms"]] + [
        m["alarm"]["code"] for m in after if m["type"] == "device_alarm"
    ]
    assert "LEADS_OFF" in alarms


async def test_resume_after_gap_gets_exactly_the_missed_deltas() -> None:
    hub = make_hub()
    ch = hub.attach(Subscription(frozenset({"bay1"}), "full"), None)
    hub.publish(vitals("bay1", 70))
    seen = await drain(ch)
    last = max(m["seq"] for m in seen if m["type"] not in ("hello", "heartbeat"))
    hub.detach(ch)
    hub.publish(vitals("bay1", 71))
    hub.publish(vitals("bay2", 99))  # not subscribed: not part of the gap for this client
    hub.publish(status("bay1", "stale", 5.0))
    again = hub.attach(Subscription(frozenset({"bay1"}), "full"), ResumePoint(epoch=hub.epoch, seq=last))
    got = await drain(again)
    assert got[0]["type"] == "hello" and got[0]["resumed"] is True
    assert [(m["type"], m["seq"]) for m in got[1:]] == [("vitals", last + 1), ("status", last + 3)]


@pytest.mark.parametrize("case", ["other-epoch", "too-old", "future"])
async def test_resume_falls_back_to_snapshot(case: str) -> None:
    hub = make_hub(ring_size=100)
    for i in range(300):
        hub.publish(vitals("bay1", 60 + i % 30))
    point = {
        "other-epoch": ResumePoint(epoch="someoneelse", seq=299),
        "too-old": ResumePoint(epoch=hub.epoch, seq=10),
        "future": ResumePoint(epoch=hub.epoch, seq=10_000),
    }[case]
    got = await drain(hub.attach(ALL_FULL, point))
    assert [m["type"] for m in got] == ["hello", "snapshot"]
    assert got[0]["resumed"] is False and got[1]["seq"] == 300


async def test_resubscribe_sends_fresh_snapshot_of_new_bays() -> None:
    hub = make_hub()
    hub.publish(vitals("bay2", 88))
    ch = hub.attach(Subscription(frozenset({"bay1"}), "full"), None)
    await drain(ch)
    hub.resubscribe(ch, Subscription(frozenset({"bay2"}), "decimated"))
    got = await drain(ch)
    assert [m["type"] for m in got] == ["hello", "snapshot"]
    assert [b["bay"] for b in got[1]["bays"]] == ["bay2"] and got[1]["reason"] == "resubscribe"


async def test_idle_get_times_out_for_heartbeat() -> None:
    hub = make_hub()
    ch = hub.attach(ALL_FULL, None)
    await drain(ch)
    assert await ch.get(timeout=0.01) is None
    hb = json.loads(hub.heartbeat())
    assert hb["type"] == "heartbeat" and hb["seq"] == hub.seq


async def test_unassigned_device_appears_as_its_own_bay_for_all_bay_screens() -> None:
    hub = make_hub()
    station = hub.attach(Subscription(None, "decimated"), None)
    bedside = hub.attach(Subscription(frozenset({"bay1"}), "full"), None)
    first = await drain(station)
    assert [b["bay"] for b in first[1]["bays"]] == ["bay1", "bay2"]
    hub.publish(vitals("unassigned", 77))
    got = await drain(station)
    snaps = [m for m in got if m["type"] == "snapshot"]
    assert snaps and [b["bay"] for b in snaps[-1]["bays"]] == ["bay1", "bay2", "unassigned"]
    assert snaps[-1]["bays"][-1]["label"] == "Unassigned devices"
    assert not [m for m in await drain(bedside) if m["type"] != "hello" and m["type"] != "snapshot"]
