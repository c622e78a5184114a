"""Every table the application owns, imported in one place so ``Base.metadata`` is complete.

Alembic's env and the autogenerate check import this module; a feature package adds its
``models`` import here when it adds tables.
"""

from __future__ import annotations

from quantdesk.platform.db import Base

metadata = Base.metadata

__all__ = ["Base", "metadata"]
