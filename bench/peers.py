"""Adapters that drive structgen and its peers (xgrammar, llguidance, outlines-core) through
one interface, all built from the same Vocabulary bytes, so that every engine sees the same
tokenizer. Peers are a benchmark-only dependency (``pip install -e .[bench]``)."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

import structgen
from structgen import Vocabulary


class Engine:
    name = "?"

    def compile_regex(self, pattern: str) -> Any: ...

    def compile_grammar(self, text: str, syntax: str) -> Any:
        """``syntax``: "lark" or "gbnf"; raises NotImplementedError if the engine has none."""
        raise NotImplementedError(f"{self.name} does not take {syntax} grammars")
    def matcher(self, compiled: Any) -> Any: ...
    def fill_mask(self, matcher: Any) -> None: ...
    def accept(self, matcher: Any, token_id: int) -> bool: ...


WARM_UP_SCHEMA = {
    "type": "object",
    "properties": {"s": {"type": "string", "format": "date-time"}, "n": {"type": "number", "minimum": 0}, "i": {"type": "integer"},
                   "b": {"type": "boolean"}, "a": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}}},
}


class StructgenEngine(Engine):
    name = "structgen"

    def __init__(self, vocab: Vocabulary, encode: Callable[[str], list[int]]) -> None:
        self.vocab = vocab
        structgen.warm_up()
        _ = vocab.trie
        self.bitmask = structgen.allocate_token_bitmask(1, vocab.logits_width)
        # a served engine compiles many schemas in one process: fill the process-wide caches
        # (shared sub-automata such as "any number") before measuring
        structgen.compile_json_schema(WARM_UP_SCHEMA, vocab)

    def compile_regex(self, pattern):
        return structgen.compile_regex(pattern, self.vocab)

    def compile_grammar(self, text, syntax):
        if syntax == "gbnf":
            return structgen.compile_gbnf(text, self.vocab)
        return structgen.compile_grammar(text, self.vocab)

    def compile_json(self, schema: str):
        return structgen.compile_json_schema(schema, self.vocab, timeout_s=10)

    def matcher(self, compiled):
        return compiled.matcher()

    def fill_mask(self, matcher):
        matcher.fill_bitmask(self.bitmask, 0)

    def accept(self, matcher, token_id):
        return matcher.accept_token(token_id)


class XGrammarEngine(Engine):
    name = "xgrammar"

    def __init__(self, vocab: Vocabulary, encode) -> None:
        import xgrammar as xgr

        self.xgr = xgr
        encoded = [b"" if vocab.special[i] else vocab.token_bytes[i] for i in range(vocab.n_tokens)]
        info = xgr.TokenizerInfo(
            encoded, xgr.VocabType.RAW, vocab_size=vocab.logits_width, stop_token_ids=list(vocab.eos_token_ids)
        )
        self.compiler = xgr.GrammarCompiler(info, max_threads=1, cache_enabled=False)
        self.bitmask = xgr.allocate_token_bitmask(1, vocab.logits_width)

    def compile_regex(self, pattern):
        return self.compiler.compile_regex(pattern)

    def compile_grammar(self, text, syntax):
        if syntax != "gbnf":
            return super().compile_grammar(text, syntax)
        return self.compiler.compile_grammar(text)

    def compile_json(self, schema: str):
        return self.compiler.compile_json_schema(schema, any_whitespace=True, strict_mode=False)

    def matcher(self, compiled):
        return self.xgr.GrammarMatcher(compiled)

    def fill_mask(self, matcher):
        matcher.fill_next_token_bitmask(self.bitmask, 0)

    def accept(self, matcher, token_id):
        return matcher.accept_token(token_id)


class LLGuidanceEngine(Engine):
    name = "llguidance"

    def __init__(self, vocab: Vocabulary, encode) -> None:
        import llguidance
        import llguidance.torch as lltorch

        class _Wrapped:
            def __init__(self):
                self.eos_token_id = vocab.eos_token_ids[0]
                self.bos_token_id = None
                # llguidance marks special tokens with a leading 0xFF byte
                self.tokens = [b"\xff" + vocab.token_bytes[i] if vocab.special[i] else vocab.token_bytes[i] for i in range(vocab.n_tokens)]
                self.special_token_ids = [int(i) for i in np.flatnonzero(vocab.special)]

            def __call__(self, text):
                return encode(text.decode("utf-8", errors="replace") if isinstance(text, bytes) else text)

        self.ll = llguidance
        self.lltorch = lltorch
        self.tokenizer = llguidance.LLTokenizer(
            llguidance.TokenizerWrapper(_Wrapped()), n_vocab=vocab.logits_width, eos_token=list(vocab.eos_token_ids)
        )
        self.bitmask = lltorch.allocate_token_bitmask(1, vocab.logits_width)

    def compile_regex(self, pattern):
        return self._checked(self.ll.LLMatcher.grammar_from_regex(pattern))

    def compile_grammar(self, text, syntax):
        if syntax != "lark":
            return super().compile_grammar(text, syntax)
        return self._checked(self.ll.LLMatcher.grammar_from_lark(text))

    def compile_json(self, schema: str):
        return self._checked(self.ll.LLMatcher.grammar_from_json_schema(schema, defaults={"whitespace_flexible": True}))

    def _checked(self, grammar):
        matcher = self.ll.LLMatcher(self.tokenizer, grammar)  # llguidance compiles lazily, on creation
        if matcher.is_error():
            raise ValueError(matcher.get_error())
        return grammar

    def matcher(self, compiled):
        return self.ll.LLMatcher(self.tokenizer, compiled)

    def fill_mask(self, matcher):
        self.lltorch.fill_next_token_bitmask(matcher, self.bitmask, 0)

    def accept(self, matcher, token_id):
        return matcher.consume_token(token_id)


class OutlinesCoreEngine(Engine):
    name = "outlines-core"

    def __init__(self, vocab: Vocabulary, encode) -> None:
        import outlines_core as oc

        self.oc = oc
        table: dict[bytes, list[int]] = {}
        eos = vocab.eos_token_ids[0]
        for i in vocab.maskable_ids.tolist():
            if i != eos:
                table.setdefault(vocab.token_bytes[i], []).append(i)
        self.vocabulary = oc.Vocabulary(eos, table)
        self.eos = eos
        self.words = (vocab.logits_width + 31) // 32
        self.bitmask = torch.zeros(self.words, dtype=torch.int32)

    def compile_regex(self, pattern):
        return self.oc.Index(pattern, self.vocabulary)

    def compile_json(self, schema: str):
        from outlines_core.json_schema import build_regex_from_schema

        return self.oc.Index(build_regex_from_schema(schema), self.vocabulary)

    def matcher(self, compiled):
        return self.oc.Guide(compiled)

    def fill_mask(self, matcher):
        matcher.write_mask_into(self.bitmask.data_ptr(), self.bitmask.numel(), self.bitmask.element_size())

    def accept(self, matcher, token_id):
        if token_id == self.eos:
            return matcher.is_finished() or matcher.accepts_tokens([token_id])
        if not matcher.accepts_tokens([token_id]):
            return False
        matcher.advance(token_id)
        return True


ENGINES = [StructgenEngine, XGrammarEngine, LLGuidanceEngine, OutlinesCoreEngine]


def make_engines(vocab: Vocabulary, encode, names: list[str] | None = None) -> list[Engine]:
    out = []
    for cls in ENGINES:
        if names and cls.name not in names:
            continue
        try:
            out.append(cls(vocab, encode))
        except ImportError as exc:
            print(f"# {cls.name} not installed ({exc}); skipped")
    return out
