"""Issue 11 through the real server with login required: the role matrix on every route of the OpenAPI
schema (anonymous and each role), bay scope, cookies, CSRF, expiry and logout, rate limiting, the page gate,
security headers, and the audit trail."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import websockets

from app.security.roles import MATRIX, PAGES_PUBLIC, ROUTES, Perm, Role
from app.security.service import AuthService
from tests.conftest import RunningServer, running_server, small_settings

PASSWORD = "correct horse battery"
NAME = {Role.NURSE: "nina", Role.PHYSICIAN: "phil", Role.REVIEWER: "rita", Role.ADMIN: "adam"}


@dataclass
class Clinic:
    """A server with login required and one user per role (the nurse works at bay1 only)."""

    srv: RunningServer
    tokens: dict[Role, str]

    @property
    def auth(self) -> AuthService:
        auth = self.srv.services.auth
        assert auth is not None
        return auth

    def bearer(self, role: Role) -> dict[str, str]:
        return {"authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture
async def clinic(tmp_path: Path) -> AsyncIterator[Clinic]:
    settings = small_settings(tmp_path, bays=2, auth="required")
    async with running_server(settings) as srv:
        auth = srv.services.auth
        assert auth is not None
        tokens: dict[Role, str] = {}
        async with httpx.AsyncClient(base_url=srv.http) as http:
            for role in Role:
                bays = ("bay1",) if role is Role.NURSE else ()
                await auth.add_user(NAME[role], role, by="test", bays=bays, password=PASSWORD)
                r = await http.post("/api/login", json={"username": NAME[role], "password": PASSWORD, "token": True})
                assert r.status_code == 200, r.text
                tokens[role] = r.json()["token"]
        yield Clinic(srv, tokens)


def _concrete(path: str) -> str:
    """A request path for a template: bays get a real bay, other parameters a harmless unknown id."""
    return re.sub(r"\{(\w+)\}", lambda m: "bay1" if m.group(1) == "bay" else "no-such-id", path)


def _schema_routes(clinic: Clinic) -> list[tuple[str, str]]:
    spec = clinic.srv.app.openapi()
    return sorted((m.upper(), p) for p, ops in spec["paths"].items() for m in ops)


async def test_every_route_in_the_schema_is_in_the_role_matrix_and_the_matrix_has_no_stale_rows(
    clinic: Clinic,
) -> None:
    in_schema = set(_schema_routes(clinic))
    http_rows = {k for k in ROUTES if k[0] != "WS" and k[1] != "/vendor/plotly.min.js"}
    assert in_schema - http_rows == set(), "routes missing from app.security.roles.ROUTES"
    assert http_rows - in_schema == set(), "rows of ROUTES that match no route"


async def test_each_route_refuses_anonymous_users_and_gives_each_role_exactly_its_permissions(clinic: Clinic) -> None:
    routes = [r for r in _schema_routes(clinic) if r != ("POST", "/api/logout")]  # logout would end the tokens
    checked = 0
    async with httpx.AsyncClient(base_url=clinic.srv.http, timeout=30) as http:
        for method, template in routes:
            perm = ROUTES[(method, template)]
            path = _concrete(template)
            anonymous = await http.request(method, path)
            if perm is Perm.PUBLIC:
                assert anonymous.status_code not in (401, 403), (method, template)
                continue
            assert anonymous.status_code == 401, (method, template, anonymous.status_code)
            for role in Role:
                r = await http.request(method, path, headers=clinic.bearer(role))
                allowed = perm in MATRIX[role]
                if allowed:
                    assert r.status_code not in (401, 403), (role, method, template, r.status_code, r.text)
                else:
                    assert r.status_code == 403, (role, method, template, r.status_code)
                assert r.status_code < 500, (role, method, template, r.text)
                checked += 1
    assert checked >= 4 * 30


async def test_websockets_refuse_anonymous_users_and_roles_without_live_data(clinic: Clinic) -> None:
    ws_url = clinic.srv.ws
    with pytest.raises(websockets.InvalidStatus) as anonymous:
        async with websockets.connect(ws_url):
            pass
    assert anonymous.value.response.status_code == 403
    for role in Role:
        if Perm.LIVE in MATRIX[role]:
            async with websockets.connect(ws_url, additional_headers=clinic.bearer(role)) as ws:
                await ws.send('{"type": "subscribe", "bays": ["bay1"], "waves": "none"}')
                hello = await asyncio.wait_for(ws.recv(), 10)
                assert '"hello"' in str(hello)
        else:
            with pytest.raises(websockets.InvalidStatus) as refused:
                async with websockets.connect(ws_url, additional_headers=clinic.bearer(role)):
                    pass
            assert refused.value.response.status_code == 403, role
    with pytest.raises(websockets.InvalidStatus):  # another site's page cannot use a signed-in browser
        async with websockets.connect(
            ws_url, additional_headers=clinic.bearer(Role.NURSE), origin=websockets.Origin("http://evil.example")
        ):
            pass


async def test_a_nurse_sees_only_her_bays_and_a_reviewer_needs_a_grant_for_live_data(clinic: Clinic) -> None:
    async with httpx.AsyncClient(base_url=clinic.srv.http) as http:
        nurse = clinic.bearer(Role.NURSE)
        assert (await http.get("/api/bays/bay1/alarms", headers=nurse)).status_code == 200
        other = await http.get("/api/bays/bay2/alarms", headers=nurse)
        assert other.status_code == 403 and "bay2" in other.text
        assert (await http.get("/api/bays/bay2/alarms", headers=clinic.bearer(Role.PHYSICIAN))).status_code == 200
        reviewer = clinic.bearer(Role.REVIEWER)
        assert (await http.get("/api/bays", headers=reviewer)).status_code == 403
        await clinic.auth.update_user("rita", by="test", live=True)
        assert (await http.get("/api/bays", headers=reviewer)).status_code == 200


async def test_cookie_login_needs_csrf_for_changes_and_logout_ends_the_session(clinic: Clinic) -> None:
    async with httpx.AsyncClient(base_url=clinic.srv.http) as http:
        r = await http.post("/api/login", json={"username": "nina", "password": PASSWORD})
        assert r.status_code == 200
        cookies = r.headers.get_list("set-cookie")
        session = next(c for c in cookies if c.startswith("vigil_session="))
        assert "HttpOnly" in session and "SameSite=strict" in session and "Max-Age=43200" in session
        csrf_cookie = next(c for c in cookies if c.startswith("vigil_csrf="))
        assert "HttpOnly" not in csrf_cookie
        csrf = r.json()["csrf_token"]
        assert (await http.get("/api/me")).json()["username"] == "nina"
        body = {"rule_id": "all"}
        refused = await http.post("/api/bays/bay1/alarms/acknowledge", json=body)
        assert refused.status_code == 403 and "CSRF" in refused.text
        wrong = await http.post("/api/bays/bay1/alarms/acknowledge", json=body, headers={"x-csrf-token": "0" * 64})
        assert wrong.status_code == 403
        ok = await http.post("/api/bays/bay1/alarms/acknowledge", json=body, headers={"x-csrf-token": csrf})
        assert ok.status_code == 200, ok.text
        out = await http.post("/api/logout", headers={"x-csrf-token": csrf})
        assert out.status_code == 204
        http.cookies.clear()
        http.cookies.set("vigil_session", session.split(";")[0].split("=", 1)[1])
        assert (await http.get("/api/me")).status_code == 401  # the old cookie is revoked, not just cleared


async def test_a_session_expires(clinic: Clinic) -> None:
    async with httpx.AsyncClient(base_url=clinic.srv.http) as http:
        assert (await http.get("/api/me", headers=clinic.bearer(Role.PHYSICIAN))).status_code == 200
        real = clinic.auth.wall
        clinic.auth.wall = lambda: real() + clinic.auth.session + timedelta(seconds=1)  # a shift later
        try:
            assert (await http.get("/api/me", headers=clinic.bearer(Role.PHYSICIAN))).status_code == 401
        finally:
            clinic.auth.wall = real


async def test_failed_logins_are_rate_limited_and_audited(clinic: Clinic) -> None:
    async with httpx.AsyncClient(base_url=clinic.srv.http) as http:
        for _ in range(5):
            r = await http.post("/api/login", json={"username": "nina", "password": "wrong password!"})
            assert r.status_code == 401
        limited = await http.post("/api/login", json={"username": "nina", "password": PASSWORD})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        unknown = await http.post("/api/login", json={"username": "nobody", "password": "whatever123"})
        assert unknown.status_code == 401  # the same answer as a wrong password
    events = await clinic.srv.services.store.audit_events(user="nina")
    outcomes = [e.outcome for e in events if e.action == "login"]
    assert outcomes.count("failed") == 5 and "refused" in outcomes


async def test_pages_need_a_login_except_the_login_page_and_every_answer_has_security_headers(
    clinic: Clinic,
) -> None:
    async with httpx.AsyncClient(base_url=clinic.srv.http) as http:
        page = await http.get("/bedside.html?bay=bay1")
        assert page.status_code == 303
        assert page.headers["location"] == "/login.html?next=%2Fbedside.html%3Fbay%3Dbay1"
        assert (await http.get("/")).status_code == 303
        assert (await http.get("/pages/bedside.js")).status_code == 401
        assert (await http.get("/vendor/plotly.min.js")).status_code == 401
        assert (await http.get("/docs")).status_code in (303, 401)
        assert (await http.get("/openapi.json")).status_code in (303, 401)
        for public in PAGES_PUBLIC:
            if public.endswith("/"):
                continue
            assert (await http.get(public)).status_code == 200, public
        health = await http.get("/healthz")
        assert health.status_code == 200
        csp = health.headers["content-security-policy"]
        script_src = next(d for d in csp.split(";") if d.strip().startswith("script-src"))
        assert script_src.strip() == "script-src 'self'"  # no inline, no remote scripts
        assert health.headers["x-frame-options"] == "DENY" and health.headers["x-content-type-options"] == "nosniff"
        login = await http.post("/api/login", json={"username": "phil", "password": PASSWORD})
        assert login.status_code == 200
        assert (await http.get("/bedside.html?bay=bay1")).status_code == 200
        assert (await http.get("/pages/bedside.js")).status_code == 200


async def test_acknowledgements_phase_changes_replays_and_exports_are_audited(clinic: Clinic) -> None:
    async with httpx.AsyncClient(base_url=clinic.srv.http) as http:
        nurse = clinic.bearer(Role.NURSE)
        r = await http.post("/api/bays/bay1/alarms/acknowledge", json={"rule_id": "all"}, headers=nurse)
        assert r.status_code == 200
        r = await http.post("/api/bays/bay1/phase", json={"phase": "infusion"}, headers=nurse)
        assert r.status_code == 200, r.text
        r = await http.get("/api/recordings/no-such-id/export/csv", headers=clinic.bearer(Role.REVIEWER))
        assert r.status_code == 404
    events = await clinic.srv.services.store.audit_events(limit=50)
    by_action = {e.action: e for e in events}
    ack = by_action["alarm.acknowledge"]
    assert ack.user == "nina" and ack.bay == "bay1" and ack.outcome == "ok"
    phase = by_action["phase.change"]
    assert phase.after is not None and phase.after["phase"] == "infusion" and phase.before is not None
    export = by_action["recording.export"]
    assert export.user == "rita" and export.session_id == "no-such-id" and export.outcome == "refused"
    assert by_action["login"].user in NAME.values()


async def test_a_physician_sets_a_patients_alarm_limits_a_nurse_may_not_and_the_change_is_audited(
    clinic: Clinic,
) -> None:
    change = {"overrides": [{"rule_id": "hr_high", "level_index": 0, "value": 140}]}
    doc = clinic.bearer(Role.PHYSICIAN)
    async with httpx.AsyncClient(base_url=clinic.srv.http) as http:
        none = await http.put("/api/bays/bay1/alarm-limits", json=change, headers=doc)
        assert none.status_code == 409 and none.json()["detail"]["code"] == "no_open_session"
        patient = {"identifier": "LIM-1", "name": "Lim Its", "birth_date": "1970-01-01", "weight_kg": 70}
        pid = (await http.post("/api/patients", json=patient, headers=doc)).json()["id"]
        plan = {"dose_mg_per_kg": 0.5, "duration_min": 40, "concentration_mg_per_ml": 1}
        opened = await http.post("/api/sessions", json={"patient_id": pid, "bay": "bay1", "plan": plan}, headers=doc)
        sid = opened.json()["session"]["id"]
        refused = await http.put("/api/bays/bay1/alarm-limits", json=change, headers=clinic.bearer(Role.NURSE))
        assert refused.status_code == 403
        r = await http.put("/api/bays/bay1/alarm-limits", json=change, headers=doc)
        assert r.status_code == 200, r.text
        assert r.json()["overrides"][0]["value"] == 140 and r.json()["session_id"] == sid
        alarms = clinic.srv.services.alarms
        assert alarms.engine_for("bay1") is not alarms.engine and alarms.states["bay1"].limits[0].value == 140
        events = (await http.get(f"/api/sessions/{sid}/events", headers=doc)).json()
        assert events[-1]["kind"] == "limits" and events[-1]["user"] == "phil", "part of the session's record"
        seen = await http.get("/api/bays/bay1/alarm-limits", headers=clinic.bearer(Role.NURSE))
        assert seen.status_code == 200 and seen.json()["overrides"] == r.json()["overrides"]
        bad = {"overrides": [{"rule_id": "no_such_rule", "value": 1}]}
        wrong = await http.put("/api/bays/bay1/alarm-limits", json=bad, headers=clinic.bearer(Role.PHYSICIAN))
        assert wrong.status_code == 422 and "no_such_rule" in wrong.text
        cleared = await http.put(
            "/api/bays/bay1/alarm-limits", json={"overrides": []}, headers=clinic.bearer(Role.PHYSICIAN)
        )
        assert cleared.status_code == 200 and cleared.json()["overrides"] == []
        assert alarms.engine_for("bay1") is alarms.engine  # back to the profile
        again = await http.put("/api/bays/bay1/alarm-limits", json=change, headers=doc)
        assert again.status_code == 200
        ended = {"to": "aborted", "reason": "test"}
        assert (await http.post(f"/api/sessions/{sid}/transition", json=ended, headers=doc)).status_code == 200
        assert alarms.engine_for("bay1") is alarms.engine, "the next patient in the bay gets the profile's limits"
        after = await http.get("/api/bays/bay1/alarm-limits", headers=doc)
        assert after.json()["overrides"] == [] and after.json()["session_id"] is None
    events = [e for e in await clinic.srv.services.store.audit_events(bay="bay1") if e.action == "alarm.limits"]
    outcomes = sorted(e.outcome for e in events)
    assert outcomes == ["ok", "ok", "ok", "refused", "refused", "refused"]
    first = min((e for e in events if e.outcome == "ok"), key=lambda e: e.t)
    assert first.user == "phil" and first.before == {"overrides": []}
    assert first.after is not None and first.after["overrides"][0]["value"] == 140


async def test_a_nurses_live_stream_holds_only_her_bays(clinic: Clinic) -> None:
    async with websockets.connect(clinic.srv.ws, additional_headers=clinic.bearer(Role.NURSE)) as ws:
        await ws.send('{"type": "subscribe", "bays": null, "waves": "none"}')  # "every bay"
        bays: set[str] = set()
        errors: list[str] = []
        deadline = asyncio.get_running_loop().time() + 5  # five seconds of every bay's numerics (1 Hz)
        while asyncio.get_running_loop().time() < deadline:
            raw = str(await asyncio.wait_for(ws.recv(), 10))
            for msg in json.loads(raw) if raw.startswith("[") else [json.loads(raw)]:
                if msg["type"] == "snapshot":
                    bays.update(b["bay"] for b in msg["bays"])
                elif "bay" in msg:
                    bays.add(msg["bay"])
        assert bays == {"bay1"}, bays
        await ws.send('{"type": "subscribe", "bays": ["bay1", "bay2"], "waves": "none"}')
        for _ in range(40):
            raw = str(await asyncio.wait_for(ws.recv(), 10))
            for msg in json.loads(raw) if raw.startswith("[") else [json.loads(raw)]:
                if msg["type"] == "error":
                    errors.append(msg["message"])
                elif msg["type"] in ("snapshot", "vitals", "alarms", "status"):
                    assert msg.get("bay", "bay1") == "bay1" and all(b["bay"] == "bay1" for b in msg.get("bays", []))
            if errors:
                break
        assert errors and "bay2" in errors[0]
