"""structgen: constrained generation for LLMs, exact at the byte level and fast.

    vocab = structgen.Vocabulary.from_tokenizer(tokenizer)
    constraint = structgen.compile_regex(r"\\d{4}-\\d{2}-\\d{2}", vocab)
    matcher = constraint.matcher()
"""

from .automata.bitmask import allocate_token_bitmask, apply_token_bitmask_inplace, bitmask_width
from .automata.byte_dfa import ByteDFA
from .constraints.base import Constraint
from .compiler import compile_gbnf, compile_grammar, compile_grammar_file, compile_ir, compile_json_schema
from .constraints.grammar import GrammarConstraint
from .constraints.regular import RegularConstraint, compile_choices, compile_regex
from .errors import CompileBudgetError, GrammarError, RegexError, StructgenError, TokenizerError, UnsupportedSchemaError
from .json_schema.python_types import to_json_schema
from .json_schema.partial import parse_partial_json
from .json_schema.validate import validate_json
from .output_types import GBNF, JsonSchema, Lark, Regex
from .grammar.ir import Grammar
from .matching.matcher import Matcher
from .tokenizers.vocabulary import Vocabulary

__version__ = "0.1.0"

_LAZY = {
    "generate": ("structgen.generation.decode", "generate"),
    "Generator": ("structgen.generation.generator", "Generator"),
    "IncompleteOutputError": ("structgen.generation.generator", "IncompleteOutputError"),
    "GenerationResult": ("structgen.generation.result", "GenerationResult"),
    "AlignedSampler": ("structgen.generation.aligned", "AlignedSampler"),
    "beam_search": ("structgen.generation.beam", "beam_search"),
    "importance_resample": ("structgen.generation.importance", "importance_resample"),
    "weighted_estimate": ("structgen.generation.importance", "weighted_estimate"),
    "effective_sample_size": ("structgen.generation.importance", "effective_sample_size"),
    "load_default_model": ("structgen.generation.models", "load_default_model"),
    "load_model": ("structgen.generation.models", "load_model"),
    "ConstraintLogitsProcessor": ("structgen.generation.logits_processor", "ConstraintLogitsProcessor"),
    "vocabulary_for": ("structgen.generation.decode", "vocabulary_for"),
}


def __getattr__(name: str):
    # generation pulls in transformers; load it only when asked for
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'structgen' has no attribute {name!r}")


def warm_up(freeze_gc: bool = True) -> None:
    """Compiles the numba kernels (or loads them from the on-disk cache). With
    ``freeze_gc``, the objects alive then (imported modules: torch and transformers hold
    millions) are collected once and moved out of the garbage collector's generations
    (``gc.freeze``), so that a full collection during a request does not walk them: ~190 ms
    a pause in a process with torch and transformers loaded, measured on mask requests."""
    import gc

    from .automata.grammar_kernels import warm_up as _warm_grammar
    from .automata.kernels import warm_up as _warm
    from .automata.subset_kernel import warm_up as _warm_subsets
    from .automata.token_slices import warm_up as _warm_slices

    _warm()
    _warm_grammar()
    _warm_subsets()
    _warm_slices()
    _warm_validator()
    if freeze_gc and gc.get_freeze_count() == 0:
        import atexit

        gc.collect()
        gc.freeze()
        atexit.register(gc.unfreeze)  # (collectable again at exit, as extension modules expect)


def _warm_validator() -> None:
    """Imports ``jsonschema`` and makes one validator with a format checker: schema
    compiles check ``enum`` and ``const`` values with it, and the first import costs ~80 ms."""
    from jsonschema import FormatChecker
    from jsonschema.validators import validator_for

    validator_for({})({"enum": [1]}, format_checker=FormatChecker()).is_valid(1)


__all__ = [
    "GBNF",
    "Generator",
    "IncompleteOutputError",
    "JsonSchema",
    "Lark",
    "Regex",
    "parse_partial_json",
    "AlignedSampler",
    "beam_search",
    "effective_sample_size",
    "importance_resample",
    "weighted_estimate",
    "ByteDFA",
    "CompileBudgetError",
    "Constraint",
    "ConstraintLogitsProcessor",
    "GenerationResult",
    "Grammar",
    "GrammarConstraint",
    "GrammarError",
    "Matcher",
    "RegexError",
    "RegularConstraint",
    "StructgenError",
    "TokenizerError",
    "Vocabulary",
    "allocate_token_bitmask",
    "apply_token_bitmask_inplace",
    "bitmask_width",
    "compile_choices",
    "compile_gbnf",
    "compile_grammar",
    "compile_grammar_file",
    "compile_ir",
    "compile_json_schema",
    "to_json_schema",
    "validate_json",
    "UnsupportedSchemaError",
    "compile_regex",
    "generate",
    "load_default_model",
    "load_model",
    "vocabulary_for",
    "warm_up",
]
