"""``create_app(settings)``: the FastAPI application and its lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from importlib import resources
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from app.alarming import AlarmService
from app.alarms.engine import AlarmEngine
from app.alarms.profile import load_profile
from app.api import routes, ws
from app.api import sessions as session_routes
from app.api.deps import current_user
from app.config import Hl7MllpMonitor, MonitorConfig, SerialMonitor, Settings, SimulatedMonitor
from app.decimate import Decimator
from app.hub import InProcessHub
from app.ingest import Pipeline, Supervisor
from app.live import LiveState
from app.services import Services
from app.sessions.model import Refused
from app.sessions.service import SessionService
from app.store.sqlite import SQLiteStore
from monitors.adapters.simulated import SimulatedAdapter
from monitors.base import Adapter

log = logging.getLogger(__name__)

FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"


def plotly_js_path() -> Path:
    """plotly.min.js as shipped inside the installed plotly package (no CDN)."""
    return Path(str(resources.files("plotly") / "package_data" / "plotly.min.js"))


def build_adapter(cfg: MonitorConfig) -> Adapter:
    """An adapter for one configured monitor."""
    if isinstance(cfg, SimulatedMonitor):
        from monitors.adapters.simulated import SignalSource
        from simulators.patient import SimulatedPatient
        from simulators.physiology import CHANNELS, RestingPatient
        from simulators.scenario import load_scenario

        source: SignalSource
        if cfg.scenario is None:
            source = RestingPatient(cfg.seed)
        else:
            scenario = load_scenario(cfg.scenario)
            if cfg.weight_kg is not None:
                patient = scenario.patient.model_copy(update={"weight_kg": cfg.weight_kg})
                scenario = scenario.model_copy(update={"patient": patient})
            source = SimulatedPatient(scenario, seed=cfg.seed)
        return SimulatedAdapter(
            name=cfg.name,
            device_id=cfg.device_id,
            source=source,
            channels=CHANNELS if cfg.waveforms else {},
            chunk_s=cfg.chunk_s,
            nibp_interval_s=cfg.nibp_interval_s,
            nibp_first_s=cfg.nibp_first_s,
            speed=cfg.speed,
            offset_s=cfg.offset_min * 60.0,
        )
    if isinstance(cfg, Hl7MllpMonitor):
        from monitors.adapters.hl7_mllp import Hl7MllpAdapter

        context = None
        if cfg.tls_cert is not None and cfg.tls_key is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cfg.tls_cert, cfg.tls_key)
        return Hl7MllpAdapter(
            name=cfg.name,
            host=cfg.host,
            port=cfg.port,
            max_frame_bytes=cfg.max_frame_bytes,
            allow_from=cfg.allow_from,
            ssl_context=context,
            idle_timeout_s=cfg.idle_timeout_s,
            max_connections=cfg.max_connections,
        )
    if isinstance(cfg, SerialMonitor):
        from monitors.adapters.serial import SerialAdapter

        return SerialAdapter(
            name=cfg.name,
            device_id=cfg.device_id,
            port=cfg.port,
            dialect=cfg.dialect,
            baudrate=cfg.baudrate,
            parity=cfg.parity,
            bytesize=cfg.bytesize,
            stopbits=cfg.stopbits,
            idle_reopen_s=cfg.idle_reopen_s,
        )
    raise NotImplementedError(f"monitor kind {cfg.kind!r}")  # pragma: no cover - union is exhaustive


def scenario_phase(adapter: SimulatedAdapter) -> Callable[[], str | None] | None:
    """For a simulated bay playing a scenario: the phase its regimen implies now (until sessions exist)."""
    from simulators.patient import SimulatedPatient

    source = adapter.source
    if not isinstance(source, SimulatedPatient):
        return None

    def phase() -> str | None:
        t = adapter.scenario_time
        return None if t is None else source.phase_at(t)

    return phase


async def _tick_alarms(alarms: AlarmService, interval_s: float = 1.0) -> None:
    """Run the alarm timers (delays, staleness, escalation, audio pause) once a second."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            alarms.tick()
        except Exception:  # a bug in one evaluation must not stop alarm timing for every bay
            log.exception("alarm tick failed")


def create_app(settings: Settings) -> FastAPI:
    """The Vigil server for ``settings``; services start and stop with the app's lifespan."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = SQLiteStore(settings.db_path, gather_s=settings.store_gather_s, synchronous=settings.store_synchronous)
        await store.open()
        live = LiveState((b.id, b.label) for b in settings.bays)
        hub = InProcessHub(
            live,
            ring_size=settings.hub_replay_buffer,
            max_pending=settings.client_queue_max,
            max_waves=settings.client_wave_max,
            stale_after_s=settings.stale_after_s,
            offline_after_s=settings.offline_after_s,
        )
        alarms = AlarmService(
            AlarmEngine(load_profile(settings.alarm_profile)), (b.id for b in settings.bays), hub, store
        )
        pipeline = Pipeline(store, hub, Decimator(settings.station_wave_max_hz), alarms)
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
        recovery = settings.training_recovery_min_s
        sessions = SessionService(
            store, alarms, hub, recovery_min=None if recovery is None else timedelta(seconds=recovery)
        )
        await sessions.load()  # after the scenario phase sources: an open session takes its bay back
        app.state.services = Services(settings, store, hub, pipeline, supervisor, alarms, sessions)
        await supervisor.start()
        ticker = asyncio.create_task(_tick_alarms(alarms), name="alarms:tick")
        log.info(
            "vigil started: %d bays, %d monitors, store %s",
            len(settings.bays),
            len(settings.monitors),
            settings.db_path,
        )
        try:
            yield
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            await supervisor.stop()
            await store.close()
            log.info("vigil stopped; store closed (%d records committed)", store.committed_records)

    app = FastAPI(title="Vigil", version="0.1.0", lifespan=lifespan, dependencies=[Depends(current_user)])
    app.add_exception_handler(Refused, session_routes.refused_handler)
    app.include_router(routes.router)
    app.include_router(session_routes.router)
    app.include_router(ws.router)

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    async def plotly_js() -> FileResponse:
        return FileResponse(plotly_js_path(), media_type="text/javascript")

    app.mount("/", StaticFiles(directory=FRONTEND_DIR, html=True), name="frontend")
    return app
