"""The recordings and replay API over a real server (uvicorn on port 0, the recorded session's SQLite file):
list, timeline, replay lifecycle, the replay websocket, and bad input."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.asyncio.client import ClientConnection

from app.recording.load import load_recording
from app.wire import SERVER_MESSAGE
from tests.conftest import RecordedSession, RunningServer, running_server, small_settings


@pytest.fixture(scope="session")
def recorded(recorded_session: RecordedSession) -> tuple[Path, str]:
    return recorded_session.db, recorded_session.session_id


@pytest.fixture
async def server(tmp_path: Path, recorded_session: RecordedSession) -> Any:
    """A server with no monitors on a copy of the recorded session's database."""
    db = recorded_session.copy_to(tmp_path / "vigil.sqlite3")
    async with running_server(small_settings(tmp_path, bays=2, monitors=[], db_path=db)) as srv:
        yield srv


async def recv(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    text = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(text, str)
    SERVER_MESSAGE.validate_json(text)
    msg: dict[str, Any] = json.loads(text)
    return msg


async def recv_until(ws: ClientConnection, pred: Any, timeout: float = 10.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        msg = await recv(ws, max(0.01, end - loop.time()))
        if pred(msg):
            return msg


async def _drain(ws: ClientConnection) -> None:
    """Read until the server closes the connection."""
    while True:
        await recv(ws)


def _subscribe(bays: list[str] | None = None, waves: str = "full") -> str:
    return json.dumps({"type": "subscribe", "bays": bays, "waves": waves})


async def test_list_and_timeline(server: RunningServer, recorded: tuple[Path, str]) -> None:
    sid = recorded[1]
    rec = await load_recording(server.services.store, sid)
    async with httpx.AsyncClient(base_url=server.http) as http:
        listing = (await http.get("/api/recordings")).json()
        (row,) = [r for r in listing if r["session_id"] == sid]
        assert row["patient_name"] == rec.patient.name and row["bay"] == "bay1" and row["final"] is True
        assert row["start"] == rec.start.timestamp() and row["end"] == rec.end.timestamp()
        assert row["phase"] == "discharged"

        r = await http.get(f"/api/recordings/{sid}/timeline")
        assert r.status_code == 200
        tl = r.json()
    assert tl["patient"]["name"] == rec.patient.name and tl["patient"]["identifier"] == rec.patient.identifier
    assert tl["patient"]["birth_date"] == rec.patient.birth_date.isoformat() and tl["patient"]["weight_kg"] > 0
    assert (tl["bay"], tl["start"], tl["end"], tl["final"]) == (
        "bay1",
        rec.start.timestamp(),
        rec.end.timestamp(),
        True,
    )
    phases = [p["phase"] for p in tl["phases"]]
    assert phases[0] == "planned" and phases[-1] == "discharged"
    assert {"baseline", "infusion", "recovery"} <= set(phases)
    assert all(p["start"] <= p["end"] for p in tl["phases"])
    assert all(a["end"] == b["start"] for a, b in zip(tl["phases"], tl["phases"][1:], strict=False))
    # every numeric, columnar, nothing lost: as many points as recorded readings
    assert {"hr", "spo2", "rr", "etco2"} <= set(tl["series"])
    assert sum(len(s["t"]) for s in tl["series"].values()) == len(rec.readings)
    hr = tl["series"]["hr"]
    assert hr["unit"] == "/min" and hr["label"] and len(hr["t"]) == len(hr["v"]) > 60
    assert hr["t"] == sorted(hr["t"])
    invalid = [r for r in rec.readings if r.quality.value == "invalid"]
    nulls = sum(v is None for s in tl["series"].values() for v in s["v"])
    assert nulls >= len(invalid)
    # alarm events in order, chart entries and pump events
    assert [(e["kind"], e["t"]) for e in tl["alarms"]] == [(e.kind.value, e.t.timestamp()) for e in rec.alarm_events]
    kinds = {c["kind"] for c in tl["chart"]}
    assert {"sedation", "pain", "side_effects", "assessment"} <= kinds
    assert any(c["text"].startswith("MOAA/S") for c in tl["chart"])
    assert [p["action"] for p in tl["pump"]][:1] == ["start"] and tl["pump"][-1]["action"] == "stop"


async def test_replay_lifecycle_over_websocket(server: RunningServer, recorded: tuple[Path, str]) -> None:
    sid = recorded[1]
    rec = await load_recording(server.services.store, sid)
    first_alarm = next(e for e in rec.alarm_events if e.kind.value == "raised")
    async with httpx.AsyncClient(base_url=server.http) as http:
        r = await http.post("/api/replays", json={"session_id": sid})
        assert r.status_code == 201, r.text
        out = r.json()
        rid = out["replay_id"]
        assert out["ws"] == f"/ws/replay/{rid}" and out["state"] == "paused" and out["speed"] == 1.0
        assert (out["start"], out["end"], out["position"]) == (rec.start.timestamp(), rec.end.timestamp(), out["start"])
        assert out["bay"] == "bay1" and out["label"] == "REPLAY · Bay 1"

        async with websockets.connect(server.ws.removesuffix("/ws") + out["ws"], compression=None) as ws:
            await ws.send(_subscribe(["bay1"]))
            hello = await recv(ws)
            assert hello["type"] == "hello" and hello["replay"] is True and hello["bays"] == ["bay1"]
            snap = await recv(ws)
            assert snap["type"] == "snapshot" and snap["bays"][0]["label"] == "REPLAY · Bay 1"
            state = await recv_until(ws, lambda m: m["type"] == "replay")
            assert state["state"] == "paused" and state["session_id"] == sid and state["replay_id"] == rid

            # jump to the first alarm: a fresh snapshot that shows it
            t = first_alarm.t.timestamp() + 0.5
            r = await http.post(f"/api/replays/{rid}/control", json={"action": "seek", "t": t})
            assert r.status_code == 200 and r.json()["position"] == t
            snap = await recv_until(ws, lambda m: m["type"] == "snapshot")
            assert snap["reason"] == "seek"
            assert first_alarm.alarm_id in {a["alarm_id"] for a in snap["bays"][0]["alarms"]}

            # play at 10x: data flows, stamped with recorded time after t
            r = await http.post(f"/api/replays/{rid}/control", json={"action": "speed", "speed": 10})
            assert r.json()["speed"] == 10
            r = await http.post(f"/api/replays/{rid}/control", json={"action": "play"})
            assert r.json()["state"] == "playing"
            vitals = await recv_until(ws, lambda m: m["type"] == "vitals")
            assert vitals["bay"] == "bay1" and vitals["t"] > t and vitals["seq"] > snap["seq"]
            wave = await recv_until(ws, lambda m: m["type"] == "wave")
            assert wave["channel"] in ("ecg_ii", "pleth", "co2") and not wave["decimated"]
            playing = await recv_until(ws, lambda m: m["type"] == "replay" and m["position"] > t + 5)
            assert playing["state"] == "playing" and playing["speed"] == 10

            r = await http.post(f"/api/replays/{rid}/control", json={"action": "pause"})
            paused_at = r.json()["position"]
            assert r.json()["state"] == "paused" and paused_at > t
            got = (await http.get(f"/api/replays/{rid}")).json()
            assert got["state"] == "paused" and got["position"] == paused_at

            # closing the replay disconnects its clients
            assert (await http.delete(f"/api/replays/{rid}")).status_code == 204
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await _drain(ws)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
        assert (await http.get(f"/api/replays/{rid}")).status_code == 404


async def test_replay_never_reaches_the_live_stream(server: RunningServer, recorded: tuple[Path, str]) -> None:
    async with httpx.AsyncClient(base_url=server.http) as http:
        out = (await http.post("/api/replays", json={"session_id": recorded[1], "speed": 60, "play": True})).json()
        assert out["state"] == "playing"
    async with websockets.connect(server.ws, compression=None) as live:
        await live.send(_subscribe(None))
        hello = await recv(live)
        assert hello["replay"] is False
        snap = await recv(live)
        assert all(not b["label"].startswith("REPLAY") and not b["vitals"] for b in snap["bays"])
        await asyncio.sleep(1.5)  # the replay plays 90 s of recording meanwhile, on its own hub
        while True:  # no monitor is configured here: any numerics or waveform would have leaked from the replay
            try:
                msg = await recv(live, timeout=0.2)
            except TimeoutError:
                break
            assert msg["type"] not in ("vitals", "wave", "snapshot") and msg.get("bay") != "bay1", msg
    assert not {"vitals", "wave"} & set(server.services.hub.stats.by_type)
    player = server.services.replays.get(out["replay_id"]) if server.services.replays else None
    assert player is not None and player.hub.stats.by_type["vitals"] > 10 and player.hub is not server.services.hub


async def test_bad_input(server: RunningServer, recorded: tuple[Path, str]) -> None:
    sid = recorded[1]
    async with httpx.AsyncClient(base_url=server.http) as http:
        r = await http.get("/api/recordings/nope/timeline")
        assert r.status_code == 404 and r.json()["detail"]["code"] == "no_such_session"
        r = await http.post("/api/replays", json={"session_id": "nope"})
        assert r.status_code == 404 and r.json()["detail"]["code"] == "no_such_session"
        for bad in ({"session_id": sid, "speed": 0}, {"session_id": sid, "speed": 61}, {"session_id": ""}, {}):
            assert (await http.post("/api/replays", json=bad)).status_code == 422, bad
        r = await http.post("/api/replays", json={"session_id": sid, "position": 1.0})
        assert r.status_code == 422 and r.json()["detail"]["code"] == "bad_position"
        rid = (await http.post("/api/replays", json={"session_id": sid})).json()["replay_id"]
        control = f"/api/replays/{rid}/control"
        for body, code in (
            ({"action": "seek"}, "missing_t"),
            ({"action": "speed"}, "missing_speed"),
            ({"action": "seek", "t": 0}, "bad_position"),
        ):
            r = await http.post(control, json=body)
            assert r.status_code == 422 and r.json()["detail"]["code"] == code, body
        for body2 in ({"action": "speed", "speed": 0.5}, {"action": "speed", "speed": 100}, {"action": "rewind"}):
            assert (await http.post(control, json=body2)).status_code == 422, body2
        r = await http.post("/api/replays/nope/control", json={"action": "play"})
        assert r.status_code == 404 and r.json()["detail"]["code"] == "no_such_replay"
        assert (await http.delete("/api/replays/nope")).status_code == 404
        assert (await http.get("/api/replays/nope")).status_code == 404
    async with websockets.connect(server.ws + "/replay/nope", compression=None) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await recv(ws)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert "nope" in closed.value.rcvd.reason
