"""Login, logout, the signed-in user, user accounts and the audit trail (issue 11)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import CSRF_COOKIE, SESSION_COOKIE, CurrentUser, Svc, session_token
from app.security.model import USERNAME, AuditEvent, UserAccount
from app.security.passwords import MIN_LENGTH, verify
from app.security.roles import MATRIX, Role
from app.security.service import AuthService, LoginRefused, User

router = APIRouter(tags=["auth"])


class LoginRequest(BaseModel):
    """Credentials; ``token``: an API client wants the session token in the answer instead of cookies."""

    model_config = ConfigDict(extra="forbid")
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)
    token: bool = False


class Me(BaseModel):
    """The signed-in user."""

    username: str
    role: str | None
    permissions: list[str]
    bays: list[str] | None
    must_change: bool


class LoginOut(BaseModel):
    """A successful login: the user, the CSRF token for state-changing requests, and (API clients) the token."""

    user: Me
    csrf_token: str | None = None
    token: str | None = None
    expires_in_s: float


class PasswordChange(BaseModel):
    """A new password for the signed-in user."""

    model_config = ConfigDict(extra="forbid")
    current: str = Field(min_length=1, max_length=1024)
    new: str = Field(min_length=MIN_LENGTH, max_length=1024)


class UserIn(BaseModel):
    """A new account (the answer carries its one-time password)."""

    model_config = ConfigDict(extra="forbid")
    username: str = Field(pattern=USERNAME)
    role: Role
    display_name: str = Field(default="", max_length=100)
    bays: list[str] = Field(default_factory=list)
    live: bool = False


class UserPatch(BaseModel):
    """Changes to an account."""

    model_config = ConfigDict(extra="forbid")
    role: Role | None = None
    display_name: str | None = Field(default=None, max_length=100)
    bays: list[str] | None = None
    live: bool | None = None
    disabled: bool | None = None


class UserOut(BaseModel):
    """An account without its password hash."""

    username: str
    role: Role
    display_name: str
    bays: list[str]
    live: bool
    must_change: bool
    disabled: bool
    changed: datetime
    changed_by: str


class NewUserOut(BaseModel):
    """A created account and its one-time password (shown once)."""

    user: UserOut
    one_time_password: str


def _auth(svc: Svc) -> AuthService:
    if svc.auth is None or svc.settings.auth == "off":
        raise HTTPException(status.HTTP_404_NOT_FOUND, "authentication is off on this server")
    return svc.auth


def _me(user: User) -> Me:
    return Me(
        username=user.name,
        role=None if user.role is None else user.role.value,
        permissions=sorted(p.value for p in user.perms),
        bays=None if user.bays is None else sorted(user.bays),
        must_change=user.must_change,
    )


def _user_out(a: UserAccount) -> UserOut:
    return UserOut(
        username=a.username,
        role=a.role,
        display_name=a.display_name,
        bays=list(a.bays),
        live=a.live,
        must_change=a.must_change,
        disabled=a.disabled,
        changed=a.t,
        changed_by=a.by,
    )


def _source(request: Request) -> str:
    return request.client.host if request.client else ""


def _secure(request: Request, svc: Svc) -> bool:
    configured = svc.settings.cookie_secure
    return request.url.scheme == "https" if configured is None else configured


@router.post("/api/login")
async def login(body: LoginRequest, request: Request, response: Response, user: CurrentUser, svc: Svc) -> LoginOut:
    """Sign in: sets the session cookie (HttpOnly, SameSite=Strict; Secure over https) and the CSRF cookie."""
    auth = _auth(svc)
    try:
        token, signed_in = await auth.login(body.username, body.password, _source(request))
    except LoginRefused as e:
        headers = {"Retry-After": str(int(e.retry_after_s or 1) + 1)} if e.status == 429 else None
        raise HTTPException(e.status, e.reason, headers=headers) from None
    max_age = auth.session.total_seconds()
    if body.token:
        return LoginOut(user=_me(signed_in), token=token, expires_in_s=max_age)
    csrf = auth.csrf_token(token)
    secure = _secure(request, svc)
    response.set_cookie(
        SESSION_COOKIE, token, max_age=int(max_age), httponly=True, samesite="strict", secure=secure, path="/"
    )
    response.set_cookie(
        CSRF_COOKIE, csrf, max_age=int(max_age), httponly=False, samesite="strict", secure=secure, path="/"
    )
    return LoginOut(user=_me(signed_in), csrf_token=csrf, expires_in_s=max_age)


@router.post("/api/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(request: Request, user: CurrentUser, svc: Svc) -> Response:
    """Sign out: the session is revoked on every instance and the cookies are cleared."""
    if svc.auth is not None and user.token_hash is not None:
        await svc.auth.logout(user, _source(request))
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")
    return response


@router.get("/api/me")
async def me(user: CurrentUser) -> Me:
    """The signed-in user, role, permissions and bays."""
    return _me(user)


@router.post("/api/me/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(body: PasswordChange, request: Request, user: CurrentUser, svc: Svc) -> Response:
    """Change one's own password (required after a one-time password)."""
    auth = _auth(svc)
    account = auth.accounts.get(user.name)
    if account is None or not verify(account.password_hash, body.current):
        await auth.audit(user.name, "user.password", source=_source(request), outcome="refused")
        raise HTTPException(status.HTTP_403_FORBIDDEN, "the current password is wrong")
    await auth.set_password(user.name, body.new, by=user.name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/api/users")
async def users(user: CurrentUser, svc: Svc) -> list[UserOut]:
    """Every account (admin)."""
    return [_user_out(a) for a in sorted(_auth(svc).accounts.values(), key=lambda a: a.username)]


@router.post("/api/users", status_code=status.HTTP_201_CREATED)
async def add_user(body: UserIn, user: CurrentUser, svc: Svc) -> NewUserOut:
    """Create an account with a one-time password (admin)."""
    auth = _auth(svc)
    try:
        account, password = await auth.add_user(
            body.username,
            body.role,
            by=user.name,
            bays=tuple(body.bays),
            live=body.live,
            display_name=body.display_name,
        )
    except ValueError as e:
        raise HTTPException(status.HTTP_409_CONFLICT, str(e)) from None
    return NewUserOut(user=_user_out(account), one_time_password=password)


@router.patch("/api/users/{username}")
async def update_user(username: str, body: UserPatch, user: CurrentUser, svc: Svc) -> UserOut:
    """Change an account's role, bays, live grant, display name or disable it (admin)."""
    auth = _auth(svc)
    changes: dict[str, Any] = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    if "bays" in changes:
        changes["bays"] = tuple(changes["bays"])
    if username == user.name and (changes.get("disabled") or changes.get("role", Role.ADMIN) != Role.ADMIN):
        raise HTTPException(status.HTTP_409_CONFLICT, "an admin cannot disable or demote their own account")
    try:
        return _user_out(await auth.update_user(username, by=user.name, **changes))
    except KeyError:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {username!r}") from None


@router.get("/api/audit")
async def audit_trail(
    user: CurrentUser,
    svc: Svc,
    username: str | None = None,
    bay: str | None = None,
    session_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = Query(default=500, ge=1, le=10_000),
) -> list[AuditEvent]:
    """The audit trail, newest first (admin)."""
    return await svc.store.audit_events(
        user=username, bay=bay, session_id=session_id, since=since, until=until, limit=limit
    )


def role_matrix() -> dict[str, list[str]]:
    """Role -> permissions (for documentation and the README)."""
    return {r.value: sorted(p.value for p in MATRIX[r]) for r in Role}


__all__ = ["role_matrix", "router", "session_token"]
