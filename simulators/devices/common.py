"""What the device emulators share: a simulated monitor playing a scenario (or a resting patient)."""

from __future__ import annotations

from collections.abc import Mapping

from monitors.adapters.simulated import SignalSource, SimulatedAdapter
from simulators.patient import SimulatedPatient
from simulators.physiology import CHANNELS, RestingPatient
from simulators.scenario import load_scenario


def simulated_monitor(
    name: str,
    device_id: str,
    *,
    scenario: str | None,
    seed: int,
    speed: float,
    offset_min: float,
    channels: Mapping[str, tuple[float, float]] = CHANNELS,
) -> SimulatedAdapter:
    """The monitor an emulator encodes onto its wire (first NIBP 2 s after start)."""
    source: SignalSource = (
        RestingPatient(seed) if scenario is None else SimulatedPatient(load_scenario(scenario), seed=seed)
    )
    return SimulatedAdapter(
        name=name,
        device_id=device_id,
        source=source,
        channels=channels,
        nibp_first_s=2.0,
        speed=speed,
        offset_s=offset_min * 60.0,
    )
