"""Two real Vigil instances (subprocesses, port 0) sharing one PostgreSQL schema and one Redis cluster name.

Skips, saying why, when Redis (VIGIL_TEST_REDIS_URL, default redis://127.0.0.1:6379/0) or PostgreSQL
(VIGIL_TEST_POSTGRES_DSN) does not answer. Each test has its own schema and its own cluster name (keys in
Redis), removed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import websockets

from app.scale.redis_hub import redis_problem
from tests.conftest import VIGIL, VigilProcess, start
from tests.store_backends import PgSchema

REDIS_URL = os.environ.get("VIGIL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def cluster() -> Iterator[str]:
    """A cluster name of this test's own (its keys are deleted afterwards); skips without Redis."""
    problem = redis_problem(REDIS_URL, timeout_s=2)
    if problem is not None:
        pytest.skip(f"{problem}; set VIGIL_TEST_REDIS_URL")
    name = f"t{secrets.token_hex(5)}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"vigil:{{{name}}}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _env(instance: str, cluster: str, schema: PgSchema, monitors: list[dict[str, Any]]) -> dict[str, str]:
    return {
        "VIGIL_PORT": "0",
        "VIGIL_HUB": "redis",
        "VIGIL_REDIS_URL": REDIS_URL,
        "VIGIL_CLUSTER": cluster,
        "VIGIL_INSTANCE_ID": instance,
        "VIGIL_STORE": "postgres",
        "VIGIL_POSTGRES_DSN": schema.dsn,
        "VIGIL_POSTGRES_SCHEMA": schema.name,
        "VIGIL_BAYS": json.dumps([{"id": "bay1", "label": "Bay 1"}, {"id": "bay2", "label": "Bay 2"}]),
        "VIGIL_MONITORS": json.dumps(monitors),
    }


def _sim(scenario: str, offset_min: float) -> dict[str, Any]:
    return {
        "kind": "simulated",
        "name": "sim1",
        "device_id": "dev1",
        "bay": "bay1",
        "seed": 1,
        "scenario": scenario,
        "offset_min": offset_min,
        "nibp_first_s": 0.5,
    }


@contextlib.contextmanager
def _instances(tmp_path: Path, cluster: str, schema: PgSchema, sim: dict[str, Any]) -> Iterator[list[VigilProcess]]:
    """Instance "a" with the simulated monitor of bay1, then instance "b" with no monitor."""
    procs: list[VigilProcess] = []
    try:
        procs.append(start(["serve"], tmp_path, env=_env("a", cluster, schema, [sim])))
        procs.append(start(["serve"], tmp_path, env=_env("b", cluster, schema, [])))
        yield procs
    finally:
        _stop_all(procs)


def _stop_all(procs: list[VigilProcess]) -> None:
    """Ctrl-C every instance still running, then wait (kill one that does not stop)."""
    for vp in procs:
        if vp.proc.poll() is None:
            vp.proc.send_signal(signal.SIGINT)
    for vp in procs:
        try:
            vp.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            vp.proc.kill()
            vp.proc.wait()


class Screen:
    """A websocket client that records every message it gets."""

    def __init__(self, url: str) -> None:
        self.url = url.replace("http://", "ws://") + "ws"
        self.messages: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def open(self, resume: dict[str, Any] | None = None) -> AsyncIterator[Screen]:
        async with websockets.connect(self.url, compression=None) as ws:
            await ws.send(json.dumps({"type": "subscribe", "bays": ["bay1"], "waves": "none", "resume": resume}))

            async def pump() -> None:
                async for raw in ws:
                    self.messages.append(json.loads(raw))

            self._task = asyncio.create_task(pump())
            try:
                yield self
            finally:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                    await self._task

    async def wait(self, what: str, pred: Callable[[dict[str, Any]], bool], timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for m in self.messages[seen:]:
                if pred(m):
                    return m
            seen = len(self.messages)
            await asyncio.sleep(0.05)
        raise AssertionError(f"{what}: not seen in {timeout} s; last messages: {self.messages[-5:]}")

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [m for m in self.messages if m["type"] == kind]


def _delta_seqs(msgs: list[dict[str, Any]]) -> list[int]:
    return [m["seq"] for m in msgs if m["type"] in ("vitals", "status", "device_alarm", "alarms")]


async def test_cross_instance_delivery_and_resume_on_the_other_instance(
    tmp_path: Path, cluster: str, postgres_schema: PgSchema
) -> None:
    with _instances(tmp_path, cluster, postgres_schema, _sim("uneventful", 10.0)) as (a, b):
        ref = Screen(b.url)  # stays connected to B throughout: the reference stream
        async with ref.open():
            hello_b = await ref.wait("hello from B", lambda m: m["type"] == "hello")
            await ref.wait("A's numerics on B", lambda m: m["type"] == "vitals" and m["device_id"] == "dev1")
            snap = await ref.wait("snapshot on B", lambda m: m["type"] == "snapshot")
            devices = {d["device_id"]: d["state"] for d in snap["bays"][0]["devices"]}
            assert devices.get("dev1") == "online", f"B's live state has A's device (joined from Redis): {devices}"
            moving = Screen(b.url)
            async with moving.open():
                await moving.wait("vitals", lambda m: m["type"] == "vitals")
                await asyncio.sleep(1.5)
            last = max(_delta_seqs(moving.messages))
            await asyncio.sleep(2.5)  # A and B go on publishing while the client is away
            resumed = Screen(a.url)  # ... and it comes back on the OTHER instance
            async with resumed.open(resume={"epoch": hello_b["epoch"], "seq": last}):
                hello_a = await resumed.wait("hello from A", lambda m: m["type"] == "hello")
                await resumed.wait("vitals after resume", lambda m: m["type"] == "vitals" and m["seq"] > last + 30)
            up_to = max(_delta_seqs(resumed.messages))
            await ref.wait("reference caught up", lambda m: m["seq"] >= up_to and m["type"] != "heartbeat")
        assert hello_a["epoch"] == hello_b["epoch"], "one clinic-wide epoch"
        assert hello_a["resumed"] is True and hello_a["seq"] == last
        assert not resumed.of("snapshot"), "resumed from the ring, not a fresh snapshot"
        got = _delta_seqs(resumed.messages)
        expected = [s for s in _delta_seqs(ref.messages) if last < s <= up_to]
        assert got == sorted(set(got)) and got[0] > last, "in order, no duplicate, nothing from before"
        # Numerics queued together are conflated to the latest (as on one instance); everything else is exact.
        assert set(got) <= set(expected) and got[-1] == expected[-1]
        by_seq = {m["seq"]: m for m in ref.messages if m["type"] != "heartbeat"}
        reliable = [m["seq"] for m in resumed.messages if m["type"] in ("status", "device_alarm", "alarms")]
        assert reliable == [q for q in expected if by_seq[q]["type"] in ("status", "device_alarm", "alarms")]
        for m in resumed.messages:
            if m["type"] not in ("hello", "heartbeat"):
                assert m == by_seq[m["seq"]], "the same message under the same seq on both instances"
        # The snapshot on either instance is the same live state (same seq, same values).
        async with Screen(a.url).open() as sa, Screen(b.url).open() as sb:
            snap_a = await sa.wait("snapshot A", lambda m: m["type"] == "snapshot")
            snap_b = await sb.wait("snapshot B", lambda m: m["type"] == "snapshot")
        assert {v["param"] for v in snap_a["bays"][0]["vitals"]} == {v["param"] for v in snap_b["bays"][0]["vitals"]}


def _active(msg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {a["rule_id"]: a for a in msg["active"]}


async def test_killing_the_alarm_owner_hands_its_bays_over_without_losing_an_alarm(
    tmp_path: Path, cluster: str, postgres_schema: PgSchema
) -> None:
    # The SpO2 probe comes off 3 s into the run (scenario minute 20) and stays off for a minute: a technical
    # alarm after its 10 s delay, raised by A (which ingests the monitor, so it owns bay1).
    with _instances(tmp_path, cluster, postgres_schema, _sim("sensor_off", 19.95)) as (a, b):
        screen = Screen(b.url)
        async with screen.open(), httpx.AsyncClient(base_url=b.url, timeout=10) as http:
            await screen.wait(
                "probe-off alarm raised on A, seen on B",
                lambda m: m["type"] == "alarms" and any(a["category"] == "technical" for a in m["active"]),
                timeout=45,
            )
            raised = next(m for m in screen.of("alarms") if m["active"])
            rule = raised["active"][0]["rule_id"]
            assert "instance a now evaluates bay bay1" in a.stderr()
            # Acknowledged through B while A owns the bay: the command reaches A, A's alarms message says so.
            r = await http.post("/api/bays/bay1/alarms/acknowledge", json={"rule_id": rule})
            assert r.status_code == 200
            await screen.wait(
                "acknowledgement made on B, applied by A",
                lambda m: m["type"] == "alarms" and _active(m).get(rule, {}).get("acknowledged_by") == "local",
            )
            a.proc.send_signal(signal.SIGKILL)
            killed = time.monotonic()
            a.proc.wait(timeout=10)
            while "instance b now evaluates bay bay1" not in b.stderr():
                assert time.monotonic() - killed < 10, f"no takeover within 10 s:\n{b.stderr()[-3000:]}"
                await asyncio.sleep(0.1)
            took = time.monotonic() - killed
            r = await http.get("/api/bays/bay1/alarms")
            active = {x["rule_id"]: x for x in r.json()["active"]}
            assert rule in active, f"the alarm active before the kill is still active on B: {active}"
            assert active[rule]["acknowledged_by"] == "local", "and still acknowledged"
            # The device's ingest instance died: B sees the silence and raises NO DATA itself.
            no_data = await screen.wait(
                "NO DATA raised by B",
                lambda m: (
                    m["type"] == "alarms"
                    and any(e["kind"] == "raised" and e["rule_id"] == "no_data" for e in m["events"])
                ),
                timeout=30,
            )
            assert rule in _active(no_data)
            r = await http.post("/api/bays/bay1/alarms/acknowledge", json={"rule_id": "no_data"})
            assert r.status_code == 200
            assert any(e["kind"] == "acknowledged" for e in r.json()), "B owns the bay now: evaluated locally"
        raises = [e for m in screen.of("alarms") for e in m["events"] if e["kind"] == "raised" and e["rule_id"] == rule]
        assert len(raises) == 1, f"raised once, not again by the successor: {raises}"
        print(f"takeover {took:.1f} s after SIGKILL")


def test_unreachable_redis_at_start_is_a_configuration_error(tmp_path: Path) -> None:
    env = {**os.environ, "VIGIL_PORT": "0", "VIGIL_HUB": "redis", "VIGIL_REDIS_URL": "redis://127.0.0.1:1/0"}
    res = subprocess.run([*VIGIL, "serve"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)
    assert res.returncode == 2
    assert "Redis at redis://127.0.0.1:1/0 is not reachable" in res.stderr and "Traceback" not in res.stderr


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _redis_server(port: int, tmp_path: Path) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while redis_problem(f"redis://127.0.0.1:{port}/0", timeout_s=0.5) is not None:
        assert time.monotonic() < deadline, "private redis-server did not start"
        time.sleep(0.1)
    return proc


async def test_redis_lost_at_run_time_local_screens_go_on_and_everything_rejoins(
    tmp_path: Path, postgres_schema: PgSchema
) -> None:
    import shutil

    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed here (this test stops and restarts a private one)")
    port = _free_port()
    url = f"redis://127.0.0.1:{port}/0"
    server = _redis_server(port, tmp_path)
    procs: list[VigilProcess] = []
    try:
        extra = {"VIGIL_REDIS_URL": url, "VIGIL_BACKOFF_MAX_S": "1.0"}
        procs.append(
            start(["serve"], tmp_path, env={**_env("a", "o", postgres_schema, [_sim("uneventful", 10)]), **extra})
        )
        procs.append(start(["serve"], tmp_path, env={**_env("b", "o", postgres_schema, []), **extra}))
        a, b = procs
        async with Screen(a.url).open() as sa, Screen(b.url).open() as sb:
            first = await sa.wait("hello", lambda m: m["type"] == "hello")
            await sb.wait("A's numerics on B", lambda m: m["type"] == "vitals")
            server.kill()
            server.wait()
            local = await sa.wait("local continuation", lambda m: m["type"] == "hello" and ".local" in m["epoch"])
            n = len(sa.messages)
            await sa.wait(
                "A's own numerics go on reaching A's screen",
                lambda m: m["type"] == "vitals" and sa.messages.index(m) >= n,
            )
            await sb.wait("B's screen told too", lambda m: m["type"] == "hello" and ".local" in m["epoch"])
            server = _redis_server(port, tmp_path)  # back, empty: a new epoch
            back = await sa.wait(
                "A back on the stream",
                lambda m: m["type"] == "hello" and ".local" not in m["epoch"] and m["epoch"] != first["epoch"],
                timeout=30,
            )
            back_b = await sb.wait(
                "B back on the stream", lambda m: m["type"] == "hello" and m["epoch"] == back["epoch"], timeout=30
            )
            nb = sb.messages.index(back_b)
            await sb.wait("A's numerics on B again", lambda m: m["type"] == "vitals" and sb.messages.index(m) > nb)
        assert local["epoch"].startswith(first["epoch"])
        log_a = a.stderr()
        assert log_a.count("Redis unreachable") == 1, "logged once"
        assert "Redis reachable again" in log_a
        assert b.stderr().count("Redis unreachable") == 1
        # Redis came back empty (leases gone): A, which ingests bay1, takes it again, not B.
        assert "instance b now evaluates bay bay1" not in b.stderr()
    finally:
        _stop_all(procs)
        server.kill()
        server.wait()


async def test_a_bay_goes_back_to_the_instance_that_ingests_its_monitor(
    tmp_path: Path, cluster: str, postgres_schema: PgSchema
) -> None:
    procs: list[VigilProcess] = []
    try:
        procs.append(start(["serve"], tmp_path, env=_env("b", cluster, postgres_schema, [])))
        b = procs[0]
        deadline = time.monotonic() + 20
        while "instance b now evaluates bay bay1" not in b.stderr():  # nobody ingests bay1 yet: b takes it
            assert time.monotonic() < deadline, b.stderr()[-2000:]
            await asyncio.sleep(0.2)
        procs.append(start(["serve"], tmp_path, env=_env("a", cluster, postgres_schema, [_sim("uneventful", 10)])))
        a = procs[1]
        deadline = time.monotonic() + 15
        while "instance a now evaluates bay bay1 (from state saved by b" not in a.stderr():
            assert time.monotonic() < deadline, a.stderr()[-2000:]
            await asyncio.sleep(0.2)
        assert "handing bay bay1 over to a" in b.stderr()
        assert "instance a now evaluates bay bay2" not in a.stderr(), "only the bay whose monitor is on a"
    finally:
        _stop_all(procs)
