"""The serial adapter over real pseudo-terminals: each dialect, garbage, silence, a port that vanishes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from monitors.adapters.serial import SerialAdapter
from monitors.base import Batch, Item
from monitors.errors import ConfigurationError, LinkError
from monitors.models import DeviceAlarm, RawMessage, Reading, WaveformChunk
from monitors.protocols import keyvalue, masimo, nonin
from simulators.devices.serial_emulator import TcpSink
from tests.serial.ptys import NOW, Pty

Got = Item | Batch


def flat(got: list[Got]) -> list[Item]:
    return [it for g in got for it in (g.items if isinstance(g, Batch) else (g,))]


def readings(got: list[Got]) -> dict[str, list[float | None]]:
    out: dict[str, list[float | None]] = {}
    for it in flat(got):
        if isinstance(it, Reading):
            out.setdefault(it.param, []).append(it.value)
    return out


async def collect(adapter: SerialAdapter, done: Callable[[list[Got]], bool], timeout: float = 5.0) -> list[Got]:
    """Open the adapter, gather what it yields until ``done`` holds (or LinkError ends the stream)."""
    got: list[Got] = []
    async with asyncio.timeout(timeout), adapter:
        async for g in adapter.readings():
            got.append(g)
            if done(got):
                break
    return got


@pytest.fixture
def pty() -> Iterator[Pty]:
    p = Pty()
    yield p
    p.close()


def adapter(port: str, dialect: str, **kw: object) -> SerialAdapter:
    return SerialAdapter(name="ox", device_id="ox-1", port=port, dialect=dialect, **kw)  # type: ignore[arg-type]


async def test_masimo_line_over_a_pty(pty: Pty) -> None:
    a = adapter(pty.path, masimo.DIALECT)
    task = asyncio.create_task(collect(a, lambda g: len(readings(g).get("spo2", [])) >= 2))
    await asyncio.sleep(0.2)  # let the adapter open (it flushes what queued before)
    pty.write(masimo.encode_line(NOW, spo2=97, pr=78, pi=5.28))
    pty.write(masimo.encode_line(NOW, spo2=None, pr=None, conditions={"probe_off"}))
    got = await task
    assert readings(got) == {"spo2": [97.0, None], "pr": [78.0, None]}
    assert all(isinstance(g, Batch) for g in got)  # one Batch per report
    units = {it.param: it.unit for it in flat(got) if isinstance(it, Reading)}
    assert units == {"spo2": "%", "pr": "/min"}
    assert [(x.code, x.active) for x in flat(got) if isinstance(x, DeviceAlarm)] == [("SPO2_PROBE_OFF", True)]


async def test_nonin_frames_over_a_pty_give_pleth_numerics_and_status(pty: Pty) -> None:
    a = adapter(pty.path, nonin.DIALECT)
    enc = nonin.NoninDf2Encoder()
    task = asyncio.create_task(collect(a, lambda g: len(readings(g).get("spo2", [])) >= 3))
    await asyncio.sleep(0.2)
    enc.set_values(hr=64, spo2=98, conditions=set())
    pty.write(enc.frames([100] * 150))
    enc.set_values(hr=None, spo2=None, conditions={"no_sensor"})
    pty.write(enc.frames([0] * 76))
    got = await task
    assert readings(got) == {"spo2": [98.0, 98.0, None], "pr": [64.0, 64.0, None]}
    waves = [it for it in flat(got) if isinstance(it, WaveformChunk)]
    assert waves and {(w.channel, w.fs, w.unit) for w in waves} == {("pleth", 75.0, "1")}
    assert [(x.code, x.active) for x in flat(got) if isinstance(x, DeviceAlarm)] == [("SPO2_NO_SENSOR", True)]


async def test_keyvalue_over_a_pty(pty: Pty) -> None:
    a = adapter(pty.path, keyvalue.DIALECT)
    task = asyncio.create_task(collect(a, lambda g: any(isinstance(x, WaveformChunk) for x in flat(g))))
    await asyncio.sleep(0.2)
    pty.write(b"spo2=96 pr=70 rr=12 etco2=35\nwave=pleth fs=125 samples=1,2,3\n")
    got = await task
    assert readings(got) == {"spo2": [96.0], "pr": [70.0], "rr": [12.0], "etco2": [35.0]}


@pytest.mark.parametrize("dialect", [masimo.DIALECT, nonin.DIALECT, keyvalue.DIALECT])
async def test_garbage_is_kept_raw_and_the_next_report_decodes(pty: Pty, dialect: str) -> None:
    if dialect == masimo.DIALECT:
        good = masimo.encode_line(NOW, spo2=95, pr=66)
    elif dialect == nonin.DIALECT:
        enc = nonin.NoninDf2Encoder()
        enc.set_values(hr=66, spo2=95, conditions=set())
        good = enc.frames([50] * 76)  # one second and the next marker
    else:
        good = keyvalue.encode({"spo2": 95, "pr": 66})
    a = adapter(pty.path, dialect)
    task = asyncio.create_task(collect(a, lambda g: len(readings(g).get("spo2", [])) >= 2))
    await asyncio.sleep(0.2)
    pty.write(good)
    await asyncio.sleep(0.1)
    # a half frame/line, noise, then whole ones (key=value resynchronises at the next line end)
    pty.write(good[:7] + b"\x00\xff garbage \x13\x01\x81" + good + good)
    got = await task
    assert readings(got)["spo2"] == [95.0, 95.0]
    (raw,) = [it for it in flat(got) if isinstance(it, RawMessage)]
    assert (raw.protocol, raw.outcome, raw.device_id, raw.source) == ("serial", "discarded", "ox-1", pty.path)
    assert b"garbage" in raw.payload
    assert a.stats["garbage_bytes"] >= 16


async def test_silence_longer_than_idle_reopen_raises_link_error(pty: Pty) -> None:
    a = adapter(pty.path, masimo.DIALECT, idle_reopen_s=0.3)
    with pytest.raises(LinkError, match="no bytes"):
        await collect(a, lambda g: False)


async def test_port_vanishes_and_comes_back(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """USB adapter pulled and plugged back: LinkError while gone, data again once the link points at a port."""
    link = tmp_path / "ttyPULSEOX"
    first = Pty()
    first.link_to(link)
    a = adapter(str(link), masimo.DIALECT)
    caplog.set_level(logging.INFO, logger="monitors.adapters.serial")
    line = masimo.encode_line(NOW, spo2=97, pr=80)

    async def writer(p: Pty) -> None:
        with contextlib.suppress(OSError):
            while not p.closed:
                p.write(line)
                await asyncio.sleep(0.05)

    w1 = asyncio.create_task(writer(first))
    got = await collect(a, lambda g: bool(readings(g)))
    assert readings(got)["spo2"][0] == 97

    # pulled: the read fails (EIO / end of file) ...
    task = asyncio.create_task(collect(a, lambda g: False))
    await asyncio.sleep(0.2)
    first.close()
    link.unlink()
    with pytest.raises(LinkError, match=r"read failed|port closed"):
        await task
    w1.cancel()
    # ... and reopening fails while it is gone ...
    with pytest.raises(LinkError, match="cannot open"):
        await a.open()
    await a.close()
    # ... and works again once it is back (a new pty behind the same path).
    second = Pty()
    second.link_to(link)
    w2 = asyncio.create_task(writer(second))
    try:
        got = await collect(a, lambda g: bool(readings(g)))
        assert readings(got)["spo2"][0] == 97
    finally:
        w2.cancel()
        second.close()
    messages = [r.getMessage() for r in caplog.records]
    assert sum(" opened (" in m for m in messages) == 1 and sum(" reopened (" in m for m in messages) == 1


async def test_socket_url_reads_from_a_terminal_server() -> None:
    sink = TcpSink("127.0.0.1", 0)
    await sink.open()
    try:
        a = adapter(f"socket://127.0.0.1:{sink.port}", keyvalue.DIALECT)

        async def feed() -> None:
            while True:
                await sink.write(keyvalue.encode({"spo2": 94, "pr": 71}))
                await asyncio.sleep(0.05)

        f = asyncio.create_task(feed())
        try:
            got = await collect(a, lambda g: bool(readings(g)))
        finally:
            f.cancel()
        assert readings(got)["spo2"][0] == 94
    finally:
        await sink.close()


def test_bad_settings_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="unknown serial dialect"):
        adapter("/dev/null", "philips-vuelink")
    with pytest.raises(ConfigurationError, match="framing"):
        adapter("/dev/null", masimo.DIALECT, parity="X")
    with pytest.raises(ConfigurationError):
        adapter("/dev/null", masimo.DIALECT, baudrate=0)


async def test_unusable_url_is_a_configuration_error() -> None:
    a = adapter("nosuchscheme://x", masimo.DIALECT)
    with pytest.raises(ConfigurationError):
        await a.open()
    await a.close()
