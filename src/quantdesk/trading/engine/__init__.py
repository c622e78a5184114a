"""The pure core of paper trading: order types and their state machine, the matching engine
and its fill models, positions, fees and pre-trade checks.

Frozen dataclasses and Decimals in, events out; nothing here touches a database, the web or
settings (checked by the ``pure-trading-engine`` import contract), so the same engine fills
paper orders, backtests and the property tests alike.
"""
