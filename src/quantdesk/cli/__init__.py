"""The ``quantdesk`` command: serve, migrate, version; feature packages add their own groups
(``admin``, ``demo``, ``data``, ``calendar``). Shared start-up checks are in :mod:`.common`."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from quantdesk import __version__
from quantdesk.cli import backup as backup_cli
from quantdesk.cli.common import database_step, ensure_database_reachable, load_settings
from quantdesk.marketdata.instruments.formats import ImportFormat
from quantdesk.marketdata.providers.demo.cli import demo_app
from quantdesk.marketdata.providers.kite.cli import kite_app
from quantdesk.ops import cli as ops_cli
from quantdesk.portfolios.cli import portfolio_app
from quantdesk.signals.cli import ml_app
from quantdesk.trading.cli import verify_ledger
from quantdesk.users.cli import admin_app

if TYPE_CHECKING:
    from quantdesk.settings import Settings

app = typer.Typer(
    name="quantdesk",
    help="quantdesk: a self-hostable investment and trading platform backend.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
migrate_app = typer.Typer(help="Database migrations (Alembic).", no_args_is_help=True)
app.add_typer(migrate_app, name="migrate")
app.add_typer(admin_app, name="admin")
admin_app.command("verify-ledger")(verify_ledger)
admin_app.command("halt")(ops_cli.halt)
admin_app.command("resume")(ops_cli.resume)
admin_app.command("halts")(ops_cli.halts)
app.add_typer(demo_app, name="demo")
app.add_typer(kite_app, name="kite")
app.add_typer(ml_app, name="ml")
app.command("backup")(backup_cli.backup)
app.command("restore")(backup_cli.restore)
data_app = typer.Typer(help="Market data: backfill from providers, imports.", no_args_is_help=True)
app.add_typer(data_app, name="data")
calendar_app = typer.Typer(help="Exchange calendars: official holiday lists.", no_args_is_help=True)
app.add_typer(calendar_app, name="calendar")
app.add_typer(portfolio_app, name="portfolio")


@app.command()
def version() -> None:
    """Print the quantdesk version."""
    typer.echo(__version__)


@app.command("warm-up")
def warm_up() -> None:
    """Compile the analytics kernels into numba's on-disk cache (once after an install).

    ``serve`` loads them before it accepts requests either way; run this first (``make run``
    does, and an image build should) so that the first start takes seconds, not the 10-20 s
    of compiling."""
    import time

    from quantdesk.analytics.warmup import warm_kernels

    started = time.perf_counter()
    timings = warm_kernels()
    slowest = f"; slowest {timings[0].name} {timings[0].seconds:.2f}s" if timings else ""
    typer.echo(
        f"analytics kernels ready in {time.perf_counter() - started:.1f}s "
        f"({len(timings)} entry points{slowest})"
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes.")] = None,
    migrate: Annotated[bool, typer.Option(help="Upgrade the database to head first.")] = True,
    reload: Annotated[bool, typer.Option(help="Reload on code changes (dev only).")] = False,
) -> None:
    """Run the HTTP API with uvicorn (uvloop + httptools)."""
    import uvicorn

    settings = load_settings()
    processes = workers or settings.workers
    refusal = settings.multiprocess_problem(processes)
    if refusal is not None:
        typer.echo(f"quantdesk: refusing to start: {refusal}", err=True)
        raise typer.Exit(2)
    ensure_database_reachable(settings)
    if settings.redis_url:
        # A Redis that is down at start-up is a misconfiguration far more often than an
        # outage: say so now rather than answer 503 to every request.
        from redis.asyncio import Redis

        from quantdesk.platform.tls import redis_tls_options

        async def ping_redis(url: str) -> None:
            client = Redis.from_url(
                url, socket_connect_timeout=5, socket_timeout=5, **redis_tls_options(settings)
            )
            try:
                await client.ping()
            finally:
                await client.aclose()

        try:
            asyncio.run(ping_redis(settings.redis_url))
        except Exception as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            typer.echo(f"quantdesk: cannot reach Redis (QUANTDESK_REDIS_URL): {reason}", err=True)
            raise typer.Exit(3) from None
    if migrate:
        from quantdesk.platform import migrations

        database_step("migration", lambda: migrations.upgrade(settings, "head"))
    from quantdesk.platform.websocket_wire import UVICORN_WEBSOCKET

    uvicorn.run(
        "quantdesk.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=processes,
        loop="uvloop",
        http="httptools",
        reload=reload,
        log_config=None,
        access_log=False,
        # uvicorn rewrites nothing: the app applies X-Forwarded-For itself, and only from
        # QUANTDESK_TRUSTED_PROXIES (security/http.py), whatever server runs it.
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=settings.http_keep_alive_s,
        **UVICORN_WEBSOCKET,
    )


@migrate_app.command("upgrade")
def migrate_upgrade(revision: str = typer.Argument("head")) -> None:
    """Upgrade the database to REVISION (default: head)."""
    from quantdesk.platform import migrations

    settings = load_settings()
    ensure_database_reachable(settings)
    before = database_step("reading the revision", lambda: migrations.current(settings))
    database_step("migration", lambda: migrations.upgrade(settings, revision))
    _say_revision(settings, before)


def _say_revision(settings: Settings, before: str | None) -> None:
    from quantdesk.platform import migrations

    after = database_step("reading the revision", lambda: migrations.current(settings))
    was = before or "an empty database"
    typer.echo(f"at {after}, as it was" if after == before else f"migrated {was} to {after}")


@migrate_app.command("downgrade")
def migrate_downgrade(revision: str = typer.Argument(..., help="Target, e.g. -1 or base.")) -> None:
    """Downgrade the database to REVISION."""
    from quantdesk.platform import migrations

    settings = load_settings()
    ensure_database_reachable(settings)
    before = database_step("reading the revision", lambda: migrations.current(settings))
    database_step("migration", lambda: migrations.downgrade(settings, revision))
    _say_revision(settings, before)


@migrate_app.command("current")
def migrate_current() -> None:
    """Show the database's current revision."""
    from quantdesk.platform import migrations

    settings = load_settings()
    ensure_database_reachable(settings)
    revision = database_step("reading the revision", lambda: migrations.current(settings))
    typer.echo(revision or "(empty database)")


@data_app.command("backfill")
def data_backfill(
    provider: Annotated[str, typer.Option(help="demo, finnhub, alphavantage, polygon or kite.")],
    instruments: Annotated[
        list[str], typer.Option(help="Instrument keys (repeat, or comma-separate).")
    ],
    from_: Annotated[datetime, typer.Option("--from", help="First day (UTC).")],
    to: Annotated[datetime, typer.Option(help="Last day, inclusive (UTC).")],
    timeframe: Annotated[
        str, typer.Option(help="1d or 1m (stored; 3m, 5m, 10m, 15m, 30m, 1h are resampled).")
    ] = "1d",
) -> None:
    """Fetch historical bars into the database: chunked, resumable, idempotent.

    Only 1m and 1d bars are stored (3m, 5m, 10m, 15m, 30m and 1h are resampled from 1m when
    read).  A run that stopped part-way resumes from its newest stored bar.  With
    ``--provider kite`` each chunk is one request of Kite's span limit (1m: 60 days).
    """
    from quantdesk.marketdata.bars.backfill import run_backfill_cli
    from quantdesk.marketdata.domain import Timeframe
    from quantdesk.platform.exceptions import QuantdeskError

    settings = load_settings()
    ensure_database_reachable(settings)
    keys = [key.strip() for item in instruments for key in item.split(",") if key.strip()]
    stored = (Timeframe.M1, Timeframe.D1)
    if timeframe not in stored:
        known = timeframe in {t.value for t in Timeframe}
        typer.echo(
            f"quantdesk: {timeframe} bars are resampled from 1m, not stored; backfill 1m"
            if known
            else f"quantdesk: unknown timeframe {timeframe!r}; use 1d or 1m",
            err=True,
        )
        raise typer.Exit(2)
    try:
        report = run_backfill_cli(settings, provider, keys, from_, to, Timeframe(timeframe))
    except QuantdeskError as exc:
        typer.echo(f"quantdesk: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    for item in report.instruments:
        resumed = f" (resumed at {item.start:%Y-%m-%d %H:%M})" if item.resumed else ""
        typer.echo(f"{item.key}: {item.bars} bars in {item.chunks} chunks{resumed}")


@data_app.command("import-instruments")
def data_import_instruments(
    file: Annotated[
        Path,
        typer.Argument(
            help="CSV: Kite's instrument dump or the generic format (docs/market-data.md).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    format_: Annotated[
        ImportFormat, typer.Option("--format", help="auto detects it from the header.")
    ] = ImportFormat.AUTO,
) -> None:
    """Import instruments: validated, all-or-nothing, re-runnable (updates, never duplicates)."""
    from quantdesk.marketdata.instruments.import_command import describe, import_with_progress
    from quantdesk.platform.exceptions import QuantdeskError

    settings = load_settings()
    ensure_database_reachable(settings)
    try:
        report = import_with_progress(settings, file, format_)
    except QuantdeskError as exc:
        typer.echo(f"quantdesk: {file}: {exc.detail}; nothing was imported", err=True)
        raise typer.Exit(1) from None
    typer.echo(describe(file, report))


@calendar_app.command("import")
def calendar_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="The exchange's official list: CSV (date,name[,kind,open,close]) or NSE's "
            "holiday JSON (docs/calendars.md).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    exchange: Annotated[str, typer.Option(help="NSE, BSE, CDS or MCX.")],
) -> None:
    """Load an official holiday list: replaces the provisional (or package) year; audited."""
    from quantdesk.marketdata.calendars.service import import_official_list, read_list_file
    from quantdesk.platform.context import AppContext
    from quantdesk.platform.exceptions import QuantdeskError

    settings = load_settings()
    ensure_database_reachable(settings)

    async def work() -> list[str]:
        ctx = AppContext.build(settings)
        try:
            text = read_list_file(file)
            async with ctx.database.session(immediate=True) as db:
                report = await import_official_list(ctx, db, exchange, text, file.name)
        finally:
            await ctx.aclose()
        return [
            f"{y.exchange} {y.year}: {y.holidays} holidays, {y.sessions} sessions"
            + (f" (replaced {y.replaced} stored days)" if y.replaced else "")
            for y in report
        ]

    try:
        lines = asyncio.run(work())
    except QuantdeskError as exc:
        typer.echo(f"quantdesk: {file}: {exc.detail}; nothing was imported", err=True)
        raise typer.Exit(2) from None
    for line in lines:
        typer.echo(line)
    typer.echo("running servers pick the list up within a minute")


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
