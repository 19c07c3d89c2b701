"""Each pre-launch check in tinyzero.train.checks and .memory, on real configs, real Ray and real model folders."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tinyzero.recipe import compose
from tinyzero.train import checks, memory
from tinyzero.train.checks import CheckError


@pytest.fixture(scope="module")
def flagship():
    return compose(["+recipe=countdown_3b"])


def with_overrides(*overrides):
    return compose(["+recipe=countdown_3b", *overrides])


# --- GPUs ------------------------------------------------------------------------------------


def test_gpu_check_on_a_ray_instance_without_gpus(flagship):
    """Ray instances report their GPUs as resources; one with none fails the check with the fix.
    (A Ray instance with 2 logical GPUs, attached to by address, is in test_train.py.)"""
    import ray

    ray.init(num_gpus=0, num_cpus=1, include_dashboard=False, logging_level="ERROR")
    try:
        inventory = checks.count_gpus()
    finally:
        ray.shutdown()
    assert inventory.count == 0
    with pytest.raises(CheckError, match=r"found 0 GPU\(s\) \(the Ray instance.*needs 2.*ray_address"):
        checks.check_gpus(flagship, inventory)


def test_gpu_check_without_ray_counts_local_cuda(flagship):
    import torch

    inventory = checks.count_gpus()
    assert inventory.count == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    assert inventory.source == "local CUDA"
    if inventory.count < 2:
        with pytest.raises(CheckError, match="trainer.n_gpus_per_node"):
            checks.check_gpus(flagship, inventory)


# --- Names verl looks up late ----------------------------------------------------------------


def test_name_check_catches_misspelt_algorithm_engine_and_logger(flagship):
    assert "known to verl" in checks.check_names(flagship)
    config = with_overrides("algorithm.adv_estimator=grpoo", "actor_rollout_ref.rollout.name=vlm",
                            "trainer.logger=[console,tensorbord]")
    with pytest.raises(CheckError) as error:
        checks.check_names(config)
    message = str(error.value)
    assert "algorithm.adv_estimator: verl knows no 'grpoo'; did you mean grpo?" in message
    assert "actor_rollout_ref.rollout.name: verl knows no 'vlm'; did you mean vllm?" in message
    assert "trainer.logger: verl knows no 'tensorbord'; did you mean tensorboard?" in message
    assert "gae" in message  # the valid choices are listed


# --- Batch arithmetic ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["trainer.n_gpus_per_node=3"], r"data.train_batch_size \(256\) x actor_rollout_ref.rollout.n \(4\) = 1024"),
        (["actor_rollout_ref.actor.ppo_mini_batch_size=100"], r"ppo_mini_batch_size \(100\) must divide data.train_batch_size"),
        (["actor_rollout_ref.rollout.tensor_model_parallel_size=4"], r"tensor_model_parallel_size \(4\) must divide trainer.n_gpus_per_node \(2\)"),
        (["actor_rollout_ref.actor.ppo_max_token_len_per_gpu=1000"], r"ppo_max_token_len_per_gpu \(1000\) is below one full sequence.*1280"),
        (["actor_rollout_ref.actor.use_dynamic_bsz=false", "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=7"],
         r"each GPU gets 256 sequences per mini-batch.*ppo_micro_batch_size_per_gpu \(7\)"),
    ],
)
def test_batch_check_names_the_keys(overrides, message):
    with pytest.raises(CheckError, match=message):
        checks.check_batch_arithmetic(with_overrides(*overrides))


def test_batch_check_runs_verls_validate_config():
    """Sampled validation needs a temperature above 0: our rules do not know it, verl's do."""
    config = with_overrides("actor_rollout_ref.rollout.val_kwargs.do_sample=true", "actor_rollout_ref.rollout.temperature=0")
    with pytest.raises(CheckError, match="verl's validate_config rejected the config: validation gen temperature"):
        checks.check_batch_arithmetic(config)


def test_a_bare_assert_of_verl_names_the_assertion():
    """verl's optimizer config checks its scheduler with a bare `assert` (no message): the error says
    which assertion failed, on one line, not an empty message or a model-loading one."""
    config = with_overrides("actor_rollout_ref.actor.optim.lr_scheduler_type=cosin")
    with pytest.raises(CheckError) as error:
        checks.check_batch_arithmetic(config)
    assert str(error.value) == ("verl's validate_config rejected the config: `assert self.lr_scheduler_type in "
                                "[\"constant\", \"cosine\"]` failed (config/optimizer.py 123)")


def test_batch_check_scales_with_the_hardware():
    summary = checks.check_batch_arithmetic(with_overrides("trainer.n_gpus_per_node=8", "trainer.nnodes=2"))
    assert "over 16 GPU(s)" in summary and "16 vLLM replica(s)" in summary


# --- The model -------------------------------------------------------------------------------


def test_model_check_rejects_a_missing_local_folder(tmp_path):
    with pytest.raises(CheckError, match=r"actor_rollout_ref.model.path='.*nope': no such folder"):
        memory.check_model(str(tmp_path / "nope"))
    with pytest.raises(CheckError, match="has no config.json"):
        memory.check_model(str(tmp_path))


def test_model_shape_from_a_local_folder_counts_its_real_parameters(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    shape = memory.check_model(str(tiny_model_dir))
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert shape.n_params == sum(p.numel() for p in model.parameters())


def test_model_shape_of_a_hub_name_needs_no_network():
    shape = memory.check_model("Qwen/Qwen2.5-3B-Instruct")
    assert shape is not None and 3.0e9 < shape.n_params < 3.2e9  # Qwen2.5-3B: 3.09B parameters
    assert 7.5e9 < memory.check_model("Qwen/Qwen2.5-7B").n_params < 7.7e9  # untied embeddings: 7.62B
    assert memory.check_model("someone/unknown-model") is None  # unknown: the estimate is skipped
    with pytest.raises(CheckError, match="neither an existing folder nor a hub name"):
        memory.check_model("not a model")


# --- Memory ----------------------------------------------------------------------------------


def test_memory_check_fails_with_suggestions_when_a_7b_model_is_squeezed_onto_one_24gb_gpu():
    config = compose(["+recipe=countdown_7b", "trainer.n_gpus_per_node=1"])
    estimate = memory.estimate_memory(config, memory.check_model(config.actor_rollout_ref.model.path), 24.0)
    assert estimate.training_state_gib > 100  # 16 bytes per parameter of 7.6B, unsharded, plus the reference
    with pytest.raises(CheckError, match=r"(?s)not to fit.*gpu_memory_utilization.*optimizer_offload.*ppo_max_token_len_per_gpu.*n_gpus_per_node"):
        memory.check_memory(estimate)


def test_memory_estimate_shrinks_with_offload_fewer_tokens_and_more_gpus(flagship):
    shape = memory.check_model("Qwen/Qwen2.5-3B")
    base = memory.estimate_memory(flagship, shape, 80.0)
    offload = memory.estimate_memory(with_overrides("actor_rollout_ref.actor.fsdp_config.optimizer_offload=true"), shape, 80.0)
    fewer_tokens = memory.estimate_memory(with_overrides("actor_rollout_ref.actor.ppo_max_token_len_per_gpu=4096"), shape, 80.0)
    more_gpus = memory.estimate_memory(with_overrides("trainer.n_gpus_per_node=4"), shape, 80.0)
    assert offload.rollout_peak_gib < base.rollout_peak_gib
    assert fewer_tokens.activations_gib < base.activations_gib
    assert more_gpus.training_state_gib == pytest.approx(base.training_state_gib / 2)


# --- Unknown keys and data files -------------------------------------------------------------


def test_unknown_key_check_names_the_typo_and_the_intended_key():
    config = with_overrides("+trainer.n_gpu_per_node=2", "+actor_rollout_ref.rollout.engine_kwargs.vllm.swap_space=4")
    with pytest.raises(CheckError, match=r"trainer.n_gpu_per_node \(did you mean trainer.n_gpus_per_node\?\)") as error:
        checks.check_unknown_keys(config, checks.reference_config())
    assert "engine_kwargs" not in str(error.value)  # verl passes engine_kwargs through: anything goes there


def test_plus_keys_that_verl_or_ray_read_pass_and_their_typos_do_not():
    """verl's YAML leaves out some dataclass fields (RolloutConfig.enable_sleep_mode) and all of
    ray.init's parameters; `+key=` sets them and verl or Ray really reads them."""
    config = with_overrides("+actor_rollout_ref.rollout.enable_sleep_mode=false", "+ray_kwargs.ray_init.num_gpus=1")
    checks.check_unknown_keys(config, checks.reference_config())
    for typo, hint in (("+actor_rollout_ref.rollout.enable_sleep_mod=false", "actor_rollout_ref.rollout.enable_sleep_mode"),
                       ("+ray_kwargs.ray_init.num_gpu=1", "ray_kwargs.ray_init.num_gpus")):
        with pytest.raises(CheckError, match=rf"\(did you mean {hint}\?\)"):
            checks.check_unknown_keys(with_overrides(typo), checks.reference_config())


def test_prompt_length_check_measures_with_the_runs_tokenizer(tmp_path, tiny_model_dir):
    """The tests' tokenizer makes a Countdown prompt 269 tokens (with the base template): refused
    at 256, naming the row, its length and the key; accepted at 320."""
    from tinyzero.train.app import apply_prompt_style, prepare_data

    def prepared(limit):
        config = with_overrides(f"actor_rollout_ref.model.path={tiny_model_dir}", f"data_root={tmp_path}",
                                "task.train_size=16", "task.test_size=4", f"data.max_prompt_length={limit}")
        apply_prompt_style(config)
        prepare_data(config)
        return config

    with pytest.raises(CheckError, match=r"a prompt is 2\d\d tokens long .* data.max_prompt_length=256.*Longest: row \d+ of "
                                         r".*train.parquet.*Raise data.max_prompt_length to at least 2\d\d"):
        checks.check_prompt_lengths(prepared(256))
    assert checks.check_prompt_lengths(prepared(320)).startswith("longest prompt 2")
    hub = prepared(320)
    hub.actor_rollout_ref.model.path = "Qwen/Not-Downloaded-Here"  # never looked up on the network
    assert checks.check_prompt_lengths(hub).startswith("prompt lengths not measured")


def test_dataset_check_names_missing_columns(tmp_path, flagship):
    path = tmp_path / "mine.parquet"
    pq.write_table(pa.table({"prompt": [json.dumps([{"role": "user", "content": "hi"}])], "answer": ["1"]}), path)
    with pytest.raises(CheckError, match=r"data.train_files: .*lacks column\(s\) 'data_source', 'reward_model'"):
        checks.check_dataset_file(str(path), "data.train_files", flagship)
    with pytest.raises(CheckError, match="does not exist"):
        checks.check_dataset_file(str(tmp_path / "missing.parquet"), "data.val_files", flagship)
