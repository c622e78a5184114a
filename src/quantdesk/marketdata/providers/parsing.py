"""Helpers the providers share to turn payload values into exact domain values."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from quantdesk.marketdata.domain import EXCHANGE_CURRENCY, Bar, Exchange, make_key, parse_key

# Exchange-local time zones, used to find a daily bar's session date.
EXCHANGE_TIMEZONE: dict[Exchange, ZoneInfo] = {
    Exchange.NSE: ZoneInfo("Asia/Kolkata"),
    Exchange.BSE: ZoneInfo("Asia/Kolkata"),
    Exchange.NFO: ZoneInfo("Asia/Kolkata"),
    Exchange.BFO: ZoneInfo("Asia/Kolkata"),
    Exchange.MCX: ZoneInfo("Asia/Kolkata"),
    Exchange.CDS: ZoneInfo("Asia/Kolkata"),
    Exchange.BCD: ZoneInfo("Asia/Kolkata"),
    Exchange.NYSE: ZoneInfo("America/New_York"),
    Exchange.NASDAQ: ZoneInfo("America/New_York"),
    Exchange.OPRA: ZoneInfo("America/New_York"),
    Exchange.SIM: ZoneInfo("Asia/Kolkata"),
}

Malformed = Callable[[str], Exception]


def exact_decimal(value: object, what: str, malformed: Malformed) -> Decimal:
    """``value`` (a JSON number parsed as ``Decimal``/``int``, or a numeric string) as a
    finite ``Decimal``; anything else is the provider's fault."""
    if isinstance(value, bool):
        raise malformed(f"{what} is {value!r}, not a number")
    if isinstance(value, Decimal | int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))  # the shortest repr gives back the printed digits
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise malformed(f"{what} is {value!r}, not a number") from None
    else:
        raise malformed(f"{what} is {value!r}, not a number")
    if not number.is_finite():
        raise malformed(f"{what} is {value!r}, not a finite number")
    return number


def optional_decimal(value: object, what: str, malformed: Malformed) -> Decimal | None:
    return None if value is None else exact_decimal(value, what, malformed)


def epoch_to_utc(value: object, what: str, malformed: Malformed, *, scale: int = 1) -> datetime:
    """A UTC datetime from an integer epoch count in units of ``1/scale`` second
    (``scale=1000`` for milliseconds, ``10**9`` for nanoseconds)."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise malformed(f"{what} is {value!r}, not an epoch timestamp")
    whole = Decimal(value)
    if whole != whole.to_integral_value():
        raise malformed(f"{what} is {value!r}, not a whole epoch timestamp")
    seconds, fraction = divmod(int(whole), scale)
    try:
        return datetime.fromtimestamp(seconds, tz=UTC) + timedelta(
            microseconds=fraction * 1_000_000 // scale
        )
    except (OverflowError, OSError, ValueError):
        raise malformed(f"{what} {value!r} is out of range") from None


def session_day(session: date) -> datetime:
    """The ``ts`` of a daily bar: 00:00 UTC of its exchange-local session date."""
    return datetime.combine(session, time(0), tzinfo=UTC)


def session_date_of(instant: datetime, exchange: Exchange) -> date:
    """The session date a provider's daily-bar instant stands for.

    Providers stamp daily bars either at midnight UTC of the session date (Finnhub) or at
    midnight exchange time (Polygon: New York; Indian data: Asia/Kolkata).  Midnight UTC is
    taken at its UTC date (in New York it would fall on the evening before); any other
    instant at its exchange-local date.
    """
    utc = instant.astimezone(UTC)
    if utc.time() == time(0):
        return utc.date()
    return utc.astimezone(EXCHANGE_TIMEZONE[exchange]).date()


def bars_in_range(bars: Iterable[Bar], start: datetime, end: datetime) -> list[Bar]:
    """Bars with ``start <= ts <= end``, ascending, one per ``ts`` (the last one wins)."""
    by_ts = {bar.ts: bar for bar in bars if start <= bar.ts <= end}
    return [by_ts[ts] for ts in sorted(by_ts)]


def instrument_key_or_none(exchange: Exchange, symbol: str) -> str | None:
    """Our key for ``exchange``/``symbol``, or ``None`` when the symbol cannot be one."""
    try:
        return make_key(*parse_key(make_key(exchange, symbol)))
    except ValueError:
        return None


def currency_of(exchange: Exchange) -> str:
    return EXCHANGE_CURRENCY[exchange]
