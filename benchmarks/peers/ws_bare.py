"""The bare peer for fan-out: a plain ``websockets`` server that broadcasts the same frames Vigil sends.

It runs the same simulated monitors as the Vigil server under test (same scenario, seeds and offsets, so the
same chunk cadence, sample values and device times), turns their items into the same JSON messages (same
keys, same sizes: waves at full rate and, through the same peak-preserving decimator, at ≤ 25 Hz; vitals per
batch of readings; device alarms; an ``alarms`` message 10 s after a technical condition starts, as the
profile's technical rules do) and sends each message, encoded once, with ``websockets.broadcast`` to the
connections whose subscription wants it: bedside connections get their bay's full-rate waves, stations only
the decimated waves of their bays. No store, no alarm engine, no per-client queues, no flow control: the
ceiling for fan-out in Python.

Run: ``python -m benchmarks.peers.ws_bare --spec FILE`` — prints ``PORT <n>`` once listening. ``GET
/api/stats`` answers the same counters as Vigil's route (published messages by type and per bay); ``GET
/fault?device=ID&on=1|0`` and ``GET /ack?bay=B`` stand in for Vigil's fault injection and acknowledge routes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.http11 import Request, Response

from app.decimate import Decimator
from monitors.adapters.simulated import SimulatedAdapter
from monitors.base import Batch
from monitors.models import DeviceAlarm, Reading, WaveformChunk
from simulators.patient import SimulatedPatient
from simulators.physiology import CHANNELS
from simulators.scenario import load_scenario

#: Technical device conditions that Vigil's default profile turns into an alarm after 10 s (rows T1, T3, T4).
DELAYED = {"SPO2_PROBE_OFF": "spo2_probe_off", "ECG_LEADS_OFF": "ecg_leads_off", "CO2_LINE": "co2_line"}
DELAY_S = 10.0
#: A silenced device: "stale" after Vigil's default stale_after_s, then the NO DATA alarm (row T6) 10 s later.
STALE_S = 3.0


def _dumps(d: dict[str, Any]) -> str:
    return json.dumps(d, separators=(",", ":"))


class BarePeer:
    """Subscriptions by bay, a seq counter and the broadcast."""

    def __init__(self, bays: list[str]) -> None:
        self.epoch = uuid.uuid4().hex[:12]
        self.seq = 0
        self.bays = bays
        self.full: dict[str, set[ServerConnection]] = {b: set() for b in bays}
        self.dec: dict[str, set[ServerConnection]] = {b: set() for b in bays}
        self.any: dict[str, set[ServerConnection]] = {b: set() for b in bays}
        self.by_type: dict[str, int] = {}
        self.reliable_by_bay: dict[str, dict[str, int]] = {}
        self.sent = 0
        self.decimator = Decimator(25.0)
        self.silent: dict[str, list[asyncio.TimerHandle]] = {}  # bay -> pending stale/alarm timers
        self.devices: dict[str, str] = {}  # device id -> bay

    def fault(self, device_id: str, on: bool) -> None:
        """Like Vigil's training fault injection: a silent device goes stale, then raises NO DATA."""
        bay = self.devices.get(device_id)
        if bay is None:
            return
        loop = asyncio.get_running_loop()
        if on and bay not in self.silent:
            self.silent[bay] = [
                loop.call_later(STALE_S, self.status, bay, device_id, "stale"),
                loop.call_later(STALE_S + DELAY_S, self.alarm, bay, "no_data", "NO DATA - CHECK PATIENT", "raised"),
            ]
        elif not on and bay in self.silent:
            for h in self.silent.pop(bay):
                h.cancel()
            self.status(bay, device_id, "online")

    def acknowledge(self, bay: str) -> None:
        """The latched alarm is acknowledged: an ``alarms`` message with the event and an empty list."""
        if bay in self.any:
            self.alarm(bay, "no_data", "NO DATA - CHECK PATIENT", "acknowledged")

    def publish(self, bay: str, kind: str, body: dict[str, Any], to: set[ServerConnection]) -> None:
        """Stamp, encode once, broadcast."""
        self.seq += 1
        text = _dumps({"v": 1, "seq": self.seq, "t": time.time(), "type": kind, **body})
        self.by_type[kind] = self.by_type.get(kind, 0) + 1
        if kind in ("status", "device_alarm", "alarms"):
            per = self.reliable_by_bay.setdefault(bay, {})
            per[kind] = per.get(kind, 0) + 1
        if to:
            broadcast(to, text)
            self.sent += len(to)

    def wave(self, bay: str, w: WaveformChunk) -> None:
        """Full-rate to bedside subscribers, decimated (when a block is ready) to stations."""
        t0 = w.t0.timestamp()
        base = {"bay": bay, "device_id": w.device_id, "channel": w.channel}
        self.publish(
            bay,
            "wave",
            {**base, "t0": t0, "fs": w.fs, "gain": w.gain, "unit": w.unit, "samples": list(w.samples)}
            | {"decimated": False},
            self.full[bay],
        )
        dec = self.decimator.feed((w.device_id, w.channel), t0, w.fs, w.samples)
        if dec is not None:
            d_t0, d_fs, d_samples = dec
            self.publish(
                bay,
                "wave",
                {**base, "t0": d_t0, "fs": d_fs, "gain": w.gain, "unit": w.unit, "samples": d_samples}
                | {"decimated": True},
                self.dec[bay],
            )

    def vitals(self, bay: str, device_id: str, readings: list[Reading]) -> None:
        """One message per batch of readings, as Vigil's pipeline groups them."""
        out = [
            {
                "param": r.param,
                "value": r.value,
                "unit": r.unit,
                "quality": r.quality.value,
                "t": r.t_device.timestamp(),
                "tr": r.t_received.timestamp(),
                "device_id": r.device_id,
            }
            for r in readings
        ]
        self.publish(bay, "vitals", {"bay": bay, "device_id": device_id, "readings": out}, self.any[bay])

    def device_alarm(self, bay: str, a: DeviceAlarm) -> None:
        """The device's own alarm, and Vigil's technical alarm 10 s later (or its end at once)."""
        self.publish(
            bay,
            "device_alarm",
            {
                "bay": bay,
                "alarm": {
                    "device_id": a.device_id,
                    "code": a.code,
                    "priority": a.priority.value,
                    "alarm_kind": a.alarm_kind.value,
                    "text": a.text,
                    "t": a.t.timestamp(),
                    "active": a.active,
                },
            },
            self.any[bay],
        )
        rule = DELAYED.get(a.code)
        if rule is None:
            return
        if a.active:
            asyncio.get_running_loop().call_later(DELAY_S, self.alarm, bay, rule, a.text, "raised")
        else:
            self.alarm(bay, rule, a.text, "cleared")

    def alarm(self, bay: str, rule: str, text: str, kind: str) -> None:
        """An ``alarms`` message shaped like Vigil's (one event, the active list)."""
        now = time.time()
        alarm_id = f"{bay}-{rule}-{int(now)}"
        event = {
            "kind": kind,
            "t": now,
            "rule_id": rule,
            "alarm_id": alarm_id,
            "priority": "medium",
            "previous_priority": None,
            "text": text,
            "values": {},
            "user": None,
            "notify": None,
            "due": None,
            "time_to_ack_s": None,
        }
        active = [
            {
                "alarm_id": alarm_id,
                "rule_id": rule,
                "row": "T1",
                "priority": "medium",
                "category": "technical",
                "text": text,
                "values": {},
                "raised_at": now,
                "priority_since": now,
                "condition_active": True,
                "latched": False,
                "acknowledged_at": None,
                "acknowledged_by": None,
            }
        ]
        body = {
            "bay": bay,
            "events": [event],
            "active": active if kind == "raised" else [],
            "audio_paused_until": None,
            "phase": "infusion",
        }
        self.publish(bay, "alarms", body, self.any[bay])

    def status(self, bay: str, device_id: str, state: str = "online") -> None:
        """The device's connection state changed."""
        device = {
            "device_id": device_id,
            "state": state,
            "since": time.time(),
            "detail": "receiving data" if state == "online" else "no data for 3 s",
            "last_data": None,
        }
        self.publish(bay, "status", {"bay": bay, "device": device}, self.any[bay])

    async def handler(self, ws: ServerConnection) -> None:
        """subscribe → hello + snapshot → live frames until the client goes."""
        sub = json.loads(await ws.recv())
        bays = [b for b in (sub.get("bays") or self.bays) if b in self.full]
        waves = sub.get("waves", "full")
        now = time.time()
        hello = {"v": 1, "seq": self.seq, "t": now, "type": "hello", "epoch": self.epoch, "resumed": False}
        await ws.send(_dumps(hello | {"stale_after_s": 3.0, "offline_after_s": 10.0, "bays": bays, "waves": waves}))
        snapshot = {"v": 1, "seq": self.seq, "t": now, "type": "snapshot", "reason": "connect"}
        await ws.send(_dumps(snapshot | {"bays": [{"bay": b} for b in bays]}))
        lanes = [self.any[b] for b in bays]
        if waves == "full":
            lanes += [self.full[b] for b in bays]
        elif waves == "decimated":
            lanes += [self.dec[b] for b in bays]
        for lane in lanes:
            lane.add(ws)
        try:
            await ws.wait_closed()
        finally:
            for lane in lanes:
                lane.discard(ws)

    def stats(self) -> dict[str, Any]:
        """The same counters as Vigil's ``GET /api/stats``."""
        return {
            "epoch": self.epoch,
            "seq": self.seq,
            "clients": len({c for s in self.any.values() for c in s}),
            "published": self.seq,
            "by_type": dict(self.by_type),
            "reliable_by_bay": {b: dict(c) for b, c in self.reliable_by_bay.items()},
            "sent": self.sent,
            "waves_dropped": 0,
            "vitals_conflated": 0,
            "resyncs": 0,
        }


async def run_monitor(peer: BarePeer, m: dict[str, Any]) -> None:
    """One simulated monitor, configured like Vigil's ``SimulatedMonitor``, feeding the peer."""
    adapter = SimulatedAdapter(
        name=m["name"],
        device_id=m["device_id"],
        source=SimulatedPatient(load_scenario(m["scenario"]), seed=m["seed"]),
        channels=CHANNELS,
        nibp_first_s=m.get("nibp_first_s", 5.0),
        offset_s=m.get("offset_min", 0.0) * 60.0,
    )
    bay = m["bay"]
    peer.devices[adapter.device_id] = bay
    online = False
    async with adapter:
        async for got in adapter.readings():
            if bay in peer.silent:
                continue
            items = got.items if isinstance(got, Batch) else (got,)
            if not online:
                peer.status(bay, adapter.device_id)
                online = True
            readings = [it for it in items if isinstance(it, Reading)]
            for it in items:
                if isinstance(it, WaveformChunk):
                    peer.wave(bay, it)
                elif isinstance(it, DeviceAlarm):
                    peer.device_alarm(bay, it)
            if readings:
                peer.vitals(bay, adapter.device_id, readings)


async def main_async(spec: dict[str, Any]) -> None:
    """Serve until killed."""
    monitors: list[dict[str, Any]] = spec["monitors"]
    peer = BarePeer([m["bay"] for m in monitors])

    def process_request(conn: ServerConnection, request: Request) -> Response | Awaitable[Response | None] | None:
        url = urlsplit(request.path)
        query = dict(parse_qsl(url.query))
        if url.path == "/api/stats":
            return conn.respond(200, json.dumps(peer.stats()) + "\n")
        if url.path == "/fault":  # GET only (a websockets server answers no other method)
            peer.fault(query.get("device", ""), query.get("on") == "1")
            return conn.respond(200, "ok\n")
        if url.path == "/ack":
            peer.acknowledge(query.get("bay", ""))
            return conn.respond(200, "ok\n")
        return None

    handler: Callable[[ServerConnection], Awaitable[None]] = peer.handler
    async with serve(
        handler, "127.0.0.1", 0, compression=None, max_size=1 << 20, process_request=process_request
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        print("PORT", port, flush=True)
        async with asyncio.TaskGroup() as tg:
            for m in monitors:
                tg.create_task(run_monitor(peer, m))


def main() -> None:
    """Entry point: ``--spec FILE`` (the harness's monitor list), ``--uvloop``."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", type=Path, required=True)
    ap.add_argument("--uvloop", action="store_true")
    args = ap.parse_args()
    spec = json.loads(args.spec.read_text())
    try:
        if args.uvloop:
            import uvloop

            uvloop.run(main_async(spec))
        else:
            asyncio.run(main_async(spec))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
