"""Session report and exports of a recorded session (issue 8 items 5 and 6).

- ``GET /api/recordings/{sid}/report.html``: the printable report (self-contained HTML, plotly inlined).
- ``GET /api/recordings/{sid}/export/{fmt}`` with ``fmt`` one of ``numerics.csv``, ``alarms.csv``,
  ``charting.csv``, ``oru.hl7``, ``fhir.json`` (``app.recording.export.FORMATS``).

Both take ``tz`` (an IANA zone such as ``Europe/Paris``) to show clinic times beside UTC (CSV ``time_local``
column; report clock), and the FHIR export takes ``interval_s`` (continuous numerics sampled once per
interval; 0 = every reading). Unknown session or format: 404 ``{"detail": {"code", "reason"}}``; an
unknown zone: 422. Building a report or export is CPU work, done in a worker thread so the event loop (and
every live bedside) is not held up.
"""

from __future__ import annotations

import asyncio
from datetime import tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Query, Response

from app.api.deps import CurrentUser, Svc
from app.recording import export, report
from app.recording.load import load_recording
from app.sessions.model import Refused

router = APIRouter(tags=["exports"])


def zone(name: str | None) -> tzinfo | None:
    """The clinic time zone named (None: UTC only); ``Refused`` 422 for an unknown name."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Refused(
            "unknown_time_zone", f"Unknown time zone {name!r} (use an IANA name such as Europe/Paris).", status=422
        ) from None


def _disposition(kind: str, name: str) -> dict[str, str]:
    return {"Content-Disposition": f'{kind}; filename="{name}"', "Cache-Control": "no-store"}


@router.get("/api/recordings/{sid}/report.html")
async def session_report(sid: str, user: CurrentUser, svc: Svc, tz: str | None = None) -> Response:
    """The session report as one printable, self-contained HTML page."""
    clinic = zone(tz)
    rec = await load_recording(svc.store, sid)
    body = await asyncio.to_thread(report.render_report, rec, tz=clinic)
    return Response(
        body,
        media_type="text/html; charset=utf-8",
        headers={
            **_disposition("inline", export.filename(rec, "report.html")),
            # the report is one self-contained, offline document (plotly and its chart calls inlined): its own
            # policy allows its inline scripts and nothing remote; every other answer keeps script-src 'self'
            "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
            "img-src data: blob:; font-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        },
    )


@router.get("/api/recordings/{sid}/export/{fmt}")
async def session_export(
    sid: str,
    fmt: str,
    user: CurrentUser,
    svc: Svc,
    tz: str | None = None,
    interval_s: float = Query(default=export.FHIR_INTERVAL_S, ge=0, le=3600),
) -> Response:
    """One export format of a recorded session, as a download."""
    f = export.FORMATS.get(fmt)
    if f is None:
        known = ", ".join(export.FORMATS)
        raise Refused("unknown_format", f"Unknown export format {fmt!r}; known formats: {known}.", status=404)
    clinic = zone(tz)
    rec = await load_recording(svc.store, sid)
    if fmt == "fhir.json":
        body = (await asyncio.to_thread(export.fhir_json, rec, interval_s=interval_s)).encode()
    else:
        body = await asyncio.to_thread(f.make, rec, clinic)
    return Response(body, media_type=f.media_type, headers=_disposition("attachment", export.filename(rec, fmt)))
