"""The per-node probe of a multi-node launch (tinyzero.train.cluster), up to the Ray boundary and
without starting Ray: the probe is pickled as Ray ships it (cloudpickle, by value) and run in a
separate interpreter that stands for a node; a node that mounts other storage at the same path is
a process in its own mount namespace (`unshare`, as root here and in CI) with another folder bound
over the shared one. Only `run_probe`, the Ray call itself, is replaced."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tinyzero.recipe import CheckError, compose
from tinyzero.train import cluster
from tinyzero.train.cluster import Machines, Node

SHIPPED = """
import json, pickle, sys
if {without_tinyzero}:
    sys.modules["tinyzero"] = None  # a node where tinyzero is not there at all
probe = pickle.loads(sys.stdin.buffer.read())
modules, paths, markers = json.loads(sys.argv[1])
print("ANSWER " + json.dumps(probe(modules, paths, {{folder: tuple(value) for folder, value in markers.items()}})))
"""


def run_on_node(modules, paths, markers, without_tinyzero=False, other_storage: tuple[str, str] | None = None) -> dict:
    """The probe as a Ray worker on a node would run it: unpickled from Ray's cloudpickle."""
    import ray.cloudpickle

    command = [sys.executable, "-c", SHIPPED.format(without_tinyzero=without_tinyzero),
               json.dumps([list(modules), list(paths), markers])]
    if other_storage is not None:  # another filesystem at the same path, seen by this process only
        mounted, over = other_storage
        command = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                   'mount --bind "$1" "$2" && shift 2 && exec "$@"', "sh", mounted, over, *command]
    result = subprocess.run(command, input=ray.cloudpickle.dumps(cluster._node_probe()), capture_output=True,
                            timeout=900, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    answers = [line for line in result.stdout.decode().splitlines() if line.startswith("ANSWER ")]
    assert result.returncode == 0 and answers, result.stderr.decode()[-3000:]
    return json.loads(answers[0][len("ANSWER "):])


def test_the_shipped_probe_names_what_a_node_without_tinyzero_lacks():
    answer = run_on_node(["tinyzero.rewards"], ["/absent/agent_loops.yaml"], {}, without_tinyzero=True)
    assert any(found.startswith("`import tinyzero.rewards` fails (ModuleNotFoundError") for found in answer["missing"])
    assert "/absent/agent_loops.yaml does not exist" in answer["missing"]
    assert answer["plugin"].startswith("tinyzero's verl plugin fails to load (ModuleNotFoundError")
    assert answer["plugin"] in answer["missing"]
    fine = run_on_node(["tinyzero.rewards"], [], {})
    assert fine["missing"] == [] and fine["plugin"] is None and "flash_attn" in fine["flash_attn"]
    assert fine["cc"] and fine["cxx"]  # gcc and g++ are installed here


def nodes_answering(monkeypatch, other_storage_for: set[str], late: set[str], mounted: Path):
    """run_probe, the Ray call, replaced by the shipped probe run once per node."""

    def run_probe(nodes, modules, paths, markers, timeout_s):
        answers = []
        for node in nodes:
            if node.address in late:
                continue
            over = next(iter(markers)) if node.address in other_storage_for else None
            answers.append((node, run_on_node(modules, paths, markers,
                                              other_storage=(str(mounted), over) if over else None)))
        return answers, [node for node in nodes if node.address in late]

    monkeypatch.setattr(cluster, "run_probe", run_probe)


def test_every_node_must_see_the_launching_machines_storage(monkeypatch, tmp_path):
    shared, elsewhere = tmp_path / "shared", tmp_path / "a-local-disk"
    elsewhere.mkdir()
    storage = {"data_root": str(shared / "data"), "trainer.default_local_dir": str(shared / "data")}
    nodes = (Node("10.0.0.1", 8, 1, "a"), Node("10.0.0.2", 8, 1, "b"), Node("10.0.0.3", 8, 1, "c"))
    nodes_answering(monkeypatch, other_storage_for={"10.0.0.2"}, late={"10.0.0.3"}, mounted=elsewhere)
    machines = cluster.probed_machines(nodes, "a cluster", ("tinyzero.rewards",), (), storage, timeout_s=300)
    assert list((shared / "data").iterdir()) == []  # the marker is removed after the probe
    problems = "\n".join(machines.node_problems)
    assert "10.0.0.1" not in problems
    assert (f"node 10.0.0.2: data_root={shared / 'data'} is not the launching machine's storage here "
            "(its marker file .tinyzero-storage-check-") in problems
    assert "node 10.0.0.3: no answer within 300 s (raise node_probe_timeout_s" in problems
    with pytest.raises(CheckError, match="put it on a filesystem every node mounts at the same path"):
        cluster.check_nodes(machines)
    assert [where for where, _, _ in machines.compilers] == ["node 10.0.0.1", "node 10.0.0.2"]


def test_storage_folders_are_the_absolute_data_root_and_checkpoint_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = compose(["+recipe=countdown_3b", "data_root=relative/data"])
    folders = cluster.storage_folders(config)
    assert folders["data_root"] == str(tmp_path / "relative" / "data")
    assert folders["trainer.default_local_dir"] == str(tmp_path / "checkpoints" / "tinyzero" / "countdown_3b")
    assert compose(["+recipe=countdown_3b"]).node_probe_timeout_s == 300


# --- The compiler -----------------------------------------------------------------------------


def machines_with(cc, cxx, flash_attn_error="ModuleNotFoundError: No module named 'flash_attn'"):
    return Machines((Node("10.0.0.1", 8, 1, "a"),), "a cluster", local=False, probed=True,
                    flash_attn_error=flash_attn_error, compilers=(("node 10.0.0.1", cc, cxx),))


def test_a_gpu_run_that_compiles_needs_a_c_compiler_on_its_gpu_nodes():
    config = compose(["+recipe=countdown_3b"])
    assert cluster.check_compiler(config, machines_with("/usr/bin/gcc", None), cpu_run=False) == (
        "C compiler /usr/bin/gcc for 2 compiled part(s)")
    with pytest.raises(CheckError) as failure:
        cluster.check_compiler(config, machines_with(None, "/usr/bin/g++", flash_attn_error=None), cpu_run=False)
    message = str(failure.value)
    assert message.startswith("no C compiler on node 10.0.0.1 ($CC, gcc or clang)")
    for off in ("actor_rollout_ref.rollout.enforce_eager=true", "actor_rollout_ref.actor.fsdp_config.use_torch_compile=false",
                "VERL_DISABLE_FLASH_ATTN_CE=1", "apt-get install gcc g++"):
        assert off in message
    nothing = compose(["+recipe=countdown_3b", "actor_rollout_ref.rollout.enforce_eager=true",
                       "actor_rollout_ref.actor.fsdp_config.use_torch_compile=false"])
    assert cluster.check_compiler(nothing, machines_with(None, None), cpu_run=False) == "nothing compiles at start-up"


def test_a_cpu_run_needs_the_cpp_compiler_of_torchs_inductor():
    """verl's engine reads use_torch_compile from fsdp_config (transformer_impl.py 182-187): with it
    on, the entropy compiles, in C++ on a CPU. countdown_tiny turns it off, so nothing compiles."""
    config = compose(["+recipe=countdown_tiny", "actor_rollout_ref.actor.fsdp_config.use_torch_compile=true"])
    with pytest.raises(CheckError, match=r"^no C\+\+ compiler on node 10\.0\.0\.1 \(\$CXX, g\+\+ or clang\+\+\).*entropy"):
        cluster.check_compiler(config, machines_with("/usr/bin/gcc", None), cpu_run=True)
    assert "vLLM" not in cluster.check_compiler(config, machines_with(None, "/usr/bin/g++"), cpu_run=True)
    recipe = compose(["+recipe=countdown_tiny"])
    assert cluster.check_compiler(recipe, machines_with(None, None), cpu_run=True) == "nothing compiles at start-up"


def test_the_compiler_lookup_follows_cc_as_triton_does(monkeypatch):
    monkeypatch.setenv("CC", "no-such-compiler-here")
    assert cluster._node_probe()((), (), {})["cc"] is None
    monkeypatch.delenv("CC")
    assert cluster._node_probe()((), (), {})["cc"] == shutil.which("gcc")
