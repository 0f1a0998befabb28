"""Security records: user accounts, login sessions and audit events (append-only, stored by the Store).

Accounts and login sessions are stored as successive versions (each change appends the whole new state);
the newest version wins. Nothing is updated in place, so the account history is its own audit.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from app.security.roles import Role

USERNAME = r"^[a-z][a-z0-9._-]{1,31}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class UserAccount(_Frozen):
    """One version of a user account."""

    username: str = Field(pattern=USERNAME)
    role: Role
    display_name: str = Field(default="", max_length=100)
    #: Bays a nurse works at (empty: every bay). Other roles are not bay-scoped.
    bays: tuple[str, ...] = ()
    #: A reviewer may see live data only with this grant.
    live: bool = False
    password_hash: str
    #: The password was set by someone else (first admin, ``vigil user add``): change it at first login.
    must_change: bool = False
    disabled: bool = False
    t: AwareDatetime
    by: str


class LoginSession(_Frozen):
    """One version of a login session: its token is known only by its SHA-256 (the cookie holds the token)."""

    token_hash: str = Field(min_length=64, max_length=64)
    username: str
    created: AwareDatetime
    expires: AwareDatetime
    revoked: bool = False
    t: AwareDatetime


class AuditEvent(_Frozen):
    """Who did what, when, where, and what changed (append-only)."""

    t: AwareDatetime
    user: str
    action: str = Field(max_length=64)
    bay: str | None = None
    session_id: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    source: str = ""  # client address
    outcome: str = "ok"  # ok | refused | failed


def when(t: datetime) -> float:
    """Seconds since the epoch (for ordering)."""
    return t.timestamp()
