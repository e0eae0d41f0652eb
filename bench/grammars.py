"""Grammar constraints: compile time and per-token mask time, structgen vs llguidance (Lark
syntax) and xgrammar (GBNF), on the same grammar files, tokenizer bytes and token sequences.

Each round compiles afresh (structgen's caches start cold) and walks the sample's tokens:
``cold`` is that first walk. ``steady`` then walks a second, different sentence on the same
compiled grammar (a served grammar's steady state: what earlier requests left cached serves
this one, but its own parse states are new). ``warm`` walks the first sentence's tokens
again with a new matcher (masks already met are cached: a lookup).
Engines are interleaved, their order rotating every round.

    python bench/grammars.py [--tokenizers smollm2 tekken] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE] + [HERE]  # bench/jsonschema.py would shadow jsonschema
sys.path.insert(0, os.path.join(REPO, "tests"))

from tokenizer_cases import SHARED_DATA, load_case  # noqa: E402
from peers import make_engines  # noqa: E402

LARK = [
    ("json.lark", '{"name": "Ada Lovelace", "born": 1815, "tags": ["math", "poetry"], "alive": false, "x": {"y": [1.5e3, null]}}'),
    ("arithmetic.lark", "(3.5 + x_1) * 2 ^ (y - 4) / -(z + 10.25) - 7"),
    ("sql_select.lark", "SELECT u.name, COUNT(*) AS n FROM users AS u LEFT JOIN orders AS o ON u.id = o.user_id WHERE u.age >= 18 AND o.total > 9.5 GROUP BY u.name ORDER BY n DESC LIMIT 10;"),
    ("python_expr.lark", "sorted([x ** 2 if x > 0 else -x, f(a, key=b.c[1])], reverse=True) and not None"),
    ("function_call.lark", 'search(query="structured generation", limit=10, filters=["pdf", "html"], exact=False)'),
    ("xml.lark", '<note id="7"><to>Tove</to><from>Jani</from><!-- c --><body>Don\'t forget me <b>this</b> weekend!</body></note>'),
    ("csv.lark", 'name,age,city\n"Smith, Jane",42,Paris\nBob,,"New ""York"""\n'),
]
# a second sentence per grammar, walked after the first on the same compiled grammar: a
# served grammar's steady state (what one request left cached serves the next request)
SECOND = {
    "json.lark": '{"id": 42, "title": "Notes on the Analytical Engine", "pages": [3, 7.25], "draft": true, "meta": null}',
    "arithmetic.lark": "-(a_2 - 1.75) ^ 3 + foo * (bar / 8) - 0.5",
    "sql_select.lark": "select distinct p.title, p.price from products as p where p.price < 20 or p.title like 'A%' order by p.price asc;",
    "python_expr.lark": "{'total': price * (1 + tax.rate) // 100, 'ok': x.size >= 3 or y is not None} if items else []",
    "function_call.lark": 'book_flight(origin="LHR", destination="SFO", passengers=2, refundable=True, legs=[1, 2])',
    "xml.lark": '<list type="todo"><item done="no">Buy milk</item><item>Call Ada</item><br/></list>',
    "csv.lark": 'id,product,price\n1,"Widget, large",9.99\n2,Gadget,\n',
    "json.gbnf": '{"id": 42, "title": "Notes on the Analytical Engine", "pages": [3, 7.25], "draft": true, "meta": null}',
    "arithmetic.gbnf": "tot = (a+b2*3) \nz= (y -x1/4)\n",
    "c.gbnf": "int f(int a){int b = a*2;if(b>10){return b;}return a+b;}",
    "chess.gbnf": "1. d4 d5\n2. c4 e6\n3. Nc3 Nf6\n",
    "json_arr.gbnf": '[\n{"x": [null, false], "y": -0.5},\n"two",\n7]',
    "list.gbnf": "- apples\n- two pears and a plum\n",
}
GBNF = [
    ("json.gbnf", '{"name": "Ada Lovelace", "born": 1815, "tags": ["math", "poetry"], "alive": false, "x": {"y": [1.5e3, null]}}'),
    ("arithmetic.gbnf", "x1 +y*2=(a +b2*3)\ny= (c -4/d)\n"),
    ("c.gbnf", "int main(){int x = 3;while(x<10){x = x+1;}return x*2;}"),
    ("chess.gbnf", "1. e4 e5\n2. Nf3 Nc6\n3. Bb5 a6\n4. O-O Nf6\n"),
    ("json_arr.gbnf", '[\n{"a": 1, "b": [true, "x"]},\n"str",\n-3.25]'),
    ("list.gbnf", "- first item\n- second item with more words\n- third\n"),
]


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def load(name: str) -> tuple[str, str]:
    if name.endswith(".gbnf"):
        path = os.path.join(SHARED_DATA, "gbnf", name)
    else:
        path = os.path.join(REPO, "grammars", name)
    with open(path, encoding="utf-8") as f:
        return f.read(), "gbnf" if name.endswith(".gbnf") else "lark"


def walk(engine, compiled, ids, sink: list[float]) -> bool:
    m = engine.matcher(compiled)
    for tid in ids:
        s = time.perf_counter()
        engine.fill_mask(m)
        sink.append((time.perf_counter() - s) * 1e6)
        try:
            if not engine.accept(m, tid):
                return False
        except Exception:
            return False
    return True


def run(tokenizer: str, rounds: int) -> None:
    case = load_case(tokenizer)
    vocab = case.vocab
    engines = make_engines(vocab, case.encode, ["structgen", "xgrammar", "llguidance"])
    names = [e.name for e in engines]
    cases = [(n, *load(n), text) for n, text in LARK + GBNF]
    # the sample texts must be sentences of the grammars
    import structgen

    for n, text, syntax, sample in cases:
        c = structgen.compile_gbnf(text, vocab) if syntax == "gbnf" else structgen.compile_grammar(text, vocab)
        st = c.advance_bytes(c.initial_state, sample.encode())
        assert st is not None and c.is_accepting(st), f"bench sample is not a sentence of {n}"
        st = c.advance_bytes(c.initial_state, SECOND[n].encode())
        assert st is not None and c.is_accepting(st), f"second bench sample is not a sentence of {n}"
    sequences = {n: case.encode(sample) for n, _, _, sample in cases}
    seconds = {n: case.encode(SECOND[n]) for n, *_ in cases}
    stats = {(n, e): ([], [], [], []) for n, *_ in cases for e in names}  # compile, cold, warm, steady
    failures: dict[str, set[str]] = {e: set() for e in names}
    for e in engines:  # warm-up outside the measurement
        try:
            e.matcher(e.compile_grammar(*load("chess.gbnf") if e.name == "xgrammar" else load("json.lark")))
        except Exception:
            pass
    for r in range(rounds):
        for n, text, syntax, _ in cases:
            ids = sequences[n]
            order = engines[r % len(engines) :] + engines[: r % len(engines)]
            for e in order:
                comp, cold, warm, steady = stats[(n, e.name)]
                gc.collect()  # earlier rounds' garbage is nobody's compile time
                t0 = time.perf_counter()
                try:
                    compiled = e.compile_grammar(text, syntax)
                except NotImplementedError:
                    continue
                except Exception as exc:
                    failures[e.name].add(f"{n}: {type(exc).__name__}: {str(exc)[:60]}")
                    continue
                comp.append((time.perf_counter() - t0) * 1e3)
                if not walk(e, compiled, ids, cold) or not walk(e, compiled, seconds[n], steady):
                    failures[e.name].add(f"{n}: refused a valid token")
                if not walk(e, compiled, ids, warm):
                    failures[e.name].add(f"{n}: refused a valid token")

    print(f"\n## {tokenizer} ({vocab.n_tokens} tokens), {len(cases)} grammars x {rounds} rounds")
    print("\nper grammar: compile ms p50 | mask us p50 cold / steady / warm (p99 cold, p99 steady)")
    print(f"{'grammar':<20}" + "".join(f"{e:>46}" for e in names))
    for n, *_ in cases:
        cells = []
        for e in names:
            comp, cold, warm, steady = stats[(n, e)]
            cells.append(
                f"{pct(comp, 50):>7.2f} | {pct(cold, 50):>6.1f} / {pct(steady, 50):>6.1f} / {pct(warm, 50):>5.1f}"
                f" ({pct(cold, 99):>6.0f}, {pct(steady, 99):>5.0f})" if comp else f"{'-':>46}"
            )
        print(f"{n:<20}" + "".join(f"{c:>46}" for c in cells))
    for label, subset in (("Lark grammars", [n for n, _ in LARK]), ("GBNF grammars", [n for n, _ in GBNF])):
        print(f"\nsummary, {label} (mask us over every token of every sample)")
        print(
            f"{'engine':<12}{'compile p50':>12}{'p99':>9}{'cold p50':>10}{'p99':>8}{'max':>8}{'steady p50':>12}{'p99':>8}"
            f"{'max':>8}{'warm p50':>10}{'p99':>8}{'cold p50 ratio':>16}{'steady p50 ratio':>18}{'steady p99 ratio':>18}"
        )
        rows = {}
        for e in names:
            rows[e] = [[x for n in subset for x in stats[(n, e)][k]] for k in range(4)]
        base = rows.get("structgen")
        for e, (comp, cold, warm, steady) in rows.items():
            if not comp:
                print(f"{e:<12}{'(no ' + ('Lark' if 'Lark' in label else 'GBNF') + ' front end)':>40}")
                continue
            rc = pct(cold, 50) / pct(base[1], 50) if base and base[1] else float("nan")
            rs = pct(steady, 50) / pct(base[3], 50) if base and base[3] else float("nan")
            rs99 = pct(steady, 99) / pct(base[3], 99) if base and base[3] else float("nan")
            print(
                f"{e:<12}{pct(comp, 50):>10.2f}ms{pct(comp, 99):>7.1f}ms{pct(cold, 50):>8.1f}us{pct(cold, 99):>6.0f}us"
                f"{max(cold):>6.0f}us{pct(steady, 50):>10.1f}us{pct(steady, 99):>6.0f}us{max(steady):>6.0f}us"
                f"{pct(warm, 50):>8.1f}us{pct(warm, 99):>6.0f}us{rc:>15.2f}x{rs:>17.2f}x{rs99:>17.2f}x"
            )
    print("(ratios: engine / structgen; above 1 means structgen is faster)")
    for e, f in failures.items():
        if f:
            print(f"# {e} failures: {sorted(f)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizers", nargs="+", default=["smollm2", "tekken"])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for tokenizer in args.tokenizers:
        run(tokenizer, args.rounds)


if __name__ == "__main__":
    main()
