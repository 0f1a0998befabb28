"""``vigil simulate`` and the simulated-monitor configuration: scenarios feed the running server."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from app.cli import simulate_settings
from app.config import SimulatedMonitor, demo_settings
from app.devices import build_adapter
from monitors.adapters.simulated import SimulatedAdapter
from simulators.patient import SimulatedPatient
from tests.conftest import start, stop_with_ctrl_c


def test_simulate_runs_n_bays_of_one_scenario_faster_than_real_time(tmp_path: Path) -> None:
    db = tmp_path / "sim.sqlite3"
    vp = start(
        ["simulate", "--scenario", "apnoea", "--bays", "3", "--speed", "60", "--port", "0", "--db", str(db)],
        cwd=tmp_path,
    )
    try:
        assert "3 bays playing 'apnoea' at 60x" in vp.banner
        bays: list[dict[str, object]] = []
        for _ in range(50):
            bays = httpx.get(vp.url + "api/bays", timeout=5).json()
            if len(bays) == 3 and all(d["state"] == "online" for b in bays for d in b["devices"]):  # type: ignore[attr-defined]
                break
            time.sleep(0.1)
        assert [b["bay"] for b in bays] == ["bay1", "bay2", "bay3"]
        time.sleep(2.0)  # two minutes of scenario time at 60×
    finally:
        code, log = stop_with_ctrl_c(vp)
    assert code == 0, log
    assert "Traceback" not in log, log
    with sqlite3.connect(db) as conn:
        hr = conn.execute("SELECT count(*) FROM readings WHERE param = 'hr' AND device_id = 'sim-monitor-1'").fetchone()
        span = conn.execute("SELECT min(t_device), max(t_device) FROM readings").fetchone()
    assert hr[0] >= 90  # ≥ 1.5 simulated minutes of 1 Hz HR in ~2 s
    assert span[0] != span[1]


def test_simulate_settings_give_each_bay_its_own_patient() -> None:
    s = simulate_settings("uneventful", 5, 10.0, 0, "127.0.0.1", Path("x.sqlite3"))
    assert len(s.bays) == 5 and len(s.monitors) == 5
    seeds = {m.seed for m in s.monitors if isinstance(m, SimulatedMonitor)}
    assert len(seeds) == 5
    with pytest.raises(ValueError, match="bays"):
        simulate_settings("uneventful", 0, 1.0, 0, "127.0.0.1", Path("x.sqlite3"))


def test_unknown_scenario_is_refused_at_configuration() -> None:
    with pytest.raises(ValidationError, match="unknown scenario"):
        SimulatedMonitor(name="s", device_id="d", bay="b", scenario="nope")


def test_demo_runs_a_mix_of_scenarios_without_early_artifacts() -> None:
    sims = [m for m in demo_settings().monitors if isinstance(m, SimulatedMonitor)]
    assert len({m.scenario for m in sims}) == 4
    for m in sims:
        adapter = build_adapter(m)
        assert isinstance(adapter, SimulatedAdapter)
        source = adapter.source
        assert isinstance(source, SimulatedPatient)
        start_s = m.offset_min * 60.0
        for t in range(0, 120):  # the browser tests need live numbers from the first seconds
            assert not source.conditions(start_s + t)
            n = source.numerics(start_s + t)
            assert all(n[k] is not None for k in ("hr", "spo2", "rr", "etco2"))
        assert m.nibp_first_s <= 11  # first NIBP within ~10 s


def test_weight_override_reaches_the_patient() -> None:
    adapter = build_adapter(SimulatedMonitor(name="s", device_id="d", bay="b", scenario="uneventful", weight_kg=110))
    assert isinstance(adapter, SimulatedAdapter)
    source = adapter.source
    assert isinstance(source, SimulatedPatient)
    assert source.traits.weight_kg == 110
