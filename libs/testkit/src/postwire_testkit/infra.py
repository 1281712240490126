"""Throwaway PostgreSQL databases and RabbitMQ vhosts, so test runs never share state."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from urllib.parse import quote, urlsplit, urlunsplit

from postwire_common import db

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/"


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@asynccontextmanager
async def temp_database(base_url: str = DEFAULT_DATABASE_URL) -> AsyncIterator[str]:
    url = db.with_database(base_url, unique_name("postwire_test"))
    await db.ensure_database(url)
    try:
        yield url
    finally:
        await db.drop_database(url)


def _rabbitmqctl(*args: str) -> str:
    tool = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    done = subprocess.run(  # noqa: S603
        [tool, "-q", *args], check=True, capture_output=True, timeout=60, text=True
    )
    return done.stdout


@contextmanager
def temp_vhost(base_url: str = DEFAULT_BROKER_URL) -> Iterator[str]:
    """A new vhost (via rabbitmqctl) with the URL's user given full rights on it; the
    account broker users (``acct-…``) permitted on it go with it."""
    name = unique_name("postwire_test")
    user = urlsplit(base_url).username or "guest"
    _rabbitmqctl("add_vhost", name)
    try:
        _rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")
        parts = urlsplit(base_url)
        yield urlunsplit(parts._replace(path="/" + quote(name, safe="")))
    finally:
        # The broker users accounts made to consume their queues (users are per node).
        listed = _rabbitmqctl("list_permissions", "-p", name, "--no-table-headers")
        for line in listed.splitlines():
            made = line.split("\t")[0]
            if made.startswith("acct-"):
                _rabbitmqctl("delete_user", made)
        _rabbitmqctl("delete_vhost", name)


@asynccontextmanager
async def migrated_database(base_url: str = DEFAULT_DATABASE_URL) -> AsyncIterator[str]:
    """A throwaway database with every service's schema, migrated by ``postwire migrate``."""
    async with temp_database(base_url) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("POSTWIRE_")}
        done = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "postwire", "migrate"],
            env={**env, "POSTWIRE_DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        yield url
