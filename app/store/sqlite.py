"""SQLite implementation of the Store (WAL mode, one writer thread, group commit).

All writes go through one thread that owns the write connection, so the event loop never blocks on disk.
Appends made while a commit runs are committed together in the next transaction (group commit), plus an
optional ``gather_s`` wait; each append's future resolves after its commit. Reads use a second connection
on another thread (WAL lets them run beside the writer).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from app.alarms.model import AlarmEvent
from app.recording.model import WaveSegment
from app.security.model import AuditEvent, LoginSession, UserAccount
from app.sessions.model import Patient, SessionEvent
from app.store.base import Record, StoredReading, StoredSessionEvent, StoredStatus
from app.store.common import (
    MAX_SEGMENT_S,
    GroupCommitter,
    StreamKey,
    device_alarm,
    raw_message,
    sort_records,
    statements,
    stored_readings,
    stored_status,
    wave_segments,
    where,
)
from monitors.models import DeviceAlarm, RawMessage

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
# Numerics: one row per observation set (a device's values at one device time), the values as a JSON object
# {param: value|null} and the non-"valid" qualities in ``q``: ~100 bytes per second per device instead of
# ~120 bytes per value. Units are the catalogue's (Reading validates them), so they are not stored. The
# ``readings`` view expands the sets back into one row per value for ad-hoc SQL.
# Waveforms: one row per ~1 s segment of one channel, keyed by (stream, t0) without a rowid, the samples
# encoded by app/recording/codec.py; stream metadata (bay, device, channel, rate, unit, gain) is stored once.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    id INTEGER PRIMARY KEY,
    bay TEXT,
    device_id TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS sources_key ON sources (coalesce(bay, ''), device_id);
CREATE TABLE IF NOT EXISTS obs (
    id INTEGER PRIMARY KEY,
    src INTEGER NOT NULL REFERENCES sources (id),
    t_device REAL NOT NULL,
    t_received REAL NOT NULL,
    n INTEGER NOT NULL,
    vals TEXT NOT NULL,
    q TEXT
);
CREATE INDEX IF NOT EXISTS obs_src_t ON obs (src, t_device);
CREATE VIEW IF NOT EXISTS readings AS
    SELECT s.bay AS bay, s.device_id AS device_id, j.key AS param, j.value AS value,
           coalesce(json_extract(o.q, '$.' || j.key), 'valid') AS quality,
           o.t_device AS t_device, o.t_received AS t_received
    FROM obs o JOIN sources s ON s.id = o.src, json_each(o.vals) j;
CREATE TABLE IF NOT EXISTS wave_streams (
    id INTEGER PRIMARY KEY,
    bay TEXT,
    device_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    fs REAL NOT NULL,
    unit TEXT NOT NULL,
    gain REAL NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS wave_streams_key
    ON wave_streams (coalesce(bay, ''), device_id, channel, fs, unit, gain);
CREATE TABLE IF NOT EXISTS waves (
    stream INTEGER NOT NULL,
    t0 REAL NOT NULL,
    n INTEGER NOT NULL,
    codec INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (stream, t0)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_status (
    id INTEGER PRIMARY KEY,
    bay TEXT,
    device_id TEXT NOT NULL,
    state TEXT NOT NULL,
    since REAL NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS device_status_device ON device_status (device_id, since);
CREATE TABLE IF NOT EXISTS device_alarms (
    id INTEGER PRIMARY KEY,
    bay TEXT,
    device_id TEXT NOT NULL,
    code TEXT NOT NULL,
    priority TEXT NOT NULL,
    alarm_kind TEXT NOT NULL,
    text TEXT NOT NULL,
    t REAL NOT NULL,
    active INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS device_alarms_device ON device_alarms (device_id, t);
CREATE TABLE IF NOT EXISTS raw_messages (
    id INTEGER PRIMARY KEY,
    bay TEXT,
    protocol TEXT NOT NULL,
    source TEXT NOT NULL,
    received REAL NOT NULL,
    control_id TEXT,
    outcome TEXT NOT NULL,
    detail TEXT NOT NULL,
    device_id TEXT,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS raw_messages_control ON raw_messages (control_id);
CREATE TABLE IF NOT EXISTS alarm_events (
    id INTEGER PRIMARY KEY,
    bay TEXT,
    t REAL NOT NULL,
    kind TEXT NOT NULL,
    rule_id TEXT,
    alarm_id TEXT,
    priority TEXT,
    user TEXT,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alarm_events_bay_t ON alarm_events (bay, t);
CREATE TABLE IF NOT EXISTS patients (
    id TEXT PRIMARY KEY,
    identifier TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL,
    bay TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_patient ON sessions (patient_id, created);
CREATE TABLE IF NOT EXISTS session_events (
    id INTEGER PRIMARY KEY,
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    t REAL NOT NULL,
    kind TEXT NOT NULL,
    user TEXT NOT NULL,
    payload TEXT NOT NULL,
    UNIQUE (session_id, seq)
);
CREATE TABLE IF NOT EXISTS accounts (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL,
    t REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS logins (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL,
    username TEXT NOT NULL,
    t REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logins_token ON logins (token_hash, id);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    t REAL NOT NULL,
    user TEXT NOT NULL,
    action TEXT NOT NULL,
    bay TEXT,
    session_id TEXT,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_t ON audit (t);
"""
TABLES = (
    "readings",
    "waves",
    "device_status",
    "device_alarms",
    "raw_messages",
    "alarm_events",
    "patients",
    "sessions",
    "session_events",
    "accounts",
    "logins",
    "audit",
)
_SESSION_EVENT: TypeAdapter[StoredSessionEvent] = TypeAdapter(SessionEvent)

#: Errors that retrying cannot fix: a constraint, or a record that cannot be encoded (e.g. an out-of-range
#: sample). A batch failing with one is retried append by append so that only the bad append fails.
_REFUSED = (sqlite3.IntegrityError, ValueError, OverflowError, TypeError)


def _refused(e: BaseException) -> bool:
    return isinstance(e, _REFUSED)


def _migrate_v1(conn: sqlite3.Connection) -> None:
    """Schema 1 stored one row per value in ``readings``: move them into observation sets of one value."""
    conn.execute("ALTER TABLE readings RENAME TO readings_v1")
    for stmt in statements(_SCHEMA):
        conn.execute(stmt)
    conn.execute("INSERT OR IGNORE INTO sources (bay, device_id) SELECT DISTINCT bay, device_id FROM readings_v1")
    conn.execute(
        "INSERT INTO obs (src, t_device, t_received, n, vals, q)"
        " SELECT s.id, r.t_device, r.t_received, 1, json_object(r.param, r.value),"
        " CASE WHEN r.quality = 'valid' THEN NULL ELSE json_object(r.param, r.quality) END"
        " FROM readings_v1 r JOIN sources s ON s.device_id = r.device_id AND coalesce(s.bay, '') = coalesce(r.bay, '')"
        " ORDER BY r.id"
    )
    conn.execute("DROP TABLE readings_v1")
    log.info("store migrated from schema 1 to 2 (observation sets, waveform segments)")


def _ts(t: datetime) -> float:
    return t.timestamp()


def _dt(x: float) -> datetime:
    return datetime.fromtimestamp(x, UTC)


class SQLiteStore:
    """The default Store: one SQLite file in WAL mode."""

    def __init__(self, path: Path, *, gather_s: float = 0.0, synchronous: str = "FULL") -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous must be NORMAL or FULL")
        self.path = path
        self._gather = gather_s
        self._synchronous = synchronous
        self._wexec = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vigil-store-w")
        self._rexec = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vigil-store-r")
        self._wconn: sqlite3.Connection | None = None
        # id caches, used only on the writer thread
        self._sources: dict[tuple[str | None, str], int] = {}
        self._streams: dict[StreamKey, int] = {}
        self._rconn: sqlite3.Connection | None = None
        self._writer = GroupCommitter(self._commit, _refused, gather_s=gather_s, name="store:sqlite-writer")

    @property
    def committed_records(self) -> int:
        """Records committed since the store was opened."""
        return self._writer.committed_records

    # ---- lifecycle ---------------------------------------------------------------------------

    async def open(self) -> None:
        """Open both connections, apply the schema and start the writer task."""
        loop = asyncio.get_running_loop()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._wconn = await loop.run_in_executor(self._wexec, self._open_writer)
        self._rconn = await loop.run_in_executor(self._rexec, self._open_reader)
        self._writer.start()

    def _open_writer(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL: each commit is on disk before its futures resolve (power-loss safe); NORMAL: survives a
        # process crash, not a power cut. Group commit amortises the fsync over everything gathered.
        conn.execute(f"PRAGMA synchronous={self._synchronous}")
        conn.execute("PRAGMA busy_timeout=5000")
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise RuntimeError(f"{self.path} has schema {version}, newer than this Vigil ({SCHEMA_VERSION})")
        conn.execute("BEGIN IMMEDIATE")
        try:
            if version == 1:
                _migrate_v1(conn)
            for stmt in statements(_SCHEMA):
                conn.execute(stmt)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._load_ids(conn)
        return conn

    def _load_ids(self, conn: sqlite3.Connection) -> None:
        self._sources = {(bay, dev): i for i, bay, dev in conn.execute("SELECT id, bay, device_id FROM sources")}
        self._streams = {
            (bay, dev, ch, fs, unit, gain): i
            for i, bay, dev, ch, fs, unit, gain in conn.execute(
                "SELECT id, bay, device_id, channel, fs, unit, gain FROM wave_streams"
            )
        }

    def _open_reader(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    async def close(self) -> None:
        """Commit what is pending, stop the writer and close both connections."""
        if not self._writer.running:
            return
        await self.flush()
        await self._writer.stop()
        loop = asyncio.get_running_loop()
        if self._wconn is not None:
            await loop.run_in_executor(self._wexec, self._wconn.close)
        if self._rconn is not None:
            await loop.run_in_executor(self._rexec, self._rconn.close)
        self._wexec.shutdown(wait=True)
        self._rexec.shutdown(wait=True)

    # ---- writing -----------------------------------------------------------------------------

    def append(self, records: Sequence[Record]) -> asyncio.Future[None]:
        """Queue records for the next group commit."""
        return self._writer.append(records)

    async def flush(self) -> None:
        """Wait for everything appended so far to be committed."""
        await self._writer.flush()

    async def _commit(self, records: list[Record], attempts: int) -> BaseException | None:
        """Write records in one transaction, retrying transient errors; the error if it finally failed."""
        loop = asyncio.get_running_loop()
        error: BaseException | None = None
        for attempt in range(1, attempts + 1):
            try:
                await loop.run_in_executor(self._wexec, self._write_sync, records)
                return None
            except _REFUSED as e:  # will not succeed by retrying
                log.error("store commit refused: %s", e)
                return e
            except sqlite3.Error as e:  # locked, disk full, I/O error
                error = e
                log.error("store commit failed (attempt %d/%d): %s", attempt, attempts, e)
                await asyncio.sleep(0.1 * attempt)
        return error

    def _write_sync(self, records: list[Record]) -> None:
        conn = self._wconn
        assert conn is not None
        out = sort_records(records, _ts)
        obs, waves, statuses, alarms, raws = out.obs, out.waves, out.statuses, out.alarms, out.raws
        events, patients, sessions, session_events = out.events, out.patients, out.sessions, out.session_events
        accounts, logins, audit = out.accounts, out.logins, out.audit
        conn.execute("BEGIN")
        try:
            if obs:
                rows: list[tuple[Any, ...]] = []
                for (bay, dev, t, tr), sets in obs.items():
                    src = self._source(conn, bay, dev)
                    for vs in sets:
                        vals = json.dumps({p: v for p, (v, _) in vs.items()}, separators=(",", ":"))
                        bad = {p: q for p, (_, q) in vs.items() if q != "valid"}
                        q = json.dumps(bad, separators=(",", ":")) if bad else None
                        rows.append((src, t, tr, len(vs), vals, q))
                conn.executemany(
                    "INSERT INTO obs (src, t_device, t_received, n, vals, q) VALUES (?, ?, ?, ?, ?, ?)", rows
                )
            if waves:
                # A segment already stored at the same time (a device resending) is the same data: ignore it.
                conn.executemany(
                    "INSERT OR IGNORE INTO waves (stream, t0, n, codec, data) VALUES (?, ?, ?, ?, ?)",
                    [(self._stream(conn, key), t0, n, c, d) for key, t0, n, c, d in waves],
                )
            if statuses:
                conn.executemany(
                    "INSERT INTO device_status (bay, device_id, state, since, detail) VALUES (?, ?, ?, ?, ?)", statuses
                )
            if alarms:
                conn.executemany(
                    "INSERT INTO device_alarms (bay, device_id, code, priority, alarm_kind, text, t, active)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    alarms,
                )
            if raws:
                conn.executemany(
                    "INSERT INTO raw_messages (bay, protocol, source, received, control_id, outcome, detail,"
                    " device_id, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    raws,
                )
            if events:
                conn.executemany(
                    "INSERT INTO alarm_events (bay, t, kind, rule_id, alarm_id, priority, user, payload)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    events,
                )
            if patients:
                conn.executemany(
                    "INSERT INTO patients (id, identifier, created, payload) VALUES (?, ?, ?, ?)", patients
                )
            if sessions:
                conn.executemany("INSERT INTO sessions (id, patient_id, bay, created) VALUES (?, ?, ?, ?)", sessions)
            if session_events:
                conn.executemany(
                    "INSERT INTO session_events (session_id, seq, t, kind, user, payload) VALUES (?, ?, ?, ?, ?, ?)",
                    session_events,
                )
            if accounts:
                conn.executemany("INSERT INTO accounts (username, t, payload) VALUES (?, ?, ?)", accounts)
            if logins:
                conn.executemany("INSERT INTO logins (token_hash, username, t, payload) VALUES (?, ?, ?, ?)", logins)
            if audit:
                conn.executemany(
                    "INSERT INTO audit (t, user, action, bay, session_id, payload) VALUES (?, ?, ?, ?, ?, ?)", audit
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            self._load_ids(conn)  # ids cached during the failed transaction were rolled back
            raise

    def _source(self, conn: sqlite3.Connection, bay: str | None, device_id: str) -> int:
        key = (bay, device_id)
        i = self._sources.get(key)
        if i is None:
            cur = conn.execute("INSERT INTO sources (bay, device_id) VALUES (?, ?)", key)
            i = self._sources[key] = int(cur.lastrowid or 0)
        return i

    def _stream(self, conn: sqlite3.Connection, key: StreamKey) -> int:
        i = self._streams.get(key)
        if i is None:
            cur = conn.execute(
                "INSERT INTO wave_streams (bay, device_id, channel, fs, unit, gain) VALUES (?, ?, ?, ?, ?, ?)", key
            )
            i = self._streams[key] = int(cur.lastrowid or 0)
        return i

    # ---- reading -----------------------------------------------------------------------------

    async def _query(self, sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        conn = self._rconn
        if conn is None:
            raise RuntimeError("store is not open")

        def run() -> list[tuple[Any, ...]]:
            return conn.execute(sql, args).fetchall()

        return await asyncio.get_running_loop().run_in_executor(self._rexec, run)

    async def _select(
        self, head: str, filters: Sequence[tuple[str, Any]], order: str, limit: int
    ) -> list[tuple[Any, ...]]:
        """``head`` WHERE the clauses whose value is not None ORDER BY ``order`` LIMIT ``limit``."""
        clauses, args = where(filters, lambda _: "?")
        return await self._query(f"{head}{clauses} ORDER BY {order} LIMIT ?", [*args, limit])

    async def readings(
        self,
        *,
        bay: str | None = None,
        device_id: str | None = None,
        param: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 10_000,
    ) -> list[StoredReading]:
        """Readings in device-time order, filtered by any of the arguments."""
        rows = await self._select(
            "SELECT s.bay, s.device_id, o.vals, o.q, o.t_device, o.t_received"
            " FROM obs o JOIN sources s ON s.id = o.src",
            [
                ("s.bay = {}", bay),
                ("s.device_id = {}", device_id),
                ("o.vals LIKE {}", None if param is None else f'%"{param}":%'),  # narrows; exact test below
                ("o.t_device >= {}", None if since is None else _ts(since)),
                ("o.t_device < {}", None if until is None else _ts(until)),
            ],
            "o.t_device, o.id",
            limit if param is None else -1,
        )

        def decode() -> list[StoredReading]:  # on the reader thread: 30k readings take ~0.3 s to build
            sets = []
            for r_bay, dev, vals, q, t, tr in rows:
                qualities: dict[str, str] = json.loads(q) if q else {}
                values = [(p, v, qualities.get(p)) for p, v in json.loads(vals).items()]
                sets.append((r_bay, dev, values, _dt(t), _dt(tr)))
            return stored_readings(sets, param=param, limit=limit)

        return await asyncio.get_running_loop().run_in_executor(self._rexec, decode)

    async def waveforms(
        self,
        *,
        bay: str | None = None,
        device_id: str | None = None,
        channel: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100_000,
    ) -> list[WaveSegment]:
        """Waveform segments overlapping [since, until), decoded, in (t0, channel) order."""
        rows = await self._select(
            "SELECT s.bay, s.device_id, s.channel, s.fs, s.unit, s.gain, w.t0, w.n, w.codec, w.data"
            " FROM waves w JOIN wave_streams s ON s.id = w.stream",
            [
                ("s.bay = {}", bay),
                ("s.device_id = {}", device_id),
                ("s.channel = {}", channel),
                # segments are at most a few seconds long: start a little early, then test the overlap
                ("w.t0 >= {}", None if since is None else _ts(since) - MAX_SEGMENT_S),
                ("w.t0 < {}", None if until is None else _ts(until)),
            ],
            "w.t0, s.channel",
            limit,
        )

        def decode() -> list[WaveSegment]:
            return wave_segments(rows, _dt, since)

        return await asyncio.get_running_loop().run_in_executor(self._rexec, decode)

    async def statuses(
        self,
        *,
        device_id: str | None = None,
        bay: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 10_000,
    ) -> list[StoredStatus]:
        """Device status changes in time order."""
        rows = await self._select(
            "SELECT bay, device_id, state, since, detail FROM device_status",
            [
                ("device_id = {}", device_id),
                ("bay = {}", bay),
                ("since >= {}", None if since is None else _ts(since)),
                ("since < {}", None if until is None else _ts(until)),
            ],
            "since, id",
            limit,
        )
        return [stored_status(r[0], r[1], r[2], _dt(r[3]), r[4]) for r in rows]

    async def device_alarms(
        self,
        *,
        device_id: str | None = None,
        bay: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 10_000,
    ) -> list[DeviceAlarm]:
        """Device-reported alarms in time order."""
        rows = await self._select(
            "SELECT device_id, code, priority, alarm_kind, text, t, active FROM device_alarms",
            [
                ("device_id = {}", device_id),
                ("bay = {}", bay),
                ("t >= {}", None if since is None else _ts(since)),
                ("t < {}", None if until is None else _ts(until)),
            ],
            "t, id",
            limit,
        )
        return [device_alarm(r[0], r[1], r[2], r[3], r[4], _dt(r[5]), r[6]) for r in rows]

    async def raw_messages(
        self, *, control_id: str | None = None, outcome: str | None = None, limit: int = 10_000
    ) -> list[RawMessage]:
        """Archived device messages in arrival order."""
        rows = await self._select(
            "SELECT protocol, source, received, control_id, outcome, detail, device_id, payload FROM raw_messages",
            [("control_id = {}", control_id), ("outcome = {}", outcome)],
            "id",
            limit,
        )
        return [raw_message(r[0], r[1], _dt(r[2]), r[3], r[4], r[5], r[6], r[7]) for r in rows]

    async def alarm_events(
        self,
        *,
        bay: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1_000,
        oldest_first: bool = False,
    ) -> list[tuple[str | None, AlarmEvent]]:
        """The alarm log (bay, event), newest first (or oldest first)."""
        rows = await self._select(
            "SELECT bay, payload FROM alarm_events",
            [
                ("bay = {}", bay),
                ("t >= {}", None if since is None else _ts(since)),
                ("t < {}", None if until is None else _ts(until)),
            ],
            "t, id" if oldest_first else "t DESC, id DESC",
            limit,
        )
        return [(r[0], AlarmEvent.model_validate_json(r[1])) for r in rows]

    async def patients(self) -> list[Patient]:
        """Every registered patient, in registration order."""
        rows = await self._query("SELECT payload FROM patients ORDER BY created, rowid", ())
        return [Patient.model_validate_json(r[0]) for r in rows]

    async def session_events(self, *, session_id: str | None = None) -> list[StoredSessionEvent]:
        """Session events (all sessions, or one) in the order they were recorded."""
        sql = "SELECT payload FROM session_events"
        args: list[Any] = []
        if session_id is not None:
            sql += " WHERE session_id = ?"
            args.append(session_id)
        sql += " ORDER BY id"
        rows = await self._query(sql, args)
        return [_SESSION_EVENT.validate_json(r[0]) for r in rows]

    async def accounts(self) -> list[UserAccount]:
        """Every version of every user account, oldest first."""
        rows = await self._query("SELECT payload FROM accounts ORDER BY id", ())
        return [UserAccount.model_validate_json(r[0]) for r in rows]

    async def login_session(self, token_hash: str) -> LoginSession | None:
        """The newest version of a login session, or None."""
        rows = await self._query(
            "SELECT payload FROM logins WHERE token_hash = ? ORDER BY id DESC LIMIT 1", (token_hash,)
        )
        return LoginSession.model_validate_json(rows[0][0]) if rows else None

    async def audit_events(
        self,
        *,
        user: str | None = None,
        bay: str | None = None,
        session_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 1_000,
    ) -> list[AuditEvent]:
        """The audit trail, newest first."""
        rows = await self._select(
            "SELECT payload FROM audit",
            [
                ("user = {}", user),
                ("bay = {}", bay),
                ("session_id = {}", session_id),
                ("t >= {}", None if since is None else _ts(since)),
                ("t < {}", None if until is None else _ts(until)),
            ],
            "t DESC, id DESC",
            limit,
        )
        return [AuditEvent.model_validate_json(r[0]) for r in rows]

    async def count(self, table: str) -> int:
        """Rows in one of the record kinds."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        if table == "readings":
            rows = await self._query("SELECT coalesce(sum(n), 0) FROM obs", ())
        else:
            rows = await self._query(f"SELECT count(*) FROM {table}", ())
        return int(rows[0][0])

    async def purge(self, before: datetime) -> dict[str, int]:
        """Retention: delete what is older than ``before`` (sessions only once they ended before it)."""
        await self.flush()
        cutoff = _ts(before)

        def run() -> dict[str, int]:
            conn = self._wconn
            assert conn is not None
            deleted: dict[str, int] = {}
            conn.execute("BEGIN IMMEDIATE")
            try:
                ended = [
                    sid
                    for (sid,) in conn.execute(
                        "SELECT session_id FROM session_events GROUP BY session_id HAVING max(t) < ?"
                        " AND sum(json_extract(payload, '$.to_phase') IN ('discharged', 'aborted')) > 0",
                        (cutoff,),
                    )
                ]
                for sid in ended:
                    conn.execute("DELETE FROM session_events WHERE session_id = ?", (sid,))
                    conn.execute("DELETE FROM sessions WHERE id = ?", (sid,))
                deleted["sessions"] = len(ended)
                for table, column in (
                    ("obs", "t_device"),
                    ("waves", "t0"),
                    ("device_status", "since"),
                    ("device_alarms", "t"),
                    ("raw_messages", "received"),
                    ("alarm_events", "t"),
                ):
                    cur = conn.execute(f"DELETE FROM {table} WHERE {column} < ?", (cutoff,))
                    deleted[table] = cur.rowcount
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return deleted

        deleted = await asyncio.get_running_loop().run_in_executor(self._wexec, run)
        if any(deleted.values()):
            log.info("retention: deleted %s (older than %s)", deleted, before.isoformat())
        return deleted
