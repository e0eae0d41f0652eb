"""JSON Schema: coverage, compile time and mask time, structgen vs xgrammar, llguidance and
outlines-core, in one run, on the same tokenizer bytes and the JSONSchemaBench dev instances.

Each (engine, schema) runs in a forked child killed after ``--time-limit`` seconds (counted
as an error). Per engine and subset: a schema is *covered* when it compiles within 10 s, every valid
instance (serialised compactly, tokenized with the tokenizer) is accepted to the end of the
output (the EOS token then accepted) and every invalid one is refused at some token.
Compile ms p50/p90/p99/max over the schemas each engine compiled; mask µs p50/p99/p99.9 over
every step of the valid instances' token sequences (first pass: masks start cold).

``--children``: "cold" (the default) forks a child per (engine, schema); "warm" has that
child first compile a warm-up schema and fill the masks along one instance of it; "serving"
keeps one warmed child per (engine, subset) for schema after schema, replaced after a kill,
as a served process is. Every engine is treated alike. A fresh child's first compile pays a
copy-on-write page fault for every page of the parent's memory it writes to (reference
counts included): ~1,200 faults, ~8 ms, for a small schema with structgen on this host.
Every
engine follows the specification for undeclared properties (xgrammar with strict_mode=False)
and accepts compact whitespace.

    python bench/jsonschema.py [--tokenizers smollm2 tekken] [--limit 20] [--subsets ...]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
# this file's name would shadow the jsonschema package: bench/ goes to the end of the path
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE] + [HERE]
sys.path.insert(0, os.path.join(REPO, "tests"))

from peers import WARM_UP_SCHEMA, make_engines  # noqa: E402
from schema_suites import bench_cases, bench_subsets, serialise  # noqa: E402
from tokenizer_cases import load_case  # noqa: E402

COMPILE_LIMIT_S = 10.0
WARM_UP_INSTANCE = {"s": "2024-01-31T12:00:00Z", "n": 1.5, "i": -3, "b": True, "a": ["abc", "de"]}


def pct(values, q):
    return float(np.percentile(values, q)) if values else float("nan")


def run_schema(engine, schema, tests, encoded, eos: int, stats) -> str:
    """'covered', 'failed' (compiled but wrong on an instance) or 'error' (did not compile)."""
    started = time.perf_counter()
    try:
        compiled = engine.compile_json(json.dumps(schema))
    except Exception:
        stats["errors"] += 1
        return "error"
    seconds = time.perf_counter() - started
    if seconds > COMPILE_LIMIT_S:
        return "error"
    stats["compile"].append(seconds * 1e3)
    ok = True
    for (instance, valid), ids in zip(tests, encoded):
        m = engine.matcher(compiled)
        accepted = True
        for t in ids:
            if valid:
                t0 = time.perf_counter()
                engine.fill_mask(m)
                stats["mask"].append((time.perf_counter() - t0) * 1e6)
            if not engine.accept(m, t):
                accepted = False
                break
        if accepted:
            accepted = engine.accept(m, eos)
        if accepted != valid:
            ok = False
            stats["false accepts" if accepted else "false rejects"] += 1
    return "covered" if ok else "failed"


def warm_child(engine, warm_ids: list[int]) -> None:
    """Compiles the warm-up schema and fills the masks along ``warm_ids`` (one instance)."""
    m = engine.matcher(engine.compile_json(json.dumps(WARM_UP_SCHEMA)))
    for t in warm_ids:
        engine.fill_mask(m)
        if not engine.accept(m, t):
            raise AssertionError(f"{engine.name} refused the warm-up instance")


class Worker:
    """A forked child that runs :func:`run_schema` for one engine, killed after a job's time
    limit (a peer's compile cannot be interrupted otherwise). ``mode``: "cold" forks a child
    per schema; "warm" also has it compile the warm-up schema first; "serving" keeps one
    warmed child for schema after schema (replaced after a kill), as a served process is."""

    def __init__(self, engine, mode: str, warm_ids: list[int]) -> None:
        self.engine, self.mode, self.warm_ids = engine, mode, warm_ids
        self.proc = self.conn = None

    def _start(self) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("fork")
        parent, child_end = ctx.Pipe()
        engine, warm_ids, mode = self.engine, self.warm_ids, self.mode

        def serve():
            if mode != "cold":
                warm_child(engine, warm_ids)
            while (job := child_end.recv()) is not None:
                local = collections.defaultdict(list)
                local.update({"errors": 0, "false accepts": 0, "false rejects": 0})
                outcome = run_schema(engine, *job, local)
                child_end.send((outcome, dict(local)))

        self.proc = ctx.Process(target=serve)
        self.proc.start()
        self.conn = parent

    def stop(self) -> None:
        if self.proc is not None:
            self.conn.send(None)
            self.proc.join()
            self.proc = None

    def run(self, schema, tests, encoded, eos: int, stats, limit_s: float) -> str:
        """The schema's outcome; its figures are merged into ``stats``."""
        if self.proc is None:
            self._start()
        self.conn.send((schema, tests, encoded, eos))
        if not self.conn.poll(limit_s):
            self.proc.kill()
            self.proc.join()
            self.proc = None
            stats["errors"] += 1
            stats["timeouts"] += 1
            return "error"
        outcome, local = self.conn.recv()
        if self.mode != "serving":
            self.stop()
        for key, value in local.items():
            stats[key] += value
        return outcome


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizers", nargs="+", default=["smollm2", "tekken"])
    ap.add_argument("--limit", type=int, default=20, help="schemas per subset")
    ap.add_argument("--subsets", nargs="+")
    ap.add_argument("--engines", nargs="+")
    ap.add_argument("--children", choices=("cold", "warm", "serving"), default="cold", help="how schemas meet processes (see above)")
    ap.add_argument("--time-limit", type=float, default=60.0, help="seconds per schema (compile + instances) before a kill")
    args = ap.parse_args()
    subsets = args.subsets or bench_subsets()
    for tok in args.tokenizers:
        case = load_case(tok)
        engines = [e for e in make_engines(case.vocab, case.encode, args.engines) if hasattr(e, "compile_json")]
        eos = case.vocab.eos_token_ids[0]
        warm_ids = case.encode(serialise(WARM_UP_INSTANCE))
        print(f"## {tok} ({case.vocab.n_tokens} tokens), limit {args.limit} schemas per subset"
              + f", {args.children} children")
        print(f"{'subset':16s} {'engine':14s} {'schemas':>7s} {'covered':>8s} {'errors':>6s} {'FA':>4s} {'FR':>4s}"
              f" {'compile p50':>11s} {'p90':>8s} {'p99':>8s} {'max':>8s}  {'mask p50':>8s} {'p99':>8s} {'p99.9':>8s}")
        totals = {e.name: collections.defaultdict(list) for e in engines}
        for subset in subsets:
            cases = list(bench_cases(subset, args.limit))
            encoded = [[case.encode(serialise(inst)) for inst, _ in tests] for _, _, tests in cases]
            for engine in engines:
                stats = collections.defaultdict(list)
                stats.update({"errors": 0, "false accepts": 0, "false rejects": 0, "timeouts": 0})
                covered = 0
                worker = Worker(engine, args.children, warm_ids)
                for (sid, schema, tests), enc in zip(cases, encoded):
                    covered += worker.run(schema, tests, enc, eos, stats, args.time_limit) == "covered"
                worker.stop()
                c, m = stats["compile"], stats["mask"]
                print(f"{subset:16s} {engine.name:14s} {len(cases):7d} {covered:8d} {stats['errors']:6d} {stats['false accepts']:4d} {stats['false rejects']:4d}"
                      f" {pct(c, 50):9.1f}ms {pct(c, 90):6.1f}ms {pct(c, 99):6.0f}ms {max(c) if c else float('nan'):6.0f}ms"
                      f"  {pct(m, 50):6.1f}us {pct(m, 99):6.0f}us {pct(m, 99.9):6.0f}us")
                t = totals[engine.name]
                t["compile"] += c
                t["mask"] += m
                t["covered"].append(covered)
                t["schemas"].append(len(cases))
                t["fa"].append(stats["false accepts"])
        print(f"summary ({tok})")
        ref = totals.get("structgen")
        for name, t in totals.items():
            c, m = t["compile"], t["mask"]
            ratio_c = pct(c, 50) / pct(ref["compile"], 50) if ref else float("nan")
            ratio_m = pct(m, 50) / pct(ref["mask"], 50) if ref else float("nan")
            print(f"{'ALL':16s} {name:14s} {sum(t['schemas']):7d} {sum(t['covered']):8d} {'':6s} {sum(t['fa']):4d} {'':4s}"
                  f" {pct(c, 50):9.1f}ms {pct(c, 90):6.1f}ms {pct(c, 99):6.0f}ms {max(c) if c else float('nan'):6.0f}ms"
                  f"  {pct(m, 50):6.1f}us {pct(m, 99):6.0f}us {pct(m, 99.9):6.0f}us   compile p50 x{ratio_c:.2f}  mask p50 x{ratio_m:.2f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
