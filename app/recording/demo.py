"""``vigil demo`` keeps one finished session on record so the review page has something to show.

At start, if the store holds no finished session, a separate process (``vigil record``) records one
simulated over-sedation session at high speed into the same SQLite file (WAL: its commits interleave with
the server's), in a bay of its own ("review-demo") so that it never mixes with the live demo bays.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from app.recording.load import list_recordings
from app.store import Store

log = logging.getLogger(__name__)

DEMO_BAY = "review-demo"


async def ensure_demo_session(store: Store, db_path: str) -> None:
    """Record a finished demo session in a child process unless one exists; logs when it is ready."""
    if any(r.final for r in await list_recordings(store)):
        return
    log.info("recording a finished demo session for the review page (about ten seconds, in the background)")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app",
        "record",
        "--db",
        db_path,
        "--scenario",
        "oversedation",
        "--bay",
        DEMO_BAY,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        out, _ = await proc.communicate()
    except asyncio.CancelledError:
        proc.kill()
        await proc.wait()
        raise
    if proc.returncode == 0:
        log.info("demo session recorded: %s", out.decode(errors="replace").strip().splitlines()[-1:])
    else:
        log.error(
            "recording the demo session failed (exit %s): %s", proc.returncode, out.decode(errors="replace")[-2000:]
        )
