#!/usr/bin/env bash
# Start RabbitMQ (with the management plugin), the Redis results instance and the
# Redis video-cache instance (LRU) when they are not already running.
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
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
      --dir /tmp --logfile "/tmp/talkfarm-redis-$port.log" "$@"
    for _ in $(seq 1 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
}

start_services() {
  start_rabbitmq
  start_redis 6379
  # Eviction is instance-wide, so the video cache gets an instance of its own.
  start_redis "$REDIS_CACHE_PORT" --maxmemory "$REDIS_CACHE_MAXMEMORY" --maxmemory-policy allkeys-lru
}
