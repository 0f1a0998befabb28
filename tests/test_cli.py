"""The ``vigil`` command as users run it: demo prints its URL, serves, and stops cleanly on Ctrl-C."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from app.config import Settings, load_settings
from tests.conftest import REPO

VIGIL = [sys.executable, "-m", "app"]


def start(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [*VIGIL, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + 20
    out = ""
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        out += line
        m = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
        if m:
            return proc, m.group(1)
    proc.kill()
    raise AssertionError(f"no URL printed; stdout={out!r} stderr={proc.stderr.read() if proc.stderr else ''}")


def stop_with_ctrl_c(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    assert proc.stderr is not None
    try:
        proc.wait(timeout=15)
        err = proc.stderr.read()
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, err


def test_demo_prints_url_serves_four_bays_and_stops_cleanly(tmp_path: Path) -> None:
    db = tmp_path / "demo.sqlite3"
    proc, url = start(["demo", "--port", "0", "--db", str(db)], cwd=tmp_path)
    try:
        bays = []
        for _ in range(50):
            bays = httpx.get(url + "api/bays", timeout=5).json()
            if all(d["state"] == "online" for b in bays for d in b["devices"]) and bays[0]["devices"]:
                break
            time.sleep(0.1)
        assert [b["bay"] for b in bays] == ["bay1", "bay2", "bay3", "bay4"]
        assert all(d["state"] == "online" for b in bays for d in b["devices"])
        time.sleep(1.2)
    finally:
        code, err = stop_with_ctrl_c(proc)
    assert code == 0, err
    assert "Traceback" not in err, err
    assert "store closed" in err
    with sqlite3.connect(db) as conn:  # closed cleanly: readings are there, WAL checkpointed away
        assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] > 0
    wal = Path(str(db) + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_serve_with_example_config_and_env_override(tmp_path: Path) -> None:
    proc, url = start(
        ["serve", "--config", str(REPO / "config" / "vigil.example.toml")],
        cwd=tmp_path,
        env={"VIGIL_PORT": "0", "VIGIL_DB_PATH": str(tmp_path / "x.sqlite3")},
    )
    try:
        assert [b["bay"] for b in httpx.get(url + "api/bays", timeout=5).json()] == ["bay1", "bay2"]
    finally:
        code, err = stop_with_ctrl_c(proc)
    assert code == 0 and "Traceback" not in err


def test_invalid_config_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[[bays]]\nid = "bay1"\nlabel = "Bay 1"\n[[monitors]]\nkind = "simulated"\nname = "s"\n'
        'device_id = "d"\nbay = "nowhere"\n'
    )
    res = subprocess.run([*VIGIL, "serve", "--config", str(bad)], capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert "unknown bay 'nowhere'" in res.stderr and "Traceback" not in res.stderr
    res = subprocess.run(
        [*VIGIL, "serve", "--config", str(tmp_path / "missing.toml")], capture_output=True, text=True, timeout=30
    )
    assert res.returncode == 2 and "not found" in res.stderr


def test_settings_precedence_env_over_toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_STALE_AFTER_S", "4.5")
    s = load_settings(REPO / "config" / "vigil.example.toml")
    assert s.stale_after_s == 4.5 and len(s.bays) == 2 and s.monitors[0].kind == "simulated"
    monkeypatch.setenv("VIGIL_MONITORS", '[{"kind": "teleport", "name": "x", "device_id": "d", "bay": "b"}]')
    with pytest.raises(ValueError, match="teleport"):
        Settings()


def test_compose_file_runs_the_server_with_valid_settings() -> None:
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    svc = compose["services"]["vigil"]
    fields = set(Settings.model_fields)
    for key in svc["environment"]:
        assert key.startswith("VIGIL_") and key.removeprefix("VIGIL_").lower() in fields, key
    assert "8000:8000" in svc["ports"] and "/healthz" in " ".join(svc["healthcheck"]["test"])
    assert (REPO / svc.get("build", ".") / "Dockerfile").is_file()


def test_docker_compose_config_validates() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed here; the compose file is still checked structurally above")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip("the docker compose plugin is not installed here (docker client only)")
    res = subprocess.run(
        [docker, "compose", "-f", str(REPO / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert res.returncode == 0, res.stderr
