"""Ingest: the Supervisor owns adapter tasks; the Pipeline records and publishes what they yield.

One ordered lane per adapter: items are handled in the order the adapter yields them. For each item the
Pipeline (1) appends the durable part to the Store (group commit; a Batch's ``committed`` future follows
the commit), (2) publishes it to the hub at once, so the display does not wait for the disk.

The Supervisor binds devices to bays, restarts failed adapters with capped, jittered backoff, and owns
device status: first data → online; no data for ``stale_after_s`` → stale; for ``offline_after_s`` →
offline (each transition recorded, published and logged once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from app.alarming import AlarmService
from app.decimate import Decimator
from app.hub import Hub
from app.live import UNASSIGNED
from app.recording.chunker import WaveChunker
from app.store import Record, Store
from app.wire import DeviceAlarmMsg, DeviceAlarmOut, DeviceOut, Status, VitalOut, Vitals, Wave
from monitors.base import Adapter, Batch, Item
from monitors.errors import ConfigurationError
from monitors.models import DeviceAlarm, DeviceState, DeviceStatus, RawMessage, Reading, WaveformChunk

log = logging.getLogger(__name__)

#: Pending (uncommitted) records above which a lane waits for the store before reading more.
STORE_BACKPRESSURE_RECORDS = 50_000


def device_out(status: DeviceStatus) -> DeviceOut:
    """Wire form of a device status."""
    return DeviceOut.model_construct(
        device_id=status.device_id, state=status.state.value, since=status.since.timestamp(), detail=status.detail
    )


def vital_out(r: Reading) -> VitalOut:
    """Wire form of a reading (already validated as a Reading: no second validation on the hot path)."""
    return VitalOut.model_construct(
        param=r.param,
        value=r.value,
        unit=r.unit,
        quality=r.quality.value,
        t=r.t_device.timestamp(),
        tr=r.t_received.timestamp(),
        device_id=r.device_id,
    )


class Pipeline:
    """Records and publishes items; knows nothing of adapters."""

    def __init__(
        self,
        store: Store,
        hub: Hub,
        decimator: Decimator,
        alarms: AlarmService | None = None,
        *,
        chunker: WaveChunker | None = None,
        publish_waves: bool = True,
    ) -> None:
        self.store = store
        #: Waveforms are recorded in ~1 s segments; None: waveforms are shown but not recorded.
        self.chunker = chunker
        #: False when nobody watches (recording a simulated session at high speed): record waves only.
        self.publish_waves = publish_waves
        self.hub = hub
        self.decimator = decimator
        self.alarms = alarms
        self.alarm_failures = 0
        self.pending_records = 0
        self.store_failures = 0
        self._failing = False

    def ingest(self, bay: Callable[[str], str | None], items: Sequence[Item]) -> asyncio.Future[None]:
        """Record and publish ``items``; ``bay`` maps a device id to its bay. Returns the commit future.

        Items of devices bound to no bay are recorded with bay NULL and shown under the "unassigned" bay,
        so a new or misconfigured device is visible instead of vanishing.
        """
        records: list[Record] = []
        for it in items:
            b = bay(it.device_id) if it.device_id is not None else None
            if not isinstance(it, WaveformChunk):
                records.append(Record(b, it))
            elif self.chunker is not None:
                records.extend(Record(b, seg) for seg in self.chunker.add(b, it))
        fut = self.store.append(records)
        if records:
            self.pending_records += len(records)
            n = len(records)
            fut.add_done_callback(lambda f: self._committed(f, n))
        readings: dict[tuple[str, str], list[VitalOut]] = defaultdict(list)
        for_alarms: dict[str, list[Item]] = defaultdict(list)
        for it in items:
            if isinstance(it, RawMessage) or it.device_id is None:
                continue  # archived only
            b = bay(it.device_id) or UNASSIGNED
            if not isinstance(it, WaveformChunk):
                for_alarms[b].append(it)
            if isinstance(it, Reading):
                readings[(b, it.device_id)].append(vital_out(it))
            elif isinstance(it, WaveformChunk):
                if self.publish_waves:
                    self._publish_wave(b, it)
            elif isinstance(it, DeviceStatus):
                self.hub.publish(Status(seq=0, t=0, bay=b, device=device_out(it)))
            elif isinstance(it, DeviceAlarm):
                self.hub.publish(
                    DeviceAlarmMsg(
                        seq=0,
                        t=0,
                        bay=b,
                        alarm=DeviceAlarmOut(
                            device_id=it.device_id,
                            code=it.code,
                            priority=it.priority.value,
                            alarm_kind=it.alarm_kind.value,
                            text=it.text,
                            t=it.t.timestamp(),
                            active=it.active,
                        ),
                    )
                )
        for (b, dev), vitals in readings.items():
            self.hub.publish(Vitals(seq=0, t=0, bay=b, device_id=dev, readings=vitals))
        if self.alarms is not None:  # after the data itself, so screens see the values an alarm names
            for b, its in for_alarms.items():
                try:
                    self.alarms.on_items(b, its)
                except Exception:  # a bug in alarm evaluation must not stop recording and display
                    self.alarm_failures += 1
                    if self.alarm_failures == 1 or self.alarm_failures % 1000 == 0:
                        log.exception("alarm evaluation failed for bay %s (%d failures)", b, self.alarm_failures)
        return fut

    def flush_waves(self, idle_s: float | None = None) -> asyncio.Future[None]:
        """Record buffered waveform samples: those idle for ``idle_s`` seconds, or all (None)."""
        if self.chunker is None:
            return self.store.append(())
        segs = self.chunker.flush() if idle_s is None else self.chunker.flush_idle(idle_s)
        return self.store.append([Record(s.bay, s) for s in segs])

    def _publish_wave(self, bay: str, w: WaveformChunk) -> None:
        """The chunk at full rate (bedside screens), and its decimated form once a block is ready (stations)."""
        t0 = w.t0.timestamp()
        self._wave(bay, w, t0, w.fs, list(w.samples), decimated=False)
        dec = self.decimator.feed((w.device_id, w.channel), t0, w.fs, w.samples)
        if dec is not None:
            self._wave(bay, w, *dec, decimated=True)

    def _wave(self, bay: str, w: WaveformChunk, t0: float, fs: float, samples: list[int], *, decimated: bool) -> None:
        self.hub.publish(
            Wave(
                seq=0,
                t=0,
                bay=bay,
                device_id=w.device_id,
                channel=w.channel,
                t0=t0,
                fs=fs,
                gain=w.gain,
                unit=w.unit,
                samples=samples,
                decimated=decimated,
            )
        )

    def _committed(self, fut: asyncio.Future[None], n: int) -> None:
        self.pending_records -= n
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            self.store_failures += n
            if not self._failing:
                log.error("store could not commit %d records: %s", n, exc)
            self._failing = True
        elif self._failing:
            log.warning("store commits again")
            self._failing = False


@dataclass
class _Device:
    bay: str | None
    state: DeviceState
    last_seen: float  # monotonic time of the last data (or of registration)


class Supervisor:
    """Owns one named task per adapter, plus the silence watchdog."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        stale_after_s: float,
        offline_after_s: float,
        backoff_initial_s: float,
        backoff_max_s: float,
        bindings: dict[str, str] | None = None,
        locations: dict[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        watchdog_interval_s: float = 0.25,
    ) -> None:
        self.pipeline = pipeline
        self._stale = stale_after_s
        self._offline = offline_after_s
        self._backoff0 = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._bindings = dict(bindings or {})
        self._explicit = set(self._bindings)
        self._locations = {normalise_location(k): v for k, v in (locations or {}).items()}
        self._clock = clock
        self._wall = wall
        self._watch_s = watchdog_interval_s
        self.adapters: dict[str, Adapter] = {}
        self._adapter_bay: dict[str, str] = {}
        self.devices: dict[str, _Device] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._last_error: dict[str, str] = {}

    def add(self, adapter: Adapter, bay: str | None = None) -> None:
        """Register an adapter (before ``start``); its expected devices default to ``bay``."""
        if adapter.name in self.adapters:
            raise ValueError(f"duplicate adapter name {adapter.name!r}")
        self.adapters[adapter.name] = adapter
        for dev in adapter.expected_devices:
            if bay is not None:
                self._bindings.setdefault(dev, bay)

    def _bind_by_location(self, location: str, items: Sequence[Item]) -> None:
        bay = self._locations.get(normalise_location(location))
        for it in items:
            dev = it.device_id
            if dev is None or dev in self._explicit or self._bindings.get(dev) == bay:
                continue
            if bay is None:
                if dev in self._bindings:
                    continue  # keep the last known binding when a message lacks a mapped location
                self._bindings.pop(dev, None)
            else:
                log.info("device %s bound to %s by location %r", dev, bay, location)
                self._bindings[dev] = bay

    def bay_of(self, device_id: str) -> str | None:
        """The bay a device is bound to, or None."""
        return self._bindings.get(device_id)

    # ---- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every adapter's task and the watchdog."""
        now = self._clock()
        for adapter in self.adapters.values():
            for dev in adapter.expected_devices:
                self._transition(dev, DeviceState.CONNECTING, "waiting for first data", now)
            self._tasks[f"adapter:{adapter.name}"] = asyncio.create_task(
                self._run(adapter), name=f"adapter:{adapter.name}"
            )
        self._tasks["watchdog"] = asyncio.create_task(self._watchdog(), name="supervisor:watchdog")

    async def stop(self) -> None:
        """Cancel every task and wait for them (adapters close through their ``async with``)."""
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    # ---- adapter lanes -----------------------------------------------------------------------

    async def _run(self, adapter: Adapter) -> None:
        backoff = self._backoff0
        while True:
            try:
                async with adapter:
                    async for got in adapter.readings():
                        backoff = self._backoff0
                        self._last_error.pop(adapter.name, None)
                        await self._handle(got)
                detail = "adapter stream ended"
            except asyncio.CancelledError:
                raise
            except ConfigurationError as e:
                detail = f"configuration error: {e}"
                backoff = self._backoff_max  # will not fix itself quickly; keep trying slowly
            except Exception as e:  # a misbehaving adapter must never take the server down
                detail = f"{type(e).__name__}: {e}"
            if self._last_error.get(adapter.name) != detail:
                log.warning("adapter %s failed: %s (retrying in ≤%.1f s)", adapter.name, detail, backoff)
                self._last_error[adapter.name] = detail
            now = self._clock()
            for dev in adapter.expected_devices:
                self._transition(dev, DeviceState.OFFLINE, detail, now)
            await asyncio.sleep(random.uniform(backoff / 2, backoff))  # jitter: no thundering herd
            backoff = min(backoff * 2, self._backoff_max)

    async def _handle(self, got: Item | Batch) -> None:
        items = got.items if isinstance(got, Batch) else (got,)
        now = self._clock()
        if isinstance(got, Batch) and got.location is not None:
            self._bind_by_location(got.location, items)
        for it in items:
            if isinstance(it, DeviceStatus | RawMessage) or it.device_id is None:
                continue
            self._seen(it.device_id, now)
        fut = self.pipeline.ingest(self.bay_of, items)
        if isinstance(got, Batch) and got.committed is not None:
            _chain(fut, got.committed)
        if self.pipeline.pending_records > STORE_BACKPRESSURE_RECORDS:
            with contextlib.suppress(Exception):
                await fut

    def _seen(self, device_id: str, now: float) -> None:
        dev = self.devices.get(device_id)
        if dev is None:
            self.devices[device_id] = dev = _Device(self.bay_of(device_id), DeviceState.CONNECTING, now)
        dev.last_seen = now
        if dev.state is not DeviceState.ONLINE:
            self._transition(device_id, DeviceState.ONLINE, "receiving data", now)

    def _transition(self, device_id: str, state: DeviceState, detail: str, now: float) -> None:
        dev = self.devices.get(device_id)
        previous = "new"
        if dev is None:
            self.devices[device_id] = dev = _Device(self.bay_of(device_id), state, now)
        elif dev.state is state:
            return
        else:
            previous = dev.state.value
        dev.state = state
        if state is DeviceState.CONNECTING:
            dev.last_seen = now  # the silence budget starts now
        log.info("device %s: %s → %s (%s)", device_id, previous, state.value, detail)
        status = DeviceStatus(device_id=device_id, state=state, since=self._wall(), detail=detail)
        self.pipeline.ingest(self.bay_of, (status,))

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(self._watch_s)
            self.check_silence()

    def check_silence(self) -> None:
        """Turn silence into stale/offline (called by the watchdog; public for tests)."""
        now = self._clock()
        for device_id, dev in list(self.devices.items()):
            silence = now - dev.last_seen
            if dev.state is DeviceState.ONLINE and silence > self._stale:
                self._transition(device_id, DeviceState.STALE, f"no data for {silence:.0f} s", now)
            if dev.state in (DeviceState.ONLINE, DeviceState.STALE, DeviceState.CONNECTING) and silence > self._offline:
                self._transition(device_id, DeviceState.OFFLINE, f"no data for {silence:.0f} s", now)


def _chain(src: asyncio.Future[None], dst: asyncio.Future[None]) -> None:
    def done(f: asyncio.Future[None]) -> None:
        if dst.done():
            return
        if f.cancelled():
            dst.cancel()
        elif (exc := f.exception()) is not None:
            dst.set_exception(exc)
        else:
            dst.set_result(None)

    src.add_done_callback(done)


def normalise_location(location: str) -> str:
    """PV1-3 style ``unit^room^bed`` compared without case or stray spaces around components."""
    return "^".join(part.strip().upper() for part in location.split("^")).rstrip("^")
