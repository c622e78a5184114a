"""Portfolio accounting, pure: transactions in, lots, holdings, realised gains and daily
value series out.  No web framework, database, settings or other feature is imported here
(the ``pure-portfolio-accounting`` import contract), so the numbers can be checked against
hand-worked cases and reference libraries, and used from a notebook."""
