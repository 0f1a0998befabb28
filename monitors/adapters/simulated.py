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
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from monitors import parameters
from monitors.base import Adapter, Batch, Item
from monitors.errors import ConfigurationError
from monitors.models import DeviceAlarm, Priority, Quality, Reading, WaveformChunk


class SignalSource(Protocol):
    """What the simulated adapter needs from a physiology model (times are seconds since the scenario start).

    Values are in the catalogue's units; ``None`` means the device has no valid value (probe off, leads
    off, failed cuff reading) and becomes a reading of quality ``invalid``. ``conditions`` names the
    technical conditions active at t (see ``TECHNICAL_CONDITIONS``); ``"disconnected"`` silences the device.
    """

    def numerics(self, t: float) -> Mapping[str, float | None]:
        """Continuous numerics (catalogue keys) at time t."""
        ...

    def nibp(self, t: float) -> Mapping[str, float | None]:
        """An NIBP measurement completing at time t (nibp_sys, nibp_dia, nibp_mean)."""
        ...

    def nibp_duration(self, k: int) -> float:
        """Seconds from the start of cuff cycle k to its result (~30 s)."""
        ...

    def conditions(self, t: float) -> Collection[str]:
        """Technical conditions active at time t (probe_off, leads_off, cannula_dislodged, motion, disconnected)."""
        ...

    def samples(self, channel: str, start: int, n: int) -> list[int]:
        """Samples ``start .. start+n-1`` of ``channel`` as int16 counts (sample i at t = i / fs)."""
        ...


#: Technical conditions the simulated monitor reports as device alarms: code, priority, text.
#: Priorities follow CLINICAL.md Table 1 rows T1 (probe off), T3 (leads off), T4 (CO2 sampling line: MEDIUM,
#: "APNOEA DETECTION UNAVAILABLE"); motion is an advisory signal-quality message (rule C2) [I].
TECHNICAL_CONDITIONS: dict[str, tuple[str, Priority, str]] = {
    "probe_off": ("SPO2_PROBE_OFF", Priority.MEDIUM, "SpO2 PROBE OFF"),
    "leads_off": ("ECG_LEADS_OFF", Priority.MEDIUM, "ECG LEADS OFF"),
    "cannula_dislodged": ("CO2_LINE", Priority.MEDIUM, "CO2 CHECK SAMPLING LINE - APNOEA DETECTION UNAVAILABLE"),
    "motion": ("SPO2_ARTIFACT", Priority.LOW, "SpO2 ARTIFACT (MOTION)"),
}
#: Numerics whose quality is questionable while a condition lasts (the value is still shown with "?").
QUESTIONABLE_WHEN: dict[str, tuple[str, ...]] = {"motion": ("spo2", "pr")}


#: Longest waveform chunk yielded at once (seconds of samples).
MAX_CHUNK_S = 10.0


class Fault(StrEnum):
    """Faults a trainer can inject into a simulated device."""

    NONE = "none"
    SILENT = "silent"  # the device stops sending anything (cable pulled, monitor frozen)


class SimulatedAdapter(Adapter):
    """A simulated bedside monitor for one device.

    ``speed`` runs the source faster than real time (60 = one simulated minute per second); ``offset_s``
    starts it that far into the scenario. Device timestamps are simulated time anchored at the wall time
    the adapter started (so sample timing stays consistent at any speed); ``t_received`` is the wall clock.
    NIBP cuff cycles start every ``nibp_interval_s``; each result arrives ``source.nibp_duration(k)`` after
    its cycle starts, and the first arrives at ``nibp_first_s`` (its cycle began before the monitor did).
    """

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
        speed: float = 1.0,
        offset_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        fixed_step: bool = False,
        pace: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        for ch in channels:
            if parameters.get(ch).kind is not parameters.Kind.WAVEFORM:
                raise ConfigurationError(f"{ch} is not a waveform channel")
        if chunk_s <= 0 or numerics_interval_s <= 0 or nibp_interval_s <= 0:
            raise ConfigurationError("intervals must be positive")
        if speed <= 0 or offset_s < 0:
            raise ConfigurationError("speed must be positive and offset_s not negative")
        self.name = name
        self.device_id = device_id
        self.expected_devices = (device_id,)
        self._source = source
        self._channels = dict(channels)
        self._chunk_s = chunk_s
        self._numerics_s = numerics_interval_s
        self._nibp_s = nibp_interval_s
        self._nibp_first_s = nibp_first_s
        self._speed = speed
        self._offset_s = offset_s
        self._clock = clock
        self._wall = wall
        self._fixed_step = fixed_step
        self._pace = pace
        self._phase_s = (zlib.crc32(device_id.encode()) % 1000) / 1000 * chunk_s
        self.fault = Fault.NONE
        self._open = False
        #: Scenario time (s) of the latest tick, None before the first: lets the app follow the scenario.
        self.scenario_time: float | None = None
        self._device_t: float | None = None  # see device_now
        self._origin: datetime | None = None

    @property
    def source(self) -> SignalSource:
        """The physiology this monitor reads (e.g. for the app's estimated concentrations)."""
        return self._source

    def device_now(self) -> datetime | None:
        """The device clock (runs ``speed`` times faster than the wall clock): the time of the newest numerics
        handed out, and the tick's time once the tick is done. A late tick at high speed hands out minutes of
        numerics in a row; while the consumer works through them (and waits for the store), the alarm timers
        must not run on a clock minutes ahead of the values they have seen, or every bay would report its
        values as not updated."""
        if self._origin is None or self._device_t is None:
            return None
        return self._origin + timedelta(seconds=self._device_t)

    def set_fault(self, fault: Fault) -> None:
        """Inject (or clear) a fault; takes effect at the next tick."""
        self.fault = fault

    async def open(self) -> None:
        """Nothing to acquire; marks the adapter usable."""
        self._open = True

    async def close(self) -> None:
        """Marks the adapter closed."""
        self._open = False

    def _nibp_arrival(self, k: int) -> float:
        """Scenario time at which cuff cycle k's result arrives."""
        first_start = self._offset_s + self._nibp_first_s - self._source.nibp_duration(0)
        return first_start + k * self._nibp_s + self._source.nibp_duration(k)

    async def readings(self) -> AsyncIterator[Item | Batch]:
        """Yield numerics, NIBP, device alarms and waveform chunks in (scaled) real time until cancelled."""
        if not self._open:
            raise RuntimeError("use 'async with adapter:' before iterating readings()")
        # Real monitors are not synchronised: each simulated one ticks at its own phase within the chunk
        # (fixed per device id), so a hundred bays do not all hand over their chunks in the same instant.
        await asyncio.sleep(self._phase_s)
        start_mono = self._clock()
        # wall time of scenario time 0, so that t_device = origin + t for every item
        origin = self._wall() - timedelta(seconds=self._offset_s)
        self._origin = origin
        off = self._offset_s
        sent = {ch: math.floor(off * fs) for ch, (fs, _) in self._channels.items()}  # next sample per channel
        next_numerics = off
        nibp_k = 0
        next_nibp = self._nibp_arrival(0)
        reported: set[str] = set()  # technical conditions currently reported as active
        tick = 0
        while True:
            tick += 1
            if self._fixed_step:
                # Recording at high speed: each tick advances exactly chunk_s * speed of scenario time and
                # yields to the loop, never faster than ``speed`` x real time, and never in catch-up bursts.
                now_t = off + tick * self._chunk_s * self._speed
                await asyncio.sleep(max(0.0, start_mono + tick * self._chunk_s - self._clock()))
                if self._pace is not None:
                    # back-pressure from the consumer (a recorder waits until the store has committed what
                    # it was handed): the device clock never runs ahead of the record
                    await self._pace()
            else:
                delay = start_mono + tick * self._chunk_s - self._clock()
                if delay > 0:
                    await asyncio.sleep(delay)
                now_t = off + (self._clock() - start_mono) * self._speed
            self.scenario_time = now_t
            conditions = set(self._source.conditions(now_t))
            silent = self.fault is Fault.SILENT or "disconnected" in conditions
            for ch, (fs, gain) in self._channels.items():
                upto = math.floor(now_t * fs)
                n = upto - sent[ch]
                if n <= 0:
                    continue
                if not silent:
                    step = max(1, int(fs * MAX_CHUNK_S))  # a late tick (or a fast run) catches up in pieces
                    for first in range(sent[ch], upto, step):
                        yield WaveformChunk(
                            device_id=self.device_id,
                            channel=ch,
                            t0=origin + timedelta(seconds=first / fs),
                            fs=fs,
                            samples=tuple(self._source.samples(ch, first, min(step, upto - first))),
                            unit=parameters.get(ch).ucum,
                            gain=gain,
                        )
                sent[ch] = upto
            while now_t >= next_numerics:
                t = next_numerics
                next_numerics += self._numerics_s
                self._device_t = max(self._device_t or t, t)
                if not silent:
                    yield Batch(self._readings(self._source.numerics(t), origin, t, conditions))
            while now_t >= next_nibp:
                t = next_nibp
                nibp_k += 1
                next_nibp = self._nibp_arrival(nibp_k)
                if not silent:
                    yield Batch(self._readings(self._source.nibp(t), origin, t, conditions))
            self._device_t = now_t
            # condition changes (leads off, probe off ...) are stamped with the tick's time: report them once
            # the device clock has reached it, so the alarm engine times them on the same clock
            if not silent and (alarms := self._alarm_changes(reported, conditions, origin, now_t)):
                yield Batch(alarms)

    def _alarm_changes(
        self, reported: set[str], conditions: set[str], origin: datetime, t: float
    ) -> tuple[DeviceAlarm, ...]:
        """Device alarms for conditions that started or ended since the last report (updates ``reported``)."""
        out = []
        for cond in sorted(reported ^ (conditions & TECHNICAL_CONDITIONS.keys())):
            code, priority, text = TECHNICAL_CONDITIONS[cond]
            active = cond in conditions
            out.append(
                DeviceAlarm(
                    device_id=self.device_id,
                    code=code,
                    priority=priority,
                    text=text,
                    t=origin + timedelta(seconds=t),
                    active=active,
                )
            )
            if active:
                reported.add(cond)
            else:
                reported.discard(cond)
        return tuple(out)

    def _readings(
        self, values: Mapping[str, float | None], origin: datetime, t: float, conditions: Collection[str]
    ) -> tuple[Reading, ...]:
        t_dev = origin + timedelta(seconds=t)
        now = self._wall()
        questionable = {p for c in conditions for p in QUESTIONABLE_WHEN.get(c, ())}
        out = []
        for key, value in values.items():
            if value is None:
                quality = Quality.INVALID
            elif key in questionable:
                quality = Quality.QUESTIONABLE
            else:
                quality = Quality.VALID
            out.append(
                Reading(
                    device_id=self.device_id,
                    param=key,
                    value=value,
                    unit=parameters.get(key).ucum,
                    t_device=t_dev,
                    t_received=now,
                    quality=quality,
                )
            )
        return tuple(out)
