"""Supervisor and pipeline: device status from silence, restarts with backoff, commit promises."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.decimate import Decimator
from app.hub import InProcessHub, Subscription
from app.ingest import Pipeline, Supervisor
from app.live import LiveState
from app.store.sqlite import SQLiteStore
from monitors.adapters.simulated import Fault, SimulatedAdapter
from monitors.base import Adapter, Batch, Item
from monitors.errors import LinkError
from monitors.models import DeviceState, Reading
from simulators.physiology import CHANNELS, RestingPatient


def hr(value: float, device: str = "dev1") -> Reading:
    now = datetime.now(UTC)
    return Reading(device_id=device, param="hr", value=value, unit="/min", t_device=now, t_received=now)


class ScriptedAdapter(Adapter):
    """Yields what the test puts in its queue; raises LinkError when told to."""

    def __init__(self, name: str = "scripted", device: str = "dev1") -> None:
        self.name = name
        self.expected_devices = (device,)
        self.queue: asyncio.Queue[Item | Batch | Exception] = asyncio.Queue()
        self.opens = 0
        self.closes = 0

    async def open(self) -> None:
        self.opens += 1

    async def close(self) -> None:
        self.closes += 1

    async def readings(self) -> AsyncIterator[Item | Batch]:
        while True:
            got = await self.queue.get()
            if isinstance(got, Exception):
                raise got
            yield got


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[tuple[Supervisor, InProcessHub, SQLiteStore]]:
    store = SQLiteStore(tmp_path / "t.sqlite3", gather_s=0.0)
    await store.open()
    hub = InProcessHub(LiveState([("bay1", "Bay 1")]))
    sup = Supervisor(
        Pipeline(store, hub, Decimator(25)),
        stale_after_s=0.3,
        offline_after_s=0.8,
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
        watchdog_interval_s=0.02,
    )
    yield sup, hub, store
    await sup.stop()
    await store.close()


async def wait_for_state(sup: Supervisor, device: str, state: DeviceState, timeout: float = 3.0) -> float:
    loop = asyncio.get_running_loop()
    start = loop.time()
    while loop.time() - start < timeout:
        dev = sup.devices.get(device)
        if dev is not None and dev.state is state:
            return loop.time() - start
        await asyncio.sleep(0.01)
    raise AssertionError(f"{device} never became {state.value}; is {sup.devices.get(device)}")


async def test_silent_device_goes_stale_then_offline_then_back_online(
    rig: tuple[Supervisor, InProcessHub, SQLiteStore],
) -> None:
    sup, hub, store = rig
    adapter = ScriptedAdapter()
    sup.add(adapter, bay="bay1")
    viewer = hub.attach(Subscription(None, "none"), None)
    await sup.start()
    assert sup.devices["dev1"].state is DeviceState.CONNECTING
    await adapter.queue.put(hr(70))
    await wait_for_state(sup, "dev1", DeviceState.ONLINE)
    took = await wait_for_state(sup, "dev1", DeviceState.STALE)
    assert took < 0.3 + 0.2
    await wait_for_state(sup, "dev1", DeviceState.OFFLINE)
    await adapter.queue.put(hr(71))
    await wait_for_state(sup, "dev1", DeviceState.ONLINE)
    await store.flush()
    states = [s.status.state for s in await store.statuses(device_id="dev1")]
    assert states == [
        DeviceState.CONNECTING,
        DeviceState.ONLINE,
        DeviceState.STALE,
        DeviceState.OFFLINE,
        DeviceState.ONLINE,
    ]
    pushed = []
    while (text := await viewer.get(timeout=0)) is not None:
        msg = json.loads(text)
        if msg["type"] == "status":
            pushed.append(msg["device"]["state"])
    assert pushed == ["connecting", "online", "stale", "offline", "online"]
    assert [r.reading.value for r in await store.readings(device_id="dev1")] == [70, 71]


async def test_failing_adapter_is_restarted_with_backoff_and_marked_offline(
    rig: tuple[Supervisor, InProcessHub, SQLiteStore],
    caplog: pytest.LogCaptureFixture,
) -> None:
    sup, _, _ = rig
    adapter = ScriptedAdapter()
    sup.add(adapter, bay="bay1")
    await sup.start()
    await adapter.queue.put(hr(70))
    await wait_for_state(sup, "dev1", DeviceState.ONLINE)
    for _ in range(3):
        await adapter.queue.put(LinkError("USB adapter pulled"))
    await wait_for_state(sup, "dev1", DeviceState.OFFLINE, timeout=1.0)
    assert sup.devices["dev1"].state is DeviceState.OFFLINE
    for _ in range(50):
        if adapter.opens >= 4:
            break
        await asyncio.sleep(0.02)
    assert adapter.opens >= 4 and adapter.closes >= 3  # reopened after each failure, closed each time
    assert sum("USB adapter pulled" in r.getMessage() for r in caplog.records) == 1  # logged once
    await adapter.queue.put(hr(72))
    await wait_for_state(sup, "dev1", DeviceState.ONLINE)


async def test_batch_commit_future_resolves_only_after_store_commit(
    rig: tuple[Supervisor, InProcessHub, SQLiteStore],
) -> None:
    sup, _, store = rig
    adapter = ScriptedAdapter()
    sup.add(adapter, bay="bay1")
    await sup.start()
    committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    await adapter.queue.put(Batch((hr(80), hr(81)), committed))
    await asyncio.wait_for(committed, 2)
    # Durable: a fresh connection sees them as soon as the future resolved.
    values = sorted(r.reading.value or 0 for r in await store.readings(device_id="dev1"))
    assert values == [80, 81]


async def test_simulated_adapter_output_rates_and_silence_fault() -> None:
    adapter = SimulatedAdapter(
        name="sim",
        device_id="dev1",
        source=RestingPatient(3),
        channels=CHANNELS,
        chunk_s=0.1,
        nibp_first_s=0.2,
        nibp_interval_s=100,
    )
    counts: dict[str, int] = dict.fromkeys(CHANNELS, 0)
    numerics: list[Reading] = []
    async with adapter:
        loop = asyncio.get_running_loop()
        start = loop.time()
        async for got in adapter.readings():
            if isinstance(got, Batch):
                numerics.extend(it for it in got.items if isinstance(it, Reading))
            elif got.kind == "wave":
                counts[got.channel] += len(got.samples)
            if loop.time() - start > 2.05:
                break
    for ch, (fs, _) in CHANNELS.items():
        assert abs(counts[ch] - 2.0 * fs) <= fs * 0.15, (ch, counts[ch])
    params = {r.param for r in numerics}
    assert {"hr", "spo2", "pr", "rr", "etco2", "temp", "nibp_sys", "nibp_dia", "nibp_mean"} <= params
    assert sum(r.param == "hr" for r in numerics) in (2, 3)  # 1 Hz
    adapter.set_fault(Fault.SILENT)
    async with adapter:
        got_any = False

        async def consume() -> None:
            nonlocal got_any
            async for _ in adapter.readings():
                got_any = True

        with pytest.raises(TimeoutError):
            await asyncio.wait_for(consume(), 0.6)
    assert not got_any
