"""The ``csv`` provider: OHLCV(+OI) bars from local CSV files, one file per instrument and
timeframe, with a configurable column mapping.

Every row is validated; problems are reported together (up to ``MAX_REPORTED_ERRORS``) in one
``InvalidInput`` whose ``errors`` extra lists ``{"row", "column", "message"}``.  ``row`` is
the file's line number (the header is line 1), so an editor jumps straight to it.

Timestamps (``CsvColumns.ts_format``): ``"iso"`` (ISO 8601: ``2024-01-05``,
``2024-01-05 09:15:00``, ``2024-01-05T09:15:00+05:30``), ``"epoch_s"``, ``"epoch_ms"``, or
any ``strptime`` pattern.  Naive times are read in ``CsvColumns.timezone`` (the exchange's,
typically).  Daily rows are keyed by their session date, as every provider's are.

A file is parsed once and re-read only when its size or modification time changes; reading
and parsing run in a worker thread so a large file does not stall the event loop.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from quantdesk.marketdata.domain import Bar, Instrument, Quote, Timeframe
from quantdesk.marketdata.providers.base import check_bars_request
from quantdesk.marketdata.providers.parsing import bars_in_range, session_day
from quantdesk.platform.exceptions import InvalidInput, NotFound

MAX_REPORTED_ERRORS: Final = 50
_EPOCH_FORMATS: Final = {"epoch_s": 1, "epoch_ms": 1000}
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class CsvColumns:
    """Which header names hold which field, and how to read the timestamp."""

    ts: str = "timestamp"
    open: str = "open"
    high: str = "high"
    low: str = "low"
    close: str = "close"
    volume: str | None = "volume"
    oi: str | None = None
    ts_format: str = "iso"
    timezone: str = "UTC"
    delimiter: str = ","
    zone: ZoneInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "zone", ZoneInfo(self.timezone))
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput(f"unknown time zone {self.timezone!r}") from None
        if len(self.delimiter) != 1:
            raise InvalidInput("the CSV delimiter must be one character")

    def required(self) -> dict[str, str]:
        """Field → header name, for every column that must be present."""
        fields = {"ts": self.ts, "open": self.open, "high": self.high}
        fields |= {"low": self.low, "close": self.close}
        if self.volume is not None:
            fields["volume"] = self.volume
        if self.oi is not None:
            fields["oi"] = self.oi
        return fields


@dataclass(frozen=True, slots=True)
class CsvSource:
    """One file: the bars of ``instrument`` at ``timeframe`` (1m or 1d)."""

    instrument: Instrument
    path: Path
    timeframe: Timeframe
    columns: CsvColumns = field(default_factory=CsvColumns)


class _Rows:
    """Collects row errors while one file is parsed."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.errors: list[dict[str, object]] = []

    def add(self, row: int, column: str, message: str) -> None:
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"row": row, "column": column, "message": message})

    def raise_if_any(self, total: int) -> None:
        if not self.errors:
            return
        first = self.errors[0]
        more = f" (and {total - 1} more)" if total > 1 else ""
        raise InvalidInput(
            f"{self.source}: row {first['row']}, {first['column']}: {first['message']}{more}",
            errors=self.errors,
            error_count=total,
        )


def parse_bars_csv(
    text: str, columns: CsvColumns, timeframe: Timeframe, *, source: str = "csv"
) -> list[Bar]:
    """Validated bars from CSV ``text``, ascending; ``InvalidInput`` lists every bad row."""
    if timeframe not in (Timeframe.M1, Timeframe.D1):
        raise InvalidInput(f"{source}: CSV files hold 1m or 1d bars, not {timeframe.value}")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=columns.delimiter)
    header = next(reader, None)
    if header is None:
        return []
    positions = {name.strip(): i for i, name in enumerate(header)}
    wanted = columns.required()
    missing = [name for name in wanted.values() if name not in positions]
    if missing:
        raise InvalidInput(
            f"{source}: missing column(s) {', '.join(missing)}; "
            f"the header has {', '.join(positions) or 'nothing'}",
            errors=[{"row": 1, "column": name, "message": "missing"} for name in missing],
        )
    rows = _Rows(source)
    total_errors = 0
    seen: dict[datetime, int] = {}
    bars: list[Bar] = []
    for record in reader:
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue  # blank line
        cells = {
            fld: record[positions[name]].strip() if positions[name] < len(record) else ""
            for fld, name in wanted.items()
        }
        problems = _row_problems(cells, wanted, columns, timeframe)
        for column, message in problems:
            rows.add(line, column, message)
        total_errors += len(problems)
        if problems:
            continue
        bar = _bar(cells, columns, timeframe)
        if bar.ts in seen:
            rows.add(line, wanted["ts"], f"duplicates the bar of row {seen[bar.ts]}")
            total_errors += 1
            continue
        seen[bar.ts] = line
        bars.append(bar)
    rows.raise_if_any(total_errors)
    bars.sort(key=lambda bar: bar.ts)
    return bars


def _row_problems(
    cells: Mapping[str, str], names: Mapping[str, str], columns: CsvColumns, timeframe: Timeframe
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    try:
        ts = _timestamp(cells["ts"], columns, timeframe)
    except ValueError as exc:
        problems.append((names["ts"], str(exc)))
    else:
        if timeframe is Timeframe.M1 and (ts.second or ts.microsecond):
            problems.append((names["ts"], f"{cells['ts']!r} is not on a minute boundary"))
    numbers: dict[str, Decimal] = {}
    for fld in ("open", "high", "low", "close", "volume", "oi"):
        if fld not in cells:
            continue
        try:
            number = Decimal(cells[fld])
        except InvalidOperation:
            problems.append((names[fld], f"{cells[fld]!r} is not a number"))
            continue
        if not number.is_finite():
            problems.append((names[fld], f"{cells[fld]!r} is not a finite number"))
        elif fld in ("volume", "oi") and number < 0:
            problems.append((names[fld], f"{number} is negative"))
        elif fld not in ("volume", "oi") and number <= 0:
            problems.append((names[fld], f"price {number} is not positive"))
        else:
            numbers[fld] = number
    if all(fld in numbers for fld in ("open", "high", "low", "close")):
        o, h, lo, c = (numbers[f] for f in ("open", "high", "low", "close"))
        if h < max(o, c, lo):
            problems.append((names["high"], f"high {h} is below open, close or low"))
        if lo > min(o, c):
            problems.append((names["low"], f"low {lo} is above open or close"))
    return problems


def _timestamp(value: str, columns: CsvColumns, timeframe: Timeframe) -> datetime:
    """The bar's ``ts`` (UTC; daily rows at 00:00 UTC of their session date)."""
    if not value:
        raise ValueError("is empty")
    if columns.ts_format in _EPOCH_FORMATS:
        try:
            micros = Decimal(value) * 1_000_000 / _EPOCH_FORMATS[columns.ts_format]
            instant = _EPOCH + timedelta(microseconds=int(micros.to_integral_value()))
        except (InvalidOperation, OverflowError, ValueError):
            raise ValueError(f"{value!r} is not an epoch timestamp") from None
    else:
        try:
            if columns.ts_format == "iso":
                instant = datetime.fromisoformat(value)
            else:
                instant = datetime.strptime(value, columns.ts_format)  # zone set below
        except ValueError:
            expected = "ISO 8601" if columns.ts_format == "iso" else repr(columns.ts_format)
            raise ValueError(f"{value!r} does not match {expected}") from None
        if instant.tzinfo is None:
            instant = instant.replace(tzinfo=columns.zone)
    if timeframe is Timeframe.D1:
        local: date = instant.astimezone(columns.zone).date()
        return session_day(local)
    return instant.astimezone(UTC)


def _bar(cells: Mapping[str, str], columns: CsvColumns, timeframe: Timeframe) -> Bar:
    return Bar(
        ts=_timestamp(cells["ts"], columns, timeframe),
        open=Decimal(cells["open"]),
        high=Decimal(cells["high"]),
        low=Decimal(cells["low"]),
        close=Decimal(cells["close"]),
        volume=Decimal(cells["volume"]) if "volume" in cells else Decimal(0),
        oi=Decimal(cells["oi"]) if "oi" in cells else None,
    )


class CsvProvider:
    """``Provider`` over local CSV files (see the module docstring)."""

    def __init__(self, sources: Iterable[CsvSource], *, name: str = "csv") -> None:
        self.name = name
        self._sources: dict[tuple[str, Timeframe], CsvSource] = {}
        for source in sources:
            if source.timeframe not in (Timeframe.M1, Timeframe.D1):
                raise InvalidInput(
                    f"{source.path}: CSV files hold 1m or 1d bars, not {source.timeframe.value}"
                )
            self._sources[source.instrument.key, source.timeframe] = source
        self._parsed: dict[Path, tuple[tuple[int, int], list[Bar]]] = {}

    async def aclose(self) -> None:
        self._parsed.clear()

    async def search_instruments(self, query: str) -> list[Instrument]:
        needle = query.strip().upper()
        if not needle:
            raise InvalidInput("search query must not be empty", provider=self.name)
        found: dict[str, Instrument] = {}
        for (key, _), source in self._sources.items():
            instrument = source.instrument
            if needle in key or needle in instrument.name.upper():
                found.setdefault(key, instrument)
        return list(found.values())

    async def historical_bars(
        self, instrument: Instrument, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]:
        check_bars_request(self.name, timeframe, start, end)
        source = self._sources.get((instrument.key, timeframe))
        if source is None:
            raise NotFound(
                f"no {timeframe.value} CSV file is configured for {instrument.key}",
                provider=self.name,
            )
        return bars_in_range(await self._bars(source), start, end)

    async def quote(self, instrument: Instrument) -> Quote:
        """The close of the latest bar (finest timeframe first) as the last price."""
        for timeframe in (Timeframe.M1, Timeframe.D1):
            source = self._sources.get((instrument.key, timeframe))
            if source is None:
                continue
            bars = await self._bars(source)
            if not bars:
                continue
            last = bars[-1]
            prev = bars[-2].close if len(bars) > 1 and timeframe is Timeframe.D1 else None
            return Quote(
                key=instrument.key,
                last=last.close,
                ts=last.ts,
                volume=last.volume,
                oi=last.oi,
                prev_close=prev,
                change=None if prev is None else last.close - prev,
            )
        raise NotFound(f"no CSV bars for {instrument.key}", provider=self.name)

    async def _bars(self, source: CsvSource) -> list[Bar]:
        try:
            stat = await asyncio.to_thread(source.path.stat)
        except OSError as exc:
            raise NotFound(f"{source.path}: {exc.strerror}", provider=self.name) from None
        version = (stat.st_mtime_ns, stat.st_size)
        cached = self._parsed.get(source.path)
        if cached is not None and cached[0] == version:
            return cached[1]
        bars = await asyncio.to_thread(self._read, source)
        self._parsed[source.path] = (version, bars)
        return bars

    @staticmethod
    def _read(source: CsvSource) -> list[Bar]:
        try:
            text = source.path.read_text(encoding="utf-8-sig")  # Excel writes a BOM
        except UnicodeDecodeError:
            raise InvalidInput(f"{source.path}: not UTF-8 text") from None
        return parse_bars_csv(text, source.columns, source.timeframe, source=source.path.name)
