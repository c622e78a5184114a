"""deploy/prometheus: the rules load, every alert fires on its synthetic series and stays
quiet on a healthy one (`promtool test rules`, Debian's prometheus package), and every alert
the operations issue asks for exists, with a runbook section in docs/operations.md."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.deploy.tools import DEPLOY, ROOT, run, tool

PROMETHEUS = DEPLOY / "prometheus"

# The alerts issue 16 names, by what they watch.
REQUIRED = {
    "error rate > 0.1% for 5 minutes": "QuantdeskHighErrorRate",
    "p95 latency > 500 ms": "QuantdeskLatencyP95High",
    "p99 latency > 1 s": "QuantdeskLatencyP99High",
    "database pool waiters > 0 for 1 minute": "QuantdeskDatabasePoolExhausted",
    "Redis unreachable": "QuantdeskRedisUnreachable",
    "readiness failing": "QuantdeskNotReady",
    "matcher lag": "QuantdeskMatcherLagging",
    "WebSocket slow-consumer disconnects": "QuantdeskStreamSlowConsumers",
    "login failure spike": "QuantdeskLoginFailureSpike",
    "rate-limit hits spike": "QuantdeskRateLimitSpike",
    "backup older than 24 h": "QuantdeskBackupTooOld",
}


def alerts() -> list[dict[str, Any]]:
    document = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def test_rules_load_and_every_alert_passes_its_unit_tests() -> None:
    promtool = tool("promtool")
    checked = run(promtool, "check", "rules", "alerts.yml", cwd=PROMETHEUS)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = run(promtool, "check", "config", "--syntax-only", "prometheus.yml", cwd=PROMETHEUS)
    assert config.returncode == 0, config.stdout + config.stderr
    tested = run(promtool, "test", "rules", "alerts.test.yml", cwd=PROMETHEUS)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    tests = yaml.safe_load((PROMETHEUS / "alerts.test.yml").read_text())["tests"]
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in tests:
        for check in case["alert_rule_test"]:
            (fired if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - fired == set(), "alerts never seen firing in alerts.test.yml"
    # A threshold is only tested if something on the healthy side of it stays quiet (the
    # scrape-down and the "no backup at all" cases excepted: their quiet side is trivial).
    assert names - quiet - {"QuantdeskDown"} == set(), "alerts never seen quiet"


def test_the_issue_alerts_exist_with_a_severity_and_a_runbook() -> None:
    by_name = {rule["alert"]: rule for rule in alerts()}
    assert set(REQUIRED.values()) <= set(by_name)
    runbook = (ROOT / "docs" / "operations.md").read_text()
    anchors = {_anchor(heading) for heading in re.findall(r"^#+ (.+)$", runbook, re.MULTILINE)}
    for name, rule in by_name.items():
        assert rule["labels"]["severity"] in {"page", "ticket"}, name
        path, _, anchor = rule["annotations"]["runbook"].partition("#")
        assert path == "docs/operations.md", name
        assert anchor in anchors, f"{name}: no section #{anchor} in docs/operations.md"


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, spaces to dashes, punctuation out."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")
