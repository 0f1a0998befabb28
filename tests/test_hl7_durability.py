"""Durability: every message that received AA survives SIGKILL of the server mid-stream.

10,000 messages over 8 connections; the server process is killed with SIGKILL while they flow; a new
server on the same database receives the messages that were never acknowledged (as a real sender would
resend them). Then the store must hold every message that was ever answered AA.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
from pathlib import Path

from benchmarks.mllp_load import ConnectionResult, run_connection, spaced_times, typical_message
from tests.conftest import VigilProcess, start, stop_with_ctrl_c

TOTAL = 10_000
CONNECTIONS = 8
KILL_AFTER_ACKS = 4_000


def config(tmp: Path, db: Path) -> Path:
    cfg = tmp / "vigil.toml"
    cfg.write_text(
        f'port = 0\ndb_path = "{db}"\n'
        '[[bays]]\nid = "bay1"\nlabel = "Bay 1"\n'
        '[[monitors]]\nkind = "hl7_mllp"\nname = "hl7"\nport = 0\n'
        '[locations]\n"ICU^BED1^1" = "bay1"\n'
    )
    return cfg


def hl7_port(vp: VigilProcess) -> int:
    for _ in range(100):
        m = re.search(r"HL7 MLLP listener hl7: [\d.]+:(\d+)", vp.banner)
        if m:
            return int(m.group(1))
    raise AssertionError(f"no HL7 port in banner {vp.banner!r}")


async def test_every_acknowledged_message_survives_sigkill(tmp_path: Path) -> None:
    db = tmp_path / "durable.sqlite3"
    cfg = config(tmp_path, db)
    times = spaced_times(TOTAL)
    messages = [(f"DUR{i:06d}", typical_message(f"DUR{i:06d}", at=times[i])) for i in range(TOTAL)]
    lanes = [messages[c::CONNECTIONS] for c in range(CONNECTIONS)]

    first = start(["serve", "--config", str(cfg)], cwd=tmp_path)
    port = hl7_port(first)
    acked: set[str] = set()
    killed = asyncio.Event()

    def on_ack(control: str) -> None:
        acked.add(control)
        if len(acked) >= KILL_AFTER_ACKS and not killed.is_set():
            os.kill(first.proc.pid, signal.SIGKILL)  # mid-stream, no warning, no cleanup
            killed.set()

    results: list[ConnectionResult] = await asyncio.gather(
        *(run_connection("127.0.0.1", port, lane, on_ack=on_ack, timeout_s=10) for lane in lanes)
    )
    first.proc.wait(10)
    assert killed.is_set(), "the server was never killed: the test did not test anything"
    assert first.proc.returncode == -signal.SIGKILL
    acked_before_kill = set(acked)
    assert all(r.error for r in results)  # every connection saw the crash

    # Restart on the same database; resend everything that was not acknowledged, like a gateway.
    unacked = [(c, p) for c, p in messages if c not in acked_before_kill]
    second = start(["serve", "--config", str(cfg)], cwd=tmp_path)
    try:
        port = hl7_port(second)
        lanes = [unacked[c::CONNECTIONS] for c in range(CONNECTIONS)]
        results = await asyncio.gather(*(run_connection("127.0.0.1", port, lane) for lane in lanes))
        assert not [r.error for r in results if r.error]
        acked_after = {c for r in results for c in r.acked}
        assert acked_after == {c for c, _ in unacked}
    finally:
        code, log = stop_with_ctrl_c(second)
    assert code == 0, log

    with sqlite3.connect(db) as conn:
        stored = {row[0] for row in conn.execute("SELECT control_id FROM raw_messages WHERE outcome = 'AA'")}
        duplicates = conn.execute(
            "SELECT count(*) - count(DISTINCT control_id) FROM raw_messages WHERE outcome = 'AA'"
        ).fetchone()[0]
        readings = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
    lost = acked_before_kill - stored
    assert not lost, f"{len(lost)} acknowledged messages lost, e.g. {sorted(lost)[:5]}"
    assert stored == {c for c, _ in messages}
    assert readings >= 7 * TOTAL  # 7 numerics per message, duplicates only add
    print(
        f"\nSIGKILL after {len(acked_before_kill)} ACKs; resent {len(unacked)}; "
        f"stored twice (in flight at the kill, resent): {duplicates}; lost: {len(lost)}"
    )
