"""verl's platform for a machine without an accelerator: tensors on `cpu`, collectives over gloo.

verl 0.9.1 registers only nvidia, huawei and amd platforms and falls back to nvidia when none is
found (verl/plugin/platform/platform_manager.py 113-117, 172-174). Importing this module (verl
does, through tinyzero.platforms.verl_plugin, verl/__init__.py 55-75) registers `cpu` in verl's
`PlatformRegistry`. verl probes the registered platforms in order; this one says it is available
only when torch has no CUDA or ROCm build and no other platform is available. "No other platform"
alone is not enough: verl's CUDA probe answers False when `nvidia-smi` is missing
(verl/plugin/platform/platform_cuda.py 48-67), in a GPU container without it or in the CPU-only
processes of a Ray head without GPUs, and verl's fallback to nvidia is then the right answer.
`VERL_PLATFORM=cpu` forces the CPU platform; the launch refuses it where torch sees GPUs
(tinyzero.train.cluster.check_platform).

What a CPU run needs besides this class:
- Ray must offer logical GPUs: verl places its workers with `use_gpu=True` and counts only
  GPU/NPU resources (single_controller/ray/base.py 210-242); `ray_kwargs.ray_init.num_gpus=N`.
- vLLM's CPU build (`python -m tinyzero.setup_cpu`), FSDP2, `sdpa` attention, vLLM sleep mode off:
  recipes/countdown_tiny.yaml sets and explains each.
- tinyzero.platforms.verl_0_9_1: the process-group backend string and the reference model's pinned
  CPU offload, which verl offers no extension point for.
"""

from __future__ import annotations

import os
import platform as _host
import types
from contextlib import nullcontext
from typing import Any

import torch
from verl.plugin.platform.platform_base import PlatformBase
from verl.plugin.platform.platform_manager import PlatformRegistry

NAME = "cpu"


def _memory_info() -> tuple[int, int]:
    """(free, total) bytes of host memory, as torch.cuda.mem_get_info reports device memory."""
    import psutil  # a Ray dependency, so present wherever verl runs

    memory = psutil.virtual_memory()
    return memory.available, memory.total


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


def _zero(*args: Any, **kwargs: Any) -> int:
    return 0


def _device_module() -> types.ModuleType:
    """`torch.cpu` plus the torch.cuda functions verl calls on its device module.

    verl calls get_torch_device().empty_cache() (27 places), .mem_get_info(), .get_rng_state(),
    .memory_allocated() and more, which torch.cpu lacks: on the host they are no-ops, zeros or the
    host's own RNG and memory. Everything else comes from torch.cpu (synchronize, Stream, ...).
    """
    module = types.ModuleType("tinyzero.platforms.cpu.device")
    module.__dict__.update({name: getattr(torch.cpu, name) for name in dir(torch.cpu) if not name.startswith("__")})
    module.__dict__.update(
        is_available=lambda: True,
        device_count=lambda: 1,
        current_device=lambda: "cpu",
        set_device=_nothing,
        empty_cache=_nothing,
        ipc_collect=_nothing,
        reset_peak_memory_stats=_nothing,
        set_per_process_memory_fraction=_nothing,
        memory_allocated=_zero,
        memory_reserved=_zero,
        max_memory_allocated=_zero,
        max_memory_reserved=_zero,
        mem_get_info=_memory_info,
        get_rng_state=torch.get_rng_state,
        set_rng_state=torch.set_rng_state,
        manual_seed=torch.manual_seed,
        manual_seed_all=torch.manual_seed,
        get_device_name=lambda device=None: f"CPU {_host.processor() or _host.machine()}",
    )
    return module


@PlatformRegistry.register(platform=NAME)
class PlatformCPU(PlatformBase):
    """The host CPU as verl's device: one "device" per process, gloo for collectives."""

    def __init__(self) -> None:
        self._module = _device_module()
        # verl registers its FSDP engines for cuda and npu only (workers/engine/fsdp/transformer_impl.py
        # 1143, 1594), yet they are device-agnostic (every tensor goes to get_device_name()).
        # VERL_ENGINE_DEVICE is verl's own override of that lookup (workers/engine/base.py 405).
        os.environ.setdefault("VERL_ENGINE_DEVICE", "cuda")

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> types.ModuleType:
        return self._module

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        return no_accelerator(use_smi_check)

    def current_device(self) -> str:
        # verl passes this as `device=` (utils/fsdp_utils.py 507 and others): an int means an
        # accelerator index to torch, so the host's answer is "cpu" (as torch.cpu.current_device()).
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: int | None = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None  # e.g. expandable_segments: a CUDA caching-allocator setting

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        # Ray exports the logical GPUs it hands an actor under this name; verl copies it around.
        return "CUDA_VISIBLE_DEVICES"

    def ray_resource_name(self) -> str:
        return "GPU"  # the logical GPUs of `ray_kwargs.ray_init.num_gpus`

    def ray_resource_options(self, num_gpus: float) -> dict[str, Any]:
        return {"num_gpus": num_gpus}

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False  # weights reach vLLM by copy, not CUDA IPC handles

    def rollout_env_vars(self) -> dict[str, str]:
        # vLLM's CPU build reserves VLLM_CPU_KVCACHE_SPACE GiB of KV cache per engine (its default
        # is 4 GiB plus a share of memory); a small default keeps tiny runs small.
        return {"VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}

    def nvtx_range(self, msg: str):
        return nullcontext()

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def cudart(self) -> Any:
        return None


def torch_accelerator_build() -> str | None:
    """The accelerator this torch is built for ("CUDA 13.0", "ROCm 6.4"), None for a CPU build."""
    if torch.version.cuda:
        return f"CUDA {torch.version.cuda}"
    if getattr(torch.version, "hip", None):
        return f"ROCm {torch.version.hip}"
    return None


def no_accelerator(use_smi_check: bool = True) -> bool:
    """Where verl finds this platform available: torch built for no accelerator, and no other
    registered platform available."""
    return torch_accelerator_build() is None and not accelerator_available(use_smi_check)


def accelerator_available(use_smi_check: bool = True) -> bool:
    """Whether any other registered verl platform (an accelerator) is available here."""
    for name in PlatformRegistry.registered_names():
        other = PlatformRegistry.get(name)
        if name == NAME or other is None:
            continue
        try:
            if other().is_platform_available(use_smi_check=use_smi_check):
                return True
        except Exception:  # a probe that breaks means "not available", as verl's detection treats it
            continue
    return False


def cpu_platform_chosen() -> bool:
    """Whether verl will choose this platform in this process (mirrors platform_manager's detection)."""
    forced = os.environ.get("VERL_PLATFORM", "").strip().lower()
    return forced == NAME if forced else no_accelerator()


def register_rollout() -> None:
    """rollout.name=vllm gets tinyzero.platforms.vllm_cpu's replica (imported when verl asks for it)."""
    from verl.workers.rollout.replica import RolloutReplicaRegistry

    def load_cpu_replica():
        from tinyzero.platforms.vllm_cpu import CPUvLLMReplica

        return CPUvLLMReplica

    RolloutReplicaRegistry.register("vllm", load_cpu_replica)
