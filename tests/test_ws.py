"""The websocket protocol against real uvicorn on port 0: snapshot, deltas, resume, subscriptions,
origin checks, bad input; plus the REST endpoints."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from app.wire import SERVER_MESSAGE
from tests.conftest import RunningServer, running_server, small_settings


async def recv(ws: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    text = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(text, str)
    SERVER_MESSAGE.validate_json(text)  # every frame is a valid envelope
    msg: dict[str, Any] = json.loads(text)
    return msg


async def recv_until(ws: ClientConnection, pred: Any, timeout: float = 5.0) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        msg = await recv(ws, max(0.01, end - loop.time()))
        got.append(msg)
        if pred(msg):
            return got


def subscribe(bays: list[str] | None, waves: str = "full", resume: dict[str, Any] | None = None) -> str:
    return json.dumps({"type": "subscribe", "bays": bays, "waves": waves, "resume": resume})


@pytest.fixture
async def server(tmp_path: Path) -> Any:
    async with running_server(small_settings(tmp_path, bays=2)) as srv:
        yield srv


async def test_snapshot_first_then_live_deltas(server: RunningServer) -> None:
    async with websockets.connect(server.ws, compression=None) as ws:
        await ws.send(subscribe(["bay1"]))
        hello = await recv(ws)
        assert hello["type"] == "hello" and hello["bays"] == ["bay1"] and hello["stale_after_s"] == 3.0
        snap = await recv(ws)
        assert snap["type"] == "snapshot" and [b["bay"] for b in snap["bays"]] == ["bay1"]
        got = await recv_until(ws, lambda m: m["type"] == "vitals")
        vitals = got[-1]
        assert vitals["bay"] == "bay1" and vitals["seq"] > snap["seq"]
        hr = {r["param"]: r for r in vitals["readings"]}["hr"]
        assert 40 <= hr["value"] <= 140 and hr["unit"] == "/min" and hr["quality"] == "valid"
        waves = [
            m
            for m in await recv_until(ws, lambda m: m["type"] == "wave" and m["channel"] == "co2")
            if m["type"] == "wave"
        ]
        assert {w["bay"] for w in waves} == {"bay1"} and not any(w["decimated"] for w in waves)
        ecg = [w for w in waves if w["channel"] == "ecg_ii"]
        assert ecg and ecg[0]["fs"] == 250


async def test_resume_after_gap_receives_missed_deltas(server: RunningServer) -> None:
    async with websockets.connect(server.ws, compression=None) as ws:
        await ws.send(subscribe(["bay1"], waves="none"))
        hello = await recv(ws)
        got = await recv_until(ws, lambda m: m["type"] == "vitals")
        last = max(m["seq"] for m in got if m["type"] != "heartbeat")
    await asyncio.sleep(1.5)  # the gap: vitals keep flowing while we are away
    published_since = server.services.hub.seq - last
    assert published_since > 0
    async with websockets.connect(server.ws, compression=None) as ws:
        await ws.send(subscribe(["bay1"], waves="none", resume={"epoch": hello["epoch"], "seq": last}))
        again = await recv(ws)
        assert again["type"] == "hello" and again["resumed"] is True
        nxt = await recv(ws)
        assert nxt["type"] != "snapshot"
        assert nxt["seq"] > last
        missed = [nxt] + await recv_until(ws, lambda m: m["type"] == "vitals" and m["seq"] > last + published_since)
        vitals = [m for m in missed if m["type"] == "vitals"]
        assert len(vitals) >= 1 and all(m["bay"] == "bay1" for m in vitals)
        seqs = [m["seq"] for m in missed if m["type"] != "heartbeat"]
        assert seqs == sorted(seqs)


async def test_resume_with_unknown_epoch_gets_snapshot(server: RunningServer) -> None:
    async with websockets.connect(server.ws, compression=None) as ws:
        await ws.send(subscribe(None, resume={"epoch": "old-server", "seq": 5}))
        hello = await recv(ws)
        assert hello["resumed"] is False
        assert (await recv(ws))["type"] == "snapshot"


async def test_station_subscription_gets_only_decimated_waves(server: RunningServer) -> None:
    async with websockets.connect(server.ws, compression=None) as ws:
        await ws.send(subscribe(None, waves="decimated"))
        msgs = await recv_until(ws, lambda m: False if m["type"] != "vitals" else m["bay"] == "bay2", timeout=5)
        msgs += await recv_until(ws, lambda m: m["type"] == "wave" and m["bay"] == "bay2")
        waves = [m for m in msgs if m["type"] == "wave"]
        assert waves and all(w["decimated"] and w["fs"] <= 25 for w in waves)
        assert {w["bay"] for w in waves} <= {"bay1", "bay2"}


async def test_foreign_origin_is_refused_same_origin_allowed(server: RunningServer) -> None:
    with pytest.raises(websockets.exceptions.InvalidStatus) as err:
        async with websockets.connect(server.ws, origin="http://evil.example"):  # type: ignore[arg-type]
            pass
    assert err.value.response.status_code == 403
    async with websockets.connect(server.ws, origin=server.http) as ws:  # type: ignore[arg-type]
        await ws.send(subscribe(["bay1"]))
        assert (await recv(ws))["type"] == "hello"


async def test_bad_messages_get_clear_errors_and_server_survives(server: RunningServer) -> None:
    async with websockets.connect(server.ws) as ws:
        await ws.send("{not json")
        err = await recv(ws)
        assert err["type"] == "error" and err["code"] == "bad_message" and err["fatal"] is True
    async with websockets.connect(server.ws) as ws:
        await ws.send(subscribe(["bay1", "bay99"]))
        msgs = [await recv(ws) for _ in range(3)]
        errors = [m for m in msgs if m["type"] == "error"]
        assert errors and "bay99" in errors[0]["message"]
        await ws.send(b"\xff\xfe garbage")
        await recv_until(ws, lambda m: m["type"] == "error" and m["code"] == "bad_message")
        await ws.send(subscribe(["bay2"], waves="none"))  # still usable: resubscribe works
        await recv_until(ws, lambda m: m["type"] == "snapshot" and m["bays"][0]["bay"] == "bay2")
    async with httpx.AsyncClient(base_url=server.http) as http:
        assert (await http.get("/healthz")).json()["status"] == "ok"


async def test_rest_endpoints(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        bays = (await http.get("/api/bays")).json()
        assert [b["bay"] for b in bays] == ["bay1", "bay2"]
        params = {p["key"]: p for p in (await http.get("/api/parameters")).json()}
        assert params["nibp_sys"]["unit_display"] == "mmHg" and params["hr"]["mdc_code"] == 147842
        assert (await http.get("/docs")).status_code == 200
        schema = (await http.get("/openapi.json")).json()
        assert "/api/bays" in schema["paths"]
        r = await http.post("/api/devices/dev1/simulation", json={"fault": "bogus"})
        assert r.status_code == 422
        r = await http.post("/api/devices/nope/simulation", json={"fault": "silent"})
        assert r.status_code == 404
        js = await http.get("/vendor/plotly.min.js")
        assert js.status_code == 200 and len(js.content) > 1_000_000
        index = await http.get("/")
        assert index.status_code == 200 and "Vigil" in index.text


async def test_fault_injection_makes_device_stale_in_stream(tmp_path: Path) -> None:
    settings = small_settings(tmp_path, bays=1, stale_after_s=0.5, offline_after_s=1.0)
    async with running_server(settings) as srv, websockets.connect(srv.ws) as ws:
        await ws.send(subscribe(["bay1"], waves="none"))
        await recv_until(ws, lambda m: m["type"] == "vitals")
        async with httpx.AsyncClient(base_url=srv.http) as http:
            r = await http.post("/api/devices/dev1/simulation", json={"fault": "silent"})
            assert r.status_code == 204
        got = await recv_until(ws, lambda m: m["type"] == "status" and m["device"]["state"] == "offline")
        states = [m["device"]["state"] for m in got if m["type"] == "status"]
        assert states[-2:] == ["stale", "offline"]
        async with httpx.AsyncClient(base_url=srv.http) as http:
            await http.post("/api/devices/dev1/simulation", json={"fault": "none"})
        await recv_until(ws, lambda m: m["type"] == "status" and m["device"]["state"] == "online")


# ---- batched framing (subscribe with batch: true) ---------------------------------------------------------


async def recv_frame(ws: ClientConnection, timeout: float = 5.0) -> list[dict[str, Any]]:
    """One frame of a batching client: a JSON array of valid envelopes, one per line."""
    text = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(text, str) and text.startswith("[") and text.endswith("]")
    lines = text[1:-1].split("\n")
    msgs: list[dict[str, Any]] = json.loads(text)
    assert len(lines) == len(msgs) >= 1  # one message per line: lean clients may split without parsing
    for line, msg in zip(lines, msgs, strict=True):
        SERVER_MESSAGE.validate_json(line.removesuffix(","))
        assert json.loads(line.removesuffix(",")) == msg
    return msgs


def stream(msgs: list[dict[str, Any]], after: int, upto: int) -> list[dict[str, Any]]:
    """The published messages (not hello, heartbeat or snapshot) with after < seq <= upto."""
    return [m for m in msgs if m["type"] not in ("hello", "heartbeat", "snapshot") and after < m["seq"] <= upto]


def batch_subscribe(bays: list[str] | None, waves: str = "full", resume: dict[str, Any] | None = None) -> str:
    return json.dumps({"type": "subscribe", "bays": bays, "waves": waves, "resume": resume, "batch": True})


async def test_batched_client_gets_the_same_messages_in_the_same_order(server: RunningServer) -> None:
    async with (
        websockets.connect(server.ws, compression=None) as plain,
        websockets.connect(server.ws, compression=None) as batched,
    ):
        await plain.send(subscribe(["bay1"]))
        await batched.send(batch_subscribe(["bay1"]))
        one: list[dict[str, Any]] = []
        many: list[dict[str, Any]] = []
        sizes: list[int] = []
        while not (one and one[-1]["type"] == "vitals" and len(stream(one, 0, 10**9)) > 40):
            one.append(await recv(plain))
        target = one[-1]["seq"]
        while not many or many[-1]["seq"] < target or many[-1]["type"] in ("hello", "heartbeat"):
            frame = await recv_frame(batched)
            sizes.append(len(frame))
            many.extend(frame)
        assert one[0]["type"] == many[0]["type"] == "hello"
        assert one[1]["type"] == many[1]["type"] == "snapshot"
        start = max(one[1]["seq"], many[1]["seq"])
        assert stream(many, start, target) == stream(one, start, target)  # same messages, same seq order
        assert {m["type"] for m in stream(many, start, target)} >= {"wave", "vitals"}
        assert max(sizes) > 1  # a tick's waves of three channels leave together


async def test_batched_client_resumes_after_a_gap(server: RunningServer) -> None:
    async with websockets.connect(server.ws, compression=None) as witness:  # connected all along, unbatched
        await witness.send(subscribe(["bay1"], waves="none"))
        seen = [await recv(witness), await recv(witness)]
        async with websockets.connect(server.ws, compression=None) as ws:
            await ws.send(batch_subscribe(["bay1"], waves="none"))
            got: list[dict[str, Any]] = []
            while not any(m["type"] == "vitals" for m in got):
                got.extend(await recv_frame(ws))
            hello = got[0]
            last = max(m["seq"] for m in got if m["type"] not in ("hello", "heartbeat"))
        await asyncio.sleep(1.5)  # vitals keep flowing while it is away
        async with websockets.connect(server.ws, compression=None) as ws:
            await ws.send(batch_subscribe(["bay1"], waves="none", resume={"epoch": hello["epoch"], "seq": last}))
            again = await recv_frame(ws)
            assert again[0]["type"] == "hello" and again[0]["resumed"] is True and again[0]["seq"] == last
            while len(stream(again, last, 10**9)) < 2:
                again.extend(await recv_frame(ws))
        assert not any(m["type"] == "snapshot" for m in again)
        upto = stream(again, last, 10**9)[-1]["seq"]
        while not seen or seen[-1]["type"] == "heartbeat" or seen[-1]["seq"] < upto:
            seen.append(await recv(witness))
        missed = stream(again, last, upto)
        assert missed and missed == stream(seen, last, upto)  # the gap, exactly as the witness saw it


async def test_resubscribe_can_switch_batching_off(server: RunningServer) -> None:
    async with websockets.connect(server.ws, compression=None) as ws:
        await ws.send(batch_subscribe(["bay1"], waves="none"))
        first = await recv_frame(ws)
        assert first[0]["type"] == "hello"
        await ws.send(subscribe(["bay1"], waves="none"))
        # frames already queued may still be batched; after the new hello, one message per frame
        while True:
            text = await asyncio.wait_for(ws.recv(), 5)
            assert isinstance(text, str)
            msgs = json.loads(text)
            if isinstance(msgs, dict) and msgs["type"] == "hello":
                break
        assert (await recv(ws))["type"] == "snapshot"
