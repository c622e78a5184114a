"""``quantdesk ml train|list|evaluate`` on the test app's own database: what each prints is
what the API serves for the same models and jobs, and train shows its progress.

The commands run their own event loop (``asyncio.run``), so they run here on a thread."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner, Result

from quantdesk.cli import app as cli
from quantdesk.settings import Settings
from tests.conftest import UserFactory
from tests.ops.conftest import cli_env
from tests.signals.conftest import BARS_PER_INSTRUMENT
from tests.signals.synthetic import DAY, START

END = dt.datetime.fromtimestamp(START + 220 * DAY, dt.UTC)


def _env(settings: Settings) -> dict[str, str]:
    return {**cli_env(settings), "QUANTDESK_LOG_JSON": "false", "QUANTDESK_COMPUTE_SCHEDULER": ""}


async def _invoke(settings: Settings, *args: str) -> Result:
    result = await asyncio.to_thread(CliRunner().invoke, cli, ["ml", *args], env=_env(settings))
    assert result.exit_code == 0, result.output
    return result


async def test_train_list_and_evaluate_print_what_the_api_serves(
    client: httpx.AsyncClient,
    make_user: UserFactory,
    bars_market: list[str],
    settings: Settings,
    tmp_path: Path,
) -> None:
    trader = await make_user(role="trader")
    api = trader.headers

    async def get(path: str) -> Any:
        r = await client.get(f"/api/v1/signals{path}", headers=api)
        assert r.status_code == 200, r.text
        return r.json()

    # train: the progress bar ends at both instruments done, then one line per model.
    trained = await _invoke(
        settings, "train", "--user", trader.email, "--name", "cli", "--instrument", "SIM:ALPHA",
        "--instrument", "SIM:BETA", "--splits", "3", "--seed", "3",
    )  # fmt: skip
    assert re.search(r"training cli.*2/2", trained.stdout), trained.stdout
    models = (await get("/models"))["items"]
    assert {m["instrument"] for m in models} == {"SIM:ALPHA", "SIM:BETA"}
    for m in models:
        oos = m["metrics"]
        base = oos["baseline"]
        line = (
            f"{m['instrument']}: model {m['id']} v1  OOS hit rate {oos['hit_rate']:.3f} "
            f"(baseline {max(base['always_up_hit_rate'], base['train_majority_hit_rate']):.3f})"
            f"  log loss {oos['log_loss']:.3f}  Sharpe after costs {oos['sharpe'] or 0:.2f}"
        )
        assert line in trained.stdout.splitlines(), (line, trained.stdout)
        assert len(m["folds"]) == 3
        assert m["spec"]["seed"] == 3
        assert m["rows"] == BARS_PER_INSTRUMENT - 49 - 1

    # list: newest first, as the API lists them.
    listed = await _invoke(settings, "list", "--user", trader.email)
    assert listed.stdout.splitlines() == [
        "  ".join([m["id"], "cli", "v1", m["instrument"], "1d", "logistic",
                   f"{m['metrics']['hit_rate']:.3f}"])
        for m in models
    ]  # fmt: skip
    other = await make_user(role="trader")
    assert (await _invoke(settings, "list", "--user", other.email)).stdout == "no models\n"

    # evaluate: the model's OOS metrics, then its backtest's fills, equity and measures.
    # Trained on all 320 bars, it has no bars after its window: an earlier model does.
    r = await client.post(
        "/api/v1/signals/models",
        json={"name": "early", "instruments": ["SIM:ALPHA"], "n_splits": 3,
              "end": END.isoformat()},
        headers=api,
    )  # fmt: skip
    for _ in range(1200):
        job = await get(f"/jobs/{r.json()['id']}")
        if job["status"] != "queued" and job["status"] != "running":
            break
        await asyncio.sleep(0.05)
    assert job["status"] == "done", job["error"]
    model_id = job["result"]["models"][0]["model_id"]
    picture = tmp_path / "sheet.svg"
    evaluated = await _invoke(
        settings, "evaluate", "--user", trader.email, model_id, "--quantity", "10",
        "--capital", "10000", "--svg", str(picture),
    )  # fmt: skip
    lines = evaluated.stdout.splitlines()
    metrics = (await get(f"/models/{model_id}"))["metrics"]
    shown = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
    assert re.search(r"backtesting.*1/1", evaluated.stdout), evaluated.stdout
    oos_line = next(line for line in lines if line.startswith("out of sample: "))
    assert json.loads(oos_line.removeprefix("out of sample: ")) == shown
    backtest = next(j for j in (await get("/jobs"))["items"] if j["kind"] == "backtest")
    run = backtest["result"]["runs"][0]
    assert len(run["equity"]) == BARS_PER_INSTRUMENT - 220  # the bars after the window
    summary = next(line for line in lines if line.startswith("backtest: "))
    head, measures = summary.split(", {", 1)
    assert head == f"backtest: {len(run['fills'])} fills, final equity {run['final_equity']}"
    assert json.loads("{" + measures) == run["measures"]
    assert run["fills"]
    assert all(f["quantity"] == "10" for f in run["fills"])
    assert picture.read_text().startswith("<svg")
    assert f"tear sheet: {picture}" in lines


async def test_an_unknown_user_or_model_exits_with_one_line(
    make_user: UserFactory, bars_market: list[str], settings: Settings
) -> None:
    trader = await make_user(role="trader")
    env = _env(settings)
    runner = CliRunner()
    result = await asyncio.to_thread(
        runner.invoke, cli, ["ml", "list", "--user", "nobody@example.com"], env=env
    )
    assert (result.exit_code, result.stderr) == (1, "quantdesk: no user with e-mail "
                                                    "nobody@example.com\n")  # fmt: skip
    missing = "00000000-0000-4000-8000-000000000000"
    result = await asyncio.to_thread(
        runner.invoke, cli, ["ml", "evaluate", "--user", trader.email, missing], env=env
    )
    assert (result.exit_code, result.stderr) == (1, "quantdesk: no such model\n")
