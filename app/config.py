"""Settings: the one place configuration comes from (``VIGIL_*`` environment variables, optional TOML file).

Precedence, highest first: explicit keyword arguments, ``VIGIL_*`` environment variables (nested values
as JSON, e.g. ``VIGIL_MONITORS='[...]'``), the TOML file, the defaults here. Monitors are a discriminated
union on ``kind``; later adapters (replay) join the union.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

Ident = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


_ZONE_NAME = re.compile(r"^[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*$")


def valid_timezone(name: str) -> bool:
    """True if ``name`` is an IANA time zone name that zoneinfo knows (what browsers' Intl also take)."""
    if not _ZONE_NAME.fullmatch(name):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def local_timezone_name() -> str:
    """The server's own IANA zone name (``TZ``, the /etc/localtime link, /etc/timezone), else "UTC"."""
    candidates = [os.environ.get("TZ", "").removeprefix(":")]
    localtime = Path("/etc/localtime")
    with contextlib.suppress(OSError):
        if localtime.is_symlink():
            target = str(localtime.resolve())
            if "/zoneinfo/" in target:
                name = target.split("/zoneinfo/", 1)[1]
                candidates.append(name.removeprefix("posix/").removeprefix("right/"))
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text().strip())
    return next((c for c in candidates if c and valid_timezone(c)), "UTC")


class _Conf(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BayConfig(_Conf):
    """A treatment bay (bed/chair) that a screen can show."""

    id: Ident
    label: str = Field(min_length=1, max_length=64)


class SimulatedMonitor(_Conf):
    """An in-process simulated monitor (demo, training, tests)."""

    kind: Literal["simulated"] = "simulated"
    name: Ident
    device_id: Ident
    bay: Ident
    seed: int = 0
    chunk_s: float = Field(default=0.2, gt=0, le=2)
    nibp_interval_s: float = Field(default=180.0, gt=0)  # cuff cycle; ASA: BP at least every 5 min
    nibp_first_s: float = Field(default=5.0, ge=0)
    #: Send ECG/pleth/CO2 waveforms (off for fast alarm-regression runs, where only the numerics matter).
    waveforms: bool = True
    #: Scenario from simulators/scenarios/ (None: a plain resting patient without drugs).
    scenario: str | None = "uneventful"
    speed: float = Field(default=1.0, gt=0, le=1000)  # 60 = one simulated minute per second
    offset_min: float = Field(default=0.0, ge=0)  # start this far into the scenario
    weight_kg: float | None = Field(default=None, ge=35, le=200)  # overrides the scenario's patient
    #: Advance the device clock by exactly ``chunk_s * speed`` per tick instead of following the wall clock:
    #: an accelerated run on a busy machine then plays slower than ``speed`` rather than skipping ahead in
    #: bursts (regression runs and recordings, where every simulated second must be seen).
    fixed_step: bool = False

    @model_validator(mode="after")
    def _known_scenario(self) -> Self:
        if self.scenario is not None:
            from simulators.scenario import scenario_names

            if self.scenario not in scenario_names():
                raise ValueError(f"unknown scenario {self.scenario!r}; known: {', '.join(scenario_names())}")
        return self


class Hl7MllpMonitor(_Conf):
    """An HL7 v2 (IHE PCD-01) listener over MLLP: monitors and gateways connect and send ORU messages."""

    kind: Literal["hl7_mllp"] = "hl7_mllp"
    name: Ident
    host: str = "127.0.0.1"  # listen address; "0.0.0.0" to accept gateways on the network
    port: int = Field(default=2575, ge=0, le=65535)  # 2575: IANA-registered HL7 port (PROTOCOLS.md §1)
    max_frame_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)  # larger frames are refused with AR
    allow_from: list[IPvAnyNetwork] = Field(default_factory=list)  # source allow-list (empty: any)
    tls_cert: Path | None = None
    tls_key: Path | None = None
    idle_timeout_s: float = Field(default=600.0, gt=0)  # close connections silent for this long
    max_connections: int = Field(default=256, ge=1)  # more are refused (a misbehaving sender cannot exhaust us)

    @model_validator(mode="after")
    def _tls_pair(self) -> Self:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        return self


class SerialMonitor(_Conf):
    """A stand-alone monitor on a serial port (RS-232, USB adapter, pty) or a terminal server.

    ``port`` is a device path (``/dev/ttyUSB0``) or any pyserial URL, e.g. ``socket://host:port`` for a
    serial device server. Masimo ASCII 1 and Nonin data format 2 both default to 9600 baud 8N1
    (PROTOCOLS.md §2). Silence becomes stale/offline in the Supervisor like any other device.
    """

    kind: Literal["serial"] = "serial"
    name: Ident
    device_id: Ident
    bay: Ident
    port: str = Field(min_length=1, max_length=512)
    dialect: Literal["masimo-ascii1", "nonin-df2", "keyvalue"]
    baudrate: int = Field(default=9600, gt=0, le=4_000_000)
    parity: Literal["N", "E", "O", "M", "S"] = "N"
    bytesize: Literal[5, 6, 7, 8] = 8
    stopbits: float = 1
    #: Reopen the port after this long without a byte (a terminal server that vanished without closing).
    idle_reopen_s: float | None = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _stopbits(self) -> Self:
        if self.stopbits not in (1, 1.5, 2):
            raise ValueError("stopbits must be 1, 1.5 or 2")
        return self


MonitorConfig = Annotated[SimulatedMonitor | Hl7MllpMonitor | SerialMonitor, Field(discriminator="kind")]


class Settings(BaseSettings):
    """Everything the server needs, validated at start-up."""

    model_config = SettingsConfigDict(env_prefix="VIGIL_", extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    db_path: Path = Path("vigil.sqlite3")
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    bays: list[BayConfig] = Field(default_factory=list)
    monitors: list[MonitorConfig] = Field(default_factory=list)
    #: Explicit device → bay bindings for adapters that serve many devices (HL7 listeners): device id
    #: (OBX-18 EUI-64, or the sender's MSH-3 id) → bay. Takes precedence over ``locations``.
    bindings: dict[str, str] = Field(default_factory=dict)
    #: HL7 PV1-3 location ``unit^room^bed`` → bay (case and spaces around components ignored).
    locations: dict[str, str] = Field(default_factory=dict)

    #: A device with no data for this long is "stale" (UI greys its values). CLINICAL.md T6 asks for
    #: "NO DATA" within 10 s; 3 s is three missed 1 Hz updates [I].
    stale_after_s: float = Field(default=3.0, gt=0)
    #: ... and "offline" after this long (CLINICAL.md T6: stream lost > 10 s → MEDIUM "NO DATA").
    offline_after_s: float = Field(default=10.0, gt=0)

    #: Browser origins allowed to open the websocket besides the server's own origin.
    allowed_origins: list[str] = Field(default_factory=list)

    hub_replay_buffer: int = Field(default=20_000, ge=100)  # messages kept for resume after a gap
    client_queue_max: int = Field(default=2_000, ge=10)  # pending non-wave messages before a resync
    client_wave_max: int = Field(default=300, ge=1)  # pending wave frames before the oldest are dropped
    station_wave_max_hz: float = Field(default=25.0, gt=0)  # decimated waveforms for station screens

    #: Minimum recovery before discharge readiness. Leave unset: CLINICAL.md Table 5 / §2.4 ask for at least
    #: 30 min after the infusion. Set only for training and demos (e.g. 20 s to walk a whole session through).
    training_recovery_min_s: float | None = Field(default=None, gt=0)

    #: Alarm rules: a profile name from app/alarms/profiles/ or a path to a TOML profile.
    alarm_profile: str = "ketamine_chronic_pain"

    #: IANA time zone in which every screen shows clock times (issue 9.5: times in the clinic's zone, not
    #: the browser's). Default: the server's own zone when it can be determined, else UTC.
    clinic_timezone: str = Field(default_factory=local_timezone_name)

    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    #: Extra time the store waits to gather appends into one transaction. 0: commit as soon as the previous
    #: commit ends (appends made meanwhile share the next one), which keeps HL7 ACKs well under 50 ms.
    store_gather_s: float = Field(default=0.0, ge=0, le=0.05)
    #: SQLite synchronous mode: FULL fsyncs every commit (power-loss safe); NORMAL survives process crashes.
    store_synchronous: Literal["NORMAL", "FULL"] = "FULL"
    #: Storage backend: "sqlite" (one file, ``db_path``; one instance) or "postgres" (``postgres_dsn``;
    #: several instances may share one database, issue 12).
    store: Literal["sqlite", "postgres"] = "sqlite"
    #: asyncpg DSN for store = "postgres", e.g. ``postgresql://vigil@db.example:5432/vigil``.
    postgres_dsn: str | None = None
    #: PostgreSQL schema for Vigil's tables (created if missing); None: the connection's search path.
    postgres_schema: str | None = Field(default=None, pattern=r"^[a-z_][a-z0-9_]{0,62}$")
    #: Full disclosure: record every waveform sample (ECG, pleth, CO2) in compressed segments of this length.
    record_waveforms: bool = True
    record_wave_segment_s: float = Field(default=1.0, ge=0.2, le=10.0)
    #: Retention: delete recorded data older than this many days (None: keep everything). Medical-record
    #: retention periods are set by local law and clinic policy (years, typically), so there is no default.
    retention_days: float | None = Field(default=None, gt=0)
    #: Demo only: keep one finished simulated session on record for the review page.
    demo_review_session: bool = False

    #: Live fan-out (issue 12): "inprocess" (one instance, the default) or "redis" (several instances share one
    #: clinic-wide stream at ``redis_url``; use store = "postgres" so they share one record too).
    hub: Literal["inprocess", "redis"] = "inprocess"
    redis_url: str = "redis://127.0.0.1:6379/0"
    #: Names the clinic's keys in Redis (stream, epoch, alarm leases): instances with the same name form one
    #: cluster; another name is another clinic on the same Redis.
    cluster: Ident = "vigil"
    #: This instance's name in leases and logs (default: host name and process id).
    instance_id: Ident | None = None
    #: Alarm ownership lease (hub = "redis"): an owner that dies loses its bays this long after its last
    #: renewal (renewed every second, or every third of a shorter lease), and another instance takes over. Lease
    #: plus one renewal period must stay inside the 10 s technical-alarm budget (CLINICAL.md T6: NO DATA within
    #: 10 s); 5 s lets a live owner whose event loop stalls for up to 4 s (an overloaded host) keep its bays.
    alarm_lease_s: float = Field(default=5.0, ge=1.0, le=8.0)
    #: Login (issue 11). "required": every page, API route and websocket needs a signed-in user, except the
    #: login page and /healthz. "off": one local user may do everything, for development and automated tests
    #: only, and only on a loopback address (refused with any other host).
    auth: Literal["required", "off"] = "required"
    #: A login session lasts this long (a shift), then the user signs in again.
    session_hours: float = Field(default=12.0, gt=0, le=24 * 7)
    #: The Secure cookie flag. None: set it when the request came over https (directly or, with uvicorn's
    #: proxy headers, through a TLS-terminating proxy).
    cookie_secure: bool | None = None
    #: First start of the demo: besides the admin, one user per clinical role (passwords printed once).
    demo_users: bool = False
    #: Create the first admin (one-time password in the banner) when the store has no account. With several
    #: instances on one database let one of them do it (two starting at once would each print a password).
    bootstrap_admin: bool = True
    #: TLS for the web server (PEM files); both or neither. MLLP listeners have their own (``tls_cert``).
    tls_cert: Path | None = None
    tls_key: Path | None = None

    @field_validator("clinic_timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        if not valid_timezone(v):
            raise ValueError(f"unknown time zone {v!r}: use an IANA name such as 'Europe/Berlin' or 'UTC'")
        return v

    @model_validator(mode="after")
    def _check(self) -> Self:
        bay_ids = [b.id for b in self.bays]
        if len(set(bay_ids)) != len(bay_ids):
            raise ValueError("bay ids must be unique")
        if "unassigned" in bay_ids:
            raise ValueError("'unassigned' is reserved for devices bound to no bay")
        names = [m.name for m in self.monitors]
        if len(set(names)) != len(names):
            raise ValueError("monitor names must be unique")
        for m in self.monitors:
            if isinstance(m, SimulatedMonitor | SerialMonitor) and m.bay not in bay_ids:
                raise ValueError(f"monitor {m.name!r} is bound to unknown bay {m.bay!r}")
        for dev, bay in self.bindings.items():
            if bay not in bay_ids:
                raise ValueError(f"binding of {dev!r} names unknown bay {bay!r}")
        for loc, bay in self.locations.items():
            if bay not in bay_ids:
                raise ValueError(f"location {loc!r} names unknown bay {bay!r}")
        if self.offline_after_s <= self.stale_after_s:
            raise ValueError("offline_after_s must be longer than stale_after_s")
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be at least backoff_initial_s")
        if self.auth == "off" and self.host not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError('auth = "off" is only allowed on a loopback address (host 127.0.0.1 or ::1)')
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key go together")
        if self.store == "postgres" and not self.postgres_dsn:
            raise ValueError('store = "postgres" needs postgres_dsn')
        from app.alarms.profile import load_profile  # refuse a bad profile at start-up, naming rule and field

        load_profile(self.alarm_profile)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then environment, then the TOML file (if any)."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))


def load_settings(config_file: Path | None = None, **overrides: object) -> Settings:
    """Build Settings from the environment and, when given, a TOML file (which must exist)."""
    if config_file is None:
        return Settings(**overrides)  # type: ignore[arg-type]
    if not config_file.is_file():
        raise FileNotFoundError(f"config file not found: {config_file}")

    class _FromFile(Settings):
        model_config = SettingsConfigDict(toml_file=config_file)

    return Settings.model_validate(_FromFile(**overrides).model_dump())  # type: ignore[arg-type]


def demo_settings(
    port: int = 8000, host: str = "127.0.0.1", db_path: Path | None = None, hl7_port: int | None = 2575
) -> Settings:
    """Four bays, each with a simulated monitor, plus an HL7 MLLP listener (what ``vigil demo`` runs).

    HL7 devices that send PV1-3 ``DEMO^BAYn^1`` are shown in bay n only if that bay has no simulated
    monitor; others appear under "Unassigned devices".
    """
    bays = [BayConfig(id=f"bay{i}", label=f"Bay {i}") for i in range(1, 5)]
    # A mix of scenarios, each started a little before its event so the demo shows it within minutes;
    # none has a sensor artifact or a disconnect in its first minutes.
    mix = [("uneventful", 0.0), ("hypertension", 15.0), ("oversedation", 22.0), ("emergence", 42.0)]
    monitors = [
        SimulatedMonitor(
            name=f"sim{i}",
            device_id=f"sim-monitor-{i}",
            bay=f"bay{i}",
            seed=i,
            nibp_first_s=3.0 + 2 * i,
            scenario=scenario,
            offset_min=offset,
        )
        for i, (scenario, offset) in enumerate(mix, start=1)
    ]
    listeners: list[MonitorConfig] = []
    if hl7_port is not None:
        listeners.append(Hl7MllpMonitor(name="hl7", host=host, port=hl7_port))
    return Settings(
        host=host,
        port=port,
        db_path=db_path or Path("vigil-demo.sqlite3"),
        bays=bays,
        monitors=[*monitors, *listeners],
        demo_review_session=True,
        demo_users=True,
    )
