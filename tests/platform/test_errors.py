"""Every error is RFC 7807 problem+json with a stable type, and 500s leak nothing."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, Field

from quantdesk.platform.exceptions import Conflict, NotFound, ServiceUnavailable

PROBLEM = "application/problem+json"


class Order(BaseModel):
    quantity: int = Field(gt=0)
    symbol: str


@pytest.fixture
def routes(app: FastAPI) -> FastAPI:
    async def create_order(order: Order) -> dict[str, str]:
        return {"symbol": order.symbol}

    async def missing() -> None:
        raise NotFound("portfolio 42 does not exist")

    async def clash() -> None:
        raise Conflict("idempotency key reused with a different body", key="abc")

    async def down() -> None:
        raise ServiceUnavailable("finnhub is down", dependency="provider:finnhub", retry_after=5)

    async def crash() -> None:
        raise RuntimeError("secret internals: /etc/passwd at 0xdeadbeef")

    app.add_api_route("/t/orders", create_order, methods=["POST"])
    app.add_api_route("/t/missing", missing)
    app.add_api_route("/t/conflict", clash)
    app.add_api_route("/t/down", down)
    app.add_api_route("/t/crash", crash)
    return app


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == f"urn:quantdesk:problem:{slug}"
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    return dict(body)


async def test_unknown_route_is_problem_404(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/no/such/thing"), 404, "not-found")
    assert body["instance"] == "/no/such/thing"


async def test_wrong_method_is_problem_405(client: httpx.AsyncClient) -> None:
    response = await client.delete("/health/live")
    body = assert_problem(response, 405, "method-not-allowed")
    assert "DELETE" in str(body["detail"])
    assert response.headers["allow"] == "GET"


@pytest.mark.usefixtures("routes")
async def test_validation_errors_list_field_paths(client: httpx.AsyncClient) -> None:
    response = await client.post("/t/orders", json={"quantity": 0})
    body = assert_problem(response, 422, "invalid-input")
    errors = body["errors"]
    assert isinstance(errors, list)
    assert {e["field"] for e in errors} == {"quantity", "symbol"}
    assert "quantity" in str(body["detail"])


@pytest.mark.usefixtures("routes")
async def test_malformed_json_is_422_not_500(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/t/orders", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_problem(response, 422, "invalid-input")


@pytest.mark.usefixtures("routes")
async def test_domain_errors_map_once(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/t/missing"), 404, "not-found")
    assert body["detail"] == "portfolio 42 does not exist"
    body = assert_problem(await client.get("/t/conflict"), 409, "conflict")
    assert body["key"] == "abc"
    response = await client.get("/t/down")
    body = assert_problem(response, 503, "service-unavailable")
    assert body["dependency"] == "provider:finnhub"
    assert response.headers["retry-after"] == "5"


@pytest.mark.usefixtures("routes")
async def test_unhandled_error_is_opaque_500_with_trace_in_log(
    client: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    response = await client.get("/t/crash", headers={"x-request-id": "req-crash-1"})
    body = assert_problem(response, 500, "internal-error")
    assert body["request_id"] == "req-crash-1"
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    logged = capsys.readouterr().err
    assert "unhandled_error" in logged
    assert "req-crash-1" in logged
    assert "secret internals" in logged
    assert "RuntimeError" in logged


async def test_request_id_is_accepted_or_generated(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/health/live", headers={"x-request-id": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    hostile = await client.get("/health/live", headers={"x-request-id": "bad id <script>"})
    assert hostile.headers["x-request-id"] != "bad id <script>"
    assert len(hostile.headers["x-request-id"]) == 32
