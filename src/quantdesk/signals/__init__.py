"""ML signals, walk-forward validation and backtests on the paper-trading engine (issue 18).

The pure parts (features, labels, splits, training, metrics, artifacts, the replay of bars
through :mod:`quantdesk.trading.engine`) are in :mod:`quantdesk.signals.research`; this
package adds the tables, the jobs that run them (in-process or on a Dask cluster) and the
HTTP API.  See ``docs/signals.md`` and ``docs/backtests.md``.
"""
