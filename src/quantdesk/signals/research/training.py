"""Walk-forward training: features and labels, folds, one fresh model per fold, and
metrics on the test blocks only.

Honesty rules, each tested: a fold's model is fitted on its (purged) training rows alone,
never sees a test row, and is thrown away after predicting its block; the metrics are
computed from those out-of-sample predictions only; the model that is kept (and served) is
fitted afterwards on every row, and its in-sample scores are not reported.  Everything is
seeded (``seed``), so the same bars and spec give the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from quantdesk.signals.research import metrics, splits
from quantdesk.signals.research.estimators import (
    Classifier,
    make_classifier,
    model_parameters,
    probability_up,
)
from quantdesk.signals.research.features import FEATURES, Bars, build_features
from quantdesk.signals.research.labels import Labels, forward_returns, triple_barrier

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class TrainSpec:
    model: str = "logistic"
    params: dict[str, Any] = field(default_factory=dict)
    features: tuple[str, ...] = FEATURES
    label: Literal["forward_return", "triple_barrier"] = "forward_return"
    horizon: int = 1
    pt: float = 1.0
    sl: float = 1.0
    scheme: Literal["walk_forward", "purged_kfold"] = "walk_forward"
    window: Literal["expanding", "rolling"] = "expanding"
    n_splits: int = 5
    train_size: int | None = None  # rolling windows: bars per training window
    gap: int = 0
    embargo_pct: float = 0.01
    threshold: float = 0.5
    allow_short: bool = False
    cost_per_turnover: float = 0.0
    periods_per_year: float = 252.0
    seed: int = 0

    def __post_init__(self) -> None:
        model_parameters(self.model, self.params)  # raises on unknown kinds or parameters
        if self.window == "rolling" and self.train_size is None:
            raise ValueError("rolling windows need train_size")
        if not 0.5 <= self.threshold < 1:
            raise ValueError("threshold is in [0.5, 1)")

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["features"] = list(self.features)
        return out


@dataclass(frozen=True, slots=True, eq=False)
class Dataset:
    bar_index: IntArray  # the bar each row is read at
    X: FloatArray
    y: FloatArray  # 1 = up
    end: IntArray  # per row: the last row its label uses
    next_return: FloatArray  # close[t+1] / close[t] - 1
    ts: IntArray
    last_used_ts: int  # the open time of the last bar any label uses

    def __len__(self) -> int:
        return int(self.y.shape[0])


def make_labels(bars: Bars, spec: TrainSpec) -> Labels:
    if spec.label == "forward_return":
        return forward_returns(bars.close, spec.horizon)
    one = np.full(len(bars), np.nan)
    one[1:] = np.log(bars.close[1:] / bars.close[:-1])
    target = np.full(len(bars), np.nan)
    if len(bars) >= 21:  # the trailing 20-bar volatility, as the feature vol_20
        from numpy.lib.stride_tricks import sliding_window_view

        target[20:] = sliding_window_view(one[1:], 20).std(axis=1, ddof=1)
    return triple_barrier(bars.close, target, horizon=spec.horizon, pt=spec.pt, sl=spec.sl)


def prepare(bars: Bars, spec: TrainSpec) -> Dataset:
    matrix = build_features(bars, spec.features)
    labels = make_labels(bars, spec)
    keep = np.flatnonzero(matrix.complete_rows() & labels.known())
    if keep.size < 2:
        raise ValueError("too few bars with complete features and known labels")
    close = bars.close
    next_return = np.full(len(bars), np.nan)
    next_return[:-1] = close[1:] / close[:-1] - 1.0
    # Label ends in row numbers: the last kept row at or before the bar the label ends at.
    end_rows = np.searchsorted(keep, labels.end[keep], side="right") - 1
    end_rows = np.maximum(end_rows, np.arange(keep.size))
    return Dataset(
        bar_index=keep.astype(np.int64),
        X=matrix.values[keep],
        y=labels.up()[keep],
        end=end_rows.astype(np.int64),
        next_return=next_return[keep],
        ts=bars.ts[keep],
        last_used_ts=int(bars.ts[int(labels.end[keep].max())]),
    )


def folds_for(data: Dataset, spec: TrainSpec) -> list[splits.Fold]:
    n = len(data)
    embargo = splits.embargo_bars(n, spec.embargo_pct)
    if spec.scheme == "purged_kfold":
        return splits.purged_kfold(n, n_splits=spec.n_splits, end=data.end, embargo=embargo)
    return splits.walk_forward(
        n,
        n_splits=spec.n_splits,
        train_size=spec.train_size if spec.window == "rolling" else None,
        gap=spec.gap,
        end=data.end,
        embargo=embargo,
    )


def fit(X: FloatArray, y: FloatArray, spec: TrainSpec) -> Classifier:
    model = make_classifier(spec.model, spec.params, spec.seed)
    model.fit(X, y)
    return model


def data_hash(bars: Bars) -> str:
    digest = hashlib.sha256()
    for column in bars.columns():
        digest.update(np.ascontiguousarray(column).tobytes())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True, eq=False)
class TrainResult:
    spec: TrainSpec
    model: Classifier  # fitted on every row, for serving
    metrics: dict[str, Any]
    folds: list[dict[str, Any]]
    oos_index: IntArray  # rows predicted out of sample, in time order
    oos_probability: FloatArray
    window: tuple[int, int]  # epoch seconds: the first bar trained on, the last bar used
    rows: int
    data_hash: str

    def summary(self) -> dict[str, Any]:
        return {
            "spec": self.spec.as_dict(),
            "metrics": self.metrics,
            "folds": self.folds,
            "window": list(self.window),
            "rows": self.rows,
            "data_hash": self.data_hash,
        }


def evaluate(
    data: Dataset, folds: Sequence[splits.Fold], probability: FloatArray, spec: TrainSpec
) -> tuple[dict[str, Any], list[dict[str, Any]], IntArray]:
    """Metrics over the out-of-sample rows of ``folds``; ``probability`` is per row (NaN
    where no fold predicted it)."""
    index = np.unique(np.concatenate([f.test for f in folds])).astype(np.int64)
    y, p = data.y[index], probability[index]
    majority = np.empty(index.size)
    per_fold = []
    where = {int(row): k for k, row in enumerate(index)}
    for number, fold in enumerate(folds):
        guess = 1.0 if data.y[fold.train].mean() > 0.5 else 0.0
        for row in fold.test:
            majority[where[int(row)]] = guess
        scores = metrics.classification(data.y[fold.test], probability[fold.test])
        per_fold.append(
            {
                "fold": number,
                "train_rows": int(fold.train.size),
                "test_rows": int(fold.test.size),
                "test_from": int(data.ts[fold.test[0]]),
                "test_to": int(data.ts[fold.test[-1]]),
                "hit_rate": scores["hit_rate"],
                "log_loss": scores["log_loss"],
            }
        )
    pos = metrics.positions(p, spec.threshold, spec.allow_short)
    result: dict[str, Any] = {
        "out_of_sample_rows": int(index.size),
        **metrics.classification(y, p),
        **metrics.traded(pos, data.next_return[index], spec.cost_per_turnover,
                         spec.periods_per_year),
        "baseline": {
            "always_up_hit_rate": float(y.mean()),
            "train_majority_hit_rate": float((majority == y).mean()),
            "buy_and_hold": metrics.traded(
                np.ones(index.size), data.next_return[index], spec.cost_per_turnover,
                spec.periods_per_year,
            ),
        },
    }  # fmt: skip
    result["hit_rate_vs_baseline"] = (
        None
        if result["hit_rate"] is None
        else result["hit_rate"] - max(result["baseline"]["always_up_hit_rate"],
                                      result["baseline"]["train_majority_hit_rate"])
    )  # fmt: skip
    return result, per_fold, index


def train_walk_forward(
    bars: Bars, spec: TrainSpec, progress: Progress | None = None
) -> TrainResult:
    """Validate ``spec`` on ``bars`` fold by fold, then fit the model to keep on every row.
    ``progress(done, total)`` is called after each fold and after the final fit."""
    from threadpoolctl import threadpool_limits

    # One thread per fit: tasks run side by side (a pool, Dask workers), and OpenMP's
    # threads inside each fit on a busy machine cost ~100x (measured: 6 s against 0.05 s).
    with threadpool_limits(limits=1):
        return _train(bars, spec, progress)


def _train(bars: Bars, spec: TrainSpec, progress: Progress | None) -> TrainResult:
    data = prepare(bars, spec)
    folds = folds_for(data, spec)
    total = len(folds) + 1
    probability = np.full(len(data), np.nan)
    for done, fold in enumerate(folds, start=1):
        if fold.train.size == 0:
            raise ValueError("a fold has no training rows left after the purge")
        model = fit(data.X[fold.train], data.y[fold.train], spec)
        probability[fold.test] = probability_up(model, data.X[fold.test])
        if progress is not None:
            progress(done, total)
    summary, per_fold, index = evaluate(data, folds, probability, spec)
    final = fit(data.X, data.y, spec)
    if progress is not None:
        progress(total, total)
    return TrainResult(
        spec=spec,
        model=final,
        metrics=summary,
        folds=per_fold,
        oos_index=index,
        oos_probability=probability[index],
        window=(int(data.ts[0]), data.last_used_ts),
        rows=len(data),
        data_hash=data_hash(bars),
    )


def predict(model: Classifier, bars: Bars, features: Sequence[str]) -> FloatArray:
    """P(up) for every bar whose features are complete (NaN during the warm-up)."""
    matrix = build_features(bars, features)
    rows = matrix.complete_rows()
    out = np.full(len(bars), np.nan)
    if rows.any():
        out[rows] = probability_up(model, matrix.values[rows])
    return out


def spec_from_dict(raw: dict[str, Any]) -> TrainSpec:
    values = dict(raw)
    if "features" in values:
        values["features"] = tuple(values["features"])
    return TrainSpec(**values)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
