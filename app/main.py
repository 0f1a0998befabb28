"""``create_app(settings)``: the FastAPI application and its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from app.alarming import AlarmService
from app.alarms.engine import AlarmEngine
from app.alarms.profile import load_profile
from app.api import auth as auth_routes
from app.api import exports as export_routes
from app.api import recordings as recording_routes
from app.api import routes, ws
from app.api import sessions as session_routes
from app.api import trends as trend_routes
from app.api import ui as ui_routes
from app.api import whatif as whatif_routes
from app.api.deps import SESSION_COOKIE, current_user
from app.config import SerialMonitor, Settings, SimulatedMonitor
from app.decimate import Decimator
from app.devices import build_adapter, scenario_phase
from app.hub import HubBudgets, InProcessHub
from app.ingest import Pipeline, Supervisor
from app.live import LiveState
from app.recording.chunker import WaveChunker
from app.recording.demo import ensure_demo_session
from app.recording.replay import HubOptions, ReplayRegistry
from app.security.http import AuditTrail, PageGuard, SecurityHeaders
from app.security.roles import ROUTES, Perm
from app.security.service import AuthService
from app.services import Services
from app.sessions.model import Refused
from app.sessions.service import SessionService
from app.store import Store
from app.store.postgres import PostgresStore
from app.store.sqlite import SQLiteStore
from monitors.adapters.simulated import SimulatedAdapter

if TYPE_CHECKING:
    from app.scale.ownership import AlarmOwnership

log = logging.getLogger(__name__)

FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"


def plotly_js_path() -> Path:
    """plotly.min.js as shipped inside the installed plotly package (no CDN)."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


async def _tick_alarms(alarms: AlarmService, pipeline: Pipeline, interval_s: float = 1.0) -> None:
    """Run the alarm timers (delays, staleness, escalation, audio pause) once a second; record waveform
    buffers of devices that went quiet."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            alarms.tick()
        except Exception:  # a bug in one evaluation must not stop alarm timing for every bay
            log.exception("alarm tick failed")
        pipeline.flush_waves(idle_s=2.0)


async def _retention(store: Store, days: float, interval_s: float = 3600.0) -> None:
    """Delete recorded data older than ``days``, hourly."""
    while True:
        try:
            await store.purge(datetime.now(UTC) - timedelta(days=days))
        except Exception:
            log.exception("retention purge failed")
        await asyncio.sleep(interval_s)


def build_store(settings: Settings) -> SQLiteStore | PostgresStore:
    """The store ``settings`` ask for (not yet opened): SQLite at ``db_path`` (default) or PostgreSQL."""
    if settings.store == "postgres":
        assert settings.postgres_dsn is not None  # Settings refuses postgres without a DSN
        return PostgresStore(settings.postgres_dsn, schema=settings.postgres_schema, gather_s=settings.store_gather_s)
    return SQLiteStore(settings.db_path, gather_s=settings.store_gather_s, synchronous=settings.store_synchronous)


def hub_budgets(settings: Settings) -> HubBudgets:
    """The live hub's ring and client budgets from the settings (either hub)."""
    return HubBudgets(
        ring_size=settings.hub_replay_buffer,
        max_pending=settings.client_queue_max,
        max_waves=settings.client_wave_max,
        stale_after_s=settings.stale_after_s,
        offline_after_s=settings.offline_after_s,
    )


class Cluster:
    """The scale-out parts of one instance (hub = "redis"): the clinic-stream hub and the alarm leases."""

    def __init__(self, settings: Settings, live: LiveState) -> None:
        from app.scale.redis_hub import RedisHub, connect

        self.settings = settings
        self.instance_id = settings.instance_id or f"{socket.gethostname()}-{os.getpid()}"
        self.hub = RedisHub(
            live,
            connect(settings.redis_url),
            cluster=settings.cluster,
            instance_id=self.instance_id,
            bays=[(b.id, b.label) for b in settings.bays],
            backoff_initial_s=settings.backoff_initial_s,
            backoff_max_s=settings.backoff_max_s,
            **hub_budgets(settings),
        )
        self.ownership: AlarmOwnership | None = None
        from app.scale.session_sync import RedisSessionSync

        #: Session commands hold a cluster-wide lock per bay and announce what they changed.
        self.sessions = RedisSessionSync(self.hub.redis, cluster=settings.cluster, instance_id=self.instance_id)

    async def own_alarms(self, alarms: AlarmService) -> None:
        """Start the alarm leases: bays with a monitor attached here are taken first."""
        from app.scale.ownership import AlarmOwnership

        s = self.settings
        self.ownership = AlarmOwnership(
            self.hub,
            alarms,
            preferred={m.bay for m in s.monitors if isinstance(m, SimulatedMonitor | SerialMonitor)},
            lease_s=s.alarm_lease_s,
            stale_after_s=s.stale_after_s,
            offline_after_s=s.offline_after_s,
        )
        alarms.gate = self.ownership
        await self.ownership.start()

    async def stop(self) -> None:
        """Hand the bays over (save and release leases), then leave the stream."""
        if self.ownership is not None:
            await self.ownership.stop()
        await self.hub.stop()


def _openapi_with_security(app: FastAPI) -> dict[str, Any]:
    """The OpenAPI schema with how to authenticate: the session cookie (browsers) or the same token as a
    bearer (API clients, from POST /api/login with ``token``), and which operations need none."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        schema.setdefault("components", {})["securitySchemes"] = {
            "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
            "bearer": {"type": "http", "scheme": "bearer"},
        }
        schema["security"] = [{"session": []}, {"bearer": []}]
        for path, ops in schema["paths"].items():
            for method, op in ops.items():
                if ROUTES.get((method.upper(), path)) is Perm.PUBLIC:
                    op["security"] = []
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(settings: Settings) -> FastAPI:
    """The Vigil server for ``settings``; services start and stop with the app's lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = build_store(settings)
        await store.open()
        live = LiveState((b.id, b.label) for b in settings.bays)
        cluster: Cluster | None = None
        hub: InProcessHub
        if settings.hub == "redis":
            cluster = Cluster(settings, live)
            try:
                await cluster.hub.start()
            except Exception:
                await store.close()
                raise
            hub = cluster.hub
        else:
            hub = InProcessHub(live, **hub_budgets(settings))
        alarms = AlarmService(
            AlarmEngine(load_profile(settings.alarm_profile)), (b.id for b in settings.bays), hub, store
        )
        chunker = WaveChunker(settings.record_wave_segment_s) if settings.record_waveforms else None
        # With several instances the alarm owner is fed from the clinic stream (app/scale/ownership.py), not here.
        pipeline = Pipeline(
            store, hub, Decimator(settings.station_wave_max_hz), None if cluster else alarms, chunker=chunker
        )
        supervisor = Supervisor(
            pipeline,
            stale_after_s=settings.stale_after_s,
            offline_after_s=settings.offline_after_s,
            backoff_initial_s=settings.backoff_initial_s,
            backoff_max_s=settings.backoff_max_s,
            bindings=settings.bindings,
            locations=settings.locations,
        )
        for m in settings.monitors:
            adapter = build_adapter(m)
            supervisor.add(adapter, bay=m.bay if isinstance(m, SimulatedMonitor | SerialMonitor) else None)
            if isinstance(m, SimulatedMonitor) and isinstance(adapter, SimulatedAdapter):
                follow = scenario_phase(adapter)
                if follow is not None:
                    alarms.phase_source[m.bay] = follow
                if m.speed != 1.0:
                    alarms.clocks[m.bay] = adapter.device_now
        if cluster is not None:
            await cluster.own_alarms(alarms)  # before sessions.load: bays owned here get their phase directly
        recovery = settings.training_recovery_min_s
        sessions = SessionService(
            store,
            alarms,
            hub,
            recovery_min=None if recovery is None else timedelta(seconds=recovery),
            sync=cluster.sessions if cluster is not None else None,
        )
        await sessions.load()  # after the scenario phase sources: an open session takes its bay back
        replays = ReplayRegistry(  # replays play through hubs of their own, never the live one
            store,
            labels={b.id: b.label for b in settings.bays},
            options=HubOptions(
                max_pending=settings.client_queue_max,
                max_waves=settings.client_wave_max,
                stale_after_s=settings.stale_after_s,
                offline_after_s=settings.offline_after_s,
                decimate_hz=settings.station_wave_max_hz,
            ),
        )
        await replays.start()
        auth = AuthService(store, session_hours=settings.session_hours)
        await auth.load()
        first = settings.auth == "required" and settings.bootstrap_admin
        created = await auth.bootstrap(demo=settings.demo_users) if first else {}
        for name, (role, _) in created.items():
            log.warning("created user %r (%s) with a one-time password (printed once at start)", name, role.value)
        app.state.services = Services(
            settings,
            store,
            hub,
            pipeline,
            supervisor,
            alarms,
            sessions,
            replays=replays,
            auth=auth,
            first_credentials={n: (r.value, pw) for n, (r, pw) in created.items()},
        )
        await supervisor.start()
        ticker = asyncio.create_task(_tick_alarms(alarms, pipeline), name="alarms:tick")
        background = [ticker]
        if settings.demo_review_session and settings.store == "sqlite":  # the recorder writes the SQLite file
            seed = ensure_demo_session(store, str(settings.db_path))
            background.append(asyncio.create_task(seed, name="demo:review-session"))
        if settings.retention_days is not None:
            background.append(asyncio.create_task(_retention(store, settings.retention_days), name="retention"))
        log.info(
            "vigil started: %d bays, %d monitors, store %s",
            len(settings.bays),
            len(settings.monitors),
            settings.db_path if settings.store == "sqlite" else f"PostgreSQL (schema {settings.postgres_schema})",
        )
        if cluster is not None:
            log.info(
                "scale-out: instance %s in cluster %r (Redis hub, alarm leases)", cluster.instance_id, settings.cluster
            )
        try:
            yield
        finally:
            for task in background:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await replays.stop()
            await supervisor.stop()
            await pipeline.flush_waves()
            if cluster is not None:
                await cluster.stop()
            await store.close()
            log.info("vigil stopped; store closed (%d records committed)", store.committed_records)

    app = FastAPI(title="Vigil", version="0.1.0", lifespan=lifespan, dependencies=[Depends(current_user)])
    app.add_exception_handler(Refused, session_routes.refused_handler)
    app.include_router(auth_routes.router)
    app.include_router(routes.router)
    app.include_router(session_routes.router)
    app.include_router(trend_routes.router)
    app.include_router(ui_routes.router)
    app.include_router(whatif_routes.router)
    app.include_router(recording_routes.router)
    app.include_router(export_routes.router)
    app.include_router(ws.router)

    @app.get("/vendor/plotly.min.js", include_in_schema=False)  # behind the login like every page
    async def plotly_js() -> FileResponse:
        return FileResponse(plotly_js_path(), media_type="text/javascript")

    app.mount("/", StaticFiles(directory=FRONTEND_DIR, html=True), name="frontend")
    app.openapi = lambda: _openapi_with_security(app)  # type: ignore[method-assign]

    def auth_service() -> AuthService | None:
        svc: Services | None = getattr(app.state, "services", None)
        return None if svc is None else svc.auth

    # outermost last: headers on every answer, then the page gate, then the audit of what was answered
    app.add_middleware(AuditTrail, auth=auth_service)
    if settings.auth == "required":
        app.add_middleware(PageGuard, auth=auth_service, cookie=SESSION_COOKIE)
    app.add_middleware(SecurityHeaders, hsts=settings.tls_cert is not None)
    return app
