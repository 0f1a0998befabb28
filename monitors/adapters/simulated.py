"""An in-process simulated monitor: numerics at 1 Hz, NIBP every few minutes, waveforms in chunks.

The signals come from a ``SignalSource`` (the physiology in simulators/, injected by the app, so that
monitors/ never imports simulators/). Timing is sample-exact: chunk k of a channel holds the samples whose
index falls in [k·chunk, (k+1)·chunk) seconds since start, so no drift builds up however the event loop
is scheduled. ``set_fault`` lets a trainer or a test silence the device (as if its cable were pulled).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from monitors import parameters
from monitors.base import Adapter, Batch, Item
from monitors.errors import ConfigurationError
from monitors.models import Reading, WaveformChunk


class SignalSource(Protocol):
    """What the simulated adapter needs from a physiology model (times are seconds since start)."""

    def numerics(self, t: float) -> Mapping[str, float]:
        """Continuous numerics (catalogue keys) at time t."""
        ...

    def nibp(self, t: float) -> Mapping[str, float]:
        """An NIBP measurement completing at time t (nibp_sys, nibp_dia, nibp_mean)."""
        ...

    def samples(self, channel: str, start: int, n: int) -> list[int]:
        """Samples ``start .. start+n-1`` of ``channel`` as int16 counts."""
        ...


class Fault(StrEnum):
    """Faults a trainer can inject into a simulated device."""

    NONE = "none"
    SILENT = "silent"  # the device stops sending anything (cable pulled, monitor frozen)


class SimulatedAdapter(Adapter):
    """A simulated bedside monitor for one device."""

    def __init__(
        self,
        *,
        name: str,
        device_id: str,
        source: SignalSource,
        channels: Mapping[str, tuple[float, float]],
        chunk_s: float = 0.2,
        numerics_interval_s: float = 1.0,
        nibp_interval_s: float = 180.0,
        nibp_first_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        for ch in channels:
            if parameters.get(ch).kind is not parameters.Kind.WAVEFORM:
                raise ConfigurationError(f"{ch} is not a waveform channel")
        if chunk_s <= 0 or numerics_interval_s <= 0 or nibp_interval_s <= 0:
            raise ConfigurationError("intervals must be positive")
        self.name = name
        self.device_id = device_id
        self.expected_devices = (device_id,)
        self._source = source
        self._channels = dict(channels)
        self._chunk_s = chunk_s
        self._numerics_s = numerics_interval_s
        self._nibp_s = nibp_interval_s
        self._nibp_first_s = nibp_first_s
        self._clock = clock
        self._wall = wall
        self.fault = Fault.NONE
        self._open = False

    def set_fault(self, fault: Fault) -> None:
        """Inject (or clear) a fault; takes effect at the next tick."""
        self.fault = fault

    async def open(self) -> None:
        """Nothing to acquire; marks the adapter usable."""
        self._open = True

    async def close(self) -> None:
        """Marks the adapter closed."""
        self._open = False

    async def readings(self) -> AsyncIterator[Item | Batch]:
        """Yield numerics, NIBP and waveform chunks in real time until cancelled."""
        if not self._open:
            raise RuntimeError("use 'async with adapter:' before iterating readings()")
        start_mono = self._clock()
        start_wall = self._wall()
        sent = dict.fromkeys(self._channels, 0)  # samples emitted so far per channel
        next_numerics = 0.0
        next_nibp = self._nibp_first_s
        tick = 0
        while True:
            tick += 1
            target = tick * self._chunk_s
            delay = start_mono + target - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            elapsed = self._clock() - start_mono
            silent = self.fault is Fault.SILENT
            for ch, (fs, gain) in self._channels.items():
                upto = math.floor(elapsed * fs)
                n = upto - sent[ch]
                if n <= 0:
                    continue
                if not silent:
                    yield WaveformChunk(
                        device_id=self.device_id,
                        channel=ch,
                        t0=start_wall + timedelta(seconds=sent[ch] / fs),
                        fs=fs,
                        samples=tuple(self._source.samples(ch, sent[ch], n)),
                        unit=parameters.get(ch).ucum,
                        gain=gain,
                    )
                sent[ch] = upto
            if elapsed >= next_numerics:
                t = next_numerics
                next_numerics += self._numerics_s
                if not silent:
                    yield Batch(self._readings(self._source.numerics(t), start_wall, t))
            if elapsed >= next_nibp:
                t = next_nibp
                next_nibp += self._nibp_s
                if not silent:
                    yield Batch(self._readings(self._source.nibp(t), start_wall, t))

    def _readings(self, values: Mapping[str, float], start_wall: datetime, t: float) -> tuple[Reading, ...]:
        t_dev = start_wall + timedelta(seconds=t)
        now = self._wall()
        return tuple(
            Reading(
                device_id=self.device_id,
                param=key,
                value=value,
                unit=parameters.get(key).ucum,
                t_device=t_dev,
                t_received=now,
            )
            for key, value in values.items()
        )
