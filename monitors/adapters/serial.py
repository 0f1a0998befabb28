"""A monitor on a serial port (RS-232, a USB adapter, a pty, or a terminal server via ``socket://host:port``).

One port is one device. ``open`` opens the port with pyserial-asyncio-fast and discards whatever the
kernel buffered while nobody was reading (stale data would be stamped with the wrong time); ``readings``
feeds every read to the dialect's sans-I/O decoder (monitors/protocols/masimo.py, nonin.py, keyvalue.py)
and yields one ``Batch`` per device report (about one a second) and pleth ``WaveformChunk`` s as they fill.

Failure handling is split with the Supervisor (app/ingest.py), which owns this adapter's task:

- a settings problem (unknown dialect, impossible baud rate or framing) raises ``ConfigurationError``;
- the port missing or vanishing (USB adapter pulled: the read fails or reaches end of file), and silence
  longer than ``idle_reopen_s`` raise ``LinkError``; the Supervisor marks the device offline at once, logs
  the failure once, and calls ``open`` again with capped, jittered backoff until the port is back;
- silence shorter than that is the Supervisor's business too: it turns it into stale, then offline.

This adapter logs only its own transitions, once each: port opened, port reopened after a failure, and
the first undecodable input after good input. Discarded bytes are kept as ``RawMessage(protocol="serial",
outcome="discarded")`` items, at most one per ``raw_interval_s``, each with the first bytes of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import serial
import serial_asyncio_fast

from monitors.base import Adapter, Batch, Item
from monitors.errors import ConfigurationError, LinkError
from monitors.models import RawMessage
from monitors.protocols import keyvalue, masimo, nonin
from monitors.protocols.serial_common import Decoder, Garbage, Numerics

log = logging.getLogger(__name__)

DIALECTS: dict[str, Callable[[str], Decoder]] = {
    masimo.DIALECT: masimo.MasimoAscii1Decoder,
    nonin.DIALECT: nonin.NoninDf2Decoder,
    keyvalue.DIALECT: keyvalue.KeyValueDecoder,
}

#: Bytes discarded before the first good report after opening are not garbage but the tail of a frame or line
#: the port was opened in the middle of (up to this many; more suggests a wrong dialect or baud rate).
JOIN_BYTES = 512

PARITIES = {"N": serial.PARITY_NONE, "E": serial.PARITY_EVEN, "O": serial.PARITY_ODD, "M": serial.PARITY_MARK}
PARITIES["S"] = serial.PARITY_SPACE


class SerialAdapter(Adapter):
    """One device on one serial port, speaking one dialect."""

    def __init__(
        self,
        *,
        name: str,
        device_id: str,
        port: str,
        dialect: str,
        baudrate: int = 9600,
        parity: str = "N",
        bytesize: int = 8,
        stopbits: float = 1,
        idle_reopen_s: float | None = 30.0,
        raw_interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if dialect not in DIALECTS:
            raise ConfigurationError(f"unknown serial dialect {dialect!r}; known: {', '.join(sorted(DIALECTS))}")
        if parity not in PARITIES or bytesize not in (5, 6, 7, 8) or stopbits not in (1, 1.5, 2):
            raise ConfigurationError(f"impossible framing {bytesize}{parity}{stopbits:g}")
        if baudrate <= 0 or not port:
            raise ConfigurationError("a serial monitor needs a port and a positive baud rate")
        self.name = name
        self.device_id = device_id
        self.expected_devices = (device_id,)
        self.port = port
        self.dialect = dialect
        self._serial_kwargs: dict[str, Any] = {
            "baudrate": baudrate,
            "parity": PARITIES[parity],
            "bytesize": bytesize,
            "stopbits": stopbits,
        }
        self._idle = idle_reopen_s
        self._raw_interval = raw_interval_s
        self._clock = clock
        self._wall = wall
        self.decoder: Decoder = DIALECTS[dialect](device_id)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._last_raw = -float("inf")
        self._failed = False  # the last open/read failed (so the next open is logged as a recovery)
        self._garbage_logged = False
        self._join_budget = JOIN_BYTES
        self.stats: dict[str, int] = {
            "opens": 0,
            "bytes": 0,
            "reports": 0,
            "chunks": 0,
            "garbage_bytes": 0,
            "joined_mid_stream_bytes": 0,
        }

    def describe(self) -> dict[str, object]:
        """Port, dialect and counters (for /api/monitors)."""
        return {"port": self.port, "dialect": self.dialect, "open": self._reader is not None, "stats": dict(self.stats)}

    async def open(self) -> None:
        """Open the port; ConfigurationError for settings pyserial refuses, LinkError if the port is missing."""
        try:
            reader, writer = await serial_asyncio_fast.open_serial_connection(url=self.port, **self._serial_kwargs)
        except ValueError as e:  # pyserial: bad baud rate, parity, URL scheme ...
            raise ConfigurationError(f"serial port {self.port}: {e}") from e
        except (serial.SerialException, OSError) as e:
            self._failed = True
            raise LinkError(f"cannot open {self.port}: {e}") from e
        self._reader, self._writer = reader, writer
        ser = writer.transport.get_extra_info("serial")
        if isinstance(ser, serial.Serial) and ser.is_open:
            with contextlib.suppress(serial.SerialException, OSError):
                ser.reset_input_buffer()  # drop what queued while nobody read: it would be stamped "now"
        self.decoder.reset()
        self._join_budget = JOIN_BYTES
        self.stats["opens"] += 1
        if self._failed:
            log.warning("serial %s: %s reopened (%s)", self.name, self.port, self.dialect)
        elif self.stats["opens"] == 1:
            log.info("serial %s: %s opened (%s, %s)", self.name, self.port, self.dialect, self._framing())
        self._failed = False

    def _framing(self) -> str:
        k = self._serial_kwargs
        return f"{k['baudrate']} {k['bytesize']}{k['parity']}{k['stopbits']:g}"

    async def close(self) -> None:
        """Close the port (safe after a failed open)."""
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2)

    async def readings(self) -> AsyncIterator[Item | Batch]:
        """Decoded items as bytes arrive; LinkError when the port fails, closes or stays silent too long."""
        if self._reader is None:
            raise RuntimeError("use 'async with adapter:' before iterating readings()")
        reader = self._reader
        while True:
            try:
                if self._idle is None:
                    data = await reader.read(4096)
                else:
                    async with asyncio.timeout(self._idle):
                        data = await reader.read(4096)
            except TimeoutError:
                self._failed = True
                raise LinkError(f"{self.port}: no bytes for {self._idle:g} s; reopening the port") from None
            except (serial.SerialException, OSError) as e:
                self._failed = True
                raise LinkError(f"{self.port}: read failed: {e}") from e
            if not data:
                self._failed = True
                raise LinkError(f"{self.port}: port closed (device or adapter gone)")
            self.stats["bytes"] += len(data)
            now = self._wall()
            for got in self.decoder.feed(data, now):
                if isinstance(got, Numerics):
                    self.stats["reports"] += 1
                    self._garbage_logged = False
                    self._join_budget = 0
                    yield Batch(got.items)
                elif isinstance(got, Garbage):
                    raw = self._garbage(got, now)
                    if raw is not None:
                        yield raw
                else:
                    self.stats["chunks"] += 1
                    yield got

    def _garbage(self, g: Garbage, now: datetime) -> RawMessage | None:
        """Count discarded bytes; keep a RawMessage (and log, once after good data) at most every interval."""
        if g.size <= self._join_budget:  # the port was opened in the middle of a frame or line: expected
            self._join_budget -= g.size
            self.stats["joined_mid_stream_bytes"] += g.size
            return None
        self._join_budget = 0
        self.stats["garbage_bytes"] += g.size
        t = self._clock()
        if t - self._last_raw < self._raw_interval:
            return None
        self._last_raw = t
        if not self._garbage_logged:
            log.warning("serial %s: discarded %d undecodable bytes (%s); resynchronising", self.name, g.size, g.reason)
            self._garbage_logged = True
        return RawMessage(
            protocol="serial",
            source=self.port,
            received=now,
            payload=g.head,
            outcome="discarded",
            detail=f"{self.dialect}: {g.size} bytes discarded ({g.reason})"[:500],
            device_id=self.device_id,
        )
