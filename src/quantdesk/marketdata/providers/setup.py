"""Building the market-data providers a deployment has configured.

The demo provider is always there; Finnhub, Alpha Vantage and Polygon are enabled by their
API keys (``QUANTDESK_<NAME>_API_KEY``), with base URLs overridable for proxies and tests.
Kite Connect too (``QUANTDESK_KITE_API_KEY``); its daily access token is read from the
database (``quantdesk kite login``), see ``providers/kite/``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from quantdesk.marketdata.providers.alphavantage import AlphaVantageProvider
from quantdesk.marketdata.providers.base import Provider, ProviderRegistry
from quantdesk.marketdata.providers.demo.lifespan import DEMO_TICKER
from quantdesk.marketdata.providers.demo.provider import DemoProvider, LiveBook
from quantdesk.marketdata.providers.finnhub import FinnhubProvider
from quantdesk.marketdata.providers.http_client import OutcomeHook
from quantdesk.marketdata.providers.kite.provider import KiteProvider
from quantdesk.marketdata.providers.polygon import PolygonProvider
from quantdesk.platform.context import AppContext
from quantdesk.platform.exceptions import InvalidInput
from quantdesk.settings import Settings

HTTP_PROVIDERS: dict[str, Callable[..., Provider]] = {
    "finnhub": FinnhubProvider,
    "alphavantage": AlphaVantageProvider,
    "polygon": PolygonProvider,
}
PROVIDER_NAMES = ("demo", *HTTP_PROVIDERS, "kite")


def _api_key(settings: Settings, name: str) -> str | None:
    secret = getattr(settings, f"{name}_api_key")
    return secret.get_secret_value() if secret is not None else None


def build_provider(
    settings: Settings,
    name: str,
    live: LiveBook | None = None,
    on_outcome: OutcomeHook | None = None,
) -> Provider:
    """One provider by name; a keyless HTTP provider is a clear 422, not a late 401."""
    if name == "demo":
        return DemoProvider(seed=settings.demo_seed, live=live)
    if name == "kite":
        return KiteProvider.from_settings(settings, on_outcome=on_outcome)
    if name not in HTTP_PROVIDERS:
        known = ", ".join(PROVIDER_NAMES)
        raise InvalidInput(f"unknown provider {name!r}; known: {known}", provider=name)
    api_key = _api_key(settings, name)
    if not api_key:
        raise InvalidInput(f"provider {name} needs QUANTDESK_{name.upper()}_API_KEY", provider=name)
    base_url = getattr(settings, f"{name}_base_url")
    return HTTP_PROVIDERS[name](api_key, base_url=base_url, on_outcome=on_outcome)


def build_registry(
    settings: Settings, live: LiveBook | None = None, on_outcome: OutcomeHook | None = None
) -> ProviderRegistry:
    """The demo provider plus every HTTP provider that has an API key."""
    registry = ProviderRegistry([build_provider(settings, "demo", live)])
    for name in HTTP_PROVIDERS:
        if _api_key(settings, name):
            registry.add(build_provider(settings, name, on_outcome=on_outcome))
    if _api_key(settings, "kite"):
        registry.add(build_provider(settings, "kite", on_outcome=on_outcome))
    return registry


PROVIDERS_EXTENSION = "providers"


def providers_of(ctx: AppContext) -> ProviderRegistry:
    """The app's provider registry, built on first use (the demo market is not free to
    build) and closed by the app at shutdown."""
    registry = ctx.extensions.get(PROVIDERS_EXTENSION)
    if registry is None:
        ticker = ctx.extensions.get(DEMO_TICKER)
        counter = ctx.metrics.upstream_requests

        def count(provider: str, outcome: str) -> None:
            counter.labels(provider=provider, outcome=outcome).inc()

        registry = build_registry(ctx.settings, getattr(ticker, "book", None), count)
        ctx.extensions[PROVIDERS_EXTENSION] = registry
    assert isinstance(registry, ProviderRegistry)  # noqa: S101 - only this function sets it
    return registry


async def close_providers(ctx: AppContext) -> None:
    registry = ctx.extensions.pop(PROVIDERS_EXTENSION, None)
    if isinstance(registry, ProviderRegistry):
        await registry.aclose()


@asynccontextmanager
async def providers_lifespan(ctx: AppContext) -> AsyncIterator[None]:
    """Close the providers' HTTP clients when the app stops (they open on first use)."""
    try:
        yield
    finally:
        await close_providers(ctx)
