"""What-if review (issue 8 item 4): re-run a recorded session through the alarm engine with another profile
or thresholds, and the active alarm profile's rules for a UI that offers those changes.

- ``GET /api/alarm-profile[?name=...]``: a profile's rules with their levels, limits and delays (default:
  the profile the server runs).
- ``POST /api/recordings/{sid}/whatif`` (``WhatIfRequest``): the alarms that would have fired beside those
  that did. 404 unknown session, 400 unknown profile, 422 an override that does not apply or makes the
  profile invalid (``{"detail": {"code", "reason"}}`` as every refusal).

Only bundled profiles (app/alarms/profiles/) and the configured one may be named: a request never makes
the server read a file path it chose. The run is CPU work (about one engine step per input and per second
of the session), so it runs in a worker thread, at most ``_MAX_RUNS`` at a time.
"""

from __future__ import annotations

import asyncio
import re
import time
import weakref
from importlib import resources

from fastapi import APIRouter, Query

from app.alarms.overrides import LevelOverride, OverrideError, apply_overrides
from app.alarms.profile import Profile, ProfileError, load_profile
from app.api.deps import Svc
from app.recording.load import load_recording
from app.recording.whatif import (
    ProfileOut,
    WhatIfRequest,
    WhatIfResult,
    profile_view,
    what_if,
)
from app.services import Services
from app.sessions.model import Refused

router = APIRouter(tags=["review"])

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_MAX_RUNS = 2
_runs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = weakref.WeakKeyDictionary()


def _limit() -> asyncio.Semaphore:
    """The run limit of this event loop (one per server: tests run several, each in its own loop)."""
    loop = asyncio.get_running_loop()
    sem = _runs.get(loop)
    if sem is None:
        sem = _runs[loop] = asyncio.Semaphore(_MAX_RUNS)
    return sem


class WhatIfOut(WhatIfResult):
    """A what-if result with what was asked."""

    requested_profile: str
    overrides: list[LevelOverride]
    elapsed_ms: float


def bundled_profiles() -> list[str]:
    """Names of the profiles shipped in app/alarms/profiles/."""
    folder = resources.files("app.alarms") / "profiles"
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def _available(svc: Services) -> list[str]:
    names = bundled_profiles()
    configured = svc.settings.alarm_profile
    return names if configured in names else [configured, *names]


def _profile(svc: Services, name: str | None) -> Profile:
    """The profile a request names: the server's (default or by its configured name) or a bundled one."""
    active = svc.alarms.engine.profile
    if name is None or name in (svc.settings.alarm_profile, active.id):
        return active
    if not _NAME.match(name):
        raise Refused("unknown_profile", f"Name a bundled profile ({', '.join(_available(svc))}).", status=400)
    try:
        return load_profile(name)
    except ProfileError as e:
        raise Refused("unknown_profile", str(e), status=400) from None


@router.get("/api/alarm-profile")
async def alarm_profile(
    svc: Svc, name: str | None = Query(default=None, max_length=200, description="default: the active profile")
) -> ProfileOut:
    """A profile's rules and levels: ids, labels, limits, delays and phases."""
    return profile_view(_profile(svc, name), available=_available(svc))


@router.post("/api/recordings/{sid}/whatif")
async def recording_whatif(sid: str, req: WhatIfRequest, svc: Svc) -> WhatIfOut:
    """Re-run a recorded session with another profile or thresholds; compare with what fired."""
    base = _profile(svc, req.profile)
    try:
        profile = apply_overrides(base, req.overrides)
    except OverrideError as e:
        raise Refused("invalid_override", str(e), status=422) from None
    rec = await load_recording(svc.store, sid)
    async with _limit():
        t0 = time.perf_counter()
        result = await asyncio.to_thread(what_if, rec, profile)
        elapsed = (time.perf_counter() - t0) * 1000.0
    return WhatIfOut(
        **dict(result),
        requested_profile=req.profile or svc.settings.alarm_profile,
        overrides=req.overrides,
        elapsed_ms=round(elapsed, 1),
    )
