"""Checks run before training starts: each catches in seconds what verl would otherwise turn into a
Ray hang or an out-of-memory error an hour in, and says which key to change.

Every check is a function of the composed config (an OmegaConf DictConfig with verl's keys) that
returns a one-line summary when it passes and raises `CheckError` with the fix when it does not.
`tinyzero.train` runs them all before launch; a dry run reports the GPU check instead of failing.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import warnings
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

GIB = 1024**3
# A GPU's memory when none is visible here and gpu_memory_gib is unset: an H200 as torch reports it.
DEFAULT_GPU_MEMORY_GIB = 139.0
# CUDA context, NCCL buffers and allocator fragmentation on each GPU.
OVERHEAD_GIB = 3.0


class CheckError(Exception):
    """A check failed; the message names the keys, the values and what to change."""


# --- GPUs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GpuInventory:
    count: int
    memory_gib: float | None  # one GPU's memory, when it could be read
    source: str  # where the count came from, for messages


def gpus_needed(config: DictConfig) -> int:
    return int(config.trainer.n_gpus_per_node) * int(config.trainer.nnodes)


def max_sequence_length(config: DictConfig) -> int:
    """The longest sequence a step can hold: the whole prompt and the whole response."""
    return int(config.data.max_prompt_length) + int(config.data.max_response_length)


def count_gpus(ray_address: str | None = None) -> GpuInventory:
    """GPUs available to the run: a Ray cluster's (attached or already initialised here), else local CUDA."""
    import ray

    if ray_address and not ray.is_initialized():
        try:
            ray.init(address=ray_address, logging_level="ERROR", log_to_driver=False)
        except Exception as error:  # Ray raises ConnectionError, RuntimeError, ValueError here
            raise CheckError(
                f"cannot reach the Ray cluster at ray_address={ray_address!r}: {error}. Start it with "
                "`ray start --head` on the head node, or drop ray_address (and unset RAY_ADDRESS) to run locally."
            ) from error
        try:
            return _ray_inventory(f"Ray cluster at {ray_address}")
        finally:
            ray.shutdown()  # verl's run_ppo connects again, with its runtime environment
    if ray.is_initialized():
        return _ray_inventory("the Ray instance of this process")

    import torch

    if not torch.cuda.is_available():
        return GpuInventory(0, None, "local CUDA")
    count = torch.cuda.device_count()
    memory = torch.cuda.get_device_properties(0).total_memory / GIB
    return GpuInventory(count, memory, "local CUDA")


def _ray_inventory(source: str) -> GpuInventory:
    import ray

    return GpuInventory(int(ray.cluster_resources().get("GPU", 0)), None, source)


def check_gpus(config: DictConfig, inventory: GpuInventory) -> str:
    needed = gpus_needed(config)
    per_node, nnodes = config.trainer.n_gpus_per_node, config.trainer.nnodes
    if inventory.count < needed:
        raise CheckError(
            f"found {inventory.count} GPU(s) ({inventory.source}) but the config needs {needed} = "
            f"trainer.n_gpus_per_node ({per_node}) x trainer.nnodes ({nnodes}). Run where {needed} GPUs are "
            f"visible, attach to a Ray cluster that has them (ray_address=HEAD_IP:6379 or RAY_ADDRESS), or "
            f"change trainer.n_gpus_per_node / trainer.nnodes (the batch check then says what else must change)."
        )
    return f"{inventory.count} GPU(s) found ({inventory.source}), {needed} needed"


# --- Names verl looks up late ----------------------------------------------------------------


def check_names(config: DictConfig) -> str:
    """Names verl resolves in its registries only once Ray, the models and vLLM are up, minutes into
    the run, and that its validate_config does not look at: checked against those registries now."""
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY
    from verl.utils.tracking import Tracking
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    loggers = set(Tracking.supported_backend) | {"tracking"}  # verl still accepts `tracking`, a deprecated wandb
    named = [
        ("algorithm.adv_estimator", config.algorithm.adv_estimator, set(ADV_ESTIMATOR_REGISTRY)),
        # The registry's names only: loading an engine class would import vLLM, absent on a CPU machine.
        ("actor_rollout_ref.rollout.name", config.actor_rollout_ref.rollout.name, set(RolloutReplicaRegistry._registry)),
        *(("trainer.logger", logger, loggers) for logger in as_list(config.trainer.logger)),
    ]
    problems = []
    for key, value, known in named:
        if value not in known:
            close = difflib.get_close_matches(str(value), sorted(known), n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            problems.append(f"{key}: verl knows no {value!r}; {hint}verl 0.9.1 has {', '.join(sorted(known))}")
    if problems:
        raise CheckError("\n  - ".join(["unknown name(s):", *problems]))
    return "algorithm, rollout engine and loggers are known to verl"


# --- Batch arithmetic ------------------------------------------------------------------------


def check_batch_arithmetic(config: DictConfig) -> str:
    """What verl requires of batch sizes and parallelism, with key names; then verl's own validate_config."""
    n_gpus = gpus_needed(config)
    actor = config.actor_rollout_ref.actor
    rollout = config.actor_rollout_ref.rollout
    prompts = int(config.data.train_batch_size)
    group = int(rollout.n)
    mini = int(actor.ppo_mini_batch_size)
    if n_gpus < 1:
        raise CheckError(f"trainer.n_gpus_per_node x trainer.nnodes is {n_gpus}; it must be at least 1")

    problems = []
    if (prompts * group) % n_gpus:
        problems.append(
            f"data.train_batch_size ({prompts}) x actor_rollout_ref.rollout.n ({group}) = {prompts * group} "
            f"responses per step must divide evenly over {n_gpus} GPUs; pick data.train_batch_size as a "
            f"multiple of {n_gpus // math.gcd(group, n_gpus)}"
        )
    if mini > prompts or prompts % mini:
        problems.append(
            f"actor_rollout_ref.actor.ppo_mini_batch_size ({mini}) must divide data.train_batch_size ({prompts}) "
            "(both count prompts); e.g. set it to half of data.train_batch_size"
        )
    elif (mini * group) % n_gpus:
        problems.append(
            f"actor_rollout_ref.actor.ppo_mini_batch_size ({mini}) x rollout.n ({group}) must divide evenly over "
            f"{n_gpus} GPUs"
        )
    elif not actor.use_dynamic_bsz:
        per_gpu = mini * group // n_gpus
        micro = actor.ppo_micro_batch_size_per_gpu
        if micro is None or per_gpu % int(micro):
            problems.append(
                f"with use_dynamic_bsz=false, each GPU gets {per_gpu} sequences per mini-batch, which "
                f"actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu ({micro}) must divide"
            )
    sequence = max_sequence_length(config)
    if actor.use_dynamic_bsz and int(actor.ppo_max_token_len_per_gpu) < sequence:
        problems.append(
            f"actor_rollout_ref.actor.ppo_max_token_len_per_gpu ({actor.ppo_max_token_len_per_gpu}) is below one "
            f"full sequence, data.max_prompt_length + data.max_response_length = {sequence}; raise it to at least {sequence}"
        )
    tp = int(rollout.tensor_model_parallel_size)
    if tp < 1 or int(config.trainer.n_gpus_per_node) % tp:
        problems.append(
            f"actor_rollout_ref.rollout.tensor_model_parallel_size ({tp}) must divide trainer.n_gpus_per_node "
            f"({config.trainer.n_gpus_per_node}): one vLLM replica spans tensor_model_parallel_size GPUs of one node"
        )
    if problems:
        raise CheckError("batch sizes do not fit the GPUs:\n  - " + "\n  - ".join(problems))

    run_verl_validate_config(config)
    return (
        f"{prompts} prompts x {group} answers = {prompts * group} responses per step over {n_gpus} GPU(s), "
        f"{prompts // mini} policy update(s) per step, {n_gpus // tp} vLLM replica(s) of {tp} GPU(s)"
    )


def uses_critic(config: DictConfig) -> bool:
    """verl's rule: a critic for GAE (PPO), none for GRPO, unless critic.enable says otherwise."""
    from verl.trainer.ppo.utils import need_critic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # need_critic warns that GRPO disables the critic: intended
        return need_critic(config)


def run_verl_validate_config(config: DictConfig) -> None:
    """verl's own validation, exactly as verl's main() calls it; failures become CheckError."""
    from hydra.errors import InstantiationException
    from verl.trainer.ppo.utils import need_reference_policy
    from verl.utils.config import validate_config

    try:
        validate_config(config, use_reference_policy=need_reference_policy(config), use_critic=uses_critic(config))
    except (AssertionError, ValueError) as error:
        raise CheckError(f"verl's validate_config rejected the config: {error}") from error
    except InstantiationException as error:  # verl builds the critic's model config, tokenizer included
        raise CheckError(
            f"verl's validate_config could not load a model it needs: {error}. With a hub name this needs the "
            "network (or the model in the Hugging Face cache); otherwise point critic.model.path at a local folder."
        ) from error


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

_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


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
    if not _HUB_NAME.match(str(model_path)):
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


# --- Data files ------------------------------------------------------------------------------


def check_dataset_file(path: str, key: str, config: DictConfig) -> str:
    """A parquet file that verl's RLHFDataset and our reward can use: the columns must be there."""
    import pyarrow.parquet as pq

    expanded = Path(os.path.expanduser(path))
    if not expanded.is_file():
        raise CheckError(f"{key}: {path!r} does not exist. Point it at a parquet file, or set it to null to "
                         "use the recipe's generated task data.")
    try:
        schema = pq.read_schema(expanded)
    except Exception as error:  # pyarrow raises ArrowInvalid and OSError subclasses for non-parquet files
        raise CheckError(f"{key}: {path!r} is not a readable parquet file ({error}).") from error
    needed = {
        config.data.prompt_key: "the chat messages, a list of {role, content}",
        config.data.reward_fn_key: "the task name our reward dispatches on (countdown / multiply)",
        "reward_model": "a struct whose ground_truth the reward checks against",
    }
    missing = [name for name in needed if name not in schema.names]
    if missing:
        wants = "; ".join(f"{name}: {needed[name]}" for name in missing)
        raise CheckError(
            f"{key}: {path!r} lacks column(s) {', '.join(map(repr, missing))} (it has {', '.join(schema.names)}). "
            f"verl and the reward need {wants}. `python -m data_gen` writes files in this schema."
        )
    return f"{path} has verl's columns"


def check_train_rows(rows: int, config: DictConfig) -> str:
    """verl drops the last incomplete batch: fewer rows than one batch means no step at all."""
    batch = int(config.data.train_batch_size)
    if rows < batch:
        raise CheckError(
            f"data.train_files hold {rows} rows, fewer than data.train_batch_size ({batch}): no training step "
            f"could run. Lower data.train_batch_size (and actor_rollout_ref.actor.ppo_mini_batch_size), or "
            f"generate more problems (task.train_size)."
        )
    return f"{rows} training rows, {rows // batch} steps per epoch"


# --- Unknown keys ----------------------------------------------------------------------------

# Checked elsewhere: the task block's fields by data_gen's config dataclass, which names the bad one.
_CHECKED_ELSEWHERE = frozenset({"task"})
# Top-level keys that verl's defaults list adds (config group choices), absent from its flattened copy.
_GROUP_CHOICES = {"model_engine"}


def unknown_keys(
    config: DictConfig, reference: DictConfig, prefix: str = "", skip: frozenset[str] = _CHECKED_ELSEWHERE
) -> list[str]:
    """Dotted keys of `config` that `reference` does not have, each with a close match when there is one.

    A reference section that is empty or null accepts anything (verl's pass-through dicts such as
    engine_kwargs or override_config). Dotted keys in `skip` are not looked into.
    """
    found = []
    for key in config.keys():
        dotted = f"{prefix}{key}"
        if dotted in skip or (not prefix and key in _GROUP_CHOICES | {"hydra"}):
            continue
        if key not in reference.keys():  # `in` alone says False for a present but missing (???) value
            close = difflib.get_close_matches(str(key), [str(k) for k in reference.keys()], n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            found.append(f"{dotted}{hint}")
            continue
        value, expected = config._get_node(key), reference._get_node(key)
        if isinstance(value, DictConfig) and isinstance(expected, DictConfig) and not expected._is_none():
            if len(expected) and not value._is_none():
                found.extend(unknown_keys(value, expected, prefix=f"{dotted}.", skip=skip))
    return found


def check_unknown_keys(config: DictConfig, reference: DictConfig, skip: frozenset[str] = _CHECKED_ELSEWHERE) -> str:
    """verl silently ignores a key it does not define (even one added with +): a typo would go unnoticed."""
    bad = unknown_keys(config, reference, skip=skip)
    if bad:
        raise CheckError(
            f"unknown config key(s): {', '.join(bad)}. Fix the spelling "
            "(`python -m tinyzero.train +recipe=NAME --cfg job` prints every valid key)."
        )
    return "every key is known to verl or tinyzero"


def reference_config() -> DictConfig:
    """verl's complete ppo_trainer (the generated, flattened copy verl ships) merged with our primary config."""
    verl_flat = OmegaConf.load(files("verl.trainer.config").joinpath("_generated_ppo_trainer.yaml"))
    ours = OmegaConf.load(files("tinyzero").joinpath("conf/train.yaml"))
    ours.pop("defaults", None)
    return OmegaConf.merge(verl_flat, ours)


def as_list(value) -> list:
    """A key that takes one value or a list of them (data.train_files, trainer.logger), as a list."""
    return list(value) if isinstance(value, (list, tuple, ListConfig)) else [value]
