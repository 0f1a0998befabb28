"""The ``vigil`` command: ``vigil demo`` (simulated bays), ``vigil serve --config FILE``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path

import uvicorn
from pydantic import ValidationError

from app.config import Settings, demo_settings, load_settings
from app.main import create_app

log = logging.getLogger("vigil")


async def _serve(settings: Settings, banner: str) -> None:
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        lifespan="on",
    )
    server = uvicorn.Server(config)

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.05)
        port = settings.port
        for s in server.servers:
            for sock in s.sockets:
                port = sock.getsockname()[1]
                break
        host = "127.0.0.1" if settings.host in ("0.0.0.0", "") else settings.host
        print(f"{banner}\n  Vigil is running at http://{host}:{port}/  (Ctrl-C to stop)", flush=True)

    async with asyncio.TaskGroup() as tg:
        tg.create_task(announce(), name="cli:announce")
        tg.create_task(server.serve(), name="cli:uvicorn")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vigil`` console script."""
    parser = argparse.ArgumentParser(prog="vigil", description="Vigil sedation monitoring display")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run with four simulated bays on an embedded SQLite file")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--db", type=Path, default=Path("vigil-demo.sqlite3"))
    serve = sub.add_parser("serve", help="run from a configuration file")
    serve.add_argument("--config", type=Path, default=None, help="TOML file (VIGIL_* env vars override)")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "demo":
            settings = demo_settings(port=args.port, host=args.host, db_path=args.db)
            banner = "Vigil demo: 4 simulated bays (a secondary display; not for clinical use)"
        else:
            settings = load_settings(args.config)
            banner = f"Vigil: {len(settings.bays)} bays, {len(settings.monitors)} monitors"
    except (ValidationError, FileNotFoundError, ValueError) as e:
        print(f"vigil: invalid configuration:\n{e}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(settings, banner))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
