#!/usr/bin/env bash
# Makes sure the servers the test suite starts (PostgreSQL, Redis), the browser it drives
# (chromium) — and, for `bench`, the
# wrk load generator — are installed. Installs missing Debian packages when running as
# root; otherwise fails with a message saying what to install. It never skips silently.
set -euo pipefail

need=()
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && ! command -v pg_ctl >/dev/null; then
  need+=(postgresql)
fi
command -v redis-server >/dev/null || need+=(redis-server)
# The browser test of /docs and /redoc drives Debian's chromium through Playwright (no
# browser download: `playwright install` fetches builds from outside the package registries).
[ -x /usr/bin/chromium ] || need+=(chromium)
# promtool tests the alerting rules (tests/deploy/test_prometheus.py); Debian ships it in
# its prometheus package.  hadolint, kubectl and the schema checkers of the deploy kit
# are Python dev dependencies (pyproject.toml), installed with the venv.
command -v promtool >/dev/null || need+=(prometheus)
if [ "${1:-}" = "bench" ]; then
  command -v wrk >/dev/null || need+=(wrk)
fi
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "error: missing ${need[*]}; install them (e.g. sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "installing ${need[*]} with apt-get ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's redis-server package starts a system service; the tests start their own.  So may
# its prometheus package, on a machine with systemd: the tests only use promtool.
