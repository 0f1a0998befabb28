"""ASGI middleware: security headers on every answer, a login gate for pages, and the audit trail of requests.

- ``SecurityHeaders``: a Content-Security-Policy without inline or remote scripts (the frontend has no inline
  script and no CDN), no framing, no sniffing, no referrer; HSTS over https.
- ``PageGuard``: static pages and assets need a login (API routes and websockets are gated by
  ``current_user``); a signed-out browser asking for a page is sent to the login page.
- ``AuditTrail``: every state-changing request and every read of recorded patient data (replays, reports,
  exports) is appended to the audit trail with user, time, bay/session, the request body (passwords
  removed) and the outcome. Handlers may add what was there before in ``request.state.audit_before``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.security.service import AuthService

log = logging.getLogger(__name__)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "font-src 'self'; connect-src 'self'; media-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
#: connect-src 'self' covers same-origin ws:/wss: in current browsers (CSP Level 3).

#: Paths that need no login (besides /healthz and /api/login, which the role matrix makes public).
PUBLIC_PREFIXES = ("/login.html", "/favicon.svg", "/styles/", "/lib/login.js")
#: Paths gated by ``current_user`` (the role matrix), not by the page guard.
API_PREFIXES = ("/api/", "/ws", "/healthz", "/vendor/")

#: (method, path template) -> audit action.
AUDITED: dict[tuple[str, str], str] = {
    ("POST", "/api/bays/{bay}/alarms/acknowledge"): "alarm.acknowledge",
    ("POST", "/api/bays/{bay}/alarms/audio-pause"): "alarm.audio_pause",
    ("POST", "/api/bays/{bay}/alarms/audio-resume"): "alarm.audio_resume",
    ("POST", "/api/bays/{bay}/phase"): "phase.change",
    ("PUT", "/api/bays/{bay}/alarm-limits"): "alarm.limits",
    ("POST", "/api/patients"): "patient.register",
    ("POST", "/api/sessions"): "session.create",
    ("POST", "/api/sessions/{session_id}/transition"): "phase.change",
    ("POST", "/api/sessions/{session_id}/baseline"): "chart.baseline",
    ("POST", "/api/sessions/{session_id}/infusion"): "chart.infusion",
    ("POST", "/api/sessions/{session_id}/chart"): "chart.entry",
    ("POST", "/api/devices/{device_id}/simulation"): "device.simulation",
    ("POST", "/api/replays"): "replay.open",
    ("POST", "/api/replays/{replay_id}/control"): "replay.control",
    ("DELETE", "/api/replays/{replay_id}"): "replay.close",
    ("POST", "/api/recordings/{sid}/whatif"): "recording.whatif",
    ("GET", "/api/recordings/{sid}/report.html"): "recording.report",
    ("GET", "/api/recordings/{sid}/export/{fmt}"): "recording.export",
    ("GET", "/api/recordings/{session_id}/timeline"): "recording.view",
}
_REDACT = frozenset({"password", "current", "new"})
_MAX_BODY = 64 * 1024


class SecurityHeaders:
    """Adds the security headers to every HTTP answer."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {k.lower() for k, _ in headers}
                extra = [
                    (b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"cross-origin-opener-policy", b"same-origin"),
                    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
                ]
                if self.hsts or scope.get("scheme") == "https":
                    extra.append((b"strict-transport-security", b"max-age=31536000"))
                headers += [(k, v) for k, v in extra if k not in names]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _cookie(scope: Scope, name: str) -> str | None:
    for k, v in scope.get("headers", []):
        if k == b"cookie":
            for part in v.decode("latin-1").split(";"):
                key, _, value = part.strip().partition("=")
                if key == name:
                    return str(value)
    return None


class PageGuard:
    """Static pages and assets need a signed-in user; signed-out browsers go to the login page."""

    def __init__(self, app: ASGIApp, auth: Callable[[], AuthService | None], cookie: str) -> None:
        self.app = app
        self.auth = auth  # the app's AuthService once started
        self.cookie = cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or path.startswith(API_PREFIXES) or path.startswith(PUBLIC_PREFIXES):
            await self.app(scope, receive, send)
            return
        auth = self.auth()
        if auth is None or await auth.authenticate(_cookie(scope, self.cookie)) is not None:
            await self.app(scope, receive, send)
            return
        page = path == "/" or path.endswith((".html", "/")) or "." not in path.rsplit("/", 1)[-1]
        if page:
            query = scope.get("query_string", b"").decode("latin-1")
            target = path + (f"?{query}" if query else "")
            headers = [
                (b"location", f"/login.html?next={quote(target, safe='')}".encode()),
                (b"cache-control", b"no-store"),
            ]
            await send({"type": "http.response.start", "status": 303, "headers": headers})
        else:
            headers = [(b"content-type", b"text/plain; charset=utf-8")]
            await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if page else b"sign in first"})


def _redacted(body: bytes) -> dict[str, Any] | None:
    if not body:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return {"raw_bytes": len(body)}
    if not isinstance(data, dict):
        return {"body": data}
    return {k: ("***" if k in _REDACT else v) for k, v in data.items()}


class AuditTrail:
    """Appends audited requests (see ``AUDITED``) to the audit trail as they are answered (before the last byte)."""

    def __init__(self, app: ASGIApp, auth: Callable[[], AuthService | None]) -> None:
        self.app = app
        self.auth = auth  # the app's AuthService once started

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = bytearray()
        answer: dict[str, int] = {}

        async def receive_and_keep() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) < _MAX_BODY:
                body.extend(message.get("body", b"")[: _MAX_BODY - len(body)])
            return message

        done = False

        async def record() -> None:
            route = scope.get("route")
            method = "GET" if scope["method"] == "HEAD" else scope["method"]
            action = AUDITED.get((method, getattr(route, "path", "")))
            auth = self.auth()
            if action is None or auth is None:
                return
            state: dict[str, Any] = scope.get("state", {})
            code = answer.get("status", 500)
            params: dict[str, Any] = scope.get("path_params", {})
            after = _redacted(bytes(body)) or {}
            after = {**after, **{k: v for k, v in params.items() if k not in ("bay", "session_id")}, "status": code}
            client = scope.get("client")
            await auth.audit(
                getattr(state.get("user"), "name", "anonymous"),
                action,
                bay=params.get("bay"),
                session_id=params.get("session_id") or params.get("sid"),
                before=state.get("audit_before"),
                after=after,
                source=client[0] if client else "",
                outcome="ok" if code < 400 else ("refused" if code < 500 else "failed"),
            )

        async def send_and_note(message: Message) -> None:
            nonlocal done
            if message["type"] == "http.response.start":
                answer["status"] = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body", False) and not done:
                done = True
                await record()  # durable before the answer completes: a client that saw it knows it is on record
            await send(message)

        await self.app(scope, receive_and_keep, send_and_note)
