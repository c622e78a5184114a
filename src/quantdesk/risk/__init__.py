"""Risk and optimisation over the HTTP API: the face of ``analytics.risk``/``optimize`` over
posted returns and weights, stored bars and paper trading accounts."""
