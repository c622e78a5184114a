"""The ``make load`` scenario mix: a population of traders against ``quantdesk serve``.

Each simulated trader signs in as one of the users the runner (``benchmarks/load/run.py``)
registered, then, with a think time between actions (``QD_LOAD_THINK_S``: "min,max"
seconds; "0,0" for a closed loop), reads quotes, bars and the option chain, places a
resting limit order and cancels it, reads its account, orders and portfolios, and now and
then signs in again.  Stream subscribers (``StreamSubscriber``) hold a WebSocket
subscribed to quotes.  Requests are named by endpoint class, so Locust's statistics are
per class.  Run through the runner, which sets everything up; by hand:

    QD_LOAD_USERS=users.json locust -f benchmarks/load/locustfile.py --host http://127.0.0.1:8000
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from decimal import ROUND_DOWN, Decimal
from typing import Any

import websocket
from locust import FastHttpUser, User, between, constant, events, task

QUOTE_KEYS = ["NSE:RELIANCE", "NSE:TCS", "NSE:INFY", "NSE:HDFCBANK", "SIM:ALPHA", "SIM:BETA",
              "SIM:GAMMA", "SIM:SIMIDX", "NASDAQ:AAPL", "NASDAQ:MSFT"]  # fmt: skip
BAR_KEYS = ["NSE:RELIANCE", "NSE:TCS", "NSE:INFY", "SIM:ALPHA"]
ORDER_KEY = "SIM:ALPHA"
TICK = Decimal("0.05")


def _think() -> Any:
    low, _, high = os.environ.get("QD_LOAD_THINK_S", "0.5,1.5").partition(",")
    return constant(0) if float(high or low) == 0 else between(float(low), float(high or low))


def _people() -> list[dict[str, str]]:
    with open(os.environ["QD_LOAD_USERS"], encoding="utf-8") as file:
        people: list[dict[str, str]] = json.load(file)
    return people


PEOPLE = _people() if os.environ.get("QD_LOAD_USERS") else []
PORTFOLIOS = os.environ.get("QD_LOAD_PORTFOLIOS") == "1"
# QD_LOAD_SMOKE=1: every trader runs each task once as it starts, so a run of seconds covers
# the whole mix whatever the weights draw (tests/ops/test_load_kit.py).
SMOKE = os.environ.get("QD_LOAD_SMOKE") == "1"


class Trader(FastHttpUser):
    wait_time = _think()
    # A request slower than this is a failure (a hang), not a long wait.
    network_timeout = 15.0
    connection_timeout = 5.0

    def on_start(self) -> None:
        self.person = random.choice(PEOPLE)
        self.account_id = self.person["account_id"]
        self.headers = {"Authorization": f"Bearer {self.person['access_token']}"}
        self.limit_price = "1.00"
        self._price_from_quote()
        if SMOKE:
            for each in (self.quotes, self.bars, self.chain, self.account, self.orders,
                         self.place_and_cancel, self.portfolios, self.login):  # fmt: skip
                each()

    def _price_from_quote(self) -> None:
        with self.client.get(
            f"/api/v1/market/quotes?keys={ORDER_KEY}", headers=self.headers, name="quotes",
            catch_response=True,
        ) as response:  # fmt: skip
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
                return
            quotes = response.json().get("quotes") or response.json().get("items") or []
            last = _last_price(quotes)
            if last is not None:
                # 5% under the market: inside the price band, resting, never filled.
                price = (last * Decimal("0.95") / TICK).to_integral_value(ROUND_DOWN) * TICK
                self.limit_price = str(price)

    @task(30)
    def quotes(self) -> None:
        keys = ",".join(random.sample(QUOTE_KEYS, 5))
        self.client.get(f"/api/v1/market/quotes?keys={keys}", headers=self.headers, name="quotes")

    @task(10)
    def bars(self) -> None:
        key = random.choice(BAR_KEYS)
        self.client.get(
            f"/api/v1/market/bars/{key}?timeframe=1d&limit=250", headers=self.headers, name="bars"
        )

    @task(5)
    def chain(self) -> None:
        self.client.get("/api/v1/analytics/chain/NIFTY", headers=self.headers, name="chain")

    @task(10)
    def account(self) -> None:
        self.client.get(f"/api/v1/accounts/{self.account_id}", headers=self.headers, name="account")

    @task(5)
    def orders(self) -> None:
        self.client.get(
            f"/api/v1/accounts/{self.account_id}/orders?limit=20",
            headers=self.headers,
            name="orders",
        )

    @task(10)
    def place_and_cancel(self) -> None:
        body = {"instrument": ORDER_KEY, "side": "buy", "quantity": "1", "type": "limit",
                "limit_price": self.limit_price, "time_in_force": "day",
                "client_order_id": uuid.uuid4().hex}  # fmt: skip
        with self.client.post(
            f"/api/v1/accounts/{self.account_id}/orders", json=body, headers=self.headers,
            name="order place", catch_response=True,
        ) as placed:  # fmt: skip
            if placed.status_code == 422 and "price" in (placed.text or ""):
                self._price_from_quote()  # the market moved away from our price
                placed.success()
                return
            if placed.status_code != 201:
                placed.failure(f"status {placed.status_code}")
                return
            order_id = placed.json()["id"]
        self.client.delete(
            f"/api/v1/accounts/{self.account_id}/orders/{order_id}", headers=self.headers,
            name="order cancel",
        )  # fmt: skip

    @task(5)
    def portfolios(self) -> None:
        if PORTFOLIOS:
            self.client.get("/api/v1/portfolios", headers=self.headers, name="portfolios")

    @task(1)
    def login(self) -> None:
        credentials = {"email": self.person["email"], "password": self.person["password"]}
        with self.client.post(
            "/api/v1/auth/login", json=credentials, name="login", catch_response=True
        ) as response:
            if response.status_code == 200:
                self.headers = {"Authorization": f"Bearer {response.json()['access_token']}"}
            else:
                response.failure(f"status {response.status_code}")


def _record(**fields: Any) -> None:
    events.request.fire(**fields)  # type: ignore[no-untyped-call]


def _errors_are_problems(request_type: str, name: str, response: Any = None, **_: Any) -> None:
    """Every error answer must be an RFC 7807 problem (the 503s of an outage above all):
    one that is not counts as a failure of its own, "not problem+json", which the runner
    and the kit's smoke test look for."""
    status = getattr(response, "status_code", None) or 0
    if status < 400 or request_type == "WS":
        return
    content_type = (getattr(response, "headers", None) or {}).get("content-type", "")
    if not content_type.startswith("application/problem+json"):
        _record(request_type="CHECK", name="not problem+json", response_time=0,
                response_length=0, exception=AssertionError(f"{name}: {status} {content_type}"),
                context={})  # fmt: skip


events.request.add_listener(_errors_are_problems)  # type: ignore[no-untyped-call]


def _last_price(quotes: Any) -> Decimal | None:
    items = quotes.values() if isinstance(quotes, dict) else quotes
    for quote in items:
        if isinstance(quote, dict) and quote.get("last"):
            return Decimal(str(quote["last"]))
    return None


class StreamSubscriber(User):
    """One WebSocket subscribed to ten instruments' quotes for the whole run: each frame
    counts as a "tick" (its size as the response length), the connection as "stream"."""

    fixed_count = int(os.environ.get("QD_LOAD_STREAMS", "0"))
    weight = 0 if fixed_count == 0 else 1
    wait_time = constant(0)

    def on_start(self) -> None:
        self.socket: websocket.WebSocket | None = None

    @task
    def listen(self) -> None:
        if self.socket is None:
            self._connect()
            return
        started = time.perf_counter()
        try:
            frame = self.socket.recv()
        except Exception as exc:  # a dropped connection: count it, connect again
            _record(request_type="WS", name="tick", response_time=0,
                                response_length=0, exception=exc)  # fmt: skip
            self.socket = None
            return
        _record(request_type="WS", name="tick",
                            response_time=(time.perf_counter() - started) * 1000,
                            response_length=len(frame), exception=None)  # fmt: skip

    def _connect(self) -> None:
        import httpx

        started = time.perf_counter()
        person = random.choice(PEOPLE)
        host = (self.host or "").rstrip("/")
        try:
            ticket = httpx.post(
                f"{host}/api/v1/stream/tickets",
                headers={"Authorization": f"Bearer {person['access_token']}"},
                timeout=15,
            )
            ticket.raise_for_status()
            socket = websocket.create_connection(
                host.replace("http", "ws", 1) + "/api/v1/stream", timeout=15
            )
            socket.send(json.dumps({"op": "auth", "ticket": ticket.json()["ticket"]}))
            socket.send(json.dumps({"op": "subscribe", "channel": "ticks", "mode": "quote",
                                    "instruments": QUOTE_KEYS}))  # fmt: skip
        except Exception as exc:
            _record(request_type="WS", name="stream connect",
                                response_time=(time.perf_counter() - started) * 1000,
                                response_length=0, exception=exc)  # fmt: skip
            time.sleep(1)
            return
        self.socket = socket
        _record(request_type="WS", name="stream connect",
                            response_time=(time.perf_counter() - started) * 1000,
                            response_length=0, exception=None)  # fmt: skip

    def on_stop(self) -> None:
        if self.socket is not None:
            self.socket.close()
