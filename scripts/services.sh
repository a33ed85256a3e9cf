#!/usr/bin/env bash
# Start RabbitMQ (with the management plugin), the Redis results instance (with an
# append-only file: it holds the segment ledgers and the stop flags) and the Redis
# cache instance (LRU, nothing on disk) when they are not already running.
# Sourced by scripts/run.sh and scripts/test.sh.
set -euo pipefail

REDIS_CACHE_PORT="${TALKFARM_REDIS_CACHE_PORT:-6380}"
REDIS_CACHE_MAXMEMORY="${TALKFARM_REDIS_CACHE_MAXMEMORY:-512mb}"

start_rabbitmq() {
  if ! rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
    say "starting RabbitMQ"
    rabbitmq-server -detached >/dev/null 2>&1 || true
    for _ in $(seq 1 90); do rabbitmq-diagnostics -q ping >/dev/null 2>&1 && break; sleep 1; done
    rabbitmqctl await_startup >/dev/null
  fi
  if ! rabbitmq-plugins list -e -m 2>/dev/null | grep -qx rabbitmq_management; then
    say "enabling the RabbitMQ management plugin (Flower reads queue lengths from it)"
    rabbitmq-plugins enable rabbitmq_management >/dev/null
  fi
}

start_redis() {  # port, extra redis-server arguments...
  local port="$1"; shift
  if ! redis-cli -p "$port" ping >/dev/null 2>&1; then
    say "starting Redis on port $port $*"
    local dir="${TALKFARM_REDIS_DIR:-/var/tmp/talkfarm-redis}/$port"
    mkdir -p "$dir"
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
      --dir "$dir" --logfile "$dir/redis.log" "$@"
    for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
}

start_services() {
  start_rabbitmq
  start_redis 6379 --appendonly yes --appendfsync everysec
  # An instance that was already running keeps the ledgers on disk from now on too.
  if [ "$(redis-cli -p 6379 config get appendonly | tail -n1)" != "yes" ]; then
    say "turning on the append-only file of the results Redis (port 6379)"
    redis-cli -p 6379 config set appendonly yes >/dev/null
  fi
  # Eviction is instance-wide, so the video cache gets an instance of its own.
  start_redis "$REDIS_CACHE_PORT" --maxmemory "$REDIS_CACHE_MAXMEMORY" --maxmemory-policy allkeys-lru
}
