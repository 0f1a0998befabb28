"""Alarms through the whole server: a simulated over-sedation raises its alarms on the websocket (never
dropped, with the full active list), they can be acknowledged over the API, and the log records who and when."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import websockets

from app.config import SimulatedMonitor
from tests.conftest import running_server, small_settings


async def test_oversedation_alarms_reach_screens_and_can_be_acknowledged(tmp_path: Path) -> None:
    base = small_settings(tmp_path, bays=1)
    monitor = SimulatedMonitor(
        name="sim1",
        device_id="dev1",
        bay="bay1",
        seed=2,
        scenario="oversedation",
        speed=30,
        offset_min=24,
        nibp_first_s=0.5,
    )
    settings = base.model_copy(update={"monitors": [monitor]})
    async with running_server(settings) as srv, websockets.connect(srv.ws) as ws:
        await ws.send(json.dumps({"type": "subscribe", "bays": ["bay1"], "waves": "none"}))
        raised: dict[str, dict[str, Any]] = {}
        active: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while loop.time() < deadline and not {"etco2_high", "resp_depression"} <= set(raised):
            msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if msg["type"] == "snapshot":
                assert msg["bays"][0]["phase"] in (None, "planned", "infusion")
            if msg["type"] == "alarms":
                assert msg["phase"] == "infusion"
                active = msg["active"]
                for e in msg["events"]:
                    if e["kind"] == "raised":
                        raised[e["rule_id"]] = e
        assert {"etco2_high", "resp_depression"} <= set(raised), raised
        assert raised["resp_depression"]["priority"] == "high"
        assert "EtCO₂ HIGH" in raised["etco2_high"]["text"]
        assert any(a["rule_id"] == "resp_depression" and a["priority"] == "high" for a in active)

        async with httpx.AsyncClient(base_url=srv.http) as http:
            r = await http.post("/api/bays/bay1/alarms/acknowledge", json={"rule_id": "all"})
            assert r.status_code == 200
            acks = [e for e in r.json() if e["kind"] == "acknowledged"]
            assert acks and all(e["user"] == "local" for e in acks)
            assert all(e["time_to_ack_s"] is not None and e["time_to_ack_s"] >= 0 for e in acks)
            r = await http.post("/api/bays/bay1/alarms/audio-pause", json={})
            assert [e["kind"] for e in r.json()] == ["audio_paused"]
            await srv.services.store.flush()
            body = (await http.get("/api/bays/bay1/alarms")).json()
            kinds = [row["event"]["kind"] for row in body["log"]]
            assert "raised" in kinds and "acknowledged" in kinds and "audio_paused" in kinds
            assert all(a["acknowledged_by"] == "local" for a in body["active"] if a["acknowledged_at"])
            assert (await http.post("/api/bays/nope/alarms/acknowledge", json={})).status_code == 404
            assert (await http.post("/api/bays/bay1/phase", json={"phase": "teleport"})).status_code == 422

        # the acknowledgement reaches the screen too
        for _ in range(200):
            msg = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if msg["type"] == "alarms" and any(e["kind"] == "acknowledged" for e in msg["events"]):
                break
        else:
            raise AssertionError("acknowledgement never reached the websocket")
