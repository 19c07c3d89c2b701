"""What a run needs of its machines: CPUs for verl's Ray actors, tinyzero on every node (a real
local Ray instance runs the node probe), and the message when torch cannot see NVIDIA GPUs."""

import pytest

from tinyzero.recipe import CheckError, compose
from tinyzero.train import cluster
from tinyzero.train.cluster import Machines, Node


def flagship(*overrides):
    config = compose(["+recipe=countdown_3b", *overrides])
    cluster.size_storage_units(config)
    return config


def test_storage_units_default_to_two_per_node():
    assert cluster.size_storage_units(compose(["+recipe=countdown_3b"])) == 2
    assert cluster.size_storage_units(compose(["+recipe=countdown_3b", "trainer.nnodes=3"])) == 6
    chosen = compose(["+recipe=countdown_3b", f"{cluster.STORAGE_UNITS_KEY}=5"])
    assert cluster.size_storage_units(chosen) == 5


def test_cpu_need_is_controller_storage_and_three_per_gpu():
    needed, spelled = cluster.cpus_needed(flagship())
    assert needed == 1 + 2 + 3 * 2
    assert "TransferQueue controller" in spelled and cluster.STORAGE_UNITS_KEY in spelled


def test_too_few_local_cpus_fail_naming_both_numbers_and_the_keys():
    machines = cluster.local_machines(flagship("ray_kwargs.ray_init.num_cpus=4"), gpus=2)
    with pytest.raises(CheckError) as failure:
        cluster.check_cpus(flagship(), machines)
    message = str(failure.value)
    assert "needs 9 = 1 (TransferQueue controller) + 2" in message and "gives 4" in message
    assert f"{cluster.STORAGE_UNITS_KEY}=1" in message and "ray_kwargs.ray_init.num_cpus=9" in message
    enough = cluster.local_machines(flagship("ray_kwargs.ray_init.num_cpus=9"), gpus=2)
    assert cluster.check_cpus(flagship(), enough).startswith("9 CPUs")


def test_local_cpus_are_what_ray_would_start_with():
    from ray._private.utils import get_num_cpus

    machines = cluster.local_machines(compose(["+recipe=countdown_3b"]), gpus=0)
    assert machines.local and machines.nodes[0].cpus == get_num_cpus()


def test_each_node_needs_cpus_for_its_gpus_and_storage_units():
    config = flagship("trainer.nnodes=2", "trainer.n_gpus_per_node=8")  # 4 storage units, 2 per node
    plenty = Machines((Node("10.0.0.1", 64, 8, "a"), Node("10.0.0.2", 64, 8, "b")), "a cluster", local=False)
    assert cluster.check_cpus(config, plenty).startswith("128 CPUs (a cluster), 53 = 1")
    # 58 CPUs in all is enough (1 + 4 + 48 = 53), but the second node cannot hold its 24 + 2.
    lopsided = Machines((Node("10.0.0.1", 40, 8, "a"), Node("10.0.0.2", 18, 8, "b")), "a cluster", local=False)
    with pytest.raises(CheckError, match=r"(?s)node 10\.0\.0\.2 has 18 CPUs but would hold 26.*--num-cpus"):
        cluster.check_cpus(config, lopsided)


def test_node_probe_on_a_real_ray_instance():
    """The probe runs on the node as a Ray task; a module or file the node lacks is named."""
    import ray

    ray.init(num_cpus=1, num_gpus=0, include_dashboard=False, logging_level="ERROR")
    try:
        fine = cluster.ray_machines("test", ("tinyzero.rewards",), (), probe=True)
        broken = cluster.ray_machines("test", ("tinyzero.rewards", "tinyzero_absent_for_test"), ("/absent/agent_loops.yaml",),
                                      probe=True)
    finally:
        ray.shutdown()
    assert fine.node_problems == () and "import tinyzero" in cluster.check_nodes(fine)
    assert fine.flash_attn_error and "flash_attn" in fine.flash_attn_error  # not installed here
    with pytest.raises(CheckError) as failure:
        cluster.check_nodes(broken)
    message = str(failure.value)
    assert "`import tinyzero_absent_for_test` fails (ModuleNotFoundError" in message
    assert "/absent/agent_loops.yaml does not exist" in message and "install tinyzero the same way on each node" in message


def test_required_on_nodes_follows_the_config():
    from tinyzero.train import rollout

    config = compose(["+recipe=countdown_3b"])
    rollout.configure_rollout(config)
    modules, paths = cluster.required_on_nodes(config)
    assert modules == ("tinyzero.rewards", "tinyzero.train.agent_loop") and paths == (rollout.agent_loops_file(),)


@pytest.mark.parametrize(
    ("cuda", "visible", "driver", "expected"),
    [
        (None, None, None, "CPU-only build"),
        ("13.0", "", None, "CUDA_VISIBLE_DEVICES=''"),
        ("13.0", None, "570.86.15", "driver (570.86.15) is too old for this torch build (CUDA 13.0; CUDA 13 needs driver R580"),
    ],
)
def test_nvidia_gpus_torch_cannot_see_are_explained(cuda, visible, driver, expected):
    note = cluster.explain_unseen_gpus(2, "nvidia-smi -L", "2.11.0", cuda, visible, driver)
    assert note.startswith("2 NVIDIA GPU(s) are present (nvidia-smi -L) but torch 2.11.0 sees none") and expected in note


def test_the_old_driver_remedy_is_one_that_works_with_vllms_cuda_13_wheel():
    note = cluster.explain_unseen_gpus(2, "nvidia-smi -L", "2.11.0", "13.0", None, "570.86.15")
    assert "A torch for an older CUDA alone does not help" in note and "libnvrtc.so.13" in note
    for remedy in ("driver to R580 or newer", "forward-compatibility package", "vLLM's CUDA 12 build with the torch"):
        assert remedy in note


def test_no_note_without_nvidia_gpus():
    assert cluster.nvidia_devices()[0] == 0  # this machine has none
    assert cluster.cuda_mismatch_note() is None


def test_bf16_keys_are_named_on_gpus_without_bf16():
    config = compose(["+recipe=countdown_3b"])
    assert cluster.check_bf16(config, supported=True) == "bf16 supported"
    with pytest.raises(CheckError, match=r"actor_rollout_ref\.ref\.fsdp_config\.model_dtype=bf16.*rollout\.dtype=bfloat16"):
        cluster.check_bf16(config, supported=False)
