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
from typing import TYPE_CHECKING

from tinyzero.hub import looks_like_hub_name

# The estimate needs no config library (benchmarks/gpu_check.py runs it with torch and transformers
# only): what comes from omegaconf, verl or the checks is imported where a config is read.
if TYPE_CHECKING:
    from omegaconf import DictConfig

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
    def layer_params(self) -> int:
        """One decoder layer's parameters (FSDP's unit: verl wraps each layer)."""
        h, head_dim = self.hidden_size, self.hidden_size // self.num_heads
        kv = self.num_kv_heads * head_dim
        attention = 2 * h * h + 2 * h * kv + h + 2 * kv  # q, o, k, v weights and q/k/v biases (Qwen2)
        mlp = 3 * h * self.intermediate_size  # gate, up, down
        return attention + mlp + 2 * h  # two RMSNorms

    @property
    def n_params(self) -> int:
        embeddings = self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)
        return self.num_layers * self.layer_params + embeddings + self.hidden_size

    @property
    def matmul_params(self) -> int:
        """The weights each token is multiplied through: every layer and the output head (the
        embedding lookup costs nothing); a forward pass costs about 2 FLOPs per weight per token."""
        return self.num_layers * self.layer_params + self.vocab_size * self.hidden_size

    @property
    def root_params(self) -> int:
        """What FSDP's root unit holds beside the wrapped layers: embeddings, output head, last norm."""
        return self.n_params - self.num_layers * self.layer_params


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
    from tinyzero.recipe import CheckError  # here, not at the top: the estimate imports without omegaconf

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

GIB = 1024**3
_DTYPE_BYTES = {"fp32": 4, "float32": 4, "bf16": 2, "bfloat16": 2, "fp16": 2, "float16": 2}
# What a sleeping vLLM keeps on each GPU while the policy trains: its own process's CUDA context and
# the CUDA graphs it captured, which sleep mode does not release. A stated margin, not measured:
# vLLM has not run on a GPU for this estimate (benchmarks/gpu_check.py measures the FSDP side only).
VLLM_ASLEEP_GIB = 2.0
# Logit bytes per token and vocabulary entry in an update: bf16 logits, the bf16 log-softmax kept
# for the backward pass, and the fp32 gradient of the logits.
UPDATE_LOGIT_BYTES = 8
# ... in the old-log-prob pass, which also computes the entropy (no gradient): bf16 logits plus one
# fp32 temporary when verl's torch.compile or chunking fuses the entropy, two (softmax and
# product) when neither does (verl/workers/engine/fsdp/transformer_impl.py 178-187, 1397-1405).
LOG_PROB_LOGIT_BYTES = {True: 6, False: 10}
# ... in the reference's pass, which computes log-probs only (no entropy): its bf16 logits; verl
# takes the log-softmax one row at a time without flash-attn (utils/torch_functional.py 173-198).
REFERENCE_LOGIT_BYTES = 2


@dataclass(frozen=True)
class FsdpModel:
    """One model's FSDP state: parameters stored in `param_bytes` each, and gradients plus fp32
    Adam moments when it trains.

    `cpu_offload`: verl keeps a forward-only model's parameters (the reference policy's) on the CPU
    under both FSDP strategies, FSDP1's `CPUOffload(offload_params=True)` and FSDP2's
    `CPUOffloadPolicy` (verl/workers/engine/fsdp/transformer_impl.py 432-433, 459-463), and brings
    them to the GPU one FSDP unit at a time while it computes."""

    param_bytes: int
    trainable: bool
    param_offload: bool = False
    optimizer_offload: bool = False
    cpu_offload: bool = False

    def state_bytes(self, n_params: int) -> float:
        """Parameters and Adam moments on the GPU while the training engines compute."""
        if self.cpu_offload:
            return 0.0
        return n_params * (self.param_bytes + (8 if self.trainable else 0))

    def grad_bytes(self, n_params: int) -> float:
        return n_params * self.param_bytes if self.trainable else 0

    def resident_bytes(self, n_params: int) -> float:
        """What stays on the GPU while vLLM generates (verl offloads only what the flags say)."""
        if self.cpu_offload:
            return 0.0
        params = 0 if self.param_offload else n_params * self.param_bytes
        adam = 0 if (self.optimizer_offload or not self.trainable) else n_params * 8
        return params + adam

    def gathered_bytes(self, shape: ModelShape) -> float:
        """An offloaded model's parameters on the GPU while it computes: FSDP's root unit (kept
        gathered through the forward) and two decoder layers (the one computing and the next),
        unsharded."""
        return (shape.root_params + 2 * shape.layer_params) * self.param_bytes if self.cpu_offload else 0.0


@dataclass(frozen=True)
class MemorySettings:
    """Everything the estimate reads from a config, as plain values (benchmarks/gpu_check.py builds
    one for the settings it measures, without a config)."""

    n_gpus: int  # FSDP shards the training state over all of them
    actor: FsdpModel
    reference: FsdpModel | None
    critic: FsdpModel | None
    update_tokens: int  # actor tokens per micro-batch in an update
    log_prob_tokens: int  # tokens per micro-batch when the old log-probs (with entropy) are computed
    critic_tokens: int  # critic tokens per micro-batch in its update
    reference_tokens: int = 0  # tokens per micro-batch of the reference's log-probs
    gradient_checkpointing: bool = True
    critic_gradient_checkpointing: bool = True
    entropy_fused: bool = True  # verl's torch.compile (default) or chunking fuses the entropy
    vllm_share: float = 0.5  # rollout.gpu_memory_utilization: vLLM's weights and KV cache
    vllm_sleeps: bool = True  # sleep mode and free_cache_engine release vLLM's memory while training
    rollout_tp: int = 1
    weight_sync_bucket_mib: int = 2048  # rollout.checkpoint_engine.update_weights_bucket_megabytes


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak memory on one GPU, in GiB, in each phase of a step (the engines take turns on the GPUs)."""

    gpu_gib: float
    state_gib: float  # parameters and Adam moments on the GPU: actor and critic (FSDP shards); the reference is on the CPU
    grads_gib: float  # the actor's gradients, during its update
    critic_grads_gib: float
    activations_gib: float  # the actor's update at its micro-batch, with the logits
    critic_activations_gib: float  # the critic's update at its own token budget (no vocabulary logits)
    log_prob_gib: float  # the old-log-prob pass: logits and entropy at its token budget
    reference_gib: float  # the reference's log-prob pass: its gathered units, activations and logits
    resident_during_rollout_gib: float  # the training state that stays on the GPU while vLLM runs
    vllm_gib: float  # gpu_memory_utilization x GPU memory: vLLM's weights and KV cache
    vllm_asleep_gib: float  # what vLLM keeps while the policy trains
    vllm_weights_gib: float  # vLLM's weights, resumed before the weight sync
    weight_sync_bucket_gib: float
    overhead_gib: float
    tokens_per_micro_batch: int
    log_prob_tokens: int
    critic_tokens: int | None  # None without a critic
    reference_tokens: int | None  # None without a reference

    @property
    def training_state_gib(self) -> float:
        return self.state_gib + max(self.grads_gib, self.critic_grads_gib)

    @property
    def update_peak_gib(self) -> float:
        return self.state_gib + self.grads_gib + self.activations_gib + self.vllm_asleep_gib + self.overhead_gib

    @property
    def critic_update_peak_gib(self) -> float:
        if self.critic_tokens is None:
            return 0.0
        return (self.state_gib + self.critic_grads_gib + self.critic_activations_gib + self.vllm_asleep_gib
                + self.overhead_gib)

    @property
    def log_prob_peak_gib(self) -> float:
        return self.state_gib + self.log_prob_gib + self.vllm_asleep_gib + self.overhead_gib

    @property
    def reference_peak_gib(self) -> float:
        if self.reference_tokens is None:
            return 0.0
        return self.state_gib + self.reference_gib + self.vllm_asleep_gib + self.overhead_gib

    @property
    def training_peak_gib(self) -> float:
        return max(self.update_peak_gib, self.critic_update_peak_gib, self.log_prob_peak_gib, self.reference_peak_gib)

    @property
    def weight_sync_peak_gib(self) -> float:
        """vLLM's weights come back while the training state is still resident, then the parameters
        go over in buckets (verl/workers/engine_workers.py 766-808); the KV cache comes back after."""
        return self.resident_during_rollout_gib + self.vllm_weights_gib + self.weight_sync_bucket_gib + self.overhead_gib

    @property
    def rollout_peak_gib(self) -> float:
        return self.resident_during_rollout_gib + self.vllm_gib + self.overhead_gib

    @property
    def peak_gib(self) -> float:
        return max(self.training_peak_gib, self.rollout_peak_gib, self.weight_sync_peak_gib)

    def summary(self) -> str:
        critic = (
            f"; critic update {self.critic_update_peak_gib:.1f} (activations {self.critic_activations_gib:.1f} at "
            f"{self.critic_tokens} tokens)" if self.critic_tokens is not None else ""
        )
        reference = (
            f"; reference log-probs {self.reference_peak_gib:.1f} (its weights on the CPU, {self.reference_gib:.1f} on "
            f"the GPU at {self.reference_tokens} tokens)" if self.reference_tokens is not None else ""
        )
        return (
            f"training {self.training_peak_gib:.1f} GiB (update {self.update_peak_gib:.1f}: state {self.state_gib:.1f} + "
            f"gradients {self.grads_gib:.1f} + activations {self.activations_gib:.1f} at {self.tokens_per_micro_batch} "
            f"tokens; old log-probs {self.log_prob_peak_gib:.1f}: logits and entropy {self.log_prob_gib:.1f} at "
            f"{self.log_prob_tokens} tokens{reference}{critic}; each with vLLM asleep {self.vllm_asleep_gib:.1f} + overhead "
            f"{self.overhead_gib:.0f}); rollout {self.rollout_peak_gib:.1f} GiB (resident state "
            f"{self.resident_during_rollout_gib:.1f} + vLLM {self.vllm_gib:.1f}); weight sync {self.weight_sync_peak_gib:.1f} "
            f"GiB; of {self.gpu_gib:.0f} GiB per GPU"
        )


def _dtype_bytes(value, key: str) -> int:
    try:
        return _DTYPE_BYTES[str(value)]
    except KeyError:
        from tinyzero.recipe import CheckError

        raise CheckError(f"{key}={value!r}: use one of {', '.join(_DTYPE_BYTES)}") from None


def _fsdp_model(fsdp, key: str, trainable: bool, forward_only: bool = False) -> FsdpModel:
    return FsdpModel(
        param_bytes=_dtype_bytes(fsdp.get("model_dtype", "fp32"), f"{key}.model_dtype"),
        trainable=trainable,
        param_offload=bool(fsdp.get("param_offload")),
        optimizer_offload=bool(fsdp.get("optimizer_offload")),
        cpu_offload=forward_only and str(fsdp.get("strategy", "fsdp")) in ("fsdp", "fsdp2"),
    )


@dataclass(frozen=True)
class MicroBatch:
    """The most tokens one micro-batch of a pass holds, and the verl key that sets it."""

    tokens: int
    key: str  # the token budget with dynamic batch sizes, else the micro-batch size (sequences)
    dynamic: bool
    packed: bool  # use_remove_padding: the micro-batch's sequences are packed into one row


CRITIC_BUDGET_KEY = "critic.ppo_infer_max_token_len_per_gpu"


def micro_batches(config: DictConfig) -> dict[str, MicroBatch]:
    """The passes of a step over the sequences, by name (update, log_prob, reference, critic), each
    with its micro-batch. The critic's is `critic.ppo_infer_max_token_len_per_gpu`, a field of verl's
    CriticConfig that its YAML leaves out (set it with `+`): verl 0.9.1's trainer gives the critic's
    engine that budget for its update and its values alike (trainer/ppo/v1/trainer_base.py 266-268),
    and the engine batches dynamically by default (workers/config/engine.py 100), so
    critic.ppo_max_token_len_per_gpu is not read."""
    from omegaconf import OmegaConf
    from verl.workers.config.critic import CriticConfig

    from tinyzero.train.checks import max_sequence_length

    arr = config.actor_rollout_ref
    sequence = max_sequence_length(config)
    packed = bool(arr.model.use_remove_padding)

    def micro_batch(section: str, dynamic: bool, budget_key: str, size_key: str) -> MicroBatch:
        node = OmegaConf.select(config, section)
        if dynamic:
            return MicroBatch(int(node[budget_key]), f"{section}.{budget_key}", True, packed)
        return MicroBatch(int(node[size_key] or 1) * sequence, f"{section}.{size_key}", False, packed)

    critic_budget = config.critic.get("ppo_infer_max_token_len_per_gpu")
    if critic_budget is None:
        critic_budget = CriticConfig.__dataclass_fields__["ppo_infer_max_token_len_per_gpu"].default
    return {
        "update": micro_batch("actor_rollout_ref.actor", arr.actor.use_dynamic_bsz, "ppo_max_token_len_per_gpu",
                              "ppo_micro_batch_size_per_gpu"),
        "log_prob": micro_batch("actor_rollout_ref.rollout", arr.rollout.log_prob_use_dynamic_bsz,
                                "log_prob_max_token_len_per_gpu", "log_prob_micro_batch_size_per_gpu"),
        "reference": micro_batch("actor_rollout_ref.ref", arr.ref.log_prob_use_dynamic_bsz,
                                 "log_prob_max_token_len_per_gpu", "log_prob_micro_batch_size_per_gpu"),
        "critic": MicroBatch(int(critic_budget), CRITIC_BUDGET_KEY, True, bool(config.critic.model.use_remove_padding)),
    }


def settings_from_config(config: DictConfig) -> MemorySettings:
    """The values of verl's keys that decide memory, for the estimate."""
    from verl.trainer.ppo.utils import need_reference_policy

    from tinyzero.train.checks import gpus_needed, uses_critic

    arr = config.actor_rollout_ref
    actor, rollout = arr.actor, arr.rollout
    tokens = {name: batch.tokens for name, batch in micro_batches(config).items()}
    critic = uses_critic(config)
    return MemorySettings(
        n_gpus=gpus_needed(config),
        actor=_fsdp_model(actor.fsdp_config, "actor_rollout_ref.actor.fsdp_config", trainable=True),
        reference=_fsdp_model(arr.ref.fsdp_config, "actor_rollout_ref.ref.fsdp_config", trainable=False, forward_only=True)
        if need_reference_policy(config) else None,
        critic=_fsdp_model(config.critic.fsdp, "critic.fsdp", trainable=True) if critic else None,
        update_tokens=tokens["update"],
        log_prob_tokens=tokens["log_prob"],
        critic_tokens=tokens["critic"],
        reference_tokens=tokens["reference"],
        gradient_checkpointing=bool(arr.model.enable_gradient_checkpointing),
        critic_gradient_checkpointing=bool(config.critic.model.get("enable_gradient_checkpointing", True)),
        entropy_fused=bool(actor.fsdp_config.get("use_torch_compile", True) or actor.entropy_from_logits_with_chunking),
        vllm_share=float(rollout.gpu_memory_utilization),
        vllm_sleeps=rollout.get("enable_sleep_mode") is not False and bool(rollout.free_cache_engine),
        rollout_tp=int(rollout.tensor_model_parallel_size),
        weight_sync_bucket_mib=int(rollout.checkpoint_engine.update_weights_bucket_megabytes),
    )


def layer_activation_bytes(shape: ModelShape, tokens: int, checkpointing: bool) -> float:
    """Activations of the decoder layers for a micro-batch, in bf16."""
    one_layer = tokens * (10 * shape.hidden_size + 4 * shape.intermediate_size) * 2
    if checkpointing:  # each layer keeps its input; one layer at a time is recomputed in full
        return tokens * shape.hidden_size * shape.num_layers * 2 + one_layer
    return one_layer * shape.num_layers


def estimate(settings: MemorySettings, shape: ModelShape, gpu_gib: float) -> MemoryEstimate:
    """A per-GPU estimate of verl's FSDP hybrid engine: FSDP shards over all GPUs, vLLM takes turns with training."""
    n = shape.n_params
    models = [model for model in (settings.actor, settings.reference, settings.critic) if model is not None]
    shard = settings.n_gpus * GIB  # bytes to GiB per GPU
    vocab = shape.vocab_size
    critic_tokens = settings.critic_tokens if settings.critic is not None else None
    reference_tokens = settings.reference_tokens if settings.reference is not None else None
    vllm = settings.vllm_share * gpu_gib

    def forward_activations(tokens: int) -> float:  # no gradient: one layer's at a time
        return layer_activation_bytes(shape, tokens, checkpointing=False) / shape.num_layers

    return MemoryEstimate(
        gpu_gib=gpu_gib,
        state_gib=sum(model.state_bytes(n) for model in models) / shard,
        grads_gib=settings.actor.grad_bytes(n) / shard,
        critic_grads_gib=settings.critic.grad_bytes(n) / shard if settings.critic is not None else 0.0,
        activations_gib=(layer_activation_bytes(shape, settings.update_tokens, settings.gradient_checkpointing)
                         + settings.update_tokens * vocab * UPDATE_LOGIT_BYTES) / GIB,
        critic_activations_gib=layer_activation_bytes(shape, critic_tokens, settings.critic_gradient_checkpointing) / GIB
        if critic_tokens is not None else 0.0,
        log_prob_gib=(forward_activations(settings.log_prob_tokens)
                      + settings.log_prob_tokens * vocab * LOG_PROB_LOGIT_BYTES[settings.entropy_fused]) / GIB,
        reference_gib=(settings.reference.gathered_bytes(shape) + forward_activations(reference_tokens)
                       + reference_tokens * vocab * REFERENCE_LOGIT_BYTES) / GIB if reference_tokens is not None else 0.0,
        resident_during_rollout_gib=sum(model.resident_bytes(n) for model in models) / shard,
        vllm_gib=vllm,
        vllm_asleep_gib=VLLM_ASLEEP_GIB if settings.vllm_sleeps else vllm,
        vllm_weights_gib=n * 2 / settings.rollout_tp / GIB,  # bf16 weights, split by tensor parallelism
        weight_sync_bucket_gib=settings.weight_sync_bucket_mib / 1024,
        overhead_gib=OVERHEAD_GIB,
        tokens_per_micro_batch=settings.update_tokens,
        log_prob_tokens=settings.log_prob_tokens,
        critic_tokens=critic_tokens,
        reference_tokens=reference_tokens,
    )


def estimate_memory(config: DictConfig, shape: ModelShape, gpu_gib: float) -> MemoryEstimate:
    """The estimate for a composed config."""
    return estimate(settings_from_config(config), shape, gpu_gib)


def check_memory(estimate: MemoryEstimate) -> str:
    from tinyzero.recipe import CheckError

    if estimate.peak_gib <= estimate.gpu_gib:
        return estimate.summary()
    advice = []
    if max(estimate.rollout_peak_gib, estimate.weight_sync_peak_gib) > estimate.gpu_gib:
        share_that_fits = (estimate.gpu_gib - estimate.resident_during_rollout_gib - estimate.overhead_gib) / estimate.gpu_gib
        advice.append(
            f"while vLLM generates, the training state stays resident: lower "
            f"actor_rollout_ref.rollout.gpu_memory_utilization (at most {max(share_that_fits, 0):.2f} fits), or "
            "offload it with actor_rollout_ref.actor.fsdp_config.optimizer_offload=true / param_offload=true "
            "(and actor_rollout_ref.ref.fsdp_config.param_offload=true)"
        )
    if estimate.update_peak_gib > estimate.gpu_gib:
        advice.append(
            "during the update: fewer tokens per GPU (actor_rollout_ref.actor.ppo_max_token_len_per_gpu, or "
            "ppo_micro_batch_size_per_gpu without dynamic batch sizes), or enable "
            "actor_rollout_ref.model.enable_gradient_checkpointing=true"
        )
    if estimate.log_prob_peak_gib > estimate.gpu_gib:
        advice.append(
            "computing the old log-probs and entropy: fewer tokens per GPU "
            "(actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu), or "
            "actor_rollout_ref.actor.entropy_from_logits_with_chunking=true"
        )
    if estimate.critic_update_peak_gib > estimate.gpu_gib:
        advice.append(f"during the critic's update: fewer tokens per GPU (+{CRITIC_BUDGET_KEY})")
    if estimate.reference_peak_gib > estimate.gpu_gib:
        advice.append("computing the reference's log-probs: fewer tokens per GPU "
                      "(actor_rollout_ref.ref.log_prob_max_token_len_per_gpu)")
    advice.append("more GPUs (trainer.n_gpus_per_node / trainer.nnodes) shard the training state further")
    raise CheckError(
        f"the run is estimated not to fit in GPU memory: {estimate.summary()}.\nTo fit:\n  - "
        + "\n  - ".join(advice)
        + "\n(set gpu_memory_gib=N if the GPUs here are not the ones the run will use)"
    )
