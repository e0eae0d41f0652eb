"""Loaders for the JSON Schema reference data in ../shared/data and the check every
conformance test runs: serialise an instance, tokenize it, feed the tokens to a matcher."""

from __future__ import annotations

import glob
import json
import os

from tokenizer_cases import SHARED_DATA

SUITE_DIR = os.path.join(SHARED_DATA, "json-schema-test-suite")
BENCH_DIR = os.path.join(SHARED_DATA, "jsonschemabench")
BENCH_TESTS_DIR = os.path.join(SHARED_DATA, "jsonschemabench-tests")


def suite_files(draft: str) -> list[str]:
    """The suite's test files for ``draft`` (``draft2020-12`` or ``draft7``), optional/format included."""
    base = os.path.join(SUITE_DIR, draft)
    files = sorted(glob.glob(os.path.join(base, "*.json")))
    files += sorted(glob.glob(os.path.join(base, "optional", "format", "*.json")))
    return files


def suite_cases(path: str, draft: str):
    """(description, schema, [(instance, valid)]) per test group of a suite file; the schema
    gets the draft's ``$schema`` when it declares none."""
    uri = {"draft2020-12": "https://json-schema.org/draft/2020-12/schema", "draft7": "http://json-schema.org/draft-07/schema#"}[draft]
    with open(path, encoding="utf-8") as f:
        groups = json.load(f)
    for group in groups:
        schema = group["schema"]
        if isinstance(schema, dict) and "$schema" not in schema:
            schema = {"$schema": uri, **schema}
        yield group["description"], schema, [(t["data"], t["valid"]) for t in group["tests"]]


def bench_subsets() -> list[str]:
    return sorted(os.path.basename(p)[:-6] for p in glob.glob(os.path.join(BENCH_TESTS_DIR, "*.jsonl")))


def bench_cases(subset: str, limit: int | None = None):
    """(id, schema, [(instance, valid)]) for the schemas of a JSONSchemaBench subset that have tests."""
    schemas = {}
    with open(os.path.join(BENCH_DIR, f"{subset}.jsonl"), encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            schemas[row["id"]] = row["schema"]
    count = 0
    with open(os.path.join(BENCH_TESTS_DIR, f"{subset}.jsonl"), encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            schema = schemas.get(row["id"])
            if schema is None:
                continue
            if isinstance(schema, str):
                schema = json.loads(schema)
            yield row["id"], schema, [(t["data"], t["valid"]) for t in row["tests"]]
            count += 1
            if limit is not None and count >= limit:
                return


def serialise(instance, pretty: bool = False) -> str:
    if pretty:
        return json.dumps(instance, indent=2)
    return json.dumps(instance, separators=(",", ":"))


def matcher_accepts(constraint, token_ids: list[int]) -> bool:
    """True when the matcher takes every token and can then terminate."""
    m = constraint.matcher()
    for t in token_ids:
        if not m.accept_token(t):
            return False
    return m.can_terminate()
