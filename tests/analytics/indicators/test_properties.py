"""Properties every implementation must have, whatever the data (hypothesis)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import quantdesk.analytics.indicators as ind
from tests.analytics.indicators.market_data import Bars, FloatArray, random_walk

EXAMPLES = settings(max_examples=60, deadline=None)

prices = st.floats(min_value=0.01, max_value=1e6, allow_nan=False, allow_infinity=False)
spreads = st.floats(min_value=0.0, max_value=50.0, allow_nan=False, allow_infinity=False)
# No trade or a real size: a subnormal volume (5e-324) would underflow price x volume to 0.
volumes = st.one_of(
    st.just(0.0), st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False)
)


@st.composite
def ohlcv(draw: st.DrawFn, min_size: int = 0, max_size: int = 80) -> Bars:
    """Arbitrary but consistent bars: low <= open, close <= high, volume >= 0."""
    n = draw(st.integers(min_size, max_size))
    close = np.array(draw(st.lists(prices, min_size=n, max_size=n)), dtype=float)
    open_ = np.array(draw(st.lists(prices, min_size=n, max_size=n)), dtype=float)
    up = np.array(draw(st.lists(spreads, min_size=n, max_size=n)), dtype=float)
    down = np.array(draw(st.lists(spreads, min_size=n, max_size=n)), dtype=float)
    volume = np.array(draw(st.lists(volumes, min_size=n, max_size=n)), dtype=float)
    high = np.maximum(open_, close) + up
    low = np.maximum(np.minimum(open_, close) - down, 0.001)
    low = np.minimum(low, np.minimum(open_, close))
    return Bars(open_, high, low, close, volume)


def valid(values: FloatArray) -> FloatArray:
    return values[~np.isnan(values)]


SMOOTHERS: list[tuple[str, Callable[[FloatArray], FloatArray]]] = [
    ("sma", lambda x: ind.sma(x, 7)),
    ("ema", lambda x: ind.ema(x, 7)),
    ("wma", lambda x: ind.wma(x, 7)),
    ("dema", lambda x: ind.dema(x, 7)),
    ("tema", lambda x: ind.tema(x, 7)),
    ("trima", lambda x: ind.trima(x, 7)),
    ("kama", lambda x: ind.kama(x, 7)),
    ("t3", lambda x: ind.t3(x, 4)),
]


@pytest.mark.parametrize("smoother", [f for _, f in SMOOTHERS], ids=[n for n, _ in SMOOTHERS])
@EXAMPLES
@given(level=prices, n=st.integers(0, 60))
def test_moving_average_of_a_constant_is_the_constant(
    smoother: Callable[[FloatArray], FloatArray], level: float, n: int
) -> None:
    averaged = valid(smoother(np.full(n, level)))
    np.testing.assert_allclose(averaged, level, rtol=1e-12)


@EXAMPLES
@given(bars=ohlcv(), period=st.integers(2, 20))
def test_bounded_oscillators_stay_in_their_range(bars: Bars, period: int) -> None:
    h, lo, c, v = bars.high, bars.low, bars.close, bars.volume
    for values in (
        ind.rsi(c, period),
        ind.mfi(h, lo, c, v, period),
        ind.adx(h, lo, c, period),
        ind.plus_di(h, lo, c, period),
        ind.minus_di(h, lo, c, period),
        *ind.stoch(h, lo, c, period),
        *ind.stochrsi(c, period),
    ):
        # A smoothing running sum (SMA of %K) may leave a -1e-15 residue, as in TA-Lib.
        inside = valid(values)
        assert np.all((inside >= -1e-9) & (inside <= 100.0 + 1e-9))
    williams = valid(ind.willr(h, lo, c, period))
    assert np.all((williams >= -100.0) & (williams <= 0.0))


@EXAMPLES
@given(
    bars=ohlcv(),
    period=st.integers(2, 20),
    up=spreads,
    down=spreads,
    matype=st.sampled_from([0, 1, 2, 5]),
)
def test_bollinger_bands_are_ordered(
    bars: Bars, period: int, up: float, down: float, matype: int
) -> None:
    upper, middle, lower = ind.bbands(bars.close, period, up, down, matype)
    shown = ~np.isnan(middle)
    assert np.array_equal(shown, ~np.isnan(upper))
    assert np.all(upper[shown] >= middle[shown])
    assert np.all(middle[shown] >= lower[shown])


@EXAMPLES
@given(bars=ohlcv(), period=st.integers(1, 20))
def test_ranges_are_never_negative(bars: Bars, period: int) -> None:
    h, lo, c = bars.high, bars.low, bars.close
    for values in (ind.trange(h, lo, c), ind.atr(h, lo, c, period), ind.natr(h, lo, c, period)):
        assert np.all(valid(values) >= 0.0)


@EXAMPLES
@given(
    closes=st.lists(st.integers(1, 1000), max_size=60),
    volumes=st.lists(st.integers(0, 10**6), min_size=60, max_size=60),
    shift=st.integers(1, 10**6),
)
def test_obv_invariances(closes: list[int], volumes: list[int], shift: int) -> None:
    close = np.array(closes, dtype=float)
    volume = np.array(volumes[: len(closes)], dtype=float)
    on_balance = ind.obv(close, volume)
    # Only the direction of each close-to-close move matters, not the price level...
    np.testing.assert_array_equal(ind.obv(close + shift, volume), on_balance)
    # ...it is linear in volume (doubling is exact in binary floating point)...
    np.testing.assert_array_equal(ind.obv(close, 2.0 * volume), 2.0 * on_balance)
    # ...and each step is +volume, -volume or nothing, as the close rose, fell or held.
    if len(close) > 1:
        step = np.diff(on_balance)
        np.testing.assert_array_equal(step, np.sign(np.diff(close)) * volume[1:])
        assert on_balance[0] == volume[0]


@EXAMPLES
@given(bars=ohlcv(min_size=1), period=st.integers(1, 15))
def test_donchian_brackets_every_bar(bars: Bars, period: int) -> None:
    upper, middle, lower = ind.donchian(bars.high, bars.low, period)
    shown = ~np.isnan(upper)
    assert np.all(upper[shown] >= bars.high[shown])
    assert np.all(lower[shown] <= bars.low[shown])
    assert np.all((lower[shown] <= middle[shown]) & (middle[shown] <= upper[shown]))


@EXAMPLES
@given(bars=ohlcv(min_size=1), data=st.data())
def test_vwap_stays_inside_its_sessions_range(bars: Bars, data: st.DataObject) -> None:
    n = len(bars)
    sessions = np.sort(np.array(data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n))))
    average = ind.vwap(bars.high, bars.low, bars.close, bars.volume, sessions)
    for i in range(n):
        if np.isnan(average[i]):
            continue
        session = (sessions == sessions[i]) & (np.arange(n) <= i)
        assert bars.low[session].min() * (1 - 1e-12) <= average[i]
        assert average[i] <= bars.high[session].max() * (1 + 1e-12)


EVERY_INDICATOR: list[tuple[str, Callable[[Bars], object]]] = [
    ("sma", lambda b: ind.sma(b.close, 10)),
    ("ema", lambda b: ind.ema(b.close, 10)),
    ("wma", lambda b: ind.wma(b.close, 3)),
    ("dema", lambda b: ind.dema(b.close, 10)),
    ("tema", lambda b: ind.tema(b.close, 10)),
    ("trima", lambda b: ind.trima(b.close, 10)),
    ("kama", lambda b: ind.kama(b.close, 10)),
    ("rsi", lambda b: ind.rsi(b.close)),
    ("macd", lambda b: ind.macd(b.close)),
    ("bbands", lambda b: ind.bbands(b.close, 4)),
    ("atr", lambda b: ind.atr(b.high, b.low, b.close)),
    ("natr", lambda b: ind.natr(b.high, b.low, b.close)),
    ("trange", lambda b: ind.trange(b.high, b.low, b.close)),
    ("adx", lambda b: ind.adx(b.high, b.low, b.close, 5)),
    ("plus_di", lambda b: ind.plus_di(b.high, b.low, b.close)),
    ("minus_di", lambda b: ind.minus_di(b.high, b.low, b.close)),
    ("stoch", lambda b: ind.stoch(b.high, b.low, b.close)),
    ("stochrsi", lambda b: ind.stochrsi(b.close)),
    ("cci", lambda b: ind.cci(b.high, b.low, b.close)),
    ("mfi", lambda b: ind.mfi(b.high, b.low, b.close, b.volume)),
    ("obv", lambda b: ind.obv(b.close, b.volume)),
    ("roc", lambda b: ind.roc(b.close)),
    ("mom", lambda b: ind.mom(b.close)),
    ("willr", lambda b: ind.willr(b.high, b.low, b.close)),
    ("trix", lambda b: ind.trix(b.close, 5)),
    ("sar", lambda b: ind.sar(b.high, b.low)),
    ("ad", lambda b: ind.ad(b.high, b.low, b.close, b.volume)),
    ("adosc", lambda b: ind.adosc(b.high, b.low, b.close, b.volume)),
    ("supertrend", lambda b: ind.supertrend(b.high, b.low, b.close, 5)),
    ("keltner", lambda b: ind.keltner(b.high, b.low, b.close, 5, 3)),
    ("donchian", lambda b: ind.donchian(b.high, b.low, 5)),
    ("vwap", lambda b: ind.vwap(b.high, b.low, b.close, b.volume, np.arange(len(b)) // 7)),
    ("pivots", lambda b: tuple(ind.pivot_points(b.high, b.low, b.close).as_dict().values())),
]


def _outputs(result: object) -> tuple[FloatArray, ...]:
    return result if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize(
    "indicator", [f for _, f in EVERY_INDICATOR], ids=[n for n, _ in EVERY_INDICATOR]
)
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), cut=st.integers(0, 300))
def test_no_look_ahead(indicator: Callable[[Bars], object], seed: int, cut: int) -> None:
    """A value never depends on later bars: computing on a prefix gives the same prefix."""
    bars = random_walk(300, seed)
    full = _outputs(indicator(bars))
    partial = _outputs(indicator(bars.head(cut)))
    for whole, prefix in zip(full, partial, strict=True):
        assert len(prefix) == cut
        np.testing.assert_array_equal(prefix, whole[:cut])


SCALE_FREE: list[tuple[str, Callable[[Bars], object]]] = [
    ("rsi", lambda b: ind.rsi(b.close)),
    ("stoch", lambda b: ind.stoch(b.high, b.low, b.close)),
    ("stochrsi", lambda b: ind.stochrsi(b.close)),
    ("willr", lambda b: ind.willr(b.high, b.low, b.close)),
    ("cci", lambda b: ind.cci(b.high, b.low, b.close)),
    ("mfi", lambda b: ind.mfi(b.high, b.low, b.close, b.volume)),
    ("adx", lambda b: ind.adx(b.high, b.low, b.close)),
    ("natr", lambda b: ind.natr(b.high, b.low, b.close)),
    ("roc", lambda b: ind.roc(b.close)),
    ("trix", lambda b: ind.trix(b.close, 5)),
]


@pytest.mark.parametrize("indicator", [f for _, f in SCALE_FREE], ids=[n for n, _ in SCALE_FREE])
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), exponent=st.integers(-30, 30))
def test_oscillators_do_not_depend_on_the_price_unit(
    indicator: Callable[[Bars], object], seed: int, exponent: int
) -> None:
    # Scaling by a power of two is exact, so a unit-free indicator must not move at all:
    # no fixed threshold may be hiding in it (the TA-Lib 0.8 fixes for penny stocks).
    bars = random_walk(200, seed)
    factor = 2.0**exponent
    scaled = Bars(
        bars.open * factor, bars.high * factor, bars.low * factor, bars.close * factor, bars.volume
    )
    for original, rescaled in zip(
        _outputs(indicator(bars)), _outputs(indicator(scaled)), strict=True
    ):
        np.testing.assert_allclose(rescaled, original, rtol=1e-12, atol=1e-12)
