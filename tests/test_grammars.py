"""Context-free constraints (Lark and GBNF), checked against references: lark's own Earley
parser (``lexer="dynamic_complete"``) on sampled sentences and their mutations, brute-force
masks (every token's bytes pushed through the matcher) on real tokenizers, and hand-written
accepted / rejected strings for llama.cpp's GBNF grammars."""

from __future__ import annotations

import glob
import os
import random
import re
import warnings

import lark
import numpy as np
import pytest

from conftest import load_case
from grammar_sampling import SentenceSampler, mutations
from structgen import (
    GrammarConstraint,
    GrammarError,
    RegularConstraint,
    Vocabulary,
    compile_gbnf,
    compile_grammar,
    compile_grammar_file,
)
from structgen.automata.bitmask import words_to_ids
from structgen.automata import lexer as lexer_module
from structgen.automata import lr as lr_module
from structgen.automata import token_slices
from structgen.constraints import grammar as grammar_module
from structgen.grammar.ir import GrammarWarning
from tokenizer_cases import REPO, SHARED_DATA

GRAMMARS = sorted(glob.glob(os.path.join(REPO, "grammars", "*.lark")))
GBNF_DIR = os.path.join(SHARED_DATA, "gbnf")
LARK_DIR = os.path.join(SHARED_DATA, "lark")
BYTES = Vocabulary([bytes([i]) for i in range(256)] + [b"<eos>"], special_ids=[256], eos_token_ids=[256])
ALPHABET = b" ()[]{},.:;\"'<>/=-+*_0123abcxyzSELECTFROM\n"


def accepts(constraint, data: bytes) -> bool:
    state = constraint.advance_bytes(constraint.initial_state, data)
    return state is not None and constraint.is_accepting(state)


def lark_reference(path: str) -> lark.Lark:
    with open(path, encoding="utf-8") as f:
        return lark.Lark(f.read(), parser="earley", lexer="dynamic_complete", import_paths=[os.path.dirname(path)])


def lark_accepts(parser: lark.Lark, data: bytes) -> bool:
    try:
        parser.parse(data.decode("utf-8"))
        return True
    except (lark.exceptions.LarkError, UnicodeDecodeError):
        return False


def differential(path: str, sentences: int, mutants: int, seed: int = 0, lalr: bool = True) -> None:
    constraint = compile_grammar_file(path, BYTES, lalr=lalr)
    reference = lark_reference(path)
    sampler = SentenceSampler(constraint.bnf, seed=seed)
    rng = random.Random(seed)
    for _ in range(sentences):
        sentence = sampler.sentence(5)
        assert lark_accepts(reference, sentence), f"lark refuses sampled {sentence!r}"
        assert accepts(constraint, sentence), f"structgen refuses sampled {sentence!r}"
        for m in mutations(sentence, rng, ALPHABET, mutants):
            assert accepts(constraint, m) == lark_accepts(reference, m), f"disagreement on {m!r}"


@pytest.mark.parametrize("parser", ["lalr", "earley"])
@pytest.mark.parametrize("path", GRAMMARS, ids=os.path.basename)
def test_shipped_grammars_agree_with_lark(path, parser):
    differential(path, sentences=25, mutants=6, lalr=parser == "lalr")


AMBIGUOUS = 'start: e\ne: e "+" e | e "*" e | "(" e ")" | NUM\nNUM: /[0-9]+/\n%ignore " "\n'


def test_parser_choice_lalr_where_tables_exist_earley_elsewhere():
    """Every shipped grammar has conflict-free LALR(1) tables and parses with them; an
    ambiguous grammar has none and parses with the Earley parser, still exactly."""
    for path in GRAMMARS:
        assert compile_grammar_file(path, BYTES).parser_kind == "lalr", path
    constraint = compile_grammar(AMBIGUOUS, BYTES)
    assert constraint.parser_kind == "earley"
    reference = lark.Lark(AMBIGUOUS, parser="earley", lexer="dynamic_complete")
    rng = random.Random(3)
    sampler = SentenceSampler(constraint.bnf, seed=3)
    for _ in range(40):
        sentence = sampler.sentence(6)
        assert accepts(constraint, sentence) and lark_accepts(reference, sentence), sentence
        for m in mutations(sentence, rng, b"0123+*() ", 6):
            assert accepts(constraint, m) == lark_accepts(reference, m), m


def _shared_lark_files() -> list[str]:
    if not os.path.isdir(LARK_DIR):
        pytest.skip(f"no shared Lark corpus at {LARK_DIR}")
    return sorted(glob.glob(os.path.join(LARK_DIR, "**", "*.lark"), recursive=True))


def test_shared_lark_corpus_agrees_with_lark_or_errors_clearly():
    """Every Lark file of the shared corpus either compiles and agrees with lark, or is
    refused with a GrammarError that says why (no start rule, lookaround, %declare)."""
    compiled = 0
    for path in _shared_lark_files():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", GrammarWarning)
            try:
                compile_grammar_file(path, BYTES)
            except GrammarError as exc:
                assert str(exc), path
                continue
        differential(path, sentences=5, mutants=3, seed=1)
        compiled += 1
    assert compiled >= 20


@pytest.mark.parametrize("path", GRAMMARS + sorted(glob.glob(os.path.join(GBNF_DIR, "*.gbnf"))), ids=os.path.basename)
def test_terminal_follow_sets_cover_every_derivation(path):
    """The masks skip a lexeme boundary when nothing that may follow its terminal begins with
    the next byte; so every adjacent pair of terminals in a derivation must be in the
    follow sets (checked on 400 random derivations)."""
    text = open(path, encoding="utf-8").read()
    constraint = compile_gbnf(text, BYTES) if path.endswith(".gbnf") else compile_grammar(text, BYTES)
    if not isinstance(constraint, GrammarConstraint):
        pytest.skip("regular grammar: no parser")
    follow = constraint.earley.terminal_follow()
    sampler = SentenceSampler(constraint.bnf, seed=3)
    pairs = 0
    for _ in range(400):
        seq = sampler.terminal_sequence()
        for a, b in zip(seq, seq[1:]):
            assert (follow[a] >> b) & 1, (constraint.bnf.terminal_names[a], constraint.bnf.terminal_names[b])
            pairs += 1
    assert pairs > 0


@pytest.mark.parametrize("path", GRAMMARS, ids=os.path.basename)
def test_lexer_representatives_behave_alike(path):
    """Under random sets of allowed terminals, a state and its representative accept and keep
    alive the same allowed terminals after every byte string (checked by exploring all pairs
    of states reachable together), and states not merged differ somewhere."""
    lexer = compile_grammar(open(path, encoding="utf-8").read(), BYTES).lexer
    rng = random.Random(5)
    n_terms = lexer.n_terminals
    for _ in range(4):
        allowed = rng.getrandbits(n_terms) | (1 << rng.randrange(n_terms))
        reps = lexer.representatives(allowed).tolist()

        def view(q):  # what a state shows under the allowed terminals (None: dead)
            if q < 0 or not (lexer.live_int(q) & allowed):
                return None
            return (lexer.live_int(q) & allowed, lexer.accepts_int(q) & allowed)

        def alike(a, b):
            seen, todo = {(a, b)}, [(a, b)]
            while todo:
                x, y = todo.pop()
                if view(x) != view(y):
                    return False
                if view(x) is None:
                    continue
                for byte in range(256):
                    pair = (int(lexer.transitions[x, byte]), int(lexer.transitions[y, byte]))
                    if pair not in seen:
                        seen.add(pair)
                        todo.append(pair)
            return True

        for q in range(1, lexer.n_states):
            if reps[q] >= 0:
                assert alike(q, reps[q]), (q, reps[q])
            else:
                assert view(q) is None
        distinct = sorted({r for r in reps[1:] if r >= 0})
        for a, b in zip(distinct, distinct[1:]):
            assert not alike(a, b), (a, b)


# ---- masks against brute force on real tokenizers ------------------------------------------
@pytest.mark.parametrize("path", GRAMMARS[:3], ids=os.path.basename)
def test_lexer_horizon_classes_are_depth_bounded_equivalence(path):
    """Two lexer states share a horizon class for depth ``d`` exactly when every byte string
    of at most ``d`` bytes leads both to states with the same live and accepted terminals
    (checked by exploring pairs of states reached together)."""
    lexer = compile_grammar(open(path, encoding="utf-8").read(), BYTES).lexer
    depth = 2
    classes = lexer.horizon_classes(depth).tolist()

    def view(q):
        return None if q < 0 else (lexer.live_int(q), lexer.accepts_int(q), q == 0)

    def alike(a, b):
        todo, seen = [(a, b, 0)], set()
        while todo:
            x, y, d = todo.pop()
            if view(x) != view(y):
                return False
            if x < 0 or d == depth or (x, y, d) in seen:
                continue
            seen.add((x, y, d))
            for byte in range(256):
                todo.append((int(lexer.transitions[x, byte]), int(lexer.transitions[y, byte]), d + 1))
        return True

    states = range(min(lexer.n_states, 40))
    for a in states:
        for b in states:
            if a < b:
                assert (classes[a] == classes[b]) == alike(a, b), (a, b)


def brute_force_mask(constraint, state) -> list[int]:
    vocab = constraint.vocab
    ids = [t for t in vocab.maskable_ids.tolist() if constraint.advance(state, t) is not None]
    if constraint.is_accepting(state):
        ids.extend(vocab.eos_token_ids)
    return sorted(set(ids))


MASK_CASES = [
    ("json.lark", None, b'{"key": [1, -2.5e3, {"x": "a\\"b"}], "t": true}'),
    ("sql_select.lark", None, b"SELECT a.id, COUNT(*) FROM users AS a LEFT JOIN t ON a.id = t.uid WHERE x >= 3 LIMIT 5;"),
    ("json.gbnf", "gbnf", b'{"a": [1, {"b": "c\\n"}], "d": null}'),
]
# grammars whose lexemes can end almost anywhere (names next to keywords, free text, fields):
# many boundaries inside tokens, and lexeme parts reused under other parses
MORE_MASK_CASES = [
    ("python_expr.lark", None, b"sorted([x ** 2 if x > 0 else -x, f(a, key=b.c[1])], reverse=True) and not None"),
    ("xml.lark", None, b'<note id="7"><to>Tove</to><!-- c --><body>Don\'t <b>this</b> weekend!</body></note>'),
    ("csv.lark", None, b'name,age\n"Smith, Jane",42\nBob,,"New ""York"""\n'),
    ("arithmetic.lark", None, b"(3.5 + x_1) * 2 ^ (y - 4) / -(z + 10.25) - 7"),
    ("function_call.lark", None, b'search(query="a b", limit=10, filters=["pdf"], exact=False)'),
]


@pytest.mark.parametrize(
    "tokenizer,name,kind,text",
    [(tok, *case) for tok in ("smollm2", "tekken") for case in MASK_CASES] + [("smollm2", *case) for case in MORE_MASK_CASES],
    ids=lambda v: v if isinstance(v, str) and not v.startswith(("b'", 'b"')) else None,
)
def test_masks_equal_brute_force(tokenizer, name, kind, text):
    vocab = load_case(tokenizer).vocab
    path = os.path.join(GBNF_DIR if kind == "gbnf" else os.path.join(REPO, "grammars"), name)
    constraint = compile_grammar_file(path, vocab)
    assert isinstance(constraint, GrammarConstraint)
    rng = random.Random(len(text))
    cuts = sorted({0, len(text), *rng.sample(range(1, len(text)), 6)})
    for cut in cuts:
        state = constraint.advance_bytes(constraint.initial_state, text[:cut])
        assert state is not None
        fast = words_to_ids(constraint.mask_words(state), vocab.logits_width).tolist()
        assert fast == brute_force_mask(constraint, state), f"prefix {text[:cut]!r}"


def test_masks_equal_brute_force_when_parser_rows_run_out(monkeypatch):
    """LR stacks are rows the kernels add while they walk (see lr_kernels). With a table of
    one row and one spare row a walk, steps run out of rows mid-walk, mid-reduction and
    mid-growth (the walk asks the caller, which grows the table and walks again): masks at
    every cut still equal the brute-force ones, and the table did grow many times."""
    monkeypatch.setattr(lr_module, "INITIAL_ROWS", 1)
    monkeypatch.setattr(lr_module, "STEP_ROOM", 1)
    monkeypatch.setattr(grammar_module, "SPARE_ROWS", 1)
    vocab = load_case("smollm2").vocab
    constraint = compile_grammar_file(os.path.join(REPO, "grammars", "python_expr.lark"), vocab)
    text = MORE_MASK_CASES[0][2]
    for cut in range(0, len(text) + 1, 3):
        state = constraint.advance_bytes(constraint.initial_state, text[:cut])
        fast = words_to_ids(constraint.mask_words(state), vocab.logits_width).tolist()
        assert fast == brute_force_mask(constraint, state), f"prefix {text[:cut]!r}"
    assert constraint._lr.version > 8


# quoted text with multi-byte characters, escapes and doubled quotes: lexeme walks inside it
# skip the closed slice of the landing state's component (see token_slices.closed_slice)
CLOSED_SLICE_CASES = [
    ("csv.lark", 'name,city\n"Müller, Zoë","Zürich ""Süd"" 中文"\n'),
    ("json.lark", '{"café": ["naïve \\u00e9 \\"ok\\"", "日本語のテキスト"], "x": "é"}'),
    ("function_call.lark", 'f(a="ünïcödé \\" text", b=["ß", "€"])'),
]


@pytest.mark.parametrize("name,text", CLOSED_SLICE_CASES, ids=[c[0] for c in CLOSED_SLICE_CASES])
def test_closed_slice_walks_equal_brute_force(name, text, monkeypatch):
    """With Tekken (a third of its tokens hold non-ASCII bytes) and slices built on first
    request, masks at every cut inside quoted text equal the brute-force ones."""
    monkeypatch.setattr(token_slices, "BUILD_ON_REQUEST", 1)
    vocab = load_case("tekken").vocab
    constraint = compile_grammar_file(os.path.join(REPO, "grammars", name), vocab)
    data = text.encode()
    quote = data.index(b'"')
    for cut in range(quote + 1, len(data), 3):
        state = constraint.advance_bytes(constraint.initial_state, data[:cut])
        assert state is not None, data[:cut]
        fast = words_to_ids(constraint.mask_words(state), vocab.logits_width).tolist()
        assert fast == brute_force_mask(constraint, state), f"prefix {data[:cut]!r}"


# strings whose length is counted share the lexer's states with keys that begin the same
# way and with a hex pattern: every position of a value is its own lexer state; a bare
# word's chain ends where it may end, not where longer tokens die
COUNTED = r"""
start: "{" pair ("," pair)* "}"
pair: KEY ":" value
value: TEXT | HEX | NAME | WORD
KEY: /"(id|idle|name|note)"/
WORD: /[a-zA-Z0-9]{6,20}/
TEXT: /"[^"\\]{0,40}"/
HEX: /"[0-9a-f]{6}-[0-9a-f]{4}"/
NAME: /"[A-Za-z ]{2,30}"/
"""


@pytest.mark.parametrize("merged", [True, False], ids=["merged", "unmerged"])
def test_counted_string_walks_equal_brute_force(merged, monkeypatch):
    """Inside strings whose length is counted (a chain of lexer states, one per position;
    see token_slices.byte_chain), on SmolLM2 with slices built on first request: masks at
    every cut equal the brute-force ones, and the walks did go through chains."""
    monkeypatch.setattr(token_slices, "BUILD_ON_REQUEST", 1)
    if not merged:
        monkeypatch.setattr(lexer_module, "MERGE_STATES_LIMIT", 0)
    vocab = load_case("smollm2").vocab
    constraint = compile_grammar(COUNTED, vocab)
    data = b'{"idle":"abc123-ffff","name":"Ada Lovelace","note":"x\'s 39 chars of plain text here, ok","id":"0a","id":abcdefghijklmnopq}'
    chained = 0
    for cut in range(2, len(data)):
        state = constraint.advance_bytes(constraint.initial_state, data[:cut])
        assert state is not None, data[:cut]
        fast = words_to_ids(constraint.mask_words(state), vocab.logits_width).tolist()
        assert fast == brute_force_mask(constraint, state), f"prefix {data[:cut]!r}"
        chained += sum(constraint._chain(q, node.allowed)[1] > 0 for q, node in state if q != 0)
    assert chained > 20


@pytest.mark.parametrize("merged", [True, False], ids=["merged", "unmerged"])
@pytest.mark.parametrize("path", GRAMMARS + sorted(glob.glob(os.path.join(GBNF_DIR, "*.gbnf"))), ids=os.path.basename)
def test_masks_equal_brute_force_at_every_prefix(path, merged, monkeypatch):
    """Every prefix of sampled sentences, on a vocabulary of all bytes plus 1,500 pieces of
    other sampled sentences (so tokens cross lexeme boundaries, end mid-lexeme, hold several
    lexemes): the mask equals the brute-force one. Masks are computed along the sentences on
    one compiled grammar, so cached lexeme parts are reused under other parses. Unmerged:
    lexer states are not merged per allowed-terminal set, as for lexers too large to merge."""
    if not merged:
        monkeypatch.setattr(lexer_module, "MERGE_STATES_LIMIT", 0)
    _check_masks_at_every_prefix(open(path, encoding="utf-8").read(), gbnf=path.endswith(".gbnf"), name=os.path.basename(path))


# runs of one terminal after another node (TEXT TEXT), terminals sharing prefixes with the
# run's terminal, and ignored whitespace between them: where a boundary into another parser
# node may or may not be simulated by the lexeme walk itself
# right recursion in several contexts: runs of prefix operators that end in different places
CHAINS = r"""
start: e ";" | "(" e ")" | "[" f "]" | "{" e "}" e | "<" e | "<" e "z" | "^" e "z" | "^" e | "<<" e "z" | ">" f
e: "-" e | "!" f | atom
f: "-" f | atom "+" e | atom | "~" f "~"
atom: "x" | "(" e ")"
"""


@pytest.mark.parametrize("parser", ["lalr", "earley"])
def test_prefix_operator_runs_stay_one_parse_node_and_agree_with_lark(parser):
    """A run of prefix operators (``e: "-" e``) is one parse node however long: an Earley
    item whose last symbol is next is keyed by where its completion leads, not by its
    origin; an LR state that only such items reach is pushed once. The matcher still
    agrees with lark's parser on sampled sentences, their mutations and long runs spliced
    in anywhere."""
    constraint = compile_grammar(CHAINS, BYTES, lalr=parser == "lalr")
    assert constraint.parser_kind == parser
    reference = lark.Lark(CHAINS, parser="earley", lexer="dynamic_complete")
    opened = constraint.advance_bytes(constraint.initial_state, b"(")
    assert constraint.advance_bytes(opened, b"--") == constraint.advance_bytes(opened, b"-" * 60)
    sampler = SentenceSampler(constraint.bnf, seed=5)
    rng = random.Random(5)
    checked = 0
    for _ in range(150):
        sentence = sampler.sentence(7)
        assert accepts(constraint, sentence) and lark_accepts(reference, sentence), sentence
        variants = mutations(sentence, rng, b"-!~x+()[]{}<>^z;", 10)
        for _ in range(10):
            i = rng.randrange(len(sentence) + 1)
            variants.append(sentence[:i] + rng.choice([b"-", b"!", b"~"]) * rng.randint(2, 40) + sentence[i:])
        for data in variants:
            ours = accepts(constraint, data)
            assert ours == lark_accepts(reference, data), data
            checked += ours
    assert checked > 300  # enough accepted variants for the runs to matter
    # every context against every other: one run, then the ways it may end
    for context in (b"", b"(", b"[", b"{x}", b"<", b"^", b"<<", b">", b"{-x}", b"[x+"):
        for run in (b"-", b"--", b"---", b"-" * 9, b"!", b"!-", b"-!-"):
            for tail in (b"x", b"x;", b"x)", b"x]", b"xz", b"xz]", b"x+x]", b"x)z", b"x}x", b"~x~]", b"x+-x]", b"(x))"):
                data = context + run + tail
                assert accepts(constraint, data) == lark_accepts(reference, data), data


INDIRECT_RUNS = 'start: f ";" | "(" f ")" | "<" f "+" f | f "*" "*"\nf: u | ATOM | "[" f "]"\nu: "-" f\nATOM: /[a-z]+/\n'


def test_indirect_prefix_runs_stay_one_stack_and_agree_with_lark():
    """``u: "-" f`` with ``f: u``: a run of ``-`` pushes one LR state again and again, and
    completing ``f`` above it reduces ``u`` and then ``f`` back to where the next ``-``
    completes; the run is one stack however long, and the matcher agrees with lark on runs
    in every context."""
    constraint = compile_grammar(INDIRECT_RUNS, BYTES)
    assert constraint.parser_kind == "lalr"
    reference = lark.Lark(INDIRECT_RUNS, parser="earley", lexer="dynamic_complete")
    opened = constraint.advance_bytes(constraint.initial_state, b"(")
    assert constraint.advance_bytes(opened, b"--") == constraint.advance_bytes(opened, b"-" * 50)
    for context in (b"", b"(", b"[", b"<", b"<x+", b"(-[", b"<[-x]+"):
        for run in (b"-", b"--", b"-" * 7, b"-[-", b"--[--"):
            for tail in (b"x", b"x;", b"x)", b"x]", b"x]]", b"x*;", b"x*)", b"x**", b"x]**", b"x+x", b"x]+-y", b"x]);"):
                data = context + run + tail
                assert accepts(constraint, data) == lark_accepts(reference, data), data


RUN_GRAMMARS = {
    "indirect_prefix_runs": INDIRECT_RUNS,
    "text_runs": 'start: "<" (TEXT | TAG)+ (TEXT | TAG)+ ">"\nTEXT: /[a-z ]+/\nTAG: "<" /[a-z]+/ ">"\n',
    "shared_prefixes": 'start: (WORD | HEX)+ "."\nWORD: /[a-z]+/\nHEX: /[0-9a-f]+h/\n',
    "ignored_between": 'start: item+ ";"\nitem: WORD | "(" WORD ")"\nWORD: /[a-z]+/\n%ignore " "\n',
    "keyword_after_name": 'start: (NAME | "and" | "or") (NAME | "and" | "or")+\nNAME: /[a-z]+/\n',
    "prefix_operator_chains": CHAINS,
}


@pytest.mark.parametrize("merged", [True, False], ids=["merged", "unmerged"])
@pytest.mark.parametrize("name", sorted(RUN_GRAMMARS))
def test_masks_equal_brute_force_on_runs(name, merged, monkeypatch):
    if not merged:
        monkeypatch.setattr(lexer_module, "MERGE_STATES_LIMIT", 0)
    _check_masks_at_every_prefix(RUN_GRAMMARS[name], gbnf=False, name=name, first=44)


def _check_masks_at_every_prefix(text: str, gbnf: bool, name: str, first: int = 20) -> None:
    probe = compile_gbnf(text, BYTES) if gbnf else compile_grammar(text, BYTES)
    if not isinstance(probe, GrammarConstraint):
        pytest.skip("regular grammar: no parser")
    sampler = SentenceSampler(probe.bnf, seed=11)
    rng = random.Random(11)
    corpus = [sampler.sentence(max_depth=8) for _ in range(60)]
    pieces = set()
    for _ in range(100_000):  # 1,500 pieces, or as many as short sentences have
        if len(pieces) == 1500:
            break
        s = rng.choice(corpus)
        if len(s) >= 2:
            i = rng.randrange(len(s) - 1)
            pieces.add(s[i : i + rng.randint(2, 8)])
    vocab = Vocabulary([bytes([i]) for i in range(256)] + sorted(pieces) + [b"<eos>"], special_ids=[256 + len(pieces)], eos_token_ids=[256 + len(pieces)])
    constraint = compile_gbnf(text, vocab) if gbnf else compile_grammar(text, vocab)
    checked = 0
    for sentence in sorted(corpus, key=len)[first : first + 8]:  # eight of middling length (or longer)
        state = constraint.initial_state
        for cut in range(len(sentence) + 1):
            fast = words_to_ids(constraint.mask_words(state), vocab.logits_width).tolist()
            assert fast == brute_force_mask(constraint, state), (name, sentence[:cut])
            checked += 1
            if cut < len(sentence):
                state = constraint.advance_bytes(state, sentence[cut : cut + 1])
                assert state is not None
    assert checked >= 30


# what may close a nesting depends on how it was opened, far down the stack: tokens that
# close several levels at once and then end the sentence ("))x") are allowed under "a" only
NESTED = r"""
start: "a" s "x" | "b" s "y" | "c" list "x"
s: "(" s ")" | "[" s "]" | "z" | "{" list "}"
list: s ("," s)*
"""


def test_masks_shared_across_parses_equal_brute_force():
    """Masks kept per configuration and the states of its stack's top, as deep as the walks
    read it (see GrammarConstraint._config_mask): at every prefix of sentences that nest the
    same brackets under different openings, on one compiled grammar and a vocabulary whose
    tokens open, close and end several levels at once, masks equal the brute-force ones; and
    states never met before did take masks kept from other parses."""
    rng = random.Random(5)
    pieces = {b")x", b"))x", b")))x", b"))y", b")]y", b"])x", b"}x", b")}y", b"z)", b"z))x", b"((z", b"({z", b",z", b"z,", b"z)]", b"),(", b"))", b"}]"}
    vocab = Vocabulary([bytes([i]) for i in range(256)] + sorted(pieces) + [b"<eos>"], special_ids=[256 + len(pieces)], eos_token_ids=[256 + len(pieces)])
    constraint = compile_grammar(NESTED, vocab)
    assert constraint.parser_kind == "lalr"

    def nest(depth: int) -> bytes:
        if depth == 0:
            return b"z"
        inner = nest(depth - 1)
        kind = rng.randrange(3)
        if kind == 0:
            return b"(" + inner + b")"
        if kind == 1:
            return b"[" + inner + b"]"
        return b"{" + inner + b"," + nest(rng.randrange(depth)) + b"}"

    sentences = [b"a" + nest(d) + b"x" for d in (1, 3, 5)] + [b"b" + nest(d) + b"y" for d in (2, 4, 6)]
    sentences += [b"c" + nest(d) + b"," + nest(2) + b"x" for d in (1, 3)]
    shared = 0
    for sentence in sentences:
        state = constraint.initial_state
        for cut in range(len(sentence) + 1):
            known, kept = state in constraint._masks, len(constraint._config_masks)
            fast = words_to_ids(constraint.mask_words(state), vocab.logits_width).tolist()
            assert fast == brute_force_mask(constraint, state), sentence[:cut]
            shared += not known and len(constraint._config_masks) == kept
            if cut < len(sentence):
                state = constraint.advance_bytes(state, sentence[cut : cut + 1])
                assert state is not None
    assert shared >= 10, shared


def test_prebuilt_configuration_masks_equal_brute_force(monkeypatch):
    """Compiling an LR grammar builds configuration masks for one parse per LR state (see
    GrammarConstraint._prebuild_configs), and a request reads them where its parse agrees
    with that one as deep as the masks read: along a C function that no compile walked,
    masks equal the brute-force ones, and many more prefixes add no configuration mask
    than on the same grammar compiled without the prebuild."""
    monkeypatch.setattr(grammar_module, "PREBUILD_CONFIGS_S", 60.0)  # (the count bounds it; machines differ in speed)
    vocab = load_case("smollm2").vocab
    path = os.path.join(GBNF_DIR, "c.gbnf")
    text = b"int g(int a){while(a<3){if(a>1){a = a*2;}a = a+1;}return a;}"
    checked = set(random.Random(11).sample(range(len(text) + 1), 10))
    served = {}
    for prebuild in (True, False):
        constraint = compile_grammar_file(path, vocab, prebuild=prebuild)
        assert constraint.parser_kind == "lalr" and (len(constraint._config_masks) >= 100) == prebuild
        served[prebuild] = 0
        for cut in range(len(text) + 1):
            state = constraint.advance_bytes(constraint.initial_state, text[:cut])
            assert state is not None
            kept = len(constraint._config_masks)
            fast = words_to_ids(constraint.mask_words(state), vocab.logits_width).tolist()
            served[prebuild] += len(constraint._config_masks) == kept
            if prebuild and cut in checked:
                assert fast == brute_force_mask(constraint, state), f"prefix {text[:cut]!r}"
    assert served[True] >= served[False] + 10, served


# ---- GBNF ----------------------------------------------------------------------------------
GBNF_CASES = {
    "arithmetic": (["x=1\n", "a +b *2 = (c -3)\n", "(x)= y\nz = 1\n"], ["x=\n", "a + b = 1\n", "1 + = 2\n", "X=1\n", "x=1"]),
    "c": (
        ["int main(){return 0;}", "float f(int x){x = x+1;}", "char c(){while(a<b){a = a+1;}}"],
        ["int main(){}}", "main(){}", "int f(){return;}", "float f(int x){x = x + 1;}"],
    ),
    "chess": (["1. e4 e5\n2. Nf3 Nc6\n", "1. d4 d5\n2. c4 dxc4\n3. O-O-O Qxd8+\n"], ["1. e4 e5\n", "1. e9 e5\n2. a3 a6\n"]),
    "english": (["Hello, world!", "a b\nc"], ["", " leading", "two  spaces", "ü"]),
    "japanese": (["こんにちは", "カタカナ 漢字"], ["", "abc", "こ  ん"]),
    "json": (['{"a": 1}', '{"a": [true, null, "x"], "b": {"c": -1.5e3}}', "{}"], ['{"a": 1,}', "[1]", '{"a" 1}', "{'a': 1}"]),
    "json_arr": (['[\n{"a": 1},\n2]', "[\n]"], ["[1]", '[\n"a",]', "{}"]),
    "list": (["- one\n", "- one\n- two words\n"], ["- \n", "one\n", "- one"]),
}


@pytest.mark.parametrize("name", sorted(GBNF_CASES))
def test_gbnf_grammars(name):
    path = os.path.join(GBNF_DIR, f"{name}.gbnf")
    if not os.path.exists(path):
        pytest.skip(f"missing {path}")
    constraint = compile_grammar_file(path, BYTES)
    good, bad = GBNF_CASES[name]
    for text in good:
        assert accepts(constraint, text.encode()), text
    for text in bad:
        assert not accepts(constraint, text.encode()), text


def test_regular_gbnf_needs_no_parser():
    assert isinstance(compile_gbnf('root ::= [a-z]+ ("-" [0-9]{2})?', BYTES), RegularConstraint)
    assert isinstance(compile_gbnf("root ::= x\nx ::= \"(\" x? \")\"", BYTES), GrammarConstraint)


# ---- errors ----------------------------------------------------------------------------------
def test_errors_name_line_and_construct():
    with pytest.raises(GrammarError, match=r":2:\d+: .*'missing'"):
        compile_grammar('start: a\na: "x" missing\n', BYTES)
    with pytest.raises(GrammarError, match=r"<lark>:2:\d+: rule 'a' can never finish"):
        compile_grammar('start: a | "y"\na: "x" a\n', BYTES)
    with pytest.raises(GrammarError, match="language is empty"):
        compile_grammar('start: a\na: "x" a\n', BYTES)
    with pytest.raises(GrammarError, match="terminal A: .*lookbehind"):
        compile_grammar("start: A\nA: /(?<=a)b/\n", BYTES)
    with pytest.raises(GrammarError, match="%declare"):
        compile_grammar("start: FOO\n%declare FOO\n", BYTES)
    with pytest.raises(GrammarError, match=r"<gbnf>:2:\d+: .*'::='"):
        compile_gbnf('root ::= "a"\nbad "b"\n', BYTES)
    with pytest.raises(GrammarError, match=r"<gbnf>:1:\d+: rule 'nope' is used in rule 'root' but never defined"):
        compile_gbnf("root ::= nope", BYTES)
    with pytest.raises(GrammarError, match=r"<gbnf>:1:\d+: unterminated"):
        compile_gbnf('root ::= "abc', BYTES)
    with pytest.warns(GrammarWarning, match="'unused' is unreachable"):
        compile_gbnf('root ::= "a"\nunused ::= "b"\n', BYTES)


# ---- matcher contract on a grammar ---------------------------------------------------------
def test_forced_continuations_copy_and_rollback():
    constraint = compile_grammar_file(os.path.join(REPO, "grammars", "json.lark"), BYTES)
    m = constraint.matcher()
    assert m.accept_tokens(list(b'{"a": '))
    fork = m.copy()
    assert fork.accept_token(ord("t"))
    assert fork.forced_bytes() == b"rue"
    assert [bytes([t]) for t in fork.forced_tokens()] == [b"r", b"u", b"e"]
    assert m.forced_bytes() == b""  # a value of many kinds may follow
    assert not m.accept_token(ord("}"))
    assert m.accept_tokens(list(b"[1]}")) and m.can_terminate()
    m.rollback(2)
    assert not m.can_terminate() and m.accept_token(ord(",")) and not m.can_terminate()
    m.rollback(1)
    assert m.accept_tokens(list(b"]}")) and m.accept_token(256) and m.is_terminated()
    assert fork.num_accepted == 7 and not fork.can_terminate()


def test_parse_tree_from_lark():
    constraint = compile_grammar_file(os.path.join(REPO, "grammars", "arithmetic.lark"), BYTES)
    tree = constraint.parse("1 + 2 * x")
    assert tree.data == "add" and tree.children[1].data == "mul"


@pytest.mark.model
def test_generate_with_grammar_returns_parse_tree(smollm2):
    from structgen import generate

    model, tokenizer = smollm2
    with open(os.path.join(REPO, "grammars", "arithmetic.lark"), encoding="utf-8") as f:
        text = f.read()
    result = generate(
        "Write an arithmetic expression that adds two numbers.", grammar=text, model=model, tokenizer=tokenizer,
        temperature=0, max_new_tokens=24,
    )
    reference = lark.Lark(text, parser="earley", lexer="dynamic_complete")
    if result.completed:
        assert result.parse_tree == reference.parse(result.text)
    else:  # cut by the token limit: still a prefix of a sentence
        assert constraint_prefix_ok(text, result.text)


def constraint_prefix_ok(grammar_text: str, output: str) -> bool:
    constraint = compile_grammar(grammar_text, BYTES)
    return constraint.advance_bytes(constraint.initial_state, output.encode()) is not None


def test_boundary_records_group_alike_by_counting_and_by_sorting():
    """The two ways bucket_records groups a walk's boundaries (a counting sort over every
    (terminal, byte) key, a sort of the records) give the same groups."""
    from structgen.automata.grammar_kernels import _bucket_by_counting, _bucket_by_sorting

    rng = np.random.default_rng(0)
    for _ in range(300):
        n_terminals, r = int(rng.integers(1, 40)), int(rng.integers(0, 300))
        node_byte = rng.integers(0, 4, 500).astype(np.uint8)
        records = np.zeros((r + 3, 3), dtype=np.int32)
        records[:r, 0] = rng.integers(0, n_terminals, r)
        records[:r, 1] = np.sort(rng.choice(500, size=r))
        records[:r, 2] = rng.integers(0, 2, r)
        by_counting = _bucket_by_counting(records, r, n_terminals, node_byte)
        by_sorting = _bucket_by_sorting(records, r, n_terminals, node_byte)
        assert all(np.array_equal(a, b) for a, b in zip(by_counting, by_sorting))


def test_runs_of_the_same_shape_share_one_terminal():
    """Regular runs built afresh in different rules (as the JSON Schema front end builds a
    property's ``"key": value`` in each object) become one terminal, and the language is
    unchanged: sentences are accepted iff lark parses them with the same grammar."""
    from structgen.compiler import compile_ir
    from structgen.grammar.ir import Alt, Grammar, Pattern, Ref, Repeat, Seq, literal, lower

    def run():  # a new object each time, of the same shape
        return Seq((literal(b'"k":'), Repeat(Pattern("[0-9]"), 1, 3)))

    rules = {
        "start": Alt((Ref("x"), Ref("y"), literal(b"0"))),
        "x": Seq((literal(b"("), Ref("start"), run())),
        "y": Seq((literal(b"["), Ref("start"), run())),
    }
    grammar = Grammar(rules, "start")
    bnf = lower(grammar)
    assert len(bnf.terminals) == 4  # ( [ 0 and one run, used by both rules
    reference = lark.Lark('start: "0" | "(" start R | "[" start R\nR: /"k":[0-9]{1,3}/\n', parser="earley", lexer="dynamic_complete")
    constraint = compile_ir(grammar, BYTES)
    texts = ['0', '(0"k":1', '[(0"k":12"k":123', '(0"k":1234', '(0', '[0"k":', '(0"k":1"k":2', '[[0"k":9"k":99', '0"k":1']
    for text in texts:
        assert accepts(constraint, text.encode()) == lark_accepts(reference, text.encode()), text


def test_covered_subtrees_hold_only_tokens_of_the_mask():
    """Per trie node below a boundary record, whether every token at or below it is in the
    mask (a byte a node, kept by lexeme parts with many boundaries): checked on Tekken's
    trie against the tokens below each node, with masks that hold each token at rates from
    none to all, for a record at the root (the whole trie) and for records at a few nested
    and disjoint nodes (False outside their subtrees)."""
    from structgen.automata.grammar_kernels import covered_subtrees

    trie = load_case("tekken").vocab.trie
    rng = np.random.default_rng(1)
    n_words = (int(trie.node_token.max()) + 32) // 32
    deep = np.flatnonzero(trie.depth >= 2)
    seeds = rng.choice(deep, 40, replace=False)
    seeds = np.sort(np.concatenate([seeds, seeds[:5] + 1]))  # (some nested in others; in trie order, as walks write them)
    for rate in (0.0, 0.5, 0.97, 1.0):
        bits = rng.random(n_words * 32) < rate
        words = np.bitwise_or.reduce(bits.reshape(-1, 32).astype(np.uint32) << np.arange(32, dtype=np.uint32), axis=1)
        nodes = np.concatenate([[0], rng.choice(trie.n_nodes, 400, replace=False), np.flatnonzero(trie.depth >= 6)[:200]])
        for records in (np.zeros((1, 3), np.int32), np.stack([np.zeros_like(seeds), seeds, np.zeros_like(seeds)], 1).astype(np.int32)):
            covered = covered_subtrees(trie.node_token, trie.subtree_end, words, records, len(records))
            inside = np.zeros(trie.n_nodes, dtype=bool)
            for a in records[:, 1].tolist():
                inside[a : trie.subtree_end[a]] = True
            for i in np.concatenate([nodes, seeds, seeds + 2]).tolist():
                below = trie.node_token[i : trie.subtree_end[i]]
                assert covered[i] == (inside[i] and bool(bits[below[below >= 0]].all())), (rate, i)


@pytest.mark.parametrize("tokenizer", ["smollm2", "tekken"])
def test_masks_after_a_keyword_run_equal_brute_force(tokenizer):
    """c.gbnf reads ``"int" ws identifier`` as one lexeme: after ``int``, lexeme walks have no
    landing state and go through the state a name's body reaches after two bytes (its
    slice marks whole subtrees of names). Masks at every cut equal the brute-force ones,
    and such a walk did run."""
    vocab = load_case(tokenizer).vocab
    constraint = compile_grammar_file(os.path.join(GBNF_DIR, "c.gbnf"), vocab)
    data = b"int f(int a){float b = a*2;char c = f(b);return c;}"
    after_keywords = {m.end() for m in re.finditer(rb"int|float|char|return", data)}
    for cut in sorted(after_keywords | set(range(0, len(data) + 1, 2 if tokenizer == "smollm2" else 5))):
        state = constraint.advance_bytes(constraint.initial_state, data[:cut])
        assert state is not None, data[:cut]
        fast = words_to_ids(constraint.mask_words(state), vocab.logits_width).tolist()
        assert fast == brute_force_mask(constraint, state), f"prefix {data[:cut]!r}"
    assert any(q != 0 and deep >= 0 for q, deep in constraint._deep_landings.items())
