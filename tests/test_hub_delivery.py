"""Hub delivery additions for the load benchmark: clients indexed by bay, a stalled reader resynced, and the
counters behind ``GET /api/stats``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx

from app.hub import ClientChannel, InProcessHub, Subscription
from app.live import LiveState
from tests.conftest import running_server, small_settings
from tests.test_hub import alarm, drain, status, vitals, wave


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(clock: Clock, **kw: Any) -> InProcessHub:
    return InProcessHub(LiveState([("bay1", "Bay 1"), ("bay2", "Bay 2")]), monotonic=clock, **kw)


def types(msgs: list[dict[str, Any]]) -> list[str]:
    return [m["type"] for m in msgs]


async def test_messages_reach_only_clients_of_their_bay_also_after_resubscribe() -> None:
    hub = make(Clock())
    one = hub.attach(Subscription(frozenset({"bay1"}), "full"), None)
    every = hub.attach(Subscription(None, "full"), None)
    await drain(one)
    await drain(every)
    hub.publish(vitals("bay2", 70))
    assert one.pending == 0 and every.pending == 1
    hub.resubscribe(one, Subscription(frozenset({"bay2"}), "full"))
    await drain(one)
    hub.publish(vitals("bay2", 71))
    hub.publish(vitals("bay1", 72))
    got = await drain(one)
    assert [m["bay"] for m in got] == ["bay2"]
    hub.detach(one)
    hub.publish(vitals("bay2", 73))
    assert one.pending == 0


async def test_a_reader_stalled_for_offline_after_s_is_resynced_not_fed_history() -> None:
    clock = Clock()
    hub = make(clock, offline_after_s=10.0, max_waves=1000)
    stalled = hub.attach(Subscription(None, "full"), None)
    await drain(stalled)
    for i in range(50):  # 10 s of nothing taken while frames wait
        hub.publish(wave("bay1", i))
        clock.now += 0.2
    assert stalled.stats.resyncs == 0
    clock.now += 0.5
    hub.publish(status("bay1", "online", 1.0))
    hub.publish(wave("bay1", 51))
    got = await drain(stalled)
    assert stalled.stats.resyncs == 1
    assert types(got) == ["snapshot", "wave"] and got[0]["reason"] == "resync"
    assert [d["state"] for b in got[0]["bays"] for d in b["devices"]] == ["online"]  # the snapshot has the status


async def test_an_idle_client_that_was_caught_up_is_not_resynced() -> None:
    clock = Clock()
    hub = make(clock, offline_after_s=10.0)
    ch = hub.attach(Subscription(None, "full"), None)
    await drain(ch)
    clock.now += 120.0  # nothing published for two minutes
    hub.publish(vitals("bay1", 70))
    hub.publish(wave("bay1", 1))
    got = await drain(ch)
    assert types(got) == ["vitals", "wave"] and ch.stats.resyncs == 0


async def test_counters_per_bay_and_totals_survive_a_client_going() -> None:
    hub = make(Clock(), max_waves=2)
    ch: ClientChannel = hub.attach(Subscription(frozenset({"bay1"}), "full"), None)
    await drain(ch)
    for i in range(5):
        hub.publish(wave("bay1", i))
    hub.publish(status("bay1", "stale", 2.0))
    hub.publish(alarm("bay2", "PROBE_OFF"))
    assert hub.stats.reliable_by_bay == {"bay1": {"status": 1}, "bay2": {"device_alarm": 1}}
    await drain(ch)
    hub.detach(ch)
    totals = hub.client_totals()
    assert totals.waves_dropped == 3 and totals.sent == ch.stats.sent > 0


async def test_stats_route(tmp_path: Path) -> None:
    async with running_server(small_settings(tmp_path, bays=1)) as srv, httpx.AsyncClient(base_url=srv.http) as client:
        for _ in range(100):
            body = (await client.get("/api/stats")).json()
            if body["by_type"].get("vitals"):
                break
            await asyncio.sleep(0.1)
    assert body["seq"] >= body["published"] > 0 and body["clients"] == 0
    assert body["reliable_by_bay"]["bay1"]["status"] >= 1  # connecting → online
    assert {"sent", "waves_dropped", "vitals_conflated", "resyncs"} <= set(body)
    json.dumps(body)
