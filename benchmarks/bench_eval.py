"""Generation throughput of `python -m tinyzero.eval`'s transformers backend, in tokens per second.

    python benchmarks/bench_eval.py                 # CPU: the tiny test model
    python benchmarks/bench_eval.py --prompts 256 --max-tokens 512   # on a GPU machine

On CPU it measures the tiny random Qwen2 model of the tests. Where CUDA is available it also
measures a randomly initialised model of Qwen2.5-0.5B's shape (nothing is downloaded; a
word-level tokenizer with Qwen2.5's vocabulary size stands in for Qwen's). For each it prints
plain generation (one segment, as without budgets) and budget forcing (thinking budget of half
the tokens, one extension), at a few batch sizes. Random weights rarely write `</think>` or the
end token, so responses run to the token limit: this measures the engine, not the model.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

PROMPT = (
    "A conversation between User and Assistant. User: Using the numbers [19, 36, 55, 7], create an "
    "equation that equals 65. Show your work in <think> </think> tags. Assistant: Let me solve this "
    "step by step. <think>"
)


def word_level_tokenizer(vocab_size: int = 151936):
    """A word-level tokenizer with Qwen2.5's vocabulary size (ids 0-7 are the special tokens; eos
    and pad are 0), padding on the left: it stands in for Qwen's with random Qwen2.5-shaped models."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "<answer>", "</answer>", "[UNK]"]
    vocab = {token: i for i, token in enumerate(specials)}
    vocab.update({f"w{i}": i for i in range(len(specials), vocab_size)})
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    hf_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    hf_tokenizer.padding_side = "left"
    return hf_tokenizer


def qwen25_05b_shaped(folder: Path):
    """A random model with Qwen2.5-0.5B's dimensions and a word-level tokenizer of its vocab size."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    vocab_size = 151936
    hf_tokenizer = word_level_tokenizer(vocab_size)
    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=896,
        intermediate_size=4864,
        num_hidden_layers=24,
        num_attention_heads=14,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        rope_theta=1000000.0,
        tie_word_embeddings=True,
        eos_token_id=0,
        pad_token_id=0,
    )
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(folder)
    # Returned, not reloaded: AutoTokenizer would pick Qwen2's tokenizer class for this folder.
    return folder, hf_tokenizer


def measure(generator, prompts: int, max_tokens: int, budget: int | None) -> tuple[int, float]:
    from tinyzero.eval.budget import generate_plain, generate_with_budget

    texts, seeds = [PROMPT] * prompts, list(range(prompts))
    start = time.perf_counter()
    if budget is None:
        traces = generate_plain(generator, texts, seeds, max_tokens)
    else:
        traces = generate_with_budget(
            generator, texts, seeds, budget=budget, num_extend=1, wait="Wait", answer_tokens=max_tokens - budget
        )
    seconds = time.perf_counter() - start
    return sum(t.response_tokens for t in traces), seconds


def bench(
    name: str, model_dir: Path, tokenizer, device: str, prompts: int, max_tokens: int, batch_sizes: list[int]
) -> None:
    import torch

    from tinyzero.eval.backends import HFGenerator

    print(
        f"\n{name} on {device} ({torch.get_num_threads()} CPU threads), {prompts} prompts, {max_tokens} new tokens each"
    )
    print(f"{'batch':>6} {'mode':>16} {'tokens':>8} {'seconds':>8} {'tokens/s':>9}")
    for batch_size in batch_sizes:
        generator = HFGenerator(
            str(model_dir), tokenizer, temperature=0.0, top_p=1.0, batch_size=batch_size, device=device
        )
        measure(generator, min(prompts, batch_size), 4, None)  # warm-up: kernels, allocator
        for mode, budget in (("plain", None), (f"budget {max_tokens // 2}", max_tokens // 2)):
            tokens, seconds = measure(generator, prompts, max_tokens, budget)
            print(f"{batch_size:>6} {mode:>16} {tokens:>8} {seconds:>8.2f} {tokens / seconds:>9.0f}")
        del generator
        if device == "cuda":
            torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=64, help="prompts per measurement")
    parser.add_argument("--max-tokens", type=int, default=64, help="new tokens per response")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 64])
    args = parser.parse_args()

    import torch
    from transformers.utils import logging as hf_logging

    from tinyzero.eval.backends import load_tokenizer
    from tinyzero.testing import build_tiny_model

    hf_logging.disable_progress_bar()
    with tempfile.TemporaryDirectory() as tmp:
        tiny = build_tiny_model(Path(tmp) / "tiny")
        tiny_tokenizer = load_tokenizer(str(tiny))
        bench(
            "tiny Qwen2 (hidden 32, 2 layers)",
            tiny,
            tiny_tokenizer,
            "cpu",
            args.prompts,
            args.max_tokens,
            args.batch_sizes,
        )
        if torch.cuda.is_available():
            shaped, shaped_tokenizer = qwen25_05b_shaped(Path(tmp) / "qwen05b")
            name = f"random Qwen2.5-0.5B-shaped model, {torch.cuda.get_device_name()}"
            bench(name, shaped, shaped_tokenizer, "cuda", args.prompts, args.max_tokens, args.batch_sizes)
        else:
            print("\nno CUDA device: the 0.5B-shaped GPU measurement was skipped")


if __name__ == "__main__":
    main()
