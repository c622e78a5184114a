"""The web dashboard: server-rendered page shells, one ES module per page, served offline.

Every page is an HTML shell with no data in it (``templates/``); its module
(``static/js/pages/<page>.js``) signs in with the cookie session, reads and writes through
the same public API a program uses (``static/js/api.js``) and follows the live stream
(``static/js/stream.js``).  No script is inline, so the pages run under a strict
Content-Security-Policy (``DASHBOARD_CSP``); the charting library, TradingView's
lightweight-charts, comes from the npm registry at install time (``package-lock.json``)
and is served from ``static/vendor/``.
"""
