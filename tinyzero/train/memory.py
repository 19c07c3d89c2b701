"""The model's shape and the memory estimate: will the run fit on the GPUs it asks for?

`check_model` reads a model's shape (a local folder's config.json, the Hugging Face cache, or the
built-in Qwen2.5 table); `estimate_memory` turns shape and config into per-GPU peaks of verl's FSDP
hybrid engine; `check_memory` says which keys to change when it does not fit.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from tinyzero.hub import looks_like_hub_name
from tinyzero.train.checks import GIB, CheckError, gpus_needed, max_sequence_length, uses_critic

# A GPU's memory when none is visible here and gpu_memory_gib is unset: an H200 as torch reports it.
DEFAULT_GPU_MEMORY_GIB = 139.0
# CUDA context, NCCL buffers and allocator fragmentation on each GPU.
OVERHEAD_GIB = 3.0


# --- The model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelShape:
    """What the memory estimate needs to know about a decoder-only transformer."""

    hidden_size: int
    num_layers: int
    intermediate_size: int
    vocab_size: int
    num_heads: int
    num_kv_heads: int
    tie_word_embeddings: bool
    source: str  # where the shape came from

    @property
    def n_params(self) -> int:
        h, head_dim = self.hidden_size, self.hidden_size // self.num_heads
        kv = self.num_kv_heads * head_dim
        attention = 2 * h * h + 2 * h * kv + h + 2 * kv  # q, o, k, v weights and q/k/v biases (Qwen2)
        mlp = 3 * h * self.intermediate_size  # gate, up, down
        per_layer = attention + mlp + 2 * h  # two RMSNorms
        embeddings = self.vocab_size * h * (1 if self.tie_word_embeddings else 2)
        return self.num_layers * per_layer + embeddings + h


def _qwen25(h, layers, inter, heads, kv, vocab, tie, name):
    return ModelShape(h, layers, inter, vocab, heads, kv, tie, f"built-in table ({name} config.json)")


# Qwen2.5 shapes from the models' config.json, so a hub name needs no network for the estimate.
QWEN25_SHAPES = {
    "qwen2.5-0.5b": _qwen25(896, 24, 4864, 14, 2, 151936, True, "Qwen2.5-0.5B"),
    "qwen2.5-1.5b": _qwen25(1536, 28, 8960, 12, 2, 151936, True, "Qwen2.5-1.5B"),
    "qwen2.5-3b": _qwen25(2048, 36, 11008, 16, 2, 151936, True, "Qwen2.5-3B"),
    "qwen2.5-7b": _qwen25(3584, 28, 18944, 28, 4, 152064, False, "Qwen2.5-7B"),
    "qwen2.5-14b": _qwen25(5120, 48, 13824, 40, 8, 152064, False, "Qwen2.5-14B"),
}

def _shape_from_config_json(path: Path, source: str) -> ModelShape:
    config = json.loads(path.read_text())
    config = config.get("text_config", config)
    heads = config["num_attention_heads"]
    return ModelShape(
        hidden_size=config["hidden_size"],
        num_layers=config["num_hidden_layers"],
        intermediate_size=config.get("intermediate_size", 4 * config["hidden_size"]),
        vocab_size=config["vocab_size"],
        num_heads=heads,
        num_kv_heads=config.get("num_key_value_heads", heads),
        tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
        source=source,
    )


def check_model(model_path: str) -> ModelShape | None:
    """A local Hugging Face folder (must hold config.json) or a hub name; returns its shape when known.

    Hub names are not looked up on the network: the shape comes from the local Hugging Face cache or
    the built-in Qwen2.5 table, else it is unknown (None) and the memory estimate is skipped.
    """
    key = "actor_rollout_ref.model.path"
    expanded = Path(os.path.expanduser(str(model_path)))
    looks_local = str(model_path).startswith(("/", ".", "~")) or expanded.exists()
    if looks_local:
        if not expanded.is_dir():
            raise CheckError(
                f"{key}={model_path!r}: no such folder. Give a local Hugging Face model folder (with config.json) "
                "or a hub name such as Qwen/Qwen2.5-3B."
            )
        if not (expanded / "config.json").is_file():
            raise CheckError(
                f"{key}={model_path!r} has no config.json: it is not a Hugging Face model folder. Point it at the "
                "folder that holds config.json and the weights (for a verl checkpoint, merge it first: "
                "python -m verl.model_merger merge --backend fsdp --local_dir .../actor --target_dir ...)."
            )
        return _shape_from_config_json(expanded / "config.json", f"{expanded}/config.json")
    if not looks_like_hub_name(str(model_path)):
        raise CheckError(
            f"{key}={model_path!r} is neither an existing folder nor a hub name like Qwen/Qwen2.5-3B."
        )
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(str(model_path), "config.json")
    except Exception:  # an odd cache layout must not stop a launch: fall back to the table
        cached = None
    if isinstance(cached, str):
        return _shape_from_config_json(Path(cached), f"Hugging Face cache ({model_path})")
    name = str(model_path).split("/")[-1].lower()
    name = re.sub(r"-(instruct|base)$", "", name)
    return QWEN25_SHAPES.get(name)


# --- Memory ----------------------------------------------------------------------------------

_DTYPE_BYTES = {"fp32": 4, "float32": 4, "bf16": 2, "bfloat16": 2, "fp16": 2, "float16": 2}


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak memory on one GPU, in GiB, in the two phases of a step (the engines take turns)."""

    gpu_gib: float
    training_state_gib: float  # FSDP shards: parameters, gradients, Adam states (actor, critic, reference)
    resident_during_rollout_gib: float  # the part of the training state that stays on the GPU while vLLM runs
    activations_gib: float  # at the configured micro-batch, with gradient checkpointing
    vllm_gib: float  # gpu_memory_utilization x GPU memory: vLLM's weights and KV cache
    overhead_gib: float
    tokens_per_micro_batch: int

    @property
    def training_peak_gib(self) -> float:
        return self.training_state_gib + self.activations_gib + self.overhead_gib

    @property
    def rollout_peak_gib(self) -> float:
        return self.resident_during_rollout_gib + self.vllm_gib + self.overhead_gib

    @property
    def peak_gib(self) -> float:
        return max(self.training_peak_gib, self.rollout_peak_gib)

    def summary(self) -> str:
        return (
            f"training {self.training_peak_gib:.1f} GiB (state {self.training_state_gib:.1f} + activations "
            f"{self.activations_gib:.1f} at {self.tokens_per_micro_batch} tokens + overhead {self.overhead_gib:.0f}); "
            f"rollout {self.rollout_peak_gib:.1f} GiB (resident state {self.resident_during_rollout_gib:.1f} + vLLM "
            f"{self.vllm_gib:.1f}) of {self.gpu_gib:.0f} GiB per GPU"
        )


def _fsdp_state_bytes(n_params: int, fsdp: DictConfig, trainable: bool) -> tuple[float, float]:
    """(bytes during an update, bytes resident during rollout) for one model's FSDP state on one GPU."""
    param_bytes = _DTYPE_BYTES.get(str(fsdp.get("model_dtype", "fp32")), 4)
    params = n_params * param_bytes
    grads = n_params * param_bytes if trainable else 0
    adam = n_params * 8 if trainable else 0  # two fp32 moments
    resident = (0 if fsdp.param_offload else params) + (0 if fsdp.get("optimizer_offload") else adam)
    return params + grads + adam, resident


def estimate_memory(config: DictConfig, shape: ModelShape, gpu_gib: float) -> MemoryEstimate:
    """A per-GPU estimate of verl's FSDP hybrid engine: FSDP shards over all GPUs, vLLM takes turns with training."""
    from verl.trainer.ppo.utils import need_reference_policy

    n_gpus = gpus_needed(config)
    arr = config.actor_rollout_ref
    n_params = shape.n_params
    update, resident = _fsdp_state_bytes(n_params, arr.actor.fsdp_config, trainable=True)
    if need_reference_policy(config):
        ref_update, ref_resident = _fsdp_state_bytes(n_params, arr.ref.fsdp_config, trainable=False)
        update, resident = update + ref_update, resident + ref_resident
    if uses_critic(config):
        critic_update, critic_resident = _fsdp_state_bytes(n_params, config.critic.fsdp, trainable=True)
        update, resident = update + critic_update, resident + critic_resident

    if arr.actor.use_dynamic_bsz:
        tokens = int(arr.actor.ppo_max_token_len_per_gpu)
    else:
        tokens = int(arr.actor.ppo_micro_batch_size_per_gpu or 1) * max_sequence_length(config)
    h, layers = shape.hidden_size, shape.num_layers
    if arr.model.enable_gradient_checkpointing:
        # Each layer keeps its bf16 input; one layer at a time is recomputed in full.
        activations = tokens * h * layers * 2 + tokens * (10 * h + 4 * shape.intermediate_size) * 2
    else:
        activations = tokens * layers * (10 * h + 4 * shape.intermediate_size) * 2
    activations += tokens * shape.vocab_size * 8  # logits: bf16 values, fp32 log-softmax and its gradient

    return MemoryEstimate(
        gpu_gib=gpu_gib,
        training_state_gib=update / n_gpus / GIB,
        resident_during_rollout_gib=resident / n_gpus / GIB,
        activations_gib=activations / GIB,
        vllm_gib=float(arr.rollout.gpu_memory_utilization) * gpu_gib,
        overhead_gib=OVERHEAD_GIB,
        tokens_per_micro_batch=tokens,
    )


def check_memory(estimate: MemoryEstimate) -> str:
    if estimate.peak_gib <= estimate.gpu_gib:
        return estimate.summary()
    advice = []
    if estimate.rollout_peak_gib > estimate.gpu_gib:
        share_that_fits = (estimate.gpu_gib - estimate.resident_during_rollout_gib - estimate.overhead_gib) / estimate.gpu_gib
        advice.append(
            f"while vLLM generates, the training state stays resident: lower "
            f"actor_rollout_ref.rollout.gpu_memory_utilization (at most {max(share_that_fits, 0):.2f} fits), or "
            "offload it with actor_rollout_ref.actor.fsdp_config.optimizer_offload=true / param_offload=true "
            "(and actor_rollout_ref.ref.fsdp_config.param_offload=true)"
        )
    if estimate.training_peak_gib > estimate.gpu_gib:
        advice.append(
            "during the update: fewer tokens per GPU (actor_rollout_ref.actor.ppo_max_token_len_per_gpu, or "
            "ppo_micro_batch_size_per_gpu without dynamic batch sizes), or enable "
            "actor_rollout_ref.model.enable_gradient_checkpointing=true"
        )
    advice.append("more GPUs (trainer.n_gpus_per_node / trainer.nnodes) shard the training state further")
    raise CheckError(
        f"the run is estimated not to fit in GPU memory: {estimate.summary()}.\nTo fit:\n  - "
        + "\n  - ".join(advice)
        + "\n(set gpu_memory_gib=N if the GPUs here are not the ones the run will use)"
    )
