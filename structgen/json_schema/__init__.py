"""JSON Schema and Python types → the grammar IR (see :mod:`.compiler` for the semantics)."""

from .compiler import CompiledSchema, JsonSchemaOptions, schema_to_grammar

__all__ = ["CompiledSchema", "JsonSchemaOptions", "schema_to_grammar"]
