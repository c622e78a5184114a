"""Instrument-master imports: Kite Connect's instruments dump and a generic CSV.

Both parsers validate every row before anything is written and raise ``InvalidInput`` naming
the first bad line (the header is line 1) and the reason; ``import_instruments`` then upserts
the whole file in the caller's unit of work, so a file is imported completely or not at all,
and importing it again updates rows instead of duplicating them.

Kite's dump (``GET https://api.kite.trade/instruments``) has exactly these columns::

    instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,
    tick_size,lot_size,instrument_type,segment,exchange

``instrument_type`` is ``EQ``, ``FUT``, ``CE`` or ``PE``; indices are ``EQ`` rows in the
``INDICES`` segment; for derivatives ``name`` is the underlying (``NIFTY``, ``RELIANCE``,
``SENSEX``, ``CRUDEOIL``, ``USDINR``).  The exchanges are NSE, BSE, NFO, BFO (BSE's F&O), MCX
(commodity futures, and ``CE``/``PE`` options on them, segments ``MCX-FUT``/``MCX-OPT``), CDS
and BCD (NSE's and BSE's currency futures and options, ``CDS-FUT``/``CDS-OPT``).  Rows of
exchanges quantdesk does not list (NSEIX, MCXSX, …) are counted as skipped rather than
rejected, so a full dump imports as is.

Kite counts currency and (most) commodity quantities in lots: such rows carry a
``lot_size`` of 1, and the contract's size goes into ``multiplier`` (NSE: "1 unit denotes
1000 USD"; MCX's contract sizes in ``MCX_MULTIPLIERS``) so that a price move times
``lot_size * multiplier`` is the rupee P&L of one lot.  The stdlib ``csv`` module is used because a
few thousand rows need no more; pandas would only add type guessing we then have to undo.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from quantdesk.marketdata.domain import (
    EXCHANGE_CURRENCY,
    Exchange,
    Instrument,
    InstrumentType,
    OptionType,
)
from quantdesk.marketdata.instruments.formats import ImportFormat as ImportFormat  # re-exported
from quantdesk.marketdata.instruments.service import (
    InstrumentService,
    UpsertCounts,
    instrument_problems,
)
from quantdesk.platform.exceptions import InvalidInput

KITE_COLUMNS = (
    "instrument_token",
    "exchange_token",
    "tradingsymbol",
    "name",
    "last_price",
    "expiry",
    "strike",
    "tick_size",
    "lot_size",
    "instrument_type",
    "segment",
    "exchange",
)
GENERIC_REQUIRED = ("exchange", "symbol", "type")
GENERIC_OPTIONAL = (
    "name",
    "currency",
    "lot_size",
    "tick_size",
    "multiplier",
    "underlying",
    "expiry",
    "strike",
    "option_type",
    "isin",
    "active",
    "sector",
)
# NSE's price band step for indices; Kite lists indices with a tick size of 0.
_INDEX_TICK = Decimal("0.05")
_OPTION_TYPES = {"CALL": OptionType.CALL, "C": OptionType.CALL, "CE": OptionType.CALL}
_OPTION_TYPES |= {"PUT": OptionType.PUT, "P": OptionType.PUT, "PE": OptionType.PUT}
# Currency futures and options: one lot is 1,000 units of the base currency (100,000 JPY
# for JPYINR, quoted per 100 JPY), the same on NSE (CDS) and BSE (BCD).
CURRENCY_MULTIPLIER = Decimal(1000)
# MCX contract sizes in price units (price per 10 g of gold, per kg of silver and base
# metals, per barrel, per mmBtu): MCX contract specifications as listed by Zerodha's
# "MCX options contracts" support page and brokers' lot-size tables (2023-2025).  Used
# only for a row whose lot_size is 1; a root not listed here keeps multiplier 1.
MCX_MULTIPLIERS: dict[str, Decimal] = {
    "CRUDEOIL": Decimal(100),  # 100 barrels
    "CRUDEOILM": Decimal(10),
    "NATURALGAS": Decimal(1250),  # 1,250 mmBtu
    "NATGASMINI": Decimal(250),
    "GOLD": Decimal(100),  # 1 kg, quoted per 10 g
    "GOLDM": Decimal(10),  # 100 g, quoted per 10 g
    "SILVER": Decimal(30),  # 30 kg, quoted per kg
    "SILVERM": Decimal(5),
    "SILVERMIC": Decimal(1),
    "COPPER": Decimal(2500),  # 2,500 kg, quoted per kg
    "ZINC": Decimal(5000),
    "ZINCMINI": Decimal(1000),
    "LEAD": Decimal(5000),
    "LEADMINI": Decimal(1000),
    "ALUMINIUM": Decimal(5000),
    "ALUMINI": Decimal(1000),
    "NICKEL": Decimal(1500),
}
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


@dataclass(frozen=True, slots=True)
class ParsedFile:
    format: ImportFormat
    instruments: list[Instrument]
    skipped: int


@dataclass(frozen=True, slots=True)
class ImportReport:
    format: ImportFormat
    inserted: int
    updated: int
    unchanged: int
    skipped: int

    @classmethod
    def of(cls, parsed: ParsedFile, counts: UpsertCounts) -> ImportReport:
        return cls(parsed.format, counts.inserted, counts.updated, counts.unchanged, parsed.skipped)


class _RowError(ValueError):
    pass


def _rows(text: str) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff")))
    try:
        header = [column.strip().lower() for column in next(reader)]
    except StopIteration:
        raise InvalidInput("the file is empty; expected a CSV header line", line=1) from None

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(header):
                raise InvalidInput(
                    f"line {line}: expected {len(header)} columns, found {len(cells)}", line=line
                )
            yield line, {name: cell.strip() for name, cell in zip(header, cells, strict=True)}

    return header, rows()


def detect_format(header: list[str]) -> ImportFormat:
    if set(KITE_COLUMNS) <= set(header):
        return ImportFormat.KITE
    if set(GENERIC_REQUIRED) <= set(header):
        return ImportFormat.GENERIC
    raise InvalidInput(
        "unrecognised header: expected Kite's instrument dump columns "
        f"({','.join(KITE_COLUMNS)}) or a generic CSV with at least "
        f"{','.join(GENERIC_REQUIRED)}",
        line=1,
    )


# ``(stage, done, total)``: "parse" counts lines (total: the file's), "write" is one step
# whose total is None while the upsert runs.  Kite's dump has some 40,000 lines.
ImportProgress = Callable[[str, int, int | None], None]
_PROGRESS_EVERY = 1_000  # lines between two parse reports


def parse_instruments(
    text: str, fmt: ImportFormat = ImportFormat.AUTO, progress: ImportProgress | None = None
) -> ParsedFile:
    """Parse and validate a whole file; raises ``InvalidInput`` at the first bad line."""
    header, rows = _rows(text)
    total_lines = text.count("\n") + (0 if text.endswith("\n") else 1)
    detected = detect_format(header) if fmt is ImportFormat.AUTO else fmt
    required = KITE_COLUMNS if detected is ImportFormat.KITE else GENERIC_REQUIRED
    missing = [column for column in required if column not in header]
    if missing:
        raise InvalidInput(f"line 1: missing column(s) {', '.join(missing)}", line=1)
    convert: Callable[[dict[str, str]], Instrument | None] = (
        _kite_row if detected is ImportFormat.KITE else _generic_row
    )
    instruments: list[Instrument] = []
    seen: dict[str, int] = {}
    skipped = 0
    for line, row in rows:
        if progress is not None and line % _PROGRESS_EVERY == 0:
            progress("parse", line, total_lines)
        try:
            instrument = convert(row)
        except (_RowError, ValueError, InvalidOperation) as exc:
            raise InvalidInput(f"line {line}: {_reason(exc)}", line=line) from None
        if instrument is None:
            skipped += 1
            continue
        problems = instrument_problems(instrument)
        if problems:
            raise InvalidInput(f"line {line}: {'; '.join(problems)}", line=line)
        if instrument.key in seen:
            raise InvalidInput(
                f"line {line}: {instrument.key} already appears on line {seen[instrument.key]}",
                line=line,
            )
        seen[instrument.key] = line
        instruments.append(instrument)
    if progress is not None:
        progress("parse", total_lines, total_lines)
    return ParsedFile(detected, instruments, skipped)


def _reason(exc: Exception) -> str:
    if isinstance(exc, InvalidOperation):
        return "a number column holds something that is not a number"
    return str(exc)


def _decimal(value: str, column: str) -> Decimal | None:
    if value == "":
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise _RowError(f"{column} {value!r} is not a number") from None
    if not number.is_finite():
        raise _RowError(f"{column} {value!r} is not a finite number")
    return number


def _decimal_or(value: str, column: str, default: Decimal) -> Decimal:
    number = _decimal(value, column)
    return default if number is None else number


def _date(value: str, column: str) -> dt.date | None:
    if value == "":
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise _RowError(f"{column} {value!r} is not a date (YYYY-MM-DD)") from None


def _plain(number: Decimal) -> Decimal:
    """``24500.0`` -> ``24500``: Kite prints strikes as floats; the key and API want them plain."""
    normalized = number.normalize()
    return normalized.quantize(Decimal(1)) if normalized == normalized.to_integral() else normalized


def _kite_row(row: dict[str, str]) -> Instrument | None:
    try:
        exchange = Exchange(row["exchange"].upper())
    except ValueError:
        return None  # an exchange we do not list (NSEIX, MCXSX, ...)
    if exchange in (Exchange.NYSE, Exchange.NASDAQ, Exchange.OPRA):
        raise _RowError(f"exchange {exchange.value} does not appear in Kite dumps")
    symbol = row["tradingsymbol"]
    if not symbol:
        raise _RowError("tradingsymbol is empty")
    kind = row["instrument_type"].upper()
    segment = row["segment"].upper()
    strike = _decimal(row["strike"], "strike")
    expiry = _date(row["expiry"], "expiry")
    tick = _decimal(row["tick_size"], "tick_size")
    lot = _decimal(row["lot_size"], "lot_size")
    underlying: str | None = None
    option_type: OptionType | None = None
    if segment == "INDICES":
        kind_enum = InstrumentType.INDEX
        tick = tick if tick else _INDEX_TICK
        lot = lot if lot else Decimal(1)
        strike, expiry = None, None
    elif kind == "EQ":
        kind_enum = InstrumentType.EQUITY
        strike, expiry = None, None
    elif kind == "FUT":
        kind_enum, underlying, strike = InstrumentType.FUTURE, row["name"] or None, None
    elif kind in ("CE", "PE"):
        kind_enum, underlying = InstrumentType.OPTION, row["name"] or None
        option_type = _OPTION_TYPES[kind]
    else:
        raise _RowError(f"instrument_type {row['instrument_type']!r} is not EQ, FUT, CE or PE")
    if tick is None or lot is None:
        raise _RowError("tick_size and lot_size are required")
    strike = _plain(strike) if strike is not None else None
    underlying = underlying.upper() if underlying else None
    return Instrument(
        exchange=exchange,
        symbol=symbol.upper(),
        name=_kite_name(row, kind_enum, expiry, strike, option_type) or symbol,
        type=kind_enum,
        currency=EXCHANGE_CURRENCY[exchange],
        lot_size=lot,
        tick_size=tick,
        multiplier=_kite_multiplier(exchange, kind_enum, underlying, lot),
        underlying=underlying,
        expiry=expiry,
        strike=strike,
        option_type=option_type,
        provider_token=row["instrument_token"] or None,
    )


def _kite_multiplier(
    exchange: Exchange, kind: InstrumentType, underlying: str | None, lot: Decimal
) -> Decimal:
    """The contract size behind a lot of 1 (currency and commodity rows); else 1."""
    if lot != 1 or kind not in (InstrumentType.FUTURE, InstrumentType.OPTION):
        return Decimal(1)
    if exchange in (Exchange.CDS, Exchange.BCD):
        return CURRENCY_MULTIPLIER
    if exchange is Exchange.MCX and underlying is not None:
        return MCX_MULTIPLIERS.get(underlying, Decimal(1))
    return Decimal(1)


def _kite_name(
    row: dict[str, str],
    kind: InstrumentType,
    expiry: dt.date | None,
    strike: Decimal | None,
    option_type: OptionType | None,
) -> str:
    # For derivatives Kite's ``name`` is the underlying; spell the contract out instead.
    if kind is InstrumentType.FUTURE:
        return f"{row['name']} FUT {expiry}"
    if kind is InstrumentType.OPTION and option_type is not None:
        return f"{row['name']} {expiry} {strike} {'CE' if option_type is OptionType.CALL else 'PE'}"
    return row["name"]


def _generic_row(row: dict[str, str]) -> Instrument:
    try:
        exchange = Exchange(row["exchange"].upper())
    except ValueError:
        known = ", ".join(e.value for e in Exchange)
        raise _RowError(f"exchange {row['exchange']!r} is not one of {known}") from None
    try:
        kind = InstrumentType(row["type"].lower())
    except ValueError:
        known = ", ".join(t.value for t in InstrumentType)
        raise _RowError(f"type {row['type']!r} is not one of {known}") from None
    raw_option = row.get("option_type", "").upper()
    if raw_option and raw_option not in _OPTION_TYPES:
        raise _RowError(f"option_type {row['option_type']!r} is not call or put")
    active_text = row.get("active", "").lower()
    if active_text and active_text not in _TRUE | _FALSE:
        raise _RowError(f"active {row['active']!r} is not true or false")
    symbol = row["symbol"].upper()
    strike = _decimal(row.get("strike", ""), "strike")
    return Instrument(
        exchange=exchange,
        symbol=symbol,
        name=row.get("name") or symbol,
        type=kind,
        currency=(row.get("currency") or EXCHANGE_CURRENCY[exchange]).upper(),
        lot_size=_decimal_or(row.get("lot_size", ""), "lot_size", Decimal(1)),
        tick_size=_decimal_or(row.get("tick_size", ""), "tick_size", Decimal("0.01")),
        multiplier=_decimal_or(row.get("multiplier", ""), "multiplier", Decimal(1)),
        underlying=(row.get("underlying") or "").upper() or None,
        expiry=_date(row.get("expiry", ""), "expiry"),
        strike=_plain(strike) if strike is not None else None,
        option_type=_OPTION_TYPES[raw_option] if raw_option else None,
        isin=(row.get("isin") or "").upper() or None,
        active=active_text not in _FALSE,
        sector=(row.get("sector") or "").strip() or None,
    )


async def import_instruments(
    session: AsyncSession,
    text: str,
    fmt: ImportFormat = ImportFormat.AUTO,
    progress: ImportProgress | None = None,
) -> ImportReport:
    """Validate the whole file, then upsert it in the caller's transaction."""
    parsed = parse_instruments(text, fmt, progress)
    if progress is not None:
        progress("write", 0, None)
    counts = await InstrumentService(session).upsert_many(parsed.instruments)
    if progress is not None:
        progress("write", len(parsed.instruments), len(parsed.instruments))
    return ImportReport.of(parsed, counts)


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text") from None
