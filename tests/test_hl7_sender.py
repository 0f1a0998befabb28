"""The HL7 device emulator: drives a bay end to end over MLLP, and behaves like a gateway on errors."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import websockets

from app.config import BayConfig, Hl7MllpMonitor
from monitors.adapters.simulated import SimulatedAdapter
from monitors.models import Reading
from monitors.protocols import ack, mllp, pcd01
from simulators.devices.hl7_sender import Hl7Sender
from simulators.physiology import CHANNELS, RestingPatient
from tests.conftest import running_server, small_settings
from tests.test_hl7_listener import hl7_port


async def test_emulator_drives_a_bay_through_the_real_listener(tmp_path: Path) -> None:
    base = small_settings(tmp_path, bays=0)
    settings = base.model_copy(
        update={
            "bays": [BayConfig(id="bay9", label="Bay 9")],
            "monitors": [Hl7MllpMonitor(name="hl7", port=0)],
            "locations": {"VIGIL^BAY9^1": "bay9"},
        }
    )
    async with running_server(settings) as srv:
        port = await hl7_port(srv)
        device = SimulatedAdapter(
            name="emu", device_id="0011223344556677", source=RestingPatient(5), channels=CHANNELS, nibp_first_s=0.5
        )
        sender = Hl7Sender("127.0.0.1", port, device_id="0011223344556677", location="VIGIL^BAY9^1")

        async def feed() -> None:
            async with device:
                await sender.run(device.readings())

        task = asyncio.create_task(feed(), name="test:emulator")
        try:
            async with websockets.connect(srv.ws) as ws:
                await ws.send(json.dumps({"type": "subscribe", "bays": ["bay9"], "waves": "full"}))
                params: set[str] = set()
                channels: set[str] = set()
                for _ in range(400):
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                    if msg["type"] == "vitals":
                        params |= {r["param"] for r in msg["readings"]}
                    elif msg["type"] == "wave":
                        channels.add(msg["channel"])
                    if {"hr", "spo2", "nibp_sys"} <= params and channels == set(CHANNELS):
                        break
                assert {"hr", "spo2", "rr", "etco2", "nibp_sys", "nibp_dia", "nibp_mean"} <= params
                assert channels == set(CHANNELS)
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert sender.stats.acked >= 1 and sender.stats.errors == 0 and sender.stats.sent - sender.stats.acked <= 1
        await srv.services.store.flush()
        assert await srv.services.store.count("raw_messages") >= sender.stats.acked


async def test_sender_resends_after_ar_timeout_and_disconnect() -> None:
    """A scripted receiver: first connection dropped, then AR, then silence (timeout), then AA."""
    seen: list[str] = []
    script = ["drop", "AR", "silent", "AA"]

    async def receiver(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        framer = mllp.MLLPFramer(1 << 20)
        while data := await reader.read(65536):
            for frame in framer.feed(data):
                assert isinstance(frame, bytes)
                control = pcd01.peek_control_id(frame)
                assert control is not None
                seen.append(control)
                step = script[len(seen) - 1] if len(seen) <= len(script) else "AA"
                if step == "drop":
                    writer.close()
                    return
                if step != "silent":
                    writer.write(mllp.frame(ack.build_ack(frame, step, now=pcd01_now())))  # type: ignore[arg-type]
                    await writer.drain()

    server = await asyncio.start_server(receiver, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sender = Hl7Sender(
        "127.0.0.1", port, device_id="0011223344556677", ack_timeout_s=0.3, backoff_initial_s=0.01, backoff_max_s=0.05
    )
    now = pcd01_now()
    reading = Reading(device_id="0011223344556677", param="hr", value=70, unit="/min", t_device=now, t_received=now)
    try:
        await asyncio.wait_for(sender.send_items([reading]), 10)
    finally:
        await sender.close()
        server.close()
    assert len(set(seen)) == 1 and len(seen) == 4  # the same message, resent until accepted
    assert (sender.stats.acked, sender.stats.rejected, sender.stats.resent) == (1, 1, 3)


def pcd01_now() -> datetime:
    return datetime.now(UTC)


def test_emulator_command_refuses_a_bad_target(capsys: pytest.CaptureFixture[str]) -> None:
    from simulators.devices.hl7_sender import main

    assert main(["--to", "http://127.0.0.1:2575"]) == 2
    assert "mllp://host:port" in capsys.readouterr().err


async def test_emulate_runs_a_scenario_into_the_listener(tmp_path: Path) -> None:
    from simulators.devices.hl7_sender import emulate

    base = small_settings(tmp_path, bays=0)
    settings = base.model_copy(
        update={
            "bays": [BayConfig(id="bay9", label="Bay 9")],
            "monitors": [Hl7MllpMonitor(name="hl7", port=0)],
            "locations": {"VIGIL^BAY9^1": "bay9"},
        }
    )
    async with running_server(settings) as srv:
        port = await hl7_port(srv)
        task = asyncio.create_task(
            emulate(f"mllp://127.0.0.1:{port}", scenario="hypertension", seed=3, location="VIGIL^BAY9^1", speed=30)
        )
        await asyncio.sleep(2.5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await srv.services.store.flush()
        readings = await srv.services.store.readings(bay="bay9", param="hr")
        assert len(readings) >= 2
