"""The day count every quantdesk year fraction uses: Actual/365 Fixed.

Equity and index options (NSE, OCC) are quoted on ACT/365 calendar time; QuantLib's
``Actual365Fixed`` is the reference the option tests compare against. One definition, so a
chain, a strategy and the demo market never disagree on what "a year" is.
"""

from __future__ import annotations

from typing import Final

DAYS_PER_YEAR: Final = 365.0
SECONDS_PER_YEAR: Final = DAYS_PER_YEAR * 86_400.0
