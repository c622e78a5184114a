"""``quantdesk admin halt|resume|halts``: the kill switch from the server's command line.

Changes are committed to the database and announced on the bus; running servers stop (or
resume) taking new orders within a second, through Redis at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from quantdesk.cli.common import ensure_database_reachable, load_settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from quantdesk.platform.context import AppContext

_T = TypeVar("_T")

AllOption = Annotated[bool, typer.Option("--all", help="The whole system.")]
ExchangeOption = Annotated[str | None, typer.Option(help="One exchange, e.g. NSE.")]
InstrumentOption = Annotated[str | None, typer.Option(help="One instrument, e.g. NSE:INFY.")]


def _scope(everything: bool, exchange: str | None, instrument: str | None) -> tuple[str, str]:
    chosen = [(s, t) for s, t, on in (
        ("all", "", everything),
        ("exchange", exchange or "", exchange is not None),
        ("instrument", instrument or "", instrument is not None),
    ) if on]  # fmt: skip
    if len(chosen) != 1:
        typer.echo("quantdesk: give exactly one of --all, --exchange or --instrument", err=True)
        raise typer.Exit(2)
    return chosen[0]


def _run(work: Callable[[AppContext, AsyncSession], Awaitable[_T]]) -> _T:
    from quantdesk.platform.context import AppContext
    from quantdesk.platform.exceptions import QuantdeskError

    settings = load_settings()
    ensure_database_reachable(settings)

    async def main() -> _T:
        ctx = AppContext.build(settings)
        try:
            async with ctx.database.session(immediate=True) as db:
                return await work(ctx, db)
        finally:
            await ctx.aclose()

    try:
        return asyncio.run(main())
    except QuantdeskError as exc:
        typer.echo(f"quantdesk: {exc.detail}", err=True)
        raise typer.Exit(1) from None


def halt(
    reason: Annotated[str, typer.Option(help="Why (shown to every refused order).")],
    everything: AllOption = False,
    exchange: ExchangeOption = None,
    instrument: InstrumentOption = None,
) -> None:
    """Halt new orders for the whole system, one exchange or one instrument (audited)."""
    from quantdesk.ops.killswitch import HaltScope, halt_trading

    scope, target = _scope(everything, exchange, instrument)

    async def work(ctx: AppContext, db: AsyncSession) -> tuple[str, str, bool]:
        row, created = await halt_trading(
            ctx, db, scope=HaltScope(scope), target=target, reason=reason[:200], actor=None
        )
        return str(row.id), row.target, created

    halt_id, stored, created = _run(work)
    what = "halted" if created else "already halted"
    typer.echo(f"{what}: {scope} {stored}".rstrip() + f" (halt {halt_id})")


def resume(
    everything: AllOption = False,
    exchange: ExchangeOption = None,
    instrument: InstrumentOption = None,
) -> None:
    """Lift the halt of exactly this scope (audited)."""
    from quantdesk.ops.killswitch import HaltScope, resume_scope

    scope, target = _scope(everything, exchange, instrument)

    async def work(ctx: AppContext, db: AsyncSession) -> int:
        lifted = await resume_scope(ctx, db, scope=HaltScope(scope), target=target, actor=None)
        return len(lifted)

    lifted = _run(work)
    if not lifted:
        typer.echo(f"quantdesk: no halt in force for {scope} {target}".rstrip(), err=True)
        raise typer.Exit(1)
    typer.echo(f"resumed: {scope} {target}".rstrip())


def halts() -> None:
    """The halts in force."""
    from quantdesk.ops.killswitch import list_halts

    async def work(_ctx: AppContext, db: AsyncSession) -> list[tuple[str, ...]]:
        return [
            (str(h.id), h.scope, h.target or "-", h.halted_at.isoformat(), h.reason)
            for h in await list_halts(db)
        ]

    rows = _run(work)
    if not rows:
        typer.echo("no trading halts in force")
    for row in rows:
        typer.echo("  ".join(row))
