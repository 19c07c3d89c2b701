"""`python -m tinyzero.train +recipe=countdown_3b`: an R1-Zero run on verl, checked before it starts.

The story of a launch, top to bottom:
1. Hydra composes verl 0.9.1's own `ppo_trainer`, tinyzero's defaults (tinyzero/train/conf/train.yaml),
   one recipe (recipes/NAME.yaml, found by tinyzero.recipe) and the command line.
2. The checks (tinyzero.train.checks, .ranges, .memory, .cluster) catch unknown keys, misspelt names
   (algorithm, rollout engine, logger), values outside their range, a bad model path, batch sizes
   that do not divide, too few GPUs or CPUs, a cluster node without tinyzero (or its verl plugin, or
   the shared storage), the CPU platform on a machine with GPUs, no C compiler where something
   compiles and a run that cannot fit in memory, each naming the key to change. The launch settles
   what verl leaves to it: the attention kernel (.attention), the stop at `</answer>` and vLLM's
   concurrency (.rollout), TransferQueue's storage units (.cluster), the compute dtype on a CPU (.cpu).
3. The task's parquet files are generated when missing, under a folder keyed by the task config.
   A recipe with a `priming` block then primes the base model on supervised traces (verl's SFT
   trainer, tinyzero.train.prime) unless the model for that exact block exists, and RL starts from it.
4. wandb goes offline when there are no credentials; the plan is printed.
5. verl's `run_ppo` launches its trainer on Ray: vLLM rollouts, our reward, FSDP updates.
`dry_run=true` stops after step 4 and prints the resolved config; it needs no GPU.
"""

from __future__ import annotations

import netrc
import os
import sys
from importlib.resources import files
from typing import NoReturn

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from tinyzero.recipe import (
    PRIMARY_CONFIG,
    CheckError,
    absolute,
    recipe_files,
    register_configs,
    task_data_dir,
    with_task_defaults,
)
from tinyzero.templates import chat_template_for
from tinyzero.train import attention, checks, cluster, cpu, memory, prime, ranges, replay, rollout

# --- Data ------------------------------------------------------------------------------------


def prepare_data(config: DictConfig) -> list[str]:
    """Point data.train_files / data.val_files at real files: the user's (checked) or generated ones."""
    notes = []
    if config.data.train_files is None or config.data.val_files is None:
        folder, generator = task_data_dir(config)
        train, test = folder / "train.parquet", folder / "test.parquet"
        if train.is_file() and test.is_file():
            notes.append(f"task data: reusing {folder}")
        else:
            import data_gen

            print(f"[tinyzero] generating {config.task.name} data into {folder} ...", flush=True)
            try:
                data_gen.write_dataset(generator, folder)
            except ValueError as error:  # e.g. fewer distinct problems exist than asked for
                raise CheckError(f"task ({config.task.name}): {error}") from error
            notes.append(f"task data: generated {folder}")
        with open_dict(config):
            if config.data.train_files is None:
                config.data.train_files = str(train)
            if config.data.val_files is None:
                config.data.val_files = str(test)
    for key in ("train_files", "val_files"):
        for path in checks.as_list(config.data[key]):
            notes.append(checks.check_dataset_file(str(path), f"data.{key}", config))
    return notes


def prepare_tiny_model(config: DictConfig) -> str | None:
    """Build the model the recipe's `tiny_model` block describes, when missing, and point
    actor_rollout_ref.model.path at it (FOLDER/tiny-qwen2-<hash>: a changed field builds anew)."""
    spec = config.get("tiny_model")
    if spec is None:
        return None
    if config.actor_rollout_ref.model.path is not None:
        raise CheckError(
            f"tiny_model and actor_rollout_ref.model.path={config.actor_rollout_ref.model.path!r} are both set: "
            "tiny_model builds the model the run trains. Set tiny_model=null to train that path instead."
        )
    import dataclasses

    from tinyzero.models import TinyModelConfig, build_keyed

    fields = OmegaConf.to_container(spec, resolve=True)
    folder = fields.pop("folder", None)
    if folder is None:
        raise CheckError("tiny_model.folder is missing: the folder the tiny model is saved under, e.g. ${data_root}/models")
    try:
        model_config = TinyModelConfig(**fields)
        model_config.validate()
    except TypeError as error:
        names = ", ".join(field.name for field in dataclasses.fields(TinyModelConfig))
        raise CheckError(f"tiny_model: {error}; it takes folder, {names}") from error
    except ValueError as error:
        raise CheckError(f"tiny_model: {error}") from error
    path, built = build_keyed(absolute(folder), model_config)
    with open_dict(config):
        config.actor_rollout_ref.model.path = str(path)
    return f"tiny model: {'built' if built else 'reusing'} {path}"


def problems_line(config: DictConfig) -> str | None:
    """The plan's count of the three problem sets (held out, GRPO's, priming's) when the data is the
    generated task's; None for the user's own files."""
    import json

    from data_gen.dataset import INFO_FILE

    folder, generator = task_data_dir(config)
    if str(config.data.val_files) != str(folder / "test.parquet") or not (folder / INFO_FILE).is_file():
        return None
    info = json.loads((folder / INFO_FILE).read_text())
    counts = info["counts"]
    sets = [f"held out {counts['test']:,} (validation)", f"GRPO {counts['train']:,}"]
    if config.get("priming") is not None:
        size = int(config.priming.traces.size)
        reserve = getattr(generator, "priming_reserve", 0)
        sets.append(f"priming traces {size:,}" + (" (their own reserve: disjoint from both)" if reserve >= size
                                                  else " (the first GRPO problems: task.priming_reserve=0)"))
    space = info.get("space")
    used = f"; {space['share_used']:.0%} of the {space['distinct_problems']:,} distinct problems" if space else ""
    return ", ".join(sets) + used


def zero_advantage_note(config: DictConfig) -> str | None:
    """Said plainly, so the run does not look like training: a freshly built random model never
    writes an answer, the project's reward gives every response 0, and GRPO's advantages (score
    minus the group's mean) are all 0, so the policy loss and the weights do not move."""
    reward = config.reward.custom_reward_function
    random_start = config.get("tiny_model") is not None and config.get("priming") is None
    if not random_start or reward.path != "pkg://tinyzero.rewards" or config.algorithm.adv_estimator != "grpo":
        return None
    return ("a freshly built random model scores 0 on every answer, so every GRPO advantage is 0 and the weights "
            "do not change: this run exercises verl's loop, not learning")


# --- Priming ---------------------------------------------------------------------------------


def check_priming_machine(inventory: checks.GpuInventory, cpu_run: bool = False) -> str:
    """SFT runs on the machine that launches: a Ray head without GPUs would prime on its CPU.
    A CPU run (logical GPUs on this machine) primes on this CPU by design."""
    from verl.utils.device import get_device_name

    here = get_device_name()
    if here == "cpu" and inventory.count and inventory.source != "local CUDA" and not cpu_run:
        raise CheckError(
            f"priming runs on the machine that launches, and this one has no GPU (the {inventory.count} GPU(s) "
            f"are in the {inventory.source}): launch from a GPU node, or prime once there with the same recipe "
            "and data_root; the primed model is then reused"
        )
    return f"runs on this machine ({here})"


def prepare_priming(config: DictConfig, dry_run: bool, inventory: checks.GpuInventory, cpu_run: bool = False) -> list[str]:
    """With a `priming` block, RL starts from the primed model, primed first when missing.

    After the data checks, which read the base model's tokenizer (priming keeps it). The reference
    shares actor_rollout_ref.model (the KL is to the primed start); the critic follows when it starts
    from the policy's weights (train.yaml's interpolation, or the same path written out).
    """
    if config.get("priming") is None:
        return []
    notes = []
    if not prime.is_primed(config):
        notes.append(f"check: priming {reported(lambda: check_priming_machine(inventory, cpu_run), dry_run)}")
    base = str(config.actor_rollout_ref.model.path)
    model, lines = prime.prime(config, dry_run)
    with open_dict(config):
        if not OmegaConf.is_interpolation(config.critic.model, "path") and str(config.critic.model.path) == base:
            config.critic.model.path = str(model)
        config.actor_rollout_ref.model.path = str(model)
    return lines + notes


# --- Operations ------------------------------------------------------------------------------


def wandb_has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("//")[-1].split("/")[0]
    try:
        return netrc.netrc().authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def configure_logging(config: DictConfig) -> list[str]:
    """wandb without credentials runs offline instead of prompting or crashing; say how to sync."""
    loggers = checks.as_list(config.trainer.logger)
    outputs = absolute(config.trainer.default_local_dir)
    env = {}
    notes = []
    if "wandb" in loggers and not os.environ.get("WANDB_MODE") and not wandb_has_credentials():
        env = {"WANDB_MODE": "offline", "WANDB_DIR": str(outputs)}
        notes.append(
            f"wandb: no credentials (WANDB_API_KEY or `wandb login`), logging offline under {outputs}/wandb. "
            f"Upload later with: wandb sync {outputs}/wandb/offline-run-*"
        )
    if "tensorboard" in loggers and not os.environ.get("TENSORBOARD_DIR"):
        env["TENSORBOARD_DIR"] = str(outputs / "tensorboard")
        notes.append(f"tensorboard: tensorboard --logdir {env['TENSORBOARD_DIR']}")
    if "file" in loggers and not os.environ.get("VERL_FILE_LOGGER_PATH"):
        # verl's file logger writes ./PROJECT/EXPERIMENT.jsonl and truncates it at every launch:
        # one file per launch under the experiment's folder instead.
        from datetime import datetime

        env["VERL_FILE_LOGGER_PATH"] = str(outputs / "metrics" / f"{datetime.now():%Y-%m-%d_%H-%M-%S}.jsonl")
        (outputs / "metrics").mkdir(parents=True, exist_ok=True)
        notes.append(f"metrics: one JSON line per step in {env['VERL_FILE_LOGGER_PATH']}")
    if env:
        os.environ.update(env)  # a local Ray inherits these
        with open_dict(config):  # a Ray cluster gets them through the runtime environment
            runtime_env = config.ray_kwargs.ray_init.runtime_env
            runtime_env.env_vars = {**(runtime_env.get("env_vars") or {}), **env}
    return notes


def make_output_paths_absolute(config: DictConfig) -> None:
    with open_dict(config):
        for key in ("default_local_dir", "rollout_data_dir", "validation_data_dir"):
            if config.trainer.get(key):
                config.trainer[key] = str(absolute(config.trainer[key]))


def ray_address(config: DictConfig) -> str | None:
    return config.ray_address or os.environ.get("RAY_ADDRESS") or None


def apply_prompt_style(config: DictConfig) -> None:
    """Base prompts pass through as plain text; instruct prompts use the model's own chat template."""
    try:
        template = chat_template_for(config.task.prompt_style)
    except ValueError as error:
        raise CheckError(f"task.prompt_style: {error}") from error
    if template is not None and config.actor_rollout_ref.model.custom_chat_template is None:
        with open_dict(config):
            config.actor_rollout_ref.model.custom_chat_template = template


# --- The plan --------------------------------------------------------------------------------


def train_rows(config: DictConfig) -> int:
    import pyarrow.parquet as pq

    return sum(pq.read_metadata(os.path.expanduser(str(path))).num_rows for path in checks.as_list(config.data.train_files))


def training_steps(config: DictConfig, rows: int) -> int:
    """verl stops at total_training_steps or when its epochs run out, whichever comes first."""
    per_epoch = rows // int(config.data.train_batch_size)  # verl drops the last partial batch
    steps = int(config.trainer.total_epochs) * per_epoch
    if config.trainer.total_training_steps:
        steps = min(steps, int(config.trainer.total_training_steps))
    return steps


def plan_lines(
    config: DictConfig,
    inventory: checks.GpuInventory,
    memory_line: str,
    rows: int,
    attention_line: str,
    rollout_line: str,
    platform_line: str | None = None,
    precision_line: str | None = None,
    problems: str | None = None,
) -> list[str]:
    responses = int(config.data.train_batch_size) * int(config.actor_rollout_ref.rollout.n)
    sequence = checks.max_sequence_length(config)
    algorithm = config.algorithm.adv_estimator
    zero_advantages = zero_advantage_note(config)
    return [
        f"model      {config.actor_rollout_ref.model.path}",
        *([f"platform   {platform_line}"] if platform_line else []),
        *([f"compute    {precision_line}"] if precision_line else []),
        *([f"rewards    {zero_advantages}"] if zero_advantages else []),
        f"algorithm  {algorithm}{' (PPO with a critic)' if algorithm == 'gae' else ''}, "
        f"lr {config.actor_rollout_ref.actor.optim.lr}, KL loss {config.actor_rollout_ref.actor.use_kl_loss}"
        f" (coef {config.actor_rollout_ref.actor.kl_loss_coef})",
        f"GPUs       {checks.gpus_needed(config)} needed ({config.trainer.n_gpus_per_node} per node x "
        f"{config.trainer.nnodes} node(s)); {inventory.count} found ({inventory.source})",
        f"attention  {attention_line}",
        f"rollout    {rollout_line}",
        f"memory     {memory_line}",
        f"steps      {training_steps(config, rows)}, {ranges.schedule(config)}",
        f"per step   {config.data.train_batch_size} prompts x {config.actor_rollout_ref.rollout.n} answers = "
        f"{responses} responses, at most {responses * sequence:,} tokens",
        *([f"problems   {problems}"] if problems else []),
        f"data       train {config.data.train_files}; validation {config.data.val_files}",
        f"outputs    checkpoints {config.trainer.default_local_dir}; rollouts {config.trainer.rollout_data_dir}",
    ]


# --- Checks, then launch ---------------------------------------------------------------------


def reported(check, dry_run: bool) -> str:
    """A check's summary; a dry run reports a failure (what the machine here lacks) and goes on."""
    try:
        return check()
    except CheckError as error:
        if not dry_run:
            raise
        return f"WOULD FAIL without dry_run: {error}"


def check_gpu_memory(config: DictConfig, shape, inventory: checks.GpuInventory) -> tuple[str, str]:
    """(the plan's memory line, the memory check's line): the per-GPU estimate for each phase of a step."""
    if shape is None:
        return (
            "not estimated (model shape unknown)",
            "skipped: the model's shape is unknown (not local, not cached, not in the Qwen2.5 table)",
        )
    gpu_gib = config.gpu_memory_gib or inventory.memory_gib
    gpu_source = "" if gpu_gib else " (no GPU memory read here: an H200 assumed; set gpu_memory_gib=N for others)"
    estimate = memory.estimate_memory(config, shape, float(gpu_gib or memory.DEFAULT_GPU_MEMORY_GIB))
    memory.check_memory(estimate)
    return estimate.summary(), f"fits in {estimate.gpu_gib:.0f} GiB per GPU{gpu_source}"


def check_and_prepare(config: DictConfig, dry_run: bool) -> list[str]:
    """Run every check (and data generation) in order of cost; return the plan's lines."""
    checks.check_unknown_keys(config, checks.reference_config())
    checks.check_names(config)
    ranges.check_ranges(config)  # every value within its range (tinyzero.train.ranges), before any work
    replay.check_sampler(config)
    platform = cluster.check_platform()  # tinyzero's verl plugin loaded; the CPU platform only without GPUs
    model_note = prepare_tiny_model(config)
    shape = memory.check_model(str(config.actor_rollout_ref.model.path))
    # Keys left null for the launch to size, filled before verl validates the config.
    rollout_line = rollout.configure_rollout(config)
    cluster.size_storage_units(config)
    batch = checks.check_batch_arithmetic(config)
    address = ray_address(config)
    cpu_run = cpu.is_cpu_run(config, address)  # no GPU here and logical GPUs asked for
    inventory = cpu.logical_gpu_inventory(config) if cpu_run else checks.count_gpus(address)
    platform_line = cpu.check_cpu_run(config) if cpu_run else None
    precision_line = cpu.settle_precision(config) if cpu_run else None
    machines = cluster.find_machines(config, address, inventory.count)
    attention_line = attention.apply_attention(config, checks.uses_critic(config), machines.flash_attn_error, shape)
    compiler = reported(lambda: cluster.check_compiler(config, machines, cpu_run), dry_run)
    gpus = reported(lambda: checks.check_gpus(config, inventory), dry_run)
    cpus = reported(lambda: cluster.check_cpus(config, machines), dry_run)
    nodes = cluster.check_nodes(machines)
    if inventory.source == "local CUDA" and inventory.count:
        import torch

        cluster.check_bf16(config, torch.cuda.is_bf16_supported())
    if cpu_run:
        memory_line, fit = cpu.memory_line(), reported(cpu.check_memory, dry_run)
    else:
        memory_line, fit = check_gpu_memory(config, shape, inventory)
    apply_prompt_style(config)
    data_notes = ([model_note] if model_note else []) + prepare_data(config)
    data_notes.append(checks.check_prompt_lengths(config))
    rows = train_rows(config)
    data_notes.append(checks.check_train_rows(rows, config))
    priming_notes = prepare_priming(config, dry_run, inventory, cpu_run)
    make_output_paths_absolute(config)
    logging_notes = configure_logging(config)
    if address:
        with open_dict(config):  # verl's run_ppo then connects to the cluster with its runtime environment
            config.ray_kwargs.ray_init.address = address
    checks_report = [f"check: batch   {batch}", f"check: GPUs    {gpus}", f"check: CPUs    {cpus}"]
    checks_report += [f"check: nodes   {nodes}", f"check: memory  {fit}"]
    checks_report += [f"check: platform {platform}", f"check: compiler {compiler}"]
    checks_report += [f"check: data    {note}" for note in data_notes]
    plan = plan_lines(config, inventory, memory_line, rows, attention_line, rollout_line, platform_line, precision_line,
                      problems_line(config))
    return plan + priming_notes + checks_report + logging_notes


def launch(config: DictConfig) -> None:
    """Hand over to verl exactly as verl's own main() does after its validation."""
    from verl.trainer.main_ppo import TaskRunnerV1, run_ppo
    from verl.utils.device import auto_set_device

    auto_set_device(config)
    if config.trainer.use_v1:
        run_ppo(config, task_runner_class=TaskRunnerV1)
    else:
        from verl.trainer.main_ppo_v0 import TaskRunner

        run_ppo(config, task_runner_class=TaskRunner)


def cannot_start(error: CheckError) -> NoReturn:
    print(f"[tinyzero] cannot start: {error}", file=sys.stderr, flush=True)
    sys.exit(2)


@hydra.main(config_path=None, config_name=PRIMARY_CONFIG, version_base=None)
def _hydra_main(config: DictConfig) -> None:
    dry_run = bool(config.dry_run)
    try:
        plan = check_and_prepare(config, dry_run)
    except CheckError as error:
        cannot_start(error)
    print("\n".join(f"[tinyzero] {line}" for line in plan), flush=True)
    OmegaConf.resolve(config)  # Ray workers resolve nothing: they get plain values
    if dry_run:
        print(OmegaConf.to_yaml(config), flush=True)
        print("[tinyzero] dry run: every check passed; nothing launched.", flush=True)
        return
    launch(config)


def reject_unknown_override_keys(arguments: list[str]) -> None:
    """A typo on the command line gets a did-you-mean before Hydra's 'not in struct' error."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    candidates = [a for a in arguments if "=" in a and not a.startswith("-")]
    try:
        overrides = OverridesParser.create().parse_overrides(candidates)
    except Exception:  # malformed overrides: Hydra's own parser error says it best
        return
    recipe = next((o.value() for o in overrides if o.key_or_group in ("recipe", "+recipe")), None)
    recipes = recipe_files()
    reference = checks.reference_config()
    if recipe in recipes:
        reference = OmegaConf.merge(reference, OmegaConf.load(recipes[recipe]))
    reference = with_task_defaults(reference)  # complete, so the task's generator fields are checked too
    groups = {entry.name for entry in files("verl.trainer.config").iterdir() if entry.is_dir()} | {"recipe"}
    overridden = OmegaConf.create()
    for override in overrides:
        key = override.key_or_group
        deliberate = override.is_add() or override.is_force_add() or override.is_delete()
        if not (deliberate or key.startswith("hydra") or key in groups):
            OmegaConf.update(overridden, key, None, force_add=True)
    checks.check_unknown_keys(overridden, reference, skip=frozenset())


def main() -> None:
    register_configs()  # when the app starts, not on import
    try:
        reject_unknown_override_keys(sys.argv[1:])
    except CheckError as error:
        cannot_start(error)
    _hydra_main()
