"""Regex constraints: compile time and per-token mask time, structgen vs outlines-core,
xgrammar and llguidance, on the same tokenizer bytes and the same token sequences.

Engines are interleaved (their order rotates every round) so machine noise hits all alike.
Each round compiles afresh, so structgen's per-state mask cache starts cold, as it would for
a new constraint; mask time is ``fill bitmask`` for the next token, timed per token.

    python bench/masks.py [--tokenizers smollm2 tekken] [--rounds 3] [--engines ...]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE] + [HERE]  # bench/jsonschema.py would shadow jsonschema
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from tokenizer_cases import load_case  # noqa: E402  (the loaders the tests use)
from peers import make_engines  # noqa: E402

WORDS = (
    "apple banana cherry date elderberry fig grape honeydew kiwi lemon mango nectarine orange papaya quince "
    "raspberry strawberry tangerine ugli vanilla watermelon xigua yam zucchini almond brazil cashew chestnut "
    "hazelnut macadamia peanut pecan pistachio walnut acorn basil chive cilantro dill fennel garlic ginger "
    "horseradish lavender marjoram mint oregano parsley rosemary sage tarragon thyme turmeric wasabi anise "
    "caraway cardamom cinnamon clove coriander cumin mustard nutmeg paprika pepper saffron sesame sumac "
    "artichoke asparagus beet broccoli cabbage carrot cauliflower celery corn cucumber eggplant kale leek "
    "lettuce okra onion parsnip pea potato pumpkin radish rhubarb shallot spinach squash tomato turnip "
    "arugula bokchoy chard collard endive"
).split()[:100]

CASES = [
    ("date", r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])", "2024-05-17"),
    ("datetime", r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})", "2024-05-17T13:45:07.123Z"),
    ("email", r"[a-zA-Z0-9._%+-]+@[a-zA-Z0-9.-]+\.[a-zA-Z]{2,}", "jane.doe+news@example-mail.co.uk"),
    ("ipv4", r"((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)", "192.168.100.254"),
    ("phone", r"\+?1? ?\(?\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}", "+1 (555) 123-4567"),
    ("identifier", r"[a-zA-Z_][a-zA-Z0-9_]{0,63}", "parse_token_stream_v2_final"),
    ("uuid", r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "123e4567-e89b-12d3-a456-426614174000"),
    ("float", r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?", "-12345.678e-9"),
    ("letters{1,200}", r"[a-z]{1,200}", "thequickbrownfoxjumpsoverthelazydog" * 4),
    ("json-string", r"\"([^\"\\\x00-\x1f]|\\[\"\\/bfnrt])*\"", '"Hello, wörld! 🦙 said the \\"model\\" twice"'),
    ("100-words", "(" + "|".join(WORDS) + ")( (" + "|".join(WORDS) + "))*", "mango kiwi basil saffron pumpkin arugula"),
    ("url", r"https?://[a-z0-9.-]+(:\d{1,5})?(/[a-zA-Z0-9._~%-]*)*(\?[a-zA-Z0-9=&_-]*)?", "https://example.org:8080/docs/api/v2?id=42&x=y"),
]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def run(tokenizer: str, rounds: int, engine_names: list[str] | None) -> None:
    case = load_case(tokenizer)
    vocab = case.vocab
    engines = make_engines(vocab, case.encode, engine_names)
    names = [e.name for e in engines]
    compile_ms = {n: [] for n in names}
    mask_us = {n: [] for n in names}
    per_case: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    failures: dict[str, list[str]] = {n: [] for n in names}
    sequences = {label: case.encode(text) for label, _, text in CASES}
    # warm-up: one compile and walk per engine outside the measurement (JIT, thread pools)
    for e in engines:
        m = e.matcher(e.compile_regex(r"[a-z]+\d?"))
        for tid in case.encode("abc1"):
            e.fill_mask(m)
            e.accept(m, tid)
    for r in range(rounds):
        for label, pattern, _ in CASES:
            ids = sequences[label]
            order = engines[r % len(engines) :] + engines[: r % len(engines)]
            for e in order:
                row = per_case.setdefault(label, {}).setdefault(e.name, ([], []))
                t0 = time.perf_counter()
                try:
                    compiled = e.compile_regex(pattern)
                    m = e.matcher(compiled)
                except Exception as exc:  # a peer that cannot compile the pattern
                    if r == 0:
                        failures[e.name].append(f"{label}: {type(exc).__name__}")
                    continue
                t1 = time.perf_counter()
                compile_ms[e.name].append((t1 - t0) * 1e3)
                row[0].append((t1 - t0) * 1e3)
                for tid in ids:
                    s = time.perf_counter()
                    e.fill_mask(m)
                    dt = (time.perf_counter() - s) * 1e6
                    mask_us[e.name].append(dt)
                    row[1].append(dt)
                    try:
                        accepted = e.accept(m, tid)
                    except Exception:
                        accepted = False
                    if not accepted:
                        failures[e.name].append(f"{label}: refused a valid token")
                        break

    print(f"\n## {tokenizer} ({vocab.n_tokens} tokens), {len(CASES)} regexes x {rounds} rounds, cold caches each round")
    print("\nper regex: compile ms p50 | mask us p50 (p99)")
    header = f"{'regex':<16}" + "".join(f"{n:>30}" for n in names)
    print(header)
    for label, _, _ in CASES:
        cells = []
        for n in names:
            comp, masks = per_case.get(label, {}).get(n, ([], []))
            cells.append(
                f"{pct(comp, 50):>9.2f} | {pct(masks, 50):>7.1f} ({pct(masks, 99):>7.1f})" if comp else f"{'failed':>30}"
            )
        print(f"{label:<16}" + "".join(f"{c:>30}" for c in cells))
    print("\nsummary over all regexes and tokens")
    print(f"{'engine':<14}{'compile p50':>12}{'p99':>10}{'max':>10}{'mask p50':>11}{'p99':>10}{'max':>10}{'mask p50 ratio':>16}{'compile p50 ratio':>19}")
    base_mask = pct(mask_us["structgen"], 50) if "structgen" in mask_us else None
    base_comp = pct(compile_ms["structgen"], 50) if "structgen" in compile_ms else None
    for n in names:
        c, m = compile_ms[n], mask_us[n]
        ratio_m = pct(m, 50) / base_mask if base_mask else float("nan")
        ratio_c = pct(c, 50) / base_comp if base_comp else float("nan")
        print(
            f"{n:<14}{pct(c, 50):>10.2f}ms{pct(c, 99):>8.1f}ms{max(c, default=float('nan')):>8.1f}ms"
            f"{pct(m, 50):>9.1f}us{pct(m, 99):>8.1f}us{max(m, default=float('nan')):>8.0f}us"
            f"{ratio_m:>15.2f}x{ratio_c:>18.2f}x"
        )
    print("(ratios: engine / structgen; above 1 means structgen is faster)")
    for n, f in failures.items():
        if f:
            print(f"# {n} failures: {sorted(set(f))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizers", nargs="+", default=["smollm2", "tekken"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engines", nargs="+")
    args = parser.parse_args()
    for tokenizer in args.tokenizers:
        run(tokenizer, args.rounds, args.engines)


if __name__ == "__main__":
    main()
