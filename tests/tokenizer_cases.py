"""The real tokenizers structgen is tested and benchmarked against: each as a Vocabulary
plus the tokenizer's own encoder. Shared by tests/ and bench/."""

from __future__ import annotations

import functools
import glob
import os
from dataclasses import dataclass
from typing import Callable

from structgen import Vocabulary

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.environ.get("STRUCTGEN_SHARED_DATA", os.path.join(os.path.dirname(REPO), "shared", "data"))
VOCAB_DIR = os.path.join(SHARED_DATA, "vocab")

MULTILINGUAL = [
    "Hello, world!",
    "Grüße aus Köln – naïve café, déjà vu",
    "Привет, как дела? Съешь же ещё этих мягких французских булок",
    "日本語のテキストと漢字、カタカナ。",
    "中文测试：你好，世界！",
    "한국어 문장입니다.",
    "العربية: مرحبا بالعالم",
    "हिन्दी में एक वाक्य",
    "Ελληνικά: Γειά σου Κόσμε",
    "emoji 🦙🚀👩‍👩‍👧‍👦 and flags 🇫🇷🇯🇵",
    "tabs\tand\nnewlines\r\n  and   spaces   ",
    '{"key": [1, 2.5e-3, null, true], "ü": "\\u00fc"}',
    "math: ∀x∈ℝ, x² ≥ 0; ∑ᵢ aᵢ ≠ ∞",
    "combining: e\u0301 a\u0308 n\u0303, zero-width: a\u200bb",
    "ℌ𝔢𝔩𝔩𝔬 𝕎𝕠𝕣𝕝𝕕 — old italic 𐌀𐌁𐌂",
]


class MissingTestData(RuntimeError):
    """A tokenizer file this machine does not have."""


@dataclass
class TokenizerCase:
    """A tokenizer under test: its Vocabulary and its own encoder (text → ids)."""

    name: str
    vocab: Vocabulary
    encode: Callable[[str], list[int]]
    space_prefix: bool  # SentencePiece adds one leading space to the encoded text


def _require(path: str) -> str:
    if not os.path.exists(path):
        raise MissingTestData(f"missing test data: {path}")
    return path


@functools.lru_cache(maxsize=None)
def load_case(name: str) -> TokenizerCase:
    if name == "smollm2":
        from structgen.generation.decode import vocabulary_for
        from structgen.generation.models import load_default_model

        model, tok = load_default_model()
        return TokenizerCase(name, vocabulary_for(model, tok), lambda s: tok.encode(s, add_special_tokens=False), False)
    if name in ("mistral-v3", "tekken"):
        import mistral_common
        from mistral_common.tokens.tokenizers.mistral import MistralTokenizer

        data = os.path.join(os.path.dirname(mistral_common.__file__), "data")
        pattern = "*.model.v3" if name == "mistral-v3" else "tekken_240911.json"
        files = sorted(glob.glob(os.path.join(data, pattern)))
        if not files:
            raise MissingTestData(f"mistral-common has no {pattern}")
        inner = MistralTokenizer.from_file(files[0]).instruct_tokenizer.tokenizer
        return TokenizerCase(
            name,
            Vocabulary.from_tokenizer(inner),
            lambda s: inner.encode(s, bos=False, eos=False),
            name == "mistral-v3",
        )
    gguf_name = {"gpt2": "ggml-vocab-gpt-2.gguf", "phi3": "ggml-vocab-phi-3.gguf", "deepseek": "ggml-vocab-deepseek-llm.gguf"}[name]
    path = _require(os.path.join(VOCAB_DIR, gguf_name))
    vocab = Vocabulary.from_gguf(path)

    @functools.lru_cache(maxsize=1)
    def hf_tokenizer():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(VOCAB_DIR, gguf_file=gguf_name)

    return TokenizerCase(name, vocab, lambda s: hf_tokenizer().encode(s, add_special_tokens=False), name == "phi3")


ALL_TOKENIZERS = ["smollm2", "mistral-v3", "tekken", "gpt2", "phi3", "deepseek"]
