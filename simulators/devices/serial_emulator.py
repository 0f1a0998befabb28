"""A serial monitor emulator: a simulated patient written to a pty, a serial port or TCP in a real dialect.

It runs a simulated monitor (``monitors.adapters.simulated.SimulatedAdapter``) and encodes its item stream
with the sans-I/O encoders of ``monitors.protocols``:

- ``masimo-ascii1``: one text line per numerics report (1 Hz): SpO2, pulse rate, EXC bits for the
  technical conditions (no waveform: ASCII 1 has none);
- ``nonin-df2``: 75 frames/s of 5 bytes, pleth resampled from the simulator's 125 Hz and scaled to 0–255,
  HR/SpO2 and status bits by packet position;
- ``keyvalue``: one ``key=value`` line per report (every numeric, NIBP, ``cond=``) and ``wave=`` lines for
  every waveform channel.

Targets: ``pty`` (or ``pty:///path/link``): create a pseudo-terminal, print its slave path (and keep a
symlink to it); ``serial:///dev/ttyX``: write to an existing port (the other end of a socat pair, or a real
port through a null-modem cable); ``tcp://host:port``: listen like a serial device server, every client
gets the stream (point Vigil at ``socket://host:port``).

Faults (``--fault``, repeatable, each every ``--fault-every`` seconds): ``garbage`` (a burst of random
bytes), ``drop`` (one byte of the stream lost), ``sensor-off`` (the probe comes off for 8 s),
``cable`` (nothing sent for 12 s: the cable was pulled), ``unplug`` (pty only: the port vanishes for 5 s,
as a USB adapter pulled out, then comes back at the same symlink).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import signal
import sys
import tty
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from monitors.base import Batch, Item
from monitors.models import DeviceAlarm, Reading, WaveformChunk
from monitors.protocols import keyvalue, masimo, nonin
from monitors.protocols.serial_common import CONDITIONS

log = logging.getLogger(__name__)

DIALECTS = (masimo.DIALECT, nonin.DIALECT, keyvalue.DIALECT)
FAULTS = ("garbage", "drop", "sensor-off", "cable", "unplug")
_CODE_TO_CONDITION = {c.code: name for name, c in CONDITIONS.items()}
#: Simulator pleth counts (about 100–1400) per Nonin pleth unit (0–255).
PLETH_DIVISOR = 6


class Encoder(Protocol):
    """Turns the simulated monitor's items into the dialect's bytes."""

    def encode(self, items: Sequence[Item], forced: set[str]) -> bytes:
        """Bytes for ``items``; ``forced`` conditions (fault injection) are added to the device's own."""
        ...


class _Conditions:
    def __init__(self) -> None:
        self.active: set[str] = set()

    def update(self, items: Sequence[Item]) -> None:
        for it in items:
            if isinstance(it, DeviceAlarm) and (cond := _CODE_TO_CONDITION.get(it.code)) is not None:
                if it.active:
                    self.active.add(cond)
                else:
                    self.active.discard(cond)


class MasimoEncoder:
    """One ASCII 1 line per numerics report."""

    def __init__(self, serial_number: str = "0000094582") -> None:
        self.serial_number = serial_number
        self._cond = _Conditions()

    def encode(self, items: Sequence[Item], forced: set[str]) -> bytes:
        """A line when ``items`` hold SpO2 or PR readings."""
        self._cond.update(items)
        values = {it.param: it for it in items if isinstance(it, Reading) and it.param in ("spo2", "pr")}
        if not values:
            return b""
        t = next(iter(values.values())).t_device.astimezone()  # the device clock shows local time
        spo2 = values["spo2"].value if "spo2" in values else None
        pr = values["pr"].value if "pr" in values else None
        return masimo.encode_line(
            t, spo2=spo2, pr=pr, pi=3.2, conditions=self._cond.active | forced, serial_number=self.serial_number
        )


class NoninEncoder:
    """DF2 frames for each pleth chunk, carrying the latest HR/SpO2 and conditions."""

    def __init__(self) -> None:
        self._enc = nonin.NoninDf2Encoder()
        self._cond = _Conditions()
        self._hr: float | None = None
        self._spo2: float | None = None
        self._phase = 0.0

    def encode(self, items: Sequence[Item], forced: set[str]) -> bytes:
        """Frames for the pleth samples in ``items`` (other items only update the state)."""
        self._cond.update(items)
        out = bytearray()
        for it in items:
            if isinstance(it, Reading) and it.param == "pr":
                self._hr = it.value
            elif isinstance(it, Reading) and it.param == "spo2":
                self._spo2 = it.value
            elif isinstance(it, WaveformChunk) and it.channel == "pleth":
                self._enc.set_values(hr=self._hr, spo2=self._spo2, conditions=self._cond.active | forced)
                out += self._enc.frames(self._resample(it))
        return bytes(out)

    def _resample(self, w: WaveformChunk) -> list[int]:
        """Nearest-sample resampling to 75 Hz, scaled to 0–255."""
        step = nonin.FS / w.fs
        out = []
        for v in w.samples:
            self._phase += step
            if self._phase >= 1.0:
                self._phase -= 1.0
                out.append(round(v * w.gain / PLETH_DIVISOR))
        return out


class KeyValueEncoder:
    """One ``key=value`` line per report, one ``wave=`` line per waveform chunk."""

    def __init__(self) -> None:
        self._cond = _Conditions()

    def encode(self, items: Sequence[Item], forced: set[str]) -> bytes:
        """Lines for ``items``."""
        before = set(self._cond.active)
        self._cond.update(items)
        active = self._cond.active | forced
        out = bytearray()
        values: dict[str, float | None] = {}
        for it in items:
            if isinstance(it, Reading):
                blank = it.param in ("spo2", "pr") and bool(forced & {"probe_off"})
                values[it.param] = None if blank else it.value
            elif isinstance(it, WaveformChunk):
                out += keyvalue.encode_wave(it.channel, it.fs, it.samples, it.gain)
        if values or self._cond.active != before:
            out += keyvalue.encode(values, active)
        return bytes(out)


def make_encoder(dialect: str) -> Encoder:
    """The encoder for ``dialect``."""
    if dialect == masimo.DIALECT:
        return MasimoEncoder()
    if dialect == nonin.DIALECT:
        return NoninEncoder()
    if dialect == keyvalue.DIALECT:
        return KeyValueEncoder()
    raise ValueError(f"unknown dialect {dialect!r}; known: {', '.join(DIALECTS)}")


# ---- where the bytes go ---------------------------------------------------------------------------


class Sink(Protocol):
    """Where the emulator writes."""

    where: str

    async def open(self) -> None:
        """Acquire the port or socket."""
        ...

    async def write(self, data: bytes) -> int:
        """Write ``data`` like a UART does (nobody listening: the bytes are lost); returns bytes dropped."""
        ...

    async def close(self) -> None:
        """Release it."""
        ...


class PtySink:
    """A pseudo-terminal the emulator creates; Vigil opens its slave (or ``link``, a symlink to it)."""

    def __init__(self, link: Path | None = None) -> None:
        self.link = link
        self.master: int | None = None
        self._slave: int | None = None
        self.slave_name = ""
        self.where = ""

    async def open(self) -> None:
        """Create the pty (raw, no echo) and point ``link`` at it."""
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self.master, self._slave = master, slave  # keeping the slave open keeps its raw settings
        self.slave_name = os.ttyname(slave)
        self.where = self.slave_name
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".tmp")
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            tmp.symlink_to(self.slave_name)
            tmp.replace(self.link)
            self.where = f"{self.link} -> {self.slave_name}"

    async def write(self, data: bytes) -> int:
        """Non-blocking write to the master; what does not fit is dropped."""
        if self.master is None:
            return len(data)
        try:
            n = os.write(self.master, data)
        except BlockingIOError:
            return len(data)
        except OSError:
            return len(data)
        return len(data) - n

    async def close(self) -> None:
        """Close both ends (the slave path disappears) and remove the link."""
        for fd in (self.master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self._slave = None
        if self.link is not None:
            with contextlib.suppress(FileNotFoundError):
                self.link.unlink()


class SerialSink:
    """An existing serial port or pty slave opened with pyserial."""

    def __init__(self, path: str, baudrate: int = 9600) -> None:
        self.path = path
        self.baudrate = baudrate
        self.where = path
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        """Open the port."""
        import serial_asyncio_fast

        _, self._writer = await serial_asyncio_fast.open_serial_connection(url=self.path, baudrate=self.baudrate)

    async def write(self, data: bytes) -> int:
        """Write; if the port cannot take it within a second, the bytes are lost."""
        if self._writer is None:
            return len(data)
        self._writer.write(data)
        try:
            await asyncio.wait_for(self._writer.drain(), 1.0)
        except TimeoutError:
            return len(data)
        return 0

    async def close(self) -> None:
        """Close the port."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class TcpSink:
    """A TCP server like a serial device server: every connected client receives the stream."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.where = f"tcp://{host}:{port}"
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    async def open(self) -> None:
        """Listen (port 0 picks a free port; ``where`` tells which)."""

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._clients.add(writer)

        self._server = await asyncio.start_server(on_client, self.host, self.port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        self.where = f"tcp://{self.host}:{self.port}"

    async def write(self, data: bytes) -> int:
        """Send to every client; a client that does not keep up is disconnected."""
        for w in list(self._clients):
            if w.is_closing() or w.transport.get_write_buffer_size() > 65536:
                w.close()
                self._clients.discard(w)
                continue
            w.write(data)
        return 0

    async def close(self) -> None:
        """Stop listening and drop clients."""
        for w in self._clients:
            w.close()
        self._clients.clear()
        if self._server is not None:
            self._server.close()
            self._server = None


def parse_target(url: str) -> Sink:
    """``pty``, ``pty:///link``, ``serial:///dev/ttyX`` or ``tcp://host:port`` → a sink."""
    if url in ("pty", "pty:", "pty://"):
        return PtySink()
    parts = urlsplit(url)
    if parts.scheme == "pty" and parts.path:
        return PtySink(Path(parts.path))
    if parts.scheme == "serial" and parts.path:
        return SerialSink(parts.path)
    if parts.scheme == "tcp" and parts.hostname and parts.port is not None:
        return TcpSink(parts.hostname, parts.port)
    raise ValueError(f"expected pty[:///link], serial:///dev/ttyX or tcp://host:port, got {url!r}")


# ---- the emulator ---------------------------------------------------------------------------------


@dataclass
class EmulatorStats:
    """What the emulator wrote and broke."""

    bytes_written: int = 0
    bytes_lost: int = 0  # nobody listening, or the port could not take them
    garbage_bursts: int = 0
    bytes_dropped: int = 0  # dropped on purpose (fault)
    silent_writes: int = 0  # writes suppressed while the cable is pulled
    unplugs: int = 0


class SerialEmulator:
    """Encodes a simulated monitor's stream in one dialect and writes it to a sink, with fault injection."""

    def __init__(self, sink: Sink, dialect: str, *, seed: int = 0) -> None:
        self.sink = sink
        self.dialect = dialect
        self.encoder = make_encoder(dialect)
        self.faults: set[str] = set()  # lasting faults now active: sensor-off, cable
        self._oneshot: list[str] = []
        self._rng = random.Random(seed)
        self.stats = EmulatorStats()

    def inject(self, fault: str) -> None:
        """A one-shot fault on the next write: ``garbage`` or ``drop``."""
        if fault not in ("garbage", "drop"):
            raise ValueError(f"not a one-shot fault: {fault!r}")
        self._oneshot.append(fault)

    def set_fault(self, fault: str, on: bool) -> None:
        """Start or end a lasting fault: ``sensor-off`` or ``cable``."""
        if fault not in ("sensor-off", "cable"):
            raise ValueError(f"not a lasting fault: {fault!r}")
        if on:
            self.faults.add(fault)
        else:
            self.faults.discard(fault)

    async def unplug(self, seconds: float) -> None:
        """The port vanishes for ``seconds`` and comes back (pty sinks only)."""
        if not isinstance(self.sink, PtySink):
            raise ValueError("unplug needs a pty target")
        self.stats.unplugs += 1
        await self.sink.close()
        await asyncio.sleep(seconds)
        await self.sink.open()
        log.info("serial emulator: port back at %s", self.sink.where)

    async def run(self, stream: AsyncIterator[Item | Batch]) -> None:
        """Consume ``stream`` until it ends or the task is cancelled."""
        async for got in stream:
            items = got.items if isinstance(got, Batch) else (got,)
            forced = {"probe_off"} if "sensor-off" in self.faults else set()
            data = self.encoder.encode(items, forced)
            if not data:
                continue
            if "cable" in self.faults:
                self.stats.silent_writes += 1
                continue
            data = self._break(data)
            self.stats.bytes_lost += await self.sink.write(data)
            self.stats.bytes_written += len(data)

    def _break(self, data: bytes) -> bytes:
        while self._oneshot:
            fault = self._oneshot.pop(0)
            if fault == "garbage":
                self.stats.garbage_bursts += 1
                burst = self._rng.randbytes(self._rng.randint(3, 40))
                at = self._rng.randrange(len(data) + 1)
                data = data[:at] + burst + data[at:]
            elif fault == "drop" and data:
                self.stats.bytes_dropped += 1
                at = self._rng.randrange(len(data))
                data = data[:at] + data[at + 1 :]
        return data


async def _fault_schedule(emu: SerialEmulator, faults: Sequence[str], every_s: float) -> None:
    """Apply each requested fault every ``every_s`` seconds (staggered)."""
    k = 0
    while True:
        await asyncio.sleep(every_s / max(1, len(faults)))
        fault = faults[k % len(faults)]
        k += 1
        log.info("serial emulator: fault %s", fault)
        if fault in ("garbage", "drop"):
            emu.inject(fault)
        elif fault in ("sensor-off", "cable"):
            emu.set_fault(fault, True)
            await asyncio.sleep(8.0 if fault == "sensor-off" else 12.0)
            emu.set_fault(fault, False)
        elif fault == "unplug":
            await emu.unplug(5.0)


async def emulate(
    target: str,
    dialect: str,
    *,
    scenario: str | None = None,
    seed: int = 0,
    device_id: str = "serial-emulator",
    speed: float = 1.0,
    offset_min: float = 0.0,
    faults: Sequence[str] = (),
    fault_every_s: float = 20.0,
    ready: asyncio.Future[str] | None = None,
) -> EmulatorStats:
    """Run a simulated monitor and write it to ``target`` in ``dialect`` until cancelled.

    ``ready`` (if given) receives the sink's address once it is open (the pty path, the TCP port).
    """
    from simulators.devices.common import simulated_monitor
    from simulators.physiology import CHANNELS

    sink = parse_target(target)
    channels = CHANNELS if dialect == keyvalue.DIALECT else {"pleth": CHANNELS["pleth"]}
    device = simulated_monitor(
        "serial-emulator",
        device_id,
        scenario=scenario,
        seed=seed,
        speed=speed,
        offset_min=offset_min,
        channels=channels,
    )
    emu = SerialEmulator(sink, dialect, seed=seed)
    await sink.open()
    log.info("serial emulator: %s on %s", dialect, sink.where)
    if ready is not None and not ready.done():
        ready.set_result(sink.where)
    try:
        async with device, asyncio.TaskGroup() as tg:
            if faults:
                tg.create_task(_fault_schedule(emu, faults, fault_every_s), name="serial-emulator:faults")
            await emu.run(device.readings())
    finally:
        await sink.close()
        log.info("serial emulator: %s", emu.stats)
    return emu.stats


def main(argv: list[str] | None = None) -> int:
    """``python -m simulators.devices.serial_emulator --to pty|serial:///dev/pts/N|tcp://host:port ...``"""
    ap = argparse.ArgumentParser(description="Write a simulated monitor to a serial port in a real dialect.")
    ap.add_argument("--to", required=True, help="pty, pty:///path/link, serial:///dev/ttyX or tcp://host:port")
    ap.add_argument("--dialect", required=True, choices=DIALECTS)
    ap.add_argument("--scenario", default=None, help="scenario name (default: a resting patient)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second")
    ap.add_argument("--offset-min", type=float, default=0.0, help="start this far into the scenario")
    ap.add_argument("--fault", action="append", default=[], choices=FAULTS, help="inject this fault periodically")
    ap.add_argument("--fault-every", type=float, default=20.0, help="seconds between faults")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        parse_target(args.to)
    except ValueError as e:
        print(f"serial_emulator: {e}", file=sys.stderr)
        return 2
    if "unplug" in args.fault and not args.to.startswith("pty"):
        print("serial_emulator: --fault unplug needs a pty target", file=sys.stderr)
        return 2

    async def run() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        loop.add_signal_handler(signal.SIGTERM, task.cancel)  # clean up (pty link) on a plain kill too
        ready: asyncio.Future[str] = loop.create_future()
        ready.add_done_callback(lambda f: print(f"serial emulator: {args.dialect} on {f.result()}", flush=True))
        await emulate(
            args.to,
            args.dialect,
            scenario=args.scenario,
            seed=args.seed,
            speed=args.speed,
            offset_min=args.offset_min,
            faults=args.fault,
            fault_every_s=args.fault_every,
            ready=ready,
        )

    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
