"""Pre-trade refusals as problems: each check's failure keeps its own stable ``type``.

The pure checks (``engine.checks``) return a ``CheckFailure``; ``order_rejected`` turns it
into a 422 problem whose ``type`` ends in the failure's slug (``.../price-off-tick``), so a
client can branch on the type rather than parse the detail.
"""

from __future__ import annotations

import functools
from typing import Any

from quantdesk.platform.exceptions import InvalidInput
from quantdesk.trading.engine.checks import CheckFailure


class OrderRejected(InvalidInput):
    """An order (or a change to one) that a pre-trade check refused; nothing was written."""


@functools.cache
def _error_class(slug: str, title: str) -> type[OrderRejected]:
    name = "".join(part.title() for part in slug.split("-"))
    return type(name, (OrderRejected,), {"type_slug": slug, "title": title})


def order_rejected(failure: CheckFailure, **extra: Any) -> OrderRejected:
    return _error_class(failure.type, failure.title)(failure.detail, **extra)
