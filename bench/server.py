"""The OpenAI-compatible server under load: requests/s, completion tokens/s and p50 / p99
latency for 1, 4 and 16 concurrent clients, JSON-schema-constrained vs unconstrained, on the
default model. The server runs as its own process (``structgen serve``); clients are threads
sending chat completions over loopback HTTP. Constrained outputs are checked with the
``jsonschema`` validator; unconstrained ones are checked the same way, for comparison.
"ended": outputs that finished before ``max_tokens`` (the others are cut, hence invalid JSON).

    .venv/bin/python bench/server.py [--concurrency 1 4 16] [--requests-per-client 2] [--max-tokens 48]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys
import time

sys.path = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import httpx  # noqa: E402
import jsonschema  # noqa: E402

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 30},
        "age": {"type": "integer", "minimum": 0, "maximum": 120},
        "city": {"type": "string", "maxLength": 30},
    },
    "required": ["name", "age", "city"],
    "additionalProperties": False,
}
PROMPT = "Invent person number {i}: reply with a JSON object with name, age and city."


def start_server(port: int, max_batch: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "structgen", "serve", "--port", str(port), "--max-batch", str(max_batch)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {proc.stderr.read()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the server did not start in 300 s")


def one_request(client: httpx.Client, url: str, model: str, i: int, constrained: bool, max_tokens: int) -> dict:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT.format(i=i)}],
        "max_tokens": max_tokens,
        "temperature": 0.7,
        "seed": i,
    }
    if constrained:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}}
    started = time.perf_counter()
    r = client.post(url, json=body, timeout=600)
    seconds = time.perf_counter() - started
    r.raise_for_status()
    out = r.json()
    text = out["choices"][0]["message"]["content"] or ""
    try:
        valid = jsonschema.Draft202012Validator(PERSON).is_valid(json.loads(text))
    except ValueError:
        valid = False
    done = out["choices"][0]["finish_reason"] == "stop"
    return {"seconds": seconds, "tokens": out["usage"]["completion_tokens"], "valid": valid, "done": done}


def run_level(url: str, model: str, concurrency: int, requests: int, constrained: bool, max_tokens: int, offset: int) -> dict:
    with httpx.Client() as client, concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        started = time.perf_counter()
        results = list(pool.map(lambda i: one_request(client, url, model, offset + i, constrained, max_tokens), range(requests)))
        wall = time.perf_counter() - started
    latencies = sorted(r["seconds"] for r in results)
    tokens = sum(r["tokens"] for r in results)
    return {
        "requests": requests,
        "rps": requests / wall,
        "tok_s": tokens / wall,
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))],
        "tokens": tokens / requests,
        "valid": sum(r["valid"] for r in results),
        "done": sum(r["done"] for r in results),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests-per-client", type=int, default=2)
    parser.add_argument("--min-requests", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--port", type=int, default=8731)
    parser.add_argument("--max-batch", type=int, default=16)
    args = parser.parse_args()

    proc = start_server(args.port, args.max_batch)
    try:
        base = f"http://127.0.0.1:{args.port}/v1"
        model = httpx.get(base + "/models", timeout=10).json()["data"][0]["id"]
        url = base + "/chat/completions"
        one_request(httpx.Client(), url, model, -1, True, 8)  # warm-up: compile the schema, first batch
        one_request(httpx.Client(), url, model, -1, False, 8)
        print(f"# model {model}, max_tokens {args.max_tokens}, temperature 0.7, server max batch {args.max_batch}, "
              f"{os.cpu_count()} CPUs; configs interleaved per concurrency level")
        print(f"{'clients':>7} {'mode':<13} {'requests':>8} {'req/s':>7} {'tok/s':>7} {'p50 s':>7} {'p99 s':>7} "
              f"{'tok/req':>7} {'ended':>7} {'valid':>7} {'req/s ratio':>11} {'tok/s ratio':>11}")
        offset = 0
        for c in args.concurrency:
            n = max(args.min_requests, c * args.requests_per_client)
            rows = {}
            for constrained in (True, False):
                rows[constrained] = run_level(url, model, c, n, constrained, args.max_tokens, offset)
                offset += n
            for constrained in (True, False):
                r = rows[constrained]
                ratio = r["rps"] / rows[False]["rps"]
                tok_ratio = r["tok_s"] / rows[False]["tok_s"]
                print(f"{c:>7} {'json schema' if constrained else 'unconstrained':<13} {r['requests']:>8} {r['rps']:>7.2f} "
                      f"{r['tok_s']:>7.1f} {r['p50']:>7.2f} {r['p99']:>7.2f} {r['tokens']:>7.1f} "
                      f"{r['done']:>3}/{r['requests']:<3} {r['valid']:>3}/{r['requests']:<3} {ratio:>10.2f}x {tok_ratio:>10.2f}x", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
