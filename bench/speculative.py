"""Speculative drafting over the constraint, SmolLM2 on CPU, greedy: tokens/s and forward passes
per output token for plain constrained decoding vs each draft source vs all combined, on
JSONSchemaBench schemas (Glaiveai2K, Github_easy, Kubernetes; the first distinct schemas that
structgen compiles into one DFA, the schema in the prompt) and grammar tasks (Lark and GBNF files). Every drafted
output is checked to be identical, token for token, to the plain one. The "history" source
drafts from earlier outputs of the same config in this run (tasks in order, a history per config).

    python bench/speculative.py [--per-subset 10] [--max-new-tokens 128] [--pass-costs]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]  # bench/jsonschema.py would shadow jsonschema
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))

import structgen  # noqa: E402
from schema_suites import bench_cases  # noqa: E402
from structgen.generation.decode import vocabulary_for  # noqa: E402
from structgen.generation.drafts import DEFAULT_SOURCES, OutputHistory, set_history  # noqa: E402
from tokenizer_cases import SHARED_DATA  # noqa: E402

SUBSETS = ["Glaiveai2K", "Github_easy", "Kubernetes"]
GRAMMAR_TASKS = [
    ("json.lark", "Describe a book (title, author, year, tags) as JSON."),
    ("arithmetic.lark", "Write an arithmetic expression with parentheses that equals 42."),
    ("sql_select.lark", "Write a SQL query that lists the names of users older than 30, sorted by name."),
    ("function_call.lark", "Call the search function to find PDF files about grammars, at most 5."),
    ("csv.lark", "Write a CSV table with a header and three rows of cities and populations."),
    ("xml.lark", "Write an XML note from Ann to Bob about a meeting."),
    ("python_expr.lark", "Write a Python expression that sums the squares of a list of numbers."),
    ("json.gbnf", "Describe a car (make, model, year) as JSON."),
    ("list.gbnf", "List three things to pack for a trip."),
    ("chess.gbnf", "Write the first four moves of a chess game."),
]
CONFIGS = {
    "plain": None,
    "forced": ["forced"],
    "ngram": ["ngram"],
    "text": ["text"],
    "history": ["history"],
    "default": list(DEFAULT_SOURCES),  # speculative=True
    "all": ["forced", "ngram", "text", "history"],
}


def schema_tasks(per_subset: int, vocab) -> list[tuple[str, str, dict]]:
    tasks, seen = [], set()
    for subset in SUBSETS:
        taken = 0
        for sid, schema, _ in bench_cases(subset):
            try:
                c = structgen.compile_json_schema(schema, vocab, timeout_s=5.0)
            except Exception:
                continue
            if not isinstance(c, structgen.RegularConstraint):
                continue
            text = json.dumps(schema)
            if len(text) > 3000 or text in seen:  # distinct schemas (Kubernetes repeats some)
                continue
            seen.add(text)
            prompt = f"Generate a JSON object that follows this JSON schema:\n{text}"
            tasks.append((f"{subset}/{sid}", prompt, {"constraint": c}))
            taken += 1
            if taken >= per_subset:
                break
    return tasks


def grammar_tasks(vocab) -> list[tuple[str, str, dict]]:
    tasks = []
    for name, prompt in GRAMMAR_TASKS:
        if name.endswith(".gbnf"):
            with open(os.path.join(SHARED_DATA, "gbnf", name), encoding="utf-8") as f:
                c = structgen.compile_gbnf(f.read(), vocab)
        else:
            c = structgen.compile_grammar_file(os.path.join(REPO, "grammars", name), vocab)
        tasks.append((name, prompt, {"constraint": c}))
    return tasks


def pass_costs(model, tok, reps: int = 15) -> None:
    """ms per verification pass over k tokens after a 300-token prompt (the KV cache cropped
    back after each), k interleaved so that host noise hits every k alike."""
    from structgen.generation.speculative import ModelVerifier

    ks = [1, 2, 3, 4, 5, 8, 12, 15, 16, 17, 24, 32]
    verifier = ModelVerifier(model)
    verifier.extend(tok("hello " * 300)["input_ids"][:300], keep=1)
    times: dict[int, list[float]] = {k: [] for k in ks}
    for _ in range(reps):
        for k in ks:
            t0 = time.perf_counter()
            verifier.extend(list(range(100, 100 + k)), keep=k)
            times[k].append(time.perf_counter() - t0)
            verifier.crop(300)
    print(f"{'tokens':>7}{'ms p50':>8}{'min':>7}")
    for k in ks:
        print(f"{k:>7}{np.median(times[k]) * 1e3:>8.1f}{min(times[k]) * 1e3:>7.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-subset", type=int, default=10)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--pass-costs", action="store_true", help="only time verification passes over 1-32 tokens")
    args = ap.parse_args()
    model, tok = structgen.load_default_model()
    if args.pass_costs:
        pass_costs(model, tok)
        return
    vocab = vocabulary_for(model, tok)
    groups = {"json": schema_tasks(args.per_subset, vocab), "grammar": grammar_tasks(vocab)}
    print(f"# {len(groups['json'])} schemas, {len(groups['grammar'])} grammar tasks, greedy, max_new_tokens={args.max_new_tokens}", flush=True)
    structgen.generate("warm up", model=model, tokenizer=tok, max_new_tokens=4, temperature=0, speculative=True)
    histories = {config: OutputHistory() for config in CONFIGS}  # each config learns from its own earlier outputs
    rows = []  # (group, task, config, tokens, seconds, decode seconds, passes, drafted, accepted, identical)
    for group, tasks in groups.items():
        for name, prompt, kw in tasks:
            plain_ids = None
            for config, sources in CONFIGS.items():
                set_history(tok, histories[config])
                t0 = time.perf_counter()
                r = structgen.generate(
                    prompt, model=model, tokenizer=tok, temperature=0, max_new_tokens=args.max_new_tokens,
                    speculative=sources or False, **kw,
                )
                seconds = time.perf_counter() - t0
                if config == "plain":
                    plain_ids = r.token_ids
                rows.append((group, name, config, len(r.token_ids), seconds, r.total_seconds - r.prefill_seconds,
                             r.forward_passes, r.drafted_tokens, r.accepted_draft_tokens, r.token_ids == plain_ids))
            last = rows[-len(CONFIGS):]
            print(
                f"{group:<8}{name[:40]:<42}"
                + "".join(f"{c}: {n / s:5.1f} tok/s {p / max(n, 1):.2f} fp/tok  " for (_, _, c, n, s, _d, p, *_rest) in last),
                flush=True,
            )
    print()
    print("tok/s: output tokens / request time (prompt prefill included), p50 and p1 (slowest 1%); decode: after the prompt's forward pass")
    print(
        f"{'group':<9}{'config':<8}{'outputs':>8}{'tok/s p50':>10}{'p1':>7}{'decode p50':>11}{'fp/token':>9}{'drafted':>8}"
        f"{'accepted':>9}{'ratio p50':>10}{'ratio total':>12}{'decode ratio':>13}{'identical':>10}"
    )
    for group in groups:
        plain = {r[1]: r for r in rows if r[0] == group and r[2] == "plain"}
        for config in CONFIGS:
            sel = [r for r in rows if r[0] == group and r[2] == config]
            if not sel:
                continue
            base = [plain[r[1]] for r in sel]
            rate = [r[3] / r[4] for r in sel]
            decode = [r[3] / max(r[5], 1e-9) for r in sel]
            speed = [(r[3] / r[4]) / (b[3] / b[4]) for r, b in zip(sel, base)]
            total = (sum(r[3] for r in sel) / sum(r[4] for r in sel)) / (sum(b[3] for b in base) / sum(b[4] for b in base))
            decode_total = (sum(r[3] for r in sel) / sum(r[5] for r in sel)) / (sum(b[3] for b in base) / sum(b[5] for b in base))
            fp = sum(r[6] for r in sel) / max(1, sum(r[3] for r in sel))
            print(
                f"{group:<9}{config:<8}{len(sel):>8}{np.median(rate):>10.1f}{np.percentile(rate, 1):>7.1f}{np.median(decode):>11.1f}"
                f"{fp:>9.3f}{sum(r[7] for r in sel):>8}{sum(r[8] for r in sel):>9}{np.median(speed):>9.2f}x{total:>11.2f}x"
                f"{decode_total:>12.2f}x{sum(r[9] for r in sel):>7}/{len(sel)}"
            )


if __name__ == "__main__":
    main()
