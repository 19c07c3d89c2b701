"""What a run needs of its machines besides GPU count and memory: CPUs for verl's Ray actors,
tinyzero (and its verl plugin) on every node, shared storage, a C compiler where something compiles,
the platform verl chooses, and a CUDA driver torch can use.

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
cluster a tiny task per node checks that before anything starts, and that verl loaded tinyzero's
plugin there: `import verl` loads the `verl.plugins` entry points and logs a failure at debug
level only (verl/__init__.py 55-75), so a node where tinyzero is importable but not installed runs
without tinyzero's verl fixes. The same task reads a marker file the launch writes into `data_root`
and `trainer.default_local_dir`: every node must see the same storage there (the task data and
models are read, checkpoint shards written, from any node). This machine runs the same checks
in-process.

Compiling. Triton compiles a C launcher for each kernel with `$CC`, gcc or clang
(triton/runtime/build.py), and verl's and vLLM's torch.compile go through Triton on GPUs (a C++
compiler, `$CXX` or g++, on the CPU): vLLM unless `enforce_eager` (vllm/config/vllm.py 1061-1067 in
vLLM 0.24), verl's entropy in every old-log-prob pass (workers/engine/fsdp/transformer_impl.py
182-187; trainer/ppo/v1/trainer_base.py 1653), verl's fused kernels, and flash-attn's Triton
cross-entropy that verl's log-probs use when flash-attn imports (utils/torch_functional.py 35-37,
95). A slim image without a compiler fails at vLLM start-up; the check fails first.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf, open_dict

from tinyzero.recipe import CheckError

CPUS_PER_GPU = 3  # verl's max_colocate_count (single_controller/ray/base.py 192)
STORAGE_UNITS_KEY = "transfer_queue.backend.SimpleStorage.num_data_storage_units"
STORAGE_UNITS_PER_NODE = 2  # TransferQueue's recommendation: at least 2 per node
PROBE_TIMEOUT_KEY = "node_probe_timeout_s"  # conf/train.yaml: importing verl on a cold shared disk is slow
PROBE_TIMEOUT_S = 300.0  # its default, for callers without a config
PLUGIN_MODULE = "tinyzero.platforms.verl_plugin"  # what tinyzero's `verl.plugins` entry point loads
STORAGE_MARKER = ".tinyzero-storage-check-"  # + a token per launch, in data_root and default_local_dir
STORAGE_KEYS = ("data_root", "trainer.default_local_dir")
INSTALL_COMPILER = "install one (Debian/Ubuntu: `apt-get install gcc g++`, or build-essential)"


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
    compilers: tuple[tuple[str, str | None, str | None], ...] = ()  # (node, C compiler, C++ compiler) where models run


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
    local Ray verl will start (this machine checked in-process)."""
    import ray

    if address and not ray.is_initialized():
        return cluster_machines(address, *required_on_nodes(config), storage=storage_folders(config),
                                timeout_s=float(config[PROBE_TIMEOUT_KEY]))
    here = _node_probe()((), (), {})
    compilers = (("this machine", here["cc"], here["cxx"]),)
    if ray.is_initialized():
        return ray_machines("the Ray instance of this process", flash_attn_error=here["flash_attn"], compilers=compilers)
    return local_machines(config, gpus, here["flash_attn"], compilers)


def local_machines(config: DictConfig, gpus: int, flash_attn_error: str | None = None,
                   compilers: tuple = ()) -> Machines:
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
    return Machines((Node("this machine", cpus, gpus),), source, local=True, flash_attn_error=flash_attn_error,
                    compilers=compilers)


def required_on_nodes(config: DictConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(modules, files) every node must have for this config: verl's reward and agent-loop workers
    import the reward and read the agent-loop file on every node with CPUs."""
    modules, paths = ["tinyzero.rewards"], []
    agent = config.actor_rollout_ref.rollout.agent
    if agent.agent_loop_config_path:
        modules.append("tinyzero.train.agent_loop")
        paths.append(str(agent.agent_loop_config_path))
    return tuple(modules), tuple(paths)


def storage_folders(config: DictConfig) -> dict[str, str]:
    """{key: absolute folder} of the storage every node must share."""
    from tinyzero.recipe import absolute

    return {key: str(absolute(OmegaConf.select(config, key))) for key in STORAGE_KEYS}


@contextmanager
def storage_markers(storage: dict[str, str]):
    """Write a marker with a fresh token into each folder (created when missing) for the probe to
    read on every node: {folder: (key, marker file name, token)}. Removed afterwards."""
    token = uuid.uuid4().hex
    markers = {}
    for key, folder in storage.items():
        if folder in markers:  # both keys on one folder: one marker
            continue
        name = f"{STORAGE_MARKER}{token}"
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / name).write_text(token)
        markers[folder] = (key, name, token)
    try:
        yield markers
    finally:
        for folder, (_, name, _) in markers.items():
            (Path(folder) / name).unlink(missing_ok=True)


def cluster_machines(address: str, modules: tuple[str, ...], paths: tuple[str, ...], storage: dict[str, str] | None = None,
                     timeout_s: float = PROBE_TIMEOUT_S) -> Machines:
    """Attach to the cluster, read its nodes and probe them, detach (verl's run_ppo attaches again)."""
    import ray

    try:
        ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    except Exception as error:  # Ray raises ConnectionError, RuntimeError, ValueError here
        raise CheckError(f"cannot reach the Ray cluster at ray_address={address!r}: {error}") from error
    try:
        return ray_machines(f"Ray cluster at {address}", modules, paths, probe=True, storage=storage or {},
                            timeout_s=timeout_s)
    finally:
        ray.shutdown()


def ray_machines(source: str, modules: tuple[str, ...] = (), paths: tuple[str, ...] = (), probe: bool = False,
                 flash_attn_error: str | None = None, storage: dict[str, str] | None = None,
                 timeout_s: float = PROBE_TIMEOUT_S, compilers: tuple = ()) -> Machines:
    """Nodes of the Ray instance this process is connected to, in TransferQueue's order; with
    `probe`, each node with CPUs runs the probe (_node_probe) for `modules`, `paths` and the
    `storage` folders."""
    import ray

    nodes = tuple(
        Node(node["NodeManagerAddress"], float(node["Resources"].get("CPU", 0)), float(node["Resources"].get("GPU", 0)),
             node["NodeID"])
        for node in sorted(ray.nodes(), key=lambda node: node["NodeID"])
        if node.get("Alive")
    )
    if not probe:
        return Machines(nodes, source, local=False, flash_attn_error=flash_attn_error, compilers=compilers)
    return probed_machines(nodes, source, modules, paths, storage or {}, timeout_s)


def probed_machines(nodes: tuple[Node, ...], source: str, modules: tuple[str, ...], paths: tuple[str, ...],
                    storage: dict[str, str], timeout_s: float) -> Machines:
    """The nodes with what the probe found on each: markers written into the `storage` folders for
    the probe to read, removed afterwards."""
    with storage_markers(storage) as markers:
        answers, late = run_probe(nodes, modules, paths, markers, timeout_s)
    problems, flash, compilers = read_answers(answers)
    problems += [f"node {node.address}: no answer within {timeout_s:.0f} s (raise {PROBE_TIMEOUT_KEY} when a node "
                 "imports verl slowly, e.g. from a cold shared disk)" for node in late]
    return Machines(nodes, source, local=False, probed=True, node_problems=tuple(problems), flash_attn_error=flash,
                    compilers=compilers)


def _node_probe():
    """The task each node runs, and this machine in-process. Built here, not at module level, so
    Ray ships the function itself: a node without tinyzero could not even load a function that lives
    in a tinyzero module (for the same reason it names no module-level value of this file)."""

    def import_error(module):
        import importlib

        try:
            importlib.import_module(module)
        except Exception as error:  # ImportError, or OSError from a library built for another CUDA
            return f"{type(error).__name__}: {error}"
        return None

    def plugin_problem():
        """Why verl did not load tinyzero's plugin in this process, or None."""
        import os
        import sys
        from importlib.metadata import entry_points

        plugin = "tinyzero.platforms.verl_plugin"
        failed = import_error("verl")  # loads the `verl.plugins` entry points
        if failed:
            return f"`import verl` fails ({failed})"
        if plugin in sys.modules:
            return None
        ours = [point for point in entry_points(group="verl.plugins") if point.value == plugin]
        if not ours:
            return (f"verl found no `verl.plugins` entry point for {plugin}: tinyzero is importable but not installed "
                    "(a PYTHONPATH or a copied folder registers no entry point)")
        policy = os.environ.get("VERL_USE_EXTERNAL_PLUGINS", "auto").strip().lower()
        if policy != "auto" and ours[0].name not in {name.strip() for name in policy.split(",")}:
            return f"VERL_USE_EXTERNAL_PLUGINS={policy} keeps verl from loading tinyzero's plugin ({ours[0].name})"
        try:
            ours[0].load()
        except Exception as error:  # what verl logged at debug level only
            return f"tinyzero's verl plugin fails to load ({type(error).__name__}: {error})"
        return None

    def compiler(variable, *names):
        import os
        import shutil

        chosen = os.environ.get(variable)
        candidates = [chosen] if chosen else names  # Triton and torch take $CC / $CXX as given
        return next((shutil.which(name) for name in candidates if shutil.which(name)), None)

    def probe(modules, paths, markers):
        import os

        errors = {module: import_error(module) for module in modules}
        missing = [f"`import {module}` fails ({error})" for module, error in errors.items() if error]
        missing += [f"{path} does not exist" for path in paths if not os.path.exists(path)]
        plugin = plugin_problem()
        if plugin:
            missing.append(plugin)
        for folder, (key, name, token) in markers.items():
            try:
                with open(os.path.join(folder, name)) as marker:
                    same = marker.read() == token
            except OSError:
                same = False
            if not same:
                missing.append(f"{key}={folder} is not the launching machine's storage here (its marker file {name} "
                               "is not there): put it on a filesystem every node mounts at the same path")
        return {"missing": missing, "plugin": plugin, "flash_attn": import_error("flash_attn"),
                "cc": compiler("CC", "gcc", "clang"), "cxx": compiler("CXX", "g++", "clang++")}

    return probe


def run_probe(nodes: tuple[Node, ...], modules: tuple[str, ...], paths: tuple[str, ...], markers: dict,
              timeout_s: float) -> tuple[list[tuple[Node, dict | BaseException]], list[Node]]:
    """One zero-CPU probe task per node with CPUs (where verl's reward and agent-loop workers go):
    ([(node, its answer or the task's exception)], nodes that did not answer within `timeout_s`)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    probe = ray.remote(num_cpus=0, max_retries=0)(_node_probe())
    pending = {
        probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False)).remote(
            list(modules), list(paths), markers
        ): node
        for node in nodes
        if node.cpus > 0
    }
    done, late = ray.wait(list(pending), num_returns=len(pending), timeout=timeout_s)
    answers = []
    for ref in done:
        try:
            answers.append((pending[ref], ray.get(ref)))
        except Exception as error:  # the task itself failed on that node
            answers.append((pending[ref], error))
    for ref in late:
        ray.cancel(ref, force=True)
    return answers, [pending[ref] for ref in late]


def read_answers(answers: list[tuple[Node, dict | BaseException]]) -> tuple[list[str], str | None, tuple]:
    """(what nodes lack, why flash-attn does not import on a GPU node or None, the compilers of the
    nodes with GPUs, where the models compile) from the probe's answers."""
    problems, flash, compilers = [], None, []
    for node, answer in answers:
        if isinstance(answer, BaseException):
            problems.append(f"node {node.address}: the check task failed ({type(answer).__name__}: {answer})")
            continue
        problems += [f"node {node.address}: {found}" for found in answer["missing"]]
        if answer["flash_attn"] and (node.gpus > 0 or flash is None):
            flash = f"on node {node.address}: {answer['flash_attn']}"
        if node.gpus > 0:
            compilers.append((f"node {node.address}", answer["cc"], answer["cxx"]))
    return problems, flash, tuple(compilers)


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


def check_platform() -> str:
    """verl loaded tinyzero's plugin in this process, and chose the CPU platform only where torch
    sees no GPU (tinyzero.platforms.cpu); returns the platform verl chose."""
    from verl.plugin.platform import get_platform

    plugin = _node_probe()((), (), {})["plugin"]
    if plugin:
        raise CheckError(
            f"{plugin}. verl would run without tinyzero's verl 0.9.1 fixes (the critic's attention kernel, trl's "
            "value head, the CPU platform). Install tinyzero (`pip install -e .` in the repository, or `pip install "
            "'tinyzero[train]'`), then check `python -c \"import verl, sys; print('tinyzero.platforms.verl_plugin' in "
            "sys.modules)\"` says True."
        )
    platform = get_platform()
    if platform.device_name == "cpu":
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if gpus:
            forced = os.environ.get("VERL_PLATFORM")
            raise CheckError(
                f"verl chose tinyzero's CPU platform{f' (VERL_PLATFORM={forced})' if forced else ''} but torch sees "
                f"{gpus} GPU(s): the run would train on the CPU and hand vLLM's GPU servers the CPU replica. Unset "
                "VERL_PLATFORM for a GPU run, or hide the GPUs (CUDA_VISIBLE_DEVICES='') for a CPU run."
            )
    return f"verl's {platform.device_name} platform, tinyzero's verl plugin loaded"


def compiled_parts(config: DictConfig, flash_attn_imports: bool) -> list[str]:
    """What will compile when the run starts, each with the setting that turns it off."""
    parts = []
    if config.actor_rollout_ref.rollout.name == "vllm" and not config.actor_rollout_ref.rollout.enforce_eager:
        parts.append("vLLM's torch.compile and CUDA graphs (off: actor_rollout_ref.rollout.enforce_eager=true, "
                     "slower generation)")
    if config.actor_rollout_ref.actor.fsdp_config.get("use_torch_compile", True):
        parts.append("verl's compiled entropy (off: actor_rollout_ref.actor.fsdp_config.use_torch_compile=false)")
    if config.actor_rollout_ref.model.get("use_fused_kernels"):
        parts.append("verl's fused kernels (off: actor_rollout_ref.model.use_fused_kernels=false)")
    if flash_attn_imports:
        parts.append("flash-attn's Triton cross-entropy in verl's log-probs (off: VERL_DISABLE_FLASH_ATTN_CE=1 on "
                     "every node)")
    return parts


def check_compiler(config: DictConfig, machines: Machines, cpu_run: bool) -> str:
    """A compiler where the models run, when something there will compile: Triton's C compiler on
    GPUs, inductor's C++ compiler on the CPU platform."""
    parts = compiled_parts(config, flash_attn_imports=not cpu_run and machines.flash_attn_error is None)
    if not parts:
        return "nothing compiles at start-up"
    language, column = ("C++", 2) if cpu_run else ("C", 1)
    found = {compilers[0]: compilers[column] for compilers in machines.compilers}
    lacking = [where for where, path in found.items() if path is None]
    if lacking:
        variable = "CXX" if cpu_run else "CC"
        raise CheckError(
            f"no {language} compiler on {', '.join(lacking)} (${variable}, {'g++ or clang++' if cpu_run else 'gcc or clang'}), "
            f"and {'; '.join(parts)} will compile at start-up: {INSTALL_COMPILER}, or turn those off."
        )
    if not found:
        return f"{language} compiler not checked (no node with GPUs answered)"
    compilers = sorted({path for path in found.values()})
    return f"{language} compiler {', '.join(compilers)} for {len(parts)} compiled part(s)"


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
        "CUDA 13 needs driver R580 or newer). A torch for an older CUDA alone does not help: verl[vllm]'s vLLM 0.24 "
        "wheel is built for CUDA 13 too (its cumem_allocator needs libnvrtc.so.13). Update the driver to R580 or "
        "newer; or, on data-centre GPUs, install NVIDIA's CUDA forward-compatibility package for CUDA 13 "
        "(cuda-compat-13-0) and put its libraries first on LD_LIBRARY_PATH; or install vLLM's CUDA 12 build with the "
        "torch it was built against (nvidia-smi shows the highest CUDA the driver supports)."
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
