"""Signals through the API: train in the background (walk-forward, progress, versioned
models), serve the overlay series, backtest a threshold grid on the paper engine with its
tear sheet; another user's models and jobs are 404s."""

from __future__ import annotations

import datetime as dt

import httpx

from tests.conftest import UserFactory
from tests.signals.conftest import BARS_PER_INSTRUMENT, wait_for_job
from tests.signals.synthetic import DAY, START

END = dt.datetime.fromtimestamp(START + 220 * DAY, dt.UTC)


async def test_train_serve_and_backtest(
    client: httpx.AsyncClient, make_user: UserFactory, bars_market: list[str]
) -> None:
    trader = await make_user(role="trader")
    # Trained on the first 220 bars; the last 100 stay out of sample for the backtest.
    body = {"name": "momo", "instruments": bars_market, "n_splits": 3, "seed": 3,
            "end": f"{END.isoformat()}"}  # fmt: skip
    r = await client.post("/api/v1/signals/models", json=body, headers=trader.headers)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued"
    job = await wait_for_job(client, r.json()["id"], trader.headers)
    assert job["status"] == "done", job["error"]
    assert (job["done"], job["total"], job["progress"]) == (2, 2, 1.0)
    models = {m["instrument"]: m for m in job["result"]["models"]}
    assert set(models) == {"SIM:ALPHA", "SIM:BETA"}
    assert job["result"]["compute"] == "local"

    r = await client.get(f"/api/v1/signals/models/{models['SIM:ALPHA']['model_id']}",
                         headers=trader.headers)  # fmt: skip
    model = r.json()
    assert (model["name"], model["version"], model["artifact_format"]) == ("momo", 1, "skops")
    assert model["rows"] == 220 - 49 - 1  # the warm-up, and the last label
    # The window ends at the last bar a label used: bar 219, the last one loaded.
    assert model["window_end"] == (END - dt.timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert len(model["folds"]) == 3
    oos = model["metrics"]
    assert oos["out_of_sample_rows"] == 3 * (model["rows"] // 4)
    assert 0 <= oos["hit_rate"] <= 1
    assert oos["cost_per_turnover"] > 0
    assert len(model["data_hash"]) == 64

    # Retraining adds version 2; the name serves the latest.
    r = await client.post("/api/v1/signals/models", json=body | {"instruments": ["SIM:ALPHA"]},
                          headers=trader.headers)  # fmt: skip
    second = await wait_for_job(client, r.json()["id"], trader.headers)
    assert second["result"]["models"][0]["version"] == 2

    r = await client.get("/api/v1/signals/momo/SIM:ALPHA", params={"limit": 100},
                         headers=trader.headers)  # fmt: skip
    assert r.status_code == 200, r.text
    series = r.json()
    assert (series["version"], series["timeframe"], len(series["t"])) == (2, "1d", 100)
    probability, signal = series["values"]["probability"], series["values"]["signal"]
    assert all(p is not None and 0 <= p <= 1 for p in probability)  # warmed up from before
    assert all(s == (1.0 if p > 0.5 else 0.0) for p, s in zip(probability, signal, strict=True))

    r = await client.post(
        "/api/v1/signals/backtests",
        json={"model_id": model["id"], "thresholds": [0.5, 0.55], "quantity": "10",
              "capital": "10000"},
        headers=trader.headers,
    )  # fmt: skip
    assert r.status_code == 202, r.text
    backtest = await wait_for_job(client, r.json()["id"], trader.headers)
    assert backtest["status"] == "done", backtest["error"]
    runs = backtest["result"]["runs"]
    assert [run["label"] for run in runs] == ["SIM:ALPHA threshold 0.5", "SIM:ALPHA threshold 0.55"]
    first = runs[0]
    assert len(first["equity"]) == len(first["t"]) == BARS_PER_INSTRUMENT - 220
    assert first["t"][0] == int(END.timestamp())  # after the training window
    assert first["in_sample_bars"] == 0
    assert first["fills"]
    assert all(f["quantity"] == "10" for f in first["fills"])
    assert first["equity"][0] == "10000"
    assert set(first["measures"]) >= {"sharpe", "max_drawdown", "var_95", "total_return"}
    r = await client.get(backtest["tearsheet"], headers=trader.headers)
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/svg+xml"
    assert r.text.startswith("<svg")

    # Tenancy: another user sees none of it.
    other = await make_user(role="trader")
    for path in (f"/api/v1/signals/models/{model['id']}", f"/api/v1/signals/jobs/{job['id']}",
                 backtest["tearsheet"], f"/api/v1/signals/{model['id']}/SIM:ALPHA",
                 "/api/v1/signals/momo/SIM:ALPHA"):  # fmt: skip
        assert (await client.get(path, headers=other.headers)).status_code == 404, path
    r = await client.post("/api/v1/signals/backtests", json={"model_id": model["id"]},
                          headers=other.headers)  # fmt: skip
    assert r.status_code == 404
    r = await client.get("/api/v1/signals/models", headers=other.headers)
    assert r.json() == {"items": [], "next_cursor": None}
    r = await client.get("/api/v1/signals/models", params={"limit": 2}, headers=trader.headers)
    page = r.json()
    assert len(page["items"]) == 2
    assert page["next_cursor"]


async def test_bad_requests_are_problems(
    client: httpx.AsyncClient, make_user: UserFactory, bars_market: list[str]
) -> None:
    trader = await make_user(role="trader")
    url = "/api/v1/signals/models"
    cases = [
        ({"name": "x", "instruments": ["SIM:NOPE"]}, 404),
        ({"name": "models", "instruments": ["SIM:ALPHA"]}, 422),
        ({"name": "x", "instruments": ["SIM:ALPHA"], "features": ["tomorrow"]}, 422),
        ({"name": "x", "instruments": ["SIM:ALPHA"], "window": "rolling"}, 422),
        ({"name": "x", "instruments": ["SIM:ALPHA"], "params": {"penalty": 1}}, 422),
    ]
    for body, status in cases:
        r = await client.post(url, json=body, headers=trader.headers)
        assert r.status_code == status, (body, r.text)
        assert r.headers["content-type"] == "application/problem+json"
    # A job that fails (no bars in the window) says why.
    body = {"name": "empty", "instruments": ["SIM:ALPHA"], "end": "2000-01-01T00:00:00Z"}
    r = await client.post(url, json=body, headers=trader.headers)
    job = await wait_for_job(client, r.json()["id"], trader.headers)
    assert job["status"] == "failed"
    assert "no 1d bars of SIM:ALPHA" in job["error"]
