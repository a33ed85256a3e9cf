#!/usr/bin/env bash
# README command 1: set up (system packages, virtualenv, models), start RabbitMQ
# and Redis if needed, create the job store (and on the first run a local API key,
# kept in DATA_DIR/local-api-key), and run the whole farm in the foreground: the
# coordinator, the four stage workers and Flower. Ctrl-C stops it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
source "$ROOT/scripts/services.sh"

bootstrap
start_services
cd "$ROOT"
"$VENV/bin/talkfarm-admin" db upgrade
KEY_FILE="$("$VENV/bin/python" -c 'from contracts.settings import get_settings; print(get_settings().data_dir)')/local-api-key"
if [ ! -s "$KEY_FILE" ]; then
  say "creating a local API key (operator, vip tier): $KEY_FILE"
  "$VENV/bin/talkfarm-admin" keys create --name local --tier vip --operator --token-file "$KEY_FILE" >/dev/null
fi
exec "$VENV/bin/talkfarm-admin" farm --api-key-file "$KEY_FILE" "$@"
