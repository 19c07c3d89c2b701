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

The compute dtype is settled here too (`cpu_dtype`, tinyzero's key): verl computes in bf16 by
default everywhere, which a processor without native bf16 (no `avx512_bf16` or `amx_bf16` flag)
emulates, 7-9x slower than fp32 for the tiny model's forward and backward (README: "Training on a
CPU"). `precision_keys` is the one list of the verl keys that set it.
"""

from __future__ import annotations

import json
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from tinyzero.recipe import CheckError

# Measured by `python benchmarks/bench_cpu_loop.py --steps 2`: `python -m tinyzero.train
# +recipe=countdown_tiny` peaks at 7.5 GiB, the proportional set size summed over its 34 processes.
# About ten Ray workers that each import torch and verl (three of them vLLM) hold most of it; the
# tiny model and its batches add little, so the figure stands for any CPU run of a tiny model.
CPU_RUN_MEMORY_GIB = 7.5

SLEEP_KEY = "+actor_rollout_ref.rollout.enable_sleep_mode"
CPU_DTYPE_KEY = "cpu_dtype"
CPU_DTYPES = ("auto", "fp32", "bf16")
# The processor flags of native bf16 arithmetic (x86: AVX512-BF16, AMX); without them oneDNN and
# torch emulate bf16 with fp32 instructions plus conversions.
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
# ONEDNN_MAX_CPU_ISA values that keep oneDNN off its bf16 instructions even where the processor has
# them (oneDNN's names; AVX512_CORE_BF16 and above use them).
ISA_WITHOUT_BF16 = ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI")
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


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The processor's feature flags (Linux's /proc/cpuinfo; empty where it cannot be read)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return set()
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def native_bf16(flags: set[str] | None = None, environ: dict | None = None) -> tuple[bool, str]:
    """(whether bf16 runs natively here, why), from the processor's flags and ONEDNN_MAX_CPU_ISA."""
    import os

    flags = cpu_flags() if flags is None else flags
    environ = os.environ if environ is None else environ
    native = [flag for flag in NATIVE_BF16_FLAGS if flag in flags]
    if not native:
        return False, f"this CPU has no native bf16 (no {' or '.join(NATIVE_BF16_FLAGS)} flag)"
    isa = environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    if isa in ISA_WITHOUT_BF16:
        return False, f"ONEDNN_MAX_CPU_ISA={isa} keeps oneDNN off this CPU's bf16 instructions"
    return True, f"this CPU has native bf16 ({', '.join(native)})"


def compute_dtype(config: DictConfig) -> tuple[str, str]:
    """(fp32 or bf16, why) for a CPU run: `cpu_dtype=auto` computes in fp32 unless the processor
    has native bf16 (then verl's bf16, which measured as fast or faster there: README)."""
    choice = str(config.get(CPU_DTYPE_KEY) or "auto")
    if choice not in CPU_DTYPES:
        raise CheckError(f"{CPU_DTYPE_KEY}={choice!r}: use one of {', '.join(CPU_DTYPES)} (auto: fp32 unless this CPU has native bf16)")
    native, why = native_bf16()
    if choice != "auto":
        return choice, f"{CPU_DTYPE_KEY}={choice} ({why})"
    return ("bf16", why) if native else ("fp32", f"{why}: bf16 would be emulated, several times slower")


def precision_keys(dtype: str, critic: bool) -> dict[str, object]:
    """The verl 0.9.1 keys that make every engine of a run compute in `dtype` (fp32 or bf16).

    FSDP engines: `fsdp_config.mixed_precision.param_dtype` (FSDPEngineConfig.mixed_precision,
    verl/workers/config/engine.py 291, not in verl's YAML); the FSDP engine autocasts to it and skips
    autocast for fp32 (verl/workers/engine/fsdp/transformer_impl.py 391-403, 1559-1563). The
    reference's weights (`model_dtype`, bf16 in train.yaml) follow; vLLM's rollout `dtype` too.
    """
    short, long_ = ("fp32", "float32") if dtype == "fp32" else ("bf16", "bfloat16")
    mixed = {"param_dtype": short, "reduce_dtype": "fp32", "buffer_dtype": "fp32"}
    keys = {
        "actor_rollout_ref.actor.fsdp_config.mixed_precision": mixed,
        "actor_rollout_ref.ref.fsdp_config.mixed_precision": mixed,
        "actor_rollout_ref.ref.fsdp_config.model_dtype": short,
        "actor_rollout_ref.rollout.dtype": long_,
    }
    if critic:
        keys["critic.fsdp.mixed_precision"] = mixed  # FSDPCriticConfig.fsdp (verl/workers/config/critic.py 206)
    return keys


def settle_precision(config: DictConfig) -> str:
    """Write the compute dtype into every engine's keys; the plan's line says which and why."""
    from tinyzero.train.checks import uses_critic

    dtype, why = compute_dtype(config)
    with open_dict(config):
        for key, value in precision_keys(dtype, uses_critic(config)).items():
            OmegaConf.update(config, key, value, merge=False, force_add=True)
    return f"{dtype}: {why}"


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
