"""``quantdesk demo load``: the demo data set into the configured database, with progress."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from quantdesk.cli.common import database_step, ensure_database_reachable, load_settings

if TYPE_CHECKING:
    from quantdesk.marketdata.providers.demo.loader import LoadProgress, LoadReport

# Repeated from demo/universe.py so that `--help` need not import NumPy (through the
# universe); tests/marketdata/providers/demo/test_cli.py keeps the two equal.
DAILY_YEARS = 2
MINUTE_SESSIONS = 30

demo_app = typer.Typer(
    help="The offline demo market (deterministic, seeded).", no_args_is_help=True
)

_STAGES = {"instruments": "Instruments", "bars": "Bars", "quotes": "Closing quotes"}


@demo_app.command("load")
def load(
    seed: Annotated[
        int | None, typer.Option(help="Random seed (default: QUANTDESK_DEMO_SEED).")
    ] = None,
    anchor: Annotated[
        datetime | None,
        typer.Option(formats=["%Y-%m-%d"], help="'Today' of the data set (default: today, UTC)."),
    ] = None,
    years: Annotated[int, typer.Option(min=1, max=6, help="Years of daily bars.")] = DAILY_YEARS,
    minute_sessions: Annotated[
        int, typer.Option(min=1, max=250, help="Sessions of 1-minute bars.")
    ] = MINUTE_SESSIONS,
    options: Annotated[
        bool, typer.Option(help="Include the NIFTY/BANKNIFTY option chains.")
    ] = True,
    migrate: Annotated[bool, typer.Option(help="Upgrade the database to head first.")] = True,
) -> None:
    """Load instruments, bars and quotes of the demo market; a no-op when already loaded."""
    # Imported here so that `--help` and the other commands do not pay for them.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    from quantdesk.marketdata.providers.demo.marker import (
        already_loaded,
        demo_request,
        record_load,
    )
    from quantdesk.platform import migrations
    from quantdesk.platform.context import AppContext
    from quantdesk.platform.exceptions import QuantdeskError

    settings = load_settings()
    ensure_database_reachable(settings)
    if migrate:
        database_step("migration", lambda: migrations.upgrade(settings, "head"))
    console = Console(stderr=True)
    day = anchor.date() if anchor else datetime.now(UTC).date()

    async def main() -> LoadReport | None:
        ctx = AppContext.build(settings)
        try:
            request = demo_request(
                ctx,
                seed=seed if seed is not None else settings.demo_seed,
                anchor=day,
                daily_years=years,
                minute_sessions=minute_sessions,
                options=options,
            )
            # One query instead of building the demo market (4 s) to find nothing to do.
            if await already_loaded(ctx, request):
                return None
            # The loader pulls in calendars, NumPy and the demo market.
            from quantdesk.marketdata.providers.demo.loader import load_demo

            with Progress(
                TextColumn("{task.description:<15}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[key]}"),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                tasks: dict[str, TaskID] = {}

                def show(event: LoadProgress) -> None:
                    if event.stage not in tasks:
                        tasks[event.stage] = progress.add_task(
                            _STAGES[event.stage], total=event.total, key=""
                        )
                    progress.update(
                        tasks[event.stage],
                        completed=event.done,
                        total=event.total,
                        key=event.key or "",
                    )

                report = await load_demo(
                    ctx,
                    seed=seed,
                    anchor=day,
                    daily_years=years,
                    minute_sessions=minute_sessions,
                    options=options,
                    progress=show,
                )
            await record_load(ctx, request)
            return report
        finally:
            await ctx.aclose()

    try:
        report = asyncio.run(main())
    except QuantdeskError as exc:
        typer.echo(f"quantdesk: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    if report is None:
        used_seed = seed if seed is not None else settings.demo_seed
        typer.echo(f"demo data already loaded (seed {used_seed}, anchor {day}); nothing to do.")
        return
    for calendar in report.clamped_calendars:
        console.print(
            f"[yellow]{calendar} calendar data end before {report.anchor}; its data stop there."
        )
    if report.already_loaded:
        typer.echo(f"demo data already loaded (seed {report.seed}, anchor {report.anchor}).")
        return
    typer.echo(
        f"demo data loaded in {report.seconds:.1f}s (seed {report.seed}, anchor {report.anchor}): "
        f"{report.instruments_inserted} new instruments, {report.daily_bars} daily bars, "
        f"{report.minute_bars} 1-minute bars, {report.quotes} quotes."
    )
