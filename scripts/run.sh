#!/usr/bin/env bash
# README command 1: set up (system packages, virtualenv, models), start RabbitMQ
# and Redis if needed, create the job store, and run the whole farm in the
# foreground: the coordinator, the four stage workers and Flower. Ctrl-C stops it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
source "$ROOT/scripts/services.sh"

bootstrap
start_services
cd "$ROOT"
"$VENV/bin/talkfarm-admin" db upgrade
exec "$VENV/bin/talkfarm-admin" farm "$@"
