"""Sessions and logins with two real instances (subprocesses, port 0) on one PostgreSQL schema and one Redis
cluster name.

A patient registered and a session opened through one instance are seen through the other at once; charting
and phase changes made through either are decided on the latest state (never two events with one number,
never two open sessions in one bay), and the bay's alarm engine, wherever it runs, follows the phase.
Skips, saying why, without Redis or PostgreSQL (see tests/test_scaleout.py).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import VigilProcess, start
from tests.store_backends import PgSchema
from tests.test_scaleout import Screen, _env, _instances, _sim, _stop_all, cluster

__all__ = ["cluster"]  # the fixture, imported for pytest

PATIENT = {"identifier": "MRN-7001", "name": "Robin Twin", "birth_date": "1971-05-06", "weight_kg": 70}
PLAN = {"dose_mg_per_kg": 0.5, "duration_min": 40, "concentration_mg_per_ml": 1}


async def _ok(r: httpx.Response, code: int = 200) -> Any:
    assert r.status_code == code, r.text
    return r.json()


@pytest.mark.timeout(120)
async def test_a_session_opened_on_one_instance_is_charted_on_the_other(
    tmp_path: Path, cluster: str, postgres_schema: PgSchema
) -> None:
    with _instances(tmp_path, cluster, postgres_schema, _sim("uneventful", 1.0)) as (a, b):
        async with httpx.AsyncClient(base_url=a.url) as ha, httpx.AsyncClient(base_url=b.url) as hb:
            pid = (await _ok(await hb.post("/api/patients", json=PATIENT), 201))["id"]
            assert (await _ok(await ha.get(f"/api/patients/{pid}")))["name"] == "Robin Twin", "B's patient on A"
            dup = await ha.post("/api/patients", json=PATIENT)
            assert dup.status_code == 409 and dup.json()["detail"]["code"] == "duplicate_identifier"

            created = await _ok(
                await ha.post("/api/sessions", json={"patient_id": pid, "bay": "bay1", "plan": PLAN}), 201
            )
            sid = created["session"]["id"]
            on_b = await _ok(await hb.get("/api/bays/bay1/session"))
            assert on_b["id"] == sid and on_b["phase"] == "planned", "A's session on B"
            busy = await hb.post("/api/sessions", json={"patient_id": pid, "bay": "bay2", "plan": PLAN})
            assert busy.status_code == 409 and busy.json()["detail"]["code"] == "patient_busy"

            # phase changes through B reach the bay's alarm engine (A owns bay1: it ingests the monitor)
            async with Screen(a.url).open() as screen:
                await _ok(await hb.post(f"/api/sessions/{sid}/transition", json={"to": "baseline"}))
                await screen.wait(
                    "bay1's alarm engine in baseline", lambda m: m["type"] == "alarms" and m.get("phase") == "baseline"
                )
            assert (await _ok(await ha.get(f"/api/sessions/{sid}")))["phase"] == "baseline"

            # the patient's own limits, set through B, are applied by A's engine (HR ~80 > 40 at once)
            def hr_high(m: dict[str, Any]) -> bool:
                return m["type"] == "alarms" and any(x["rule_id"] == "hr_high" for x in m["active"])

            own = {"overrides": [{"rule_id": "hr_high", "level_index": 0, "value": 40, "delay_s": 1}]}
            async with Screen(a.url).open() as screen:
                put = await _ok(await hb.put("/api/bays/bay1/alarm-limits", json=own))
                assert put["session_id"] == sid and put["overrides"][0]["value"] == 40
                raised = await screen.wait("HR HIGH under the patient's own limit, raised by A", hr_high)
                assert (await _ok(await ha.get("/api/bays/bay1/alarm-limits")))["overrides"] == put["overrides"]
                await _ok(await ha.put("/api/bays/bay1/alarm-limits", json={"overrides": []}))
                await screen.wait(
                    "HR HIGH over once the profile's limit is back",
                    lambda m: m["type"] == "alarms" and not hr_high(m) and m["seq"] > raised["seq"],
                )

            # charting through both instances at once: each decided on the latest state, none lost
            async def chart(http: httpx.AsyncClient, k: int) -> None:
                await _ok(await http.post(f"/api/sessions/{sid}/chart", json={"item": {"type": "pain", "nrs": k % 11}}))

            await asyncio.gather(*(chart(ha if k % 2 else hb, k) for k in range(16)))
            events_a = await _ok(await ha.get(f"/api/sessions/{sid}/events"))
            events_b = await _ok(await hb.get(f"/api/sessions/{sid}/events"))
            assert events_a == events_b, "both instances tell the same story"
            seqs = [e["seq"] for e in events_a]
            assert seqs == list(range(len(seqs))), f"one event per number, none missing: {seqs}"
            assert sum(1 for e in events_a if e["kind"] == "chart") == 16

            station = await _ok(await hb.get("/api/station/sessions"))
            assert [(s["bay"], s["session_id"], s["phase"]) for s in station] == [("bay1", sid, "baseline")]


@pytest.mark.timeout(120)
async def test_two_instances_never_open_two_sessions_in_one_bay(
    tmp_path: Path, cluster: str, postgres_schema: PgSchema
) -> None:
    with _instances(tmp_path, cluster, postgres_schema, _sim("uneventful", 1.0)) as (a, b):
        async with httpx.AsyncClient(base_url=a.url) as ha, httpx.AsyncClient(base_url=b.url) as hb:
            pids = []
            for k, http in enumerate((ha, hb)):
                patient = {**PATIENT, "identifier": f"MRN-71{k:02d}", "name": f"Patient {k}"}
                pids.append((await _ok(await http.post("/api/patients", json=patient), 201))["id"])
            for _ in range(3):  # a few rounds: the race is decided by the lock, not by luck
                answers = await asyncio.gather(
                    ha.post("/api/sessions", json={"patient_id": pids[0], "bay": "bay2", "plan": PLAN}),
                    hb.post("/api/sessions", json={"patient_id": pids[1], "bay": "bay2", "plan": PLAN}),
                )
                codes = sorted(r.status_code for r in answers)
                assert codes == [201, 409], [r.text for r in answers]
                loser = next(r for r in answers if r.status_code == 409)
                assert loser.json()["detail"]["code"] == "bay_busy"
                winner = next(r for r in answers if r.status_code == 201).json()["session"]["id"]
                for http in (ha, hb):
                    assert (await _ok(await http.get("/api/bays/bay2/session")))["id"] == winner
                reason = {"to": "aborted", "reason": "test round over"}
                await _ok(
                    await (hb if answers[0].status_code == 201 else ha).post(
                        f"/api/sessions/{winner}/transition", json=reason
                    )
                )
                for http in (ha, hb):
                    assert (await http.get("/api/bays/bay2/session")).status_code == 404


async def test_the_session_feed_and_lock_against_real_redis(cluster: str) -> None:
    """The pieces under the two tests above: announcements reach the other instance only, a trimmed feed asks
    for a full re-read, the per-bay lock excludes the other instance, and an unreachable Redis refuses
    commands (503) while views fall back to the store."""
    from app.scale.redis_hub import connect
    from app.scale.session_sync import RedisSessionSync
    from app.sessions.model import Refused
    from tests.test_scaleout import REDIS_URL

    ra, rb = connect(REDIS_URL), connect(REDIS_URL)
    a = RedisSessionSync(ra, cluster=cluster, instance_id="a")
    b = RedisSessionSync(rb, cluster=cluster, instance_id="b", wait_s=0.3)
    try:
        assert (await a.changes()).complete and (await b.changes()).complete  # first look: from now on
        await b.changed(session_id="s1")
        await b.changed(patient=True)
        await a.changed(session_id="s2")
        got = await a.changes()
        assert got.complete and got.sessions == {"s1"} and got.patients, "b's changes, not a's own"
        assert (await a.changes()).sessions == frozenset()
        got_b = await b.changes()
        assert got_b.sessions == {"s2"} and not got_b.patients

        await b.changed(session_id="s3")
        await ra.xtrim(f"vigil:{{{cluster}}}:session-changes", maxlen=0)  # entries a never read are gone
        assert not (await a.changes()).complete, "a feed that lost entries asks for a full re-read"
        await b.changed(session_id="s4")
        assert (await a.changes()).sessions == {"s4"}

        async with a.exclusive("bay:bay1", "registry"):
            with pytest.raises(Refused) as busy:
                async with b.exclusive("registry"):
                    pass
            assert busy.value.status == 503 and busy.value.code == "busy"
        async with b.exclusive("registry"):  # released
            pass
    finally:
        await ra.aclose()
        await rb.aclose()

    gone = connect("redis://127.0.0.1:1/0")
    c = RedisSessionSync(gone, cluster=cluster, instance_id="c")
    try:
        assert not (await c.changes()).complete, "views re-read the store while Redis is away"
        with pytest.raises(Refused) as down:
            async with c.exclusive("bay:bay1"):
                pass
        assert down.value.status == 503 and down.value.code == "coordination_unavailable"
        await c.changed(session_id="s5")  # best effort: does not raise
    finally:
        await gone.aclose()


@pytest.mark.timeout(120)
async def test_failed_logins_are_counted_across_instances(
    tmp_path: Path, cluster: str, postgres_schema: PgSchema
) -> None:
    """Guesses spread over the instances are counted together (from the shared audit trail): five wrong
    passwords, alternating between A and B, and the next attempt is refused on both."""
    procs: list[VigilProcess] = []
    try:
        for name, first in (("a", "true"), ("b", "false")):  # one first-start admin for the clinic
            env = {**_env(name, cluster, postgres_schema, []), "VIGIL_AUTH": "required", "VIGIL_BOOTSTRAP_ADMIN": first}
            procs.append(start(["serve"], tmp_path, env=env))
        a, b = procs
        async with httpx.AsyncClient(base_url=a.url) as ha, httpx.AsyncClient(base_url=b.url) as hb:
            guess = {"username": "admin", "password": "not the password"}
            for k in range(5):
                r = await (ha if k % 2 else hb).post("/api/login", json=guess)
                assert r.status_code == 401, r.text
            for http in (ha, hb):
                limited = await http.post("/api/login", json=guess)
                assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    finally:
        _stop_all(procs)
