"""tinyzero.train.ranges: every knob's allowed range, checked before any work. The table itself
(against verl's config and verl's estimators), bad values in-process, and the launch as a user runs
it: exit 2, one line naming the key and the value, the data root untouched."""

import os
import subprocess
import sys

import pytest
from omegaconf import OmegaConf

from tinyzero.recipe import CheckError, compose, recipe_files
from tinyzero.train import checks, ranges


def tiny(*overrides, tmp_path):
    return compose(["+recipe=countdown_tiny", f"data_root={tmp_path}/data", *overrides])


# --- The table -------------------------------------------------------------------------------


def test_every_key_of_the_table_is_one_verl_or_tinyzero_reads(tmp_path):
    """A misspelt key in the table would check nothing: each one is in verl's ppo_trainer (or ours),
    in verl's sft_trainer_engine for priming.sft, or a ray.init parameter for ray_kwargs.ray_init."""
    from tinyzero.train.prime import verl_sft_config

    reference = checks.reference_config()
    sft = verl_sft_config(OmegaConf.create({}), "cpu")
    missing = object()
    for key in [entry.key for entry in ranges.RANGES] + list(ranges.FOLDERS):
        section, _, name = key.rpartition(".")
        if key.startswith("priming.sft."):
            assert OmegaConf.select(sft, key.removeprefix("priming.sft."), default=missing) is not missing, key
        elif section == "ray_kwargs.ray_init":
            assert name in checks.read_without_yaml(section, reference), key
        elif key != "tiny_model.folder":  # tiny_model is null in the reference: a recipe's block sets it
            assert OmegaConf.select(reference, key, default=missing) is not missing, key
    assert len({entry.key for entry in ranges.RANGES}) == len(ranges.RANGES), "one entry per key"


def test_every_message_names_the_allowed_range():
    for entry in ranges.RANGES:
        assert "{allowed}" in entry.why, entry.key
        assert entry.fix, entry.key


def test_the_group_estimators_are_verls_and_the_others_need_no_group():
    """A new estimator in verl's registry must be sorted into one side or the other."""
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY

    assert set(ranges.GROUP_ESTIMATORS) <= set(ADV_ESTIMATOR_REGISTRY)
    assert set(ADV_ESTIMATOR_REGISTRY) - set(ranges.GROUP_ESTIMATORS) == {"gae", "reinforce_plus_plus", "remax"}


def test_what_the_refusal_says_of_a_group_of_one_is_what_verl_computes():
    """verl's grpo with one answer per prompt: the advantage is the raw reward; rloo_vectorized: 0."""
    import numpy as np
    import torch
    from verl.trainer.ppo.core_algos import get_adv_estimator_fn

    rewards = torch.zeros(3, 4)
    rewards[:, -1] = torch.tensor([1.0, 0.1, 0.0])  # the project's reward: correct, format only, nothing
    mask = torch.ones(3, 4)
    index = np.array(["a", "b", "c"])  # three prompts, one answer each
    grpo, _ = get_adv_estimator_fn("grpo")(token_level_rewards=rewards, response_mask=mask, index=index)
    assert torch.allclose(grpo[:, 0], torch.tensor([1.0, 0.1, 0.0]), atol=1e-5)
    loo, _ = get_adv_estimator_fn("rloo_vectorized")(token_level_rewards=rewards, response_mask=mask, index=index)
    assert torch.count_nonzero(loo) == 0


@pytest.mark.parametrize("recipe", sorted(recipe_files()))
def test_every_recipe_passes(recipe, tmp_path):
    config = compose([f"+recipe={recipe}", f"data_root={tmp_path}/data"])
    assert ranges.check_ranges(config) == "every value is within its range"
    assert not (tmp_path / "data").exists()  # checking creates nothing


# --- Bad values, in-process ------------------------------------------------------------------

BAD = [
    # (override, what the message starts with: the key and the value as typed)
    ("actor_rollout_ref.rollout.n=0", "actor_rollout_ref.rollout.n=0: "),
    ("actor_rollout_ref.rollout.n=2.5", "actor_rollout_ref.rollout.n=2.5: "),
    ("actor_rollout_ref.rollout.n=true", "actor_rollout_ref.rollout.n=true: "),
    ("data.train_batch_size=0", "data.train_batch_size=0: "),
    ("data.max_prompt_length=-5", "data.max_prompt_length=-5: "),
    ("data.max_response_length=0", "data.max_response_length=0: "),
    ("data.dataloader_num_workers=-1", "data.dataloader_num_workers=-1: "),
    ("actor_rollout_ref.actor.ppo_mini_batch_size=0", "actor_rollout_ref.actor.ppo_mini_batch_size=0: "),
    ("actor_rollout_ref.actor.ppo_epochs=0", "actor_rollout_ref.actor.ppo_epochs=0: "),
    ("trainer.total_epochs=0", "trainer.total_epochs=0: "),
    ("trainer.total_training_steps=0", "trainer.total_training_steps=0: "),
    ("trainer.nnodes=0", "trainer.nnodes=0: "),
    ("trainer.n_gpus_per_node=-1", "trainer.n_gpus_per_node=-1: "),
    ("actor_rollout_ref.rollout.tensor_model_parallel_size=0", "actor_rollout_ref.rollout.tensor_model_parallel_size=0: "),
    ("actor_rollout_ref.rollout.agent.num_workers=0", "actor_rollout_ref.rollout.agent.num_workers=0: "),
    ("reward.num_workers=0", "reward.num_workers=0: "),
    ("++ray_kwargs.ray_init.num_cpus=0", "ray_kwargs.ray_init.num_cpus=0: "),
    ("trainer.test_freq=often", "trainer.test_freq='often': "),
    ("trainer.save_freq=2.5", "trainer.save_freq=2.5: "),
    ("actor_rollout_ref.rollout.temperature=-0.1", "actor_rollout_ref.rollout.temperature=-0.1: "),
    ("actor_rollout_ref.rollout.val_kwargs.temperature=3", "actor_rollout_ref.rollout.val_kwargs.temperature=3: "),
    ("actor_rollout_ref.rollout.top_p=0", "actor_rollout_ref.rollout.top_p=0: "),
    ("actor_rollout_ref.rollout.val_kwargs.top_p=1.5", "actor_rollout_ref.rollout.val_kwargs.top_p=1.5: "),
    ("actor_rollout_ref.rollout.top_k=-2", "actor_rollout_ref.rollout.top_k=-2: "),
    ("actor_rollout_ref.rollout.gpu_memory_utilization=0", "actor_rollout_ref.rollout.gpu_memory_utilization=0: "),
    ("actor_rollout_ref.rollout.max_num_seqs=0", "actor_rollout_ref.rollout.max_num_seqs=0: "),
    ("gpu_memory_gib=0", "gpu_memory_gib=0: "),
    ("actor_rollout_ref.actor.optim.lr=-1", "actor_rollout_ref.actor.optim.lr=-1: "),
    ("actor_rollout_ref.actor.optim.lr=0", "actor_rollout_ref.actor.optim.lr=0: "),
    ("actor_rollout_ref.actor.optim.lr='1e-5'", "actor_rollout_ref.actor.optim.lr='1e-5': "),  # a string, not a number
    ("actor_rollout_ref.actor.optim.weight_decay=-0.1", "actor_rollout_ref.actor.optim.weight_decay=-0.1: "),
    ("actor_rollout_ref.actor.optim.clip_grad=0", "actor_rollout_ref.actor.optim.clip_grad=0: "),
    ("critic.optim.lr=0", "critic.optim.lr=0: "),
    ("actor_rollout_ref.actor.kl_loss_coef=-0.001", "actor_rollout_ref.actor.kl_loss_coef=-0.001: "),
    ("algorithm.kl_ctrl.kl_coef=-1", "algorithm.kl_ctrl.kl_coef=-1: "),
    ("actor_rollout_ref.actor.entropy_coeff=-0.01", "actor_rollout_ref.actor.entropy_coeff=-0.01: "),
    ("actor_rollout_ref.actor.clip_ratio_low=0", "actor_rollout_ref.actor.clip_ratio_low=0: "),
    ("actor_rollout_ref.actor.clip_ratio_high=0", "actor_rollout_ref.actor.clip_ratio_high=0: "),
    ("actor_rollout_ref.actor.clip_ratio_c=1", "actor_rollout_ref.actor.clip_ratio_c=1: "),
    ("algorithm.gamma=1.5", "algorithm.gamma=1.5: "),
    ("++priming.sft.optim.lr=0", "priming.sft.optim.lr=0: "),
    ("++priming.sft.data.train_batch_size=0", "priming.sft.data.train_batch_size=0: "),
    ("++priming.sft.trainer.total_epochs=0", "priming.sft.trainer.total_epochs=0: "),
    ("++priming.sft.trainer.save_freq=0", "priming.sft.trainer.save_freq=0: "),
    ("++priming.sft.trainer.test_freq=0", "priming.sft.trainer.test_freq=0: "),
    ("algorithm.adv_estimator=grpo actor_rollout_ref.rollout.n=1",
     "algorithm.adv_estimator=grpo with actor_rollout_ref.rollout.n=1: "),
    ("algorithm.adv_estimator=rloo actor_rollout_ref.rollout.n=1",
     "algorithm.adv_estimator=rloo with actor_rollout_ref.rollout.n=1: "),
    ("algorithm.adv_estimator=grpo_passk actor_rollout_ref.rollout.n=1",
     "algorithm.adv_estimator=grpo_passk with actor_rollout_ref.rollout.n=1: "),
]


@pytest.mark.parametrize("override, start", BAD, ids=[override for override, _ in BAD])
def test_a_value_out_of_range_fails_naming_the_key_the_value_and_the_range(override, start, tmp_path):
    with pytest.raises(CheckError) as error:
        ranges.check_ranges(tiny(*override.split(), tmp_path=tmp_path))
    message = str(error.value)
    assert message.startswith(start), message
    assert "\n" not in message  # one line
    assert "; " in message  # then the fix


def test_the_messages_say_the_range_and_why(tmp_path):
    def message(override):
        with pytest.raises(CheckError) as error:
            ranges.check_ranges(tiny(override, tmp_path=tmp_path))
        return str(error.value)

    assert "must be an integer >= 1: 0 gives no response" in message("actor_rollout_ref.rollout.n=0")
    assert "must be in (0, 1]: 0 leaves the weights where they are and a negative one climbs" in message(
        "actor_rollout_ref.actor.optim.lr=-1")
    assert "an integer >= 1 or null (the epochs decide): 0 trains nothing" in message("trainer.total_training_steps=0")
    assert "set trainer.val_only=true" in message("trainer.total_training_steps=0")
    assert "an integer >= 1, -1 (never) or after_each_epoch (once an epoch), and 0 divides by zero" in message(
        "++priming.sft.trainer.save_freq=0")
    grpo = message("actor_rollout_ref.rollout.n=1")
    assert "the raw reward: REINFORCE without a baseline, not grpo" in grpo and "rollout.n to 2 or more" in grpo


@pytest.mark.parametrize("key", ["temperature", "val_kwargs.temperature"])
def test_temperatures_vllm_would_reject_fail_at_launch(key):
    config = compose(["+recipe=countdown_3b", f"actor_rollout_ref.rollout.{key}=2.5"])
    with pytest.raises(CheckError, match=rf"actor_rollout_ref\.rollout\.{key}=2.5: vLLM accepts temperatures in \[0, 2\]"):
        ranges.check_ranges(config)


def test_several_bad_values_are_listed_together(tmp_path):
    config = tiny("actor_rollout_ref.rollout.n=0", "actor_rollout_ref.actor.optim.lr=-1", tmp_path=tmp_path)
    with pytest.raises(CheckError) as error:
        ranges.check_ranges(config)
    lines = str(error.value).splitlines()
    assert lines[0] == "values no run can use:" and len(lines) == 3
    assert lines[1].startswith("  - actor_rollout_ref.rollout.n=0: ") and "optim.lr=-1: " in lines[2]


@pytest.mark.parametrize(
    "overrides",
    [
        ["trainer.test_freq=-1", "trainer.save_freq=0"],  # never: legal, and the plan says so
        ["trainer.total_training_steps=null", "trainer.max_actor_ckpt_to_keep=null"],
        ["actor_rollout_ref.rollout.temperature=0", "actor_rollout_ref.rollout.top_k=0", "actor_rollout_ref.rollout.top_p=1"],
        ["actor_rollout_ref.rollout.n=1", "algorithm.adv_estimator=reinforce_plus_plus"],  # one answer, no group needed
        ["actor_rollout_ref.rollout.n=1", "algorithm.adv_estimator=gae"],
        ["++priming.sft.trainer.test_freq=after_each_epoch", "++priming.sft.trainer.save_freq=-1"],
        ["actor_rollout_ref.actor.optim.lr=1"],
        ["actor_rollout_ref.rollout.name=sglang", "actor_rollout_ref.rollout.temperature=2.5"],  # vLLM's bound only for vLLM
    ],
)
def test_values_at_the_edges_pass(overrides, tmp_path):
    assert ranges.check_ranges(tiny(*overrides, tmp_path=tmp_path)) == "every value is within its range"


def test_the_task_and_traces_blocks_are_validated_before_any_work(tmp_path):
    with pytest.raises(CheckError, match=r"task \(countdown\): train_size must be at least 1"):
        ranges.check_ranges(tiny("task.train_size=0", tmp_path=tmp_path))
    with pytest.raises(CheckError, match="priming.traces: size must be at least 1"):
        ranges.check_ranges(tiny("priming.traces.size=0", tmp_path=tmp_path))


# --- Folders ---------------------------------------------------------------------------------


def test_a_folder_key_naming_a_file_or_a_path_under_one_fails(tmp_path):
    afile = tmp_path / "notes.txt"
    afile.write_text("mine\n")
    with pytest.raises(CheckError) as error:
        ranges.check_ranges(compose(["+recipe=countdown_tiny", f"data_root={afile}"]))
    # tiny_model.folder (${data_root}/models) is under it: one problem, said once
    assert str(error.value) == (f"data_root={afile}: {afile} is a file, not a folder; point data_root at a folder, "
                                "or a path where one can be created")
    with pytest.raises(CheckError, match=rf"trainer.default_local_dir={afile}/ckpt: no folder can be created there, "
                                         rf"{afile} is a file"):
        ranges.check_ranges(tiny(f"trainer.default_local_dir={afile}/ckpt", tmp_path=tmp_path))
    assert afile.read_text() == "mine\n"


def test_a_folder_that_can_be_created_passes_and_is_not_created(tmp_path):
    config = compose(["+recipe=countdown_tiny", f"data_root={tmp_path}/a/b/data", f"trainer.default_local_dir={tmp_path}/c"])
    ranges.check_ranges(config)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(CheckError, match="trainer.default_local_dir=null: it must name a folder"):
        ranges.check_ranges(tiny("trainer.default_local_dir=null", tmp_path=tmp_path))
    ranges.check_ranges(tiny("trainer.rollout_data_dir=null", tmp_path=tmp_path))  # null: no rollout dumps


# --- The plan's words for "never" ------------------------------------------------------------


def test_the_plan_says_what_never_means(tmp_path):
    every = tiny("trainer.test_freq=5", "trainer.save_freq=10", "trainer.max_actor_ckpt_to_keep=2", tmp_path=tmp_path)
    assert ranges.schedule(every) == "validation every 5, checkpoint every 10 (keep 2)"
    never = ranges.schedule(tiny("trainer.test_freq=-1", "trainer.save_freq=0", "trainer.max_actor_ckpt_to_keep=null",
                                 tmp_path=tmp_path))
    assert never == ("validation only before training (trainer.test_freq=-1), no checkpoint, not even the last step "
                     "(trainer.save_freq=0): nothing to resume or evaluate")
    assert ranges.schedule(tiny("trainer.val_before_train=false", "trainer.test_freq=0", tmp_path=tmp_path)).startswith(
        "no validation (trainer.test_freq=0)")
    assert "(keep all)" in ranges.schedule(tiny("trainer.max_actor_ckpt_to_keep=0", tmp_path=tmp_path))


# --- The launch, as a user runs it -----------------------------------------------------------

LAUNCH = [
    # The table (each passed the dry run before), a priming knob, and the output folder.
    ("actor_rollout_ref.rollout.n=0", "actor_rollout_ref.rollout.n=0"),
    ("actor_rollout_ref.rollout.n=1", "algorithm.adv_estimator=grpo with actor_rollout_ref.rollout.n=1"),
    ("actor_rollout_ref.actor.optim.lr=-1", "actor_rollout_ref.actor.optim.lr=-1"),
    ("data.max_response_length=0", "data.max_response_length=0"),
    ("trainer.total_training_steps=0", "trainer.total_training_steps=0"),
    ("++priming.sft.optim.lr=0", "priming.sft.optim.lr=0"),
    ("trainer.default_local_dir={tmp}/data/file/ckpt", "trainer.default_local_dir={tmp}/data/file/ckpt"),
]


def launch(*overrides, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RAY_ADDRESS"))}
    env["HOME"] = str(tmp_path / "home")
    command = [sys.executable, "-m", "tinyzero.train", "+recipe=countdown_tiny", "dry_run=true", *overrides,
               f"hydra.run.dir={tmp_path}/hydra"]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)


def assert_refused(result, named: str):
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("[tinyzero] cannot start: ")]
    assert len(lines) == 1 and lines[0].startswith(f"[tinyzero] cannot start: {named}: "), result.stderr[-3000:]
    assert "every check passed" not in result.stdout


@pytest.mark.parametrize("override, named", LAUNCH, ids=[override for override, _ in LAUNCH])
def test_the_launch_refuses_and_leaves_the_data_root_untouched(override, named, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "file").write_text("x")
    result = launch(f"data_root={data}", override.format(tmp=tmp_path), tmp_path=tmp_path)
    assert_refused(result, named.format(tmp=tmp_path))
    assert [p.name for p in data.iterdir()] == ["file"]  # no model, no task data, no traces
    assert not (tmp_path / "checkpoints").exists()


def test_a_data_root_that_is_a_file_is_one_line_not_a_traceback(tmp_path):
    afile = tmp_path / "data"
    afile.write_text("not a folder\n")
    result = launch(f"data_root={afile}", tmp_path=tmp_path)
    assert_refused(result, f"data_root={afile}")
    assert afile.read_text() == "not a folder\n"
