"""Errors the calendar core raises; each is a domain error the API maps once to problem+json."""

from __future__ import annotations

from quantdesk.platform.exceptions import InvalidInput, NotFound


class UnknownExchange(NotFound):
    """The exchange code is not one of the calendars we serve."""

    type_slug = "unknown-exchange"
    title = "Unknown exchange"

    def __init__(self, exchange: str, known: tuple[str, ...]) -> None:
        super().__init__(
            f"No calendar for exchange {exchange!r}; known: {', '.join(known)}",
            exchange=exchange,
            known=list(known),
        )
        self.exchange = exchange


class CalendarDataUnavailable(InvalidInput):
    """A year outside the span our source data covers.

    Raised instead of guessing: a calendar package that has run out of holiday data would
    otherwise treat every weekday as a trading day, which is silently wrong.
    """

    type_slug = "calendar-data-unavailable"
    title = "Calendar data unavailable"

    def __init__(self, exchange: str, year: int, first_year: int, last_year: int) -> None:
        super().__init__(
            f"No {exchange} calendar data for {year}: our sources cover "
            f"{first_year}-{last_year}. Upgrade the calendar package or extend the horizon "
            "once the exchange has published that year's holidays.",
            exchange=exchange,
            year=year,
            first_year=first_year,
            last_year=last_year,
        )
        self.exchange = exchange
        self.year = year
        self.first_year = first_year
        self.last_year = last_year


class ExpiryRulesUnavailable(InvalidInput):
    """We hold no expiry rule for this underlying (or not for that date)."""

    type_slug = "expiry-rules-unavailable"
    title = "Expiry rules unavailable"

    def __init__(self, detail: str, *, underlying: str, exchange: str) -> None:
        super().__init__(detail, underlying=underlying, exchange=exchange)
        self.underlying = underlying
        self.exchange = exchange
