"""The serial emulator: a simulated patient on a pty in each dialect, faults injected, read back by the adapter."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import websockets

from app.config import BayConfig, SerialMonitor
from monitors.adapters.serial import SerialAdapter
from monitors.adapters.simulated import SimulatedAdapter
from monitors.base import Batch, Item
from monitors.models import DeviceAlarm, RawMessage, Reading, WaveformChunk
from monitors.protocols import keyvalue, masimo, nonin
from simulators.devices import serial_emulator
from simulators.devices.serial_emulator import PtySink, SerialEmulator
from simulators.physiology import CHANNELS, RestingPatient
from tests.conftest import REPO, running_server, small_settings

Got = Item | Batch


def flat(got: list[Got]) -> list[Item]:
    return [it for g in got for it in (g.items if isinstance(g, Batch) else (g,))]


class Rig:
    """An emulator writing a resting patient to a pty, and a serial adapter reading it."""

    def __init__(self, dialect: str, channels: dict[str, tuple[float, float]] | None = None) -> None:
        self.sink = PtySink()
        self.emu = SerialEmulator(self.sink, dialect, seed=3)
        self.device = SimulatedAdapter(
            name="sim", device_id="sim", source=RestingPatient(3), channels=channels or {"pleth": CHANNELS["pleth"]}
        )
        self.dialect = dialect
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Rig:
        await self.sink.open()

        async def run() -> None:
            async with self.device:
                await self.emu.run(self.device.readings())

        self.task = asyncio.create_task(run(), name="test:serial-emulator")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.task is not None
        self.task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self.task
        await self.sink.close()

    def adapter(self) -> SerialAdapter:
        return SerialAdapter(name="ox", device_id="ox-1", port=self.sink.slave_name, dialect=self.dialect)


async def read_until(a: SerialAdapter, done: Callable[[list[Item]], bool], timeout: float = 8.0) -> list[Item]:
    items: list[Item] = []
    async with asyncio.timeout(timeout), a:
        async for g in a.readings():
            items += flat([g])
            if done(items):
                return items
    return items


def spo2(items: list[Item]) -> list[float | None]:
    return [it.value for it in items if isinstance(it, Reading) and it.param == "spo2"]


@pytest.mark.parametrize("dialect", [masimo.DIALECT, nonin.DIALECT, keyvalue.DIALECT])
async def test_emulator_speaks_each_dialect(dialect: str) -> None:
    async with Rig(dialect) as rig:
        items = await read_until(rig.adapter(), lambda its: len(spo2(its)) >= 2)
    values = [v for v in spo2(items) if v is not None]
    assert values and all(90 <= v <= 100 for v in values)
    prs = [it.value for it in items if isinstance(it, Reading) and it.param == "pr" and it.value is not None]
    assert prs and all(40 <= v <= 120 for v in prs)
    if dialect != masimo.DIALECT:  # ASCII 1 carries no waveform
        assert any(isinstance(it, WaveformChunk) and it.channel == "pleth" for it in items)


async def test_injected_garbage_drop_and_sensor_off() -> None:
    async with Rig(nonin.DIALECT) as rig, asyncio.timeout(15):
        a = rig.adapter()
        async with a:
            stream = a.readings()

            async def until(done: Callable[[list[Item]], bool]) -> list[Item]:
                items: list[Item] = []
                async for g in stream:
                    items += flat([g])
                    if done(items):
                        break
                return items

            await until(lambda its: len(spo2(its)) >= 1)
            rig.emu.inject("garbage")
            rig.emu.inject("drop")
            items = await until(lambda its: len(spo2(its)) >= 2)
            assert rig.emu.stats.garbage_bursts == 1 and rig.emu.stats.bytes_dropped == 1
            assert any(isinstance(it, RawMessage) for it in items)
            assert a.stats["garbage_bytes"] > 0
            rig.emu.set_fault("sensor-off", True)
            items = await until(lambda its: any(isinstance(x, DeviceAlarm) and x.active for x in its))
            alarm = next(x for x in items if isinstance(x, DeviceAlarm))
            assert (alarm.code, alarm.priority.value) == ("SPO2_PROBE_OFF", "medium")
            assert spo2(items)[-1] is None
            rig.emu.set_fault("sensor-off", False)
            items = await until(lambda its: any(isinstance(x, DeviceAlarm) and not x.active for x in its))
            assert spo2(items)[-1] is not None


def test_cli_rejects_a_bad_target(capsys: pytest.CaptureFixture[str]) -> None:
    assert serial_emulator.main(["--to", "ftp://x", "--dialect", "nonin-df2"]) == 2
    assert "expected pty" in capsys.readouterr().err


async def test_cli_on_a_pty_link(tmp_path: Path) -> None:
    link = tmp_path / "ttyEMU"
    cmd = [sys.executable, "-m", "simulators.devices.serial_emulator", "--to", f"pty://{link}", "--dialect"]
    proc = await asyncio.create_subprocess_exec(
        *cmd, "masimo-ascii1", cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        assert proc.stdout is not None
        banner = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
        assert str(link) in banner and "/dev/pts/" in banner
        a = SerialAdapter(name="ox", device_id="ox-1", port=str(link), dialect=masimo.DIALECT)
        items = await read_until(a, lambda its: len(spo2(its)) >= 1)
        assert spo2(items)[0] is not None
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 10)
    assert not link.is_symlink()  # SIGTERM cleans up the link


async def test_a_bay_shows_a_serial_monitor_end_to_end(tmp_path: Path) -> None:
    """Server with a serial monitor on a pty fed by the emulator: spo2/pr and pleth reach the websocket."""
    async with Rig(nonin.DIALECT) as rig:
        base = small_settings(tmp_path, bays=0)
        settings = base.model_copy(
            update={
                "bays": [BayConfig(id="bay7", label="Bay 7")],
                "monitors": [
                    SerialMonitor(
                        name="pulseox", device_id="nonin-1", bay="bay7", port=rig.sink.slave_name, dialect="nonin-df2"
                    )
                ],
            }
        )
        async with running_server(settings) as srv, websockets.connect(srv.ws) as ws:
            await ws.send(json.dumps({"type": "subscribe", "bays": ["bay7"], "waves": "full"}))
            params: set[str] = set()
            channels: set[str] = set()
            states: list[str] = []
            for _ in range(400):
                msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if msg["type"] == "vitals":
                    assert msg["device_id"] == "nonin-1"
                    params |= {r["param"] for r in msg["readings"] if r["value"] is not None}
                elif msg["type"] == "wave":
                    channels.add(msg["channel"])
                elif msg["type"] == "status":
                    states.append(msg["device"]["state"])
                if {"spo2", "pr"} <= params and "pleth" in channels:
                    break
            assert {"spo2", "pr"} <= params and "pleth" in channels
            assert "online" in states
            described = srv.services.supervisor.adapters["pulseox"].describe()
            assert described["dialect"] == "nonin-df2"
