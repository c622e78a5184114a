"""Paper trading: accounts, the cash ledger, orders, the matcher, fills, positions and P&L."""
