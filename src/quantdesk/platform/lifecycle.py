"""Feature lifespans: background work a feature runs while the app serves.

A feature declares one in ``api.FEATURES`` next to its routers (the demo ticker, the
official-calendar refresher, the providers' connection pools; the order matcher and the
stream relay will join them). ``create_app`` enters them in declaration order and leaves
them in reverse, so a feature can rely on the ones declared before it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from quantdesk.platform.context import AppContext

FeatureLifespan = Callable[[AppContext], AbstractAsyncContextManager[None]]


@asynccontextmanager
async def run_lifespans(
    ctx: AppContext, lifespans: Iterable[FeatureLifespan]
) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        for lifespan in lifespans:
            await stack.enter_async_context(lifespan(ctx))
        yield
