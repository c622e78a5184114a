"""Once the app has started, the start-up heap is frozen out of the collector's full passes
and those passes are made rarer (``QUANTDESK_GC_FREEZE``, on by default, and
``QUANTDESK_GC_FULL_EVERY``; the tests' settings leave the collector alone)."""

from __future__ import annotations

import gc
from pathlib import Path

from quantdesk.app import create_app
from tests.conftest import base_settings


async def test_the_start_up_heap_is_frozen_once_started(tmp_path: Path) -> None:
    settings = base_settings(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "var")
    assert not settings.gc_freeze  # the tests' apps leave the collector alone
    app = create_app(settings.model_copy(update={"gc_freeze": True, "gc_full_every": 37}))
    threshold = gc.get_threshold()
    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        async with app.router.lifespan_context(app):
            # Every object alive once started is now frozen; the young generations'
            # thresholds are Python's, the oldest's is the setting.
            assert gc.get_freeze_count() > 10_000
            assert gc.get_threshold() == (*threshold[:2], 37)
    finally:
        gc.unfreeze()  # this test process builds many more apps
        gc.set_threshold(*threshold)
