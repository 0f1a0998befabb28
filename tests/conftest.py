"""Shared factories: settings for small test deployments and a real uvicorn server on port 0."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from app.config import BayConfig, Settings, SimulatedMonitor
from app.main import create_app
from app.recording.model import SessionRecording
from app.services import Services
from tests.store_backends import any_store, postgres_schema, store_backend  # noqa: F401  (fixtures)

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def small_settings(tmp_path: Path, bays: int = 2, **overrides: object) -> Settings:
    """``bays`` bays, each with a simulated monitor, on a fresh SQLite file. Login is off (a loopback-only
    setting): the functional tests act as the local user; tests/security/ runs with login required."""
    values: dict[str, object] = {
        "auth": "off",
        "host": "127.0.0.1",
        "port": 0,
        "db_path": tmp_path / "vigil-test.sqlite3",
        "bays": [BayConfig(id=f"bay{i}", label=f"Bay {i}") for i in range(1, bays + 1)],
        "monitors": [
            SimulatedMonitor(name=f"sim{i}", device_id=f"dev{i}", bay=f"bay{i}", seed=i, nibp_first_s=0.5)
            for i in range(1, bays + 1)
        ],
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


class RunningServer:
    """A live server: its base URLs and the app (for inspecting services)."""

    def __init__(self, server: uvicorn.Server, app: FastAPI, port: int) -> None:
        self.server = server
        self.app = app
        self.port = port
        self.http = f"http://127.0.0.1:{port}"
        self.ws = f"ws://127.0.0.1:{port}/ws"

    @property
    def services(self) -> Services:
        svc: Services = self.app.state.services
        return svc


@contextlib.asynccontextmanager
async def running_server(settings: Settings) -> AsyncIterator[RunningServer]:
    """Run the real app under uvicorn on an ephemeral port inside this event loop."""
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(), name="test:uvicorn")
    try:
        for _ in range(400):
            if server.started or task.done():
                break
            await asyncio.sleep(0.025)
        if not server.started:
            if task.done():
                task.result()
            raise RuntimeError("uvicorn did not start")
        port = server.servers[0].sockets[0].getsockname()[1]
        yield RunningServer(server, app, port)
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


@pytest.fixture
def shared_dir() -> Path:
    """../shared (fixtures, clinical brief); skips when this clone has none beside it."""
    if not SHARED.is_dir():
        pytest.skip(f"shared reference folder not found at {SHARED} (clone without ../shared)")
    return SHARED


VIGIL = [sys.executable, "-m", "app"]


@dataclasses.dataclass
class VigilProcess:
    """A ``vigil`` command running in a subprocess, with the URL it printed."""

    proc: subprocess.Popen[str]
    url: str
    stderr_path: Path
    banner: str = ""

    def stderr(self) -> str:
        """Everything the process logged so far."""
        return self.stderr_path.read_text(errors="replace")


def start(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 30) -> VigilProcess:
    """Start ``vigil ARGS`` and wait for the URL it prints (login off unless ``env`` sets VIGIL_AUTH)."""
    err_path = cwd / f"vigil-{len(list(cwd.glob('vigil-*.log')))}.log"
    err = err_path.open("w")
    proc = subprocess.Popen(
        [*VIGIL, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=err,
        text=True,
        env={**os.environ, "VIGIL_AUTH": "off", **(env or {})},
    )
    err.close()
    assert proc.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stdout = proc.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    out = ""
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        out += line
        m = re.search(r"(https?://127\.0\.0\.1:\d+/)", line)
        if m:
            time.sleep(0.1)  # the rest of the banner (listener addresses) follows at once
            while not lines.empty():
                out += lines.get_nowait()
            return VigilProcess(proc, m.group(1), err_path, out)
    proc.kill()
    raise AssertionError(f"no URL printed; stdout={out!r} stderr={err_path.read_text()}")


def stop_with_ctrl_c(vp: VigilProcess) -> tuple[int, str]:
    """Send SIGINT as Ctrl-C does; returns the exit code and the log."""
    vp.proc.send_signal(signal.SIGINT)
    try:
        vp.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        vp.proc.kill()
        raise
    return vp.proc.returncode, vp.stderr()


@dataclasses.dataclass(frozen=True)
class RecordedSession:
    """A finished simulated session recorded into a SQLite file (read-only: copy it before writing)."""

    db: Path
    session_id: str
    scenario: str
    speed: float

    def load(self) -> SessionRecording:
        """The session as read back (from a sync fixture: runs its own event loop)."""
        from app.recording.load import load_recording
        from app.store.sqlite import SQLiteStore

        async def run() -> SessionRecording:
            store = SQLiteStore(self.db)
            await store.open()
            try:
                return await load_recording(store, self.session_id)
            finally:
                await store.close()

        return asyncio.run(run())

    def copy_to(self, dst: Path) -> Path:
        """A private copy of the database (the template is closed and checkpointed: one file)."""
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.db, dst)
        return dst


#: Device-time speed of the shared recording. At higher speeds the commit latency of a charted score is many
#: device seconds, which the what-if self-check would see as a timing difference.
RECORDED_SPEED = 120.0


@pytest.fixture(scope="session")
def recorded_session(tmp_path_factory: pytest.TempPathFactory) -> RecordedSession:
    """One over-sedation session (check-in to discharge, with waveforms, alarms, acknowledgements and
    charting) recorded once per test run through the real pipeline (~1 min) and shared by every test that
    replays, reviews, re-runs or exports a session."""
    from app.recording.synth import record_simulated_session
    from app.store.sqlite import SQLiteStore

    db = tmp_path_factory.mktemp("recorded") / "oversedation.sqlite3"

    async def run() -> str:
        store = SQLiteStore(db, synchronous="NORMAL")
        await store.open()
        try:
            return await record_simulated_session(store, scenario="oversedation", bay="bay1", speed=RECORDED_SPEED)
        finally:
            await store.close()

    sid = asyncio.run(run())
    return RecordedSession(db=db, session_id=sid, scenario="oversedation", speed=RECORDED_SPEED)
