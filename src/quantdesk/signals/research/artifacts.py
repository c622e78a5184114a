"""Trained models as bytes that are safe to load: skops' format, an allowlist, a digest.

A pickle runs whatever code its bytes name, so quantdesk never unpickles a model.  skops
(``skops.io``) stores an estimator as a zip of JSON schema and arrays and rebuilds only the
types it is told to trust; :func:`load_model` trusts scikit-learn's own types and the two
tree structures our models use, and refuses anything else.  The SHA-256 digest stored
beside the bytes is checked first, so a truncated or altered artifact is refused before
skops reads it.
"""

from __future__ import annotations

import hashlib

from quantdesk.signals.research.estimators import Classifier

FORMAT = "skops"
# Types outside skops' default trust that our estimators contain (tree nodes).
TRUSTED_TYPES = frozenset(
    {
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    }
)


class UnsafeArtifact(ValueError):
    """The artifact's bytes do not match their digest or name types we do not trust."""


def digest_of(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def dump_model(model: Classifier) -> tuple[bytes, str]:
    import skops.io as sio

    blob = sio.dumps(model)
    return blob, digest_of(blob)


def load_model(blob: bytes, digest: str) -> Classifier:
    import skops.io as sio

    if digest_of(blob) != digest:
        raise UnsafeArtifact("the model's bytes do not match their SHA-256 digest")
    try:
        untrusted = set(sio.get_untrusted_types(data=blob))
    except Exception as exc:  # not a skops archive at all
        raise UnsafeArtifact(f"not a skops model archive: {exc}") from None
    refused = sorted(untrusted - TRUSTED_TYPES)
    if refused:
        raise UnsafeArtifact(f"the model names types that are not trusted: {refused}")
    model: Classifier = sio.loads(blob, trusted=sorted(untrusted))
    return model
