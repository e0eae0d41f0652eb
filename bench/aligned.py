"""Grammar-aligned sampling with the real model (SmolLM2-135M-Instruct): how far plain masking,
plain masking with importance weights, ASAp and the exact sampler are from p(x | constraint).

For each task the language is finite, so the exact conditional distribution is computed by
enumerating every token sequence the constraint allows (prefixes less likely than --eps times
the likeliest prefix of their length are pruned; the pruned mass is printed) and scoring it with the model. Each sampler draws
2000 samples (its state carries over, so the figures at N = 100 and 500 are its first samples);
"iid" draws from the exact distribution itself: the noise floor of each metric at that N.
Distributions are compared over output texts: total variation (TV), KL(exact || empirical) with
add-0.5 smoothing over the exact support, and the expected log-likelihood log p(x).

    python bench/aligned.py [--n 100 500 2000] [--tasks number arithmetic json words]
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]  # bench/jsonschema.py would shadow jsonschema
sys.path.insert(0, os.path.dirname(HERE))

import structgen  # noqa: E402
from structgen.generation.aligned import AlignedSampler  # noqa: E402
from structgen.generation.decode import render_prompt, vocabulary_for  # noqa: E402
from structgen.generation.importance import normalized_weights, weighted_distribution  # noqa: E402

ARITHMETIC = r"""
start: NUM OP NUM
NUM: /[1-9]/
OP: "+" | "-" | "*"
"""

TASKS = {
    # a 3-digit number where the model would rather stop after one or two digits
    "number": ("Pick a number between 1 and 10. Reply with the number only.", "regex", r"1[0-9]{2}", 4),
    "arithmetic": ("Write a short arithmetic expression that equals 12.", "grammar", ARITHMETIC, 4),
    "json": (
        'Give a T-shirt size and a count as a JSON object like {"size": "M", "n": 3}. Reply with the JSON only.',
        "schema",  # compact whitespace; the rarer tokenizations of its keys are pruned (see --eps)
        {
            "type": "object",
            "properties": {"size": {"enum": ["S", "M", "L"]}, "n": {"type": "integer", "minimum": 1, "maximum": 9}},
            "required": ["size", "n"],
            "additionalProperties": False,
        },
        16,
    ),
    "words": ("Name two fruits.", "regex", r"(apple|banana|cherry|grape|lemon), (apple|banana|cherry|grape|lemon)", 8),
}
METHODS = ["iid", "mask", "mask+IS", "asap", "exact"]
TASK_EPS = {"json": 1e-5}  # its forced keys have many tokenizations, each far less likely than the model's own


def compile_task(kind: str, spec, vocab):
    if kind == "regex":
        return structgen.compile_regex(spec, vocab)
    if kind == "grammar":
        return structgen.compile_grammar(spec, vocab)
    return structgen.compile_json_schema(spec, vocab, whitespace="compact")


@torch.inference_mode()
def score_prefixes(model, prompt_cache, first, prefixes: list[tuple[int, ...]], chunk: int = 48) -> torch.Tensor:
    """Next-token log-probs after the prompt + each prefix (all of one length)."""
    if not prefixes[0]:
        return first.expand(len(prefixes), -1)
    rows = []
    for i in range(0, len(prefixes), chunk):
        part = prefixes[i : i + chunk]
        cache = copy.deepcopy(prompt_cache)
        cache.batch_repeat_interleave(len(part))
        start = cache.get_seq_length()
        ids = torch.tensor(part, dtype=torch.long)
        positions = torch.arange(start, start + ids.shape[1]).expand(len(part), -1)
        out = model(input_ids=ids, past_key_values=cache, position_ids=positions, use_cache=True)
        rows.append(torch.log_softmax(out.logits[:, -1, :].double(), dim=-1))
    return torch.cat(rows)


def enumerate_language(model, prompt_ids, constraint, max_new_tokens: int, eps: float):
    """{token sequence: log p(sequence + EOS)} for every sequence the constraint allows whose
    prefixes all have at least eps times the probability of the likeliest prefix of their length,
    and the total probability of the pruned prefixes."""
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([prompt_ids]), use_cache=True)
    cache, first = out.past_key_values, torch.log_softmax(out.logits[:, -1, :].double(), dim=-1)
    eos = set(constraint.vocab.eos_token_ids)
    frontier = [((), constraint.matcher(), 0.0)]
    sentences: dict[tuple[int, ...], float] = {}
    pruned = 0.0
    for depth in range(max_new_tokens + 1):
        if not frontier:
            break
        logprobs = score_prefixes(model, cache, first, [f[0] for f in frontier])
        nxt = []
        floor = max(f[2] for f in frontier) + math.log(eps)  # relative to the likeliest prefix of this length
        for (tokens, matcher, lp), row in zip(frontier, logprobs):
            allowed = matcher.allowed_token_ids()
            if depth == max_new_tokens:
                allowed = [t for t in allowed if t in eos]
            for t in allowed:
                t = int(t)
                lpt = lp + float(row[t])
                if t in eos:
                    sentences[tokens] = np.logaddexp(sentences.get(tokens, -np.inf), lpt)
                elif lpt < floor:
                    pruned += math.exp(lpt)
                else:
                    m = matcher.copy()
                    m.accept_token(t)
                    nxt.append((tokens + (t,), m, lpt))
        frontier = nxt
    return sentences, pruned


def text_distribution(vocab, sentences: dict[tuple[int, ...], float]) -> dict[str, float]:
    logs = np.array(list(sentences.values()))
    probs = np.exp(logs - np.logaddexp.reduce(logs))
    dist: dict[str, float] = {}
    for seq, p in zip(sentences, probs):
        text = vocab.decode(seq)
        dist[text] = dist.get(text, 0.0) + float(p)
    return dist


def compare(exact: dict[str, float], empirical: dict[str, float], n: int) -> tuple[float, float]:
    keys = set(exact) | set(empirical)
    tv = 0.5 * sum(abs(exact.get(k, 0.0) - empirical.get(k, 0.0)) for k in keys)
    alpha = 0.5
    smoothed = {k: (empirical.get(k, 0.0) * n + alpha) / (n + alpha * len(keys)) for k in keys}
    kl = sum(p * math.log(p / smoothed[k]) for k, p in exact.items() if p > 0)
    return tv, kl


def counts(texts: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for t in texts:
        out[t] = out.get(t, 0.0) + 1.0 / len(texts)
    return out


def run_task(name: str, model, tok, vocab, ns: list[int], eps: float, batch_size: int, seed: int) -> list[tuple]:
    prompt, kind, spec, max_new = TASKS[name]
    constraint = compile_task(kind, spec, vocab)
    prompt_ids = render_prompt(tok, prompt, chat_template=True, system_prompt=None)
    started = time.perf_counter()
    eps = max(eps, TASK_EPS.get(name, 0.0))
    sentences, pruned = enumerate_language(model, prompt_ids, constraint, max_new, eps)
    logs = np.array(list(sentences.values()))
    valid_mass = float(np.exp(np.logaddexp.reduce(logs)))
    exact = text_distribution(vocab, sentences)
    probs = np.exp(logs - np.logaddexp.reduce(logs))
    exact_loglik = float((probs * logs).sum())
    print(
        f"# {name}: {len(exact)} texts ({len(sentences)} token sequences), P(valid) = {valid_mass:.3g}, "
        f"pruned prefix mass {pruned:.2g} ({pruned / valid_mass:.2g} of P(valid)), E_exact[log p] = {exact_loglik:.3f}, "
        f"enumerated in {time.perf_counter() - started:.0f}s",
        flush=True,
    )
    rows = []
    rng = np.random.default_rng(seed)
    texts, weights = list(exact), np.array(list(exact.values()))
    iid = [texts[i] for i in rng.choice(len(texts), size=max(ns), p=weights / weights.sum())]
    by_text: dict[str, list[float]] = {}
    for seq, lp in sentences.items():
        by_text.setdefault(vocab.decode(seq), []).append(lp)
    # per text, E[log p] over its tokenizations (as the exact distribution draws them)
    seq_logp = {t: float(np.dot(np.exp(np.array(v) - np.logaddexp.reduce(v)), v)) for t, v in by_text.items()}
    for n in ns:
        tv, kl = compare(exact, counts(iid[:n]), n)
        rows.append((name, "iid", n, tv, kl, float(np.mean([seq_logp[t] for t in iid[:n]])), float("nan"), float("nan")))
    for method in ("mask", "asap", "exact"):
        sampler = AlignedSampler(
            prompt_ids, constraint, method=method, model=model, tokenizer=tok, max_new_tokens=max_new, batch_size=batch_size, seed=seed
        )
        samples: list = []
        elapsed = 0.0
        for n in ns:
            t0 = time.perf_counter()
            try:
                samples += sampler.sample(n - len(samples))
            except RuntimeError as exc:  # the exact sampler's proposal budget
                print(f"  {method}: {exc}", flush=True)
                break
            elapsed += time.perf_counter() - t0
            loglik = float(np.mean([r.logprob for r in samples]))
            tv, kl = compare(exact, counts([r.text for r in samples]), n)
            rate = sampler.acceptance_rate if method == "exact" else float("nan")
            rows.append((name, method, n, tv, kl, loglik, 1000 * elapsed / n, rate))
            if method == "mask":
                weighted = weighted_distribution(samples)
                tv, kl = compare(exact, weighted, n)
                loglik_w = float(sum(w * r.logprob for w, r in zip(normalized_weights(samples), samples)))
                rows.append((name, "mask+IS", n, tv, kl, loglik_w, 1000 * elapsed / n, float("nan")))
        print(f"  {method}: {sampler.stats}", flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[100, 500, 2000])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--eps", type=float, default=1e-8, help="when enumerating, prune prefixes less probable than eps x the likeliest of their length")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    model, tok = structgen.load_default_model()
    vocab = vocabulary_for(model, tok)
    rows = []
    for name in args.tasks:
        rows += run_task(name, model, tok, vocab, sorted(args.n), args.eps, args.batch_size, args.seed)
        print_table([r for r in rows if r[0] == name])
    print()
    print_table(rows)


def print_table(rows: list[tuple]) -> None:
    print(f"{'task':<11}{'method':<9}{'N':>6}{'TV':>8}{'KL':>8}{'E[log p]':>10}{'ms/sample':>11}{'accept':>8}{'TV/mask':>9}")
    mask_tv = {(r[0], r[2]): r[3] for r in rows if r[1] == "mask"}
    for task, method, n, tv, kl, loglik, ms, rate in rows:
        ratio = tv / mask_tv[(task, n)]
        print(
            f"{task:<11}{method:<9}{n:>6}{tv:>8.3f}{kl:>8.3f}{loglik:>10.3f}"
            f"{'' if math.isnan(ms) else f'{ms:.1f}':>11}{'' if math.isnan(rate) else f'{rate:.2f}':>8}{ratio:>9.2f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
