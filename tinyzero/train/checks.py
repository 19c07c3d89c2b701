"""Checks run before training starts: each catches in seconds what verl would otherwise turn into a
Ray hang or an out-of-memory error an hour in, and says which key to change.

Every check is a function of the composed config (an OmegaConf DictConfig with verl's keys) that
returns a one-line summary when it passes and raises `CheckError` with the fix when it does not.
`tinyzero.train` runs them all before launch; a dry run reports the GPU check instead of failing.
The model and memory checks, a domain of their own, live in tinyzero.train.memory.
"""

from __future__ import annotations

import difflib
import math
import os
import warnings
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from omegaconf import DictConfig, ListConfig, OmegaConf

from tinyzero.recipe import CheckError, primary_config_file
from tinyzero.train.memory import GIB


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
        from tinyzero.train.cluster import cuda_mismatch_note

        # NVIDIA GPUs that torch cannot use (driver too old for its CUDA, a CPU build) say so first.
        note = cuda_mismatch_note() if inventory.count == 0 and inventory.source == "local CUDA" else None
        raise CheckError(
            (f"{note}\n" if note else "")
            + f"found {inventory.count} GPU(s) ({inventory.source}) but the config needs {needed} = "
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
    mini = int(actor.ppo_mini_batch_size)  # each of these is at least 1 (tinyzero.train.ranges)

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
    if int(config.trainer.n_gpus_per_node) % tp:
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
        raise CheckError(f"verl's validate_config rejected the config: {verl_message(error)}") from error
    except InstantiationException as error:
        if isinstance(error.__cause__, (AssertionError, ValueError)):  # a verl dataclass's own check (its optim's)
            raise CheckError(f"verl's validate_config rejected the config: {verl_message(error.__cause__)}") from error
        # verl builds the critic's model config, tokenizer included
        raise CheckError(
            f"verl's validate_config could not load a model it needs: {error}. With a hub name this needs the "
            "network (or the model in the Hugging Face cache); otherwise point critic.model.path at a local folder."
        ) from error


def verl_message(error: BaseException) -> str:
    """verl's message; for a bare `assert` (e.g. `assert self.lr_scheduler_type in ["constant", "cosine"]`,
    verl/workers/config/optimizer.py 123), which has none, the assertion and where it is."""
    import traceback

    if str(error):
        return str(error)
    frame = traceback.extract_tb(error.__traceback__)[-1]
    return f"`{frame.line}` failed ({Path(frame.filename).parent.name}/{Path(frame.filename).name} {frame.lineno})"


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
    from data_gen.dataset import ROW_COLUMNS
    from data_gen.tasks import TASK_SPECS

    # verl lets the prompt and data_source columns be renamed (data.prompt_key, data.reward_fn_key).
    needed = {
        config.data.prompt_key: ROW_COLUMNS["prompt"],
        config.data.reward_fn_key: f"{ROW_COLUMNS['data_source']} ({' / '.join(TASK_SPECS)})",
        "reward_model": ROW_COLUMNS["reward_model"],
    }
    missing = [name for name in needed if name not in schema.names]
    if missing:
        wants = "; ".join(f"{name}: {needed[name]}" for name in missing)
        raise CheckError(
            f"{key}: {path!r} lacks column(s) {', '.join(map(repr, missing))} (it has {', '.join(schema.names)}). "
            f"verl and the reward need {wants}. `python -m data_gen` writes files in this schema."
        )
    return f"{path} has verl's columns"


def load_run_tokenizer(config: DictConfig):
    """The tokenizer verl will use, with the run's chat template; None when it is not on this machine
    (a hub name not in the local cache: hub names are not looked up on the network here)."""
    from transformers import AutoTokenizer

    model = config.actor_rollout_ref.model
    path = str(model.get("tokenizer_path") or model.path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            os.path.expanduser(path), trust_remote_code=bool(model.trust_remote_code), local_files_only=True
        )
    except Exception:  # OSError (not cached), ValueError (odd folder): the check says it did not measure
        return None
    if model.custom_chat_template is not None:
        tokenizer.chat_template = model.custom_chat_template
    return tokenizer


def check_prompt_lengths(config: DictConfig) -> str:
    """Every prompt, rendered and tokenized as verl's agent loop does, fits data.max_prompt_length.

    Too long a prompt is cut from the left in the rollouts without a word although verl's
    data.truncation is `error` (a tiny tokenizer's 269-token prompt against 256 lost its first
    sentence), so the policy trains on text the dataset never held. Measured with the run's own
    tokenizer and chat template before anything starts; for every recipe.
    """
    import pyarrow.parquet as pq

    limit = int(config.data.max_prompt_length)
    tokenizer = load_run_tokenizer(config)
    if tokenizer is None:
        return (f"prompt lengths not measured: the tokenizer of {config.actor_rollout_ref.model.path} is not on this "
                f"machine (verl downloads it at launch); data.max_prompt_length={limit}")
    template_kwargs = dict(config.data.get("apply_chat_template_kwargs") or {})
    longest = (0, "", -1, "")  # (tokens, file, row, prompt text)
    for key in ("train_files", "val_files"):
        for path in as_list(config.data[key]):
            prompts = pq.read_table(os.path.expanduser(str(path)), columns=[config.data.prompt_key]).column(0).to_pylist()
            texts = [tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **template_kwargs)
                     for messages in prompts]
            lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
            row = max(range(len(lengths)), key=lengths.__getitem__, default=-1)
            if row >= 0 and lengths[row] > longest[0]:
                longest = (lengths[row], str(path), row, texts[row])
    tokens, path, row, text = longest
    if tokens > limit:
        shown = text if len(text) <= 160 else text[:100] + " ... " + text[-50:]
        raise CheckError(
            f"a prompt is {tokens} tokens long with this model's tokenizer, more than data.max_prompt_length={limit}; "
            f"verl would cut it from the left without a word. Longest: row {row} of {path}: {shown!r}. "
            f"Raise data.max_prompt_length to at least {tokens} (or shorten the prompts)."
        )
    return f"longest prompt {tokens} tokens <= data.max_prompt_length={limit} (measured with the run's tokenizer)"


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
    engine_kwargs or override_config), and a section also takes the keys verl or Ray read without
    verl's YAML listing them (`read_without_yaml`). Dotted keys in `skip` are not looked into.
    """
    found = []
    also_read = read_without_yaml(prefix.rstrip("."), reference) if prefix else set()
    for key in config.keys():
        dotted = f"{prefix}{key}"
        if dotted in skip or (not prefix and key in _GROUP_CHOICES | {"hydra"}):
            continue
        if key not in reference.keys() and key in also_read:
            continue
        if key not in reference.keys():  # `in` alone says False for a present but missing (???) value
            close = difflib.get_close_matches(str(key), [str(k) for k in reference.keys()] + sorted(also_read), n=1)
            hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
            found.append(f"{dotted}{hint}")
            continue
        value, expected = config._get_node(key), reference._get_node(key)
        if isinstance(value, DictConfig) and isinstance(expected, DictConfig) and not expected._is_none():
            if len(expected) and not value._is_none():
                found.extend(unknown_keys(value, expected, prefix=f"{dotted}.", skip=skip))
    return found


def read_without_yaml(section: str, reference: DictConfig) -> set[str]:
    """Keys of a section that verl or Ray read although verl's YAML leaves them out, so that only
    `+key=value` sets them: the fields of the dataclass verl builds the section into (its `_target_`,
    e.g. `+actor_rollout_ref.rollout.enable_sleep_mode`, a RolloutConfig field), and ray.init's
    parameters for `ray_kwargs.ray_init` (verl passes that section to ray.init whole,
    verl/trainer/main_ppo.py 74; e.g. `+ray_kwargs.ray_init.num_gpus`)."""
    import inspect

    if section == "ray_kwargs.ray_init":
        import ray

        parameters = inspect.signature(ray.init).parameters.values()
        return {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    target = reference.get("_target_") if "_target_" in reference.keys() else None
    if not isinstance(target, str):
        return set()
    import dataclasses

    from hydra.utils import get_class

    try:
        built = get_class(target)
    except Exception:  # a target that does not import here accepts nothing more
        return set()
    return {field.name for field in dataclasses.fields(built)} if dataclasses.is_dataclass(built) else set()


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
    ours = OmegaConf.load(primary_config_file())
    ours.pop("defaults", None)
    return OmegaConf.merge(verl_flat, ours)


def as_list(value) -> list:
    """A key that takes one value or a list of them (data.train_files, trainer.logger), as a list."""
    return list(value) if isinstance(value, (list, tuple, ListConfig)) else [value]
