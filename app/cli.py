"""The ``vigil`` command: ``vigil demo`` (simulated bays), ``vigil simulate --scenario NAME --bays N``,
``vigil serve --config FILE``, ``vigil report SESSION -o FILE``, ``vigil export SESSION --format FMT -o FILE``
and ``vigil bench quick|matrix|slow|mllp`` (the load benchmark, from a source checkout)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import ValidationError

from app.config import BayConfig, Settings, SimulatedMonitor, demo_settings, load_settings
from app.main import create_app

log = logging.getLogger("vigil")


class StartupError(Exception):
    """The server could not start (port taken, store unusable); the message says why."""


#: Kernel send buffer of each connection (set on the listening socket; Linux hands it to accepted sockets and
#: doubles it for bookkeeping). Autotuning would let a stalled websocket reader park megabytes (a minute of a
#: 16-bay full-rate stream) in the kernel, out of the hub's sight: the hub would neither notice the stall nor
#: resync the client, which would then replay a minute of stale data. With this bound, back-pressure reaches
#: the hub within seconds (app/hub.py stall rule). Plenty for a LAN: 128 KiB in flight at 1 ms RTT is ~1 Gbit/s.
SEND_BUFFER_BYTES = 64 * 1024


def _bind(host: str, port: int) -> socket.socket:
    """Bind the HTTP socket ourselves, so a taken port is a clear message rather than a traceback."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port}: {e.strerror} (choose another with --port)") from None
    return sock


#: Keepalive pings to each websocket client; a client that has not answered one for WS_PING_TIMEOUT_S is
#: dropped. Long on purpose: a screen that stops reading for a minute (a frozen tab, a busy station PC) stays
#: connected, its bounded hub queue is replaced by a fresh snapshot (app/hub.py), and it catches up from
#: that when it reads again, instead of being dropped and reconnecting. Memory per stalled client is
#: bounded by the hub queue and the transport's write buffer either way; the browser finds a dead server
#: by itself (heartbeat watchdog in frontend/lib/ws-client.js).
WS_PING_INTERVAL_S = 20.0
WS_PING_TIMEOUT_S = 120.0


def _run(main: Coroutine[Any, Any, None], loop: str) -> None:
    """Run the server on uvloop when asked for (``auto``: when it is installed), else asyncio's own loop."""
    if loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if loop == "uvloop":
                raise StartupError("--loop uvloop: uvloop is not installed") from None
        else:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                runner.run(main)
            return
    asyncio.run(main)


async def _serve(settings: Settings, banner: str) -> None:
    sock = _bind(settings.host, settings.port)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_ping_interval=WS_PING_INTERVAL_S,
        ws_ping_timeout=WS_PING_TIMEOUT_S,
        lifespan="on",
        ssl_certfile=None if settings.tls_cert is None else str(settings.tls_cert),
        ssl_keyfile=None if settings.tls_key is None else str(settings.tls_key),
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
        scheme = "https" if settings.tls_cert is not None else "http"
        lines = [banner, f"  Vigil is running at {scheme}://{host}:{port}/  (Ctrl-C to stop)"]
        services = app.state.services
        if settings.auth == "off":
            lines.append("  Login is OFF (VIGIL_AUTH=off): development and tests on this machine only")
        elif services.first_credentials:
            lines.append("  First start: these accounts were created. Note the passwords now; they are not shown again")
            lines.append(
                "  (reset one with: vigil user passwd NAME). The admin must choose a new password at first login."
            )
            for name, (role, password) in services.first_credentials.items():
                lines.append(f"    {role:<9} {name:<10} password: {password}")
        for adapter in app.state.services.supervisor.adapters.values():
            for _ in range(40):  # listeners bind in their own task; give them a moment
                listening = adapter.describe().get("listening")
                if listening or not hasattr(adapter, "bound"):
                    break
                await asyncio.sleep(0.05)
            if listening:
                lines.append(f"  HL7 MLLP listener {adapter.name}: {listening}")
        print("\n".join(lines), flush=True)

    async def serve() -> None:
        try:
            await server.serve(sockets=[sock])
        except SystemExit as e:  # uvicorn exits this way when the app's startup fails (logged above)
            raise StartupError("the server failed to start (see the log above)") from e

    async with asyncio.TaskGroup() as tg:
        tg.create_task(announce(), name="cli:announce")
        tg.create_task(serve(), name="cli:uvicorn")


def simulate_settings(
    scenario: str, bays: int, speed: float, port: int, host: str, db_path: Path, start_min: float = 0.0
) -> Settings:
    """``bays`` bays whose simulated monitors all play ``scenario`` (seed = bay number: different patients)."""
    if not 1 <= bays <= 500:
        raise ValueError("--bays must be between 1 and 500")
    return Settings(
        host=host,
        port=port,
        db_path=db_path,
        bays=[BayConfig(id=f"bay{i}", label=f"Bay {i}") for i in range(1, bays + 1)],
        monitors=[
            SimulatedMonitor(
                name=f"sim{i}",
                device_id=f"sim-monitor-{i}",
                bay=f"bay{i}",
                seed=i,
                scenario=scenario,
                speed=speed,
                offset_min=start_min,
                nibp_first_s=3.0 + (i % 5),
            )
            for i in range(1, bays + 1)
        ],
    )


def _emulate(args: argparse.Namespace) -> int:
    """``vigil simulate --to URL``: be a device that feeds a running server over the wire."""
    target = str(args.to)
    if target.startswith(("serial://", "pty", "tcp://")):
        from simulators.devices import serial_emulator

        if args.dialect is None:
            print("vigil: a serial --to needs --dialect (masimo-ascii1, nonin-df2 or keyvalue)", file=sys.stderr)
            return 2
        argv = [
            "--to",
            target,
            "--dialect",
            args.dialect,
            "--scenario",
            args.scenario,
            "--seed",
            str(args.seed),
            "--speed",
            str(args.speed),
            "--offset-min",
            str(args.start_min),
        ]
        return serial_emulator.main(argv)
    if not target.startswith("mllp://"):
        print(f"vigil: --to supports mllp://host:port or a serial line, not {target!r}", file=sys.stderr)
        return 2
    from simulators.devices import hl7_sender

    argv = [
        "--to",
        target,
        "--scenario",
        args.scenario,
        "--seed",
        str(args.seed),
        "--device-id",
        args.device_id,
        "--speed",
        str(args.speed),
        "--offset-min",
        str(args.start_min),
    ]
    if args.location is not None:
        argv += ["--location", args.location]
    return hl7_sender.main(argv)


def _add_record_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``vigil report`` and ``vigil export``: read a recorded session from the SQLite file (no server)."""
    from app.recording.export import FORMATS

    rep = sub.add_parser("report", help="write the printable HTML report of a recorded session (no server needed)")
    exp = sub.add_parser("export", help="write a recorded session as CSV, HL7 v2 ORU^R01 or a FHIR R4 Bundle")
    exp.add_argument("--format", required=True, choices=list(FORMATS), help="what to write")
    exp.add_argument(
        "--interval", type=float, default=None, help="fhir.json: seconds between sampled numerics (0: all)"
    )
    for p in (rep, exp):
        p.add_argument("session", help="session id (GET /api/recordings lists them)")
        p.add_argument("-o", "--output", type=Path, required=True, help="file to write ('-': standard output)")
        src = p.add_mutually_exclusive_group()
        src.add_argument("--db", type=Path, default=None, help="the SQLite file (default: from the settings)")
        src.add_argument("--config", type=Path, default=None, help="TOML settings naming the database")
        p.add_argument("--tz", default=None, help="clinic time zone for local times, e.g. Europe/Paris (default UTC)")


def _record_command(args: argparse.Namespace) -> int:
    """Run ``vigil report`` / ``vigil export``; exit 2 with a clear message for an unknown session or file."""
    from app.api.exports import zone
    from app.recording import export, report
    from app.recording.load import load_recording
    from app.sessions.model import Refused
    from app.store.sqlite import SQLiteStore

    try:
        db: Path = args.db if args.db is not None else load_settings(args.config).db_path
        tz = zone(args.tz)
    except (ValidationError, FileNotFoundError, ValueError) as e:
        print(f"vigil: invalid configuration:\n{e}", file=sys.stderr)
        return 2
    except Refused as e:
        print(f"vigil: {e.reason}", file=sys.stderr)
        return 2
    if not db.is_file():
        print(f"vigil: no database at {db} (give --db or --config)", file=sys.stderr)
        return 2

    async def build() -> bytes:
        store = SQLiteStore(db)
        await store.open()
        try:
            rec = await load_recording(store, args.session)
        finally:
            await store.close()
        if args.command == "report":
            return report.render_report(rec, tz=tz).encode("utf-8")
        if args.format == "fhir.json" and args.interval is not None:
            return export.fhir_json(rec, interval_s=max(0.0, args.interval)).encode("utf-8")
        return export.export(rec, args.format, tz)

    try:
        data = asyncio.run(build())
    except Refused as e:
        print(f"vigil: {e.reason}", file=sys.stderr)
        return 2
    if str(args.output) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        args.output.write_bytes(data)
        print(f"vigil: wrote {args.output} ({len(data)} bytes)", file=sys.stderr)
    return 0


def _record_session(args: argparse.Namespace) -> int:
    """``vigil record``: one simulated session into a SQLite file; prints the session id."""
    from app.recording.synth import record_simulated_session
    from app.store.sqlite import SQLiteStore
    from simulators.scenario import scenario_names

    if args.scenario not in scenario_names():
        print(f"vigil: unknown scenario {args.scenario!r}; known: {', '.join(scenario_names())}", file=sys.stderr)
        return 2

    async def run() -> str:
        store = SQLiteStore(args.db)
        await store.open()
        try:
            return await record_simulated_session(
                store, scenario=args.scenario, bay=args.bay, seed=args.seed, speed=args.speed
            )
        finally:
            await store.close()

    sid = asyncio.run(run())
    print(f"recorded session {sid} ({args.scenario}) in {args.db}")
    return 0


def _user_command(args: argparse.Namespace) -> int:
    """``vigil user add|list|passwd``: accounts in the configured store (the server may be running)."""
    from app.main import build_store
    from app.security.roles import Role
    from app.security.service import AuthService

    try:
        settings = load_settings(args.config, **({"db_path": args.db} if args.db else {}))
    except (ValidationError, FileNotFoundError, ValueError) as e:
        print(f"vigil: invalid configuration:\n{e}", file=sys.stderr)
        return 2

    async def run() -> int:
        store = build_store(settings)
        await store.open()
        try:
            auth = AuthService(store)
            await auth.load()
            if args.action == "list":
                for a in sorted(auth.accounts.values(), key=lambda a: a.username):
                    bays = ",".join(a.bays) or "all bays"
                    flags = " (disabled)" if a.disabled else ""
                    print(f"{a.username:<16} {a.role.value:<9} {bays}{' live' if a.live else ''}{flags}")
                return 0
            if args.action == "add":
                scope = tuple(b for b in (args.bays or "").split(",") if b)
                _, password = await auth.add_user(
                    args.name, Role(args.role), by="cli", bays=scope, live=args.live, display_name=args.display_name
                )
            else:
                if args.name not in auth.accounts:
                    print(f"vigil: no user {args.name!r}", file=sys.stderr)
                    return 1
                from app.security.passwords import one_time_password

                password = one_time_password()
                await auth.set_password(args.name, password, by="cli", must_change=True)
            print(f"{args.name}: one-time password {password}  (to be changed at first login)")
            return 0
        except ValueError as e:
            print(f"vigil: {e}", file=sys.stderr)
            return 1
        finally:
            await store.close()

    return asyncio.run(run())


def _bench(scenario: str, options: list[str]) -> int:
    """``vigil bench SCENARIO``: the load benchmark from a source checkout (benchmarks/ is not installed)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / "benchmarks" / "bench_load.py").is_file():
        print("vigil: bench needs a source checkout (benchmarks/bench_load.py not found)", file=sys.stderr)
        return 2
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    if scenario == "twin":  # two instances on the scale-out stack against one (benchmarks/bench_twin.py)
        from benchmarks import bench_twin

        return bench_twin.main(options)
    from benchmarks import bench_load

    return bench_load.main([scenario, *options])


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vigil`` console script."""
    parser = argparse.ArgumentParser(prog="vigil", description="Vigil sedation monitoring display")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run with four simulated bays on an embedded SQLite file")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--db", type=Path, default=Path("vigil-demo.sqlite3"))
    demo.add_argument("--hl7-port", type=int, default=2575, help="HL7 MLLP listener port (0: any free port)")
    demo.add_argument("--no-hl7", action="store_true", help="do not open the HL7 MLLP listener")
    sim = sub.add_parser(
        "simulate",
        help="run N simulated bays all playing one scenario, or (--to) feed a running server like a real device",
    )
    sim.add_argument("--scenario", required=True, help="a scenario name from simulators/scenarios/")
    sim.add_argument("--bays", type=int, default=4)
    sim.add_argument("--speed", type=float, default=1.0, help="simulated seconds per second (e.g. 60)")
    sim.add_argument("--start-min", type=float, default=0.0, help="start this many minutes into the scenario")
    sim.add_argument("--port", type=int, default=8000)
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--db", type=Path, default=Path("vigil-simulate.sqlite3"))
    sim.add_argument(
        "--to",
        default=None,
        help="be a device feeding a running server instead: mllp://host:port (HL7 PCD-01), or a serial line "
        "serial:///dev/ttyX, pty[:///link] or tcp://host:port (with --dialect)",
    )
    sim.add_argument("--dialect", default=None, help="with a serial --to: masimo-ascii1, nonin-df2 or keyvalue")
    sim.add_argument("--seed", type=int, default=1, help="with --to: the simulated patient")
    sim.add_argument("--device-id", default="00A0C9FFFE000001", help="with --to: the device's EUI-64")
    sim.add_argument("--location", default=None, help="with --to mllp: PV1-3 unit^room^bed the server maps to a bay")
    serve = sub.add_parser("serve", help="run from a configuration file")
    serve.add_argument("--config", type=Path, default=None, help="TOML file (VIGIL_* env vars override)")
    for p in (demo, sim, serve):
        p.add_argument(
            "--loop",
            choices=("auto", "uvloop", "asyncio"),
            default="auto",
            help="event loop (auto: uvloop when installed, else asyncio's)",
        )
    _add_record_commands(sub)
    rec = sub.add_parser("record", help="record one simulated session (check-in to discharge) at high speed")
    rec.add_argument("--db", type=Path, required=True, help="SQLite file to record into (created if missing)")
    rec.add_argument("--scenario", default="oversedation", help="a scenario name from simulators/scenarios/")
    rec.add_argument("--bay", default="bay1")
    rec.add_argument("--seed", type=int, default=1)
    rec.add_argument("--speed", type=float, default=1000.0, help="at most this many times real time")
    user = sub.add_parser("user", help="user accounts: add, list, passwd (reset to a one-time password)")
    user.add_argument("action", choices=("add", "list", "passwd"))
    user.add_argument("name", nargs="?", default=None)
    user.add_argument("--role", choices=("nurse", "physician", "reviewer", "admin"), default="nurse")
    user.add_argument("--bays", default=None, help="nurse: comma-separated bays (default: every bay)")
    user.add_argument("--live", action="store_true", help="reviewer: may also see live data")
    user.add_argument("--display-name", default="")
    user.add_argument("--config", type=Path, default=None, help="TOML file of the server (VIGIL_* env vars override)")
    user.add_argument("--db", type=Path, default=None, help="SQLite file (default: the configuration's db_path)")
    bench = sub.add_parser(
        "bench", help="load/latency benchmark: quick, matrix, slow, mllp, cell or twin (benchmarks/)"
    )
    bench.add_argument("scenario", choices=("quick", "matrix", "slow", "mllp", "cell", "twin"))
    bench.add_argument("options", nargs=argparse.REMAINDER, help="e.g. --seconds 20 (see benchmarks/bench_load.py)")
    args = parser.parse_args(argv)
    if args.command in ("report", "export"):
        return _record_command(args)
    if args.command == "bench":
        return _bench(args.scenario, args.options)
    if args.command == "user":
        if args.action != "list" and not args.name:
            parser.error(f"vigil user {args.action} needs a NAME")
        return _user_command(args)
    if args.command == "record":
        return _record_session(args)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "demo":
            settings = demo_settings(
                port=args.port, host=args.host, db_path=args.db, hl7_port=None if args.no_hl7 else args.hl7_port
            )
            banner = "Vigil demo: 4 simulated bays (a secondary display; not for clinical use)"
        elif args.command == "simulate" and args.to is not None:
            return _emulate(args)
        elif args.command == "simulate":
            settings = simulate_settings(
                args.scenario, args.bays, args.speed, args.port, args.host, args.db, start_min=args.start_min
            )
            banner = f"Vigil simulate: {args.bays} bays playing {args.scenario!r} at {args.speed:g}x (not clinical)"
        else:
            settings = load_settings(args.config)
            banner = f"Vigil: {len(settings.bays)} bays, {len(settings.monitors)} monitors"
    except (ValidationError, FileNotFoundError, ValueError) as e:
        print(f"vigil: invalid configuration:\n{e}", file=sys.stderr)
        return 2
    if settings.hub == "redis":  # a configuration error too: say so before starting anything
        from app.scale import redis_problem

        problem = redis_problem(settings.redis_url)
        if problem is not None:
            print(f"vigil: {problem}", file=sys.stderr)
            return 2
    failed: list[str] = []
    try:
        with contextlib.suppress(KeyboardInterrupt):
            _run(_serve(settings, banner), args.loop)
    except* StartupError as group:
        failed = [str(e) for e in group.exceptions]
    for message in failed:
        print(f"vigil: {message}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
