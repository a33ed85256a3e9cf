#!/usr/bin/env bash
# Regenerate constraints.txt, the pinned versions every image build installs (Dockerfile), from a
# virtualenv where the whole test suite passes (default .venv; TALKFARM_VENV picks another).
# torch is pinned without its local label (+cpu): the CPU images take the CPU wheel, the GPU
# override the CUDA build of the same release.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${TALKFARM_VENV:-$ROOT/.venv}"
{
  echo "# Pinned versions for the image builds (pip install -c constraints.txt), from a virtualenv"
  echo "# where the whole test suite passes. Regenerate with scripts/constraints.sh after an upgrade."
  "$VENV/bin/python" -m pip freeze --exclude-editable --all \
    | grep -v -E '^(talkfarm|pip|wheel)==' \
    | sed -E 's/^(torch==[^+]+)\+.*/\1/' \
    | LC_ALL=C sort -f
} > "$ROOT/constraints.txt"
echo "wrote $ROOT/constraints.txt ($(grep -c '==' "$ROOT/constraints.txt") pins)"
