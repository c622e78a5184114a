"""Once the app has started, the start-up heap is frozen out of the collector's full passes
(``QUANTDESK_GC_FREEZE``, on by default; the tests' settings turn it off)."""

from __future__ import annotations

import gc
from pathlib import Path

from quantdesk.app import create_app
from tests.conftest import base_settings


async def test_the_start_up_heap_is_frozen_once_started(tmp_path: Path) -> None:
    settings = base_settings(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}", tmp_path / "var")
    assert not settings.gc_freeze  # the tests' apps leave the collector alone
    app = create_app(settings.model_copy(update={"gc_freeze": True}))
    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        async with app.router.lifespan_context(app):
            # Every object alive once started is now frozen.
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()  # this test process builds many more apps
