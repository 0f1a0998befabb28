"""Accounts, login sessions and the audit trail on both store backends: append-only versions, newest wins,
filters, and retention leaves the audit trail alone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.security.model import AuditEvent, LoginSession, UserAccount
from app.security.roles import Role
from app.security.service import AuthService, token_hash
from app.store import Record
from tests.store_backends import AnyStore

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def _account(name: str, t: datetime, **kw: object) -> UserAccount:
    values: dict[str, object] = {"username": name, "role": Role.NURSE, "password_hash": "x", "t": t, "by": "test"}
    values.update(kw)
    return UserAccount.model_validate(values)


async def test_accounts_logins_and_audit_round_trip_on_both_backends(any_store: AnyStore) -> None:
    store = any_store
    v1 = _account("nina", T0, bays=("bay1",))
    v2 = _account("nina", T0 + timedelta(minutes=1), bays=("bay1", "bay2"), disabled=True)
    await store.append([Record(None, v1), Record(None, _account("phil", T0, role=Role.PHYSICIAN)), Record(None, v2)])
    assert [a.username for a in await store.accounts()] == ["nina", "phil", "nina"]
    auth = AuthService(store)
    await auth.load()
    assert auth.accounts["nina"] == v2  # the newest version wins

    h = token_hash("a token")
    login = LoginSession(token_hash=h, username="phil", created=T0, expires=T0 + timedelta(hours=12), t=T0)
    await store.append([Record(None, login)])
    await store.append([Record(None, login.model_copy(update={"revoked": True, "t": T0 + timedelta(hours=1)}))])
    newest = await store.login_session(h)
    assert newest is not None and newest.revoked
    assert await store.login_session(token_hash("another")) is None

    events = [
        AuditEvent(t=T0 + timedelta(seconds=i), user=u, action=a, bay=b, session_id=s, after={"i": i})
        for i, (u, a, b, s) in enumerate(
            [
                ("nina", "alarm.acknowledge", "bay1", None),
                ("phil", "phase.change", "bay2", "s1"),
                ("nina", "chart.entry", "bay1", "s2"),
            ]
        )
    ]
    await store.append([Record(e.bay, e) for e in events])
    assert [e.action for e in await store.audit_events()] == ["chart.entry", "phase.change", "alarm.acknowledge"]
    assert [e.action for e in await store.audit_events(user="nina", bay="bay1")] == [
        "chart.entry",
        "alarm.acknowledge",
    ]
    assert [e.after for e in await store.audit_events(session_id="s1")] == [{"i": 1}]
    assert len(await store.audit_events(since=T0 + timedelta(seconds=1), until=T0 + timedelta(seconds=2))) == 1
    await store.purge(T0 + timedelta(days=1))
    assert len(await store.audit_events()) == 3  # retention of device data leaves the audit trail alone


async def test_instances_sharing_a_store_see_each_others_account_changes(any_store: AnyStore) -> None:
    clock = [1000.0]
    a, b = (AuthService(any_store, monotonic=lambda: clock[0]) for _ in range(2))
    await a.load()
    await b.load()
    await a.add_user("nina", Role.NURSE, by="test", password="first password 1")
    clock[0] += 1.0
    token, _ = await b.login("nina", "first password 1", "10.0.0.1")  # created on a, known on b at once
    assert await b.authenticate(token) is not None
    await a.set_password("nina", "second password 2", by="nina")
    clock[0] += 1.0
    await b.login("nina", "second password 2", "10.0.0.1")  # changed on a: b checks the store's copy
    await a.update_user("nina", by="admin", disabled=True)
    assert await b.authenticate(token) is not None  # within the 5 s cache
    clock[0] += 6.0
    assert await b.authenticate(token) is None  # disabled on a: refused on b after at most CACHE_S
