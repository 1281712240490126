"""PostgreSQL access: one asyncpg pool per service, JSON columns as Python values.

Each service keeps its SQL in its own ``store.py`` and its tables in its own schema
(``ingest``, ``delivery``, ``events``, ``notifier``); nothing here knows any table.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit, urlunsplit

import asyncpg


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Replaces asyncpg's reset on release (``RESET ALL; UNLISTEN *; ...``, one round trip
    per release). Our code keeps no session state: no SET, no LISTEN on pooled
    connections, only transaction-scoped advisory locks."""


def new_pool(database_url: str, *, size: int = 10) -> asyncpg.Pool:
    """A pool that connects when first awaited (``await pool``), so the objects that use
    it can be wired up before the service starts. Call inside the running loop."""
    return asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=size,
        init=_init_connection,
        reset=_keep_session,
        command_timeout=60,
        max_inactive_connection_lifetime=300,
    )


async def create_pool(database_url: str, *, size: int = 10) -> asyncpg.Pool:
    pool = new_pool(database_url, size=size)
    await pool
    return pool


async def probe(database_url: str) -> None:
    """Connect once and disconnect; raises what ``asyncpg.connect`` raises."""
    conn = await asyncpg.connect(database_url, timeout=5)
    await conn.close()


async def ping(pool: asyncpg.Pool) -> bool:
    try:
        async with pool.acquire(timeout=2) as conn:
            return bool(await conn.fetchval("SELECT true", timeout=2))
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False


async def identity(pool: asyncpg.Pool) -> str:
    """Which database this is, across connections and processes: the cluster's system
    identifier (where readable) and the database's name. (A database dropped and made
    again under its name is the same deployment.)"""
    async with pool.acquire() as conn:
        name = await conn.fetchval("SELECT current_database()")
        try:
            system = await conn.fetchval("SELECT system_identifier FROM pg_control_system()")
        except asyncpg.InsufficientPrivilegeError:
            system = "-"
    return f"{system}/{name}"


def database_name(database_url: str) -> str:
    return urlsplit(database_url).path.lstrip("/") or "postgres"


def with_database(database_url: str, name: str) -> str:
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def ensure_database(database_url: str) -> bool:
    """Create the database named in ``database_url`` if it does not exist; True if created.

    The maintenance database is used only when the target is missing, so this works where
    connecting to ``postgres`` is not allowed (PgBouncer, managed PostgreSQL).
    """
    try:
        await probe(database_url)
        return False
    except asyncpg.InvalidCatalogNameError:
        pass
    name = database_name(database_url)
    conn = await asyncpg.connect(with_database(database_url, "postgres"))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            await conn.execute(f"CREATE DATABASE {quoted}")
        except asyncpg.DuplicateDatabaseError:
            return False  # created concurrently by another migrator
        return True
    finally:
        await conn.close()


async def drop_database(database_url: str) -> None:
    name = database_name(database_url)
    conn = await asyncpg.connect(with_database(database_url, "postgres"))
    try:
        quoted = '"' + name.replace('"', '""') + '"'
        await conn.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        await conn.close()
