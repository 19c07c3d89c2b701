"""What a run needs of its machines besides GPU count and memory: CPUs for verl's Ray actors,
tinyzero on every node, and a CUDA driver torch can use.

CPUs. verl 0.9.1 reserves, through Ray (all logical CPUs, not cores):
- 1 for the TransferQueue controller (transfer_queue/controller.py 943),
- 1 per TransferQueue storage unit (transfer_queue/storage/simple_storage.py 722), placed round
  robin over the alive nodes with hard node affinity
  (`transfer_queue.backend.SimpleStorage.num_data_storage_units`),
- 3 per GPU: one placement bundle `{CPU: 3, GPU: 1}` per GPU, packed per node
  (verl/single_controller/ray/base.py 146, 192; not a config key).
When they are not there, `ray.get(pg.ready())` (base.py 160) waits forever and verl's own
resource check counts only GPUs (base.py 226-242). Other actors (task runner, vLLM servers,
agent-loop and reward workers) hold no CPU once started.

Nodes. verl starts reward workers and agent-loop workers on every node with CPUs
(verl/experimental/reward_loop/reward_loop.py 324-341, experimental/agent_loop/agent_loop.py 1209-1224);
they import `tinyzero.rewards` and read the agent-loop file there. Ray ships no code, so on a
cluster a tiny task per node checks that before anything starts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, open_dict

from tinyzero.recipe import CheckError

CPUS_PER_GPU = 3  # verl's max_colocate_count (single_controller/ray/base.py 192)
STORAGE_UNITS_KEY = "transfer_queue.backend.SimpleStorage.num_data_storage_units"
STORAGE_UNITS_PER_NODE = 2  # TransferQueue's recommendation: at least 2 per node
PROBE_TIMEOUT_S = 60.0  # a worker process starts in a few seconds; a node that does not answer is stuck


@dataclass(frozen=True)
class Node:
    address: str
    cpus: float  # logical CPUs Ray schedules on
    gpus: float
    node_id: str = ""


@dataclass(frozen=True)
class Machines:
    nodes: tuple[Node, ...]
    source: str  # where the figures come from, for messages
    local: bool  # the Ray that verl will start on this machine (not an existing instance)
    probed: bool = False  # the nodes ran the probe (a cluster attached to by address)
    node_problems: tuple[str, ...] = ()  # what a node lacks for the run
    flash_attn_error: str | None = None  # None: flash-attn imports where the models run


# --- Sizing ----------------------------------------------------------------------------------


def size_storage_units(config: DictConfig) -> int:
    """null (conf/train.yaml) becomes 2 per node; verl's default of 8 costs 8 CPUs on one node."""
    storage = config.transfer_queue.backend.SimpleStorage
    with open_dict(config):
        if storage.num_data_storage_units is None:
            storage.num_data_storage_units = STORAGE_UNITS_PER_NODE * int(config.trainer.nnodes)
    return int(storage.num_data_storage_units)


def cpus_needed(config: DictConfig) -> tuple[int, str]:
    """Total logical CPUs verl reserves, and the sum spelled out."""
    units = int(config.transfer_queue.backend.SimpleStorage.num_data_storage_units)
    gpus = int(config.trainer.n_gpus_per_node) * int(config.trainer.nnodes)
    total = 1 + units + CPUS_PER_GPU * gpus
    return total, (
        f"{total} = 1 (TransferQueue controller) + {units} ({STORAGE_UNITS_KEY}) + "
        f"{CPUS_PER_GPU} x {gpus} GPU(s) (verl's placement bundles)"
    )


# --- What the machines have ------------------------------------------------------------------


def find_machines(config: DictConfig, address: str | None, gpus: int) -> Machines:
    """The cluster at `address` (probed node by node), the Ray this process already runs, or the
    local Ray verl will start."""
    import ray

    from tinyzero.train.attention import flash_attn_import_error

    if address and not ray.is_initialized():
        return cluster_machines(address, *required_on_nodes(config))
    if ray.is_initialized():
        return ray_machines("the Ray instance of this process", flash_attn_error=flash_attn_import_error())
    return local_machines(config, gpus, flash_attn_import_error())


def local_machines(config: DictConfig, gpus: int, flash_attn_error: str | None = None) -> Machines:
    """The local Ray verl will start: `ray_kwargs.ray_init.num_cpus`, else the CPUs Ray detects."""
    configured = config.ray_kwargs.ray_init.get("num_cpus")
    if configured is not None:
        cpus, source = float(configured), "ray_kwargs.ray_init.num_cpus"
    else:
        try:  # Ray's own count (cgroup quotas included), so the check agrees with what Ray will offer
            from ray._private.utils import get_num_cpus

            cpus = float(get_num_cpus())
        except Exception:  # a private helper: fall back to the scheduler's view of this process
            cpus = float(len(os.sched_getaffinity(0)))
        source = "the CPUs Ray would start with here"
    return Machines((Node("this machine", cpus, gpus),), source, local=True, flash_attn_error=flash_attn_error)


def required_on_nodes(config: DictConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(modules, files) every node must have for this config: verl's reward and agent-loop workers
    import the reward and read the agent-loop file on every node with CPUs."""
    modules, paths = ["tinyzero.rewards"], []
    agent = config.actor_rollout_ref.rollout.agent
    if agent.agent_loop_config_path:
        modules.append("tinyzero.train.agent_loop")
        paths.append(str(agent.agent_loop_config_path))
    return tuple(modules), tuple(paths)


def cluster_machines(address: str, modules: tuple[str, ...], paths: tuple[str, ...]) -> Machines:
    """Attach to the cluster, read its nodes and probe them, detach (verl's run_ppo attaches again)."""
    import ray

    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    except Exception as error:  # Ray raises ConnectionError, RuntimeError, ValueError here
        raise CheckError(f"cannot reach the Ray cluster at ray_address={address!r}: {error}") from error
    try:
        return ray_machines(f"Ray cluster at {address}", modules, paths, probe=True)
    finally:
        ray.shutdown()


def ray_machines(source: str, modules: tuple[str, ...] = (), paths: tuple[str, ...] = (), probe: bool = False,
                 flash_attn_error: str | None = None) -> Machines:
    """Nodes of the Ray instance this process is connected to, in TransferQueue's order; with
    `probe`, each node with CPUs runs a tiny task that imports `modules`, looks for `paths` and
    tries flash-attn."""
    import ray

    nodes = tuple(
        Node(node["NodeManagerAddress"], float(node["Resources"].get("CPU", 0)), float(node["Resources"].get("GPU", 0)),
             node["NodeID"])
        for node in sorted(ray.nodes(), key=lambda node: node["NodeID"])
        if node.get("Alive")
    )
    if not probe:
        return Machines(nodes, source, local=False, flash_attn_error=flash_attn_error)
    problems, flash = probe_nodes(nodes, modules, paths)
    return Machines(nodes, source, local=False, probed=True, node_problems=tuple(problems), flash_attn_error=flash)


def _node_probe():
    """The task each node runs. Built here, not at module level, so Ray ships the function itself:
    a node without tinyzero could not even load a function that lives in a tinyzero module."""

    def probe(modules, paths):
        import importlib
        import os

        def import_error(module):
            try:
                importlib.import_module(module)
            except Exception as error:  # ImportError, or OSError from a library built for another CUDA
                return f"{type(error).__name__}: {error}"
            return None

        errors = {module: import_error(module) for module in modules}
        missing = [f"`import {module}` fails ({error})" for module, error in errors.items() if error]
        missing += [f"{path} does not exist" for path in paths if not os.path.exists(path)]
        return missing, import_error("flash_attn")

    return probe


def probe_nodes(nodes: tuple[Node, ...], modules: tuple[str, ...], paths: tuple[str, ...],
                timeout_s: float = PROBE_TIMEOUT_S) -> tuple[list[str], str | None]:
    """One zero-CPU task per node with CPUs (where verl's reward and agent-loop workers go):
    (what nodes lack, why flash-attn does not import on a GPU node, or None)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0, max_retries=0)(_node_probe())
    pending = {
        probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False)).remote(
            list(modules), list(paths)
        ): node
        for node in nodes
        if node.cpus > 0
    }
    done, late = ray.wait(list(pending), num_returns=len(pending), timeout=timeout_s)
    problems, flash = [], None
    for ref in done:
        node = pending[ref]
        try:
            missing, flash_error = ray.get(ref)
        except Exception as error:  # the task itself failed on that node
            problems.append(f"node {node.address}: the check task failed ({type(error).__name__}: {error})")
            continue
        problems += [f"node {node.address}: {found}" for found in missing]
        if flash_error and (node.gpus > 0 or flash is None):
            flash = f"on node {node.address}: {flash_error}"
    problems += [f"node {pending[ref].address}: no answer within {timeout_s:.0f} s" for ref in late]
    for ref in late:
        ray.cancel(ref, force=True)
    return problems, flash


# --- Checks ----------------------------------------------------------------------------------


def _storage_units_per_node(units: int, nodes: tuple[Node, ...]) -> list[int]:
    """TransferQueue's round robin over the alive nodes in NodeID order (transfer_queue/utils/common.py)."""
    return [len(range(index, units, len(nodes))) for index in range(len(nodes))]


def check_cpus(config: DictConfig, machines: Machines) -> str:
    """Enough logical CPUs in all, and on each node for what verl pins there."""
    needed, spelled = cpus_needed(config)
    have = sum(node.cpus for node in machines.nodes)
    more = f"ray_kwargs.ray_init.num_cpus={needed}" if machines.local else "`ray start ... --num-cpus=N` on each node"
    fixes = (
        f"Lower the need: {STORAGE_UNITS_KEY}=1, or fewer GPUs (trainer.n_gpus_per_node / trainer.nnodes); "
        f"or give Ray more logical CPUs (these actors mostly wait, so more than the cores is fine): {more}."
    )
    if have < needed:
        raise CheckError(
            f"too few CPUs: the run needs {spelled} logical CPUs but {machines.source} gives {have:g}; verl would "
            f"wait forever for them. {fixes}"
        )
    per_gpu_node = CPUS_PER_GPU * int(config.trainer.n_gpus_per_node)
    units = _storage_units_per_node(int(config.transfer_queue.backend.SimpleStorage.num_data_storage_units), machines.nodes)
    short = []
    for node, node_units in zip(machines.nodes, units):
        pinned = node_units + (per_gpu_node if node.gpus >= int(config.trainer.n_gpus_per_node) > 0 else 0)
        if node.cpus < pinned:
            short.append(f"node {node.address} has {node.cpus:g} CPUs but would hold {pinned} "
                         f"({node_units} storage unit(s) + {per_gpu_node if pinned > node_units else 0} for its GPUs)")
    if short and len(machines.nodes) > 1:
        raise CheckError("too few CPUs on some nodes; verl would wait forever for them:\n  - " + "\n  - ".join(short)
                         + f"\n{fixes}")
    return f"{have:g} CPUs ({machines.source}), {spelled}"


def check_nodes(machines: Machines) -> str:
    if machines.node_problems:
        raise CheckError(
            "tinyzero is not usable on every node of the cluster:\n  - " + "\n  - ".join(machines.node_problems)
            + "\nverl's reward and agent-loop workers import it on every node: install tinyzero the same way on "
            "each node (`pip install -e '.[gpu]'` from the same path, or a shared virtual environment)."
        )
    if not machines.probed:
        return "one machine: verl's workers import tinyzero from this installation"
    return f"{sum(1 for node in machines.nodes if node.cpus > 0)} node(s) with CPUs import tinyzero"


# --- CUDA ------------------------------------------------------------------------------------


def nvidia_devices() -> tuple[int, str]:
    """NVIDIA GPUs the kernel driver reports, whatever torch sees, and where that came from."""
    gpus = Path("/proc/driver/nvidia/gpus")
    if gpus.is_dir() and any(gpus.iterdir()):
        return len(list(gpus.iterdir())), str(gpus)
    import shutil
    import subprocess

    if shutil.which("nvidia-smi"):
        try:
            listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return 0, ""
        return sum(1 for line in listed.splitlines() if line.startswith("GPU ")), "nvidia-smi -L"
    return 0, ""


def driver_version() -> str | None:
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        return None
    words = text.split()
    return next((word for word in words if word.count(".") >= 1 and word.replace(".", "").isdigit()), None)


def cuda_mismatch_note() -> str | None:
    """Why torch sees no GPU on a machine that has NVIDIA GPUs, or None when it has none."""
    count, where = nvidia_devices()
    if not count:
        return None
    import torch

    return explain_unseen_gpus(count, where, torch.__version__, torch.version.cuda,
                               os.environ.get("CUDA_VISIBLE_DEVICES"), driver_version())


def explain_unseen_gpus(count: int, where: str, torch_version: str, torch_cuda: str | None,
                        visible_devices: str | None, driver: str | None) -> str:
    seen = f"{count} NVIDIA GPU(s) are present ({where}) but torch {torch_version} sees none: "
    if torch_cuda is None:
        return seen + "this torch is a CPU-only build; install the CUDA build (pip install -e '.[gpu]' brings it)."
    if visible_devices is not None:
        return seen + f"CUDA_VISIBLE_DEVICES={visible_devices!r} hides them; unset it or list the GPUs to use."
    return seen + (
        f"the NVIDIA driver{f' ({driver})' if driver else ''} is too old for this torch build (CUDA {torch_cuda}; "
        "CUDA 13 needs driver R580 or newer, which verl[vllm]'s torch 2.11 wheels are built for). Update the "
        "driver, or install a torch built for a CUDA the driver supports (nvidia-smi shows the highest one)."
    )


def check_bf16(config: DictConfig, supported: bool) -> str:
    """bf16 needs an Ampere or newer GPU; the recipes load vLLM and the reference in bf16."""
    keys = [f"{key}={value}" for key, value in (
        ("actor_rollout_ref.ref.fsdp_config.model_dtype", config.actor_rollout_ref.ref.fsdp_config.model_dtype),
        ("actor_rollout_ref.rollout.dtype", config.actor_rollout_ref.rollout.dtype),
    ) if str(value) in ("bf16", "bfloat16")]
    if keys and not supported:
        raise CheckError(
            f"the GPUs here do not support bf16 (compute capability 8.0, Ampere, or newer), which verl's FSDP mixed "
            f"precision and {', '.join(keys)} use: run on A100/H100/H200-class GPUs."
        )
    return "bf16 supported" if supported else "no bf16 needed"
