"""HL7 ingest throughput: Vigil's durable MLLP listener beside a bare python-hl7 parse-and-ACK peer.

Both run as separate processes on this machine; the load client (this process) keeps 1 or 20
original-mode connections busy (send, wait for the ACK, send the next) with typical 9-OBX PCD-01
messages for a fixed time. Vigil ACKs only after each message and its readings are committed to SQLite
(synchronous=FULL); the peer stores nothing. The sending device is bound to no bay, so the alarm engine
(per bay, fed ~1 message/s in real use) is not in this loop.

Run: ``python -m benchmarks.bench_hl7_ingest [--seconds 10]`` (or ``make bench-hl7``). Prints a table and
saves benchmarks/results/hl7_ingest.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.mllp_load import percentile, run_connection, typical_message

RESULTS = Path(__file__).resolve().parent / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def start_vigil(tmp: Path) -> tuple[subprocess.Popen[str], int]:
    """`vigil serve` with one HL7 listener on an ephemeral port; returns the process and the port."""
    cfg = tmp / "bench.toml"
    cfg.write_text(
        f'port = 0\ndb_path = "{tmp / "bench.sqlite3"}"\nlog_level = "warning"\n'
        '[[bays]]\nid = "bay1"\nlabel = "Bay 1"\n'
        '[[monitors]]\nkind = "hl7_mllp"\nname = "hl7"\nport = 0\n'
    )  # the device is bound to no bay: every message still goes through decode, durable commit, ACK and the
    # hub (to the "unassigned" bay), but not through the alarm engine, which a real bay meets at ~1 message/s,
    # not at the thousands per second of this load (its cost is measured on its own: ~0.5 ms per evaluation)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        m = re.search(r"HL7 MLLP listener hl7: [\d.]+:(\d+)", line)
        if m:
            return proc, int(m.group(1))
    raise RuntimeError("vigil did not print its HL7 port")


def start_peer() -> tuple[subprocess.Popen[str], int]:
    """The bare python-hl7 peer; returns the process and its port."""
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.peers.hl7_bare"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    return proc, int(line.split()[1])


async def load(port: int, connections: int, seconds: float, tag: str) -> dict[str, Any]:
    """Keep ``connections`` senders busy for ``seconds``; throughput and ACK latency."""
    template = typical_message("CTRL" + "0" * 12)
    per_conn = int(seconds * 3_000 / connections) + 200  # more than any server here can take in time

    def payloads(c: int) -> list[tuple[str, bytes]]:
        out = []
        for i in range(per_conn):
            cid = f"{tag[:1]}{c:03d}{i:012d}"[:16]
            out.append((cid, template.replace(b"CTRL" + b"0" * 12, cid.encode())))
        return out

    batches = [payloads(c) for c in range(connections)]
    deadline = time.monotonic() + seconds
    t0 = time.perf_counter()
    results = await asyncio.gather(*(run_connection("127.0.0.1", port, b, deadline=deadline) for b in batches))
    elapsed = time.perf_counter() - t0
    lat = [x for r in results for x in r.latencies]
    acked = sum(len(r.acked) for r in results)
    return {
        "connections": connections,
        "seconds": round(elapsed, 2),
        "acked": acked,
        "not_acked": sum(len(r.other) for r in results),
        "errors": [r.error for r in results if r.error],
        "msg_per_s": round(acked / elapsed, 1),
        "ack_ms_p50": round(percentile(lat, 50) * 1000, 2),
        "ack_ms_p95": round(percentile(lat, 95) * 1000, 2),
        "ack_ms_p99": round(percentile(lat, 99) * 1000, 2),
        "ack_ms_max": round(max(lat) * 1000, 2) if lat else None,
    }


async def measure(name: str, proc: subprocess.Popen[str], port: int, seconds: float) -> list[dict[str, Any]]:
    """Both concurrency levels against one server, with its CPU use per message."""
    rows = []
    for conns in (1, 20):
        cpu0 = cpu_seconds(proc.pid)
        row = await load(port, conns, seconds, name)
        cpu = cpu_seconds(proc.pid) - cpu0
        row |= {
            "server": name,
            "server_cpu_s": round(cpu, 2),
            "server_cpu_us_per_msg": round(cpu / max(1, row["acked"]) * 1e6, 1),
        }
        rows.append(row)
    return rows


def main() -> None:
    """Run both servers, print the comparison, save JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        vigil, vport = start_vigil(Path(tmp))
        peer, pport = start_peer()
        try:
            time.sleep(0.5)
            rows = asyncio.run(measure("vigil", vigil, vport, args.seconds))
            rows += asyncio.run(measure("bare-python-hl7", peer, pport, args.seconds))
        finally:
            for p in (vigil, peer):
                p.terminate()
                p.wait(10)
    by = {(r["server"], r["connections"]): r for r in rows}
    ratios = {
        f"{c}conn": round(by[("vigil", c)]["msg_per_s"] / max(1e-9, by[("bare-python-hl7", c)]["msg_per_s"]), 2)
        for c in (1, 20)
    }
    print(
        f"{'server':<18}{'conns':>6}{'msg/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}{'cpu µs/msg':>12}"
    )
    for row in rows:
        r = {k: ("-" if v is None else v) for k, v in row.items()}
        print(
            f"{r['server']:<18}{r['connections']:>6}{r['msg_per_s']:>10}{r['ack_ms_p50']:>9}{r['ack_ms_p95']:>9}"
            f"{r['ack_ms_p99']:>9}{r['ack_ms_max']:>9}{r['server_cpu_us_per_msg']:>12}"
        )
    print("vigil / bare peer throughput:", ratios)
    for r in rows:
        if r["errors"]:
            print(f"{r['server']} {r['connections']} conns: errors {r['errors'][:3]}")
    RESULTS.mkdir(exist_ok=True)
    out = {
        "benchmark": "hl7_ingest",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "message": "PCD-01 ORU^R01, 9 OBX (typical_message)",
        "durability": "Vigil: AA after SQLite commit, synchronous=FULL; peer: no storage",
        "rows": rows,
        "ratio_vigil_to_peer": ratios,
    }
    (RESULTS / "hl7_ingest.json").write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
