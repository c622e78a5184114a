"""Risk measures, VaR/CVaR and option-book scenarios (pure: arrays in, arrays out).

``from quantdesk.analytics import risk`` then ``risk.sharpe(r)``, ``risk.historical_var(r)``,
``risk.scenario_grid(book)``; see ``docs/risk.md`` for definitions and conventions.
"""

from quantdesk.analytics.risk.book import (
    BookLeg,
    MonteCarloBookVaR,
    OptionBook,
    ScenarioGrid,
    book_monte_carlo_var,
    scenario_grid,
)
from quantdesk.analytics.risk.measures import (
    beta,
    calmar,
    correlation,
    downside_deviation,
    drawdown_duration,
    max_drawdown,
    rolling,
    sharpe,
    sortino,
    volatility,
)
from quantdesk.analytics.risk.var import (
    ComponentVaR,
    MonteCarloVaR,
    component_var,
    cornish_fisher_var,
    historical_cvar,
    historical_var,
    monte_carlo_var,
    parametric_cvar,
    parametric_var,
)

__all__ = [
    "BookLeg",
    "ComponentVaR",
    "MonteCarloBookVaR",
    "MonteCarloVaR",
    "OptionBook",
    "ScenarioGrid",
    "beta",
    "book_monte_carlo_var",
    "calmar",
    "component_var",
    "cornish_fisher_var",
    "correlation",
    "downside_deviation",
    "drawdown_duration",
    "historical_cvar",
    "historical_var",
    "max_drawdown",
    "monte_carlo_var",
    "parametric_cvar",
    "parametric_var",
    "rolling",
    "scenario_grid",
    "sharpe",
    "sortino",
    "volatility",
]
