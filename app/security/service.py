"""Accounts, login, login sessions, rate limiting and the audit trail.

Login sessions are server-side: the browser holds a random 256-bit token in an HttpOnly, SameSite=Strict
cookie (Secure under TLS); the store holds only its SHA-256, with expiry and revocation, so a logout or a
disabled account takes effect on every instance sharing the store (each instance caches a looked-up session
for at most ``CACHE_S``). API clients send the same token as ``Authorization: Bearer``.

CSRF: state-changing requests authenticated by the cookie must carry ``X-CSRF-Token``, an HMAC of the
session token that the login response also sets in a cookie readable by the page's script (double submit
bound to the session). Bearer requests carry no ambient authority and need no CSRF token.

Rate limiting: after ``MAX_FAILURES`` failed logins for one username from one address within ``WINDOW_S``
(since that user's last successful login from there), or ``MAX_FAILURES_PER_SOURCE`` from one address for any
usernames, further attempts are refused with 429 until the window has passed. Failed and refused attempts are
audited, and the failures are counted from that audit trail in the store, so several instances sharing one
store count them together: an attacker gains nothing by spreading guesses over the instances.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from app.security import passwords
from app.security.model import AuditEvent, LoginSession, UserAccount
from app.security.roles import MATRIX, Perm, Role
from app.store import Record, Store

log = logging.getLogger(__name__)

CACHE_S = 5.0
WINDOW_S = 300.0
MAX_FAILURES = 5
MAX_FAILURES_PER_SOURCE = 30


@dataclass(frozen=True, slots=True)
class User:
    """Who is making the request, as every handler sees it."""

    name: str
    role: Role | None  # None: the local user when authentication is off
    perms: frozenset[Perm]
    bays: frozenset[str] | None  # None: every bay
    must_change: bool = False
    token_hash: str | None = None

    @property
    def roles(self) -> frozenset[str]:
        """Role names (the session workflow's physician override asks for them)."""
        return frozenset({self.role.value}) if self.role is not None else frozenset({"admin", "physician"})

    def may(self, perm: Perm) -> bool:
        """Whether the user holds the permission."""
        return perm is Perm.PUBLIC or perm in self.perms

    def sees_bay(self, bay: str) -> bool:
        """Whether the bay is in the user's scope."""
        return self.bays is None or bay in self.bays


#: Authentication off (``VIGIL_AUTH=off``, loopback only): one local user who may do everything.
LOCAL_USER = User(name="local", role=None, perms=frozenset(Perm), bays=None)


def user_of(account: UserAccount, token_hash: str | None = None) -> User:
    """The request-side view of an account."""
    perms = set(MATRIX[account.role])
    if account.role is Role.REVIEWER and account.live:
        perms.add(Perm.LIVE)
    bays = frozenset(account.bays) if account.role is Role.NURSE and account.bays else None
    return User(account.username, account.role, frozenset(perms), bays, account.must_change, token_hash)


class LoginRefused(Exception):
    """A login that did not succeed: ``status`` 401 (bad credentials) or 429 (rate limited)."""

    def __init__(self, status: int, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.retry_after_s = retry_after_s


def token_hash(token: str) -> str:
    """What the store keeps of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


class AuthService:
    """Accounts and login sessions on the Store; the audit trail."""

    def __init__(
        self,
        store: Store,
        *,
        session_hours: float = 12.0,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.session = timedelta(hours=session_hours)
        self.wall = wall
        self._mono = monotonic
        self._accounts: dict[str, UserAccount] = {}
        self._loaded_at = float("-inf")
        self._cache: dict[str, tuple[float, LoginSession]] = {}

    # ---- accounts ------------------------------------------------------------------------------

    async def load(self) -> None:
        """Read every account (the newest version of each username wins)."""
        self._accounts = {a.username: a for a in await self.store.accounts()}
        self._loaded_at = self._mono()

    async def _fresh(self) -> None:
        """Re-read the accounts if the copy here is older than ``CACHE_S``: another instance sharing the store
        may have added, changed or disabled one (a handful of rows)."""
        if self._mono() - self._loaded_at >= CACHE_S:
            await self.load()

    @property
    def accounts(self) -> dict[str, UserAccount]:
        """Current accounts by username."""
        return dict(self._accounts)

    async def bootstrap(self, *, demo: bool = False) -> dict[str, tuple[Role, str]]:
        """On first start (no accounts): create ``admin`` with a one-time password (to be changed at first login)
        and, for the demo, one user per clinical role. Returns {username: (role, password)} to print once."""
        created: dict[str, tuple[Role, str]] = {}
        await self.load()
        if self._accounts:
            return created
        password = passwords.one_time_password()
        await self.save(self._new("admin", Role.ADMIN, password, must_change=True, by="first start"))
        created["admin"] = (Role.ADMIN, password)
        if demo:
            for name, role in (("nurse", Role.NURSE), ("physician", Role.PHYSICIAN), ("reviewer", Role.REVIEWER)):
                pw = passwords.one_time_password()
                await self.save(self._new(name, role, pw, must_change=False, by="demo"))
                created[name] = (role, pw)
        return created

    def _new(
        self,
        username: str,
        role: Role,
        password: str,
        *,
        must_change: bool,
        by: str,
        bays: tuple[str, ...] = (),
        live: bool = False,
        display_name: str = "",
    ) -> UserAccount:
        return UserAccount(
            username=username,
            role=role,
            display_name=display_name,
            bays=bays,
            live=live,
            password_hash=passwords.hash_password(password),
            must_change=must_change,
            t=self.wall(),
            by=by,
        )

    async def add_user(
        self,
        username: str,
        role: Role,
        *,
        by: str,
        bays: tuple[str, ...] = (),
        live: bool = False,
        display_name: str = "",
        password: str | None = None,
    ) -> tuple[UserAccount, str]:
        """Create an account; returns it and its password (one-time unless given)."""
        if username in self._accounts:
            raise ValueError(f"user {username!r} exists")
        pw = password or passwords.one_time_password()
        account = self._new(
            username,
            role,
            pw,
            must_change=password is None,
            by=by,
            bays=bays,
            live=live,
            display_name=display_name,
        )
        await self.save(account)
        await self.audit(by, "user.add", after=_public(account))
        return account, pw

    async def update_user(self, username: str, *, by: str, **changes: Any) -> UserAccount:
        """A new version of an account (role, bays, live grant, disabled, display name)."""
        before = self._accounts.get(username)
        if before is None:
            raise KeyError(username)
        allowed = {"role", "bays", "live", "disabled", "display_name"}
        if set(changes) - allowed:
            raise ValueError(f"cannot change {sorted(set(changes) - allowed)}")
        after = UserAccount.model_validate({**before.model_dump(), **changes, "t": self.wall(), "by": by})
        await self.save(after)
        await self.audit(by, "user.update", before=_public(before), after=_public(after))
        return after

    async def set_password(self, username: str, password: str, *, by: str, must_change: bool = False) -> None:
        """Replace a password (``must_change``: a reset by someone else)."""
        before = self._accounts[username]
        after = before.model_copy(
            update={
                "password_hash": passwords.hash_password(password),
                "must_change": must_change,
                "t": self.wall(),
                "by": by,
            }
        )
        await self.save(after)
        await self.audit(by, "user.password", after={"username": username, "must_change": must_change})

    async def save(self, account: UserAccount) -> None:
        """Append a version of an account and wait until it is durable."""
        await self.store.append([Record(None, account)])
        self._accounts[account.username] = account

    # ---- login ---------------------------------------------------------------------------------

    async def _limited(self, username: str, source: str) -> float | None:
        """Seconds until another attempt is allowed, or None (failures counted from the audit trail)."""
        now = self.wall()
        events = await self.store.audit_events(since=now - timedelta(seconds=WINDOW_S), limit=10_000)
        mine: list[datetime] = []  # newest first, as the trail answers
        theirs: list[datetime] = []
        reset = False
        for e in events:
            if e.action != "login" or e.source != source:
                continue
            if e.user == username and e.outcome == "ok":
                reset = True  # a successful login ends the user's count (not the address's)
            elif e.outcome == "failed":
                theirs.append(e.t)
                if e.user == username and not reset:
                    mine.append(e.t)
        for failures, limit in ((mine, MAX_FAILURES), (theirs, MAX_FAILURES_PER_SOURCE)):
            if len(failures) >= limit:  # allowed again once the limit-th newest failure leaves the window
                return max(1.0, WINDOW_S - (now - failures[limit - 1]).total_seconds())
        return None

    async def login(self, username: str, password: str, source: str) -> tuple[str, User]:
        """Check the credentials; a new session token and the user, or LoginRefused."""
        wait = await self._limited(username, source)
        if wait is not None:
            await self.audit(username, "login", source=source, outcome="refused", after={"reason": "rate limited"})
            raise LoginRefused(429, "too many failed logins; try again later", retry_after_s=wait)
        await self._fresh()
        account = self._accounts.get(username)
        ok = passwords.verify(account.password_hash if account else None, password)
        if not ok and self._mono() - self._loaded_at >= 0.5:
            # the password may have just changed through another instance: check against the store's copy
            await self.load()
            account = self._accounts.get(username)
            ok = passwords.verify(account.password_hash if account else None, password)
        if account is None or not ok or account.disabled:
            await self.audit(username, "login", source=source, outcome="failed")
            raise LoginRefused(401, "unknown user or wrong password")
        token = secrets.token_urlsafe(32)
        now = self.wall()
        session = LoginSession(
            token_hash=token_hash(token), username=username, created=now, expires=now + self.session, t=now
        )
        await self.store.append([Record(None, session)])
        self._cache[session.token_hash] = (self._mono(), session)
        await self.audit(username, "login", source=source, after={"expires": session.expires.isoformat()})
        return token, user_of(account, session.token_hash)

    async def authenticate(self, token: str | None) -> User | None:
        """The user a session token belongs to, if it is valid now."""
        if not token or len(token) > 200:
            return None
        h = token_hash(token)
        cached = self._cache.get(h)
        if cached is not None and self._mono() - cached[0] < CACHE_S:
            session: LoginSession | None = cached[1]
        else:
            session = await self.store.login_session(h)
            if session is None:
                self._cache.pop(h, None)
                return None
            self._cache[h] = (self._mono(), session)
            if len(self._cache) > 10_000:  # forget the oldest lookups
                for k in list(self._cache)[:5_000]:
                    del self._cache[k]
        assert session is not None
        if session.revoked or session.expires <= self.wall():
            return None
        await self._fresh()
        account = self._accounts.get(session.username)
        if account is None or account.disabled:
            return None
        return user_of(account, h)

    async def logout(self, user: User, source: str) -> None:
        """Revoke the user's session."""
        if user.token_hash is None:
            return
        session = await self.store.login_session(user.token_hash)
        if session is not None and not session.revoked:
            revoked = session.model_copy(update={"revoked": True, "t": self.wall()})
            await self.store.append([Record(None, revoked)])
            self._cache[user.token_hash] = (self._mono(), revoked)
        await self.audit(user.name, "logout", source=source)

    @staticmethod
    def csrf_token(session_token: str) -> str:
        """The CSRF token bound to a session token: derived from the secret session token (which scripts
        cannot read), so every instance can check it without shared state."""
        return hashlib.sha256(b"vigil-csrf:" + session_token.encode()).hexdigest()

    def csrf_ok(self, session_token: str, header: str | None) -> bool:
        """Whether the header carries the session's CSRF token."""
        return header is not None and hmac.compare_digest(self.csrf_token(session_token), header)

    # ---- audit ---------------------------------------------------------------------------------

    async def audit(
        self,
        user: str,
        action: str,
        *,
        bay: str | None = None,
        session_id: str | None = None,
        before: dict[str, Any] | None = None,
        after: dict[str, Any] | None = None,
        source: str = "",
        outcome: str = "ok",
    ) -> None:
        """Append one audit event (durable before this returns)."""
        event = AuditEvent(
            t=self.wall(),
            user=user,
            action=action,
            bay=bay,
            session_id=session_id,
            before=before,
            after=after,
            source=source,
            outcome=outcome,
        )
        try:
            await self.store.append([Record(bay, event)])
        except Exception as e:  # the audit must not take the request down; it is logged loudly instead
            log.error("audit event could not be stored: %s (%s)", e, event.model_dump_json())


def _public(account: UserAccount) -> dict[str, Any]:
    """An account without its password hash (for the audit trail and the API)."""
    return account.model_dump(mode="json", exclude={"password_hash"})
