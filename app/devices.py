"""Adapters from configuration: one factory shared by the server, the CLI and the session recorder."""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from app.config import Hl7MllpMonitor, MonitorConfig, SerialMonitor, SimulatedMonitor
from monitors.adapters.simulated import SimulatedAdapter
from monitors.base import Adapter


def _now() -> datetime:
    return datetime.now(UTC)


def build_adapter(
    cfg: MonitorConfig,
    *,
    wall: Callable[[], datetime] | None = None,
    fixed_step: bool = False,
    pace: Callable[[], Awaitable[None]] | None = None,
) -> Adapter:
    """An adapter for one configured monitor (``wall``: a simulated monitor's wall clock, default now;
    ``pace``: awaited before each fixed step of a simulated monitor, the consumer's back-pressure)."""
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
            wall=wall or _now,
            fixed_step=fixed_step or cfg.fixed_step,
            pace=pace,
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
