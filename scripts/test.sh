#!/usr/bin/env bash
# README command 2 (and what CI runs): set up, start the services the tests need,
# run the linters and the whole test suite (unit, integration, end-to-end); then, on a full run, the
# compose smoke test (scripts/compose-smoke.sh) when its time fits in what is left of the budget
# (TALKFARM_TEST_BUDGET_MINUTES, default 45; TALKFARM_COMPOSE_SMOKE=auto|always|never, default auto).
# Extra arguments go to pytest, e.g. scripts/test.sh -m unit (and skip the compose smoke test).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
source "$ROOT/scripts/services.sh"

bootstrap
# chromium: the browser tests/e2e/test_web_page.py drives through Playwright (no browser download).
apt_packages postgresql docker-compose prometheus chromium
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

# The compose smoke test: minutes it needs with the images cached (a warm build) and from nothing.
COMPOSE_WARM_MINUTES=12
COMPOSE_COLD_MINUTES=30
compose_smoke() {
  local mode="${TALKFARM_COMPOSE_SMOKE:-auto}" budget="${TALKFARM_TEST_BUDGET_MINUTES:-45}" need=$COMPOSE_COLD_MINUTES
  local left=$(( budget * 60 - SECONDS ))
  [ "$mode" = never ] && { say "compose smoke test not run (TALKFARM_COMPOSE_SMOKE=never)"; return 0; }
  if docker image ls -q talkfarm/worker-llm 2>/dev/null | grep -q .; then need=$COMPOSE_WARM_MINUTES; fi
  if [ "$mode" = auto ] && [ "$left" -lt $(( need * 60 )) ]; then
    say "compose smoke test not run: $(( left / 60 )) of $budget minutes left, it needs about $need" \
        "(run scripts/compose-smoke.sh)"
    return 0
  fi
  say "compose smoke test ($(( left / 60 )) minutes left of $budget)"
  timeout "$(( left > 60 ? left : 60 ))" bash "$ROOT/scripts/compose-smoke.sh"
}
if [ "$#" -eq 0 ]; then compose_smoke || status=1; fi
exit "$status"
