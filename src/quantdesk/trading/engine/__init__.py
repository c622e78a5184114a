"""The pure core of paper trading: order types and classes and their state machine, the
matching engine (book, groups, matching) and its fill models, contingent orders (bracket,
OCO, OTO), trailing stops, multi-leg orders, slicing above the freeze quantity, positions,
fees and pre-trade checks.

Frozen dataclasses and Decimals in, events out; nothing here touches a database, the web or
settings (checked by the ``pure-trading-engine`` import contract), so the same engine fills
paper orders, backtests and the property tests alike.
"""
