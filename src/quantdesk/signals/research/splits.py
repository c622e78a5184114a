"""Train/test splits for time series whose labels span several bars: purge and embargo.

Definitions (López de Prado, AFML ch. 7; observation ``i`` is the bar a signal is read at,
its label uses bars ``i..end[i]``):

* **Walk-forward** (the scheme training uses): ``n_splits`` consecutive test blocks of
  ``test_size`` bars ending at the last bar, exactly scikit-learn's ``TimeSeriesSplit``
  (``test_size`` defaults to ``n // (n_splits + 1)``); the training window is every bar
  before the block (**expanding**) or at most the ``train_size`` bars before it
  (**rolling**, ``TimeSeriesSplit``'s ``max_train_size``), less ``gap`` bars right before
  the block (``TimeSeriesSplit``'s ``gap``).
* **Purge**: a training observation whose label interval ``[i, end[i]]`` overlaps the test
  interval ``[s, E]`` (``s`` the block's first bar, ``E`` the last bar any test label uses)
  is dropped (AFML snippet 7.1, ``getTrainTimes``: starts within, ends within, or spans the
  test interval).  In walk-forward every training bar precedes ``s``, so this drops the
  ``i`` with ``end[i] >= s``: with ``h``-bar forward labels, the last ``h`` bars before the
  block.
* **Embargo** (AFML 7.4.2, snippet 7.2): the test interval is extended by ``embargo`` bars
  past ``E`` before purging, so training observations that start just after a test block
  (serially correlated with it) are dropped too.  Only the **purged k-fold** scheme trains
  on bars after a test block; walk-forward never does, so there the embargo removes
  nothing (give ``gap`` for a margin before the block).

Without labels (``end=None``) the purge is off and walk-forward equals ``TimeSeriesSplit``
fold for fold (tested); the k-fold blocks are ``np.array_split`` as AFML's ``PurgedKFold``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True, eq=False)
class Fold:
    train: IntArray
    test: IntArray


def _ends(n: int, end: npt.ArrayLike | None) -> IntArray:
    if end is None:
        return np.arange(n, dtype=np.int64)
    ends = np.asarray(end, dtype=np.int64)
    if ends.shape != (n,) or (ends < np.arange(n)).any():
        raise ValueError("end[i] is an index at or after i, one per observation")
    return ends


def purge(train: IntArray, test: IntArray, end: IntArray, embargo: int = 0) -> IntArray:
    """``train`` less the observations whose label interval meets the test interval, the
    latter reaching ``embargo`` bars past the last bar a test label uses."""
    if test.size == 0:
        return train
    start = int(test.min())
    stop = int(end[test].max()) + embargo
    overlaps = (train <= stop) & (end[train] >= start)
    return train[~overlaps]


def walk_forward(
    n: int,
    *,
    n_splits: int = 5,
    test_size: int | None = None,
    train_size: int | None = None,
    gap: int = 0,
    end: npt.ArrayLike | None = None,
    embargo: int = 0,
) -> list[Fold]:
    if n_splits < 1 or gap < 0 or embargo < 0:
        raise ValueError("n_splits >= 1, gap >= 0 and embargo >= 0")
    size = test_size if test_size is not None else n // (n_splits + 1)
    if size < 1 or n - n_splits * size < 1:
        raise ValueError(f"{n} observations are too few for {n_splits} test blocks of {size}")
    ends = _ends(n, end)
    folds = []
    for first in range(n - n_splits * size, n, size):
        train_end = first - gap
        train_start = 0 if train_size is None else max(0, train_end - train_size)
        if train_end <= train_start:
            raise ValueError("a fold has no training data: fewer splits or a smaller gap")
        train = np.arange(train_start, train_end, dtype=np.int64)
        test = np.arange(first, first + size, dtype=np.int64)
        folds.append(Fold(purge(train, test, ends, embargo) if end is not None else train, test))
    return folds


def purged_kfold(
    n: int, *, n_splits: int = 5, end: npt.ArrayLike | None = None, embargo: int = 0
) -> list[Fold]:
    """k contiguous test blocks (``np.array_split``); trained on every other bar, purged
    and embargoed (AFML's ``PurgedKFold`` with ``getTrainTimes`` and ``getEmbargoTimes``)."""
    if n_splits < 2 or n < n_splits:
        raise ValueError("purged k-fold needs at least 2 splits and a bar per block")
    ends = _ends(n, end)
    everything = np.arange(n, dtype=np.int64)
    folds = []
    for test in np.array_split(everything, n_splits):
        test = test.astype(np.int64)
        train = np.setdiff1d(everything, test).astype(np.int64)
        folds.append(Fold(purge(train, test, ends, embargo), test))
    return folds


def embargo_bars(n: int, pct: float) -> int:
    """AFML's ``mbrg = int(n * pctEmbargo)``."""
    if not 0 <= pct < 1:
        raise ValueError("the embargo is a fraction of the observations in [0, 1)")
    return int(n * pct)
