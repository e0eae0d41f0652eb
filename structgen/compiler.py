"""From a grammar (Lark, GBNF, or the IR itself) to a constraint over a vocabulary.

A grammar whose language is regular (no ignored terminals, a start rule that does not
recurse) becomes a :class:`RegularConstraint`: one byte DFA, no parser at run time. Any
other grammar becomes a :class:`GrammarConstraint`.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import os
import sys
import time
from collections.abc import Callable
from functools import lru_cache

import numpy as np

from .automata.byte_dfa import DEFAULT_MAX_STATES, DEFAULT_TIMEOUT_S, ByteDFA
from .automata.lexer import build_lexer
from .automata.token_slices import chain_slice, closed_slice
from .constraints.base import Constraint
from .constraints.grammar import GrammarConstraint
from .constraints.regular import EAGER_MASK_STATES, RegularConstraint
from .errors import CompileBudgetError, GrammarError, RegexError
from .grammar.gbnf import parse_gbnf
from .automata.expr_nfa import expr_to_nfa
from .grammar.ir import Grammar, Repeat, lower, regular_expr, rule_graph
from .grammar.lark_frontend import lark_to_ir
from .json_schema.compiler import ONE_DFA_STATES
from .tokenizers.vocabulary import Vocabulary

# The one-DFA attempt gives up before determinising an NFA this many times larger than its
# DFA budget: over 436 JSONSchemaBench schemas, the largest NFA whose DFA fitted had 2.3 times
# as many states, and building and determinising the NFAs of the schemas that did not fit took
# a quarter of all compile time.
ONE_DFA_NFA_RATIO = 2.4


# Lowering and shape numbering recurse once per level of nesting, a few frames each: an
# object with a few hundred optional properties in the schema's order nests that deep.
COMPILE_RECURSION_LIMIT = 20_000


def compiling(compile_fn):
    """Runs ``compile_fn`` with Python's cyclic garbage collector paused and the recursion
    limit at least ``COMPILE_RECURSION_LIMIT`` (both as they were, after). A compile allocates
    hundreds of thousands of small objects (IR nodes, NFA moves) and frees them by reference
    counting; the collections they would trigger took about a tenth of a typical JSON Schema
    compile."""

    @functools.wraps(compile_fn)
    def wrapper(*args, **kwargs):
        limit = sys.getrecursionlimit()
        if not gc.isenabled() and limit >= COMPILE_RECURSION_LIMIT:  # (a nested call)
            return compile_fn(*args, **kwargs)
        collecting = gc.isenabled()
        gc.disable()
        sys.setrecursionlimit(max(limit, COMPILE_RECURSION_LIMIT))
        try:
            return compile_fn(*args, **kwargs)
        finally:
            sys.setrecursionlimit(limit)
            if collecting:
                gc.enable()

    return wrapper


@compiling
def compile_ir(
    grammar: Grammar,
    vocab: Vocabulary,
    *,
    parser=None,
    max_states: int = DEFAULT_MAX_STATES,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    eager_masks: int = EAGER_MASK_STATES,
    share_masks: bool = True,
    merge_views: bool = True,
    max_nfa_states: int | None = None,
    string_body: np.ndarray | None = None,
    lalr: bool = True,
    prebuild: bool = True,
) -> Constraint:
    """Compiles the grammar IR for ``vocab``; ``parser`` is lark's parser for parse trees.
    ``share_masks`` / ``merge_views``: whether states that behave alike share masks (regular
    result) or are merged per set of allowed terminals (context-free result; see
    :class:`structgen.automata.lexer.LexerViews`).
    With ``eager_masks``, masks are computed now: of the first ``eager_masks`` states of a
    regular result, of the initial state of a context-free one (every request's first mask,
    the costliest: no lexeme is open). ``max_nfa_states`` bounds the NFA of a regular
    grammar (:class:`CompileBudgetError` beyond it), for attempts that have a fallback.
    ``string_body``: the transitions of a JSON string body, in whose shadow counted strings
    are walked (see :class:`structgen.automata.token_slices.StringShadow`). ``lalr``: whether
    a context-free result parses with LALR(1) tables where the grammar has them (see
    :mod:`structgen.automata.lr`), else with the Earley parser. ``prebuild``: whether a
    context-free result builds now what requests would build on first use (see
    :meth:`GrammarConstraint.prebuild`), within what is left of ``timeout_s``."""
    started = time.monotonic()
    graph = rule_graph(grammar)
    expr = regular_expr(grammar, graph)
    if expr is not None and parser is None:
        try:
            dfa = ByteDFA.from_nfa(expr_to_nfa(expr, max_states=max_nfa_states), what=grammar.source, max_states=max_states, timeout_s=timeout_s)
        except RegexError as exc:
            raise GrammarError(f"{grammar.source}: {exc}") from exc
        if dfa is None:
            raise GrammarError(f"{grammar.source}: the grammar's language is empty")
        constraint = RegularConstraint(dfa, vocab, description=f"grammar {grammar.source}", share_masks=share_masks, shadow=string_body)
        constraint.precompute_masks(eager_masks)
        return constraint
    bnf = lower(grammar, graph)
    remaining = max(0.1, timeout_s - (time.monotonic() - started))
    lexer = build_lexer(bnf.terminals, bnf.terminal_names, max_states=max_states, timeout_s=remaining)
    constraint = GrammarConstraint(
        bnf, lexer, vocab, description=f"grammar {grammar.source}", parser=parser, merge_views=merge_views, shadow=string_body,
        lalr=lalr,
    )
    if prebuild:
        constraint.prebuild(deadline=started + timeout_s)
    if eager_masks:
        constraint.mask_words(constraint.initial_state)
    return constraint


def compile_grammar(
    text: str, vocab: Vocabulary, *, start: str = "start", source: str = "<lark>", import_paths: list[str] | None = None, **budget
) -> Constraint:
    """Compiles a Lark grammar (see :mod:`structgen.grammar.lark_frontend` for the semantics)."""
    grammar, parser = lark_to_ir(text, source=source, start=start, import_paths=import_paths)
    return compile_ir(grammar, vocab, parser=parser, **budget)


def compile_gbnf(text: str, vocab: Vocabulary, *, source: str = "<gbnf>", **budget) -> Constraint:
    """Compiles a GBNF grammar (llama.cpp's format; start rule ``root``)."""
    return compile_ir(parse_gbnf(text, source), vocab, **budget)


def compile_grammar_file(path: str, vocab: Vocabulary, *, start: str = "start", **budget) -> Constraint:
    """Compiles a grammar file: ``.gbnf`` as GBNF, anything else as Lark (``%import`` of
    sibling files works)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if os.path.splitext(path)[1].lower() == ".gbnf":
        return compile_gbnf(text, vocab, source=path, **budget)
    return compile_grammar(text, vocab, start=start, source=path, **budget)


@compiling
def compile_json_grammar(build: Callable[[bool, bool], Grammar], vocab: Vocabulary, **budget) -> Constraint:
    """Compiles a grammar made of JSON Schemas (``build(split, any_rule)`` makes it): one DFA
    when it stays under ``ONE_DFA_STATES`` states (and its NFA under ``ONE_DFA_NFA_RATIO``
    times as many); otherwise rebuilt for the grammar engine
    with ``split`` (one grammar rule per object and array) and ``any_rule`` (free-form values
    as one recursive rule, to any depth, instead of ``any_depth`` unrolled levels, each a copy
    of every key and value lexeme). ``build(False, False)`` may raise
    :class:`CompileBudgetError` as soon as one DFA would not do (or not be exact: free-form
    values nesting a bounded depth). The attempts share one time budget."""
    budget.setdefault("eager_masks", 4)  # the rest on first use (a few are met per schema)
    budget.setdefault("share_masks", False)  # schema DFAs: many distinct states, few counters
    budget.setdefault("merge_views", False)  # many sets of allowed terminals, each met a few times
    budget.setdefault("lalr", False)  # (tables for hundreds of rules cost more than a request's Earley steps)
    budget.setdefault("prebuild", False)  # (the string body's slices are built above; keys loop on few bytes)
    body = _string_body_table()
    budget.setdefault("string_body", body)  # counted strings are walked in its shadow
    started = time.monotonic()
    n_words = (vocab.logits_width + 31) // 32
    for lexer in (False, True):  # as one DFA's string bodies see it, and as a lexer's do
        closed_slice(vocab.trie, body, 0, n_words, eager=True, lexer=lexer)
    # its plain characters alone: where names and keys run on, and counted strings' chains
    chain_slice(vocab.trie, body[0] == 0, n_words, eager=True)
    timeout_s = budget.pop("timeout_s", DEFAULT_TIMEOUT_S)
    try:
        states = min(budget.get("max_states", DEFAULT_MAX_STATES), ONE_DFA_STATES)
        one_dfa = {**budget, "max_states": states, "max_nfa_states": int(states * ONE_DFA_NFA_RATIO)}
        return compile_ir(build(False, False), vocab, timeout_s=timeout_s, **one_dfa)
    except CompileBudgetError:
        pass
    remaining = max(0.1, timeout_s - (time.monotonic() - started))
    return compile_ir(build(True, True), vocab, timeout_s=remaining, **budget)


@lru_cache(maxsize=1)
def _string_body_table() -> np.ndarray:
    """The transitions of a JSON string body (state 0 loops): its token slices (the tokens
    made of plain string characters, met in every schema) are built at compile time, not on
    a request's mask."""
    from .json_schema.strings import any_char

    return ByteDFA.from_nfa(expr_to_nfa(Repeat(any_char()))).transitions


@compiling
def compile_json_schema(
    schema,
    vocab: Vocabulary,
    *,
    whitespace: str = "flexible",
    indent: int = 2,
    strict: bool = False,
    lenient: bool = False,
    any_depth: int = 2,
    property_order: str = "any",
    **budget,
) -> Constraint:
    """Compiles a JSON Schema (dict, bool or JSON text; or a pydantic model, dataclass,
    TypedDict... — see :func:`structgen.json_schema.python_types.to_json_schema`) for ``vocab``.

    ``whitespace``: ``"flexible"`` (default: an optional space after ``{ [ , :`` and before
    ``} ]``), ``"compact"`` or ``"pretty"`` (``indent``
    spaces per level); ``strict``: no properties beyond the declared ones; ``lenient``: keywords
    that cannot be enforced are over-approximated instead of raising
    :class:`UnsupportedSchemaError` (listed in ``constraint.unenforced``; check the output with
    :func:`structgen.validate_json`). ``property_order``: ``"any"`` (default: objects with at
    most 8 declared properties take them in any order, within a per-schema budget; bigger
    ones in the schema's order) or ``"schema"`` (always the schema's order). The constraint
    carries ``.schema`` (the JSON Schema)."""
    from .json_schema import JsonSchemaOptions, schema_to_grammar
    from .json_schema.document import SchemaDocument
    from .json_schema.python_types import to_json_schema

    schema = to_json_schema(schema)
    options = JsonSchemaOptions(
        whitespace=whitespace, indent=indent, strict=strict, lenient=lenient, any_depth=any_depth, property_order=property_order
    )
    compiled: list = []
    document = SchemaDocument(schema)  # (indexed once for both builds)

    def build(split: bool, any_rule: bool) -> Grammar:
        # (the attempt at one DFA stops at the first free-form value: the grammar engine takes
        # them to any depth)
        one_dfa = not split and not any_rule
        options_now = dataclasses.replace(options, split=split, any_rule=any_rule, one_dfa=one_dfa)
        compiled[:] = [schema_to_grammar(schema, options_now, document)]
        return compiled[0].grammar

    constraint = compile_json_grammar(build, vocab, **budget)
    constraint.description = "json schema"
    constraint.schema = schema
    constraint.unenforced = compiled[0].unenforced
    return constraint
