"""A local Kite Connect: the REST API (threaded HTTP server) and the ticker (WebSocket).

Shapes recorded from Kite Connect v3's documentation and pykiteconnect (``connect.py``,
``ticker.py``): the ``{"status": "success", "data": ...}`` envelope; errors as
``{"status": "error", "message", "error_type"}`` with 400 InputException, 403
TokenException, 429 for rate limits; ``POST /session/token`` checking the SHA-256 checksum;
the instruments CSV with its twelve columns; historical candles with the per-interval span
limit enforced (an over-long range is a 400, as Kite answers it); ``/quote`` at most 500
instruments, ``/quote/ohlc`` and ``/quote/ltp`` 1000.  Packets for the ticker are built here
byte by byte with ``struct`` (big-endian), independently of the parser under test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import struct
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from tests.marketdata.providers.fake_servers import FakeRequest, FakeServer, Reply

IST = ZoneInfo("Asia/Kolkata")
# Made-up credentials of the fake (they open nothing anywhere).
API_KEY = "kq7f2m9x4bz1"  # pragma: allowlist secret
API_SECRET = "s3cr3t9v8w7q6p5o4n3m2l1k0j9h8g7"  # pragma: allowlist secret
ACCESS_TOKEN = "AT5x9GqP2mW7kLr4tZ8yB3nV6cJ1hD0f"  # pragma: allowlist secret
MAX_DAYS = {"minute": 60, "3minute": 100, "5minute": 100, "10minute": 100,
            "15minute": 200, "30minute": 200, "60minute": 400, "day": 2000}  # fmt: skip
BATCH = {"/quote": 500, "/quote/ohlc": 1000, "/quote/ltp": 1000}

INSTRUMENTS_CSV = (
    "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,tick_size,"
    "lot_size,instrument_type,segment,exchange\n"
    "738561,2885,RELIANCE,RELIANCE INDUSTRIES,0,,,0.05,1,EQ,NSE,NSE\n"
    "256265,1001,NIFTY 50,NIFTY 50,0,,,0,0,EQ,INDICES,NSE\n"
    "13368834,52222,NIFTY26DECFUT,NIFTY,0,2026-12-29,0,0.1,75,FUT,NFO-FUT,NFO\n"
    "13370370,52228,NIFTY26DEC24500CE,NIFTY,0,2026-12-29,24500,0.05,75,CE,NFO-OPT,NFO\n"
    "412675,1612,USDINR26DECFUT,USDINR,0,2026-12-29,0,0.0025,1,FUT,CDS-FUT,CDS\n"
    "109134855,426308,GOLD26DECFUT,GOLD,0,2026-12-05,0,1,1,FUT,MCX-FUT,MCX\n"
    "291973125,1140520,SENSEX26D1085000CE,SENSEX,0,2026-12-10,85000,0.05,20,CE,BFO-OPT,BFO\n"
)
# Tokens of the dump's currency, commodity and BSE F&O rows (segment code in the low byte).
USDINR_TOKEN, GOLD_TOKEN, SENSEX_CALL_TOKEN = 412675, 109134855, 291973125


def error(status: int, error_type: str, message: str) -> Reply:
    return Reply.json({"status": "error", "message": message, "error_type": error_type}, status)


def success(data: Any) -> Reply:
    return Reply.json({"status": "success", "data": data})


class HttpFake(FakeServer):
    """``FakeServer`` with POST (form bodies land in ``FakeRequest.query``)."""

    def _request_handler_class(self) -> type[BaseHTTPRequestHandler]:
        base = super()._request_handler_class()
        server = self

        class _Handler(base):  # type: ignore[misc, valid-type]
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                form = parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
                request = FakeRequest(
                    method="POST",
                    path=urlsplit(self.path).path,
                    query=form,
                    headers={k.lower(): v for k, v in self.headers.items()},
                )
                answer = server._answer(request)
                assert isinstance(answer, Reply)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

        return _Handler


@dataclass
class KiteFake:
    """Kite's REST API over a small market the tests fill in."""

    api_key: str = API_KEY
    api_secret: str = API_SECRET
    access_token: str = ACCESS_TOKEN
    request_tokens: dict[str, str] = field(default_factory=lambda: {"rq7Yt2Lm9Pq4": "ZW1234"})
    session_open: bool = True  # False: every request answers TokenException
    instruments: str = INSTRUMENTS_CSV
    # (token, interval) -> candles [ts (aware), o, h, l, c, v, oi]
    candles: dict[tuple[int, str], list[list[Any]]] = field(default_factory=dict)
    quotes: dict[str, dict[str, Any]] = field(default_factory=dict)
    historical_calls: list[tuple[str, str, str]] = field(default_factory=list)
    # Historical requests answered before the rest fail (an interrupted backfill).
    historical_budget: int | None = None
    login_time: str = "2026-12-03 09:05:11"  # IST, as /session/token prints it

    def __call__(self, request: FakeRequest) -> Reply:
        if request.headers.get("x-kite-version") != "3":
            return error(400, "InputException", "X-Kite-Version header missing")
        if request.method == "POST" and request.path == "/session/token":
            return self._session(request)
        expected = f"token {self.api_key}:{self.access_token}"
        if not self.session_open or request.headers.get("authorization") != expected:
            return error(403, "TokenException", "Incorrect `api_key` or `access_token`.")
        if request.path == "/instruments":
            return Reply(200, self.instruments.encode(), {"Content-Type": "text/csv"})
        if request.path.startswith("/instruments/historical/"):
            return self._historical(request)
        if request.path in BATCH:
            return self._quotes(request)
        return error(404, "GeneralException", "Route not found")

    def _session(self, request: FakeRequest) -> Reply:
        key, token = request.param("api_key") or "", request.param("request_token") or ""
        expected = hashlib.sha256((key + token + self.api_secret).encode()).hexdigest()
        if key != self.api_key or token not in self.request_tokens:
            return error(403, "TokenException", "Token is invalid or has expired.")
        if request.param("checksum") != expected:
            return error(403, "TokenException", "Invalid `checksum`.")
        user = self.request_tokens.pop(token)  # a request token is good once
        return success(
            {
                "user_type": "individual", "email": "trader@example.com", "user_name": "A Trader",
                "user_shortname": "Trader", "broker": "ZERODHA", "exchanges": ["NSE", "NFO"],
                "products": ["CNC", "NRML", "MIS"], "order_types": ["MARKET", "LIMIT"],
                "avatar_url": None, "user_id": user, "api_key": key,
                "access_token": self.access_token, "public_token": "pt9Yx2", "refresh_token": "",
                "enctoken": "enc9", "login_time": self.login_time, "meta": {},
            }
        )  # fmt: skip

    def _historical(self, request: FakeRequest) -> Reply:
        parts = request.path.split("/")
        token, interval = int(parts[3]), parts[4]
        start = dt.datetime.strptime(request.param("from") or "", "%Y-%m-%d %H:%M:%S")
        end = dt.datetime.strptime(request.param("to") or "", "%Y-%m-%d %H:%M:%S")
        self.historical_calls.append(
            (interval, request.param("from") or "", request.param("to") or "")
        )
        if self.historical_budget is not None:
            if self.historical_budget <= 0:
                return error(400, "InputException", "historical data is not available")
            self.historical_budget -= 1
        if interval not in MAX_DAYS:
            return error(400, "InputException", "invalid interval")
        if end - start > dt.timedelta(days=MAX_DAYS[interval]):
            return error(400, "InputException", "interval exceeds max limit: 60 days")
        with_oi = request.param("oi") == "1"
        first, last = start.replace(tzinfo=IST), end.replace(tzinfo=IST)
        rows = []
        for ts, *values in self.candles.get((token, interval), []):
            if first <= ts <= last:
                stamp = ts.strftime("%Y-%m-%dT%H:%M:%S%z")
                rows.append([stamp, *values] if with_oi else [stamp, *values[:5]])
        return success({"candles": rows})

    def _quotes(self, request: FakeRequest) -> Reply:
        keys = request.query.get("i", [])
        if len(keys) > BATCH[request.path]:
            return error(400, "InputException", "Too many instruments")
        data: dict[str, Any] = {}
        for key in keys:
            row = self.quotes.get(key)
            if row is None:
                continue
            if request.path == "/quote/ltp":
                row = {"instrument_token": row["instrument_token"], "last_price": row["last_price"]}
            elif request.path == "/quote/ohlc":
                row = {k: row[k] for k in ("instrument_token", "last_price", "ohlc")}
            data[key] = row
        return success(data)


def kite_http(fake: KiteFake) -> Iterator[HttpFake]:
    server = HttpFake(fake)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- ticker packets


def ltp_packet(token: int, last: int) -> bytes:
    return struct.pack(">II", token, last)


def index_packet(token: int, last: int, high: int, low: int, open_: int, close: int,
                 ts: int | None = None) -> bytes:  # fmt: skip
    body = struct.pack(">IIIIIIi", token, last, high, low, open_, close, last - close)
    return body if ts is None else body + struct.pack(">I", ts)


def quote_packet(token: int, last: int, qty: int, avg: int, volume: int, buy: int, sell: int,
                 ohlc: tuple[int, int, int, int]) -> bytes:  # fmt: skip
    return struct.pack(">11I", token, last, qty, avg, volume, buy, sell, *ohlc)


def full_packet(
    token: int,
    last: int,
    *,
    ohlc: tuple[int, int, int, int],
    volume: int,
    oi: tuple[int, int, int],
    times: tuple[int, int],
    bids: list[tuple[int, int, int]],
    asks: list[tuple[int, int, int]],
) -> bytes:
    head = quote_packet(token, last, 25, last, volume, 1200, 1500, ohlc)
    tail = struct.pack(">IIIII", times[0], oi[0], oi[1], oi[2], times[1])
    depth = b"".join(struct.pack(">IIHxx", q, p, o) for q, p, o in [*bids, *asks])
    packet = head + tail + depth
    assert len(packet) == 184
    return packet


def frame(*packets: bytes) -> bytes:
    out = struct.pack(">H", len(packets))
    for packet in packets:
        out += struct.pack(">H", len(packet)) + packet
    return out


# --------------------------------------------------------------------------- ticker server


@dataclass
class TickerFake:
    """Kite's ticker: checks ``api_key``/``access_token`` at the handshake (403 otherwise),
    records every subscribe/mode message, broadcasts the frames a test sends."""

    api_key: str = API_KEY
    access_token: str = ACCESS_TOKEN
    accept: bool = True
    handshakes: int = 0
    refused: int = 0
    messages: list[dict[str, Any]] = field(default_factory=list)
    connections: set[ServerConnection] = field(default_factory=set)
    subscribed: dict[int, str] = field(default_factory=dict)
    server: Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = next(iter(self.server.sockets)).getsockname()[:2]
        return f"ws://{host}:{port}"

    def _check(self, _connection: ServerConnection, request: Request) -> Response | None:
        self.handshakes += 1
        query = parse_qs(urlsplit(request.path).query)
        good = query.get("api_key") == [self.api_key] and query.get("access_token") == [
            self.access_token
        ]
        if self.accept and good:
            return None
        self.refused += 1
        body = json.dumps({"status": "error", "error_type": "TokenException"}).encode()
        return Response(HTTPStatus.FORBIDDEN.value, "Forbidden", Headers(), body)

    async def _handler(self, connection: ServerConnection) -> None:
        self.connections.add(connection)
        try:
            async for message in connection:
                document = json.loads(message)
                self.messages.append(document)
                if document["a"] == "subscribe":
                    for token in document["v"]:
                        self.subscribed.setdefault(token, "quote")
                elif document["a"] == "unsubscribe":
                    for token in document["v"]:
                        self.subscribed.pop(token, None)
                elif document["a"] == "mode":
                    mode, tokens = document["v"]
                    for token in tokens:
                        self.subscribed[token] = mode
        except Exception:  # noqa: S110 - a dropped client is the point of some tests
            pass
        finally:
            self.connections.discard(connection)

    async def send(self, payload: bytes | str) -> None:
        for connection in list(self.connections):
            await connection.send(payload)

    async def drop_all(self) -> None:
        for connection in list(self.connections):
            await connection.close(code=1011, reason="going away")
        self.subscribed.clear()


async def eventually(predicate: Callable[[], bool], within_s: float = 5.0) -> None:
    """Wait (polling every 10 ms) until ``predicate()`` holds; fail after ``within_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while not predicate():
        assert loop.time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.01)


async def ticker_server(fake: TickerFake) -> AsyncIterator[TickerFake]:
    async with serve(fake._handler, "127.0.0.1", 0, process_request=fake._check) as server:
        fake.server = server
        yield fake
