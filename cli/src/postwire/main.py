"""``postwire`` command line."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import Any

import click
from pydantic import ValidationError

from postwire import operations
from postwire.registry import MIGRATIONS, SERVICES
from postwire_common.config import Settings

SERVICE_NAMES = [*SERVICES, "all"]


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        lines = [
            f"  POSTWIRE_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        ]
        raise click.ClickException("invalid settings:\n" + "\n".join(lines)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="postwire", prog_name="postwire")
def cli() -> None:
    """postwire: self-hosted email delivery platform.

    Settings come from POSTWIRE_* environment variables (or .env); `postwire settings`
    lists them. Typical first run: `postwire migrate`, `postwire run all`,
    `postwire admin create-account NAME`.
    """


@cli.command()
@click.argument("services", nargs=-1, required=True, type=click.Choice(SERVICE_NAMES))
def run(services: tuple[str, ...]) -> None:
    """Run SERVICES in this process until interrupted.

    Each of ingest, delivery, events and notifier runs alone as its own process (how it
    is deployed), or several together; `all` runs every service, by default in one worker
    process per CPU (at most 4; POSTWIRE_PROCESSES sets the number) that share the HTTP
    port like replicas. Every process serves /healthz, /readyz and /metrics on
    POSTWIRE_HTTP_HOST:POSTWIRE_HTTP_PORT, plus the HTTP API of the services it runs.
    """
    from postwire.runner import run as run_services
    from postwire_common.observability.logging import setup_logging

    names = list(SERVICES) if "all" in services else list(dict.fromkeys(services))
    settings = load_settings()
    setup_logging(settings.log_level, settings.log_format)
    sys.exit(run_services(names, settings))


@cli.command()
@click.option(
    "--service",
    "only",
    multiple=True,
    type=click.Choice([m.service for m in MIGRATIONS]),
    help="Migrate only this service's schema (repeatable).",
)
def migrate(only: tuple[str, ...]) -> None:
    """Create the database if needed and bring every service's schema up to date."""
    settings = load_settings()
    try:
        for line in operations.migrate(settings, only):
            click.echo(line)
    except OSError as exc:
        raise click.ClickException(
            f"cannot reach PostgreSQL ({exc}); start it or set POSTWIRE_DATABASE_URL"
        ) from None


@cli.command("settings")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def show_settings(as_json: bool) -> None:
    """Show every setting: variable, current value (secrets hidden) and meaning."""
    settings = load_settings()
    rows = operations.describe_settings(settings)
    if as_json:
        click.echo(json.dumps({r[0]: r[1] for r in rows}, indent=2))
        return
    width = max(len(r[0]) for r in rows)
    for name, value, meaning in rows:
        click.echo(f"{name:<{width}}  {value}\n{'':<{width}}  {click.style(meaning, dim=True)}")


@cli.group()
def admin() -> None:
    """Operator commands that work on the database directly."""


@admin.command("create-account")
@click.argument("name")
def create_account(name: str) -> None:
    """Create account NAME with a first API user; prints its key (shown only once)."""
    created = _run_db(operations.create_account(load_settings(), name))
    _print_fields(created)


@admin.command("new-key")
@click.argument("api_user")
def new_key(api_user: str) -> None:
    """Give API_USER a new key (the old one stops working); prints it once."""
    _print_fields(_run_db(operations.new_key(load_settings(), api_user)))


@cli.command("generate-secret-key")
def generate_secret_key() -> None:
    """Print a new random key for POSTWIRE_SECRET_KEYS."""
    from postwire_common.crypto import generate_key

    click.echo(generate_key())


@cli.command("rotate-secrets")
def rotate_secrets() -> None:
    """Re-encrypt every stored secret (webhook app keys, DKIM private keys) with the first
    key of POSTWIRE_SECRET_KEYS.

    To rotate: set POSTWIRE_SECRET_KEYS=NEW,OLD on every process (restart them), run this,
    then drop OLD. Rows still stored in plaintext are encrypted too.
    """
    from postwire_common.crypto import SecretKeysMissing, UndecryptableSecret

    try:
        rewritten = _run_db(operations.rotate_secrets(load_settings()))
    except (SecretKeysMissing, UndecryptableSecret) as exc:
        raise click.ClickException(str(exc)) from None
    _print_fields({f"re-encrypted {name}": count for name, count in rewritten.items()})


@cli.command("stats-recount")
@click.option("--since", required=True, type=click.DateTime(), help="UTC; its whole day.")
@click.option("--until", required=True, type=click.DateTime(), help="UTC; exclusive.")
@click.option("--account", default=None, help="Account (tenant) id [default: every one].")
def stats_recount(since: datetime, until: datetime, account: str | None) -> None:
    """Rebuild statistics counters of whole UTC days from the event log: after upgrading
    to statistics, or to check them. Only days whose events are all still in the log
    (POSTWIRE_EVENT_LOG_RETENTION) come out right; recording waits while it runs."""
    since, until = since.replace(tzinfo=UTC), until.replace(tzinfo=UTC)
    if until <= since:
        raise click.ClickException("--until must be after --since")
    _print_fields(_run_db(operations.recount_stats(load_settings(), since, until, account)))


@cli.command()
@click.option("--api", default=None, help="API base URL [default: POSTWIRE_PUBLIC_URL].")
@click.option(
    "--state", default=".dev/demo.json", show_default=True, help="Where demo credentials are kept."
)
def demo(api: str | None, state: str) -> None:
    """Set up a demo account with a verified domain and a sender on a running platform
    (through its HTTP API) and print how to send with it. Safe to run again."""
    settings = load_settings()
    info = operations.seed_demo(settings, api or settings.public_url, state)
    _print_fields(info)


def _run_db(coro: Any) -> dict[str, Any]:
    from postwire_common.errors import PostwireError

    try:
        result: dict[str, Any] = asyncio.run(coro)
    except PostwireError as exc:
        raise click.ClickException(f"{exc.code}: {exc.description}") from None
    except OSError as exc:
        raise click.ClickException(
            f"cannot reach PostgreSQL ({exc}); start it or set POSTWIRE_DATABASE_URL"
        ) from None
    return result


def _print_fields(fields: dict[str, Any]) -> None:
    width = max(len(k) for k in fields)
    for key, value in fields.items():
        click.echo(f"{key:<{width}}  {value}")
