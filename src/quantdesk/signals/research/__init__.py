"""The pure core of signals: arrays in, arrays and dataclasses out.

Nothing here touches the web, a database or settings (the ``pure-signals-research`` import
contract), so training and backtests run the same in a request's worker thread, in a
process pool, on a Dask worker and in a notebook.  Modules:

* :mod:`.features`: features from bars and the indicators library, without look-ahead;
* :mod:`.labels`: forward returns and triple-barrier outcomes (and when each label ends);
* :mod:`.splits`: walk-forward and purged k-fold splits with purge and embargo (AFML ch. 7);
* :mod:`.estimators`: the scikit-learn models behind one small interface;
* :mod:`.training`: walk-forward training and its out-of-sample metrics;
* :mod:`.artifacts`: versioned model artifacts in skops' safe format;
* :mod:`.backtest`: replaying bars through the paper-trading matching engine;
* :mod:`.book`: one instrument's paper book (the engine, fills, charges);
* :mod:`.account`: paper trading's buying power, margin and expiry settlement, pure;
* :mod:`.tearsheet`: the backtest's picture as SVG.
"""
