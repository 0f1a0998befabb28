"""REST routes: health, bays, parameter catalogue, simulated-device fault injection."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict

from app.api.deps import CurrentUser, Svc
from app.wire import DeviceOut
from monitors import parameters
from monitors.adapters.simulated import Fault, SimulatedAdapter

router = APIRouter()

#: How the UI writes UCUM units.
_DISPLAY_UNITS = {"/min": "/min", "%": "%", "mm[Hg]": "mmHg", "Cel": "°C", "mV": "mV", "1": ""}


class Health(BaseModel):
    """Liveness and a little more."""

    status: Literal["ok"]
    epoch: str
    bays: int
    devices: dict[str, str]


class BayInfo(BaseModel):
    """A configured bay and its devices."""

    bay: str
    label: str
    devices: list[DeviceOut]


class ParameterInfo(BaseModel):
    """A catalogue row as the UI needs it."""

    key: str
    label: str
    kind: Literal["numeric", "waveform"]
    ucum: str
    unit_display: str
    decimals: int
    cadence: Literal["continuous", "episodic"]
    group: str | None
    mdc_code: int
    mdc_refid: str
    loinc: str | None
    plausible: tuple[float, float]


class FaultRequest(BaseModel):
    """Fault to inject into a simulated device."""

    model_config = ConfigDict(extra="forbid")
    fault: Fault


@router.get("/healthz")
async def healthz(user: CurrentUser, svc: Svc) -> Health:
    """Liveness: the server runs; device states for a quick look."""
    return Health(
        status="ok",
        epoch=svc.hub.epoch,
        bays=len(svc.settings.bays),
        devices={d: dev.state.value for d, dev in svc.supervisor.devices.items()},
    )


class MonitorInfo(BaseModel):
    """A configured monitor adapter and what it reports about itself."""

    name: str
    type: str
    devices: list[str]
    details: dict[str, object]


@router.get("/api/monitors")
async def monitors(user: CurrentUser, svc: Svc) -> list[MonitorInfo]:
    """Configured monitor adapters (listening addresses, counters) and the devices seen."""
    return [
        MonitorInfo(name=name, type=type(a).__name__, devices=list(a.expected_devices), details=a.describe())
        for name, a in svc.supervisor.adapters.items()
    ]


@router.get("/api/bays")
async def bays(user: CurrentUser, svc: Svc) -> list[BayInfo]:
    """Configured bays in order, with their devices' states."""
    return [BayInfo(bay=b.bay, label=b.label, devices=b.devices) for b in svc.hub.live.bays_out()]


@router.get("/api/parameters")
async def catalogue(user: CurrentUser) -> list[ParameterInfo]:
    """The parameter catalogue (labels, units, codes) for screens and integrators."""
    return [
        ParameterInfo(
            key=p.key,
            label=p.label,
            kind=p.kind.value,
            ucum=p.ucum,
            unit_display=_DISPLAY_UNITS.get(p.ucum, p.ucum),
            decimals=p.decimals,
            cadence=p.cadence.value,
            group=p.group,
            mdc_code=p.mdc_code,
            mdc_refid=p.mdc_refid,
            loinc=p.loinc,
            plausible=p.plausible,
        )
        for p in parameters.CATALOGUE.values()
    ]


@router.post("/api/devices/{device_id}/simulation", status_code=status.HTTP_204_NO_CONTENT)
async def simulate_fault(device_id: str, body: FaultRequest, user: CurrentUser, svc: Svc) -> Response:
    """Inject a fault into a simulated device (training and tests); 404 for real devices."""
    for adapter in svc.supervisor.adapters.values():
        if isinstance(adapter, SimulatedAdapter) and adapter.device_id == device_id:
            adapter.set_fault(body.fault)
            return Response(status_code=status.HTTP_204_NO_CONTENT)
    raise HTTPException(status.HTTP_404_NOT_FOUND, f"no simulated device {device_id!r}")
