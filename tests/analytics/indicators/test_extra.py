"""Hand-worked cases for the indicators TA-Lib lacks: VWAP, SuperTrend, Keltner, Donchian
and pivot points.  The expected numbers are computed in the comments; the inputs are
chosen so that every intermediate is exact in binary floating point where possible."""

from __future__ import annotations

import numpy as np
import pytest
import talib

import quantdesk.analytics.indicators as ind

NAN = np.nan


class TestVwap:
    def test_accumulates_within_a_session_and_restarts_at_the_next(self) -> None:
        high = [11.0, 12.0, 13.0, 20.0, 22.0]
        low = [9.0, 10.0, 10.0, 18.0, 19.0]
        close = [10.0, 11.0, 10.0, 19.0, 22.0]
        volume = [100.0, 300.0, 0.0, 50.0, 150.0]
        sessions = [7, 7, 7, 8, 8]
        # Typical prices (h+l+c)/3: 10, 11, 11, 19, 21.
        # Session 7: 10*100/100 = 10; (1000 + 11*300)/400 = 4300/400 = 10.75;
        #            a zero-volume bar leaves it at 10.75.
        # Session 8 restarts: 19*50/50 = 19; (950 + 21*150)/200 = 4100/200 = 20.5.
        expected = [10.0, 10.75, 10.75, 19.0, 20.5]
        np.testing.assert_array_equal(ind.vwap(high, low, close, volume, sessions), expected)

    def test_is_undefined_until_the_session_trades(self) -> None:
        # Session 1 opens with no volume: NaN; then tp = (6+3+3)/3 = 4 with volume 10 -> 4.
        result = ind.vwap([5.0, 6.0], [5.0, 3.0], [5.0, 3.0], [0.0, 10.0], [1, 1])
        np.testing.assert_array_equal(result, [NAN, 4.0])

    def test_restarts_on_every_change_of_label_even_back_to_an_old_one(self) -> None:
        # Labels 1,1,2,1: the last bar opens a new session (anchoring follows the bars).
        # tp: 2, 4, 6, 8 with unit volumes -> 2, (2+4)/2 = 3, 6, 8.
        prices = [2.0, 4.0, 6.0, 8.0]
        result = ind.vwap(prices, prices, prices, [1.0, 1.0, 1.0, 1.0], [1, 1, 2, 1])
        np.testing.assert_array_equal(result, [2.0, 3.0, 6.0, 8.0])

    def test_a_bar_with_a_missing_price_adds_nothing(self) -> None:
        # Bar 1 has no close: NaN there, and bar 2 averages bars 0 and 2 only:
        # (3*1 + 9*1)/2 = 6.
        close = [3.0, NAN, 9.0]
        result = ind.vwap(close, close, close, [1.0, 1.0, 1.0], [0, 0, 0])
        np.testing.assert_array_equal(result, [3.0, NAN, 6.0])


class TestSupertrend:
    # Ten bars worked through with timeperiod=2 and multiplier=1.  Wilder's ATR(2) starts on
    # bar 2 at mean(TR1, TR2) and then moves halfway to each new true range.
    high = (10.0, 11.0, 12.0, 13.0, 12.0, 9.0, 10.0, 13.0, 14.0, 12.0)
    low = (8.0, 9.0, 10.0, 11.0, 8.0, 6.0, 8.0, 11.0, 12.0, 9.0)
    close = (9.0, 10.0, 11.0, 12.0, 8.0, 7.0, 10.0, 13.0, 12.5, 9.5)
    # True ranges from bar 1: 2, 2, 2, 4, 3, 3, 3, 2, 3.5 (e.g. bar 9: max(12-9,
    # |12-12.5|, |9-12.5|) = 3.5), so ATR = 2, 2, 3, 3, 3, 3, 2.5, 3 from bar 2.
    atr = (NAN, NAN, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0, 2.5, 3.0)

    def test_wilder_atr_underneath(self) -> None:
        result = ind.atr(self.high, self.low, self.close, 2)
        np.testing.assert_array_equal(result, self.atr)
        np.testing.assert_array_equal(
            result, talib.ATR(np.array(self.high), np.array(self.low), np.array(self.close), 2)
        )

    def test_line_and_direction(self) -> None:
        # Bands (h+l)/2 -/+ ATR, final band = basic band unless it would retreat:
        #  bar 2: mid 11 -> bands 9/13; TradingView starts down, on the upper band: 13, -1.
        #  bar 3: mid 12 -> 10/14; lower rises to 10, upper keeps 13; close 12 <= 13: 13, -1.
        #  bar 4: mid 10, ATR 3 -> 7/13; lower keeps 10, upper keeps 13; close 8: 13, -1.
        #  bar 5: mid 7.5 -> 4.5/10.5; prev close 8 < 10 resets lower to 4.5; upper
        #         tightens to 10.5; close 7 <= 10.5: 10.5, -1.
        #  bar 6: mid 9 -> 6/12; lower 6, upper keeps 10.5; close 10 <= 10.5: 10.5, -1.
        #  bar 7: mid 12 -> 9/15; lower 9, upper keeps 10.5; close 13 > 10.5 flips up:
        #         line = lower = 9, +1.
        #  bar 8: mid 13, ATR 2.5 -> 10.5/15.5; lower 10.5; prev close 13 > 10.5 resets the
        #         upper to 15.5; on the lower band, close 12.5 >= 10.5 stays up: 10.5, +1.
        #  bar 9: mid 10.5, ATR 3 -> 7.5/13.5; lower keeps 10.5, upper tightens to 13.5;
        #         close 9.5 < 10.5 flips down: line = upper = 13.5, -1.
        line, direction = ind.supertrend(self.high, self.low, self.close, 2, 1.0)
        np.testing.assert_array_equal(line, [NAN, NAN, 13, 13, 13, 10.5, 10.5, 9, 10.5, 13.5])
        np.testing.assert_array_equal(direction, [NAN, NAN, -1, -1, -1, -1, -1, 1, 1, -1])

    def test_line_is_below_price_in_an_uptrend_and_above_in_a_downtrend(self) -> None:
        rng = np.random.default_rng(11)
        close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 500)))
        high, low = close * 1.01, close * 0.99
        line, direction = ind.supertrend(high, low, close)
        up, down = direction == 1.0, direction == -1.0
        assert up.any()
        assert down.any()
        assert np.all(line[up] <= close[up])
        assert np.all(line[down] >= close[down])
        assert np.isnan(line[:10]).all()
        assert not np.isnan(line[10:]).any()


class TestKeltner:
    high = (10.0, 11.0, 12.0, 13.0, 12.0, 9.0)
    low = (8.0, 9.0, 10.0, 11.0, 8.0, 6.0)
    close = (9.0, 10.0, 11.0, 12.0, 8.0, 7.0)

    def test_ema_middle_and_atr_bands(self) -> None:
        # EMA(3), k = 2/(3+1) = 0.5, seeded with (9+10+11)/3 = 10 on bar 2:
        #   bar 3: 10 + 0.5*(12-10) = 11; bar 4: 11 + 0.5*(8-11) = 9.5;
        #   bar 5: 9.5 + 0.5*(7-9.5) = 8.25.
        # ATR(2) (see the SuperTrend bars): 2, 2, 3, 3 from bar 2.  Multiplier 2:
        #   upper = 14, 15, 15.5, 14.25 and lower = 6, 7, 3.5, 2.25.
        upper, middle, lower = ind.keltner(self.high, self.low, self.close, 3, 2, 2.0)
        np.testing.assert_array_equal(middle, [NAN, NAN, 10, 11, 9.5, 8.25])
        np.testing.assert_array_equal(upper, [NAN, NAN, 14, 15, 15.5, 14.25])
        np.testing.assert_array_equal(lower, [NAN, NAN, 6, 7, 3.5, 2.25])

    def test_starts_when_both_parts_exist(self) -> None:
        # EMA(2) exists from bar 1, ATR(4) only from bar 4: the channel starts on bar 4.
        upper, middle, lower = ind.keltner(self.high, self.low, self.close, 2, 4)
        for band in (upper, middle, lower):
            np.testing.assert_array_equal(np.isnan(band), [True] * 4 + [False] * 2)


class TestDonchian:
    def test_highest_high_lowest_low_and_midpoint(self) -> None:
        high = [3.0, 5.0, 4.0, 6.0, 2.0]
        low = [1.0, 2.0, 0.0, 3.0, 1.0]
        # Windows of 3: bars 0-2 -> max 5, min 0; 1-3 -> 6, 0; 2-4 -> 6, 0.
        upper, middle, lower = ind.donchian(high, low, 3)
        np.testing.assert_array_equal(upper, [NAN, NAN, 5, 6, 6])
        np.testing.assert_array_equal(lower, [NAN, NAN, 0, 0, 0])
        np.testing.assert_array_equal(middle, [NAN, NAN, 2.5, 3, 3])

    def test_agrees_with_talib_max_and_min(self) -> None:
        rng = np.random.default_rng(3)
        close = 100 + np.cumsum(rng.normal(0, 1, 5000))
        high, low = close + rng.uniform(0, 1, 5000), close - rng.uniform(0, 1, 5000)
        for period in (2, 7, 20, 55):
            upper, _, lower = ind.donchian(high, low, period)
            np.testing.assert_array_equal(upper, talib.MAX(high, period))
            np.testing.assert_array_equal(lower, talib.MIN(low, period))


class TestPivotPoints:
    # The previous bar has H = 120, L = 90, C = 111, so the range is 30.
    high = (120.0, 115.0)
    low = (90.0, 100.0)
    close = (111.0, 101.0)

    @pytest.mark.parametrize(
        ("method", "expected"),
        [
            # P = (120+90+111)/3 = 107; R1 = 2P-L = 124; S1 = 2P-H = 94; R2 = P+30 = 137;
            # S2 = P-30 = 77; R3 = H+2(P-L) = 154; S3 = L-2(H-P) = 64.
            ("classic", {"P": 107, "R1": 124, "R2": 137, "R3": 154, "S1": 94, "S2": 77, "S3": 64}),
            # P = 107; R/S = P +/- 0.382*30 = 11.46, 0.618*30 = 18.54, 1.0*30.
            (
                "fibonacci",
                {
                    "P": 107,
                    "R1": 118.46,
                    "R2": 125.54,
                    "R3": 137,
                    "S1": 95.54,
                    "S2": 88.46,
                    "S3": 77,
                },
            ),
            # Around the close: C +/- 30*1.1/12 = 2.75, 30*1.1/6 = 5.5, 30*1.1/4 = 8.25.
            (
                "camarilla",
                {
                    "P": 107,
                    "R1": 113.75,
                    "R2": 116.5,
                    "R3": 119.25,
                    "S1": 108.25,
                    "S2": 105.5,
                    "S3": 102.75,
                },
            ),
            # P = (H+L+2C)/4 = 432/4 = 108; R1 = 126; S1 = 96; R2 = 138; S2 = 78;
            # R3 = 120+2*18 = 156; S3 = 90-2*12 = 66.
            ("woodie", {"P": 108, "R1": 126, "R2": 138, "R3": 156, "S1": 96, "S2": 78, "S3": 66}),
        ],
    )
    def test_levels_from_the_previous_bar(self, method: str, expected: dict[str, float]) -> None:
        levels = ind.pivot_points(self.high, self.low, self.close, method)  # type: ignore[arg-type]
        for name, series in levels.as_dict().items():
            assert np.isnan(series[0])
            assert series[1] == pytest.approx(expected[name], rel=1e-12)

    def test_dataclass_fields_match_the_dict(self) -> None:
        levels = ind.pivot_points(self.high, self.low, self.close)
        assert levels.as_dict()["R2"] is levels.r2
        assert levels.p[1] == 107.0
