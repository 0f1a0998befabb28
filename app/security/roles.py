"""Roles, permissions and which permission each route needs: the role matrix, in one place.

Every HTTP route and websocket is listed in ``ROUTES`` with the permission it needs (or ``PUBLIC``); the
``current_user`` gate looks the matched route up there and refuses what is not listed (fail closed), so a new
route cannot be open by accident, and a test walks the OpenAPI schema to prove the table is complete.

Bay scope: a nurse works at the bays listed on her account (none listed: every bay). A route with a ``{bay}``
path parameter (and the live websocket's subscription) is refused for a bay outside the user's scope.
Reviewers see recorded sessions only; live data needs the account's ``live`` grant.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a user is (issue 11)."""

    NURSE = "nurse"
    PHYSICIAN = "physician"
    REVIEWER = "reviewer"
    ADMIN = "admin"


class Perm(StrEnum):
    """What a request may do."""

    PUBLIC = "public"  # no login (login page, health check)
    LOGGED_IN = "logged_in"  # any signed-in user (own account, catalogue, UI settings)
    LIVE = "live"  # live data: bays, alarms, trends, websocket (in the user's bay scope)
    CHART = "chart"  # patients, sessions, charting, phase changes, dosing
    ACKNOWLEDGE = "acknowledge"  # acknowledge alarms, pause/resume audio
    LIMITS = "limits"  # alarm limits per patient; override session gates and soft dose limits
    REVIEW = "review"  # recorded sessions: list, timeline, replay, report, what-if
    EXPORT = "export"  # patient data out of Vigil (CSV, HL7, FHIR)
    DEVICES = "devices"  # monitors, delivery statistics, training fault injection
    USERS = "users"  # user accounts, the audit trail


MATRIX: dict[Role, frozenset[Perm]] = {
    Role.NURSE: frozenset({Perm.LOGGED_IN, Perm.LIVE, Perm.CHART, Perm.ACKNOWLEDGE}),
    Role.PHYSICIAN: frozenset(
        {Perm.LOGGED_IN, Perm.LIVE, Perm.CHART, Perm.ACKNOWLEDGE, Perm.LIMITS, Perm.REVIEW, Perm.EXPORT}
    ),
    Role.REVIEWER: frozenset({Perm.LOGGED_IN, Perm.REVIEW, Perm.EXPORT}),
    Role.ADMIN: frozenset({Perm.LOGGED_IN, Perm.DEVICES, Perm.USERS}),
}

#: (method, path template) -> the permission it needs. "WS" is the websocket method.
ROUTES: dict[tuple[str, str], Perm] = {
    ("GET", "/healthz"): Perm.PUBLIC,
    ("POST", "/api/login"): Perm.PUBLIC,
    ("POST", "/api/logout"): Perm.PUBLIC,  # logging out needs no permission (a stale cookie is cleared too)
    ("GET", "/api/me"): Perm.LOGGED_IN,
    ("POST", "/api/me/password"): Perm.LOGGED_IN,
    ("GET", "/api/parameters"): Perm.LOGGED_IN,
    ("GET", "/vendor/plotly.min.js"): Perm.LOGGED_IN,
    ("GET", "/api/ui-config"): Perm.LOGGED_IN,
    ("GET", "/api/discharge-instructions"): Perm.LOGGED_IN,
    ("GET", "/api/alarm-profile"): Perm.LOGGED_IN,
    ("GET", "/api/monitors"): Perm.DEVICES,
    ("GET", "/api/stats"): Perm.DEVICES,
    ("POST", "/api/devices/{device_id}/simulation"): Perm.DEVICES,
    ("GET", "/api/users"): Perm.USERS,
    ("POST", "/api/users"): Perm.USERS,
    ("PATCH", "/api/users/{username}"): Perm.USERS,
    ("GET", "/api/audit"): Perm.USERS,
    ("GET", "/api/bays"): Perm.LIVE,
    ("GET", "/api/bays/{bay}/alarms"): Perm.LIVE,
    ("GET", "/api/bays/{bay}/trends"): Perm.LIVE,
    ("GET", "/api/bays/{bay}/session"): Perm.LIVE,
    ("GET", "/api/station/sessions"): Perm.LIVE,
    ("WS", "/ws"): Perm.LIVE,
    ("GET", "/api/bays/{bay}/alarm-limits"): Perm.LIVE,
    ("PUT", "/api/bays/{bay}/alarm-limits"): Perm.LIMITS,
    ("POST", "/api/bays/{bay}/alarms/acknowledge"): Perm.ACKNOWLEDGE,
    ("POST", "/api/bays/{bay}/alarms/audio-pause"): Perm.ACKNOWLEDGE,
    ("POST", "/api/bays/{bay}/alarms/audio-resume"): Perm.ACKNOWLEDGE,
    ("POST", "/api/bays/{bay}/phase"): Perm.CHART,
    ("POST", "/api/patients"): Perm.CHART,
    ("GET", "/api/patients"): Perm.CHART,
    ("GET", "/api/patients/{patient_id}"): Perm.CHART,
    ("GET", "/api/patients/{patient_id}/history"): Perm.CHART,
    ("POST", "/api/sessions"): Perm.CHART,
    ("GET", "/api/sessions"): Perm.CHART,
    ("GET", "/api/sessions/{session_id}"): Perm.CHART,
    ("GET", "/api/sessions/{session_id}/events"): Perm.CHART,
    ("POST", "/api/sessions/{session_id}/transition"): Perm.CHART,
    ("POST", "/api/sessions/{session_id}/baseline"): Perm.CHART,
    ("POST", "/api/sessions/{session_id}/infusion"): Perm.CHART,
    ("POST", "/api/sessions/{session_id}/chart"): Perm.CHART,
    ("POST", "/api/dosing/calculate"): Perm.CHART,
    ("GET", "/api/recordings"): Perm.REVIEW,
    ("GET", "/api/recordings/{session_id}/timeline"): Perm.REVIEW,
    ("POST", "/api/recordings/{sid}/whatif"): Perm.REVIEW,
    ("GET", "/api/recordings/{sid}/report.html"): Perm.REVIEW,
    ("POST", "/api/replays"): Perm.REVIEW,
    ("GET", "/api/replays/{replay_id}"): Perm.REVIEW,
    ("DELETE", "/api/replays/{replay_id}"): Perm.REVIEW,
    ("POST", "/api/replays/{replay_id}/control"): Perm.REVIEW,
    ("WS", "/ws/replay/{replay_id}"): Perm.REVIEW,
    ("GET", "/api/recordings/{sid}/export/{fmt}"): Perm.EXPORT,
}

#: Pages (static HTML) and the permission that makes them useful; a page itself holds no patient data,
#: but a signed-out browser is sent to the login page instead.
PAGES_PUBLIC = frozenset({"/login.html", "/favicon.svg", "/styles/", "/lib/login.js"})


def allows(role: Role, perm: Perm, *, live_granted: bool = False) -> bool:
    """Whether a role holds a permission (a reviewer holds LIVE only when granted)."""
    if perm is Perm.PUBLIC:
        return True
    if perm is Perm.LIVE and role is Role.REVIEWER and live_granted:
        return True
    return perm in MATRIX[role]
