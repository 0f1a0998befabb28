"""The Store protocol: what the rest of the server may ask of durable storage.

No SQL or driver type crosses this boundary. ``append`` is group-committed: it returns a future that
resolves once the records are durable (the HL7 adapter ACKs only then) and fails if they cannot be made
so. Implementations: SQLite (WAL, default); PostgreSQL later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from app.alarms.model import AlarmEvent
from app.recording.model import WaveSegment
from app.security.model import AuditEvent, LoginSession, UserAccount
from app.sessions.model import (
    AlarmLimitsSet,
    BaselineRecorded,
    ChartEntry,
    Patient,
    PhaseChanged,
    PumpEvent,
    SessionCreated,
)
from monitors.models import DeviceAlarm, DeviceStatus, RawMessage, Reading

#: Session events as stored (``app.sessions.model.SessionEvent`` without the discriminator annotation).
StoredSessionEvent = SessionCreated | PhaseChanged | BaselineRecorded | PumpEvent | ChartEntry | AlarmLimitsSet


@dataclass(frozen=True, slots=True)
class Record:
    """One item to record, with the bay it was bound to when it arrived (None if unbound)."""

    bay: str | None
    item: (
        Reading
        | DeviceStatus
        | DeviceAlarm
        | RawMessage
        | AlarmEvent
        | Patient
        | StoredSessionEvent
        | WaveSegment
        | UserAccount
        | LoginSession
        | AuditEvent
    )


@dataclass(frozen=True, slots=True)
class StoredReading:
    """A numeric reading as read back."""

    bay: str | None
    reading: Reading


@dataclass(frozen=True, slots=True)
class StoredStatus:
    """A device status change as read back."""

    bay: str | None
    status: DeviceStatus


class Store(Protocol):
    """Durable, append-only record of readings, device status and device alarms."""

    async def open(self) -> None:
        """Create or migrate the schema and start the writer."""
        ...

    async def close(self) -> None:
        """Commit everything pending, stop the writer, close connections."""
        ...

    def append(self, records: Sequence[Record]) -> asyncio.Future[None]:
        """Queue records for the next group commit; the future resolves when they are durable."""
        ...

    async def flush(self) -> None:
        """Wait until everything appended so far is committed."""
        ...

    async def readings(
        self,
        *,
        bay: str | None = None,
        device_id: str | None = None,
        param: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 10_000,
    ) -> list[StoredReading]:
        """Readings in device-time order, filtered by any of the arguments."""
        ...

    async def waveforms(
        self,
        *,
        bay: str | None = None,
        device_id: str | None = None,
        channel: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100_000,
    ) -> list[WaveSegment]:
        """Waveform segments overlapping [since, until), decoded, in (t0, channel) order."""
        ...

    async def statuses(
        self,
        *,
        device_id: str | None = None,
        bay: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 10_000,
    ) -> list[StoredStatus]:
        """Device status changes in time order."""
        ...

    async def device_alarms(
        self,
        *,
        device_id: str | None = None,
        bay: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 10_000,
    ) -> list[DeviceAlarm]:
        """Device-reported alarms in time order."""
        ...

    async def raw_messages(
        self, *, control_id: str | None = None, outcome: str | None = None, limit: int = 10_000
    ) -> list[RawMessage]:
        """Archived device messages in arrival order."""
        ...

    async def alarm_events(
        self,
        *,
        bay: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1_000,
        oldest_first: bool = False,
    ) -> list[tuple[str | None, AlarmEvent]]:
        """The alarm log (bay, event), newest first (or oldest first)."""
        ...

    async def patients(self) -> list[Patient]:
        """Every registered patient, in registration order."""
        ...

    async def session_events(self, *, session_id: str | None = None) -> list[StoredSessionEvent]:
        """Session events (all sessions, or one) in the order they were recorded."""
        ...

    async def accounts(self) -> list[UserAccount]:
        """Every version of every user account, oldest first (the newest version of a username wins)."""
        ...

    async def login_session(self, token_hash: str) -> LoginSession | None:
        """The newest version of a login session, or None."""
        ...

    async def audit_events(
        self,
        *,
        user: str | None = None,
        bay: str | None = None,
        session_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1_000,
    ) -> list[AuditEvent]:
        """The audit trail, newest first. It is append-only and not purged by retention."""
        ...

    async def purge(self, before: datetime) -> dict[str, int]:
        """Retention: delete device data (readings, waveforms, status, device alarms, raw messages) and
        alarm events older than ``before``, and sessions (with their events) that ended before it.
        Returns rows deleted per kind."""
        ...

    async def count(self, table: str) -> int:
        """Rows in one of the record kinds: readings, device_status, device_alarms, raw_messages."""
        ...
