"""Exchanges' official holiday lists, imported by an admin, and the registry the calendars read.

Each year NSE and BSE publish next year's trading holidays in December (NSE's circular
"Trading holidays for the calendar year ..."); the calendar packages ship them months later.
Until then a year is provisional (:mod:`.sources`). ``quantdesk calendar import FILE``
stores a list in the database and every process installs it here, where it replaces that
exchange-year: trading days are then the weekdays at regular hours minus the listed
holidays, plus any sessions the list names (a Muhurat hour, a Saturday budget session).

Why a process-wide registry rather than a parameter: calendars are reference data read by
pure code far from any request (expiry rules, the demo market, analytics), exactly like the
packages' own tables. The registry is replaced whole, in one assignment, and carries a
version that the memoised year builders take as part of their key, so an install is seen
by the next call and never half-applied.

The file format (CSV, one row per day, a header line)::

    date,name[,kind,open,close]
    2027-01-26,Republic Day
    2027-10-29,Diwali Laxmi Pujan
    2027-10-29,Muhurat trading,special,18:00,19:00

``kind`` is ``holiday`` (the default), ``special`` (a symbolic session; the day stays a
holiday) or ``regular`` (a full trading session on a weekend); ``open``/``close`` are
exchange-local times, required for sessions. NSE's own JSON (the ``holiday-master`` list:
``{"CM": [{"tradingDate": "26-Jan-2027", "description": "Republic Day"}, ...]}``) is
accepted as well.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from quantdesk.marketdata.calendars.models import SessionKind
from quantdesk.platform.exceptions import InvalidInput

# Exchanges whose years can be replaced by an official list: those built from weekday
# rules (the US packages model early closes an imported holiday list could not express).
# CDS and MCX follow NSE's days until their own list is imported: the currency segment's
# bank-settlement closures, MCX's evening sessions on holidays (kind ``regular``, e.g.
# ``2027-03-22,Holi (evening session),regular,17:00,23:55``).
IMPORTABLE_EXCHANGES: Final = ("NSE", "BSE", "CDS", "MCX")
# The list of NSE's holiday-master JSON each exchange reads: the cash market's (CM) closes
# the exchange (F&O mirrors it), the currency segment has its own (CD).
_NSE_JSON_SEGMENT: Final[Mapping[str, str]] = {"CDS": "CD"}
_KINDS: Final[Mapping[str, SessionKind | None]] = {
    "holiday": None,
    "special": "special",
    "regular": "regular",
}
MAX_ROWS: Final = 400


@dataclass(frozen=True, slots=True)
class OfficialSession:
    """A session the official list names, at exchange-local times."""

    date: dt.date
    opens: dt.time
    closes: dt.time
    kind: SessionKind
    name: str


@dataclass(frozen=True, slots=True)
class OfficialYear:
    """One exchange's official holiday list for one year."""

    exchange: str
    year: int
    holidays: Mapping[dt.date, str]
    sessions: tuple[OfficialSession, ...] = ()
    source: str = ""


@dataclass(frozen=True, slots=True)
class _Installed:
    version: int = 0
    years: Mapping[tuple[str, int], OfficialYear] = field(default_factory=dict)


class _Registry:
    """The installed lists; ``current`` is swapped whole, never mutated."""

    def __init__(self) -> None:
        self.current = _Installed()


_REGISTRY: Final = _Registry()


def install_official_years(years: Iterable[OfficialYear]) -> bool:
    """Make ``years`` the official lists of this process; ``True`` if anything changed."""
    wanted = {(y.exchange, y.year): y for y in years}
    installed = _REGISTRY.current
    if wanted == dict(installed.years):
        return False
    _REGISTRY.current = _Installed(installed.version + 1, wanted)
    return True


def official_year(exchange: str, year: int) -> OfficialYear | None:
    return _REGISTRY.current.years.get((exchange, year))


def registry_version() -> int:
    return _REGISTRY.current.version


# --- parsing -------------------------------------------------------------------------------
def _row_error(line: int, message: str) -> InvalidInput:
    return InvalidInput(f"line {line}: {message}", line=line)


def _parse_time(text: str, line: int, column: str) -> dt.time:
    try:
        return dt.time.fromisoformat(text.strip())
    except ValueError:
        raise _row_error(line, f"{column} must be a local time like 18:00, not {text!r}") from None


def _parse_date(text: str, line: int) -> dt.date:
    value = text.strip()
    for parse in (dt.date.fromisoformat, lambda v: dt.datetime.strptime(v, "%d-%b-%Y").date()):
        try:
            return parse(value)
        except ValueError:
            continue
    raise _row_error(line, f"date must be YYYY-MM-DD (or DD-Mon-YYYY), not {text!r}")


def _csv_rows(text: str) -> list[tuple[int, dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if "date" not in header or "name" not in header:
        raise InvalidInput("the file needs a header line with at least: date,name")
    reader.fieldnames = header
    return [
        (reader.line_num, {k: (v or "").strip() for k, v in row.items() if k is not None})
        for row in reader
    ]


def _nse_json_rows(data: Any, segment: str = "CM") -> list[tuple[int, dict[str, str]]]:
    # NSE's holiday-master answer keys lists by segment (see _NSE_JSON_SEGMENT).
    entries = data.get(segment) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise InvalidInput(f'NSE holiday JSON must hold a "{segment}" list of holidays')
    rows: list[tuple[int, dict[str, str]]] = []
    for number, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or "tradingDate" not in entry:
            raise _row_error(number, 'each entry needs "tradingDate" and "description"')
        rows.append(
            (number, {"date": str(entry["tradingDate"]), "name": str(entry.get("description"))})
        )
    return rows


def parse_official_list(exchange: str, text: str, source: str) -> list[OfficialYear]:
    """The official list(s) in ``text``, one :class:`OfficialYear` per year it covers.

    All or nothing: any bad row refuses the whole file, naming the line.
    """
    code = exchange.strip().upper()
    if code not in IMPORTABLE_EXCHANGES:
        raise InvalidInput(
            f"official lists can be imported for {', '.join(IMPORTABLE_EXCHANGES)}, not {code}",
            exchange=code,
        )
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            rows = _nse_json_rows(json.loads(stripped), _NSE_JSON_SEGMENT.get(code, "CM"))
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"not valid JSON: {exc.msg} at line {exc.lineno}") from None
    else:
        rows = _csv_rows(text)
    if not rows:
        raise InvalidInput("the file lists no days")
    if len(rows) > MAX_ROWS:
        raise InvalidInput(f"at most {MAX_ROWS} rows per file")
    holidays: dict[int, dict[dt.date, str]] = {}
    sessions: dict[int, list[OfficialSession]] = {}
    years: set[int] = set()
    for line, row in rows:
        day = _parse_date(row.get("date", ""), line)
        years.add(day.year)
        name = row.get("name", "")
        if not name:
            raise _row_error(line, "every day needs a name")
        kind_text = (row.get("kind") or "holiday").lower()
        if kind_text not in _KINDS:
            raise _row_error(line, f"kind must be holiday, special or regular, not {kind_text!r}")
        kind = _KINDS[kind_text]
        if kind is None:
            if day in holidays.get(day.year, {}):
                raise _row_error(line, f"{day} is listed twice")
            if day.weekday() < 5:
                holidays.setdefault(day.year, {})[day] = name
            continue
        opens = _parse_time(row.get("open", ""), line, "open")
        closes = _parse_time(row.get("close", ""), line, "close")
        if closes <= opens:
            raise _row_error(line, "close must be after open")
        sessions.setdefault(day.year, []).append(OfficialSession(day, opens, closes, kind, name))
    return [
        OfficialYear(
            exchange=code,
            year=year,
            holidays=dict(sorted(holidays.get(year, {}).items())),
            sessions=tuple(sorted(sessions.get(year, []), key=lambda s: (s.date, s.opens))),
            source=source,
        )
        for year in sorted(years)
    ]
