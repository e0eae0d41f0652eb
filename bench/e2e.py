"""End to end: SmolLM2-135M-Instruct on this CPU, greedy, tokens/s unconstrained vs
constrained on the same prompts (runs interleaved, medians over repeats). Speed is decode
speed: output tokens after the first, over the time after the prompt's forward pass.

    python bench/e2e.py [--repeats 3] [--max-new-tokens 64]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import structgen
from structgen.generation.decode import decode_batch, render_prompt, resolve_constraint, vocabulary_for

CASES = [
    (
        "json-person",
        "Describe a fictional person as JSON with name, age and city.",
        r"\{\"name\": \"[A-Za-z ]{1,30}\", \"age\": \d{1,3}, \"city\": \"[A-Za-z ]{1,30}\"\}",
    ),
    ("word-list", "List five fruits, separated by commas.", r"([a-z]+, ){4}[a-z]+"),
    ("iso-date", "When did the Berlin wall fall? Give the date.", r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"),
    ("sentence", "Describe the sea in one sentence.", r"[A-Z][a-z]*( [a-z]+){5,40}\."),
    ("yes-because", "Is Paris the capital of France? Answer and explain.", r"(Yes|No), because [a-z ,]{10,200}\."),
]


def run(repeats: int, max_new_tokens: int) -> None:
    model, tokenizer = structgen.load_default_model()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    vocab = vocabulary_for(model, tokenizer)
    structgen.warm_up()
    rows = []
    for label, prompt, pattern in CASES:
        t0 = time.perf_counter()
        constraint = resolve_constraint(vocab, regex=pattern)
        compile_ms = (time.perf_counter() - t0) * 1e3
        ids = [render_prompt(tokenizer, prompt, chat_template=True, system_prompt=None)]
        speeds = {"unconstrained": [], "constrained": []}
        tokens = {"unconstrained": 0, "constrained": 0}
        text = ""
        for r in range(repeats + 1):  # the first round warms caches and is not counted
            order = [("unconstrained", None), ("constrained", constraint)]
            if r % 2:
                order.reverse()
            for name, c in order:
                result = decode_batch(model, vocab, ids, c, max_new_tokens=max_new_tokens, temperature=0)[0]
                # decode speed after the prompt's forward pass (prefill is the same for both)
                elapsed = result.total_seconds - result.prefill_seconds
                if r == 0:
                    if name == "constrained":
                        text = result.text
                    continue
                tokens[name] = result.num_tokens
                if result.num_tokens > 1:
                    speeds[name].append((result.num_tokens - 1) / elapsed)
        free, cons = statistics.median(speeds["unconstrained"]), statistics.median(speeds["constrained"])
        rows.append((label, compile_ms, tokens["unconstrained"], free, tokens["constrained"], cons, text))

    print(f"\n## SmolLM2-135M-Instruct, CPU ({torch.get_num_threads()} threads), greedy, median of {repeats} runs")
    print(f"{'case':<13}{'compile':>9}{'free tok':>10}{'free tok/s':>12}{'cons tok':>10}{'cons tok/s':>12}{'ratio':>8}  output")
    ratios = []
    for label, compile_ms, nf, free, nc, cons, text in rows:
        ratios.append(cons / free)
        print(f"{label:<13}{compile_ms:>7.1f}ms{nf:>10}{free:>12.1f}{nc:>10}{cons:>12.1f}{cons / free:>8.2f}  {text[:60]!r}")
    print(f"median constrained/unconstrained tokens/s ratio: {statistics.median(ratios):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()
    run(args.repeats, args.max_new_tokens)


if __name__ == "__main__":
    main()
