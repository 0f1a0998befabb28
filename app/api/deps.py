"""Dependencies shared by every handler: the current user and the running services.

``current_user`` is the single gate every HTTP route and websocket goes through (an app-level dependency).
It finds the matched route in the role matrix (``app.security.roles.ROUTES``; a route not listed there is
refused: fail closed), authenticates the request (session cookie, or ``Authorization: Bearer`` for API
clients), checks the CSRF token of cookie-authenticated state-changing requests, the role's permission and
the user's bay scope, and leaves the user in ``conn.state.user`` for the audit trail.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, HTTPException, WebSocketException, status
from starlette.requests import HTTPConnection

from app.security.roles import ROUTES, Perm
from app.security.service import LOCAL_USER, User
from app.services import Services

__all__ = ["CurrentUser", "Svc", "User", "current_user", "services"]

log = logging.getLogger(__name__)

SESSION_COOKIE = "vigil_session"
CSRF_COOKIE = "vigil_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Routes a user whose password must be changed may still use.
PASSWORD_CHANGE_ROUTES = frozenset({"/api/me", "/api/me/password", "/api/logout", "/api/login"})
ANONYMOUS = User(name="anonymous", role=None, perms=frozenset({Perm.PUBLIC}), bays=frozenset())


def services(conn: HTTPConnection) -> Services:
    """The running services of this app instance."""
    svc: Services = conn.app.state.services
    return svc


def route_key(conn: HTTPConnection) -> tuple[str, str | None]:
    """(method, path template) of the matched route; "WS" for websockets, GET for HEAD."""
    route = conn.scope.get("route")
    path = getattr(route, "path", None)
    if conn.scope["type"] == "websocket":
        return "WS", path
    method = conn.scope["method"]
    return ("GET" if method == "HEAD" else method), path


def session_token(conn: HTTPConnection) -> tuple[str | None, bool]:
    """The session token and whether it came from the cookie (else from a bearer header)."""
    header = conn.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip() or None, False
    return conn.cookies.get(SESSION_COOKIE), True


def _refuse(conn: HTTPConnection, code: int, detail: str) -> Exception:
    if conn.scope["type"] == "websocket":
        # before the upgrade is accepted: the client sees the HTTP refusal (403)
        return WebSocketException(code=status.WS_1008_POLICY_VIOLATION, reason=detail)
    headers = {"WWW-Authenticate": 'Bearer realm="vigil"'} if code == 401 else None
    return HTTPException(code, detail, headers=headers)


async def current_user(conn: HTTPConnection) -> User:
    """The authenticated user allowed to use the matched route, or 401/403 (websocket: policy close)."""
    svc = services(conn)
    method, path = route_key(conn)
    perm = ROUTES.get((method, path or ""))
    if svc.settings.auth == "off":  # loopback only (see Settings.auth)
        conn.state.user = LOCAL_USER
        return LOCAL_USER
    if perm is None:
        log.error("route %s %s is not in the role matrix: refused", method, path)
        raise _refuse(conn, status.HTTP_403_FORBIDDEN, "this route is not in the role matrix")
    token, via_cookie = session_token(conn)
    auth = svc.auth
    assert auth is not None, "the auth service starts with the app"
    user = await auth.authenticate(token)
    if perm is Perm.PUBLIC:
        conn.state.user = user or ANONYMOUS
        return user or ANONYMOUS
    if user is None or token is None:
        raise _refuse(conn, status.HTTP_401_UNAUTHORIZED, "sign in first")
    conn.state.user = user  # the audit trail names who was refused, too
    if user.must_change and path not in PASSWORD_CHANGE_ROUTES:
        raise _refuse(conn, status.HTTP_403_FORBIDDEN, "password_change_required")
    unsafe = via_cookie and method not in SAFE_METHODS and method != "WS"
    if unsafe and not auth.csrf_ok(token, conn.headers.get(CSRF_HEADER)):
        raise _refuse(conn, status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")
    if not user.may(perm):
        raise _refuse(conn, status.HTTP_403_FORBIDDEN, f"your role may not do this ({perm.value})")
    bay = conn.path_params.get("bay")
    if bay is not None and not user.sees_bay(bay):
        raise _refuse(conn, status.HTTP_403_FORBIDDEN, f"bay {bay} is not among your bays")
    sid = conn.path_params.get("session_id")
    if sid is not None and user.bays is not None and svc.sessions is not None:
        if sid not in svc.sessions.sessions:
            await svc.sessions.refresh()  # perhaps created through another instance
        s = svc.sessions.sessions.get(sid)
        if s is not None and not user.sees_bay(s.bay):
            raise _refuse(conn, status.HTTP_403_FORBIDDEN, f"bay {s.bay} is not among your bays")
    conn.state.user = user
    return user


CurrentUser = Annotated[User, Depends(current_user)]
Svc = Annotated[Services, Depends(services)]
