"""Issue 11: the first start creates the admin with a one-time password (printed once), which must be
changed before anything else; ``vigil user`` manages accounts; login off is refused off loopback."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from app.config import Settings
from tests.conftest import running_server, small_settings, start, stop_with_ctrl_c


async def test_the_first_admin_must_replace_the_one_time_password_before_anything_else(tmp_path: Path) -> None:
    async with running_server(small_settings(tmp_path, bays=1, auth="required")) as srv:
        created = srv.services.first_credentials
        assert created is not None and set(created) == {"admin"}
        role, one_time = created["admin"]
        assert role == "admin" and len(one_time) >= 16
        async with httpx.AsyncClient(base_url=srv.http) as http:
            r = await http.post("/api/login", json={"username": "admin", "password": one_time})
            assert r.status_code == 200 and r.json()["user"]["must_change"] is True
            csrf = {"x-csrf-token": r.json()["csrf_token"]}
            blocked = await http.get("/api/users")
            assert blocked.status_code == 403 and "password_change_required" in blocked.text
            short = await http.post("/api/me/password", json={"current": one_time, "new": "short"}, headers=csrf)
            assert short.status_code == 422
            wrong = await http.post(
                "/api/me/password", json={"current": "not it at all", "new": "a new long password"}, headers=csrf
            )
            assert wrong.status_code == 403
            ok = await http.post(
                "/api/me/password", json={"current": one_time, "new": "a new long password"}, headers=csrf
            )
            assert ok.status_code == 204
            users = await http.get("/api/users")
            assert users.status_code == 200 and [u["username"] for u in users.json()] == ["admin"]
            added = await http.post(
                "/api/users", json={"username": "nina", "role": "nurse", "bays": ["bay1"]}, headers=csrf
            )
            assert added.status_code == 201 and added.json()["user"]["must_change"] is True
            assert "password_hash" not in added.text
    # a restart on the same store creates nobody and prints nothing
    async with running_server(small_settings(tmp_path, bays=1, auth="required")) as srv:
        assert srv.services.first_credentials == {}


def test_demo_prints_the_one_time_passwords_once_and_vigil_user_manages_accounts(tmp_path: Path) -> None:
    db = tmp_path / "demo.sqlite3"
    args = ["demo", "--port", "0", "--no-hl7", "--db", str(db)]
    vp = start(args, cwd=tmp_path, env={"VIGIL_AUTH": "required", "VIGIL_DEMO_REVIEW_SESSION": "false"})
    try:
        banner = vp.banner
        found = dict(re.findall(r"(admin|nurse|physician|reviewer)\s+password: (\S+)", banner))
        assert set(found) == {"admin", "nurse", "physician", "reviewer"}, banner
        me = httpx.post(vp.url + "api/login", json={"username": "nurse", "password": found["nurse"]}, timeout=10)
        assert me.status_code == 200 and me.json()["user"]["role"] == "nurse"
    finally:
        code, log = stop_with_ctrl_c(vp)
    assert code == 0, log
    assert found["admin"] not in log  # the log never holds a password
    vp = start(args, cwd=tmp_path, env={"VIGIL_AUTH": "required", "VIGIL_DEMO_REVIEW_SESSION": "false"})
    try:
        assert "password:" not in vp.banner  # printed once: not on the next start
    finally:
        stop_with_ctrl_c(vp)
    cli = [sys.executable, "-m", "app", "user"]
    added = subprocess.run(
        [*cli, "add", "olga", "--role", "nurse", "--bays", "bay1,bay2", "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    assert re.search(r"olga: one-time password \S{16,}", added.stdout)
    listed = subprocess.run([*cli, "list", "--db", str(db)], capture_output=True, text=True, timeout=60)
    assert re.search(r"olga\s+nurse\s+bay1,bay2", listed.stdout), listed.stdout
    twice = subprocess.run([*cli, "add", "olga", "--db", str(db)], capture_output=True, text=True, timeout=60)
    assert twice.returncode == 1 and "exists" in twice.stderr


def test_login_off_is_refused_unless_the_server_listens_on_loopback_only() -> None:
    assert Settings(auth="off", host="127.0.0.1").auth == "off"
    with pytest.raises(ValidationError, match="loopback"):
        Settings(auth="off", host="0.0.0.0")
    assert Settings(host="0.0.0.0").auth == "required"  # the default


def test_the_web_server_speaks_tls_with_secure_cookies_and_hsts(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl command not available to make a self-signed certificate")
    cert, key = tmp_path / "vigil.crt", tmp_path / "vigil.key"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
            *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    env = {"VIGIL_AUTH": "required", "VIGIL_TLS_CERT": str(cert), "VIGIL_TLS_KEY": str(key)}
    env["VIGIL_DEMO_REVIEW_SESSION"] = "false"
    vp = start(["demo", "--port", "0", "--no-hl7", "--db", str(tmp_path / "tls.sqlite3")], cwd=tmp_path, env=env)
    try:
        assert vp.url.startswith("https://")
        found = dict(re.findall(r"(nurse)\s+password: (\S+)", vp.banner))
        with httpx.Client(base_url=vp.url, verify=str(cert), timeout=10) as http:
            page = http.get("login.html")
            assert page.status_code == 200 and "max-age" in page.headers["strict-transport-security"]
            r = http.post("api/login", json={"username": "nurse", "password": found["nurse"]})
            assert r.status_code == 200
            assert all("Secure" in c for c in r.headers.get_list("set-cookie"))
        with pytest.raises((httpx.ConnectError, httpx.RemoteProtocolError)):  # no fallback to clear text
            httpx.get(vp.url.replace("https://", "http://") + "healthz", timeout=5)
    finally:
        stop_with_ctrl_c(vp)
