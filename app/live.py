"""Live state of every bay, built only from published hub messages (so any hub instance can rebuild it)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from app.wire import (
    AlarmOut,
    Alarms,
    BayOut,
    DeviceAlarmMsg,
    DeviceAlarmOut,
    DeviceOut,
    Status,
    VitalOut,
    Vitals,
    Wave,
)


@dataclass
class _Bay:
    label: str
    devices: dict[str, DeviceOut] = field(default_factory=dict)
    vitals: dict[str, VitalOut] = field(default_factory=dict)
    alarms: dict[tuple[str, str], DeviceAlarmOut] = field(default_factory=dict)
    last_data: dict[str, float] = field(default_factory=dict)
    rule_alarms: list[AlarmOut] = field(default_factory=list)
    audio_paused_until: float | None = None
    phase: str | None = None


#: Bay id under which devices bound to no configured bay are shown.
UNASSIGNED = "unassigned"


class LiveState:
    """Latest vitals, device states and active device alarms per bay."""

    def __init__(self, bays: Iterable[tuple[str, str]]) -> None:
        self._bays: dict[str, _Bay] = {bay_id: _Bay(label) for bay_id, label in bays}
        self._bays.setdefault(UNASSIGNED, _Bay("Unassigned devices"))

    def bay_ids(self) -> list[str]:
        """Bay ids in configured order (plus "unassigned" once a device shows up there)."""
        return [b for b, st in self._bays.items() if b != UNASSIGNED or st.devices or st.vitals]

    def has_bay(self, bay: str) -> bool:
        """Whether the bay is configured."""
        return bay in self._bays

    def label(self, bay: str) -> str:
        """The bay's display label."""
        return self._bays[bay].label

    def apply(self, msg: Vitals | Wave | Status | DeviceAlarmMsg | Alarms) -> None:
        """Fold one published message into the state."""
        b = self._bays.get(msg.bay)
        if b is None:
            return
        if isinstance(msg, Vitals):
            for r in msg.readings:
                b.vitals[r.param] = r
            b.last_data[msg.device_id] = msg.t
        elif isinstance(msg, Wave):
            b.last_data[msg.device_id] = msg.t
        elif isinstance(msg, Status):
            b.devices[msg.device.device_id] = msg.device
        elif isinstance(msg, Alarms):
            b.rule_alarms = list(msg.active)
            b.audio_paused_until = msg.audio_paused_until
            b.phase = msg.phase
        else:
            key = (msg.alarm.device_id, msg.alarm.code)
            if msg.alarm.active:
                b.alarms[key] = msg.alarm
            else:
                b.alarms.pop(key, None)

    def bays_out(self, only: Iterable[str] | None = None) -> list[BayOut]:
        """Wire form of the bays (all, or those in ``only`` that exist), in configured order."""
        wanted = None if only is None else set(only)
        out: list[BayOut] = []
        for bay_id, b in self._bays.items():
            if wanted is not None and bay_id not in wanted:
                continue
            if bay_id == UNASSIGNED and not (b.devices or b.vitals):
                continue
            devices = [d.model_copy(update={"last_data": b.last_data.get(d.device_id)}) for d in b.devices.values()]
            out.append(
                BayOut(
                    bay=bay_id,
                    label=b.label,
                    devices=devices,
                    vitals=list(b.vitals.values()),
                    device_alarms=list(b.alarms.values()),
                    alarms=list(b.rule_alarms),
                    audio_paused_until=b.audio_paused_until,
                    phase=b.phase,
                )
            )
        return out
