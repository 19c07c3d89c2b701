"""Every recipe composes on verl 0.9.1's ppo_trainer and passes verl's own validate_config."""

import pytest
from omegaconf import OmegaConf

from tinyzero.recipe import compose, recipe_files
from tinyzero.train import checks, memory

RECIPES = sorted(recipe_files())


def test_the_documented_recipes_exist():
    assert {"countdown_0_5b", "countdown_1_5b", "countdown_3b", "countdown_7b", "multiply_3b",
            "countdown_3b_instruct"} <= set(RECIPES)


@pytest.mark.parametrize("recipe", RECIPES)
def test_recipe_composes_and_passes_verl_validation(recipe, tmp_path):
    config = compose([f"+recipe={recipe}", f"data_root={tmp_path}"])
    if config.tiny_model is not None:  # a model built at launch (countdown_tiny): built here the same way
        from tinyzero.train.app import prepare_tiny_model

        prepare_tiny_model(config)
    assert config.trainer.experiment_name == recipe  # one checkpoint folder per recipe
    checks.check_unknown_keys(config, checks.reference_config())
    checks.check_names(config)
    summary = checks.check_batch_arithmetic(config)  # ours, then verl's validate_config
    assert "responses per step" in summary
    shape = memory.check_model(config.actor_rollout_ref.model.path)
    assert shape is not None, "every recipe's model is in the built-in Qwen2.5 table or built locally"
    # Sized for H200s and H100 80 GB alike.
    for gpu_gib in (139.0, 79.0):
        memory.check_memory(memory.estimate_memory(config, shape, gpu_gib))


def test_flagship_values():
    config = compose(["+recipe=countdown_3b"])
    arr = config.actor_rollout_ref
    assert arr.model.path == "Qwen/Qwen2.5-3B"
    assert config.algorithm.adv_estimator == "grpo"
    assert arr.rollout.name == "vllm"
    assert arr.rollout.n > 1  # a GRPO group needs several answers per prompt
    assert config.reward.custom_reward_function.path == "pkg://tinyzero.rewards"
    assert config.reward.custom_reward_function.name == "compute_score"
    assert (config.trainer.n_gpus_per_node, config.trainer.nnodes) == (2, 1)
    assert (config.data.max_prompt_length, config.data.max_response_length) == (256, 1024)
    assert config.data.train_batch_size == 256
    assert arr.actor.optim.lr == pytest.approx(1e-6)
    assert arr.actor.use_kl_loss and arr.actor.kl_loss_coef == pytest.approx(0.001)
    assert config.task.name == "countdown" and config.task.prompt_style == "base"
    assert config.trainer.rollout_data_dir and config.trainer.test_freq > 0 and config.trainer.save_freq > 0
    assert config.trainer.resume_mode == "auto" and config.trainer.max_actor_ckpt_to_keep >= 2


def test_recipe_values_override_project_defaults_and_command_line_overrides_the_recipe():
    config = compose(["+recipe=countdown_0_5b", "trainer.test_freq=7"])
    assert config.trainer.n_gpus_per_node == 1  # recipe over tinyzero/train/conf/train.yaml's 2
    assert config.trainer.test_freq == 7  # command line over both


def test_ppo_with_a_critic_is_one_key(tiny_model_dir):
    """algorithm.adv_estimator=gae turns verl's critic on; the project defaults make it valid.

    verl's validate_config loads the critic's tokenizer, so a local model stands in for the hub name.
    """
    from verl.trainer.ppo.utils import need_critic

    config = compose(["+recipe=countdown_3b", "algorithm.adv_estimator=gae",
                      f"actor_rollout_ref.model.path={tiny_model_dir}"])
    assert need_critic(config)
    assert config.critic.model.path == str(tiny_model_dir)
    checks.check_batch_arithmetic(config)
    shape = memory.check_model(config.actor_rollout_ref.model.path)
    with_critic = memory.estimate_memory(config, shape, 80.0)
    without = memory.estimate_memory(compose(["+recipe=countdown_3b", f"actor_rollout_ref.model.path={tiny_model_dir}"]), shape, 80.0)
    assert with_critic.training_state_gib > without.training_state_gib


PRIMED = [name for name, path in sorted(recipe_files().items()) if OmegaConf.load(path).get("priming") is not None]


def test_a_gpu_recipe_primes_a_small_base_model():
    assert "countdown_1_5b_primed" in PRIMED
    config = compose(["+recipe=countdown_1_5b_primed"])
    assert config.actor_rollout_ref.model.path == "Qwen/Qwen2.5-1.5B"
    assert config.priming.traces.size == 1000 and 0 < config.priming.traces.search_fraction < 1


@pytest.mark.parametrize("recipe", PRIMED)
def test_primed_recipe_passes_the_priming_checks_and_verls_sft_config(recipe, tmp_path):
    """The checks a launch runs before priming (traces config, batch against the trace count, the
    keys the launch owns), the dry-run plan, and the SFT config the worker would hand to verl:
    every priming.sft key known to verl's sft_trainer_engine and its dataclasses built."""
    from verl.utils.config import omega_conf_to_dataclass

    from tinyzero.train import prime

    config = compose([f"+recipe={recipe}", f"data_root={tmp_path}/data"])
    model, lines = prime.prime(config, dry_run=True)
    assert lines[0].startswith(f"priming: would prime {config.actor_rollout_ref.model.path} into {model}")
    assert not (tmp_path / "data").exists()
    from data_gen.traces import TRACES_FILE

    layer = prime.launch_layer(config, model.parent, model.parent / "traces" / TRACES_FILE)
    sft = prime.verl_sft_config(layer, "cuda")
    assert sft.model.path == str(config.actor_rollout_ref.model.path) and sft.engine.strategy == config.actor_rollout_ref.actor.strategy
    assert "hf_model" in sft.checkpoint.save_contents
    for section in ("optim", "engine", "checkpoint"):
        omega_conf_to_dataclass(sft[section])  # verl's own validation of each section (lr scheduler, ...)
    assert int(sft.data.train_batch_size) <= config.priming.traces.size
