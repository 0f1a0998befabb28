"""What the Store backends share: group commit, sorting records into rows, and rows back into models.

Only the SQL differs between SQLite and PostgreSQL; the write discipline (group commit, retry, isolation of a
refused append) and the mapping between records and rows are the same, so they live here once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from app.alarms.model import AlarmEvent
from app.recording import codec
from app.recording.model import WaveSegment
from app.security.model import AuditEvent, LoginSession, UserAccount
from app.sessions.model import Patient, SessionCreated
from app.store.base import Record, StoredReading, StoredStatus
from monitors import parameters
from monitors.models import (
    AlarmKind,
    DeviceAlarm,
    DeviceState,
    DeviceStatus,
    Priority,
    Quality,
    RawMessage,
    Reading,
)

log = logging.getLogger(__name__)

#: Attempts per group commit before its appends fail (transient errors: locked, connection lost, disk full).
WRITE_ATTEMPTS = 3
#: Longest waveform segment written (the chunker cuts at ~1 s; a long HL7 chunk may be kept whole).
MAX_SEGMENT_S = 30.0

T = TypeVar("T")  # how a backend stores a time: float seconds (SQLite) or a datetime (PostgreSQL)
StreamKey = tuple[str | None, str, str, float, str, float]  # bay, device, channel, fs, unit, gain


def statements(script: str) -> list[str]:
    """The statements of a DDL script (no semicolons inside statements)."""
    return [st.strip() for st in script.split(";") if st.strip()]


class GroupCommitter:
    """Group commit for a store: appends made while a commit runs are committed together in the next one.

    ``commit(records, attempts)`` writes records in one transaction and returns the error if it finally
    failed. When a batch fails with an error that ``refused`` says retrying cannot cure (a constraint, a
    record that cannot be encoded), its appends are committed one by one so that only the bad one fails.
    """

    def __init__(
        self,
        commit: Callable[[list[Record], int], Awaitable[BaseException | None]],
        refused: Callable[[BaseException], bool],
        *,
        gather_s: float = 0.0,
        name: str = "store:writer",
    ) -> None:
        self._commit = commit
        self._refused = refused
        self._gather = gather_s
        self._name = name
        self._pending: list[tuple[Sequence[Record], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.committed_records = 0

    @property
    def running(self) -> bool:
        """Whether the writer task runs (between ``start`` and ``stop``)."""
        return self._task is not None

    def start(self) -> None:
        """Start the writer task (in the running loop)."""
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._loop(), name=self._name)

    async def stop(self) -> None:
        """Stop the writer task (flush first if pending appends must land)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def append(self, records: Sequence[Record]) -> asyncio.Future[None]:
        """Queue records for the next group commit; the future resolves when they are durable."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._task is None:
            fut.set_exception(RuntimeError("store is not open"))
            return fut
        self._pending.append((records, fut))
        self._wake.set()
        return fut

    async def flush(self) -> None:
        """Wait for everything appended so far to be committed."""
        await self.append(())

    async def _loop(self) -> None:
        while True:
            await self._wake.wait()
            if self._gather > 0:
                await asyncio.sleep(self._gather)  # optionally wait to gather more appends
            # Without a wait, batching is natural: appends made while a commit runs join the next one.
            self._wake.clear()
            batch, self._pending = self._pending, []
            error = await self._commit([r for recs, _ in batch for r in recs], WRITE_ATTEMPTS)
            if error is not None and self._refused(error) and len(batch) > 1:
                # One append was refused: commit the appends one by one so that only it fails and the
                # others (readings of other devices, say) are not lost with it.
                for recs, fut in batch:
                    self._settle(fut, len(recs), await self._commit(list(recs), 1))
                continue
            for recs, fut in batch:
                self._settle(fut, len(recs), error)

    def _settle(self, fut: asyncio.Future[None], n: int, error: BaseException | None) -> None:
        if fut.done():
            return
        if error is None:
            self.committed_records += n
            fut.set_result(None)
        else:
            fut.set_exception(error)


#: Observation sets: (bay, device, t_device, t_received) -> sets of {param: (value, quality)}.
ObsSets = dict[tuple[str | None, str, T, T], list[dict[str, tuple[float | None, str]]]]


@dataclass
class Rows(Generic[T]):
    """A batch of records as rows per table (numerics grouped into observation sets, waveforms encoded);
    times as the backend stores them."""

    obs: ObsSets[T] = field(default_factory=dict)
    waves: list[tuple[StreamKey, T, int, int, bytes]] = field(default_factory=list)
    statuses: list[tuple[Any, ...]] = field(default_factory=list)
    alarms: list[tuple[Any, ...]] = field(default_factory=list)
    raws: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    patients: list[tuple[Any, ...]] = field(default_factory=list)
    sessions: list[tuple[Any, ...]] = field(default_factory=list)
    session_events: list[tuple[Any, ...]] = field(default_factory=list)
    accounts: list[tuple[Any, ...]] = field(default_factory=list)
    logins: list[tuple[Any, ...]] = field(default_factory=list)
    audit: list[tuple[Any, ...]] = field(default_factory=list)


def sort_records(records: Iterable[Record], ts: Callable[[datetime], T]) -> Rows[T]:
    """Sort records into rows (CPU work, waveform encoding included: call it off the event loop).

    Column orders: statuses (bay, device_id, state, since, detail); alarms (bay, device_id, code, priority,
    alarm_kind, text, t, active); raws (bay, protocol, source, received, control_id, outcome, detail,
    device_id, payload); events (bay, t, kind, rule_id, alarm_id, priority, user, payload); patients (id,
    identifier, created, payload); sessions (id, patient_id, bay, created); session_events (session_id, seq,
    t, kind, user, payload); accounts (username, t, payload); logins (token_hash, username, t, payload); audit
    (t, user, action, bay, session_id, payload).
    """
    out: Rows[T] = Rows()
    for rec in records:
        it = rec.item
        if isinstance(it, Reading):
            sets = out.obs.setdefault((rec.bay, it.device_id, ts(it.t_device), ts(it.t_received)), [{}])
            if it.param in sets[-1]:
                sets.append({})  # the same parameter twice at one time: a second set
            sets[-1][it.param] = (it.value, it.quality.value)
        elif isinstance(it, WaveSegment):
            codec_id, data = codec.encode(it.samples)
            key = (it.bay, it.device_id, it.channel, it.fs, it.unit, it.gain)
            out.waves.append((key, ts(it.t0), len(it.samples), codec_id, data))
        elif isinstance(it, DeviceStatus):
            out.statuses.append((rec.bay, it.device_id, it.state.value, ts(it.since), it.detail))
        elif isinstance(it, AlarmEvent):
            priority = None if it.priority is None else it.priority.value
            out.events.append(
                (rec.bay, ts(it.t), it.kind.value, it.rule_id, it.alarm_id, priority, it.user, it.model_dump_json())
            )
        elif isinstance(it, RawMessage):
            out.raws.append(
                (
                    rec.bay,
                    it.protocol,
                    it.source,
                    ts(it.received),
                    it.control_id,
                    it.outcome,
                    it.detail,
                    it.device_id,
                    it.payload,
                )
            )
        elif isinstance(it, DeviceAlarm):
            out.alarms.append(
                (
                    rec.bay,
                    it.device_id,
                    it.code,
                    it.priority.value,
                    it.alarm_kind.value,
                    it.text,
                    ts(it.t),
                    it.active,
                )
            )
        elif isinstance(it, AuditEvent):
            out.audit.append((ts(it.t), it.user, it.action, it.bay, it.session_id, it.model_dump_json()))
        elif isinstance(it, UserAccount):
            out.accounts.append((it.username, ts(it.t), it.model_dump_json()))
        elif isinstance(it, LoginSession):
            out.logins.append((it.token_hash, it.username, ts(it.t), it.model_dump_json()))
        elif isinstance(it, Patient):
            out.patients.append((it.id, it.identifier, ts(it.created_at), it.model_dump_json()))
        else:  # a session event
            if isinstance(it, SessionCreated):
                out.sessions.append((it.session_id, it.patient_id, it.bay, ts(it.t)))
            out.session_events.append((it.session_id, it.seq, ts(it.t), it.kind, it.user, it.model_dump_json()))
    return out


def where(filters: Sequence[tuple[str, Any]], placeholder: Callable[[int], str]) -> tuple[str, list[Any]]:
    """`` WHERE`` with the clauses whose value is not None (each holds one ``{}`` for its parameter, which
    ``placeholder(i)`` names, counting from 1), and their values."""
    used = [(clause, value) for clause, value in filters if value is not None]
    if not used:
        return "", []
    sql = " WHERE " + " AND ".join(clause.format(placeholder(i)) for i, (clause, _) in enumerate(used, start=1))
    return sql, [v for _, v in used]


def stored_readings(
    rows: Iterable[tuple[str | None, str, Iterable[tuple[str, Any, str | None]], datetime, datetime]],
    *,
    param: str | None,
    limit: int,
) -> list[StoredReading]:
    """Observation sets (bay, device, [(param, value, quality or None for valid)], t_device, t_received) back
    into readings, keeping only ``param`` if given, at most ``limit``. Values were validated when written:
    the models are built without a second validation (30k readings: ~0.3 s)."""
    out: list[StoredReading] = []
    for bay, dev, values, t_device, t_received in rows:
        for p, v, q in values:
            if param is not None and p != param:
                continue
            out.append(
                StoredReading(
                    bay=bay,
                    reading=Reading.model_construct(
                        device_id=dev,
                        param=p,
                        value=None if v is None else float(v),
                        unit=parameters.get(p).ucum,
                        quality=Quality(q or "valid"),
                        t_device=t_device,
                        t_received=t_received,
                    ),
                )
            )
        if len(out) >= limit:
            return out[:limit]
    return out


def wave_segments(rows: Iterable[Any], t0_of: Callable[[Any], datetime], since: datetime | None) -> list[WaveSegment]:
    """Rows (bay, device, channel, fs, unit, gain, t0, n, codec, data) decoded into segments, without those
    that end before ``since``."""
    segs: list[WaveSegment] = []
    for bay, dev, ch, fs, unit, gain, t0, n, c, data in rows:
        start = t0_of(t0)
        if since is not None and (start - since).total_seconds() + n / fs <= 0:
            continue
        segs.append(WaveSegment(bay, dev, ch, start, fs, unit, gain, tuple(codec.decode(c, data, n))))
    return segs


def stored_status(bay: str | None, device_id: str, state: str, since: datetime, detail: str) -> StoredStatus:
    """A device_status row back into its model."""
    return StoredStatus(
        bay=bay, status=DeviceStatus(device_id=device_id, state=DeviceState(state), since=since, detail=detail)
    )


def device_alarm(
    device_id: str, code: str, priority: str, alarm_kind: str, text: str, t: datetime, active: Any
) -> DeviceAlarm:
    """A device_alarms row back into its model."""
    return DeviceAlarm(
        device_id=device_id,
        code=code,
        priority=Priority(priority),
        alarm_kind=AlarmKind(alarm_kind),
        text=text,
        t=t,
        active=bool(active),
    )


def raw_message(
    protocol: str,
    source: str,
    received: datetime,
    control_id: str | None,
    outcome: str,
    detail: str,
    device_id: str | None,
    payload: Any,
) -> RawMessage:
    """A raw_messages row back into its model."""
    return RawMessage(
        protocol=protocol,
        source=source,
        received=received,
        control_id=control_id,
        outcome=outcome,
        detail=detail,
        device_id=device_id,
        payload=bytes(payload),
    )
