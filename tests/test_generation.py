"""Generation with the real default model (SmolLM2-135M-Instruct): outputs checked with
Python's ``re``; our decode loop checked against transformers' own ``generate``."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest
import torch

import structgen
from structgen import ConstraintLogitsProcessor, compile_regex
from structgen.generation.decode import render_prompt, vocabulary_for

pytestmark = pytest.mark.model

DATE = r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"


def test_regex_generation_is_valid(smollm2):
    model, tok = smollm2
    result = structgen.generate("When did Apollo 11 land?", regex=DATE, model=model, tokenizer=tok, temperature=0)
    assert re.fullmatch(DATE, result.text) and result.completed
    assert result.finish_reason in ("eos", "constraint_end")
    assert len(result.log_z) == len(result.token_ids) and all(z <= 1e-6 for z in result.log_z)


def test_choices_sampled_batch_and_seed(smollm2):
    model, tok = smollm2
    choices = ["positive", "negative", "neutral"]
    prompts = ["I love it!", "This is awful.", "It is a chair.", "Best day ever"]
    first = structgen.generate(prompts, choices=choices, model=model, tokenizer=tok, seed=7, temperature=1.0)
    again = structgen.generate(prompts, choices=choices, model=model, tokenizer=tok, seed=7, temperature=1.0)
    assert [r.text for r in first] == [r.text for r in again]
    assert all(r.text in choices and r.completed for r in first)


def test_sampling_options_keep_validity(smollm2):
    model, tok = smollm2
    pattern = r"[A-Z][a-z]{2,8}( [A-Z][a-z]{2,8}){0,2}"
    results = structgen.generate(
        ["Name a city.", "Name a person."] * 3, regex=pattern, model=model, tokenizer=tok, top_k=20, top_p=0.9, seed=3, max_new_tokens=24
    )
    for r in results:
        assert r.completed and re.fullmatch(pattern, r.text), r.text


def test_length_limit_reports_incomplete(smollm2):
    model, tok = smollm2
    r = structgen.generate("Count.", regex=r"(\d ){20}", model=model, tokenizer=tok, max_new_tokens=3, temperature=0)
    assert r.finish_reason == "length" and not r.completed and len(r.token_ids) == 3


def test_greedy_matches_transformers_generate_with_logits_processor(smollm2):
    """Same greedy tokens from structgen's loop (KV cache, batched) and from transformers'
    generate() with the LogitsProcessor."""
    model, tok = smollm2
    vocab = vocabulary_for(model, tok)
    pattern = r"\{\"name\": \"[A-Za-z ]{1,20}\", \"age\": \d{1,3}\}"
    prompt = "Describe a person as JSON with a name and an age."
    ours = structgen.generate(prompt, regex=pattern, model=model, tokenizer=tok, temperature=0, max_new_tokens=40)
    ids = torch.tensor([render_prompt(tok, prompt, chat_template=True, system_prompt=None)])
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        logits_processor=[ConstraintLogitsProcessor(compile_regex(pattern, vocab))],
        do_sample=False,
        max_new_tokens=40,
        pad_token_id=vocab.eos_token_ids[0],
    )
    theirs = [t for t in out[0, ids.shape[1] :].tolist() if t not in vocab.eos_token_ids]
    assert ours.token_ids == theirs
    assert re.fullmatch(pattern, ours.text)


def test_logits_processor_under_beam_search(smollm2):
    model, tok = smollm2
    vocab = vocabulary_for(model, tok)
    pattern = r"(yes|no|maybe), because [a-z ]{5,30}\."
    ids = torch.tensor([render_prompt(tok, "Is the sky blue? Explain briefly.", chat_template=True, system_prompt=None)])
    out = model.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        logits_processor=[ConstraintLogitsProcessor(compile_regex(pattern, vocab))],
        num_beams=4,
        num_return_sequences=4,
        do_sample=False,
        max_new_tokens=30,
        pad_token_id=vocab.eos_token_ids[0],
    )
    for row in out[:, ids.shape[1] :].tolist():
        text = vocab.decode([t for t in row if t not in vocab.eos_token_ids])
        m = structgen.compile_regex(pattern, vocab).matcher()
        # every beam is a valid prefix; finished ones are complete sentences
        assert m.accept_tokens([t for t in row if t not in vocab.eos_token_ids]), text
        if any(t in vocab.eos_token_ids for t in row):
            assert re.fullmatch(pattern, text), text


def test_cli_json(smollm2):
    env = dict(os.environ)
    out = subprocess.run(
        [sys.executable, "-m", "structgen", "generate", "--choices", "red", "green", "blue", "--prompt", "Color of grass?", "--temperature", "0", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["text"] in ("red", "green", "blue") and result["completed"]


def test_cli_bad_regex_is_a_clear_error():
    out = subprocess.run(
        [sys.executable, "-m", "structgen", "generate", "--regex", "(a)\\1", "--prompt", "x"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2 and "backreference" in out.stderr
