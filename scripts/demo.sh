#!/usr/bin/env bash
# The main job: set up, then one JSON-Schema-constrained generation with the default model.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh dev
venv="${VIRTUAL_ENV:-$PWD/.venv}"
exec "$venv"/bin/structgen generate \
  --schema '{"type": "object", "properties": {"name": {"type": "string", "maxLength": 40}, "year": {"type": "integer", "minimum": 1900, "maximum": 2100}, "crew": {"type": "array", "items": {"type": "string", "maxLength": 30}, "minItems": 1, "maxItems": 3}}, "required": ["name", "year", "crew"], "additionalProperties": false}' \
  --prompt "Describe the Apollo 11 mission as JSON with its name, launch year and crew." \
  --temperature 0 --max-new-tokens 96 --json "$@"
