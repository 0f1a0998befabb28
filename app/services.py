"""The running services of one app instance, built in the lifespan and shared with handlers."""

from __future__ import annotations

from dataclasses import dataclass

from app.alarming import AlarmService
from app.config import Settings
from app.hub import Hub
from app.ingest import Pipeline, Supervisor
from app.recording.replay import ReplayRegistry
from app.security.service import AuthService
from app.sessions.service import SessionService
from app.store import Store


@dataclass
class Services:
    """Everything a handler may need."""

    settings: Settings
    store: Store
    hub: Hub
    pipeline: Pipeline
    supervisor: Supervisor
    alarms: AlarmService
    sessions: SessionService | None = None
    replays: ReplayRegistry | None = None
    #: Accounts, login sessions and the audit trail (present whether or not login is required).
    auth: AuthService | None = None
    #: Accounts created at this start ({username: (role, password)}), to be printed once by the CLI.
    first_credentials: dict[str, tuple[str, str]] | None = None
