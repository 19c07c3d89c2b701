"""Tiny local models for tests and CPU benchmarks: nothing is downloaded.

`build_tiny_model(folder)` writes a randomly initialised Qwen2-architecture causal LM and a small
byte-level BPE tokenizer, trained on the fly, with a ChatML chat template (as Qwen2.5's), in
Hugging Face format. The builder lives in tinyzero.models (training builds the tiny recipe's model
with it too). Needs the `train` extra (transformers, tokenizers, torch).
"""

from tinyzero.models import CHATML_TEMPLATE, SPECIAL_TOKENS, build_tiny_model, build_tiny_tokenizer

__all__ = ["CHATML_TEMPLATE", "SPECIAL_TOKENS", "build_tiny_model", "build_tiny_tokenizer"]
