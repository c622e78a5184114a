"""Signals use cases: train, evaluate, backtest and serve (filled in below)."""
