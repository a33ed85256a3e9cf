#!/usr/bin/env bash
# README command 2 (and what CI runs): set up, start the services the tests need,
# run the linters and the whole test suite (unit, integration, end-to-end).
# Extra arguments go to pytest, e.g. scripts/test.sh -m unit
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
source "$ROOT/scripts/services.sh"

bootstrap
apt_packages postgresql docker-compose prometheus
start_services
if ! pg_isready -q -h 127.0.0.1 2>/dev/null; then
  say "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
fi

cd "$ROOT"
say "flake8, isort"
"$VENV/bin/python" -m flake8 contracts pipeline cache workers coordinator tests bench
"$VENV/bin/python" -m isort --check-only --quiet contracts pipeline cache workers coordinator tests bench
say "import layers (lint-imports, contracts in setup.cfg)"
"$VENV/bin/lint-imports"
say "mypy"
"$VENV/bin/python" -m mypy contracts pipeline cache workers coordinator bench
say "pytest"
status=0
"$VENV/bin/python" -m pytest -ra "$@" || status=$?
# pytest's 5 means no test was collected: that is a failure here, never a pass.
if [ "$status" -eq 5 ]; then say "pytest collected no tests"; fi
exit "$status"
