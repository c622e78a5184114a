"""``quantdesk ml train|evaluate|list``: signals from the server's command line.

``train`` and ``evaluate`` queue the same jobs the API queues (same validation) and run
them in this process at once, with a progress bar; on the way they honour
``QUANTDESK_COMPUTE_SCHEDULER`` like the server does.  Heavy imports happen inside the
commands, so ``quantdesk --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from quantdesk.cli.common import run_in_app, user_id_by_email

if TYPE_CHECKING:
    import uuid

    from quantdesk.platform.context import AppContext

ml_app = typer.Typer(help="ML signals: train, evaluate (backtest), list.", no_args_is_help=True)
_T = TypeVar("_T")
UserOption = Annotated[str, typer.Option("--user", help="The owner's e-mail address.")]


async def _run_job(ctx: AppContext, job_id: uuid.UUID, what: str) -> dict[str, Any]:
    """Run a queued job here, with a progress bar; its row as the API would show it."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from quantdesk.signals.jobs import JobRunner
    from quantdesk.signals.repository import JobQueue
    from quantdesk.signals.schemas import JobOut

    runner = JobRunner(ctx)
    with Progress("[progress.description]{task.description}", BarColumn(),
                  MofNCompleteColumn(), TimeElapsedColumn()) as bar:  # fmt: skip
        task = bar.add_task(what, total=None)
        runner.on_progress = lambda _job, done, total: bar.update(task, completed=done,
                                                                  total=total)  # fmt: skip
        try:
            await runner.run(job_id)
        finally:
            await runner.compute.aclose()
    async with ctx.database.session() as db:
        row = await JobQueue(db).get(job_id)
    return JobOut.of(row).model_dump(mode="json")


@ml_app.command("train")
def train(
    user: UserOption,
    name: Annotated[str, typer.Option(help="The model's name (versions accumulate).")],
    instrument: Annotated[list[str], typer.Option(help="EXCHANGE:SYMBOL; repeat for more.")],
    timeframe: Annotated[str, typer.Option(help="Bars: 1m, 5m, 15m, 30m, 1h, 1d, 1w.")] = "1d",
    model: Annotated[str, typer.Option(help="logistic, random_forest, gradient_boosting.")] = (
        "logistic"
    ),
    label: Annotated[str, typer.Option(help="forward_return or triple_barrier.")] = (
        "forward_return"
    ),
    horizon: Annotated[int, typer.Option(help="Label horizon in bars.")] = 1,
    splits: Annotated[int, typer.Option(help="Walk-forward test blocks.")] = 5,
    window: Annotated[str, typer.Option(help="expanding or rolling.")] = "expanding",
    train_size: Annotated[int | None, typer.Option(help="Rolling: bars per window.")] = None,
    embargo_pct: Annotated[float, typer.Option(help="Embargo, fraction of the rows.")] = 0.01,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Train a model per instrument with walk-forward validation; print the OOS metrics."""
    from quantdesk.signals import service
    from quantdesk.signals.schemas import TrainIn

    body = TrainIn.model_validate({
        "name": name, "instruments": instrument, "timeframe": timeframe, "model": model,
        "label": label, "horizon": horizon, "n_splits": splits, "window": window,
        "train_size": train_size, "embargo_pct": embargo_pct, "seed": seed,
    })  # fmt: skip

    async def work(ctx: AppContext) -> dict[str, Any]:
        owner = await user_id_by_email(ctx, user)
        async with ctx.database.session(immediate=True) as db:
            job = await service.submit_training(ctx, db, owner, body)
            job_id = job.id
        return await _run_job(ctx, job_id, f"training {name}")

    job = run_in_app(work)
    if job["status"] != "done":
        typer.echo(f"quantdesk: training failed: {job['error']}", err=True)
        raise typer.Exit(1)
    for made in job["result"]["models"]:
        m = made["metrics"]
        base = max(m["baseline"]["always_up_hit_rate"], m["baseline"]["train_majority_hit_rate"])
        typer.echo(
            f"{made['instrument']}: model {made['model_id']} v{made['version']}  "
            f"OOS hit rate {m['hit_rate']:.3f} (baseline {base:.3f})"
            f"  log loss {m['log_loss']:.3f}  Sharpe after costs {m['sharpe'] or 0:.2f}"
        )


@ml_app.command("evaluate")
def evaluate(
    user: UserOption,
    model_id: Annotated[str, typer.Argument(help="The model's id.")],
    svg: Annotated[Path | None, typer.Option(help="Write the tear sheet here.")] = None,
    quantity: Annotated[str, typer.Option(help="Units held when the signal is on.")] = "1",
    capital: Annotated[str, typer.Option(help="Starting capital.")] = "1000000",
) -> None:
    """Show a model's out-of-sample metrics and backtest its signal on the paper engine."""
    import uuid

    from quantdesk.signals import service
    from quantdesk.signals.repository import ModelRepository
    from quantdesk.signals.schemas import BacktestIn

    body = BacktestIn.model_validate({"model_id": model_id, "quantity": quantity,
                                      "capital": capital})  # fmt: skip

    async def work(ctx: AppContext) -> tuple[dict[str, Any], dict[str, Any], str | None]:
        owner = await user_id_by_email(ctx, user)
        async with ctx.database.session(immediate=True) as db:
            row = await ModelRepository(db).get_for_owner(owner, uuid.UUID(model_id))
            if row is None:
                typer.echo("quantdesk: no such model", err=True)
                raise typer.Exit(1)
            metrics = dict(row.metrics)
            job = await service.submit_backtest(ctx, db, owner, body)
            job_id = job.id
        done = await _run_job(ctx, job_id, "backtesting")
        from quantdesk.signals.repository import JobQueue

        async with ctx.database.session() as db:
            picture = (await JobQueue(db).get(job_id)).picture
        return metrics, done, picture

    metrics, job, picture = run_in_app(work)
    shown = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    typer.echo("out of sample: " + json.dumps(shown, sort_keys=True))
    if job["status"] != "done":
        typer.echo(f"quantdesk: backtest failed: {job['error']}", err=True)
        raise typer.Exit(1)
    run = job["result"]["runs"][0]
    typer.echo(f"backtest: {len(run['fills'])} fills, final equity {run['final_equity']}, "
               + json.dumps(run["measures"], sort_keys=True))  # fmt: skip
    if svg is not None and picture is not None:
        svg.write_text(picture)
        typer.echo(f"tear sheet: {svg}")


@ml_app.command("list")
def list_models(user: UserOption) -> None:
    """Your models, newest first: id, name, version, instrument, OOS hit rate."""
    from quantdesk.signals.repository import ModelRepository

    async def work(ctx: AppContext) -> list[tuple[str, ...]]:
        owner = await user_id_by_email(ctx, user)
        async with ctx.database.session() as db:
            rows, _ = await ModelRepository(db).page(owner, limit=200, cursor=None)
        return [(str(r.id), r.name, f"v{r.version}", r.instrument, r.timeframe, r.kind,
                 f"{r.metrics.get('hit_rate') or 0:.3f}") for r in rows]  # fmt: skip

    rows = run_in_app(work)
    if not rows:
        typer.echo("no models")
    for row in rows:
        typer.echo("  ".join(row))
