"""What a GPU says about tinyzero's assumptions, with random weights in Qwen2.5's shapes (nothing is
downloaded; torch and transformers are all it needs, plus omegaconf for the eval row).

    python benchmarks/gpu_check.py           # one GPU: the 3B shape, a few minutes on an H200
    python benchmarks/gpu_check.py --smoke   # a tiny shape on CPU, to check the script itself

1. Training memory, with the recipes' own strategy as verl 0.9.1 builds it
   (verl/workers/engine/fsdp/transformer_impl.py 400-447): FSDP1 with a unit per decoder layer and
   bf16 compute; the actor in fp32 with gradient checkpointing and AdamW; the reference in bf16
   with `CPUOffload(offload_params=True)`, its parameters on the CPU (on a CUDA device; on the CPU
   of the smoke run it is there anyway). On one GPU (world size 1): the reference's log-probs, one
   update at the flagship's token budget (16,384 packed tokens per micro-batch, log-probs computed
   row by row as verl does without flash-attn, a KL term against the reference's), then the
   old-log-prob pass with the entropy (torch.compile'd, as verl's default). Peak memory of each is
   set against tinyzero.train.memory's estimate for the same settings (1 GPU, no vLLM, no
   overhead term).
2. Attention kernels in bf16: log-probabilities of one padded batch with sdpa and with eager
   attention, and sdpa on the same sequences packed without padding (the positions restart per
   sequence, as verl's use_remove_padding feeds them).
3. Attention options timed (tinyzero.train.attention): forward and backward of the same sequences
   (response lengths spread from 20 to 1024 tokens) in micro-batches as verl builds them: sdpa
   packed at verl's 16,384-token budget (`attention=sdpa`), sdpa packed at the budget `auto`
   lowers it to without flash-attn, sdpa padded (`use_remove_padding=false`), and on a GPU
   flash-attention 2 packed when flash-attn imports and flex attention packed (transformers
   compiles it once per packed length; timed after that).
4. The transformers eval backend (tinyzero.eval's HFGenerator, as benchmarks/bench_eval.py runs
   it): generation tokens per second at two batch sizes.

It prints one table; estimate rows more than 15% off are marked. Random weights make
near-uniform predictions, so the attention differences are read against the spread of the
log-probabilities (printed beside them), and generation runs to the token limit.
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]  # tinyzero from this checkout; bench_eval beside this file

from tinyzero.train.attention import dense_budget  # noqa: E402
from tinyzero.train.memory import GIB, QWEN25_SHAPES, FsdpModel, MemorySettings, ModelShape, estimate  # noqa: E402

FLAGSHIP_TOKENS = 16384  # actor_rollout_ref.actor.ppo_max_token_len_per_gpu in conf/train.yaml
SEQUENCE = 256 + 1024  # data.max_prompt_length + data.max_response_length
TOLERANCE = 0.15  # an estimate further off than this needs correcting (issue 11)
SMOKE_SHAPE = ModelShape(64, 2, 128, 512, 4, 2, True, "smoke test shape")


class Table:
    def __init__(self):
        self.rows: list[tuple[str, str, str, str]] = []

    def add(self, check: str, measured: str, expected: str = "", note: str = "") -> None:
        self.rows.append((check, measured, expected, note))

    def print(self) -> None:
        header = ("check", "measured", "estimate / reference", "note")
        widths = [max(len(row[i]) for row in [header, *self.rows]) for i in range(4)]
        for row in [header, tuple("-" * w for w in widths), *self.rows]:
            print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())


def qwen2_config(shape: ModelShape, attention: str):
    from transformers import Qwen2Config

    return Qwen2Config(
        vocab_size=shape.vocab_size,
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_layers,
        num_attention_heads=shape.num_heads,
        num_key_value_heads=shape.num_kv_heads,
        tie_word_embeddings=shape.tie_word_embeddings,
        max_position_embeddings=32768,
        rope_theta=1000000.0,
        rms_norm_eps=1e-6,
        attn_implementation=attention,
        use_cache=False,
    )


def packed_batch(tokens: int, sequence: int, vocab: int, device):
    """One row of `tokens` random ids: full sequences and a shorter last one, positions restarting."""
    import torch

    lengths = [sequence] * (tokens // sequence) + ([tokens % sequence] if tokens % sequence else [])
    positions = torch.cat([torch.arange(length) for length in lengths]).unsqueeze(0).to(device)
    ids = torch.randint(8, vocab, (1, tokens), device=device)
    return ids, positions


def token_log_probs(logits, labels):
    """log p(label) row by row from bf16 logits: verl's logprobs_from_logits_v2, the path verl takes
    without flash-attn's cross-entropy kernel (one row's log-softmax at a time)."""
    import torch

    return torch.stack([torch.log_softmax(row, dim=-1)[label] for row, label in zip(logits, labels)])


def entropy(logits):
    import torch

    return torch.logsumexp(logits, dim=-1) - (torch.softmax(logits, dim=-1) * logits).sum(dim=-1)


class Memory:
    """Peak allocated memory in GiB on CUDA; None on CPU (the smoke run)."""

    def __init__(self, device):
        import torch

        self.cuda = device.type == "cuda"
        self.torch = torch

    def reset(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()
            self.torch.cuda.reset_peak_memory_stats()

    def peak(self) -> float | None:
        if not self.cuda:
            return None
        self.torch.cuda.synchronize()
        return self.torch.cuda.max_memory_allocated() / GIB

    def now(self) -> float | None:
        return self.torch.cuda.memory_allocated() / GIB if self.cuda else None

    def reserved(self) -> float | None:
        return self.torch.cuda.max_memory_reserved() / GIB if self.cuda else None


def gib(value: float) -> str:
    return f"{value:.1f} GiB" if value >= 1 else f"{value * 1024:.1f} MiB"


def against(measured: float | None, expected: float) -> tuple[str, str, str]:
    if measured is None:
        return "n/a (CPU)", gib(expected), ""
    off = measured / expected - 1 if expected else 0.0
    mark = f"OFF by {off:+.0%}: correct the estimate" if abs(off) > TOLERANCE else f"{off:+.0%}"
    return gib(measured), gib(expected), mark


def init_process_group(device) -> None:
    import torch

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")


def fsdp1(model, device, cpu_offload: bool):
    """FSDP1 as verl's engine wraps the recipes' models: a unit per decoder layer, bf16 compute,
    fp32 gradient reduction; the reference (forward-only) with its parameters on the CPU."""
    import functools

    import torch
    from torch.distributed.fsdp import CPUOffload, MixedPrecision
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy
    from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer

    return FSDP(
        model,
        auto_wrap_policy=functools.partial(transformer_auto_wrap_policy, transformer_layer_cls={Qwen2DecoderLayer}),
        mixed_precision=MixedPrecision(param_dtype=torch.bfloat16, reduce_dtype=torch.float32, buffer_dtype=torch.float32),
        device_id=device,
        cpu_offload=CPUOffload(offload_params=True) if cpu_offload else None,
    )


def check_training(table: Table, shape: ModelShape, tokens: int, sequence: int, device, compile_entropy: bool) -> None:
    import torch
    from transformers import Qwen2ForCausalLM

    memory = Memory(device)
    offload = device.type == "cuda"  # FSDP1 pins the offloaded parameters, which needs an accelerator
    torch.manual_seed(0)
    config = qwen2_config(shape, "sdpa")
    actor = Qwen2ForCausalLM(config)  # fp32: actor_rollout_ref.actor.fsdp_config.model_dtype
    reference = Qwen2ForCausalLM(config).to(torch.bfloat16)  # ref.fsdp_config.model_dtype: bf16 (conf/train.yaml)
    actor.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    actor = fsdp1(actor.to(device), device, cpu_offload=False)
    reference = fsdp1(reference.eval(), device, cpu_offload=offload)
    optimizer = torch.optim.AdamW(actor.parameters(), lr=1e-6, weight_decay=0.01)
    ids, positions = packed_batch(tokens, sequence, shape.vocab_size, device)
    labels = torch.roll(ids, -1, dims=1)[0]
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16)

    def reference_pass():  # verl's compute_ref_log_prob
        with torch.no_grad(), autocast:
            return token_log_probs(reference(input_ids=ids, position_ids=positions).logits[0], labels)

    reference_log_probs = reference_pass()

    # One update: the policy-gradient loss with a KL term against the reference, as GRPO's.
    memory.reset()
    start = time.perf_counter()
    with autocast:
        log_probs = token_log_probs(actor(input_ids=ids, position_ids=positions).logits[0], labels)
        advantages = torch.randn_like(log_probs)
        ratio = torch.exp(log_probs - log_probs.detach())
        kl = torch.exp(reference_log_probs - log_probs) - (reference_log_probs - log_probs) - 1  # low_var_kl
        loss = -(ratio * advantages).mean() + 0.001 * kl.mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    update_peak, update_seconds = memory.peak(), time.perf_counter() - start
    del log_probs, ratio, kl, loss, reference_log_probs
    state = memory.now()
    memory.reset()  # again, now that the actor's state is complete (Adam's moments exist after a step)
    reference_pass()
    reference_peak = memory.peak()

    # The old log-probs with the entropy (no gradient), verl's compute_log_prob of each step.
    entropy_fn = torch.compile(entropy, dynamic=True) if compile_entropy else entropy
    memory.reset()
    start = time.perf_counter()
    with torch.no_grad(), autocast:
        logits = actor(input_ids=ids, position_ids=positions).logits[0]
        old_log_probs, old_entropy = token_log_probs(logits, labels), entropy_fn(logits)
    log_prob_peak, log_prob_seconds = memory.peak(), time.perf_counter() - start
    assert torch.isfinite(old_log_probs).all() and torch.isfinite(old_entropy).all()

    settings = MemorySettings(
        n_gpus=1, actor=FsdpModel(4, trainable=True), reference=FsdpModel(2, trainable=False, cpu_offload=offload),
        critic=None, update_tokens=tokens, log_prob_tokens=tokens, critic_tokens=0, reference_tokens=tokens,
        gradient_checkpointing=True, entropy_fused=compile_entropy, vllm_share=0.0,
    )
    gpu_gib = torch.cuda.get_device_properties(device).total_memory / GIB if device.type == "cuda" else 1.0
    expected = estimate(settings, shape, gpu_gib)
    table.add("training state after the update (actor fp32 + Adam; reference bf16 on the CPU)",
              *against(state, expected.state_gib))
    table.add(f"reference log-probs peak at {tokens} tokens (FSDP1, parameters offloaded)",
              *against(reference_peak, expected.state_gib + expected.reference_gib))
    table.add(f"update peak at {tokens} tokens (state + gradients + activations)",
              *against(update_peak, expected.state_gib + expected.grads_gib + expected.activations_gib))
    table.add(f"old log-probs + entropy peak at {tokens} tokens",
              *against(log_prob_peak, expected.state_gib + expected.log_prob_gib))
    reserved = memory.reserved()
    table.add("allocator reserve at the peaks (max reserved)", gib(reserved) if reserved else "n/a (CPU)",
              "", "what fragmentation adds to the allocated peaks")
    table.add("update time / old-log-prob time", f"{update_seconds:.1f} s / {log_prob_seconds:.1f} s",
              "", "entropy compiled" if compile_entropy else "entropy eager")
    del actor, reference, optimizer, logits, old_log_probs, old_entropy
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def response_lengths(total: int, prompt: int, longest: int) -> list[int]:
    """Sequence lengths summing to about `total`: a prompt and a response spread evenly from 20
    tokens to the response limit (R1-Zero responses range that widely)."""
    lengths, step = [], 0
    while sum(lengths) < total:
        lengths.append(prompt + 20 + (step * 397) % max(longest - 19, 1))
        step += 1
    return lengths


def micro_batches_of(lengths: list[int], budget: int) -> list[list[int]]:
    """Consecutive sequences up to `budget` real tokens per micro-batch (verl's dynamic batch sizes)."""
    batches, current = [], []
    for length in lengths:
        if current and sum(current) + length > budget:
            batches.append(current)
            current = []
        current.append(length)
    return batches + ([current] if current else [])


def timed_pass(model, batches: list[list[int]], packed: bool, vocab: int, device) -> float:
    """Forward and backward over every micro-batch, as verl's update runs them; seconds."""
    import torch

    start = time.perf_counter()
    for lengths in batches:
        if packed:
            ids = torch.randint(8, vocab, (1, sum(lengths)), device=device)
            positions = torch.cat([torch.arange(length, device=device) for length in lengths]).unsqueeze(0)
            logits = model(input_ids=ids, position_ids=positions).logits[0]
            log_probs = token_log_probs(logits, torch.roll(ids, -1, dims=1)[0])  # verl: row by row, per token
        else:
            ids = torch.randint(8, vocab, (len(lengths), max(lengths)), device=device)
            mask = torch.zeros_like(ids)
            for row, length in enumerate(lengths):
                mask[row, :length] = 1
            logits = model(input_ids=ids, attention_mask=mask).logits
            labels = torch.roll(ids, -1, dims=1)
            log_probs = torch.stack([torch.log_softmax(row, dim=-1).gather(-1, label.unsqueeze(-1)).squeeze(-1)
                                     for row, label in zip(logits, labels)])[mask.bool()]  # verl: row by row, per sequence
        (-log_probs.float().mean()).backward()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def check_attention_speed(table: Table, shape: ModelShape, budget: int, sequence: int, total: int, device) -> None:
    """The attention options of tinyzero.train.attention on the same sequences (about `total`
    tokens), bf16, gradient checkpointing on, as the actor's update runs."""
    import torch
    from transformers import Qwen2ForCausalLM

    lowered = dense_budget(shape, sequence)
    lengths = response_lengths(total, 200 if sequence > 400 else sequence // 5, sequence - 200 if sequence > 400
                               else sequence - sequence // 5)
    tokens = sum(lengths)
    options = [("sdpa", True, budget, "attention=sdpa"), ("sdpa", True, lowered, "attention=auto without flash-attn"),
               ("sdpa", False, budget, "use_remove_padding=false")]
    if device.type == "cuda":
        try:
            import flash_attn  # noqa: F401

            options.append(("flash_attention_2", True, budget, "attention=auto with flash-attn"))
        except Exception as error:  # ImportError, or OSError from a build for another CUDA
            table.add("attention time: flash_attention_2", "not measured", "", f"flash-attn does not import: {error}")
        options.append(("flex_attention", True, budget, "not a tinyzero choice yet; compiled per packed length"))
    torch.manual_seed(2)
    with torch.device(device):
        model = Qwen2ForCausalLM(qwen2_config(shape, "sdpa")).to(torch.bfloat16)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    memory = Memory(device)
    results = []
    for kernel, packed, tokens_per_batch, note in options:
        use_kernel(model, kernel)
        batches = micro_batches_of(lengths, tokens_per_batch)
        try:  # warm-up: kernels, the allocator, flex attention's compilation (one per packed length)
            timed_pass(model, batches[:1] if kernel != "flex_attention" else batches, packed, shape.vocab_size, device)
            model.zero_grad(set_to_none=True)
            memory.reset()
            seconds = timed_pass(model, batches, packed, shape.vocab_size, device)
        except Exception as error:  # e.g. flex attention not compiling here: said, not fatal
            table.add(f"attention time: {kernel}", "failed", "", f"{type(error).__name__}: {str(error)[:200]}")
            continue
        finally:
            model.zero_grad(set_to_none=True)
        peak = memory.peak()
        layout = "packed" if packed else "padded"
        results.append((f"attention time: {kernel} {layout}, {tokens_per_batch}-token micro-batches", seconds,
                        f"{len(batches)} micro-batches, peak {gib(peak)}; {note}" if peak is not None else
                        f"{len(batches)} micro-batches; {note}"))
    fastest = min(seconds for _, seconds, _ in results)
    for row, seconds, note in results:
        table.add(row, f"{seconds:.2f} s", f"x{seconds / fastest:.2f} the fastest",
                  f"{tokens:,} tokens forward + backward, {note}")
    del model
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def use_kernel(model, attention: str) -> None:
    """Switch the attention kernel in place (transformers 5; older ones read the config per call)."""
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(attention)
    else:
        model.config._attn_implementation = attention


def check_attention(table: Table, shape: ModelShape, lengths: list[int], device, model_dir: Path | None):
    """sdpa and eager on one padded bf16 batch, and packed sdpa; saves the model for the eval row."""
    import torch
    from transformers import Qwen2ForCausalLM

    torch.manual_seed(1)
    with torch.device(device):
        model = Qwen2ForCausalLM(qwen2_config(shape, "sdpa")).to(torch.bfloat16).eval()
    longest = max(lengths)
    ids = torch.randint(8, shape.vocab_size, (len(lengths), longest), device=device)
    mask = torch.zeros_like(ids)
    for row, length in enumerate(lengths):
        mask[row, :length] = 1
    valid = mask[:, 1:].bool()  # positions whose next token is part of the sequence

    def padded_log_probs():
        with torch.no_grad():
            logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits.float()
        return torch.log_softmax(logits[:, :-1], -1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)[valid]

    sdpa = padded_log_probs()
    row = torch.cat([ids[i, :length] for i, length in enumerate(lengths)]).unsqueeze(0)
    positions = torch.cat([torch.arange(length, device=device) for length in lengths]).unsqueeze(0)
    with torch.no_grad():
        logits = model(input_ids=row, position_ids=positions, use_cache=False).logits[0].float()
    starts = [sum(lengths[:i]) for i in range(len(lengths))]
    keep = torch.cat([torch.arange(start, start + length - 1, device=device) for start, length in zip(starts, lengths)])
    packed = torch.log_softmax(logits[keep], -1).gather(-1, row[0, keep + 1].unsqueeze(-1)).squeeze(-1)
    use_kernel(model, "eager")
    eager = padded_log_probs()
    spread = f"log-probs {sdpa.mean():.2f} +- {sdpa.std():.2f}, {len(lengths)} sequences of {lengths}"
    table.add("sdpa vs eager log-probs (bf16), max |diff|", f"{(sdpa - eager).abs().max():.2e}",
              f"mean |diff| {(sdpa - eager).abs().mean():.1e}", spread)
    table.add("packed sdpa vs padded sdpa (bf16), max |diff|", f"{(packed - sdpa).abs().max():.2e}",
              f"mean |diff| {(packed - sdpa).abs().mean():.1e}", "packed: positions restart, no mask given")
    if model_dir is not None:
        use_kernel(model, "sdpa")
        model.save_pretrained(model_dir)
    del model
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def check_eval_throughput(table: Table, model_dir: Path, device, prompts: int, max_tokens: int, batch_sizes):
    try:
        from bench_eval import measure, word_level_tokenizer

        from tinyzero.eval.backends import HFGenerator
    except ImportError as error:  # tinyzero.eval's modules import omegaconf (its options)
        table.add("eval tokens/s (transformers backend)", "skipped", "", f"tinyzero.eval does not import: {error}")
        return
    tokenizer = word_level_tokenizer()
    for batch_size in batch_sizes:
        generator = HFGenerator(str(model_dir), tokenizer, temperature=0.0, top_p=1.0, batch_size=batch_size,
                                device=device.type)
        measure(generator, min(prompts, batch_size), 4, None)  # warm-up: kernels, allocator
        tokens, seconds = measure(generator, prompts, max_tokens, None)
        table.add(f"eval tokens/s (transformers backend, batch {batch_size})", f"{tokens / seconds:,.0f}", "",
                  f"{prompts} prompts x {max_tokens} new tokens, greedy, bf16" if device.type == "cuda" else "CPU, fp32")
        del generator
        gc.collect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="a tiny shape on CPU: checks the script, measures nothing real")
    args = parser.parse_args()

    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    if args.smoke:
        device, shape, tokens, sequence = torch.device("cpu"), SMOKE_SHAPE, 384, 100
        lengths, prompts, max_tokens, batch_sizes, compile_entropy = [24, 17, 9], 4, 8, [2], False
    else:
        if not torch.cuda.is_available():
            sys.exit("no CUDA GPU visible: run on a GPU machine, or pass --smoke to check the script on CPU")
        device, shape, tokens, sequence = torch.device("cuda", 0), QWEN25_SHAPES["qwen2.5-3b"], FLAGSHIP_TOKENS, SEQUENCE
        lengths, prompts, max_tokens, batch_sizes, compile_entropy = [1280, 900, 512, 64], 64, 256, [16, 64], True
    table = Table()
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"gpu_check: {shape.source} ({shape.n_params / 1e9:.2f}B parameters) on {name}, torch {torch.__version__}")
    started = time.perf_counter()
    init_process_group(device)
    try:
        check_training(table, shape, tokens, sequence, device, compile_entropy)
    finally:
        torch.distributed.destroy_process_group()
    check_attention_speed(table, shape, tokens, sequence, tokens if args.smoke else 2 * tokens, device)
    with tempfile.TemporaryDirectory() as folder:
        model_dir = Path(folder) / "model"
        check_attention(table, shape, lengths, device, model_dir)
        check_eval_throughput(table, model_dir, device, prompts, max_tokens, batch_sizes)
    table.add("wall time", f"{time.perf_counter() - started:.0f} s")
    table.print()


if __name__ == "__main__":
    main()
