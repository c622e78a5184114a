"""schemathesis over the whole OpenAPI document, against a real ``quantdesk serve``: every
operation, authenticated as an admin, with the demo market loaded (a copy of the run's demo
database); then stateful sequences along the links it infers. The bar is the outside
review's: zero server errors.

Kept lean for the suite (a few examples per operation, derandomised so a red run replays);
run it with more examples by setting QD_SCHEMATHESIS_EXAMPLES.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from tests.conftest import TEST_SECRET
from tests.support.demo_database import copy_demo_database
from tests.support.servers import free_port

EXAMPLES = int(os.environ.get("QD_SCHEMATHESIS_EXAMPLES", "4"))
ADMIN = {"email": "fuzz-admin@example.com", "password": "a long enough fuzzing passphrase"}
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


class Server:
    def __init__(self, base: str) -> None:
        self.base = base
        self.token = ""

    def headers(self) -> dict[str, str]:
        """An admin token, signed in again after a 401 (fuzzed calls may log the admin out
        everywhere): checking it before every call doubled the calls."""
        if self.token:
            return self._bearer()
        login = httpx.post(f"{self.base}/api/v1/auth/login", json=ADMIN, timeout=10)
        assert login.status_code == 200, login.text
        self.token = login.json()["access_token"]
        return self._bearer()

    def seen(self, status: int) -> None:
        if status == 401:
            self.token = ""

    def _bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _environment(root: Path, port: int) -> dict[str, str]:
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith("QUANTDESK_")},
        "QUANTDESK_PROFILE": "test",
        "QUANTDESK_DATABASE_URL": f"sqlite+aiosqlite:///{root / 'fuzz.db'}",
        "QUANTDESK_VAR_DIR": str(root / "var"),
        "QUANTDESK_SECRET_KEY": TEST_SECRET,
        "QUANTDESK_PORT": str(port),
        "QUANTDESK_DEMO_DATA": "false",
        "QUANTDESK_LOG_LEVEL": "ERROR",
        # The fuzzer is one client on one address: budgets that would throttle it to 429s
        # would hide the handlers behind the limiter.
        "QUANTDESK_RATE_LIMIT_LOGIN_IP": "100000/minute",
        "QUANTDESK_RATE_LIMIT_LOGIN_ACCOUNT": "100000/minute",
        "QUANTDESK_RATE_LIMIT_AUTH_IP": "100000/minute",
        "QUANTDESK_RATE_LIMIT_API": "100000/second",
        "QUANTDESK_RATE_LIMIT_REGISTER_IP": "100000/minute",
        "QUANTDESK_RATE_LIMIT_FAILED_AUTH_IP": "100000/minute",
    }


def _command(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "quantdesk"), *args]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("fuzz")
    port = free_port()
    env = _environment(root, port)
    copy_demo_database(tmp_path_factory, root / "fuzz.db")
    created = subprocess.run(
        [*_command("admin", "create-user", "--email", ADMIN["email"]), "--role", "admin",
         "--password-stdin"],
        cwd=root, env=env, input=ADMIN["password"] + "\n", capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    process = subprocess.Popen(
        _command("serve", "--no-migrate"),
        cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "quantdesk serve did not come up"
            time.sleep(0.2)
        yield Server(base)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def api_schema(server: Server) -> Any:
    return schemathesis.openapi.from_url(f"{server.base}/openapi.json")


def test_no_operation_answers_a_server_error(api_schema: Any, server: Server) -> None:
    failures: list[str] = []
    calls: list[int] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) > 50
    for operation in operations:

        @FUZZ_SETTINGS
        @given(case=operation.as_strategy())
        def fuzz(case: Any) -> None:
            response = case.call_and_validate(headers=server.headers(), checks=[not_a_server_error])
            server.seen(response.status_code)
            calls.append(response.status_code)

        try:
            fuzz()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}"[:600])
    assert failures == []
    assert len(calls) >= 2 * len(operations)  # the fuzzer really reached every operation
    assert sum(1 for status in calls if status < 300) > len(operations) // 2


def test_stateful_sequences_answer_no_server_error(api_schema: Any, server: Server) -> None:
    machine = api_schema.as_state_machine()

    class Authenticated(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": server.headers()}

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            server.seen(response.status_code)
            case.validate_response(response, checks=[not_a_server_error])

    Authenticated.run(
        settings=settings(
            max_examples=EXAMPLES * 2,
            stateful_step_count=4,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
    )
