"""Pure numerics: indicators, options, chain, futures, strategies. No I/O, no framework imports."""
