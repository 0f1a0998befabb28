"""Load and latency: how many beds and viewers one Vigil process carries, beside a bare broadcast peer.

Everything runs as separate processes on this machine (their CPU counts against the same cores):

- the server: ``vigil serve`` with N simulated monitors fed through the real ingest path (in-process
  simulated adapters from Settings; or, for ``mllp``, N HL7 gateway connections from sender processes);
- viewer processes (``benchmarks.load_viewers``): M websocket screens in the realistic mix, two thirds
  bedside (one bay, full-rate waves) and one third station (16 bays, decimated ≤ 25 Hz waves), timestamping
  every message (delivery latency = device time → receipt; alarm latency = the engine's raise time, i.e. the
  moment the rule's delay expired → receipt);
- the peers: ``benchmarks.peers.ws_bare`` (the same monitors, the same JSON frames and subscription mix,
  broadcast by a bare ``websockets`` server) and, for ingest, ``benchmarks.peers.hl7_bare``.

Alarms on demand: devices are silenced in turn all through the run (the training fault injection); each
silenced device goes stale after 3 s and the NO DATA rule (CLINICAL.md Table 1 row T6) raises its alarm 10 s
later. Status, device-alarm and alarm messages are checked per viewer against what the server published
(``GET /api/stats``): loss must be 0. Vigil's viewers subscribe with ``batch`` (several messages per frame,
as the browser client does); "frames/s" counts messages either way (``ws_frames_per_s``: websocket frames).

Scenarios (``vigil bench SCENARIO`` or ``python -m benchmarks.bench_load SCENARIO``):

- ``quick``: the goal cell (100 beds × 300 viewers), Vigil and the bare peer, 15 s each after warm-up;
- ``matrix``: N = 10, 50, 100, 200 × M = 10, 100, 300 for Vigil and the peer (one server per N, the three
  viewer counts in turn; 8 s per cell after a 2-s warm-up, < 10 min in all): table, ``bench_load.json``,
  ``bench_load.html``;
- ``slow``: one viewer (16 bays, full-rate) stops reading for 60 s: the others' p99 against an equally long
  run without it, the server's RSS, whether it stays connected (the keepalive timeout is longer than the
  pause) and is resynced by the hub (a "resync" snapshot on the same connection) when it resumes
  (``bench_slow.json``);
- ``mllp``: N beds over HL7 MLLP from sender processes with M viewers, and the same senders against the bare
  python-hl7 peer (``bench_mllp.json``);
- ``cell``: one (``--beds``, ``--viewers``) cell. Options: ``--only vigil|peer``, ``--no-batch`` (one message
  per frame), ``--serve-option=--loop --serve-option=asyncio`` (passed to ``vigil serve``), ``--profile FILE``
  (the Vigil server under pyinstrument, text report).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psutil

from benchmarks.common import machine
from benchmarks.mllp_load import percentile

RESULTS = Path(__file__).resolve().parent / "results"
REPO = RESULTS.parent.parent
SCENARIO = "uneventful"  # starts in the baseline phase, where the NO DATA rule (T6) applies
SILENCE_S = 15.0  # a silenced device is stale after 3 s and raises NO DATA 10 s later
STATION_BAYS = 16
NS = (10, 50, 100, 200)
MS = (10, 100, 300)
#: The slow-viewer test (issue item 4): one viewer stops reading this long, this far into its window.
SLOW_PAUSE_S = 60.0
SLOW_PAUSE_AFTER_S = 5.0
#: Server RSS may grow at most this much over the late part of the pause (one client's queue is bounded).
RSS_GROWTH_BOUND_MB = 32.0
#: Viewers subscribe with ``batch`` (several messages per websocket frame); ``--no-batch``: one per frame.
BATCH = True
#: ``--profile FILE``: run the Vigil server under pyinstrument, text report to FILE.
PROFILE: Path | None = None
#: ``--serve-option``: extra ``vigil serve`` arguments (e.g. ``--loop asyncio`` to compare event loops).
SERVE_OPTIONS: list[str] = []
GOALS = {"p99_delivery_ms": 250.0, "alarm_p99_ms": 100.0, "alarms_lost": 0, "frames_ratio_to_peer": 0.5}


# ---- what runs ------------------------------------------------------------------------------------


def monitors(n: int) -> list[dict[str, Any]]:
    """N simulated monitors (different patients, an uneventful infusion from its start)."""
    return [
        {
            "name": f"sim{i}",
            "device_id": f"bench-{i:04d}",
            "bay": f"bay{i}",
            "seed": i,
            "scenario": SCENARIO,
            "offset_min": 0.0,
            "nibp_first_s": 3.0 + (i % 5),
            "location": f"BENCH^BAY{i}^1",
        }
        for i in range(1, n + 1)
    ]


def viewer_specs(n: int, m: int, slow: bool = False) -> list[dict[str, Any]]:
    """M screens: 2/3 bedside (one bay each, round robin), 1/3 stations (16 consecutive bays each)."""
    bedside = round(m * 2 / 3)
    specs: list[dict[str, Any]] = []
    for j in range(bedside):
        specs.append({"vid": j, "bays": [f"bay{j % n + 1}"], "waves": "full", "group": "bedside"})
    for k in range(m - bedside):
        first = (k * STATION_BAYS) % n
        bays = sorted({f"bay{(first + i) % n + 1}" for i in range(min(STATION_BAYS, n))}, key=lambda b: int(b[3:]))
        specs.append({"vid": bedside + k, "bays": bays, "waves": "decimated", "group": "station"})
    for spec in specs:
        spec["batch"] = BATCH
    if slow:  # the heaviest subscriber (16 bays at full rate), so its stall outgrows ~4 MB of socket buffers
        specs[-1] |= {"group": "slow", "waves": "full", "pause_after_s": SLOW_PAUSE_AFTER_S, "pause_s": SLOW_PAUSE_S}
    return specs


@dataclass
class Server:
    """A server process under test."""

    name: str
    proc: subprocess.Popen[str]
    ws_url: str
    http_url: str
    hl7_port: int | None = None
    log: list[str] = field(default_factory=list)

    def stats(self) -> dict[str, Any]:
        """``GET /api/stats``."""
        r = httpx.get(f"{self.http_url}/api/stats", timeout=60)
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data

    def settle(self, beds: int, timeout: float = 180.0) -> float:
        """Wait until the server answers promptly and (Vigil) every device is online; returns the seconds waited."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            try:
                if self.name == "vigil":
                    devices = httpx.get(f"{self.http_url}/healthz", timeout=5).json()["devices"]
                    ready = sum(state == "online" for state in devices.values()) >= beds
                else:
                    ready = self.stats()["by_type"].get("vitals", 0) >= beds
            except httpx.HTTPError:
                ready = False
            if ready:
                time.sleep(2.0)  # let the start-up backlog drain
                return round(time.monotonic() - t0, 1)
            time.sleep(0.5)
        return round(time.monotonic() - t0, 1)

    def fault(self, device_id: str, on: bool) -> None:
        """Silence a simulated device (training fault injection) or let it speak again."""
        if self.name == "vigil":
            body = {"fault": "silent" if on else "none"}
            httpx.post(f"{self.http_url}/api/devices/{device_id}/simulation", json=body, timeout=10)
        else:
            httpx.get(f"{self.http_url}/fault", params={"device": device_id, "on": int(on)}, timeout=10)

    def acknowledge(self, bay: str) -> None:
        """Acknowledge the bay's alarms (NO DATA latches until acknowledged)."""
        if self.name == "vigil":
            httpx.post(f"{self.http_url}/api/bays/{bay}/alarms/acknowledge", json={"rule_id": "all"}, timeout=10)
        else:
            httpx.get(f"{self.http_url}/ack", params={"bay": bay}, timeout=10)

    def stop(self) -> None:
        """SIGTERM (SIGINT when profiled, so pyinstrument writes its report), then kill."""
        if self.proc.poll() is None:
            if PROFILE is not None and self.name == "vigil":
                self.proc.send_signal(signal.SIGINT)
            else:
                self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _pump(stream: IO[str], sink: list[str]) -> None:
    for line in stream:
        sink.append(line)


def _wait_for(lines: list[str], pattern: str, proc: subprocess.Popen[str], timeout: float) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        while seen < len(lines):
            m = re.search(pattern, lines[seen])
            seen += 1
            if m:
                return m
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"server did not print {pattern!r}: {''.join(lines)[-2000:]}")


def start_vigil(tmp: Path, mons: list[dict[str, Any]], *, mllp: bool = False) -> Server:
    """``vigil serve`` with one bay per monitor: simulated in-process monitors, or one HL7 listener."""
    cfg = [f'port = 0\ndb_path = "{tmp / "bench.sqlite3"}"\nlog_level = "warning"\n']
    for m in mons:
        cfg.append(f'[[bays]]\nid = "{m["bay"]}"\nlabel = "Bay {m["bay"][3:]}"\n')
    if mllp:
        cfg.append('[[monitors]]\nkind = "hl7_mllp"\nname = "hl7"\nport = 0\nmax_connections = 1024\n')
        cfg.append("[locations]\n" + "".join(f'"{m["location"]}" = "{m["bay"]}"\n' for m in mons))
    else:
        for m in mons:
            cfg.append(
                f'[[monitors]]\nkind = "simulated"\nname = "{m["name"]}"\ndevice_id = "{m["device_id"]}"\n'
                f'bay = "{m["bay"]}"\nseed = {m["seed"]}\nscenario = "{m["scenario"]}"\n'
                f"offset_min = {m['offset_min']}\nnibp_first_s = {m['nibp_first_s']}\n"
            )
    path = tmp / "bench.toml"
    path.write_text("".join(cfg))
    return serve_config(tmp, path, mllp=mllp, options=SERVE_OPTIONS, profile=PROFILE)


def serve_config(
    tmp: Path, path: Path, *, mllp: bool = False, options: list[str] | None = None, profile: Path | None = None
) -> Server:
    """``vigil serve --config PATH`` (login off), once it prints its address (and, with ``mllp``, its listener's)."""
    cmd = [sys.executable, "-m", "app", "serve", "--config", str(path), *(options or [])]
    if profile is not None:  # the whole server run, sampled by pyinstrument (stopped with SIGINT to write it)
        cmd = [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(profile), *cmd[1:]]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp,
        env={**os.environ, "VIGIL_AUTH": "off"},  # login off (loopback only): the figures are fan-out, not sign-in
    )
    assert proc.stdout is not None
    lines: list[str] = []
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
    port = int(_wait_for(lines, r"running at http://127\.0\.0\.1:(\d+)/", proc, 60).group(1))
    hl7_port = int(_wait_for(lines, r"HL7 MLLP listener hl7: [\d.]+:(\d+)", proc, 10).group(1)) if mllp else None
    return Server("vigil", proc, f"ws://127.0.0.1:{port}/ws", f"http://127.0.0.1:{port}", hl7_port, lines)


def start_ws_peer(tmp: Path, mons: list[dict[str, Any]]) -> Server:
    """The bare websockets broadcast peer playing the same monitors."""
    spec = tmp / "peer.json"
    spec.write_text(json.dumps({"monitors": mons}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.peers.ws_bare", "--spec", str(spec)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True).start()
    port = int(_wait_for(lines, r"PORT (\d+)", proc, 30).group(1))
    return Server("bare-websockets", proc, f"ws://127.0.0.1:{port}/", f"http://127.0.0.1:{port}", None, lines)


@contextlib.contextmanager
def server(kind: str, tmp: Path, mons: list[dict[str, Any]], *, mllp: bool = False) -> Iterator[Server]:
    """A server for the duration of a block."""
    srv = start_vigil(tmp, mons, mllp=mllp) if kind == "vigil" else start_ws_peer(tmp, mons)
    try:
        yield srv
    finally:
        srv.stop()


class Proc:
    """A helper process driven by stdin commands, its stdout collected."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        assert self.proc.stdout is not None
        self.lines: list[str] = []
        self._t = threading.Thread(target=_pump, args=(self.proc.stdout, self.lines), daemon=True)
        self._t.start()

    def wait_line(self, prefix: str, timeout: float) -> str:
        """The first line starting with ``prefix``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if line.startswith(prefix):
                    return line
            if self.proc.poll() is not None and not self._t.is_alive():
                break
            time.sleep(0.05)
        raise RuntimeError(f"helper process did not print {prefix!r} (exit {self.proc.poll()})")

    def send(self, line: str) -> None:
        """One command."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def result(self, timeout: float = 60) -> dict[str, Any]:
        """The ``RESULT {json}`` line, then the process is reaped."""
        line = self.wait_line("RESULT ", timeout)
        self.proc.wait(10)
        data: dict[str, Any] = json.loads(line[len("RESULT ") :])
        return data

    def kill(self) -> None:
        """Make sure it is gone."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


class AlarmDriver:
    """Raises NO DATA alarms on demand, all through the run: silences devices in turn (the training fault
    injection), lets each speak again after ``SILENCE_S`` (its alarm was raised ~13 s in: stale after 3 s +
    the rule's 10-s delay) and acknowledges the latched alarm, so the bay can be used again."""

    def __init__(
        self,
        mons: list[dict[str, Any]],
        fault: Callable[[str, bool], None],
        acknowledge: Callable[[str], None],
    ) -> None:
        self._queue = deque(mons)
        self._fault = fault
        self._ack = acknowledge
        self.concurrent = max(1, min(8, len(mons) // 5))
        self.interval = SILENCE_S / self.concurrent
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="alarm-driver", daemon=True)
        self.silenced = 0
        self.errors: list[str] = []

    def __enter__(self) -> AlarmDriver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        active: list[tuple[float, dict[str, Any]]] = []
        acks: list[tuple[float, dict[str, Any]]] = []
        next_at = time.monotonic()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_at and len(active) < self.concurrent and self._queue:
                    mon = self._queue.popleft()
                    self._fault(mon["device_id"], True)
                    self.silenced += 1
                    active.append((now, mon))
                    next_at = now + self.interval
                for t_on, mon in [a for a in active if now - a[0] >= SILENCE_S]:
                    self._fault(mon["device_id"], False)
                    active.remove((t_on, mon))
                    acks.append((now + 1.5, mon))
                for due, mon in [a for a in acks if now >= a[0]]:
                    self._ack(mon["bay"])
                    acks.remove((due, mon))
                    self._queue.append(mon)
                self._stop.wait(0.05)
            for _, mon in active:
                self._fault(mon["device_id"], False)
        except Exception as e:  # the server went away: the measurement reports what it saw
            self.errors.append(f"{type(e).__name__}: {e}")


# ---- one measurement ---------------------------------------------------------------------------------


def _summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """Count and p50/p95/p99/max in milliseconds."""
    if not values:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    s = sorted(values)
    return {
        "n": len(s),
        "p50_ms": round(percentile(s, 50) * 1000, 1),
        "p95_ms": round(percentile(s, 95) * 1000, 1),
        "p99_ms": round(percentile(s, 99) * 1000, 1),
        "max_ms": round(s[-1] * 1000, 1),
    }


def _load_samples(path: str) -> array[float]:
    a = array("d")
    with open(path, "rb") as f:
        a.frombytes(f.read())
    os.unlink(path)
    return a


def viewer_processes(m: int) -> int:
    """Viewer processes for M screens (one per 150 connections, at least one)."""
    return max(1, math.ceil(m / 150))


def measure(
    srv: Server,
    n: int,
    m: int,
    *,
    seconds: float,
    warmup_s: float,
    tmp: Path,
    slow: bool = False,
    senders: list[Proc] | None = None,
) -> dict[str, Any]:
    """Connect M viewers, warm up, measure for ``seconds``; every figure of one cell."""
    specs = viewer_specs(n, m, slow=slow)
    k = viewer_processes(m)
    procs: list[Proc] = []
    for i in range(k):
        part = specs[i::k]
        path = tmp / f"viewers-{srv.name}-{n}-{m}-{i}.json"
        path.write_text(json.dumps(part))
        procs.append(
            Proc(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.load_viewers",
                    "--url",
                    srv.ws_url,
                    "--spec",
                    str(path),
                    "--out",
                    str(tmp / "samples"),
                ]
            )
        )
    try:
        ready = sum(int(p.wait_line("READY", 90).split()[1]) for p in procs)
        time.sleep(warmup_s)
        sp = psutil.Process(srv.proc.pid)
        vps = [psutil.Process(p.proc.pid) for p in procs]
        s0 = srv.stats()
        cpu0 = sp.cpu_times()
        vcpu0 = [sum(v.cpu_times()[:2]) for v in vps]
        for p in procs:
            p.send("start")
        for s in senders or []:
            s.send("start")
        t0 = time.monotonic()
        rss_max = 0
        rss: list[tuple[float, int]] = []
        while (elapsed := time.monotonic() - t0) < seconds:
            r = sp.memory_info().rss
            rss_max = max(rss_max, r)
            rss.append((round(elapsed, 1), r))
            time.sleep(min(0.5, max(0.0, seconds - elapsed)))
        s1 = srv.stats()
        cpu1 = sp.cpu_times()
        vcpu1 = [sum(v.cpu_times()[:2]) for v in vps]
        wall = time.monotonic() - t0
        for p in procs:
            p.send(f"stop {s1['seq']}")
        results = [p.result() for p in procs]
    finally:
        for p in procs:
            p.kill()
    return _cell(srv, n, m, specs, results, s0, s1, cpu1, cpu0, vcpu1, vcpu0, wall, ready, rss_max, rss)


def _cell(
    srv: Server,
    n: int,
    m: int,
    specs: list[dict[str, Any]],
    results: list[dict[str, Any]],
    s0: dict[str, Any],
    s1: dict[str, Any],
    cpu1: Any,
    cpu0: Any,
    vcpu1: list[float],
    vcpu0: list[float],
    wall: float,
    ready: int,
    rss_max: int,
    rss: list[tuple[float, int]],
) -> dict[str, Any]:
    samples: dict[str, array[float]] = {}
    for res in results:
        for key, path in res["latency_files"].items():
            samples.setdefault(key, array("d")).extend(_load_samples(path))

    def merged(groups: Sequence[str], kinds: Sequence[str]) -> array[float]:
        out = array("d")
        for g in groups:
            for kd in kinds:
                out.extend(samples.get(f"{g}/{kd}", array("d")))
        return out

    others = ("bedside", "station")
    frames = sum(sum(r["frames"].values()) for r in results)
    frames_others = sum(r["frames"].get(g, 0) for r in results for g in others)
    window = max(1e-9, sum(r["window"][1] - r["window"][0] for r in results) / len(results))
    by_type: dict[str, list[int]] = {}
    for r in results:
        for t, (c, b) in r["by_type"].items():
            acc = by_type.setdefault(t, [0, 0])
            acc[0] += c
            acc[1] += b
    # Reliable messages published inside the window, per bay and type, against what each viewer got.
    lo, hi = s0["seq"], s1["seq"]
    published: dict[tuple[str, str], int] = {}
    for bay, counts in s1["reliable_by_bay"].items():
        before = s0["reliable_by_bay"].get(bay, {})
        for t, c in counts.items():
            if c - before.get(t, 0):
                published[(t, bay)] = c - before.get(t, 0)
    lost = {"alarms": 0, "status": 0, "device_alarm": 0}
    errors = []
    slow_report: dict[str, Any] | None = None
    for r in results:
        for v in r["viewers"]:
            if v["error"] and v["group"] != "slow":
                errors.append(v["error"])
            got: dict[tuple[str, str], int] = {}
            for t, bay, seq in v["reliable"]:
                if lo < seq <= hi:
                    got[(t, bay)] = got.get((t, bay), 0) + 1
            missing = {t: sum(max(0, published.get((t, b), 0) - got.get((t, b), 0)) for b in v["bays"]) for t in lost}
            if v["group"] == "slow":
                slow_report = {
                    "paused_s": None
                    if v["resumed_at"] is None or v["paused_at"] is None
                    else round(v["resumed_at"] - v["paused_at"], 1),
                    "resynced_on_resume": v["resync_after_resume_s"] is not None,
                    "resync_after_resume_s": None
                    if v["resync_after_resume_s"] is None
                    else round(v["resync_after_resume_s"], 3),
                    "stale_messages_after_resume": v["stale_after_resume"],
                    "snapshot_reason": v["resync_reason"],
                    "server_closed_it_while_paused": v["closed_while_paused"],
                    "reconnected_with_resume_point": v["reconnected"],
                    "error": v["error"],
                    "snapshots": v["snapshots"],
                    "reliable_missing_replaced_by_snapshot": missing,
                }
                continue
            for t in lost:
                lost[t] += missing[t]
    alarms_published = sum(c for (t, _), c in published.items() if t == "alarms")
    cpu_s = (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)
    deliver_all = merged(others, ("wave", "vitals"))
    row: dict[str, Any] = {
        "server": srv.name,
        "beds": n,
        "viewers": m,
        "viewers_ready": ready,
        "viewer_processes": len(results),
        "window_s": round(window, 2),
        "frames_per_s": round(frames / window),
        "frames_per_s_excl_slow": round(frames_others / window),
        "ws_frames_per_s": round(sum(r.get("ws_frames", 0) for r in results) / window),
        "server_sent_per_s": round((s1["sent"] - s0["sent"]) / wall),
        "published_per_s": round((s1["published"] - s0["published"]) / wall),
        "delivery": _summary(deliver_all),
        "delivery_waves": _summary(merged(others, ("wave",))),
        "delivery_vitals": _summary(merged(others, ("vitals",))),
        "delivery_bedside": _summary(merged(("bedside",), ("wave", "vitals"))),
        "delivery_station": _summary(merged(("station",), ("wave", "vitals"))),
        "alarm": _summary(merged(others, ("alarm",))),
        "alarms_published": alarms_published,
        "reliable_published": {t: sum(c for (tt, _), c in published.items() if tt == t) for t in lost},
        "reliable_lost": lost,
        "drops": {
            "waves_dropped": s1["waves_dropped"] - s0["waves_dropped"],
            "vitals_conflated": s1["vitals_conflated"] - s0["vitals_conflated"],
            "resyncs": s1["resyncs"] - s0["resyncs"],
        },
        "server_cpu_pct": round(cpu_s / wall * 100, 1),
        "server_cpu_us_per_frame": round(cpu_s / max(1, s1["sent"] - s0["sent"]) * 1e6, 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "server_rss_mb": round(rss_max / 2**20, 1),
        "server_rss_mb_first_last": [round(rss[0][1] / 2**20, 1), round(rss[-1][1] / 2**20, 1)] if rss else None,
        "viewer_cpu_pct": round(sum(b - a for a, b in zip(vcpu0, vcpu1, strict=True)) / wall * 100, 1),
        "mean_bytes": {t: round(b / c) for t, (c, b) in sorted(by_type.items()) if c},
        "viewer_errors": errors[:5],
    }
    if slow_report is not None:
        slow_report["server_rss_mb_timeline"] = [(t, round(r / 2**20, 1)) for t, r in rss]
        slow_report["delivery_slow_viewer"] = _summary(merged(("slow",), ("wave", "vitals")))
        row["slow_viewer"] = slow_report
    return row


# ---- output --------------------------------------------------------------------------------------------


def _fmt(v: Any) -> str:
    return "-" if v is None else str(v)


def table(rows: list[dict[str, Any]]) -> str:
    """The rows as a fixed-width table."""
    head = (
        f"{'server':<16}{'N':>4}{'M':>5}{'frames/s':>10}{'p50':>8}{'p95':>8}{'p99':>8}{'max':>8}"
        f"{'al p50':>8}{'al p99':>8}{'al max':>8}{'alarms':>7}{'lost':>5}{'wdrop':>7}{'confl':>7}{'resync':>7}"
        f"{'srv cpu%':>9}{'rss MB':>8}{'cli cpu%':>9}"
    )
    out = [head, "-" * len(head)]
    for r in rows:
        if "error" in r:
            out.append(f"{r['server']:<16}{r['beds']:>4}{r['viewers']:>5}  failed: {r['error'][:100]}")
            continue
        d, a = r["delivery"], r["alarm"]
        out.append(
            f"{r['server']:<16}{r['beds']:>4}{r['viewers']:>5}{r['frames_per_s']:>10}{_fmt(d['p50_ms']):>8}"
            f"{_fmt(d['p95_ms']):>8}{_fmt(d['p99_ms']):>8}{_fmt(d['max_ms']):>8}{_fmt(a['p50_ms']):>8}"
            f"{_fmt(a['p99_ms']):>8}{_fmt(a['max_ms']):>8}{r['alarms_published']:>7}"
            f"{sum(r['reliable_lost'].values()):>5}{r['drops']['waves_dropped']:>7}"
            f"{r['drops']['vitals_conflated']:>7}{r['drops']['resyncs']:>7}{r['server_cpu_pct']:>9}"
            f"{r['server_rss_mb']:>8}{r['viewer_cpu_pct']:>9}"
        )
    return "\n".join(out)


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Vigil's figures over the bare peer's, per cell."""
    peer = {(r["beds"], r["viewers"]): r for r in rows if r["server"] == "bare-websockets" and "error" not in r}
    out = []
    for r in rows:
        p = peer.get((r["beds"], r["viewers"]))
        if r["server"] != "vigil" or p is None or "error" in r:
            continue

        def ratio(a: float | None, b: float | None) -> float | None:
            return None if a is None or not b else round(a / b, 2)

        out.append(
            {
                "beds": r["beds"],
                "viewers": r["viewers"],
                "frames_per_s": ratio(r["frames_per_s"], p["frames_per_s"]),
                "p50": ratio(r["delivery"]["p50_ms"], p["delivery"]["p50_ms"]),
                "p99": ratio(r["delivery"]["p99_ms"], p["delivery"]["p99_ms"]),
                "alarm_p99": ratio(r["alarm"]["p99_ms"], p["alarm"]["p99_ms"]),
                "server_cpu": ratio(r["server_cpu_pct"], p["server_cpu_pct"]),
                "server_cpu_per_frame": ratio(r["server_cpu_us_per_frame"], p["server_cpu_us_per_frame"]),
                "server_rss": ratio(r["server_rss_mb"], p["server_rss_mb"]),
            }
        )
    return out


def ratio_table(rs: list[dict[str, Any]]) -> str:
    """Vigil / peer ratios as a table."""
    head = f"{'N':>4}{'M':>5}{'frames/s':>10}{'p50':>7}{'p99':>7}{'al p99':>8}{'cpu':>7}{'cpu/frame':>10}{'rss':>7}"
    out = ["Vigil / bare websockets peer", head]
    for r in rs:
        out.append(
            f"{r['beds']:>4}{r['viewers']:>5}{_fmt(r['frames_per_s']):>10}{_fmt(r['p50']):>7}{_fmt(r['p99']):>7}"
            f"{_fmt(r['alarm_p99']):>8}{_fmt(r['server_cpu']):>7}{_fmt(r['server_cpu_per_frame']):>10}"
            f"{_fmt(r['server_rss']):>7}"
        )
    return "\n".join(out)


def goals(rows: list[dict[str, Any]], rs: list[dict[str, Any]]) -> dict[str, Any]:
    """The issue's goals at 100 beds × 300 viewers, met or not."""
    cell = next(
        (r for r in rows if r["server"] == "vigil" and r["beds"] == 100 and r["viewers"] == 300 and "error" not in r),
        None,
    )
    ratio = next((x for x in rs if x["beds"] == 100 and x["viewers"] == 300), None)
    if cell is None:
        return {}
    p99 = cell["delivery"]["p99_ms"]
    al = cell["alarm"]["p99_ms"]
    fr = None if ratio is None else ratio["frames_per_s"]
    return {
        "cell": "100 beds x 300 viewers",
        "p99_delivery_ms": p99,
        "p99_delivery_ok": p99 is not None and p99 <= GOALS["p99_delivery_ms"],
        "alarm_p99_ms": al,
        "alarm_p99_ok": al is not None and al <= GOALS["alarm_p99_ms"],
        "alarms_delivered": cell["alarm"]["n"],
        "alarms_lost": cell["reliable_lost"]["alarms"],
        "alarms_lost_ok": cell["reliable_lost"]["alarms"] == 0 and cell["alarm"]["n"] > 0,
        "frames_ratio_to_peer": fr,
        "frames_ratio_ok": fr is not None and fr >= GOALS["frames_ratio_to_peer"],
    }


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Delivery p99 and frames/s against load, Vigil and the peer (plotly HTML, plotly.js inlined)."""
    import plotly.graph_objects as go  # type: ignore[import-untyped]
    from plotly.subplots import make_subplots  # type: ignore[import-untyped]

    fig = make_subplots(
        rows=1, cols=2, subplot_titles=("p99 delivery latency (ms) vs beds", "delivered frames/s vs beds")
    )
    for srv, dash in (("vigil", "solid"), ("bare-websockets", "dot")):
        for m in MS:
            pts = sorted(
                ((r["beds"], r) for r in rows if r["server"] == srv and r["viewers"] == m and "error" not in r),
                key=lambda x: x[0],
            )
            if not pts:
                continue
            xs = [x for x, _ in pts]
            name = f"{srv} M={m}"
            fig.add_trace(
                go.Scatter(
                    x=xs, y=[r["delivery"]["p99_ms"] for _, r in pts], name=name, line={"dash": dash}, legendgroup=name
                ),
                row=1,
                col=1,
            )
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=[r["frames_per_s"] for _, r in pts],
                    name=name,
                    line={"dash": dash},
                    legendgroup=name,
                    showlegend=False,
                ),
                row=1,
                col=2,
            )
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_xaxes(title_text="beds (N)")
    fig.update_layout(title="Vigil vs bare websockets broadcast peer (2/3 bedside full-rate, 1/3 station decimated)")
    fig.write_html(path, include_plotlyjs=True)


def save(name: str, payload: dict[str, Any]) -> Path:
    """Write results JSON under benchmarks/results/."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


# ---- scenarios -------------------------------------------------------------------------------------------


def run_matrix(
    ns: Sequence[int], ms: Sequence[int], seconds: float, warmup_s: float, servers: Sequence[str] = ("vigil", "peer")
) -> list[dict[str, Any]]:
    """One server per (kind, N), settled (every device online), then the viewer counts in turn, while NO DATA
    alarms are raised on demand all along."""
    rows = []
    for n in ns:
        mons = monitors(n)
        for kind in servers:
            with tempfile.TemporaryDirectory() as d, server(kind, Path(d), mons) as srv:
                settled = srv.settle(n)
                with AlarmDriver(mons, srv.fault, srv.acknowledge):
                    for m in ms:
                        t_cell = time.monotonic()
                        try:
                            row = measure(srv, n, m, seconds=seconds, warmup_s=warmup_s, tmp=Path(d))
                        except Exception as e:  # a saturated server that stops answering is a result too
                            row = {"server": srv.name, "beds": n, "viewers": m, "error": f"{type(e).__name__}: {e}"}
                        row["startup_settle_s"] = settled
                        row["cell_wall_s"] = round(time.monotonic() - t_cell, 1)
                        rows.append(row)
                        print(table([row]).splitlines()[-1], flush=True)
    return rows


def scenario_rows(args: argparse.Namespace, ns: Sequence[int], ms: Sequence[int], name: str) -> None:
    """Matrix-style scenarios: run, print, save, plot."""
    started = time.monotonic()
    print(table([]).splitlines()[0], flush=True)
    servers = ("vigil", "peer") if args.only is None else (args.only,)
    rows = run_matrix(ns, ms, args.seconds, args.warmup, servers)
    rs = ratios(rows)
    print()
    print(table(rows))
    print()
    print(ratio_table(rs))
    g = goals(rows, rs)
    if g:
        print("goals at 100 beds x 300 viewers:", json.dumps(g))
    payload: dict[str, Any] = {
        "benchmark": "load",
        "scenario": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "method": {
            "seconds_per_cell": args.seconds,
            "warmup_s": args.warmup,
            "cell_order": "one server process per (server, N); M = " + ", ".join(map(str, ms)) + " in turn",
            "mix": "2/3 bedside (1 bay, full-rate waves), 1/3 station (16 bays, decimated <= 25 Hz waves)",
            "ingest": "in-process simulated monitors (Settings), scenario sensor_off, staggered probe-off alarms",
            "delivery_latency": "viewer receipt - device time (wave: t0 + n/fs; vitals: newest reading t)",
            "alarm_latency": "viewer receipt - raised event t (engine evaluation at delay expiry)",
            "viewers": "asyncio + websockets client processes, <=150 connections each",
            "alarms": "NO DATA (CLINICAL.md T6) raised on demand: devices silenced in turn by fault injection",
            "caveat": "the 2 cores are shared with whatever else runs (load_average_1m per row); "
            "server_cpu_us_per_frame is the contention-robust figure",
            "total_s": None,
        },
        "goals": GOALS,
        "rows": rows,
        "ratios_vigil_to_peer": rs,
        "goal_check": g,
    }
    payload["method"]["total_s"] = round(time.monotonic() - started)
    out = save(args.out or ("bench_load.json" if name == "matrix" else f"bench_{name}.json"), payload)
    if name == "matrix":
        plot(rows, RESULTS / "bench_load.html")
    print(f"saved {out} ({payload['method']['total_s']} s)")


def run_slow(args: argparse.Namespace) -> dict[str, Any]:
    """A reference cell, then the same viewers with one station that stops reading for 60 s."""
    n, m = args.beds, args.viewers
    pause = SLOW_PAUSE_S
    seconds = SLOW_PAUSE_AFTER_S + pause + 10.0
    mons = monitors(n)
    with tempfile.TemporaryDirectory() as d, server("vigil", Path(d), mons) as srv:
        srv.settle(n)
        with AlarmDriver(mons, srv.fault, srv.acknowledge):
            # the reference window as long as the slow one: a longer window meets rarer events (NIBP cycles,
            # garbage collection), so only equal windows compare p99 fairly
            ref = measure(srv, n, m, seconds=seconds, warmup_s=args.warmup, tmp=Path(d))
            print(table([ref]).splitlines()[-1], flush=True)
            slow = measure(srv, n, m, seconds=seconds, warmup_s=args.warmup, tmp=Path(d), slow=True)
            print(table([slow]).splitlines()[-1], flush=True)
    p_ref, p_slow = ref["delivery"]["p99_ms"], slow["delivery"]["p99_ms"]
    rep = slow.get("slow_viewer", {})
    timeline = rep.get("server_rss_mb_timeline", [])
    rss = [r for _, r in timeline]
    # memory during the pause: after its first 10 s (the stall is detected and the queue replaced) RSS must
    # level off, not grow with the messages the stalled viewer is missing
    paused = [r for t, r in timeline if SLOW_PAUSE_AFTER_S + 10 <= t <= SLOW_PAUSE_AFTER_S + pause]
    growth = round(max(paused) - paused[0], 1) if paused else None
    verdict = {
        "others_p99_ref_ms": p_ref,
        "others_p99_with_slow_ms": p_slow,
        "others_p99_ratio": None if not p_ref or p_slow is None else round(p_slow / p_ref, 3),
        "others_p99_within_10pct": bool(p_ref and p_slow is not None and p_slow <= 1.1 * p_ref),
        "server_rss_mb_first_last_max": [rss[0], rss[-1], max(rss)] if rss else None,
        "server_rss_growth_mb_late_in_pause": growth,
        "server_rss_bounded": growth is not None and growth <= RSS_GROWTH_BOUND_MB,
        # for scale: the server's RSS over the reference window of the same length (no slow viewer)
        "server_rss_mb_first_last_reference": ref.get("server_rss_mb_first_last"),
        "slow_viewer_stayed_connected": bool(rep) and rep.get("server_closed_it_while_paused") is None,
        # resynced by the hub (a "resync" snapshot on the same connection), not by reconnecting
        "slow_viewer_resynced_on_resume": rep.get("snapshot_reason") == "resync"
        and not rep.get("reconnected_with_resume_point"),
        "slow_viewer_resync_after_resume_s": rep.get("resync_after_resume_s"),
        "others_reliable_lost": slow["reliable_lost"],
    }
    print(json.dumps(verdict, indent=2))
    payload = {
        "benchmark": "slow_viewer",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "method": f"{n} beds, {m} viewers; reference {seconds} s; then the same with one viewer of 16 bays at "
        f"full rate (small receive buffer) that stops reading {SLOW_PAUSE_AFTER_S} s into a {seconds} s window "
        f"for {pause} s; "
        "others = every other viewer",
        "reference": ref,
        "with_slow_viewer": slow,
        "verdict": verdict,
    }
    save(args.out or "bench_slow.json", payload)
    return verdict


def run_mllp(args: argparse.Namespace) -> None:
    """N beds over HL7 MLLP from sender processes, M viewers; then the same senders against the bare peer."""
    n, m = args.beds, args.viewers
    mons = monitors(n)
    rows = []
    ingest: list[dict[str, Any]] = []
    for kind in ("vigil", "hl7-bare"):
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            if kind == "vigil":
                srv = start_vigil(tmp, mons, mllp=True)
                port = srv.hl7_port
                pid = srv.proc.pid
            else:
                peer = Proc([sys.executable, "-m", "benchmarks.peers.hl7_bare"])
                port = int(peer.wait_line("PORT", 30).split()[1])
                pid = peer.proc.pid
            assert port is not None
            senders = []
            k = max(1, math.ceil(n / 50))
            for i in range(k):
                spec = tmp / f"senders-{i}.json"
                spec.write_text(json.dumps(mons[i::k]))
                senders.append(
                    Proc([sys.executable, "-m", "benchmarks.load_senders", "--port", str(port), "--spec", str(spec)])
                )
            try:
                for s in senders:
                    s.wait_line("STARTED", 60)
                if kind == "vigil":
                    for mon in mons:  # HL7 bays have no scenario phase: put them in the baseline phase
                        httpx.post(f"{srv.http_url}/api/bays/{mon['bay']}/phase", json={"phase": "baseline"})
                    srv.settle(n)
                    owner = {mon["device_id"]: senders[i % k] for i, mon in enumerate(mons)}

                    def silence(dev: str, on: bool, owner: dict[str, Proc] = owner) -> None:
                        owner[dev].send(f"silence {dev} {int(on)}")

                    time.sleep(2)
                    with AlarmDriver(mons, silence, srv.acknowledge):
                        row = measure(srv, n, m, seconds=args.seconds, warmup_s=args.warmup, tmp=tmp, senders=senders)
                    row["server"] = "vigil-mllp"
                    rows.append(row)
                    cpu = row["server_cpu_pct"]
                else:
                    time.sleep(2 + args.warmup)
                    sp = psutil.Process(pid)
                    c0 = sum(sp.cpu_times()[:2])
                    for s in senders:
                        s.send("start")
                    time.sleep(args.seconds)
                    cpu = round((sum(sp.cpu_times()[:2]) - c0) / args.seconds * 100, 1)
                for s in senders:
                    s.send("stop")
                res = [s.result() for s in senders]
            finally:
                for s in senders:
                    s.kill()
                if kind == "vigil":
                    srv.stop()
                else:
                    peer.kill()
            lat = [x for r in res for x in r["ack_latencies"]]
            ingest.append(
                {
                    "server": kind,
                    "beds": n,
                    "messages_acked": sum(r["acked"] for r in res),
                    "errors": sum(r["errors"] for r in res),
                    "resent": sum(r["resent"] for r in res),
                    "ack": _summary(lat),
                    "server_cpu_pct": cpu,
                }
            )
    print(table(rows))
    for r in ingest:
        print(f"ingest {r['server']:<10} acked {r['messages_acked']:>6} ack {r['ack']} cpu {r['server_cpu_pct']}%")
    v, p = ingest
    ratio = {
        "ack_p99": None if not p["ack"]["p99_ms"] else round((v["ack"]["p99_ms"] or 0) / p["ack"]["p99_ms"], 2),
        "server_cpu": None if not p["server_cpu_pct"] else round(v["server_cpu_pct"] / p["server_cpu_pct"], 2),
    }
    print("vigil / bare python-hl7 (ingest):", ratio)
    save(
        args.out or "bench_mllp.json",
        {
            "benchmark": "load_mllp",
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine(),
            "method": f"{n} HL7 gateway connections (1 ORU^R01/s with 1-s waveform blocks, ORU^R40 alarms) from "
            f"{max(1, math.ceil(n / 50))} sender processes; Vigil with {m} viewers (ACK after SQLite commit, "
            "synchronous=FULL) vs the bare python-hl7 parse-and-ACK peer (no viewers, no storage); "
            f"{args.seconds} s after {args.warmup} s warm-up",
            "rows": rows,
            "ingest": ingest,
            "ratio_vigil_to_peer": ratio,
        },
    )


def main(argv: list[str] | None = None) -> int:
    """``vigil bench quick|matrix|slow|mllp``."""
    ap = argparse.ArgumentParser(prog="vigil bench", description="load and latency benchmark (see module doc)")
    ap.add_argument("scenario", choices=("quick", "matrix", "slow", "mllp", "cell"))
    ap.add_argument("--seconds", type=float, default=None, help="measurement window per cell (matrix: 8, else 15)")
    ap.add_argument("--warmup", type=float, default=None, help="seconds after the viewers connect (matrix: 2, else 3)")
    ap.add_argument("--beds", type=int, default=100, help="slow / mllp / cell: beds")
    ap.add_argument("--viewers", type=int, default=300, help="slow / mllp / cell: viewers")
    ap.add_argument("--out", default=None, help="results file name under benchmarks/results/")
    ap.add_argument("--only", choices=("vigil", "peer"), default=None, help="matrix-style scenarios: one server only")
    ap.add_argument("--no-batch", action="store_true", help="viewers take one message per websocket frame")
    ap.add_argument("--profile", type=Path, default=None, help="run the Vigil server under pyinstrument (text report)")
    ap.add_argument("--serve-option", action="append", default=[], help="extra `vigil serve` argument (repeatable)")
    args = ap.parse_args(argv)
    global PROFILE, BATCH
    PROFILE = args.profile
    BATCH = not args.no_batch
    SERVE_OPTIONS[:] = args.serve_option
    if args.seconds is None:
        args.seconds = 8.0 if args.scenario == "matrix" else 15.0
    if args.warmup is None:
        args.warmup = 2.0 if args.scenario == "matrix" else 3.0
    if args.scenario == "matrix":
        scenario_rows(args, NS, MS, "matrix")
    elif args.scenario == "quick":
        scenario_rows(args, (100,), (300,), "quick")
    elif args.scenario == "cell":
        scenario_rows(args, (args.beds,), (args.viewers,), "cell")
    elif args.scenario == "slow":
        run_slow(args)
    else:
        run_mllp(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
