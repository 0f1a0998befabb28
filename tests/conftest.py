"""Shared factories: settings for small test deployments and a real uvicorn server on port 0."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from app.config import BayConfig, Settings, SimulatedMonitor
from app.main import create_app
from app.services import Services

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"


def small_settings(tmp_path: Path, bays: int = 2, **overrides: object) -> Settings:
    """``bays`` bays, each with a simulated monitor, on a fresh SQLite file."""
    values: dict[str, object] = {
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
