"""Dependencies shared by every handler: the current user and the running services.

``current_user`` is the single gate every HTTP route and websocket goes through. Until authentication
lands (issue 11) it returns a default local user; roles and login slot in here without touching handlers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from app.services import Services


@dataclass(frozen=True, slots=True)
class User:
    """Who is making the request."""

    name: str
    roles: frozenset[str]


DEFAULT_USER = User(name="local", roles=frozenset({"admin"}))


async def current_user(conn: HTTPConnection) -> User:
    """The authenticated user (for now: the default local user)."""
    return DEFAULT_USER


def services(conn: HTTPConnection) -> Services:
    """The running services of this app instance."""
    svc: Services = conn.app.state.services
    return svc


CurrentUser = Annotated[User, Depends(current_user)]
Svc = Annotated[Services, Depends(services)]
