#!/usr/bin/env bash
# The compose smoke test (README, "With Docker"): the whole farm from its images, proven end to end.
#   1. a Docker engine and a compose CLI: Debian's docker.io and docker-compose when missing (root);
#      the engine is started when it is not running, and stopped again at the end if this script started it;
#   2. the base images: pulled, or, where no registry answers, built as stand-ins by
#      ../shared/compose-standins/prepare.sh (STANDINS picks another script);
#   3. the CPU build of the pinned torch staged into wheels/, so that the llm image carries no CUDA;
#   4. `compose build` of every image, timed, and the image sizes;
#   5. pytest -m compose tests/compose: `up -d` under its own project name (COMPOSE_PROJECT_NAME, default
#      talkfarm-smoke) with the coordinator on 127.0.0.1:TALKFARM_HTTP_PORT (default: a free port), every
#      service healthy, /readyz, Flower from inside the network, a chat job from real speech, a speak job
#      and a lipsync job with their videos decoded, a worker killed mid-job coming back and the job
#      finishing; then `down -v`.
# Extra arguments go to pytest. Needs the virtualenv of scripts/run.sh or scripts/test.sh (created when missing).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
STANDINS="${STANDINS:-$ROOT/../shared/compose-standins/prepare.sh}"
WORK="${TMPDIR:-/tmp}/talkfarm-compose-smoke"
mkdir -p "$WORK"
cd "$ROOT"

poll() {  # seconds, what, command...: run the command until it succeeds or the seconds run out
  local deadline=$((SECONDS + $1)) what="$2"; shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then say "$what did not happen in time"; return 1; fi
    sleep 1
  done
}

ENGINE_PID=""
ensure_engine() {
  command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 || apt_packages docker.io
  docker info >/dev/null 2>&1 && return 0
  say "starting the Docker engine (log: $WORK/dockerd.log)"
  if [ "$(id -u)" -eq 0 ]; then dockerd >"$WORK/dockerd.log" 2>&1 & else sudo dockerd >"$WORK/dockerd.log" 2>&1 & fi
  ENGINE_PID=$!
  poll 60 "the Docker engine starting" docker info || { tail -20 "$WORK/dockerd.log"; exit 1; }
}

compose_cli() {
  if docker compose version >/dev/null 2>&1; then echo "docker compose"; return; fi
  command -v docker-compose >/dev/null 2>&1 || apt_packages docker-compose >&2
  echo "docker-compose"
}

base_images() {  # the images the Dockerfile and the compose file's default services start from
  sed -n 's/^ARG PYTHON_IMAGE=//p' Dockerfile
  # Services of a profile (monitoring: Prometheus, Grafana) are not part of the farm the test runs.
  $COMPOSE config | "$VENV/bin/python" -c 'import sys, yaml
services = yaml.safe_load(sys.stdin)["services"].values()
print("\n".join(sorted({s["image"] for s in services
                        if "image" in s and not s.get("profiles") and not s["image"].startswith("talkfarm/")})))'
}

ensure_base_images() {
  local missing=() image
  for image in $(base_images); do docker image inspect "$image" >/dev/null 2>&1 || missing+=("$image"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if timeout 60 docker pull -q "${missing[0]}" >/dev/null 2>&1; then
    for image in "${missing[@]:1}"; do docker pull -q "$image" >/dev/null; done
  else
    say "no registry answers for ${missing[0]}: building stand-ins with $STANDINS"
    [ -f "$STANDINS" ] || { say "$STANDINS is not there"; exit 1; }
    bash "$STANDINS"
  fi
  for image in "${missing[@]}"; do
    docker image inspect "$image" >/dev/null 2>&1 || { say "base image $image is still missing"; exit 1; }
  done
}

stage_torch_wheel() {
  local version
  version="$(sed -n 's/^torch==//p' constraints.txt)"
  compgen -G "wheels/torch-$version+cpu-cp311-*.whl" >/dev/null && return 0
  say "staging torch $version+cpu into wheels/ (pip's configured find-links or index)"
  "$VENV/bin/python" -m pip download -q --no-deps --only-binary=:all: --implementation cp --python-version 3.11 \
      --platform "manylinux_2_28_$(uname -m)" "torch==$version+cpu" -d wheels \
    || { say "no torch $version+cpu wheel: put it in wheels/ or set PIP_EXTRA_INDEX_URL to a CPU wheel index"; exit 1; }
}

cleanup() {  # on exit, and on INT or TERM (scripts/test.sh runs this under `timeout`)
  local status=$?
  trap - EXIT INT TERM
  say "tearing down $COMPOSE_PROJECT_NAME (down -v)"
  $COMPOSE down -v --remove-orphans >/dev/null 2>&1 || true
  if [ -n "$ENGINE_PID" ]; then say "stopping the Docker engine this script started"; as_root kill "$ENGINE_PID" || true; fi
  exit "$status"
}

apt_packages flite
[ -x "$VENV/bin/python" ] || python_env
ensure_engine
COMPOSE="$(compose_cli)"
export TALKFARM_COMPOSE="$COMPOSE"
export COMPOSE_PROJECT_NAME="${COMPOSE_PROJECT_NAME:-talkfarm-smoke}"
export TALKFARM_HTTP_BIND=127.0.0.1
export TALKFARM_HTTP_PORT="${TALKFARM_HTTP_PORT:-$("$VENV/bin/python" -c \
  'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
trap cleanup EXIT INT TERM
ensure_base_images
stage_torch_wheel

say "building the images ($COMPOSE build; log: $WORK/build.log)"
started=$SECONDS
$COMPOSE build >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log"; exit 1; }
say "images built in $((SECONDS - started)) s:"
docker image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' 'talkfarm/*' | sort | sed 's/^/  /'

say "running the farm: project $COMPOSE_PROJECT_NAME, coordinator on $TALKFARM_HTTP_BIND:$TALKFARM_HTTP_PORT"
"$VENV/bin/python" -m pytest -m compose tests/compose -s -ra -p no:cacheprovider "$@"
