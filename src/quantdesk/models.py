"""Every table the application owns, imported in one place so ``Base.metadata`` is complete.

Alembic's env and the autogenerate check import this module; a feature package adds its
``models`` import here when it adds tables.
"""

from __future__ import annotations

from quantdesk.marketdata import models as marketdata_models  # noqa: F401
from quantdesk.marketdata.providers.kite import models as kite_models  # noqa: F401
from quantdesk.ops import models as ops_models  # noqa: F401
from quantdesk.platform import models as platform_models  # noqa: F401
from quantdesk.platform.db import Base
from quantdesk.portfolios import models as portfolios_models  # noqa: F401
from quantdesk.security import models as security_models  # noqa: F401
from quantdesk.signals import models as signals_models  # noqa: F401
from quantdesk.strategies import models as strategies_models  # noqa: F401
from quantdesk.trading import models as trading_models  # noqa: F401
from quantdesk.users import models as users_models  # noqa: F401

metadata = Base.metadata

__all__ = ["Base", "metadata"]
