"""SerialMonitor settings: defaults, validation, and the bay check."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from app.config import BayConfig, SerialMonitor, Settings, load_settings
from app.devices import build_adapter
from monitors.adapters.serial import SerialAdapter


def test_toml_serial_monitor_builds_an_adapter(tmp_path: Path) -> None:
    cfg = tmp_path / "vigil.toml"
    cfg.write_text(
        '[[bays]]\nid = "bay1"\nlabel = "Bay 1"\n\n'
        '[[monitors]]\nkind = "serial"\nname = "ox"\ndevice_id = "nonin-1"\nbay = "bay1"\n'
        'port = "socket://127.0.0.1:7000"\ndialect = "nonin-df2"\n'
    )
    s = load_settings(cfg)
    (m,) = s.monitors
    assert isinstance(m, SerialMonitor)
    assert (m.baudrate, m.parity, m.bytesize, m.stopbits) == (9600, "N", 8, 1)
    a = build_adapter(m)
    assert isinstance(a, SerialAdapter) and a.expected_devices == ("nonin-1",)


def test_invalid_serial_settings_are_refused() -> None:
    bays = [BayConfig(id="bay1", label="Bay 1")]
    ok = {"name": "ox", "device_id": "d", "bay": "bay1", "port": "/dev/ttyUSB0", "dialect": "masimo-ascii1"}
    with pytest.raises(ValidationError, match="unknown bay"):
        Settings(bays=bays, monitors=[SerialMonitor(**{**ok, "bay": "bay9"})])
    with pytest.raises(ValidationError):
        SerialMonitor(**{**ok, "dialect": "philips"})
    with pytest.raises(ValidationError, match="stopbits"):
        SerialMonitor(**{**ok, "stopbits": 3})
    with pytest.raises(ValidationError):
        SerialMonitor(**{**ok, "baudrate": 0})
