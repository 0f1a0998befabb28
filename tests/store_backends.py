"""The store test suites run against every backend: SQLite (a file under tmp_path) and PostgreSQL (a fresh
schema per test in the server at VIGIL_TEST_POSTGRES_DSN, default postgresql://postgres@127.0.0.1:5432/test,
dropped afterwards). The PostgreSQL case skips, saying why, when no server answers there.

Fixtures (registered in tests/conftest.py): ``store_backend`` (a factory for stores on this test's database) and
``any_store`` (one opened store, closed after the test); ``postgres_schema`` (a fresh schema on its own).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from app.store.postgres import PostgresStore
from app.store.sqlite import SQLiteStore

POSTGRES_DSN = os.environ.get("VIGIL_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgres")

AnyStore = SQLiteStore | PostgresStore


@dataclass
class Backend:
    """One test's database on one backend; ``make`` returns a new, unopened store on it."""

    kind: str
    make: Callable[..., AnyStore]
    #: what a refused append (a broken UNIQUE constraint) fails with
    integrity_error: type[BaseException]


@dataclass(frozen=True)
class PgSchema:
    """A fresh, empty schema in the test PostgreSQL server."""

    dsn: str
    name: str

    @property
    def dsn_with_search_path(self) -> str:
        """The DSN with this schema as search path (asyncpg passes unknown query parameters as settings)."""
        return f"{self.dsn}{'&' if '?' in self.dsn else '?'}search_path={self.name}"


@contextlib.asynccontextmanager
async def pg_schema() -> AsyncIterator[PgSchema]:
    """A schema of its own (created empty, dropped with everything in it afterwards); skips the test
    when the server does not answer."""
    try:
        conn = await asyncpg.connect(POSTGRES_DSN, timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        pytest.skip(
            f"PostgreSQL not reachable at {POSTGRES_DSN} ({type(e).__name__}: {e}); set VIGIL_TEST_POSTGRES_DSN"
        )
    name = f"test_{secrets.token_hex(6)}"
    try:
        await conn.execute(f"CREATE SCHEMA {name}")
        yield PgSchema(POSTGRES_DSN, name)
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        await conn.close()


@pytest.fixture
async def postgres_schema() -> AsyncIterator[PgSchema]:
    """A fresh PostgreSQL schema for one test."""
    async with pg_schema() as schema:
        yield schema


@pytest.fixture(params=BACKENDS)
async def store_backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """A factory for stores on this test's database, for each backend in turn."""
    if request.param == "sqlite":
        path = tmp_path / "store.sqlite3"

        def make_sqlite(**kw: Any) -> AnyStore:
            return SQLiteStore(path, **kw)

        yield Backend("sqlite", make_sqlite, sqlite3.IntegrityError)
        return
    async with pg_schema() as schema:

        def make_pg(**kw: Any) -> AnyStore:
            kw.pop("synchronous", None)  # SQLite's fsync mode; PostgreSQL commits are durable (synchronous_commit)
            return PostgresStore(schema.dsn, schema=schema.name, **kw)

        yield Backend("postgres", make_pg, asyncpg.UniqueViolationError)


@pytest.fixture
async def any_store(store_backend: Backend) -> AsyncIterator[AnyStore]:
    """An opened store on each backend, closed after the test."""
    s = store_backend.make()
    await s.open()
    try:
        yield s
    finally:
        await s.close()
