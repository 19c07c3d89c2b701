"""verl's real training loop on this CPU: the CPU platform (tinyzero.platforms), then the
end-to-end run of `python -m tinyzero.train +recipe=countdown_tiny`, eval and aha on what it wrote.

Each platform check runs in a fresh interpreter: verl resolves its platform once per process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap


def run_python(code: str, env: dict | None = None, timeout: int = 240) -> str:
    import os

    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


# --- The CPU platform ------------------------------------------------------------------------


def test_verl_chooses_the_cpu_platform_without_an_accelerator():
    out = run_python(
        """
        import os
        import verl
        from verl.plugin.platform import PlatformRegistry, get_platform
        from verl.utils.device import get_device_name, get_nccl_backend, get_resource_name, get_torch_device
        print(PlatformRegistry.registered_names()[-1], get_platform().__class__.__name__)
        print(get_device_name(), get_nccl_backend(), get_resource_name())
        device = get_torch_device()
        device.empty_cache(); device.synchronize()
        free, total = device.mem_get_info()
        print(0 < free <= total, device.memory_allocated(), device.get_rng_state().dtype)
        import torch
        print(torch.zeros(2, device=verl.utils.device.get_device_id()).device)
        """
    )
    assert out.split("\n")[:4] == ["cpu PlatformCPU", "cpu gloo GPU", "True 0 torch.uint8", "cpu"]


def test_an_accelerator_platform_wins_over_cpu():
    """A registered platform that is available (here a stand-in for a GPU) is chosen, and the
    CPU fixes stay out; `VERL_PLATFORM=cpu` forces the CPU platform."""
    out = run_python(
        """
        import verl
        from verl.plugin.platform.platform_manager import PlatformRegistry, _detect_platform_name
        from verl.plugin.platform.platform_cuda import PlatformCUDA
        from tinyzero.platforms import cpu

        @PlatformRegistry.register(platform="fakegpu")
        class FakeGPU(PlatformCUDA):
            def is_platform_available(self, use_smi_check=False):
                return True

        print(_detect_platform_name(), cpu.accelerator_available(), cpu.cpu_platform_chosen())
        """
    )
    assert out.split() == ["fakegpu", "True", "False"]
    forced = run_python(
        "from tinyzero.platforms import cpu; print(cpu.cpu_platform_chosen())", env={"VERL_PLATFORM": "nvidia"}
    )
    assert forced.split() == ["False"]


def test_verl_process_group_comes_up_on_gloo():
    """verl's own "cpu:gloo,{device}:{backend}" reads "cpu:gloo,cpu:gloo" here, which torch rejects."""
    out = run_python(
        """
        import torch.distributed as dist
        import verl
        from verl.utils.distributed import initialize_global_process_group_ray
        initialize_global_process_group_ray(timeout_second=60)
        tensor = __import__("torch").ones(3)
        dist.all_reduce(tensor)
        print(dist.get_backend(), tensor.tolist())
        dist.destroy_process_group()
        """,
        env={"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29581", "RANK": "0", "WORLD_SIZE": "1"},
    )
    assert out.split("\n")[0] == "cpu:gloo [1.0, 1.0, 1.0]"


def test_fsdp_engine_reference_offload_and_rollout_are_the_cpu_ones():
    out = run_python(
        """
        import verl
        from verl.workers.engine import EngineRegistry
        from verl.workers.engine.fsdp import transformer_impl
        from verl.workers.rollout.replica import get_rollout_replica_class
        print(EngineRegistry.get_engine_cls("language_model", "fsdp2").__name__)
        print(transformer_impl.CPUOffloadPolicy(pin_memory=True).pin_memory)
        print(get_rollout_replica_class("vllm").__name__)
        """
    )
    assert out.split("\n")[:3] == ["FSDPEngineWithLMHead", "False", "CPUvLLMReplica"]


def test_trl_without_a_value_head_is_not_offered_to_verl():
    """verl 0.9.1 imports trl's value head whenever trl is importable; trl >= 1.13 has none."""
    out = run_python(
        """
        from importlib import metadata
        import verl
        from verl.models.transformers import monkey_patch
        from verl.utils.import_utils import is_trl_available
        version = tuple(int(part) for part in metadata.version("trl").split(".")[:2])
        print(version >= (1, 13), is_trl_available(), monkey_patch.is_trl_available())
        """
    )
    without_value_head, verl_sees, monkey_patch_sees = out.split()
    assert without_value_head == "True"  # the test extra's trl (>= 1.14.2)
    assert (verl_sees, monkey_patch_sees) == ("False", "False")
