"""Purged and embargoed splits: a hand-worked case, scikit-learn's TimeSeriesSplit and
skfolio's WalkForward as the non-purged and fixed-purge baselines, and AFML's snippets 7.1
and 7.2 transcribed in pandas as the reference definition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from skfolio.model_selection import WalkForward
from sklearn.model_selection import TimeSeriesSplit

from quantdesk.signals.research.splits import Fold, embargo_bars, purged_kfold, walk_forward


def _as_lists(folds: list[Fold]) -> list[tuple[list[int], list[int]]]:
    return [(f.train.tolist(), f.test.tolist()) for f in folds]


def test_walk_forward_purges_the_labels_that_reach_into_the_test_block() -> None:
    # 12 bars, labels of 2 bars ahead (end[i] = i + 2, capped at the last bar); two test
    # blocks of 3: [6, 7, 8] and [9, 10, 11].  Rows 4 and 5 (labels ending at 6 and 7) are
    # purged from the first fold, 7 and 8 from the second.
    end = np.minimum(np.arange(12) + 2, 11)
    folds = walk_forward(12, n_splits=2, test_size=3, end=end)
    assert _as_lists(folds) == [([0, 1, 2, 3], [6, 7, 8]), ([0, 1, 2, 3, 4, 5, 6], [9, 10, 11])]
    rolling = walk_forward(12, n_splits=2, test_size=3, end=end, train_size=4)
    assert _as_lists(rolling) == [([2, 3], [6, 7, 8]), ([5, 6], [9, 10, 11])]


def test_purged_kfold_purges_and_embargoes_by_hand() -> None:
    # Blocks [0-3], [4-7], [8-11]; end[i] = i + 2; embargo 1 bar.  Middle block: its labels
    # reach bar 9, the embargo to 10; on the left rows 2 and 3 end inside it.
    end = np.minimum(np.arange(12) + 2, 11)
    folds = purged_kfold(12, n_splits=3, end=end, embargo=1)
    assert _as_lists(folds) == [
        ([7, 8, 9, 10, 11], [0, 1, 2, 3]),
        ([0, 1, 11], [4, 5, 6, 7]),
        ([0, 1, 2, 3, 4, 5], [8, 9, 10, 11]),
    ]


@pytest.mark.parametrize(("n", "splits", "size", "gap", "train"), [
    (100, 5, None, 0, None), (100, 3, 10, 2, None), (57, 4, 7, 0, 20), (250, 6, None, 5, 60),
])  # fmt: skip
def test_without_labels_walk_forward_is_time_series_split(
    n: int, splits: int, size: int | None, gap: int, train: int | None
) -> None:
    ours = walk_forward(n, n_splits=splits, test_size=size, gap=gap, train_size=train)
    reference = TimeSeriesSplit(n_splits=splits, test_size=size, gap=gap, max_train_size=train)
    expected = [(a.tolist(), b.tolist()) for a, b in reference.split(np.zeros((n, 1)))]
    assert _as_lists(ours) == expected


@pytest.mark.parametrize(("horizon", "train", "expand"), [(1, 30, False), (3, 25, True)])
def test_forward_label_purge_equals_skfolio_walk_forward_purged_size(
    horizon: int, train: int, expand: bool
) -> None:
    # h-bar forward labels purge exactly the h bars before each block: skfolio's fixed
    # purged_size (its folds start from the first bar; ours end at the last, so n is chosen
    # for the two layouts to meet).
    test_size, n_splits = 10, 4
    n = train + horizon + n_splits * test_size
    reference = WalkForward(test_size=test_size, train_size=train, expand_train=expand,
                            purged_size=horizon)  # fmt: skip
    expected = [(a.tolist(), b.tolist()) for a, b in reference.split(np.zeros((n, 1)))]
    end = np.minimum(np.arange(n) + horizon, n - 1)
    ours = walk_forward(n, n_splits=n_splits, test_size=test_size, end=end,
                        train_size=None if expand else train + horizon)  # fmt: skip
    assert _as_lists(ours) == expected


# --- AFML, snippets 7.1 (getTrainTimes) and 7.2 (getEmbargoTimes), as printed --------------
def afml_train_times(t1: pd.Series, test_times: pd.Series) -> pd.Series:
    trn = t1.copy(deep=True)
    for i, j in test_times.items():
        df0 = trn[(i <= trn.index) & (trn.index <= j)].index  # train starts within test
        df1 = trn[(i <= trn) & (trn <= j)].index  # train ends within test
        df2 = trn[(trn.index <= i) & (j <= trn)].index  # train envelops test
        trn = trn.drop(df0.union(df1).union(df2))
    return trn


def afml_embargo_times(times: pd.Index, pct_embargo: float) -> pd.Series:
    step = int(times.shape[0] * pct_embargo)
    if step == 0:
        return pd.Series(times, index=times)
    mbrg = pd.Series(times[step:], index=times[:-step])
    out: pd.Series = pd.concat([mbrg, pd.Series(times[-1], index=times[-step:])])
    return out


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(20, 80),
    k=st.integers(2, 5),
    pct=st.sampled_from([0.0, 0.02, 0.05, 0.1]),
    data=st.data(),
)
def test_purged_kfold_is_afml(n: int, k: int, pct: float, data: st.DataObject) -> None:
    reach = data.draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))
    end = np.minimum(np.arange(n) + np.array(reach), n - 1)
    t1 = pd.Series(end, index=np.arange(n))
    embargo = afml_embargo_times(t1.index, pct)
    ours = purged_kfold(n, n_splits=k, end=end, embargo=embargo_bars(n, pct))
    for fold, block in zip(ours, np.array_split(np.arange(n), k), strict=True):
        start, stop = int(block[0]), int(t1[block].max())
        test_times = pd.Series([embargo[stop]], index=[start])
        expected = afml_train_times(t1, test_times).index.to_numpy()
        assert fold.test.tolist() == block.tolist()
        assert fold.train.tolist() == expected.tolist()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="too few"):
        walk_forward(10, n_splits=5, test_size=3)
    with pytest.raises(ValueError, match="end"):
        walk_forward(10, n_splits=2, end=np.zeros(10, dtype=np.int64) - 1)
    with pytest.raises(ValueError, match="fraction"):
        embargo_bars(10, 1.5)
