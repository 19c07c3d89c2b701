"""Which verl platform a process gets, with the real selection code (verl's platform manager and
tinyzero.platforms.cpu), and the launch's refusals (tinyzero.train.cluster.check_platform). Each
case runs in a fresh interpreter: verl resolves its platform, and loads its plugins, once per
process. No Ray, no vLLM.

This machine has no GPU, no `nvidia-smi` and a CPU build of torch; a CUDA or ROCm build is stood
in for by setting torch.version before verl is imported, which is all the CPU platform reads of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def run_python(code: str, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("VERL_")}
    environment.update(env or {})
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300,
                          env=environment, check=False)


def output(code: str, env: dict | None = None) -> list[str]:
    result = run_python(code, env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout.split()


CHOICE = """
    import torch
    {build}
    import verl
    from verl.plugin.platform.platform_manager import _detect_platform_name
    from tinyzero.platforms import cpu, verl_plugin
    print(_detect_platform_name(), cpu.cpu_platform_chosen(), verl_plugin.ON_CPU)
"""


def test_a_cuda_or_rocm_torch_without_nvidia_smi_falls_back_to_nvidia_not_to_the_cpu():
    """verl's CUDA probe says False without nvidia-smi (platform_cuda.py 48-67): a GPU container
    without it, or the CPU-only processes of a Ray head without GPUs. verl then falls back to
    nvidia; the CPU platform, its fixes and its vLLM replica stay out."""
    import shutil

    assert shutil.which("nvidia-smi") is None  # the case itself
    assert output(CHOICE.format(build="torch.version.cuda = '13.0'")) == ["nvidia", "False", "False"]
    assert output(CHOICE.format(build="torch.version.hip = '6.4'")) == ["nvidia", "False", "False"]


def test_a_cpu_torch_gets_the_cpu_platform_and_verl_platform_cpu_forces_it():
    assert output(CHOICE.format(build="")) == ["cpu", "True", "True"]
    forced = output(CHOICE.format(build="torch.version.cuda = '13.0'"), env={"VERL_PLATFORM": "cpu"})
    assert forced == ["cpu", "True", "True"]


REFUSAL = """
    import torch
    {gpus}
    from tinyzero.recipe import CheckError
    from tinyzero.train import cluster
    try:
        print(cluster.check_platform())
    except CheckError as error:
        print("REFUSED", error)
"""
TWO_GPUS = "torch.version.cuda = '13.0'; torch.cuda.is_available = lambda: True; torch.cuda.device_count = lambda: 2"


def test_the_launch_refuses_the_cpu_platform_where_torch_sees_gpus():
    refused = run_python(REFUSAL.format(gpus=TWO_GPUS), env={"VERL_PLATFORM": "cpu"}).stdout
    assert refused.startswith("REFUSED verl chose tinyzero's CPU platform (VERL_PLATFORM=cpu) but torch sees 2 GPU(s)")
    assert "Unset VERL_PLATFORM" in refused and "CUDA_VISIBLE_DEVICES=''" in refused
    here = run_python(REFUSAL.format(gpus="")).stdout  # no GPU: the CPU platform is right
    assert here.strip() == "verl's cpu platform, tinyzero's verl plugin loaded"
    gpu = run_python(REFUSAL.format(gpus=TWO_GPUS)).stdout  # a GPU machine gets verl's own platform
    assert gpu.strip() == "verl's cuda platform, tinyzero's verl plugin loaded"


HIDDEN_ENTRY_POINT = """
    import importlib.metadata as metadata
    everything = metadata.entry_points
    def without_tinyzero(**selection):  # as where tinyzero is importable (PYTHONPATH) but not installed
        if selection.get("group") != "verl.plugins":
            return everything(**selection)
        return [point for point in everything(**selection) if not point.value.startswith("tinyzero")]
    metadata.entry_points = without_tinyzero
"""


def test_a_plugin_verl_did_not_load_stops_every_launch_with_the_reason():
    missing = run_python(HIDDEN_ENTRY_POINT + REFUSAL.format(gpus=TWO_GPUS)).stdout
    assert missing.startswith("REFUSED verl found no `verl.plugins` entry point for tinyzero.platforms.verl_plugin")
    assert "not installed" in missing and "pip install -e ." in missing and "critic's attention kernel" in missing
    switched_off = run_python(REFUSAL.format(gpus=""), env={"VERL_USE_EXTERNAL_PLUGINS": "none"}).stdout
    assert switched_off.startswith("REFUSED VERL_USE_EXTERNAL_PLUGINS=none keeps verl from loading tinyzero's plugin")
