"""Sessions over HTTP against the real server: the whole workflow, refusals that change nothing, phases and
sedation scores reaching the alarm engine, and sessions rebuilt from the store after a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.alarms.model import Phase
from app.sessions.model import Vitals
from tests.conftest import RunningServer, running_server, small_settings

PATIENT = {
    "identifier": "MRN-0042",
    "name": "Alex Example",
    "birth_date": "1968-04-02",
    "weight_kg": 70,
    "allergies": ["latex"],
    "history": ["hypertension"],
}
PLAN = {"dose_mg_per_kg": 0.5, "duration_min": 60, "concentration_mg_per_ml": 1}


def phase(srv: RunningServer, bay: str) -> Phase:
    """The bay's phase in the alarm engine."""
    return srv.services.alarms.states[bay].phase


async def _ok(r: httpx.Response, code: int = 200) -> Any:
    assert r.status_code == code, r.text
    return r.json()


async def _refused(r: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert r.status_code == status, r.text
    detail: dict[str, str] = r.json()["detail"]
    assert detail["code"] == code and detail["reason"], detail
    return detail


async def test_session_over_http_drives_the_alarm_engine_and_survives_a_restart(tmp_path: Path) -> None:
    settings = small_settings(tmp_path, bays=2)
    async with running_server(settings) as srv, httpx.AsyncClient(base_url=srv.http) as http:
        alarms = srv.services.alarms
        assert "bay1" in alarms.phase_source  # the simulated scenario drives the phase until a session exists
        patient = await _ok(await http.post("/api/patients", json=PATIENT), 201)
        pid = patient["id"]
        await _refused(await http.post("/api/patients", json=PATIENT), 409, "duplicate_identifier")
        assert [p["id"] for p in await _ok(await http.get("/api/patients", params={"q": "alex"}))] == [pid]
        await _refused(await http.get("/api/patients/nope"), 404, "no_such_patient")

        body = {"patient_id": pid, "bay": "bay1", "plan": PLAN}
        created = await _ok(await http.post("/api/sessions", json=body), 201)
        s = created["session"]
        sid = s["id"]
        assert s["phase"] == "planned" and s["plan"]["ml_per_h"] == 35 and s["plan"]["total_mg"] == 35
        assert created["events"][0]["kind"] == "created" and created["events"][0]["user"] == "local"
        assert "bay1" not in alarms.phase_source and phase(srv, "bay1") is Phase.PLANNED
        await _refused(await http.post("/api/sessions", json=body), 409, "bay_busy")
        await _refused(await http.post("/api/sessions", json={**body, "bay": "bay2"}), 409, "patient_busy")
        await _refused(await http.post("/api/sessions", json={**body, "bay": "bay9"}), 404, "no_such_bay")

        async def events() -> int:
            return len(await _ok(await http.get(f"/api/sessions/{sid}/events")))

        async def post(path: str, payload: dict[str, Any]) -> httpx.Response:
            return await http.post(f"/api/sessions/{sid}/{path}", json=payload)

        n = await events()
        detail = await _refused(await post("transition", {"to": "infusion"}), 409, "invalid_transition")
        assert "Cannot go from planned to infusion" in detail["reason"]
        assert (await post("transition", {"to": "teleport"})).status_code == 422
        assert await events() == n and phase(srv, "bay1") is Phase.PLANNED

        await _ok(await post("transition", {"to": "baseline"}))
        assert phase(srv, "bay1") is Phase.BASELINE
        high = {"vitals": {"sbp": 186, "dbp": 104, "hr": 80, "spo2": 97}}
        await _ok(await post("baseline", high))
        assert alarms.states["bay1"].manual_baselines["nibp_sys"] == 186  # the engine's relative rules use it too
        n = await events()
        await _refused(await post("transition", {"to": "infusion"}), 409, "baseline_bp_high")
        assert await events() == n and phase(srv, "bay1") is Phase.BASELINE
        for _ in range(200):  # the simulated monitor's first numerics
            if srv.services.hub.live.bays_out(["bay1"])[0].vitals:
                break
            await asyncio.sleep(0.05)
        r = await _ok(await post("baseline", {"from_monitor": True}))
        assert r["events"][0]["source"] == "monitor" and r["events"][0]["vitals"]["hr"] is not None
        await _ok(await post("baseline", {"vitals": {"sbp": 132, "dbp": 84, "hr": 76, "spo2": 98}}))
        r = await _ok(await post("transition", {"to": "infusion"}))
        assert any("hypertension" in a for a in r["events"][0]["advisories"])
        assert phase(srv, "bay1") is Phase.INFUSION

        await _refused(await post("infusion", {"action": "start", "mg_per_kg_h": 2.5}), 422, "rate_above_soft_limit")
        r = await _ok(await post("infusion", {"action": "start"}))
        assert r["session"]["pump"]["state"] == "running" and r["session"]["pump"]["ml_per_h"] == pytest.approx(35)
        await _refused(await post("infusion", {"action": "resume"}), 409, "pump_state")

        r = await _ok(await post("chart", {"item": {"type": "sedation", "rass": -2, "moaas": 4}}))
        seq = r["events"][0]["seq"]
        rass = alarms.states["bay1"].samples["rass"]
        assert rass.value == -2 and alarms.states["bay1"].samples["moaas"].value == 4
        r = await _ok(await post("chart", {"item": {"type": "sedation", "rass": -1, "moaas": 4}, "corrects": seq}))
        assert alarms.states["bay1"].samples["rass"].value == -1  # the correction reaches the engine too
        await _refused(
            await post("chart", {"item": {"type": "pain", "nrs": 2}, "corrects": seq}), 409, "already_corrected"
        )
        assert (await post("chart", {"item": {"type": "sedation", "rass": 9}})).status_code == 422
        await _ok(await post("chart", {"item": {"type": "pain", "nrs": 7}, "observed_at": s["created_at"]}))
        await _ok(await post("chart", {"item": {"type": "medication", "drug": "ondansetron", "dose": 4}}))

        view = await _ok(await http.get(f"/api/sessions/{sid}"))
        assert view["pump"]["state"] == "running" and view["clocks"]["infusion_started_at"] is not None
        assert view["clocks"]["infusion_planned_s"] == 3600
        assert view["estimate"]["estimate"] is True and "not a measurement" in view["estimate"]["label"]
        assert view["estimate"]["ketamine_cp_ng_ml"] >= 0
        rows = view["chart"]
        assert [r["superseded_by"] for r in rows if r["entry"]["seq"] == seq] == [seq + 1]
        assert view["readiness"]["ready"] is False and view["discharge_instructions"]
        assert (await _ok(await http.get("/api/bays/bay1/session")))["id"] == sid
        await _refused(await http.get("/api/bays/bay2/session"), 404, "no_open_session")

        r = await _ok(await post("infusion", {"action": "stop"}))
        assert r["session"]["phase"] == "recovery" and phase(srv, "bay1") is Phase.RECOVERY
        assert r["session"]["clocks"]["recovery_required_s"] == 1800
        detail = await _refused(
            await post("transition", {"to": "ready_for_discharge"}), 409, "discharge_criteria_unmet"
        )
        assert "recovery_time" in detail["reason"]
        own = {"overrides": [{"rule_id": "spo2_low", "level_index": 0, "delay_s": 20}]}
        limits = await _ok(await http.put("/api/bays/bay1/alarm-limits", json=own))
        assert limits["session_id"] == sid and alarms.states["bay1"].limits[0].delay_s == 20
        n = await events()
        await srv.services.store.flush()

    # restart on the same database: the session is rebuilt from the store and takes its bay back
    async with running_server(settings) as srv, httpx.AsyncClient(base_url=srv.http) as http:
        view = await _ok(await http.get(f"/api/sessions/{sid}"))
        assert view["phase"] == "recovery" and len(await _ok(await http.get(f"/api/sessions/{sid}/events"))) == n
        assert view["pump"]["state"] == "stopped" and view["dose"]["total_mg"] >= 0
        assert "bay1" not in srv.services.alarms.phase_source
        assert phase(srv, "bay1") is Phase.RECOVERY
        assert "bay2" in srv.services.alarms.phase_source
        kept = await _ok(await http.get("/api/bays/bay1/alarm-limits"))  # the patient's own limits hold
        assert kept["overrides"] == limits["overrides"] and srv.services.alarms.states["bay1"].limits[0].delay_s == 20
        assert (await _ok(await http.get(f"/api/patients/{pid}")))["identifier"] == "MRN-0042"
        history = await _ok(await http.get(f"/api/patients/{pid}/history"))
        (row,) = history["sessions"]
        assert row["session_id"] == sid and row["planned_mg_per_kg"] == 0.5 and row["pain_before"] == 7
        assert row["total_mg"] == pytest.approx(view["dose"]["total_mg"], abs=0.01)
        assert row["lowest_rass"] == -1 and row["medications"] == ["ondansetron 4 mg"]
        await _ok(await http.post(f"/api/sessions/{sid}/transition", json={"to": "aborted", "reason": "test"}))
        assert phase(srv, "bay1") is Phase.ABORTED
        assert srv.services.alarms.states["bay1"].limits == (), "they end with the session"
        listed = await _ok(await http.get("/api/sessions", params={"active": "false"}))
        assert [x["id"] for x in listed] == [sid]


async def test_discharge_over_http_with_a_controlled_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with running_server(small_settings(tmp_path, bays=1)) as srv, httpx.AsyncClient(base_url=srv.http) as http:
        sessions = srv.services.sessions
        assert sessions is not None
        t0 = datetime.now(UTC)
        offset = [0.0]
        clock: Callable[[], datetime] = lambda: t0 + timedelta(minutes=offset[0])  # noqa: E731
        monkeypatch.setattr(sessions, "wall", clock)

        def vitals(bay: str) -> Vitals:
            now = clock()
            return Vitals(sbp=128, dbp=80, hr=74, spo2=97, bp_at=now, at=now)

        monkeypatch.setattr(sessions, "latest_vitals", vitals)
        pid = (await _ok(await http.post("/api/patients", json=PATIENT), 201))["id"]
        sid = (await _ok(await http.post("/api/sessions", json={"patient_id": pid, "bay": "bay1", "plan": PLAN}), 201))[
            "session"
        ]["id"]

        async def post(path: str, payload: dict[str, Any], at_min: float) -> Any:
            offset[0] = at_min
            return await _ok(await http.post(f"/api/sessions/{sid}/{path}", json=payload))

        await post("transition", {"to": "baseline"}, 1)
        await post("baseline", {"vitals": {"sbp": 125, "dbp": 80, "hr": 72, "spo2": 98}}, 6)
        await post("transition", {"to": "premedication"}, 7)
        await post("chart", {"item": {"type": "medication", "drug": "midazolam", "dose": 2}}, 7)
        await post("transition", {"to": "infusion"}, 10)
        await post("infusion", {"action": "start"}, 10)
        await post("infusion", {"action": "rate", "ml_per_h": 42}, 30)
        r = await post("infusion", {"action": "stop"}, 70)
        assert r["session"]["dose"]["total_mg"] == pytest.approx(35 * 20 / 60 + 42 * 40 / 60, abs=1e-3)
        for item in (
            {"type": "sedation", "rass": 0, "moaas": 5},
            {"type": "pain", "nrs": 2},
            {"type": "side_effects", "effects": {}},
            {
                "type": "assessment",
                "limbs_moving": 4,
                "respiration": "deep",
                "on_oxygen": False,
                "oriented": True,
                "steady_gait": True,
                "tolerating_fluids": True,
                "voided": True,
                "escort_present": True,
            },
        ):
            await post("chart", {"item": item}, 99)
        view = await post("transition", {"to": "ready_for_discharge"}, 101)
        s = view["session"]
        assert s["phase"] == "ready_for_discharge" and s["readiness"]["ready"]
        assert s["readiness"]["aldrete"]["total"] == 10 and s["readiness"]["padss"]["total"] == 10
        assert s["clocks"]["recovery_elapsed_s"] == pytest.approx(31 * 60)
        done = await post("transition", {"to": "discharged"}, 103)
        assert done["session"]["phase"] == "discharged"
        assert phase(srv, "bay1") is Phase.DISCHARGED
        assert any("drive" in i["text"] for i in done["session"]["discharge_instructions"])


async def test_dose_calculator_and_openapi(tmp_path: Path) -> None:
    async with running_server(small_settings(tmp_path, bays=1)) as srv, httpx.AsyncClient(base_url=srv.http) as http:
        r = await _ok(await http.post("/api/dosing/calculate", params={"weight_kg": 80}, json=PLAN))
        assert (r["total_mg"], r["ml_per_h"], r["advisories"], r["needs_override"]) == (40, 40, [], None)
        r = await _ok(
            await http.post("/api/dosing/calculate", params={"weight_kg": 80}, json={**PLAN, "dose_mg_per_kg": 2.5})
        )
        assert r["advisories"] == [] and "2.50 mg/kg/h" in r["needs_override"]
        await _refused(
            await http.post("/api/dosing/calculate", params={"weight_kg": 20}, json=PLAN), 409, "weight_implausible"
        )
        paths = (await _ok(await http.get("/openapi.json")))["paths"]
        for p in (
            "/api/patients",
            "/api/sessions",
            "/api/sessions/{session_id}/transition",
            "/api/patients/{patient_id}/history",
        ):
            assert p in paths
        assert len(await _ok(await http.get("/api/discharge-instructions"))) >= 4
