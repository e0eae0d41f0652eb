#!/usr/bin/env bash
# The main job: set up, then one constrained generation with the default model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
venv="${VIRTUAL_ENV:-$PWD/.venv}"
exec "$venv"/bin/structgen generate \
  --regex '\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])' \
  --prompt "On what date did Apollo 11 land on the Moon? Answer with the date only." \
  --temperature 0 --json "$@"
