"""The clinical regression suite through the whole server: all nine scenarios play at once as nine simulated
bays at 60x (90 simulated minutes in ~90 s), through the real adapters, pipeline, alarm service and store;
each bay must raise exactly its scenario's alarms (same expectations as the engine-level suite). Waveforms are
off: they do not enter the rules, and nine bays of them at 60x would only measure the CPU. The monitors run on
a fixed-step clock, so a loaded machine (CI) slows the run down instead of making it skip simulated seconds."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from app.config import BayConfig, SimulatedMonitor
from monitors.adapters.simulated import SimulatedAdapter
from tests.conftest import running_server, small_settings
from tests.test_alarm_scenarios import ALWAYS_ALLOWED, EXPECTED, RANK

SPEED = 60.0
MINUTES = 90


@pytest.mark.timeout(MINUTES * 60 / SPEED * 4 + 60)  # a loaded machine plays the fixed-step run slower
async def test_every_scenario_through_the_server_raises_its_alarms_and_no_others(tmp_path: Path) -> None:
    names = sorted(EXPECTED)
    base = small_settings(tmp_path, bays=0)
    settings = base.model_copy(
        update={
            "bays": [BayConfig(id=n, label=n) for n in names],
            "monitors": [
                SimulatedMonitor(
                    name=f"sim-{n}",
                    device_id=f"dev-{n}",
                    bay=n,
                    seed=2,
                    scenario=n,
                    speed=SPEED,
                    nibp_first_s=5.0 / SPEED,
                    fixed_step=True,  # a busy machine slows the run down instead of skipping seconds
                )
                for n in names
            ],
        }
    )
    async with running_server(settings) as srv:
        adapters = [a for a in srv.services.supervisor.adapters.values() if isinstance(a, SimulatedAdapter)]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + MINUTES * 60 / SPEED * 4
        while loop.time() < deadline:
            if all((a.scenario_time or 0) >= MINUTES * 60 for a in adapters):
                break
            await asyncio.sleep(1)
        assert all((a.scenario_time or 0) >= MINUTES * 60 for a in adapters), "the scenarios did not finish"
        await srv.services.store.flush()
        failures = []
        async with httpx.AsyncClient(base_url=srv.http, timeout=30) as http:
            for name in names:
                log = (await http.get(f"/api/bays/{name}/alarms", params={"limit": 5000})).json()["log"]
                reached: dict[str, str] = {}
                for row in log:
                    e = row["event"]
                    if e["kind"] not in ("raised", "priority_changed", "escalated") or not e["priority"]:
                        continue
                    if RANK[e["priority"]] >= RANK.get(reached.get(e["rule_id"], "info"), 0):
                        reached[e["rule_id"]] = e["priority"]
                must, allowed = EXPECTED[name]
                missing = {r: p for r, p in must.items() if RANK.get(reached.get(r, ""), -1) < RANK[p]}
                unexpected = set(reached) - set(must) - allowed - ALWAYS_ALLOWED
                if missing or unexpected:
                    failures.append(f"{name}: missing {missing}, unexpected {sorted(unexpected)}; reached {reached}")
        assert not failures, "\n".join(failures)
