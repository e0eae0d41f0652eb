"""The ``structgen`` command line."""

from __future__ import annotations

import argparse
import json
import sys
import time


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="structgen", description="Constrained generation with LLMs.")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate text that satisfies a constraint")
    which = gen.add_mutually_exclusive_group(required=True)
    which.add_argument("--regex", help="the output must fully match this regular expression")
    which.add_argument("--choices", nargs="+", metavar="CHOICE", help="the output is one of these strings")
    which.add_argument("--grammar", metavar="FILE", help="a grammar file: Lark, or GBNF if it ends in .gbnf")
    which.add_argument("--schema", metavar="JSON_OR_FILE", help="a JSON Schema: JSON text, or a file holding one")
    which.add_argument("--free", action="store_true", help="no constraint (for comparison)")
    gen.add_argument("--prompt", required=True)
    gen.add_argument("--model", help="a GGUF file or transformers folder (default: SmolLM2-135M-Instruct)")
    gen.add_argument("--max-new-tokens", type=int, default=64)
    gen.add_argument("--temperature", type=float, default=1.0, help="0 for greedy decoding")
    gen.add_argument("--top-k", type=int)
    gen.add_argument("--top-p", type=float)
    gen.add_argument("--seed", type=int)
    gen.add_argument("--raw", action="store_true", help="do not apply the chat template to the prompt")
    gen.add_argument("--speculative", action="store_true", help="draft forced text and n-grams, verified by the model (same output, fewer forward passes)")
    gen.add_argument("--json", action="store_true", help="print a JSON object with the whole result")
    srv = sub.add_parser("serve", help="an OpenAI-compatible server (/v1/chat/completions, /v1/completions, /v1/models)")
    srv.add_argument("--model", help="a GGUF file or transformers folder (default: SmolLM2-135M-Instruct)")
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument("--max-batch", type=int, default=16, help="rows decoded together")
    srv.add_argument("--default-max-tokens", type=int, default=256, help="max_tokens when a request gives none")
    return parser


def _read_schema(text: str):
    """A JSON Schema from JSON text or from a file name."""
    if text.lstrip().startswith(("{", "true", "false")):
        return json.loads(text)
    with open(text, encoding="utf-8") as f:
        return json.load(f)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        from .serving import serve

        serve(args.host, args.port, model_path=args.model, max_batch=args.max_batch, default_max_tokens=args.default_max_tokens)
        return 0
    from .errors import StructgenError
    from .generation.decode import generate
    from .generation.models import load_model

    started = time.perf_counter()
    try:  # report a bad constraint before spending seconds on the model
        if args.regex is not None:
            from .automata.byte_dfa import ByteDFA

            ByteDFA.from_regex(args.regex)
        if args.grammar is not None:
            from .grammar.gbnf import parse_gbnf
            from .grammar.lark_frontend import lark_to_ir

            with open(args.grammar, encoding="utf-8") as f:
                text = f.read()
            if args.grammar.endswith(".gbnf"):
                parse_gbnf(text, args.grammar)
            else:
                lark_to_ir(text, source=args.grammar)
        if args.schema is not None:
            from .json_schema import schema_to_grammar

            args.schema = _read_schema(args.schema)
            schema_to_grammar(args.schema)
    except (StructgenError, OSError, ValueError) as exc:
        print(f"structgen: error: {exc}", file=sys.stderr)
        return 2
    model, tokenizer = load_model(args.model)
    try:
        constraint = None
        if args.grammar is not None:
            from .compiler import compile_grammar_file
            from .generation.decode import vocabulary_for

            constraint = compile_grammar_file(args.grammar, vocabulary_for(model, tokenizer))
        result = generate(
            args.prompt,
            regex=args.regex,
            choices=args.choices,
            schema=args.schema,
            constraint=constraint,
            model=model,
            tokenizer=tokenizer,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            seed=args.seed,
            chat_template=not args.raw,
            speculative=args.speculative,
        )
    except StructgenError as exc:
        print(f"structgen: error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        out = result.to_dict()
        out["seconds"] = round(time.perf_counter() - started, 3)
        print(json.dumps(out, ensure_ascii=False))
    else:
        print(result.text)
    return 0 if result.completed or args.free else 1


if __name__ == "__main__":
    sys.exit(main())
