"""``quantdesk admin verify-ledger``: check every paper account's journal and balances."""

from __future__ import annotations

import asyncio

import typer

from quantdesk.cli.common import load_settings


def verify_ledger() -> None:
    """Every entry balances, cash is never negative, the cached balances equal the journal,
    reservations and margin match the orders and positions holding them."""
    from quantdesk.platform.context import AppContext
    from quantdesk.trading.ledger import verify_all

    async def main() -> dict[str, list[str]]:
        ctx = AppContext.build(load_settings())
        try:
            async with ctx.database.session() as db:
                return await verify_all(db)
        finally:
            await ctx.aclose()

    problems = asyncio.run(main())
    for account_id, found in problems.items():
        for problem in found:
            typer.echo(f"account {account_id}: {problem}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo("ledger ok: every account balances")
