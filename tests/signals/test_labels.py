"""Labels: forward returns and triple barriers by hand, and against AFML's applyPtSlOnT1 /
getBins (snippets 3.2 and 3.5) transcribed in pandas."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from quantdesk.signals.research.labels import forward_returns, triple_barrier


def test_forward_returns_end_h_bars_later() -> None:
    labels = forward_returns([100.0, 110.0, 99.0, 99.0], horizon=2)
    np.testing.assert_allclose(labels.value[:2], [np.log(0.99), np.log(0.9)])
    assert np.isnan(labels.value[2:]).all()
    assert labels.end.tolist() == [2, 3, 2, 3]
    assert labels.up()[:2].tolist() == [0.0, 0.0]


def test_triple_barrier_by_hand() -> None:
    close = [100.0, 101.0, 103.0, 99.0, 97.0, 100.0, 100.5, 100.2]
    target = [0.02] * 8  # barriers at +-2% of the close the event starts from
    labels = triple_barrier(close, target, horizon=3, pt=1.0, sl=1.0)
    # t=0: 101 (+1%), 103 (+3% >= 2%): upper at k=2 -> +1, ends at bar 2.
    # t=1: 103 (+1.98%, below 2%), 99 (-1.98%), 97 (-3.96%): lower at k=3 -> -1, ends at 4.
    # t=2: 99 (-3.9%): lower at once -> -1, ends at 3.
    # t=3: 97 (-2.02%): lower -> -1.  t=4: 100 (+3.09%): upper -> +1.
    # t=5 vertical at 8? no: t+3 = 8 is past the data, unknown.  t=4 ends at 5.
    assert labels.value[:5].tolist() == [1.0, -1.0, -1.0, -1.0, 1.0]
    assert labels.end[:5].tolist() == [2, 4, 3, 4, 5]
    assert np.isnan(labels.value[5:]).all()
    wide = triple_barrier(close, [0.5] * 8, horizon=3)  # only the vertical barrier
    assert wide.value[:5].tolist() == [-1.0, -1.0, -1.0, 1.0, 1.0]  # sign at t + 3
    zero = triple_barrier(close, [0.5] * 8, horizon=3, vertical_zero=True)
    assert zero.value[:5].tolist() == [0.0] * 5


def afml_labels(close: pd.Series, trgt: pd.Series, h: int, pt: float, sl: float) -> pd.Series:
    """applyPtSlOnT1 + getBins (sign of the return at the first touch)."""
    out = {}
    for loc in range(len(close) - h):
        t0, t1 = close.index[loc], close.index[loc + h]
        path = close[t0:t1]
        path = (path / close[t0] - 1)[1:]
        if not trgt[t0] > 0:
            continue
        upper = pt * trgt[t0] if pt > 0 else np.inf
        lower = -sl * trgt[t0] if sl > 0 else -np.inf
        touches = [path[path < lower].index.min(), path[path > upper - 1e-300].index.min(), t1]
        first = min(t for t in touches if pd.notna(t))
        out[t0] = np.sign(close[first] / close[t0] - 1)
    return pd.Series(out, dtype=float)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    h=st.integers(1, 6),
    pt=st.sampled_from([0.0, 0.5, 1.0, 2.0]),
    sl=st.sampled_from([0.0, 1.0, 1.5]),
)
def test_triple_barrier_is_afml(seed: int, h: int, pt: float, sl: float) -> None:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 40)))
    trgt = np.full(40, 0.01)
    ours = triple_barrier(close, trgt, horizon=h, pt=pt, sl=sl)
    reference = afml_labels(pd.Series(close), pd.Series(trgt), h, pt, sl)
    np.testing.assert_array_equal(ours.value[: 40 - h], reference.to_numpy())
