"""Every metric the Grafana dashboard and the alert rules query is one that ``/metrics``
really exports, or one of the few named below that other features are still to export.

Also: the database pool's waiters and timeouts are counted (PostgreSQL; SQLite has no pool
to exhaust).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from quantdesk.platform.db import Database
from quantdesk.platform.metrics import Metrics
from quantdesk.settings import Settings
from tests.conftest import UserFactory
from tests.deploy.tools import DEPLOY

# Metrics the dashboard and alerts query that /metrics does not export, with where they come
# from.  The test fails on a query naming anything else, so a typo or a renamed metric
# cannot hide, and on an entry here that /metrics does export, so the list stays true.
PENDING = {
    # not from /metrics by design: `quantdesk backup --metrics-file` writes it, for
    # node_exporter's textfile collector (compose) or the Pushgateway (the Kubernetes
    # CronJob pushes it): docs/operations.md, "Backup and restore"
    "quantdesk_backup_last_success_timestamp_seconds": "backup",
}
METRIC = re.compile(r"\bquantdesk_[a-z0-9_]+")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's, with the per-account sign-in budget lifted: the lockout must be what
    stops the wrong passwords here, not the rate limit (5 a minute) before it."""
    return settings.model_copy(update={"rate_limit_login_account": "100000/minute"})


def exported_names(exposition: str) -> set[str]:
    """Every series name a Prometheus query can use, from the families /metrics declares
    (a labelled family with no samples yet still declares its name)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("_sum", "_count", "_created"),
    }
    names: set[str] = set()
    for family in text_string_to_metric_families(exposition):
        names.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def dashboard_queries() -> dict[str, list[str]]:
    queries: dict[str, list[str]] = {}
    for path in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json")):
        dashboard = json.loads(path.read_text())
        for panel in _panels(dashboard["panels"]):
            if panel["type"] == "row":
                continue
            exprs = [target["expr"] for target in panel.get("targets", [])]
            queries[f"{path.name}: {panel['title']}"] = exprs
    return queries


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for panel in panels:
        found.append(panel)
        found.extend(_panels(panel.get("panels", [])))
    return found


def alert_queries() -> dict[str, list[str]]:
    document = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return {
        rule["alert"]: [rule["expr"]] for group in document["groups"] for rule in group["rules"]
    }


async def test_every_queried_metric_is_exported(client: httpx.AsyncClient) -> None:
    await client.get("/health/ready")  # sets the readiness gauges
    response = await client.get("/metrics")
    assert response.status_code == 200
    exported = exported_names(response.text)
    # What this part of the issue added, present in every app.
    assert {
        "quantdesk_security_events_total",
        "quantdesk_db_pool_waiters",
        "quantdesk_db_pool_capacity",
        "quantdesk_db_pool_timeouts_total",
        "quantdesk_ready",
        "quantdesk_dependency_up",
    } <= exported
    queries = {**dashboard_queries(), **alert_queries()}
    assert len(dashboard_queries()) >= 20
    unknown = {}
    for where, exprs in queries.items():
        names = {name for expr in exprs for name in METRIC.findall(expr)}
        # Alerts may watch Prometheus's own series (`up`); panels all show quantdesk's.
        assert names or where in alert_queries(), f"{where}: queries no quantdesk metric"
        missing = names - exported - set(PENDING)
        if missing:
            unknown[where] = sorted(missing)
    assert unknown == {}, "queries naming metrics that /metrics does not export"
    assert exported & set(PENDING) == set(), "exported now: no longer pending"


async def test_security_events_are_counted_by_type(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        await client.post(
            "/api/v1/auth/login",
            json={"email": "nobody@example.com", "password": "wrong-password-123"},
        )
    families = {
        family.name: family
        for family in text_string_to_metric_families((await client.get("/metrics")).text)
    }
    counts = {
        sample.labels["type"]: sample.value
        for sample in families["quantdesk_security_events"].samples
        if sample.name.endswith("_total")
    }
    assert counts.get("login_failed") == 2


async def security_event_counts(client: httpx.AsyncClient) -> dict[str, float]:
    exposition = (await client.get("/metrics")).text
    (family,) = [
        f
        for f in text_string_to_metric_families(exposition)
        if f.name == "quantdesk_security_events"
    ]
    return {s.labels["type"]: s.value for s in family.samples if s.name.endswith("_total")}


async def test_lockouts_refresh_reuse_and_permission_denials_are_counted(
    client: httpx.AsyncClient, make_user: UserFactory, settings: Settings
) -> None:
    """The three events the security panels and the refresh-reuse alert watch, each made
    through the API as an attacker would, counted once each by type."""
    victim = await make_user("trader")
    # Lockout: the threshold's wrong passwords in a row (5 by default) lock the account.
    for _ in range(settings.lockout_threshold):
        wrong = await client.post(
            "/api/v1/auth/login", json={"email": victim.email, "password": "not-the-password-1"}
        )
        assert wrong.status_code == 401, wrong.text
    right = await client.post(
        "/api/v1/auth/login", json={"email": victim.email, "password": victim.password}
    )
    # Locked out: even the right password is refused, for the first lockout's 15 minutes.
    assert right.status_code == 429, right.text
    assert "failed sign-in attempts" in right.json()["detail"]
    assert 890 <= int(right.headers["Retry-After"]) <= settings.lockout_base_s == 900
    trader = await make_user("trader")
    # Permission denied: a trader at an admin endpoint, twice.
    for _ in range(2):
        denied = await client.get("/api/v1/admin/security-events", headers=trader.headers)
        assert denied.status_code == 403, denied.text
    # Refresh reuse: the token rotated once, then presented again (a stolen copy):
    # the whole session is revoked with it.
    rotated = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": trader.refresh_token}
    )
    assert rotated.status_code == 200, rotated.text
    reused = await client.post("/api/v1/auth/refresh", json={"refresh_token": trader.refresh_token})
    assert reused.status_code == 401, reused.text
    counts = await security_event_counts(client)
    assert counts.get("login_failed") == settings.lockout_threshold
    assert counts.get("locked_out") == 1
    assert counts.get("refresh_token_reused") == 1
    assert counts.get("permission_denied") == 2


@pytest.mark.postgres_only
async def test_pool_waiters_and_timeouts_are_counted(settings: Settings) -> None:
    database = Database(
        settings.model_copy(
            update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout_s": 0.3}
        )
    )
    try:
        async with database.engine.connect():
            waiting = asyncio.create_task(database.ping())
            await asyncio.sleep(0.1)
            assert database.pool_numbers().waiters == 1
            assert database.pool_numbers().in_use == 1
            with pytest.raises(Exception, match="QueuePool limit"):
                await waiting
        numbers = database.pool_numbers()
        assert (numbers.waiters, numbers.timeouts, numbers.capacity) == (0, 1, 1)
    finally:
        await database.dispose()


async def test_business_gauges_count_users_and_accounts(
    client: httpx.AsyncClient, make_user: UserFactory
) -> None:
    trader = await make_user("trader")
    made = await client.post(
        "/api/v1/accounts", json={"name": "Counted", "currency": "INR"}, headers=trader.headers
    )
    assert made.status_code == 201, made.text
    families = {
        family.name: family
        for family in text_string_to_metric_families((await client.get("/metrics")).text)
    }
    [accounts] = families["quantdesk_trading_accounts"].samples
    assert accounts.value == 1
    [users] = families["quantdesk_users"].samples
    assert users.value == 1
    # make_user signs the user in: active within a day and within 30 days.
    active = {s.labels["window"]: s.value for s in families["quantdesk_users_active"].samples}
    assert active == {"1d": 1, "30d": 1}


async def test_a_failing_count_never_breaks_the_scrape_and_counts_are_throttled() -> None:
    metrics = Metrics()
    calls: list[float] = []

    async def broken() -> None:
        calls.append(1.0)
        raise RuntimeError("database unreachable")

    metrics.on_scrape(broken)
    await metrics.refresh()
    await metrics.refresh()  # within SCRAPE_HOOK_INTERVAL_S: not counted again
    assert calls == [1.0]
    assert b"quantdesk_http_requests_in_flight" in metrics.render()
