"""A run on the CPU platform: what the launch checks and settles when this machine has no
accelerator, so that verl's real loop runs on the host (tinyzero.platforms.cpu) instead of
waiting forever for GPUs or crashing in the first model build.

verl chooses tinyzero's CPU platform only when no accelerator platform is available
(`VERL_PLATFORM=cpu` forces it). Then:
- the rollout engine is vLLM's CPU build (`python -m tinyzero.setup_cpu` installs it);
- Ray must offer logical GPUs (`+ray_kwargs.ray_init.num_gpus`): verl places its workers with
  `use_gpu=True` and counts only GPUs (verl/single_controller/ray/base.py 210-242). Asking for them
  is what makes a run a CPU run; without them the GPU check reports the missing GPUs as usual;
- FSDP2: FSDP1 builds with `sync_module_states=True` (verl/workers/engine/fsdp/transformer_impl.py
  444), which broadcasts through an accelerator;
- vLLM's sleep mode off: vLLM offers it on CUDA, ROCm and XPU only (vllm/platforms/interface.py
  `is_sleep_mode_available`) and refuses the engine otherwise; verl's RolloutConfig defaults it to
  true without listing it in its YAML, hence `+actor_rollout_ref.rollout.enable_sleep_mode=false`;
  and `free_cache_engine=false`, which would put the engine to sleep between rollouts;
- a head size vLLM's CPU attention has kernels for (tinyzero.models.VLLM_CPU_HEAD_SIZES);
- `trainer.device=cpu`: verl's auto_set_device leaves "cuda" alone on a CPU platform
  (verl/utils/device.py 151-164).
Each is checked here with the key to change; recipes/countdown_tiny.yaml sets them all. So is the
host's free memory, which every process of the run shares.
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, open_dict

from tinyzero.recipe import CheckError

# Measured by `python benchmarks/bench_cpu_loop.py --steps 2`: `python -m tinyzero.train
# +recipe=countdown_tiny` peaks at 7.5 GiB, the proportional set size summed over its 34 processes.
# About ten Ray workers that each import torch and verl (three of them vLLM) hold most of it; the
# tiny model and its batches add little, so the figure stands for any CPU run of a tiny model.
CPU_RUN_MEMORY_GIB = 7.5

SLEEP_KEY = "+actor_rollout_ref.rollout.enable_sleep_mode"
LOGICAL_GPUS_KEY = "ray_kwargs.ray_init.num_gpus"


def cpu_platform_chosen() -> bool:
    """Whether verl runs on tinyzero's CPU platform in this process; CheckError when it would fall
    back to nvidia because tinyzero's verl plugin did not load (verl only logs that at debug level)."""
    import sys

    import verl  # noqa: F401  (loads the `verl.plugins` entry points)

    from tinyzero.platforms import cpu

    if not cpu.cpu_platform_chosen():
        return False
    if "tinyzero.platforms.verl_plugin" not in sys.modules:
        raise CheckError(
            "this machine has no GPU, but verl did not load tinyzero's CPU platform (its `verl.plugins` entry "
            "point is missing or failed): reinstall tinyzero (`pip install -e .` in the repository, or "
            "`pip install tinyzero[train]`), then check `python -c \"import tinyzero.platforms.verl_plugin\"`."
        )
    return True


def logical_gpus(config: DictConfig) -> int:
    """GPUs the config asks a local Ray to offer (`+ray_kwargs.ray_init.num_gpus`): on a machine
    without GPUs, asking for them is what makes a run a CPU run (the GPU check counts them)."""
    configured = config.ray_kwargs.ray_init.get("num_gpus")
    return int(configured) if configured is not None else 0


def is_cpu_run(config: DictConfig, ray_address: str | None) -> bool:
    """A local run on the CPU platform with logical GPUs; without them the GPU check says what is missing."""
    return ray_address is None and cpu_platform_chosen() and logical_gpus(config) > 0


def logical_gpu_inventory(config: DictConfig):
    """The logical GPUs as the GPU check counts them; each gets an equal share of the host's memory."""
    import psutil

    from tinyzero.train.checks import GpuInventory
    from tinyzero.train.memory import GIB

    count = logical_gpus(config)
    return GpuInventory(count, psutil.virtual_memory().total / GIB / count, f"logical GPUs, {LOGICAL_GPUS_KEY}")


def memory_line() -> str:
    """The plan's memory line for a CPU run: the per-GPU estimate (tinyzero.train.memory) does not
    apply, since vLLM's CPU build keeps a fixed KV cache (VLLM_CPU_KVCACHE_SPACE) and never sleeps."""
    return (
        f"host memory, shared by every process: about {CPU_RUN_MEMORY_GIB} GiB at the peak (measured for "
        "countdown_tiny; mostly the processes, not the model); no per-GPU estimate on a CPU"
    )


def check_memory(available: int | None = None) -> str:
    """Fail before Ray starts when the host has less free memory than a CPU run holds: Ray's memory
    monitor would kill workers part way, and verl would then wait forever for them."""
    from tinyzero import progress
    from tinyzero.train.memory import GIB

    available = progress.available_memory() if available is None else available
    try:
        progress.check_memory(
            CPU_RUN_MEMORY_GIB * GIB,
            "a CPU run",
            "stop other jobs first (another training run or the test suite holds about as much), or use a "
            "machine with more memory",
            available,
        )
    except ValueError as error:
        raise CheckError(str(error)) from None
    return f"about {CPU_RUN_MEMORY_GIB} GiB needed, {available / GIB:.1f} GiB available"


def head_size(model_path: str) -> int | None:
    """The attention head size from a local model's config.json; None when it is not local."""
    config_file = Path(model_path).expanduser() / "config.json"
    if not config_file.is_file():
        return None
    shape = json.loads(config_file.read_text())
    shape = shape.get("text_config", shape)
    return int(shape.get("head_dim") or shape["hidden_size"] // shape["num_attention_heads"])


def check_cpu_run(config: DictConfig) -> str:
    """Everything the CPU platform needs of the config and the environment; sets trainer.device.
    Returns the plan's line."""
    from tinyzero.models import VLLM_CPU_HEAD_SIZES

    problems = []
    rollout = config.actor_rollout_ref.rollout
    if rollout.name == "vllm":
        from tinyzero.setup_cpu import State, planned_changes

        missing = planned_changes(State.read())
        if missing:
            problems.append(
                f"vLLM's CPU build is not set up here ({'; '.join(missing)}): run `python -m tinyzero.setup_cpu`"
            )
    strategies = [("actor_rollout_ref.actor.strategy", config.actor_rollout_ref.actor.strategy),
                  ("actor_rollout_ref.ref.strategy", config.actor_rollout_ref.ref.strategy)]
    from tinyzero.train.checks import uses_critic

    if uses_critic(config):
        strategies.append(("critic.strategy", config.critic.strategy))
    problems += [
        f"{key}={value}: FSDP1 broadcasts the initial weights through an accelerator (sync_module_states); "
        f"set {key}=fsdp2" for key, value in strategies if value != "fsdp2"
    ]
    if rollout.get("enable_sleep_mode", True):
        problems.append(f"vLLM's sleep mode needs a GPU (vLLM refuses the engine on CPU): {SLEEP_KEY}=false")
    if rollout.free_cache_engine:
        problems.append(
            "actor_rollout_ref.rollout.free_cache_engine=true puts vLLM to sleep between rollouts, which needs a GPU: "
            "set it to false"
        )
    size = head_size(str(config.actor_rollout_ref.model.path))
    if rollout.name == "vllm" and size is not None and size not in VLLM_CPU_HEAD_SIZES:
        problems.append(
            f"the model's attention head size is {size}; vLLM's CPU build has kernels for "
            f"{', '.join(map(str, VLLM_CPU_HEAD_SIZES))} only (a tiny model: make tiny_model.hidden_size / "
            "tiny_model.num_attention_heads one of them)"
        )
    if problems:
        raise CheckError("this machine has no GPU; verl's CPU platform needs:\n  - " + "\n  - ".join(problems))
    with open_dict(config):
        config.trainer.device = "cpu"
    return (
        f"no GPU here: verl's CPU platform (tinyzero.platforms), trainer.device=cpu, {logical_gpus(config)} "
        f"logical GPU(s) in Ray, rollouts on vLLM's CPU build"
    )
