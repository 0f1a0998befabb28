"""Read a recorded session back from the store (for replay, review, what-if, report and export)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.recording.model import RecordingSummary, SessionRecording, WaveSegment
from app.sessions import workflow
from app.sessions.model import Patient, Refused, SessionEvent
from app.store import Store
from monitors.models import DeviceStatus

#: How far before a session's start its devices' last status change is looked for.
_STATUS_LOOKBACK = timedelta(days=2)
#: Upper bound of rows read for one session (a 24-hour session of 1 Hz numerics from two devices).
_MAX_ROWS = 2_000_000


async def _sessions(store: Store) -> tuple[dict[str, Patient], dict[str, workflow.SessionState]]:
    patients = {p.id: p for p in await store.patients()}
    by_session: dict[str, list[SessionEvent]] = {}
    for e in await store.session_events():
        by_session.setdefault(e.session_id, []).append(e)
    sessions: dict[str, workflow.SessionState] = {}
    for sid, events in by_session.items():
        try:
            sessions[sid] = workflow.rebuild(sid, events)
        except ValueError:
            continue  # logged by the session service at start-up; not reviewable
    return patients, sessions


def _end(s: workflow.SessionState) -> datetime | None:
    """When a finished session ended (its discharge/abort), else None."""
    if not s.final:
        return None
    return s.phase_since or (s.events[-1].t if s.events else None)


async def list_recordings(store: Store) -> list[RecordingSummary]:
    """Every session with its patient, newest first."""
    patients, sessions = await _sessions(store)
    out: list[RecordingSummary] = []
    for s in sessions.values():
        p = patients.get(s.patient_id)
        if p is None or s.created_at is None:
            continue
        out.append(
            RecordingSummary(
                session_id=s.id,
                patient_id=p.id,
                patient_name=p.name,
                identifier=p.identifier,
                bay=s.bay,
                start=s.created_at,
                end=_end(s),
                phase=s.phase.value,
                final=s.final,
            )
        )
    out.sort(key=lambda r: r.start, reverse=True)
    return out


async def load_recording(store: Store, session_id: str, *, now: datetime | None = None) -> SessionRecording:
    """Everything recorded for one session except waveforms; ``Refused`` 404 if there is no such session."""
    events = await store.session_events(session_id=session_id)
    if not events:
        raise Refused("no_such_session", f"No recorded session {session_id!r}.", status=404)
    s = workflow.rebuild(session_id, list(events))
    patient = next((p for p in await store.patients() if p.id == s.patient_id), None)
    if patient is None or s.created_at is None:
        raise Refused("no_such_session", f"Session {session_id!r} has no patient.", status=404)
    start = s.created_at
    end = _end(s) or (now or datetime.now(UTC))
    bay = s.bay
    readings = [r.reading for r in await store.readings(bay=bay, since=start, until=end, limit=_MAX_ROWS)]
    # each device's link state as the session began (its last change before the start), then the changes
    before: dict[str, DeviceStatus] = {}
    for st in await store.statuses(bay=bay, since=start - _STATUS_LOOKBACK, until=start, limit=_MAX_ROWS):
        before[st.status.device_id] = st.status
    during = [st.status for st in await store.statuses(bay=bay, since=start, until=end, limit=_MAX_ROWS)]
    statuses = [*before.values(), *during]
    device_alarms = await store.device_alarms(bay=bay, since=start, until=end, limit=_MAX_ROWS)
    alarm_events = [
        e for _, e in await store.alarm_events(bay=bay, since=start, until=end, limit=_MAX_ROWS, oldest_first=True)
    ]
    return SessionRecording(
        session=s,
        patient=patient,
        bay=bay,
        start=start,
        end=end,
        final=s.final,
        readings=readings,
        statuses=statuses,
        device_alarms=device_alarms,
        alarm_events=alarm_events,
    )


async def load_waves(
    store: Store, rec: SessionRecording, since: datetime, until: datetime, *, channel: str | None = None
) -> list[WaveSegment]:
    """The session's waveform segments overlapping [since, until)."""
    return await store.waveforms(bay=rec.bay, channel=channel, since=max(since, rec.start), until=min(until, rec.end))
