"""The load and chaos kit (benchmarks/load) in a tiny mode, so it cannot break silently
between the runs of ``make load`` and ``make chaos``: the runner's own Locust command and
environment, with its locustfile, for a few seconds against a real ``quantdesk serve`` on
SQLite with the demo market; every endpoint class of the mix and the stream subscriber
must have run, and nothing failed.

The runner's PostgreSQL + Redis system and its reports are left to ``make load`` (minutes);
what is checked here is what a change elsewhere breaks: the routes, bodies and answers the
scenarios depend on, and the kit's statistics parsing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from benchmarks.load import run

from tests.conftest import TEST_SECRET
from tests.support.servers import serve_quantdesk

# Every request name the locustfile gives (its endpoint classes), and the stream's.
ENDPOINT_CLASSES = {
    "quotes",
    "bars",
    "chain",
    "account",
    "orders",
    "order place",
    "order cancel",
    "portfolios",
    "login",
}
STREAM_CLASSES = {"stream connect", "tick"}
SECONDS = 2


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp: Path = tmp_path_factory.mktemp("load-kit")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("QUANTDESK_")},
        "QUANTDESK_PROFILE": "test",
        "QUANTDESK_SECRET_KEY": TEST_SECRET,
        "QUANTDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'load.db'}",
        "QUANTDESK_VAR_DIR": str(tmp),
        "QUANTDESK_DEMO_DATA": "true",
        "QUANTDESK_DEMO_TICK_INTERVAL_S": "0.25",
        "QUANTDESK_LOG_LEVEL": "WARNING",
        "QUANTDESK_DB_SQLITE_BUSY_TIMEOUT_MS": "10000",
        **{k: v for k, v in run.server_env("", "", tmp).items() if "RATE_LIMIT" in k},
    }
    quantdesk = str(Path(sys.executable).with_name("quantdesk"))
    # The smallest demo market the mix runs on (the NIFTY chain included): a year of daily
    # bars (the bars class asks for 250), one session of minutes.
    subprocess.run(
        [quantdesk, "demo", "load", "--years", "1", "--minute-sessions", "1"],
        env=env, cwd=tmp, check=True, capture_output=True,
    )  # fmt: skip
    with serve_quantdesk(env, tmp, "--no-migrate") as base:
        yield base


def test_every_scenario_of_the_load_kit_runs_without_a_failure(served: str, tmp_path: Path) -> None:
    people = run.register(served, 2, "kit")
    people_file = tmp_path / "people.json"
    people_file.write_text(json.dumps(people))
    assert run.portfolios_served(served)
    assert run.streams_served(served)
    # Closed loop; QD_LOAD_SMOKE makes each trader run every task once as it starts.
    stage = run.Stage("smoke", SECONDS, 2, "0,0")
    prefix = tmp_path / "locust-smoke"
    command, env = run.locust_command(
        served, stage, people_file, prefix, streams=1, portfolios=True
    )
    env["QD_LOAD_SMOKE"] = "1"
    locust = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    rows, total = run.read_stats(Path(f"{prefix}_stats.csv"))
    failures = run.read_failures(Path(f"{prefix}_failures.csv"))
    assert total is not None, locust.stderr[-2000:]
    ran = {row.name: row.requests for row in rows}
    assert failures == {}, failures
    assert {row.name: row.failures for row in rows if row.failures} == {}
    # Each class ran (the "not problem+json" check of every error answer never fired).
    assert set(ran) == ENDPOINT_CLASSES | STREAM_CLASSES, ran
    assert all(count > 0 for count in ran.values()), ran
    assert ran["order cancel"] <= ran["order place"]
    assert total.requests == sum(ran.values())
    assert locust.returncode == 0, locust.stderr[-2000:]
