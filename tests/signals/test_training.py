"""Walk-forward training: the leakage canary, a signal that is really there, out-of-sample
honesty (a fold's predictions never depend on later data), reproducibility, artifacts."""

from __future__ import annotations

import numpy as np
import pytest

from quantdesk.signals.research import artifacts
from quantdesk.signals.research.features import Bars
from quantdesk.signals.research.training import (
    TrainSpec,
    folds_for,
    predict,
    prepare,
    train_walk_forward,
)
from tests.signals.synthetic import predictable, random_walk


@pytest.mark.parametrize(
    "spec",
    [
        TrainSpec(model="logistic"),
        TrainSpec(
            model="random_forest", params={"n_estimators": 30}, label="triple_barrier", horizon=5
        ),
        TrainSpec(
            model="gradient_boosting", params={"max_iter": 30}, window="rolling", train_size=300
        ),
    ],
    ids=["logistic", "forest-triple-barrier", "boosting-rolling"],
)
def test_leakage_canary_iid_returns_give_no_edge(spec: TrainSpec) -> None:
    # Returns are i.i.d.: nothing is predictable, so an out-of-sample hit rate above ~55%
    # would mean the pipeline leaks the future into training or features.
    result = train_walk_forward(random_walk(1500, seed=11), spec)
    assert result.metrics["out_of_sample_rows"] >= 1000
    assert result.metrics["hit_rate"] < 0.55


def test_a_real_pattern_is_found_out_of_sample() -> None:
    result = train_walk_forward(predictable(800, seed=2), TrainSpec(n_splits=4))
    metrics = result.metrics
    assert metrics["hit_rate"] > 0.62
    assert metrics["hit_rate_vs_baseline"] > 0.1
    assert metrics["sharpe"] > 2
    assert metrics["baseline"]["buy_and_hold"]["sharpe"] < metrics["sharpe"]
    assert [f["fold"] for f in result.folds] == [0, 1, 2, 3]


def test_folds_never_train_on_or_after_their_test_labels() -> None:
    bars = random_walk(600, seed=5)
    spec = TrainSpec(label="triple_barrier", horizon=7)
    data = prepare(bars, spec)
    for fold in folds_for(data, spec):
        assert data.end[fold.train].max() < fold.test.min()


def test_out_of_sample_predictions_do_not_depend_on_later_data() -> None:
    # Replace everything after the first test blocks by another future: the predictions of
    # blocks trained and tested before it are unchanged (no fold ever saw later bars).
    bars = random_walk(700, seed=8)
    spec = TrainSpec(n_splits=4, horizon=3)
    base = train_walk_forward(bars, spec)
    first_blocks = base.oos_index[base.oos_index < 420 - 60]  # well before the change
    other = random_walk(700, seed=99)
    columns = [np.array(c) for c in bars.columns()]
    cut = 420
    ratio = bars.close[cut] / other.close[cut]
    for k, name in enumerate(("open", "high", "low", "close"), start=1):
        columns[k][cut + 1 :] = getattr(other, name)[cut + 1 :] * ratio
    changed = train_walk_forward(Bars(*columns), spec)
    np.testing.assert_array_equal(
        changed.oos_probability[: first_blocks.size], base.oos_probability[: first_blocks.size]
    )
    assert base.data_hash != changed.data_hash


def test_training_is_reproducible_and_the_artifact_round_trips() -> None:
    bars = random_walk(500, seed=4)
    spec = TrainSpec(model="random_forest", params={"n_estimators": 10}, seed=7)
    one, two = train_walk_forward(bars, spec), train_walk_forward(bars, spec)
    assert one.metrics == two.metrics
    np.testing.assert_array_equal(one.oos_probability, two.oos_probability)
    blob, digest = artifacts.dump_model(one.model)
    loaded = artifacts.load_model(blob, digest)
    served = predict(loaded, bars, spec.features)
    np.testing.assert_array_equal(served, predict(two.model, bars, spec.features))
    with pytest.raises(artifacts.UnsafeArtifact, match="digest"):
        artifacts.load_model(blob[:-1] + b"x", digest)
    with pytest.raises(artifacts.UnsafeArtifact):
        artifacts.load_model(b"not a zip", artifacts.digest_of(b"not a zip"))


def test_an_artifact_naming_an_untrusted_type_is_refused() -> None:
    import builtins

    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer

    blob = sio.dumps(FunctionTransformer(func=builtins.eval))  # would call eval on load
    with pytest.raises(artifacts.UnsafeArtifact, match="not trusted"):
        artifacts.load_model(blob, artifacts.digest_of(blob))


def test_bad_specs_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown model"):
        TrainSpec(model="oracle")
    with pytest.raises(ValueError, match="takes"):
        TrainSpec(params={"penalty": 3})
    with pytest.raises(ValueError, match="train_size"):
        TrainSpec(window="rolling")
