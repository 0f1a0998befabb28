"""Read-only trend data for the live screens (issue 9).

``GET /api/bays/{bay}/trends`` — a bay's numerics over a window (by default its open session so far, else
the last 2 h), downsampled server-side so a whole session is a few hundred points per parameter: the
readings are cut into buckets of ``bucket_s`` (≥ 20 s) and each bucket keeps its minimum and its maximum,
in the order they occurred. That is at most one point per 10 s on average and keeps every peak and trough
(a 40 s desaturation to 84 % still shows as 84 %), which a mean or a "every Nth reading" would not.
Invalid readings (no value, or quality "invalid") are left out; a silence longer than ``gap_s`` breaks the
line (a ``null`` point) so "no data" never looks like a straight line between two values. Phase bands come
from the bay's infusion sessions (their phase changes) overlapping the window.

``GET /api/station/sessions`` — one row per open session (bay, phase, clocks, patient initials) so the
central station shows every bay's phase and clocks with one request.

Times on this API are Unix seconds (floats), as on the websocket.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.alarms.model import Phase
from app.api.deps import CurrentUser, Svc
from app.services import Services
from app.sessions.model import Refused
from app.sessions.workflow import SessionState
from monitors import parameters
from monitors.models import Quality

router = APIRouter(tags=["trends"])

#: The parameters a bedside trend shows when none are asked for (issue 9: HR, SBP/DBP/MAP, SpO2, RR, EtCO2).
DEFAULT_PARAMS: tuple[str, ...] = ("hr", "nibp_sys", "nibp_dia", "nibp_mean", "spo2", "rr", "etco2")
#: Without an open session the trend covers this much history.
DEFAULT_WINDOW = timedelta(hours=2)
#: Longest window one request may ask for.
MAX_WINDOW = timedelta(hours=24)
#: Smallest bucket: two points (min and max) per 20 s = at most one point per 10 s on average.
MIN_BUCKET_S = 20.0
#: Larger windows get larger buckets so no series exceeds about this many points.
MAX_POINTS = 2_000
#: Readings fetched from the store per query (the store's own default page size).
_PAGE = 10_000


class TrendQuery(BaseModel):
    """Query string of ``GET /api/bays/{bay}/trends``."""

    model_config = ConfigDict(extra="forbid")
    since: float | None = Field(
        default=None, ge=0, description="Unix s; default: the open session's start, else now − 2 h"
    )
    until: float | None = Field(default=None, ge=0, description="Unix s; default: now (open-ended)")
    param: list[str] = Field(default_factory=list, description="Parameters (repeatable); default: the trend set")

    @model_validator(mode="after")
    def _check(self) -> TrendQuery:
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError("until must be after since")
        for p in self.param:
            row = parameters.CATALOGUE.get(p)
            if row is None:
                raise ValueError(f"unknown parameter {p!r}")
            if row.kind is not parameters.Kind.NUMERIC:
                raise ValueError(f"{p!r} is a waveform, not a numeric")
        return self


class TrendSeries(BaseModel):
    """One parameter: times (Unix s) and values; a ``null`` value is a gap (no valid data)."""

    param: str
    unit: str
    episodic: bool
    t: list[float]
    v: list[float | None]


class PhaseBand(BaseModel):
    """A session phase over time; ``end`` null while it is still the current phase."""

    phase: Phase
    start: float
    end: float | None
    session_id: str


class Trends(BaseModel):
    """A bay's trends over [since, until]."""

    bay: str
    since: float
    until: float
    now: float
    bucket_s: float
    session_id: str | None = Field(description="The open session whose start set ``since`` by default")
    series: list[TrendSeries]
    phases: list[PhaseBand]


class SessionClock(BaseModel):
    """An open session as the central station shows it on the bay's tile."""

    bay: str
    session_id: str
    patient_initials: str
    phase: Phase
    phase_since: float | None
    infusion_elapsed_s: float | None
    infusion_planned_s: float | None
    infusion_running: bool
    infusion_overrun: bool
    recovery_elapsed_s: float | None
    recovery_required_s: float
    now: float


# ---- pure parts ------------------------------------------------------------------------------------------


def bucket_for(span_s: float) -> float:
    """Bucket width for a window: 20 s, or wider (a multiple of 10 s) so a series stays ≤ MAX_POINTS."""
    need = 2 * span_s / MAX_POINTS  # two points per bucket
    if need <= MIN_BUCKET_S:
        return MIN_BUCKET_S
    return float(10 * -(-need // 10))


def downsample(
    points: Sequence[tuple[float, float]], bucket_s: float, *, gap_s: float | None = None
) -> list[tuple[float, float | None]]:
    """Min/max per bucket of ``bucket_s`` (aligned to multiples of it), in time order.

    ``points`` are (t, value) in time order. Each bucket yields its minimum and its maximum (the first
    occurrence of each), in the order they happened; one point if they are the same reading. When two
    consecutive kept points are more than ``gap_s`` apart a (t, None) gap marker goes between them.
    """
    out: list[tuple[float, float | None]] = []
    i = 0
    n = len(points)
    while i < n:
        key = points[i][0] // bucket_s
        lo = hi = i
        j = i + 1
        while j < n and points[j][0] // bucket_s == key:
            if points[j][1] < points[lo][1]:
                lo = j
            if points[j][1] > points[hi][1]:
                hi = j
            j += 1
        for k in sorted({lo, hi}):
            t, v = points[k]
            if gap_s is not None and out and t - out[-1][0] > gap_s:
                out.append((out[-1][0] + (t - out[-1][0]) / 2, None))
            out.append((t, v))
        i = j
    return out


def initials(name: str) -> str:
    """ "Jane Q. Doe" → "J.Q.D." (what a shared screen may show of a patient)."""
    parts = [p for p in name.replace("-", " ").split() if p[:1].isalpha()]
    return "".join(f"{p[0].upper()}." for p in parts[:3])


def phase_bands(sessions: Iterable[SessionState], since: float, until: float) -> list[PhaseBand]:
    """The phases of ``sessions`` that overlap [since, until], oldest first."""
    bands: list[PhaseBand] = []
    for s in sessions:
        # A session opens "planned" (no phase change records that), then each change starts a phase.
        changes: list[tuple[Phase, float]] = [
            (c.to_phase, c.t.timestamp()) for c in sorted(s.phases, key=lambda e: e.t)
        ]
        if s.created_at is not None:
            changes.insert(0, (Phase.PLANNED, s.created_at.timestamp()))
        for k, (phase, start) in enumerate(changes):
            if phase in (Phase.DISCHARGED, Phase.ABORTED):
                continue
            end = changes[k + 1][1] if k + 1 < len(changes) else None
            if start >= until or (end is not None and end <= since) or (end is not None and end <= start):
                continue
            bands.append(PhaseBand(phase=phase, start=start, end=end, session_id=s.id))
    return sorted(bands, key=lambda b: b.start)


# ---- handlers --------------------------------------------------------------------------------------------


def _bay_or_404(svc: Services, bay: str) -> None:
    if bay not in {b.id for b in svc.settings.bays}:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no bay {bay!r}")


def _dt(unix_s: float) -> datetime:
    return datetime.fromtimestamp(unix_s, UTC)


async def _points(svc: Services, bay: str, param: str, since: float, until: float) -> list[tuple[float, float]]:
    """Valid readings of one parameter in [since, until), in device-time order (paged through the store)."""
    out: list[tuple[float, float]] = []
    start = _dt(since)
    end = _dt(until)
    while True:
        rows = await svc.store.readings(bay=bay, param=param, since=start, until=end, limit=_PAGE)
        for row in rows:
            r = row.reading
            if r.value is not None and r.quality is not Quality.INVALID:
                out.append((r.t_device.timestamp(), float(r.value)))
        if len(rows) < _PAGE:
            return out
        start = rows[-1].reading.t_device + timedelta(microseconds=1)


@router.get("/api/bays/{bay}/trends")
async def bay_trends(bay: str, query: Annotated[TrendQuery, Query()], user: CurrentUser, svc: Svc) -> Trends:
    """The bay's numerics over a window, min/max-downsampled, with the session's phase bands."""
    _bay_or_404(svc, bay)
    if svc.sessions is not None:
        await svc.sessions.refresh()  # phase bands of a session another instance changed
    now = datetime.now(UTC).timestamp()
    active = svc.sessions.active_for_bay(bay) if svc.sessions is not None else None
    until = query.until if query.until is not None else now
    since = query.since
    session_id = None
    if since is None:
        if active is not None and active.created_at is not None:
            since = active.created_at.timestamp()
            session_id = active.id
        else:
            since = until - DEFAULT_WINDOW.total_seconds()
    if until <= since:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "since must be before until (and not in the future)")
    if until - since > MAX_WINDOW.total_seconds():
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"window longer than {MAX_WINDOW.total_seconds() / 3600:g} h"
        )
    bucket = bucket_for(until - since)
    series: list[TrendSeries] = []
    for key in query.param or DEFAULT_PARAMS:
        row = parameters.CATALOGUE[key]
        episodic = row.cadence is parameters.Cadence.EPISODIC
        pts = await _points(svc, bay, key, since, until)
        # Episodic NIBP: every measurement is kept (a few per hour) and never joined across a gap marker.
        kept: list[tuple[float, float | None]] = (
            list(pts) if episodic else downsample(pts, bucket, gap_s=max(60.0, 3 * bucket))
        )
        series.append(
            TrendSeries(
                param=key,
                unit=row.ucum,
                episodic=episodic,
                t=[round(t, 3) for t, _ in kept],
                v=[v for _, v in kept],
            )
        )
    sessions = [s for s in svc.sessions.sessions.values() if s.bay == bay] if svc.sessions is not None else []
    return Trends(
        bay=bay,
        since=since,
        until=until,
        now=now,
        bucket_s=bucket,
        session_id=session_id,
        series=series,
        phases=phase_bands(sessions, since, until),
    )


@router.get("/api/station/sessions")
async def station_sessions(user: CurrentUser, svc: Svc) -> list[SessionClock]:
    """Every open session's phase and clocks (one row per bay that has one), for the central station."""
    if svc.sessions is None:
        return []
    await svc.sessions.refresh()
    out: list[SessionClock] = []
    for s in svc.sessions.active():
        if not user.sees_bay(s.bay):
            continue
        view = svc.sessions.view(s.id)
        c = view.clocks
        try:
            who = initials(svc.sessions.patient(s.patient_id).name)
        except Refused:  # an unknown patient id must not hide the bay's clocks
            who = ""
        out.append(
            SessionClock(
                bay=s.bay,
                session_id=s.id,
                patient_initials=who,
                phase=view.phase,
                phase_since=None if view.phase_since is None else view.phase_since.timestamp(),
                infusion_elapsed_s=c.infusion_elapsed_s,
                infusion_planned_s=c.infusion_planned_s,
                infusion_running=view.pump.state == "running",
                infusion_overrun=c.infusion_overrun,
                recovery_elapsed_s=c.recovery_elapsed_s,
                recovery_required_s=c.recovery_required_s,
                now=view.now.timestamp(),
            )
        )
    return out
