"""Real local HTTP servers speaking Finnhub's, Alpha Vantage's and Polygon's protocols.

Each fake is a ``http.server.ThreadingHTTPServer`` on 127.0.0.1 and a free port, running in
a background thread, so the providers under test go through their real httpx stack: DNS-free
TCP, HTTP/1.1 framing, timeouts, connection errors.  Tests inject faults per path:

* ``server.inject(path, fault, …)`` — one-shot faults, served in order, then normal answers;
* ``server.fail_always(path, fault)`` — every request to ``path`` gets ``fault``.

A fault is a ``Reply`` (any status, headers, body — malformed JSON included), ``Hang()`` (no
answer until the server stops: slower than any read timeout) or ``Truncated`` (a
``Content-Length`` larger than the body, then the connection is closed).

The protocol fakes hold a small market in dicts the tests fill in, check the API key the way
the real service expects it, and answer in the documented response shapes.
"""

from __future__ import annotations

import json
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

# --------------------------------------------------------------------------- generic server


@dataclass(frozen=True)
class FakeRequest:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]  # lower-case names

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(
        cls, payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
    ) -> Reply:
        # Floats are written with Python's shortest repr, i.e. the digits the test typed.
        body = json.dumps(payload).encode()
        return cls(status, body, {"Content-Type": "application/json", **(headers or {})})

    @classmethod
    def text(cls, body: str, status: int = 200, content_type: str = "text/plain") -> Reply:
        return cls(status, body.encode(), {"Content-Type": content_type})


@dataclass(frozen=True)
class Hang:
    """Never answer (until the server stops): slower than any read timeout."""


@dataclass(frozen=True)
class Truncated:
    """Announce ``declared`` bytes, send ``body``, close the connection."""

    body: bytes
    declared: int


Fault = Reply | Hang | Truncated
Handler = Callable[[FakeRequest], Reply]


class FakeServer:
    """A threaded HTTP server on 127.0.0.1 answering with ``handler`` unless a fault is due."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._lock = threading.Lock()
        self._once: dict[str, deque[Fault]] = {}
        self._always: dict[str, Fault] = {}
        self._release = threading.Event()
        self.hits: Counter[str] = Counter()
        self.requests: list[FakeRequest] = []
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._request_handler_class())
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        # A short poll interval lets ``stop()`` return in milliseconds (default: 0.5 s).
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def inject(self, path: str, *faults: Fault) -> None:
        with self._lock:
            self._once.setdefault(path, deque()).extend(faults)

    def fail_always(self, path: str, fault: Fault) -> None:
        with self._lock:
            self._always[path] = fault

    def heal(self, path: str) -> None:
        with self._lock:
            self._always.pop(path, None)
            self._once.pop(path, None)

    def hit_count(self, path: str) -> int:
        with self._lock:
            return self.hits[path]

    def _answer(self, request: FakeRequest) -> Fault:
        with self._lock:
            self.hits[request.path] += 1
            self.requests.append(request)
            queued = self._once.get(request.path)
            if queued:
                return queued.popleft()
            if request.path in self._always:
                return self._always[request.path]
        return self._handler(request)

    def _request_handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes; with Nagle on, the client's delayed ACK
            # would hold the body back ~40 ms per request.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                request = FakeRequest(
                    method="GET",
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                )
                answer = server._answer(request)
                if isinstance(answer, Hang):
                    server._release.wait(timeout=10)
                    self.close_connection = True
                    return
                if isinstance(answer, Truncated):
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(answer.declared))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(answer.body)
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests assert on ``hits`` and ``requests`` instead."""

        return _Handler


class VirtualTime:
    """An injectable monotonic clock and ``sleep`` that advance together, instantly.

    Backoff sleeps, ``Retry-After`` waits, rate-limit waits, breaker cool-downs and cache TTLs
    all run on it, so tests assert the exact seconds waited without waiting them.
    """

    def __init__(self) -> None:
        self.now = 1_000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Running:
    """A started fake and its protocol state, as handed to tests."""

    server: FakeServer

    @property
    def base_url(self) -> str:
        return self.server.base_url


def serve(handler: Handler) -> Iterator[FakeServer]:
    """Start a fake server for one test (use from a fixture with ``yield from``)."""
    server = FakeServer(handler).start()
    try:
        yield server
    finally:
        server.stop()


def utc_epoch(text: str) -> int:
    """Epoch seconds of an ISO 8601 UTC instant (``2024-01-05T14:30:00``)."""
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


# --------------------------------------------------------------------------- Finnhub


@dataclass
class FinnhubFake:
    """Finnhub's ``/api/v1`` REST API: quote, stock/candle, search, stock/symbol."""

    api_key: str
    quotes: dict[str, dict[str, Any]] = field(default_factory=dict)
    # (symbol, resolution) → rows of (t, o, h, l, c, v)
    candles: dict[tuple[str, str], list[tuple[int, float, float, float, float, int]]] = field(
        default_factory=dict
    )
    search_results: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    us_symbols: list[dict[str, str]] = field(default_factory=list)

    def __call__(self, request: FakeRequest) -> Reply:
        if request.headers.get("x-finnhub-token") != self.api_key:
            return Reply.json({"error": "Invalid API key"}, status=401)
        route = request.path.removeprefix("/api/v1")
        if route == "/quote":
            symbol = request.param("symbol") or ""
            zero = {"c": 0, "d": None, "dp": None, "h": 0, "l": 0, "o": 0, "pc": 0, "t": 0}
            return Reply.json(self.quotes.get(symbol, zero))
        if route == "/stock/candle":
            return self._candles(request)
        if route == "/search":
            query = (request.param("q") or "").lower()
            result = self.search_results.get(query, [])
            return Reply.json({"count": len(result), "result": result})
        if route == "/stock/symbol":
            if request.param("exchange") != "US":
                return Reply.json([])
            return Reply.json(self.us_symbols)
        return Reply.json({"error": "Not found"}, status=404)

    def _candles(self, request: FakeRequest) -> Reply:
        symbol, resolution = request.param("symbol"), request.param("resolution")
        start, end = int(request.param("from") or 0), int(request.param("to") or 0)
        rows = [
            row
            for row in self.candles.get((symbol or "", resolution or ""), [])
            if start <= row[0] <= end
        ]
        if not rows:
            return Reply.json({"s": "no_data"})
        t, o, h, lo, c, v = (list(col) for col in zip(*rows, strict=True))
        return Reply.json({"c": c, "h": h, "l": lo, "o": o, "s": "ok", "t": t, "v": v})


# --------------------------------------------------------------------------- Alpha Vantage

AV_INVALID_CALL = (
    "Invalid API call. Please retry or visit the documentation "
    "(https://www.alphavantage.co/documentation/) for {function}."
)
AV_BAD_KEY = (
    "the parameter apikey is invalid or missing. Please claim your free API key on "
    "(https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds."
)
AV_MINUTE_NOTE = (
    "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute "
    "and 500 calls per day. Please visit https://www.alphavantage.co/premium/ if you would "
    "like to target a higher API call frequency."
)
AV_DAILY_INFORMATION = (
    "Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per day. "
    "Please subscribe to any of the premium plans at https://www.alphavantage.co/premium/ to "
    "instantly remove all daily rate limits."
)
AV_PREMIUM_INFORMATION = (
    "Thank you for using Alpha Vantage! This is a premium endpoint. You may subscribe to any "
    "of the premium plans at https://www.alphavantage.co/premium/ to instantly unlock all "
    "premium endpoints"
)

OHLCV = tuple[str, str, str, str, str]


@dataclass
class AlphaVantageFake:
    """Alpha Vantage's ``/query`` API; numbers are strings, as Alpha Vantage sends them."""

    api_key: str
    daily: dict[str, dict[str, OHLCV]] = field(default_factory=dict)
    # symbol → {"YYYY-MM-DD HH:MM:SS" (US/Eastern): row}
    intraday: dict[str, dict[str, OHLCV]] = field(default_factory=dict)
    quotes: dict[str, dict[str, str]] = field(default_factory=dict)
    matches: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    # (from, to) → {"YYYY-MM-DD" (UTC): close}
    fx: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    listing_csv: str = "symbol,name,exchange,assetType,ipoDate,delistingDate,status\r\n"

    def __call__(self, request: FakeRequest) -> Reply:
        if request.path != "/query":
            return Reply.text("Not Found", status=404, content_type="text/html")
        if request.param("apikey") != self.api_key:
            return Reply.json({"Error Message": AV_BAD_KEY})
        function = request.param("function") or ""
        symbol = request.param("symbol") or ""
        invalid = Reply.json({"Error Message": AV_INVALID_CALL.format(function=function)})
        if function == "TIME_SERIES_DAILY":
            if symbol not in self.daily:
                return invalid
            meta = {
                "1. Information": "Daily Prices (open, high, low, close) and Volumes",
                "2. Symbol": symbol,
                "3. Last Refreshed": max(self.daily[symbol]),
                "4. Output Size": (request.param("outputsize") or "compact").title(),
                "5. Time Zone": "US/Eastern",
            }
            series = {
                day: _av_row(row) for day, row in sorted(self.daily[symbol].items(), reverse=True)
            }
            return Reply.json({"Meta Data": meta, "Time Series (Daily)": series})
        if function == "TIME_SERIES_INTRADAY":
            if symbol not in self.intraday or request.param("interval") != "1min":
                return invalid
            month = request.param("month") or ""
            rows = {ts: row for ts, row in self.intraday[symbol].items() if ts.startswith(month)}
            meta = {
                "1. Information": "Intraday (1min) open, high, low, close prices and volume",
                "2. Symbol": symbol,
                "3. Last Refreshed": max(rows, default=""),
                "4. Interval": "1min",
                "5. Output Size": "Full size",
                "6. Time Zone": "US/Eastern",
            }
            series = {ts: _av_row(row) for ts, row in sorted(rows.items(), reverse=True)}
            return Reply.json({"Meta Data": meta, "Time Series (1min)": series})
        if function == "FX_DAILY":
            pair = (request.param("from_symbol") or "", request.param("to_symbol") or "")
            if pair not in self.fx:
                return invalid
            meta = {
                "1. Information": "Forex Daily Prices (open, high, low, close)",
                "2. From Symbol": pair[0],
                "3. To Symbol": pair[1],
                "4. Output Size": (request.param("outputsize") or "compact").title(),
                "5. Last Refreshed": max(self.fx[pair]),
                "6. Time Zone": "UTC",
            }
            series = {
                day: {"1. open": close, "2. high": close, "3. low": close, "4. close": close}
                for day, close in sorted(self.fx[pair].items(), reverse=True)
            }
            return Reply.json({"Meta Data": meta, "Time Series FX (Daily)": series})
        if function == "GLOBAL_QUOTE":
            return Reply.json({"Global Quote": self.quotes.get(symbol, {})})
        if function == "SYMBOL_SEARCH":
            keywords = (request.param("keywords") or "").lower()
            return Reply.json({"bestMatches": self.matches.get(keywords, [])})
        if function == "LISTING_STATUS":
            return Reply.text(self.listing_csv, content_type="application/x-download")
        return Reply.json({"Error Message": AV_INVALID_CALL.format(function=function)})


def _av_row(row: OHLCV) -> dict[str, str]:
    return dict(zip(("1. open", "2. high", "3. low", "4. close", "5. volume"), row, strict=True))


def av_quote(
    symbol: str, price: str, day: str, prev: str, change: str, volume: str
) -> dict[str, str]:
    """A ``Global Quote`` object as Alpha Vantage writes it."""
    return {
        "01. symbol": symbol,
        "02. open": price,
        "03. high": price,
        "04. low": price,
        "05. price": price,
        "06. volume": volume,
        "07. latest trading day": day,
        "08. previous close": prev,
        "09. change": change,
        "10. change percent": "0.0000%",
    }


# --------------------------------------------------------------------------- Polygon


@dataclass
class PolygonFake:
    """Polygon's REST API: aggregates (paginated), stock and option snapshots, tickers."""

    api_key: str
    # (ticker, "minute"|"day") → results rows ({t (ms), o, h, l, c, v, vw, n})
    aggs: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    page_size: int = 50_000
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    option_snapshots: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    tickers: list[dict[str, Any]] = field(default_factory=list)
    next_url_origin: str | None = None  # None: this server (as seen in the Host header)
    answer_for_ticker: str | None = None  # report another ticker, as a confused upstream would

    def __call__(self, request: FakeRequest) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Reply.json(
                {"status": "ERROR", "request_id": "r-1", "error": "Unknown API Key"}, status=401
            )
        parts = request.path.strip("/").split("/")
        if parts[:3] == ["v2", "aggs", "ticker"] and len(parts) == 9 and parts[4] == "range":
            return self._aggs(request, parts[3], parts[6], parts[7], parts[8])
        if parts[:7] == ["v2", "snapshot", "locale", "us", "markets", "stocks", "tickers"]:
            snap = self.snapshots.get(parts[7]) if len(parts) == 8 else None
            if snap is None:
                return Reply.json(
                    {"status": "NOT_FOUND", "request_id": "r-2", "message": "Ticker not found."},
                    status=404,
                )
            return Reply.json({"status": "OK", "request_id": "r-3", "ticker": snap})
        if parts[:3] == ["v3", "snapshot", "options"] and len(parts) == 5:
            option = self.option_snapshots.get((parts[3], parts[4]))
            if option is None:
                return Reply.json(
                    {
                        "status": "NOT_FOUND",
                        "request_id": "r-4",
                        "message": "The requested resource was not found",
                    },
                    status=404,
                )
            return Reply.json({"status": "OK", "request_id": "r-5", "results": option})
        if parts == ["v3", "reference", "tickers"]:
            needle = (request.param("search") or "").lower()
            found = [
                row
                for row in self.tickers
                if needle in row["ticker"].lower() or needle in row["name"].lower()
            ]
            return Reply.json(
                {"results": found, "status": "OK", "request_id": "r-6", "count": len(found)}
            )
        return Reply.json({"status": "NOT_FOUND", "message": "Not Found"}, status=404)

    def _aggs(
        self, request: FakeRequest, ticker: str, timespan: str, start: str, end: str
    ) -> Reply:
        forex = ticker.startswith("C:")  # forex days are UTC days, stocks' New York ones
        rows = [
            row
            for row in self.aggs.get((ticker, timespan), [])
            if _polygon_ms(start, end=False, utc=forex)
            <= row["t"]
            <= _polygon_ms(end, end=True, utc=forex)
        ]
        offset = int(request.param("cursor") or 0)
        page = rows[offset : offset + self.page_size]
        body: dict[str, Any] = {
            "ticker": self.answer_for_ticker or ticker,
            "queryCount": len(rows),
            "resultsCount": len(page),
            "adjusted": request.param("adjusted") == "true",
            "status": "OK",
            "request_id": f"aggs-{offset}",
            "count": len(page),
        }
        if page:
            body["results"] = page
        if offset + self.page_size < len(rows):
            origin = self.next_url_origin or f"http://{request.headers['host']}"
            body["next_url"] = (
                f"{origin}{request.path}?cursor={offset + self.page_size}"
                f"&adjusted=true&sort=asc&limit={self.page_size}"
            )
        return Reply.json(body)


def _polygon_ms(value: str, *, end: bool, utc: bool = False) -> int:
    """Polygon's ``from``/``to``: epoch milliseconds, or a New York (forex: UTC) date, whole."""
    if value.isdigit():
        return int(value)
    zone = UTC if utc else ZoneInfo("America/New_York")
    day = datetime.fromisoformat(value).replace(tzinfo=zone)
    ms = int(day.timestamp() * 1000)
    return ms + 86_400_000 - 1 if end else ms
