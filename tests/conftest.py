"""Shared fixtures: the default model and the real tokenizers (see tokenizer_cases.py)."""

from __future__ import annotations

import pytest

from structgen import Vocabulary
from tokenizer_cases import ALL_TOKENIZERS, MULTILINGUAL, VOCAB_DIR, MissingTestData, TokenizerCase  # noqa: F401
from tokenizer_cases import load_case as _load_case


def load_case(name: str) -> TokenizerCase:
    try:
        return _load_case(name)
    except MissingTestData as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def smollm2():
    """(model, tokenizer) of the default model."""
    from structgen.generation.models import load_default_model

    return load_default_model()


@pytest.fixture(scope="session")
def smol_vocab() -> Vocabulary:
    return load_case("smollm2").vocab


@pytest.fixture(autouse=True)
def _slices_on_first_request(monkeypatch):
    """Token slices built the first time a byte set is asked for (not the second), so that
    the masks checked against references go through them."""
    from structgen.automata import token_slices

    monkeypatch.setattr(token_slices, "BUILD_ON_REQUEST", 1)
