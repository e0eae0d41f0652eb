#!/usr/bin/env bash
# Set up, then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
venv="${VIRTUAL_ENV:-$PWD/.venv}"
exec "$venv"/bin/python -m pytest -q "$@"
