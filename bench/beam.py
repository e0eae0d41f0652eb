"""Lexically constrained beam search with SmolLM2: phrase coverage, validity, log-likelihood
per token and time per output for plain beam search (no phrases), structgen's constrained beam
search (dynamic beam allocation) and naive decoding that forces the first missing phrase as soon
as the grammar allows it. Concept sets in the style of CommonGen (written for this benchmark)
and JSON-schema generations whose string fields must contain given values.

    python bench/beam.py [--beams 4] [--limit-concepts 32] [--limit-json 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]  # bench/jsonschema.py would shadow jsonschema
sys.path.insert(0, os.path.dirname(HERE))

import jsonschema  # noqa: E402

import structgen  # noqa: E402
from structgen.generation.beam import BatchScorer, constrained_beam_search  # noqa: E402
from structgen.generation.decode import render_prompt, resolve_constraint, vocabulary_for  # noqa: E402
from structgen.generation.drafts import tokenizer_encoder  # noqa: E402
from structgen.generation.phrases import PhraseConstraints  # noqa: E402

CONCEPTS = [
    "dog frisbee catch throw", "boat river paddle", "snow mountain ski", "cake oven bake birthday",
    "guitar stage play crowd", "rain umbrella street", "book library read quiet", "ball kick goal",
    "garden flower water", "car wash soap bucket", "bread knife cut", "horse ride field fence",
    "coffee cup morning", "train station wait ticket", "fish lake pole", "child swing park push",
    "teacher board write student", "bike helmet road", "camera photo sunset", "tent camp fire night",
    "doctor patient listen", "pizza slice cheese", "bird nest tree egg", "phone call friend laugh",
    "paint wall brush", "beach sand castle build", "market fruit sell", "clock wall hang",
    "chef kitchen chop onion", "wind kite fly", "farmer tractor field plow", "window clean cloth",
]
JSON_TASKS = [
    ("a hotel review", "title", "review", ["Lisbon", "breakfast"]),
    ("a product listing for headphones", "name", "description", ["wireless", "battery"]),
    ("a recipe", "dish", "steps", ["garlic", "simmer"]),
    ("a job posting", "role", "duties", ["Python", "remote"]),
    ("a movie summary", "title", "plot", ["robot", "Mars"]),
    ("a weather report", "city", "forecast", ["Oslo", "snow"]),
    ("a book blurb", "title", "blurb", ["dragon", "library"]),
    ("a museum guide entry", "exhibit", "text", ["Egypt", "gold"]),
    ("a support ticket", "subject", "details", ["password", "reset"]),
    ("a travel tip", "place", "tip", ["Kyoto", "temple"]),
    ("a bug report", "title", "steps", ["crash", "login"]),
    ("a restaurant menu item", "dish", "description", ["spicy", "noodles"]),
    ("a news headline and lede", "headline", "lede", ["election", "Tuesday"]),
    ("a pet adoption notice", "name", "about", ["cat", "gentle"]),
    ("a concert announcement", "band", "details", ["jazz", "Friday"]),
    ("a car advertisement", "model", "features", ["electric", "range"]),
    ("a science fact", "topic", "fact", ["Jupiter", "storm"]),
    ("a gym class description", "class", "description", ["yoga", "beginners"]),
    ("a wine tasting note", "wine", "notes", ["cherry", "oak"]),
    ("a lost and found notice", "item", "description", ["wallet", "blue"]),
]


def concept_tasks(limit: int):
    for words in CONCEPTS[:limit]:
        phrases = words.split()
        prompt = f"Write one short sentence about everyday life using the words: {', '.join(phrases)}."
        yield "concepts", words, prompt, phrases, None


def json_tasks(limit: int):
    for what, key1, key2, values in JSON_TASKS[:limit]:
        schema = {
            "type": "object",
            "properties": {key1: {"type": "string", "maxLength": 40}, key2: {"type": "string", "maxLength": 160}},
            "required": [key1, key2],
            "additionalProperties": False,
        }
        prompt = f"Write {what} as JSON with the fields {key1} and {key2}. Mention {' and '.join(values)}."
        yield "json", what, prompt, values, schema


def naive_force(scorer, vocab, phrases_list, constraint, encode, max_new_tokens):
    """Greedy; the tokens of the first missing phrase are forced as soon as the grammar allows them."""
    eos = set(vocab.eos_token_ids)
    m = constraint.matcher() if constraint is not None else None
    logprobs = scorer.step(None, None)
    tokens, score = [], 0.0
    queue: list[int] = []
    while len(tokens) < max_new_tokens:
        text = vocab.decode(tokens)
        missing = [p for p in phrases_list if p not in text]
        if not queue and missing:
            for variant in (" " + missing[0], missing[0]):
                ids = encode(variant.encode())
                if m is None or m.validate_tokens(ids) == len(ids):
                    queue = ids
                    break
        row = logprobs[0].clone()
        if m is not None:
            allowed = m.allowed_token_ids()
            keep = np.zeros(row.shape[0], dtype=bool)
            keep[allowed] = True
            row[~keep] = float("-inf")
        if missing:
            row[list(eos)] = float("-inf")
        t = queue.pop(0) if queue else int(row.argmax())
        if not np.isfinite(float(row[t])):
            break
        score += float(logprobs[0, t])
        if m is not None:
            m.accept_token(t)
        if t in eos:
            return tokens, score, True
        tokens.append(t)
        logprobs = scorer.step([0], [t])
    return tokens, score, False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--beams", type=int, default=4)
    ap.add_argument("--limit-concepts", type=int, default=32)
    ap.add_argument("--limit-json", type=int, default=20)
    ap.add_argument("--max-new-tokens", type=int, default=40)
    args = ap.parse_args()
    model, tok = structgen.load_default_model()
    vocab = vocabulary_for(model, tok)
    encode = tokenizer_encoder(tok)
    tasks = list(concept_tasks(args.limit_concepts)) + list(json_tasks(args.limit_json))
    rows = []  # (group, method, coverage, valid, loglik/token, seconds)
    for group, name, prompt, phrases, schema in tasks:
        constraint = resolve_constraint(vocab, schema=schema) if schema is not None else None
        ids = render_prompt(tok, prompt, chat_template=True, system_prompt=None)
        max_new = args.max_new_tokens + (40 if schema is not None else 0)
        line = []
        for method in ("beam", "constrained", "naive"):
            t0 = time.perf_counter()
            if method == "naive":
                tokens, score, done = naive_force(BatchScorer(model, ids), vocab, phrases, constraint, encode, max_new)
                text, n = vocab.decode(tokens), len(tokens) + int(done)
            else:
                must = phrases if method == "constrained" else []
                h = constrained_beam_search(
                    BatchScorer(model, ids), vocab, PhraseConstraints(must), constraint, encode=encode,
                    num_beams=args.beams, max_new_tokens=max_new, length_penalty=1.0,
                )[0]
                text, score, done, n = h.text, h.score, h.completed, len(h.token_ids) + int(h.completed)
            seconds = time.perf_counter() - t0
            coverage = sum(p in text for p in phrases) / len(phrases)
            valid = done
            if schema is not None and done:
                try:
                    jsonschema.validate(json.loads(text), schema)
                except Exception:
                    valid = False
            rows.append((group, method, coverage, valid, score / max(n, 1), seconds))
            line.append(f"{method}: {coverage:.2f} {'ok' if valid else '--'} {text[:60]!r}")
        print(f"{group:<9}{name[:28]:<30}" + " | ".join(line), flush=True)
    print()
    print(f"{'group':<10}{'method':<13}{'outputs':>8}{'coverage':>10}{'all met':>9}{'valid':>7}{'loglik/tok':>12}{'s/output p50':>14}{'p99':>8}")
    for group in ("concepts", "json"):
        for method in ("beam", "constrained", "naive"):
            sel = [r for r in rows if r[0] == group and r[1] == method]
            if not sel:
                continue
            secs = [r[5] for r in sel]
            print(
                f"{group:<10}{method:<13}{len(sel):>8}{np.mean([r[2] for r in sel]):>10.3f}"
                f"{sum(r[2] == 1.0 for r in sel):>5}/{len(sel):<3}{sum(r[3] for r in sel):>4}/{len(sel):<3}"
                f"{np.mean([r[4] for r in sel]):>11.3f}{np.median(secs):>14.2f}{np.percentile(secs, 99):>8.2f}"
            )


if __name__ == "__main__":
    main()
