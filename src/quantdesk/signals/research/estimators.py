"""The models behind one small interface: ``fit(X, y)`` and ``predict_proba(X)[:, 1]``.

scikit-learn estimators, seeded: a logistic regression on standardised features (the
default: few parameters, hard to overfit), a random forest, and histogram gradient boosting
(scikit-learn's implementation of LightGBM's algorithm; LightGBM itself would add a native
dependency for no gain at these data sizes, so it is not used).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

MODEL_KINDS = ("logistic", "random_forest", "gradient_boosting")

# Parameters a request may set, per kind, with their allowed types.
_PARAMETERS: dict[str, dict[str, type]] = {
    "logistic": {"C": float, "max_iter": int},
    "random_forest": {"n_estimators": int, "max_depth": int, "min_samples_leaf": int},
    "gradient_boosting": {"max_iter": int, "max_depth": int, "learning_rate": float},
}
_DEFAULTS: dict[str, dict[str, Any]] = {
    "logistic": {"C": 1.0, "max_iter": 200},
    "random_forest": {"n_estimators": 100, "max_depth": 4, "min_samples_leaf": 20},
    "gradient_boosting": {"max_iter": 100, "max_depth": 3, "learning_rate": 0.05},
}


class Classifier(Protocol):
    def fit(self, X: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> Any: ...

    def predict_proba(self, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...


def model_parameters(kind: str, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The full parameter set of ``kind``: the defaults overridden by ``given`` (checked)."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model {kind!r}; available: {', '.join(MODEL_KINDS)}")
    allowed = _PARAMETERS[kind]
    params = dict(_DEFAULTS[kind])
    for name, value in (given or {}).items():
        if name not in allowed:
            raise ValueError(f"{kind} takes {sorted(allowed)}, not {name!r}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{name} is a number")
        params[name] = allowed[name](value)
    return params


def make_classifier(kind: str, params: Mapping[str, Any], seed: int) -> Classifier:
    full = model_parameters(kind, params)
    if kind == "logistic":
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        model: Classifier = make_pipeline(
            StandardScaler(), LogisticRegression(random_state=seed, **full)
        )
    elif kind == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        model = RandomForestClassifier(random_state=seed, n_jobs=1, **full)
    else:
        from sklearn.ensemble import HistGradientBoostingClassifier

        model = HistGradientBoostingClassifier(random_state=seed, **full)
    return model


def probability_up(model: Classifier, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """P(label up) for each row; a model trained on one class answers that class."""
    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    classes = list(getattr(model, "classes_", [0.0, 1.0]))
    if 1.0 not in classes:
        return np.zeros(X.shape[0])
    return np.asarray(proba[:, classes.index(1.0)])
