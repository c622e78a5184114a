"""Labels: what a model learns to predict, and the bar at which each label is known.

* **Forward return** over ``h`` bars: ``log(close[t+h] / close[t])``; it ends at ``t + h``.
* **Triple barrier** (López de Prado, *Advances in Financial Machine Learning* (AFML),
  3.4-3.5): from the close of bar ``t`` the path ``close[t+k] / close[t] - 1`` for
  ``k = 1..h`` meets an upper barrier ``+pt * target[t]``, a lower one ``-sl * target[t]``
  or the vertical one at ``t + h``, whichever comes first; the label is ``+1`` (upper),
  ``-1`` (lower), and at the vertical barrier the sign of the return then (AFML's
  ``getBins``) or ``0`` with ``vertical_zero`` (AFML 3.6).  ``pt`` or ``sl`` of 0 removes
  that barrier.  ``target`` is usually the trailing volatility of returns (``vol_20``).

Each label carries ``end[t]``, the last bar whose price it uses: the purge of
:mod:`.splits` drops every training row whose label ends inside a test block.  Labels that
would need bars past the end of the data are NaN (never filled with partial paths).

Hand-written: AFML's snippets are pandas loops over events; these are the same rules over
arrays (checked against a transcription of ``applyPtSlOnT1``/``getBins`` in the tests).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True, eq=False)
class Labels:
    value: FloatArray  # NaN where the label cannot be known from the data
    end: IntArray  # index of the last bar each label uses (``t`` itself when unknown)
    kind: str

    def known(self) -> npt.NDArray[np.bool_]:
        return np.asarray(np.isfinite(self.value))

    def up(self) -> FloatArray:
        """The binary target the classifiers learn: 1 when the label is positive."""
        return np.where(self.known(), (self.value > 0).astype(np.float64), np.nan)


def forward_returns(close: npt.ArrayLike, horizon: int = 1) -> Labels:
    c = np.asarray(close, dtype=np.float64)
    if horizon < 1:
        raise ValueError("horizon is at least 1 bar")
    n = c.shape[0]
    value = np.full(n, np.nan)
    if n > horizon:
        value[:-horizon] = np.log(c[horizon:] / c[:-horizon])
    index = np.arange(n, dtype=np.int64)
    end = np.where(index + horizon < n, index + horizon, index)
    return Labels(value, end.astype(np.int64), f"forward_return_{horizon}")


def triple_barrier(
    close: npt.ArrayLike,
    target: npt.ArrayLike,
    *,
    horizon: int = 10,
    pt: float = 1.0,
    sl: float = 1.0,
    vertical_zero: bool = False,
) -> Labels:
    c = np.asarray(close, dtype=np.float64)
    trgt = np.asarray(target, dtype=np.float64)
    if horizon < 1 or pt < 0 or sl < 0:
        raise ValueError("horizon is at least 1 bar; pt and sl are not negative")
    n = c.shape[0]
    value = np.full(n, np.nan)
    end = np.arange(n, dtype=np.int64)
    events = np.flatnonzero(np.isfinite(trgt) & (trgt > 0) & (np.arange(n) + horizon < n))
    if events.size == 0:
        return Labels(value, end, "triple_barrier")
    # path[e, k-1] = close[t+k] / close[t] - 1 for every event t and k = 1..h
    steps = events[:, None] + np.arange(1, horizon + 1)[None, :]
    path = c[steps] / c[events][:, None] - 1.0
    width = trgt[events][:, None]
    never = horizon  # "no touch" sorts after every k - 1
    up_hit = path >= pt * width if pt > 0 else np.zeros_like(path, dtype=bool)
    down_hit = path <= -sl * width if sl > 0 else np.zeros_like(path, dtype=bool)
    first_up = np.where(up_hit.any(axis=1), up_hit.argmax(axis=1), never)
    first_down = np.where(down_hit.any(axis=1), down_hit.argmax(axis=1), never)
    first = np.minimum(first_up, first_down)
    touched = first < never
    k = np.where(touched, first, horizon - 1)
    ret = path[np.arange(events.size), k]
    label = np.sign(ret)
    if vertical_zero:
        label = np.where(touched, label, 0.0)
    value[events] = label
    end[events] = events + k + 1
    return Labels(value, end, "triple_barrier")
