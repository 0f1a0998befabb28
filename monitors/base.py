"""The adapter contract, modelled on aiomqtt and httpx transports.

```
async with adapter:                       # opens ports/sockets; fails fast if misconfigured
    async for item in adapter.readings():  # DeviceItem or Batch
        ...
```

An adapter is one source of device data: an in-process simulator, a serial port, an MLLP listener (which
may carry many devices) or a replay. The Supervisor (app/ingest.py) owns each adapter in a named task,
restarts it with capped, jittered backoff when ``readings()`` raises, and turns silence into stale/offline
status itself, so adapters need not keep timers for that.

A ``Batch`` groups items that must be made durable together, with a future the consumer resolves once
they are committed (or fails when they cannot be): an HL7 adapter sends its AA only after that future
resolves, and AR when it fails. Plain items carry no such promise.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from monitors.models import DeviceAlarm, DeviceStatus, RawMessage, Reading, WaveformChunk

Item = Reading | WaveformChunk | DeviceStatus | DeviceAlarm | RawMessage


@dataclass(slots=True)
class Batch:
    """Items to commit together; ``committed`` is resolved by the consumer after they are durable.

    ``location`` is where the sender says the devices are (HL7 PV1-3 ``unit^room^bed``); the Supervisor
    uses it to bind a device to a bay when no explicit binding names the device.
    """

    items: tuple[Item, ...]
    committed: asyncio.Future[None] | None = field(default=None)
    location: str | None = None


class Adapter(ABC):
    """Base class of every monitor adapter."""

    #: Human-readable name, unique per server (used for the task name and logs).
    name: str

    #: Devices this adapter is known to serve before any data arrives (the Supervisor watches them
    #: for silence from the start). Listeners that learn devices from traffic may leave it empty.
    expected_devices: tuple[str, ...] = ()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def describe(self) -> dict[str, object]:
        """Adapter-specific facts for operators (listening address, counters); empty by default."""
        return {}

    @abstractmethod
    async def open(self) -> None:
        """Acquire ports/sockets; raise ConfigurationError at once if the configuration cannot work."""

    @abstractmethod
    async def close(self) -> None:
        """Release everything ``open`` acquired; must be safe to call after a failed ``open``."""

    @abstractmethod
    def readings(self) -> AsyncIterator[Item | Batch]:
        """Yield items as they arrive; raise LinkError when the link fails."""
