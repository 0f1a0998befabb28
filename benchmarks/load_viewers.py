"""Lean websocket viewers for the load benchmark: many connections in one asyncio process.

Each viewer subscribes like a screen (bedside: one bay, full-rate waveforms; station: 16 bays, decimated
waveforms) and timestamps every message on receipt. Only what is needed is parsed: wave frames by string
search (``seq``, ``t0``, ``fs`` and the sample count), everything else (1 Hz or rarer) with ``json``.

- delivery latency: receipt − device time: ``t0 + n / fs`` for a wave frame (the moment its last sample
  period ended), the newest reading ``t`` for vitals;
- alarm latency: receipt − ``t`` of each ``raised`` event in an ``alarms`` message (the engine stamps an event
  with the moment it evaluated the rule's delay as expired); one clock, since everything runs on this machine;
- reliable messages (``alarms``, ``status``, ``device_alarm``) are listed by (type, bay, seq) so the harness
  can compare them with what the server published (loss must be 0).

Driven over stdin by the harness (one command per line): ``start`` opens the measurement window, ``stop SEQ``
closes it, waits until every connection has seen a message with seq ≥ SEQ (so nothing published inside the
window is still in flight), writes the results (JSON on stdout, latency samples as float64 files) and exits.
``READY`` is printed once every viewer has its snapshot.

Run: ``python -m benchmarks.load_viewers --url ws://... --spec FILE --out DIR`` (the harness does).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

RELIABLE = ("alarms", "status", "device_alarm")


@dataclass
class ViewerSpec:
    """One screen: which bays, which waveform detail, its group (bedside, station or slow) and a pause."""

    vid: int
    bays: list[str]
    waves: str
    group: str
    pause_after_s: float | None = None  # after the window opens, stop reading for pause_s (slow viewer)
    pause_s: float = 0.0
    batch: bool = True  # subscribe with batch: frames are JSON arrays of messages

    @staticmethod
    def from_json(d: dict[str, Any]) -> ViewerSpec:
        """From the harness's spec file."""
        return ViewerSpec(
            vid=int(d["vid"]),
            bays=list(d["bays"]),
            waves=str(d["waves"]),
            group=str(d["group"]),
            pause_after_s=d.get("pause_after_s"),
            pause_s=float(d.get("pause_s", 0.0)),
            batch=bool(d.get("batch", True)),
        )


@dataclass
class ViewerState:
    """What one connection saw."""

    spec: ViewerSpec
    last_seq: int = 0
    heard_seq: int = 0  # highest seq seen on anything, heartbeats included (a heartbeat: the queue is empty)
    last_rx: float = 0.0  # receipt time of the last frame
    received: int = 0
    ready: bool = False
    reliable: list[tuple[str, str, int]] = field(default_factory=list)
    snapshots: list[str] = field(default_factory=list)  # reasons, in order
    seq_regressions: int = 0
    paused_at: float | None = None
    resumed_at: float | None = None
    resync_after_resume_s: float | None = None  # receipt of the first snapshot after resuming
    resync_reason: str | None = None  # "resync" (queue replaced) or "connect" (after a reconnect)
    epoch: str = ""
    closed_while_paused: str | None = None  # the server dropped the connection (e.g. keepalive ping timeout)
    reconnected: bool = False
    stale_after_resume: int = 0  # messages received after resuming that were published before the pause ended
    error: str | None = None


class Recorder:
    """Process-wide counters and latency samples, per viewer group, inside the measurement window."""

    def __init__(self) -> None:
        self.measuring = False
        self.t_start = 0.0
        self.t_end = 0.0
        self.lat: dict[tuple[str, str], array[float]] = {}  # (group, "wave"|"vitals"|"alarm") -> seconds
        self.frames: dict[str, int] = {}  # group -> messages received in the window
        self.by_type: dict[str, list[int]] = {}  # type -> [count, bytes]
        self.ws_frames = 0  # websocket frames received in the window (a batched frame carries several messages)

    def reset(self) -> None:
        """Open the window."""
        self.lat.clear()
        self.frames.clear()
        self.by_type.clear()
        self.ws_frames = 0
        self.t_start = time.time()
        self.measuring = True

    def sample(self, group: str, kind: str, value: float) -> None:
        """One latency sample."""
        a = self.lat.get((group, kind))
        if a is None:
            a = self.lat[(group, kind)] = array("d")
        a.append(value)


def _field(text: str, key: str, start: int = 0) -> str:
    """The raw value after ``"key":`` (up to the next comma or closing brace)."""
    i = text.find(key, start)
    if i < 0:
        return ""
    i += len(key)
    j = text.find(",", i)
    k = text.find("}", i)
    if j < 0 or 0 <= k < j:
        j = k
    return text[i:j] if j >= 0 else text[i:]


def handle(text: str, now: float, st: ViewerState, rec: Recorder) -> None:
    """Account for one received message."""
    st.received += 1
    i = text.find('"type":"')
    if i < 0:
        return
    i += 8
    kind = text[i : text.find('"', i)]
    seq_raw = _field(text, '"seq":')
    seq = int(seq_raw) if seq_raw else 0
    group = st.spec.group
    measuring = rec.measuring
    if measuring:
        rec.frames[group] = rec.frames.get(group, 0) + 1
        bt = rec.by_type.get(kind)
        if bt is None:
            bt = rec.by_type[kind] = [0, 0]
        bt[0] += 1
        bt[1] += len(text)
    if kind == "wave":
        k = text.find('"samples":[')
        e = text.find("]", k)
        n = text.count(",", k, e) + 1 if e > k + 11 else 0
        t0 = float(_field(text, '"t0":'))
        fs = float(_field(text, '"fs":'))
        if measuring:
            rec.sample(group, "wave", now - (t0 + n / fs))
    elif kind != "heartbeat":
        msg = json.loads(text)
        if kind == "vitals":
            if measuring and msg["readings"]:
                rec.sample(group, "vitals", now - max(r["t"] for r in msg["readings"]))
        elif kind in RELIABLE:
            st.reliable.append((kind, msg["bay"], seq))
            if kind == "alarms" and measuring:
                for ev in msg["events"]:
                    if ev["kind"] == "raised":
                        rec.sample(group, "alarm", now - ev["t"])
        elif kind == "snapshot":
            st.snapshots.append(msg["reason"])
            st.ready = True
            if st.resumed_at is not None and st.resync_after_resume_s is None:
                st.resync_after_resume_s = now - st.resumed_at
                st.resync_reason = msg["reason"]
        elif kind == "hello":
            st.epoch = msg.get("epoch", "")
    st.last_rx = now
    if kind == "heartbeat":
        st.heard_seq = max(st.heard_seq, seq)
    if kind in ("heartbeat", "hello", "error"):
        return  # informational seqs: not a resume point
    st.heard_seq = max(st.heard_seq, seq)
    if seq < st.last_seq and kind != "snapshot":
        st.seq_regressions += 1
    st.last_seq = max(st.last_seq, seq)
    if st.resumed_at is not None and st.paused_at is not None and kind not in ("snapshot",):
        t_pub = float(_field(text, '"t":') or 0.0)
        if t_pub < st.resumed_at - 1.0:
            st.stale_after_resume += 1


async def run_viewer(url: str, st: ViewerState, rec: Recorder) -> None:
    """One connection until cancelled."""
    spec = st.spec
    slow = spec.pause_after_s is not None
    try:
        await _connection(url, st, rec, slow)
    except asyncio.CancelledError:
        raise
    except (ConnectionClosed, OSError, TimeoutError) as e:
        if not (slow and st.resumed_at is not None):
            st.error = f"{type(e).__name__}: {e}"
            return
        # The server dropped the stalled reader: come back as a browser does, with the resume point.
        st.closed_while_paused = f"{type(e).__name__}: {e}"
        st.reconnected = True
        try:
            await _connection(url, st, rec, False, resume={"epoch": st.epoch, "seq": st.last_seq})
        except (ConnectionClosed, OSError, TimeoutError) as e2:
            st.error = f"{type(e2).__name__}: {e2}"


async def _connection(
    url: str, st: ViewerState, rec: Recorder, slow: bool, resume: dict[str, Any] | None = None
) -> None:
    spec = st.spec
    sock = None
    if slow:  # a small receive window, so that a reader that stops is felt by the server within seconds
        parts = urlsplit(url)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (parts.hostname or "127.0.0.1", parts.port or 80))
    async with connect(
        url,
        compression=None,
        max_size=None,
        max_queue=4 if slow else 64,
        open_timeout=60,
        sock=sock,
        ping_interval=None if slow else 20,  # a stalled browser sends no pings of its own
    ) as ws:
        sub = {"type": "subscribe", "bays": spec.bays, "waves": spec.waves, "resume": resume, "batch": spec.batch}
        await ws.send(json.dumps(sub))
        await _loop(ws, st, rec, slow)


async def _loop(ws: ClientConnection, st: ViewerState, rec: Recorder, slow: bool) -> None:
    spec = st.spec
    while True:
        text = await ws.recv()
        now = time.time()
        if isinstance(text, bytes):
            text = text.decode()
        if rec.measuring:
            rec.ws_frames += 1
        if text.startswith("["):  # a batch: one compact message per line (app/api/ws.py batch_frame)
            for line in text[1:-1].split("\n"):
                handle(line[:-1] if line.endswith(",") else line, now, st, rec)
        else:
            handle(text, now, st, rec)
        pause_after = spec.pause_after_s
        if (
            slow
            and st.paused_at is None
            and rec.measuring
            and pause_after is not None
            and now - rec.t_start >= pause_after
        ):
            st.paused_at = now
            await asyncio.sleep(spec.pause_s)  # stop reading: the socket fills, the server must cope
            st.resumed_at = time.time()


def _stdin_lines(loop: asyncio.AbstractEventLoop, q: asyncio.Queue[str]) -> None:
    for line in sys.stdin:
        loop.call_soon_threadsafe(q.put_nowait, line.strip())
    loop.call_soon_threadsafe(q.put_nowait, "quit")


async def _until(pred: Callable[[], bool], timeout: float) -> None:
    for _ in range(int(timeout / 0.05)):
        if pred():
            return
        await asyncio.sleep(0.05)


def _write_samples(rec: Recorder, out: Path) -> dict[str, str]:
    files: dict[str, str] = {}
    out.mkdir(parents=True, exist_ok=True)
    for (group, kind), a in rec.lat.items():
        path = out / f"lat-{group}-{kind}-{id(rec)}-{time.monotonic_ns()}.f64"
        with path.open("wb") as f:
            a.tofile(f)
        files[f"{group}/{kind}"] = str(path)
    return files


async def main_async(url: str, specs: list[ViewerSpec], out: Path) -> dict[str, Any]:
    """Connect every viewer, follow the harness's commands, return the results."""
    rec = Recorder()
    states = [ViewerState(s) for s in specs]
    tasks = []
    for i, st in enumerate(states):
        tasks.append(asyncio.create_task(run_viewer(url, st, rec)))
        if i % 20 == 19:
            await asyncio.sleep(0.02)  # do not flood the accept queue
    await _until(lambda: all(s.ready or s.error for s in states), 60)
    print("READY", sum(s.ready for s in states), flush=True)
    q: asyncio.Queue[str] = asyncio.Queue()
    threading.Thread(target=_stdin_lines, args=(asyncio.get_running_loop(), q), daemon=True).start()
    seq_end = 0
    while True:
        cmd = await q.get()
        if cmd == "start":
            rec.reset()
        elif cmd.startswith("stop"):
            rec.t_end = time.time()
            rec.measuring = False
            seq_end = int(cmd.split()[1]) if len(cmd.split()) > 1 else 0
            break
        elif cmd == "quit":
            break
    # Drained: every connection has seen seq_end, or a heartbeat at or past it (Vigil sends one only when the
    # client's queue is empty), or nothing for a second and a half (a bay silenced by the alarm driver, whose
    # viewers get nothing new; the bare peer sends no heartbeats).
    stopped = time.time()

    def drained(s: ViewerState) -> bool:
        if s.error is not None or (s.spec.pause_after_s is not None and not s.resumed_at):
            return True
        now = time.time()
        return s.heard_seq >= seq_end or (now - s.last_rx > 1.5 and now - stopped > 1.5)

    await _until(lambda: all(drained(s) for s in states), 10)
    for t in tasks:
        t.cancel()
    for t in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await t
    files = _write_samples(rec, out)
    return {
        "window": [rec.t_start, rec.t_end],
        "frames": rec.frames,
        "ws_frames": rec.ws_frames,
        "by_type": rec.by_type,
        "latency_files": files,
        "viewers": [
            {
                "vid": s.spec.vid,
                "group": s.spec.group,
                "bays": s.spec.bays,
                "waves": s.spec.waves,
                "received": s.received,
                "last_seq": s.last_seq,
                "reliable": s.reliable,
                "snapshots": s.snapshots,
                "seq_regressions": s.seq_regressions,
                "paused_at": s.paused_at,
                "resumed_at": s.resumed_at,
                "resync_after_resume_s": s.resync_after_resume_s,
                "resync_reason": s.resync_reason,
                "closed_while_paused": s.closed_while_paused,
                "reconnected": s.reconnected,
                "stale_after_resume": s.stale_after_resume,
                "error": s.error,
            }
            for s in states
        ],
    }


def main() -> None:
    """Entry point (started by the harness)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--spec", type=Path, required=True, help="JSON list of viewer specs")
    ap.add_argument("--out", type=Path, required=True, help="directory for latency sample files")
    ap.add_argument("--uvloop", action="store_true")
    args = ap.parse_args()
    specs = [ViewerSpec.from_json(d) for d in json.loads(args.spec.read_text())]
    if args.uvloop:
        import uvloop

        result = uvloop.run(main_async(args.url, specs, args.out))
    else:
        result = asyncio.run(main_async(args.url, specs, args.out))
    sys.stdout.write("RESULT " + json.dumps(result) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
