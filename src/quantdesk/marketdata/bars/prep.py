"""Bars on their way into storage: validation, de-duplication and exact decimal text.

Pure (NumPy in, text out).  Prices reach the database as decimal *text* on both backends
(SQLite stores ``ExactDecimal`` as TEXT; PostgreSQL's COPY parses text into NUMERIC), so
the formatting here decides what a client later reads back:

* ``Decimal`` input (``list[Bar]``) keeps its own digits and scale (``format(d, "f")``).
* float input (``BarArrays``) is written at the instrument's tick scale (``2500.05`` with a
  0.05 tick prints as ``2500.05``, ``2500.0`` as ``2500.00``), or at the smallest larger scale
  that represents every value exactly, so no digit is invented or lost.

Formatting a million floats one by one in Python costs about a second per column, which
alone would eat the bulk-load budget; ``fixed_point_matrix`` instead writes the digits of a
whole column into a byte matrix with integer arithmetic (right-aligned, space-padded) and
``strip_join`` turns matrices into text with two C-level passes (``bytes.replace``,
``str.split``).  The same trick renders timestamps (``timestamp_matrix``), with Howard
Hinnant's ``civil_from_days`` algorithm vectorised for the calendar date.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from quantdesk.marketdata.domain import Bar, BarArrays, FloatArray, IntArray, Timeframe
from quantdesk.platform.exceptions import InvalidInput

ByteMatrix = npt.NDArray[np.uint8]

_SPACE = ord(" ")
_MAX_SCALE = 12
# Integers below 2**53 convert to float64 and back exactly; past it the digits would lie.
_EXACT_LIMIT = float(2**53)
# How far (in units in the last place) a float may sit from a short decimal and still be
# taken for it: a handful of additions or multiplications stays well within this.
_NOISE_ULPS = 16


def price_scale(tick_size: Decimal) -> int:
    """Decimal places of a tick size: 0.05 -> 2, 1 -> 0, 0.0001 -> 4."""
    exponent = tick_size.normalize().as_tuple().exponent
    return max(0, -int(exponent)) if isinstance(exponent, int) else 0


def decimal_scale(values: FloatArray, minimum: int) -> int | None:
    """The smallest scale >= ``minimum`` on whose grid every finite value lies.

    "On the grid" allows float arithmetic noise of a few units in the last place
    (``_NOISE_ULPS``): ``2500.05 + 0.1`` is 2500.1499999999996 in binary, and means 2500.15.
    ``None`` when no scale up to 12 fits (values that never were short decimals, like 1/3)
    or a value is too large for exact integer scaling.
    """
    finite = values[np.isfinite(values)]
    tolerance = _NOISE_ULPS * np.spacing(np.abs(finite))
    for scale in range(minimum, _MAX_SCALE + 1):
        scaled = np.rint(finite * 10.0**scale)
        # The grid must stay much coarser than the tolerance, or every float would "fit".
        if np.any(np.abs(scaled) >= _EXACT_LIMIT / (4 * _NOISE_ULPS)):
            return None
        if np.all(np.abs(scaled / 10.0**scale - finite) <= tolerance):
            return scale
    return None


def fixed_point_matrix(values: FloatArray, scale: int) -> ByteMatrix:
    """One row of ASCII per value: right-aligned ``-123.45``-style text, space-padded.

    NaN rows are all spaces (they become empty text: NULL).  ``values`` must be exactly
    on the grid of ``scale`` (see ``decimal_scale``); each is written as the nearest
    multiple of ``10**-scale``.
    """
    count = values.shape[0]
    missing = ~np.isfinite(values)
    scaled = np.rint(np.where(missing, 0.0, values) * 10.0**scale).astype(np.int64)
    negative = scaled < 0
    remaining = np.abs(scaled)
    max_digits = max(len(str(int(remaining.max(initial=0)))), scale + 1)
    width = max_digits + (1 if scale else 0) + 1
    matrix = np.full((count, width), _SPACE, dtype=np.uint8)
    column = width - 1
    used = np.zeros(count, dtype=np.int64)
    # Right to left, one digit position per pass over the column.
    for position in range(max_digits):
        if scale and position == scale:
            matrix[:, column] = ord(".")
            used += 1
            column -= 1
        # Digits past the units place only while the number still has any.
        write = (remaining > 0) | (position <= scale)
        matrix[write, column] = (remaining[write] % 10 + ord("0")).astype(np.uint8)
        used += write
        remaining //= 10
        column -= 1
    signs = np.flatnonzero(negative)
    matrix[signs, width - 1 - used[signs]] = ord("-")
    matrix[missing] = _SPACE
    return matrix


def _civil_from_days(days: IntArray) -> tuple[IntArray, IntArray, IntArray]:
    # Howard Hinnant, "chrono-Compatible Low-Level Date Algorithms", civil_from_days.
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    return year, month, day


def _days_from_civil(year: IntArray, month: IntArray, day: IntArray) -> IntArray:
    # Hinnant's days_from_civil, the inverse of the above.
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    mp = np.where(month > 2, month - 3, month + 9)
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days: IntArray = era * 146_097 + doe - 719_468
    return days


def _digits(values: IntArray, width: int) -> ByteMatrix:
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values[:, None] // powers % 10 + ord("0")).astype(np.uint8)


@functools.cache
def _time_of_day_table() -> ByteMatrix:
    """``HH:MM:SS`` for every second of a day (691 kB, built once)."""
    seconds = np.arange(86_400, dtype=np.int64)
    table = np.empty((86_400, 8), dtype=np.uint8)
    table[:, 0:2] = _digits(seconds // 3600, 2)
    table[:, 3:5] = _digits(seconds // 60 % 60, 2)
    table[:, 6:8] = _digits(seconds % 60, 2)
    table[:, 2] = table[:, 5] = ord(":")
    table.setflags(write=False)
    return table


def timestamp_matrix(ts: IntArray, separator: str = "T", suffix: str = "") -> ByteMatrix:
    """``YYYY-MM-DD<sep>HH:MM:SS<suffix>`` for each epoch second, as a fixed-width byte matrix.

    Dates are computed once per distinct day (bars come hundreds to a day) and times of day
    looked up in a table, so a million stamps cost two gathers.
    """
    days, seconds = np.divmod(ts, 86_400)
    if ts.shape[0] and np.all(days[1:] >= days[:-1]):
        # Sorted input (the usual case): distinct days without np.unique's sort.
        starts = np.flatnonzero(np.diff(days, prepend=days[0] - 1))
        unique_days = days[starts]
        which_day = np.repeat(np.arange(starts.shape[0]), np.diff(starts, append=ts.shape[0]))
    else:
        unique_days, which_day = np.unique(days, return_inverse=True)
    year, month, day = _civil_from_days(unique_days)
    dates = np.empty((unique_days.shape[0], 10), dtype=np.uint8)
    dates[:, 0:4] = _digits(year, 4)
    dates[:, 5:7] = _digits(month, 2)
    dates[:, 8:10] = _digits(day, 2)
    dates[:, 4] = dates[:, 7] = ord("-")
    matrix = np.empty((ts.shape[0], 19 + len(suffix)), dtype=np.uint8)
    matrix[:, 0:10] = dates[which_day]
    matrix[:, 10] = ord(separator)
    matrix[:, 11:19] = _time_of_day_table()[seconds]
    for offset, char in enumerate(suffix):
        matrix[:, 19 + offset] = ord(char)
    return matrix


def parse_timestamps(text: str, count: int, width: int = 26) -> IntArray:
    """Epoch seconds from ``count`` concatenated ``YYYY-MM-DD HH:MM:SS...`` stamps of ``width``
    characters each (how SQLAlchemy stores datetimes on SQLite); fractions are dropped."""
    if len(text) != count * width:
        raise ValueError(f"expected {count} timestamps of {width} characters")
    if count == 0:
        return np.empty(0, dtype=np.int64)
    raw = np.frombuffer(text.encode("ascii"), dtype=np.uint8).reshape(count, width)
    digit = raw.astype(np.int64) - ord("0")

    def number(first: int, length: int) -> IntArray:
        value = np.zeros(count, dtype=np.int64)
        for column in range(first, first + length):
            value = value * 10 + digit[:, column]
        return value

    days = _days_from_civil(number(0, 4), number(5, 2), number(8, 2))
    return days * 86_400 + number(11, 2) * 3600 + number(14, 2) * 60 + number(17, 2)


def matrix_lines(matrix: ByteMatrix, *, strip: bool = True) -> list[str]:
    """The rows of a byte matrix as strings (padding removed when ``strip``)."""
    if matrix.shape[0] == 0:
        return []
    newline = np.full((matrix.shape[0], 1), ord("\n"), dtype=np.uint8)
    data = np.hstack((matrix, newline)).tobytes()
    if strip:
        data = data.replace(b" ", b"")
    return data.decode("ascii").split("\n")[:-1]


def csv_bytes(columns: Sequence[ByteMatrix]) -> bytes:
    """Comma-separated rows from per-column matrices; padding dropped, empty field = NULL."""
    count = columns[0].shape[0]
    comma = np.full((count, 1), ord(","), dtype=np.uint8)
    newline = np.full((count, 1), ord("\n"), dtype=np.uint8)
    pieces: list[ByteMatrix] = []
    for index, matrix in enumerate(columns):
        pieces.append(matrix)
        pieces.append(comma if index < len(columns) - 1 else newline)
    return np.hstack(pieces).tobytes().replace(b" ", b"")


@dataclass(frozen=True, slots=True)
class PreparedBars:
    """Validated bars, unique and ascending by ``ts``, with exact decimal text per column."""

    ts: IntArray
    columns: dict[str, ByteMatrix]  # open, high, low, close, volume, oi (oi may be all spaces)
    has_oi: bool

    def __len__(self) -> int:
        return int(self.ts.shape[0])


_PRICE_COLUMNS = ("open", "high", "low", "close")


def _decimal_matrix(values: Sequence[Decimal | None]) -> ByteMatrix:
    texts = [format(v, "f") if v is not None else "" for v in values]
    width = max((len(t) for t in texts), default=1) or 1
    return (
        np.array([t.rjust(width) for t in texts], dtype=f"S{width}")
        .view(np.uint8)
        .reshape(len(texts), width)
    )


def _float_matrix(values: FloatArray, minimum_scale: int, column: str) -> ByteMatrix:
    scale = decimal_scale(values, minimum_scale)
    if scale is None:
        raise InvalidInput(
            f"{column} values are not short decimals (e.g. 1/3); "
            "round them to the instrument's tick size or pass Decimal bars",
            column=column,
        )
    return fixed_point_matrix(values, scale)


def prepare(
    bars: BarArrays | Sequence[Bar], timeframe: Timeframe, tick_size: Decimal
) -> PreparedBars:
    """Validate, de-duplicate (the last bar of a repeated ``ts`` wins) and render bars.

    Raises ``InvalidInput`` naming the first offending bar; nothing is written then.
    """
    if isinstance(bars, BarArrays):
        arrays = bars
        decimals: dict[str, list[Decimal | None]] | None = None
    else:
        arrays, decimals = _from_bars(bars)
    count = len(arrays)
    for name in ("open", "high", "low", "close", "volume"):
        if getattr(arrays, name).shape[0] != count:
            raise InvalidInput(f"column {name} has a different length than ts", column=name)
    has_oi = arrays.oi.shape[0] > 0
    if has_oi and arrays.oi.shape[0] != count:
        raise InvalidInput("column oi has a different length than ts", column="oi")
    _validate(arrays, timeframe)
    order = np.argsort(arrays.ts, kind="stable")
    sorted_ts = arrays.ts[order]
    last_of_run = np.ones(count, dtype=bool)
    last_of_run[:-1] = sorted_ts[1:] != sorted_ts[:-1]
    keep = order[last_of_run]
    scale = price_scale(tick_size)
    columns: dict[str, ByteMatrix] = {}
    for name in (*_PRICE_COLUMNS, "volume", "oi"):
        if name == "oi" and not has_oi:
            columns[name] = np.full((keep.shape[0], 1), _SPACE, dtype=np.uint8)
        elif decimals is not None:
            column_values = decimals[name]
            columns[name] = _decimal_matrix([column_values[i] for i in keep.tolist()])
        else:
            minimum = scale if name in _PRICE_COLUMNS else 0
            columns[name] = _float_matrix(getattr(arrays, name)[keep], minimum, name)
    return PreparedBars(arrays.ts[keep], columns, has_oi)


def _from_bars(bars: Sequence[Bar]) -> tuple[BarArrays, dict[str, list[Decimal | None]]]:
    decimals: dict[str, list[Decimal | None]] = {n: [] for n in (*_PRICE_COLUMNS, "volume", "oi")}
    stamps: list[int] = []
    for index, bar in enumerate(bars):
        if bar.ts.tzinfo is None or bar.ts.utcoffset() is None:
            raise InvalidInput(f"bar {index}: ts must be timezone-aware", index=index)
        stamps.append(int(bar.ts.timestamp()))
        for name in decimals:
            value = getattr(bar, name)
            if value is not None and not value.is_finite():
                raise InvalidInput(f"bar {index}: {name} is not a finite number", index=index)
            decimals[name].append(value)
    has_oi = any(value is not None for value in decimals["oi"])

    def floats(name: str) -> FloatArray:
        return np.array(
            [np.nan if v is None else float(v) for v in decimals[name]], dtype=np.float64
        )

    arrays = BarArrays(
        ts=np.array(stamps, dtype=np.int64),
        open=floats("open"),
        high=floats("high"),
        low=floats("low"),
        close=floats("close"),
        volume=floats("volume"),
        oi=floats("oi") if has_oi else np.empty(0, dtype=np.float64),
    )
    return arrays, decimals


def _validate(bars: BarArrays, timeframe: Timeframe) -> None:
    step = int(timeframe.duration.total_seconds())
    problems: list[tuple[npt.NDArray[np.bool_], str]] = [
        (bars.ts % step != 0, f"ts is not on a {timeframe.value} boundary"),
    ]
    for name in ("open", "high", "low", "close", "volume"):
        problems.append((~np.isfinite(getattr(bars, name)), f"{name} is not a finite number"))
    problems += [
        (bars.volume < 0, "volume is negative"),
        (bars.high < np.maximum(bars.open, bars.close), "high is below open or close"),
        (bars.low > np.minimum(bars.open, bars.close), "low is above open or close"),
    ]
    if bars.oi.shape[0]:
        problems.append((bars.oi < 0, "oi is negative"))
    first_bad: tuple[int, str] | None = None
    for mask, reason in problems:
        bad = np.flatnonzero(mask)
        if bad.shape[0] and (first_bad is None or int(bad[0]) < first_bad[0]):
            first_bad = (int(bad[0]), reason)
    if first_bad is not None:
        index, reason = first_bad
        at = dt.datetime.fromtimestamp(int(bars.ts[index]), dt.UTC).isoformat()
        raise InvalidInput(f"bar {index} ({at}): {reason}", index=index)
