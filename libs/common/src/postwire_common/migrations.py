"""Schema migrations: one Alembic history per service, in that service's schema.

Each service ships ``postwire_<name>/migrations/`` with an ``env.py`` that calls
:func:`run_env` and a ``versions/`` folder; the version table lives in the service's own
schema, so services migrate independently. ``postwire migrate`` runs them all.

To add a revision: copy the newest file in ``versions/``, give it a new ``revision`` and
set ``down_revision`` to the one before.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, pool, text
from sqlalchemy.ext.asyncio import create_async_engine


@dataclass(frozen=True)
class MigrationSet:
    service: str  # also the schema name
    script_location: str  # "postwire_ingest:migrations"


def _sqlalchemy_url(database_url: str) -> str:
    scheme, sep, rest = database_url.partition("://")
    if scheme in ("postgres", "postgresql"):
        return f"postgresql+asyncpg{sep}{rest}"
    return database_url


def upgrade(database_url: str, migration: MigrationSet, revision: str = "head") -> None:
    """Bring ``migration.service``'s schema to ``revision`` (synchronous; own event loop)."""
    config = Config()
    config.set_main_option("script_location", migration.script_location)
    # ConfigParser treats % as interpolation; URLs may contain %-escapes.
    config.set_main_option("sqlalchemy.url", _sqlalchemy_url(database_url).replace("%", "%%"))
    config.attributes["schema"] = migration.service
    command.upgrade(config, revision)


def execute_script(script: str) -> None:
    """Run DDL written as one script, one statement at a time.

    The asyncpg driver prepares every statement and refuses several in one; statements
    here end with ``;`` at the end of a line, which DDL in these scripts never contains
    otherwise.
    """
    from alembic import op

    for statement in re.split(r";\s*$", script, flags=re.MULTILINE):
        if statement.strip():
            op.execute(statement)


def daily_partitions(table: str, column: str, source: str) -> str:
    """SQL making ``table``'s daily partitions (UTC) for yesterday through three days
    ahead and for every day that rows of ``source`` (the table being converted) fall on,
    named as ``postwire_common.partitions`` names them. One statement: no line of it ends
    in a semicolon, where :func:`execute_script` splits."""
    schema, _, name = table.partition(".")
    return f"""
        DO $$ DECLARE day date; BEGIN
            FOR day IN SELECT generate_series(current_date - 1, current_date + 3, '1 day')::date
                UNION SELECT DISTINCT ({column} AT TIME ZONE 'UTC')::date FROM {source}
            LOOP EXECUTE format(
                'CREATE TABLE IF NOT EXISTS {schema}.{name}_p%s PARTITION OF {table} '
                'FOR VALUES FROM (%L) TO (%L)',
                to_char(day, 'YYYYMMDD'), day::timestamp AT TIME ZONE 'UTC',
                (day + 1)::timestamp AT TIME ZONE 'UTC')
            ; END LOOP; END $$;
    """  # noqa: S608 - names are our migrations' constants


def run_env() -> None:
    """Body of every service's ``migrations/env.py``."""
    from alembic import context

    schema: str = context.config.attributes["schema"]
    url = context.config.get_main_option("sqlalchemy.url")
    assert url

    def run(connection: Connection) -> None:
        connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        context.configure(
            connection=connection,
            version_table_schema=schema,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def main() -> None:
        engine = create_async_engine(url, poolclass=pool.NullPool)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(run)
        finally:
            await engine.dispose()

    if context.is_offline_mode():
        raise SystemExit("postwire migrations run online only (they need the database)")
    asyncio.run(main())
