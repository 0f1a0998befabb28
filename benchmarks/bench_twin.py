"""Two instances against one: what the scale-out stack (issue 12: Redis hub, PostgreSQL store) carries.

The same cell (N beds × M viewers, the load benchmark's viewer mix and on-demand NO DATA alarms, see
benchmarks/bench_load.py) is measured three ways, each with its own server processes:

- ``single``: one instance as a clinic runs it by default (SQLite, in-process hub);
- ``single-redis``: one instance on the scale-out stack (PostgreSQL, Redis stream): the cost of the transport;
- ``twin``: two instances on that stack; each ingests half the monitors and serves half the viewers (viewer
  processes alternate between them), every viewer subscribed across both halves' bays as in the mix.

Figures are the load benchmark's (delivery and alarm latency from the viewers, reliable-message loss checked
against the clinic-wide published counts); server CPU and RSS are summed over the instances, Redis's CPU is
reported beside them. Needs Redis (VIGIL_BENCH_REDIS_URL, default redis://127.0.0.1:6379/0) and PostgreSQL
(VIGIL_BENCH_POSTGRES_DSN, default postgresql://postgres@127.0.0.1:5432/test); a fresh schema and cluster name
per run, removed afterwards.

``vigil bench twin [--beds N] [--viewers M] [--seconds S]`` (or ``python -m benchmarks.bench_twin``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import redis

from benchmarks import bench_load
from benchmarks.bench_load import AlarmDriver, Proc, Server, _cell, monitors, viewer_specs
from benchmarks.common import machine

REDIS_URL = os.environ.get("VIGIL_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_DSN = os.environ.get("VIGIL_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass
class _Cpu:
    user: float
    system: float


def _config(
    tmp: Path,
    name: str,
    mons_all: list[dict[str, Any]],
    own: list[dict[str, Any]],
    stack: str,
    cluster: str,
    schema: str,
) -> Path:
    cfg = [f'port = 0\ndb_path = "{tmp / f"{name}.sqlite3"}"\nlog_level = "warning"\n']
    if stack == "redis":
        cfg.append(
            f'store = "postgres"\npostgres_dsn = "{POSTGRES_DSN}"\npostgres_schema = "{schema}"\n'
            f'hub = "redis"\nredis_url = "{REDIS_URL}"\ncluster = "{cluster}"\ninstance_id = "{name}"\n'
        )
    for m in mons_all:
        cfg.append(f'[[bays]]\nid = "{m["bay"]}"\nlabel = "Bay {m["bay"][3:]}"\n')
    for m in own:
        cfg.append(
            f'[[monitors]]\nkind = "simulated"\nname = "{m["name"]}"\ndevice_id = "{m["device_id"]}"\n'
            f'bay = "{m["bay"]}"\nseed = {m["seed"]}\nscenario = "{m["scenario"]}"\n'
            f"offset_min = {m['offset_min']}\nnibp_first_s = {m['nibp_first_s']}\n"
        )
    path = tmp / f"{name}.toml"
    path.write_text("".join(cfg))
    return path


def _start(tmp: Path, config: Path) -> Server:
    return bench_load.serve_config(tmp, config)


@contextlib.contextmanager
def _schema() -> Iterator[str]:
    name = f"bench_{secrets.token_hex(5)}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_DSN, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run(f"CREATE SCHEMA {name}"))
    try:
        yield name
    finally:
        asyncio.run(run(f"DROP SCHEMA IF EXISTS {name} CASCADE"))


def _drop_cluster(cluster: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"vigil:{{{cluster}}}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def _redis_pid() -> int | None:
    with contextlib.suppress(Exception):
        client = redis.Redis.from_url(REDIS_URL)
        try:
            pid = int(client.info("server")["process_id"])
        finally:
            client.close()
        return pid if psutil.pid_exists(pid) else None
    return None


def _merge(stats: list[dict[str, Any]]) -> dict[str, Any]:
    """One view of several instances' /api/stats: the clinic-wide stream figures from the first, client
    counters summed."""
    out = dict(stats[0])
    for key in ("sent", "waves_dropped", "vitals_conflated", "resyncs", "clients"):
        out[key] = sum(s[key] for s in stats)
    return out


def measure(
    servers: list[Server],
    n: int,
    m: int,
    mons: list[dict[str, Any]],
    *,
    seconds: float,
    warmup_s: float,
    tmp: Path,
    label: str,
) -> dict[str, Any]:
    """The load benchmark's cell over one or more instances (viewer processes spread over them)."""
    specs = viewer_specs(n, m)
    k = max(len(servers), bench_load.viewer_processes(m))
    procs: list[Proc] = []
    for i in range(k):
        path = tmp / f"viewers-{label}-{i}.json"
        path.write_text(json.dumps(specs[i::k]))
        url = servers[i % len(servers)].ws_url
        args = ["--url", url, "--spec", str(path), "--out", str(tmp / "samples")]
        procs.append(Proc([sys.executable, "-m", "benchmarks.load_viewers", *args]))
    home = {mon["device_id"]: servers[j % len(servers)] for j, mon in enumerate(mons)}
    redis_pid = _redis_pid() if label != "single" else None
    try:
        ready = sum(int(p.wait_line("READY", 90).split()[1]) for p in procs)
        with AlarmDriver(
            mons,
            lambda dev, on: home[dev].fault(dev, on),
            lambda bay: servers[-1].acknowledge(bay),  # twin: acknowledged on the other instance for half the bays
        ) as driver:
            time.sleep(warmup_s)
            sps = [psutil.Process(s.proc.pid) for s in servers]
            rps = psutil.Process(redis_pid) if redis_pid else None
            vps = [psutil.Process(p.proc.pid) for p in procs]
            s0 = _merge([s.stats() for s in servers])
            cpu0 = [sp.cpu_times() for sp in sps]
            r0 = sum(rps.cpu_times()[:2]) if rps else 0.0
            vcpu0 = [sum(v.cpu_times()[:2]) for v in vps]
            for p in procs:
                p.send("start")
            t0 = time.monotonic()
            rss_max = 0
            while (elapsed := time.monotonic() - t0) < seconds:
                rss_max = max(rss_max, sum(sp.memory_info().rss for sp in sps))
                time.sleep(min(0.5, max(0.0, seconds - elapsed)))
            stats1 = [s.stats() for s in servers]
            s1 = _merge(stats1)
            cpu1 = [sp.cpu_times() for sp in sps]
            r1 = sum(rps.cpu_times()[:2]) if rps else 0.0
            vcpu1 = [sum(v.cpu_times()[:2]) for v in vps]
            wall = time.monotonic() - t0
            for p in procs:
                p.send(f"stop {max(s['seq'] for s in stats1)}")
            results = [p.result() for p in procs]
        silenced = driver.silenced
    finally:
        for p in procs:
            p.kill()
    row = _cell(
        servers[0],
        n,
        m,
        specs,
        results,
        s0,
        s1,
        _Cpu(sum(c.user for c in cpu1), sum(c.system for c in cpu1)),
        _Cpu(sum(c.user for c in cpu0), sum(c.system for c in cpu0)),
        vcpu1,
        vcpu0,
        wall,
        ready,
        rss_max,
        [],
    )
    row["server"] = label
    row["instances"] = len(servers)
    row["redis_cpu_pct"] = round((r1 - r0) / wall * 100, 1) if rps else None
    row["devices_silenced"] = silenced
    row["per_instance_sent_per_s"] = [round(s["sent"] / max(wall, 1e-9)) for s in stats1]
    return row


CONFIGURATIONS = ("single", "single-redis", "twin")


def run(
    beds: int, viewers: int, seconds: float, warmup_s: float, only: tuple[str, ...] = CONFIGURATIONS
) -> list[dict[str, Any]]:
    """The configurations in turn, each settled first."""
    mons = monitors(beds)
    rows = []
    for label in only:
        cluster = f"bench{secrets.token_hex(4)}"
        with tempfile.TemporaryDirectory() as d, _schema() as schema:
            tmp = Path(d)
            count = 2 if label == "twin" else 1
            stack = "sqlite" if label == "single" else "redis"
            servers: list[Server] = []
            try:
                for i in range(count):
                    own = mons[i::count]
                    name = f"{label}-{i}"
                    servers.append(_start(tmp, _config(tmp, name, mons, own, stack, cluster, schema)))
                settled = max(s.settle(len(mons[i::count])) for i, s in enumerate(servers))
                try:
                    row = measure(
                        servers, beds, viewers, mons, seconds=seconds, warmup_s=warmup_s, tmp=tmp, label=label
                    )
                except (RuntimeError, httpx.HTTPError) as e:
                    row = {"server": label, "beds": beds, "viewers": viewers, "error": f"{type(e).__name__}: {e}"}
                row["startup_settle_s"] = settled
                row["server_warnings"] = [
                    line.strip()[:300] for s in servers for line in s.log if " WARNING " in line or " ERROR " in line
                ][-20:]
                rows.append(row)
                print(bench_load.table([row]).splitlines()[-1], flush=True)
            finally:
                for s in servers:
                    s.stop()
                if stack == "redis":
                    _drop_cluster(cluster)
    return rows


def main(argv: list[str] | None = None) -> int:
    """``vigil bench twin``."""
    ap = argparse.ArgumentParser(prog="vigil bench twin", description=__doc__.splitlines()[0] if __doc__ else "")
    ap.add_argument("--beds", type=int, default=20)
    ap.add_argument("--viewers", type=int, default=60)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--out", default="bench_twin.json")
    ap.add_argument("--only", choices=CONFIGURATIONS, action="append", help="run only these (repeatable)")
    args = ap.parse_args(argv)
    from app.scale import redis_problem

    problem = redis_problem(REDIS_URL)
    if problem is not None:
        print(f"bench twin: {problem}", file=sys.stderr)
        return 2
    started = time.monotonic()
    print(bench_load.table([]).splitlines()[0], flush=True)
    rows = run(args.beds, args.viewers, args.seconds, args.warmup, tuple(args.only or CONFIGURATIONS))
    print()
    print(bench_load.table(rows))
    print()
    for r in rows:
        if "error" not in r:
            print(
                f"{r['server']:<14} instances {r['instances']}  server cpu {r['server_cpu_pct']}%  "
                f"redis cpu {r['redis_cpu_pct']}%  cpu/frame {r['server_cpu_us_per_frame']} us  "
                f"sent/s per instance {r['per_instance_sent_per_s']}  load {r['load_average_1m']}"
            )
    payload = {
        "benchmark": "twin",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "method": {
            "beds": args.beds,
            "viewers": args.viewers,
            "seconds": args.seconds,
            "warmup_s": args.warmup,
            "configurations": "single: SQLite + in-process hub; single-redis: PostgreSQL + Redis hub, one "
            "instance; twin: two instances on PostgreSQL + Redis, monitors and viewer processes split between them",
            "caveat": "every process (instances, Redis, PostgreSQL, viewers) shares this machine's cores: the "
            "twin row measures the transport's cost and correctness here, not the capacity of two machines",
            "total_s": round(time.monotonic() - started),
        },
        "rows": rows,
    }
    path = bench_load.save(args.out, payload)
    print(f"saved {path}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
