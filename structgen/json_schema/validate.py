"""Checking a finished output against its schema with the ``jsonschema`` validator."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass
class Validation:
    valid: bool
    value: object = None
    errors: list[str] | None = None


def validate_json(text: str, schema) -> Validation:
    """Parses ``text`` and validates it against ``schema`` (any draft, formats checked)."""
    from jsonschema import FormatChecker
    from jsonschema.validators import validator_for

    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return Validation(False, None, [f"not JSON: {exc}"])
    cls = validator_for(schema) if isinstance(schema, dict) else validator_for({})
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '/'}: {e.message}" for e in cls(schema, format_checker=FormatChecker()).iter_errors(value)]
    return Validation(not errors, value, errors)
