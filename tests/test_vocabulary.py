"""Vocabulary bytes on six real tokenizers: concatenating the bytes of the tokenizer's own
encoding must give back the text's UTF-8 bytes exactly (SentencePiece adds one leading space)."""

from __future__ import annotations

import os

import pytest

from conftest import ALL_TOKENIZERS, MULTILINGUAL, VOCAB_DIR, load_case

GGUF_TEST_VECTORS = {"gpt2": "ggml-vocab-gpt-2.gguf", "phi3": "ggml-vocab-phi-3.gguf", "deepseek": "ggml-vocab-deepseek-llm.gguf"}
EXPECTED_SIZES = {"smollm2": 49152, "mistral-v3": 32768, "tekken": 131072, "gpt2": 50257, "phi3": 32064, "deepseek": 102400}


def llama_cpp_vectors(gguf_name: str) -> list[tuple[str, list[int]]]:
    """llama.cpp's tokenizer test vectors: texts and the ids llama.cpp encodes them to."""
    base = os.path.join(VOCAB_DIR, gguf_name)
    with open(base + ".inp", encoding="utf-8") as f:
        texts = f.read().split("\n__ggml_vocab_test__\n")
    with open(base + ".out", encoding="utf-8") as f:
        ids = [[int(t) for t in line.split()] for line in f.read().split("\n")]
    if texts and texts[-1] == "":
        texts = texts[:-1]
    assert len(texts) <= len(ids)
    return list(zip(texts, ids))


def expected_bytes(case, text: str) -> bytes:
    return (b" " if case.space_prefix and text else b"") + text.encode("utf-8")


@pytest.mark.parametrize("name", ALL_TOKENIZERS)
def test_vocabulary_shape(name):
    case = load_case(name)
    vocab = case.vocab
    assert vocab.n_tokens == EXPECTED_SIZES[name]
    assert vocab.eos_token_ids and all(vocab.special[e] or vocab.token_bytes[e] for e in vocab.eos_token_ids)
    # every printable ASCII character is a token of its own (all bytes need not be: SmolLM2
    # lacks some control bytes)
    singles = {b for b in vocab.token_bytes if len(b) == 1}
    assert all(bytes([c]) in singles for c in range(0x20, 0x7F)), name


@pytest.mark.parametrize("name", ["gpt2", "phi3", "deepseek"])
def test_llama_cpp_vectors_round_trip(name):
    case = load_case(name)
    for text, ids in llama_cpp_vectors(GGUF_TEST_VECTORS[name]):
        got = case.vocab.decode_bytes(ids)
        want = expected_bytes(case, text)
        # llama.cpp's SentencePiece drops nothing but may omit the prefix space for an empty text
        assert got == want, (name, text, got, want)


@pytest.mark.parametrize("name", ALL_TOKENIZERS)
def test_multilingual_round_trip(name):
    case = load_case(name)
    texts = list(MULTILINGUAL)
    for gguf_name in GGUF_TEST_VECTORS.values():  # llama.cpp's test texts, through this tokenizer
        texts += [t for t, _ in llama_cpp_vectors(gguf_name) if t]
    texts = list(dict.fromkeys(texts))
    for text in texts:
        ids = case.encode(text)
        assert all(0 <= i < case.vocab.n_tokens for i in ids)
        assert case.vocab.decode_bytes(ids) == expected_bytes(case, text), (name, text)


def test_special_tokens_marked():
    smol = load_case("smollm2").vocab
    assert smol.special[0] and smol.special[1] and smol.special[2]  # <|endoftext|>, <|im_start|>, <|im_end|>
    assert not smol.special[smol.token_bytes.index(b"{")]
    tekken = load_case("tekken").vocab
    assert tekken.special[:1000].all() and not tekken.special[1000:].any()
    phi = load_case("phi3").vocab
    # control (<unk>, <s>, <|endoftext|>, <|end|>) and padding ([PAD32011]) ids are special;
    # this GGUF marks </s> as user-defined text
    assert phi.special[[0, 1, 32000, 32007, 32011]].all() and not phi.special[2]
    assert 32000 in phi.eos_token_ids
    assert phi.token_bytes[3] == b"\x00"  # <0x00> byte fallback
