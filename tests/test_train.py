"""`python -m tinyzero.train`: the dry run end to end, errors from the command line, and the pieces
verl itself consumes (dataset, chat template, reward) checked through verl's own code paths."""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from tinyzero.recipe import compose, task_data_dir
from tinyzero.train.app import apply_prompt_style, prepare_data

# The tests' tokenizer, trained on a few sentences only, makes a Countdown prompt 269 tokens long:
# the prompt-length check would (rightly) refuse the recipes' 256.
SMALL = ["task.train_size=32", "task.test_size=8", "data.train_batch_size=8", "actor_rollout_ref.actor.ppo_mini_batch_size=4",
         "data.max_prompt_length=320"]


def run_train(*overrides, tmp_path, flags=(), env_extra=None):
    """Run the module as a user would, with no wandb credentials and no GPU."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RAY_ADDRESS"))}
    env["HOME"] = str(tmp_path / "home")  # no ~/.netrc: no wandb login
    env.update(env_extra or {})
    command = [sys.executable, "-m", "tinyzero.train", *overrides, f"hydra.run.dir={tmp_path}/hydra", *flags]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)


# --- The command line ------------------------------------------------------------------------


def test_dry_run_end_to_end_with_a_tiny_local_model(tmp_path, tiny_model_dir):
    overrides = ["+recipe=countdown_3b", "dry_run=true", f"actor_rollout_ref.model.path={tiny_model_dir}",
                 f"data_root={tmp_path}/data", f"trainer.default_local_dir={tmp_path}/ckpt", *SMALL]
    result = run_train(*overrides, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "[tinyzero] dry run: every check passed; nothing launched." in out
    # No GPU here: reported, not fatal.
    assert "check: GPUs    WOULD FAIL without dry_run: found 0 GPU(s)" in out
    assert "per step   8 prompts x 4 answers = 32 responses, at most 43,008 tokens" in out
    assert "check: data    longest prompt 269 tokens <= data.max_prompt_length=320" in out
    assert "steps      4" in out  # 32 rows / 8 per step, one epoch
    assert "memory     training" in out and "check: memory  fits" in out
    assert "an H200 assumed; set gpu_memory_gib=N" in out  # no GPU here: the figure used is said to be a guess
    assert f"wandb sync {tmp_path}/ckpt/wandb/offline-run-*" in out  # offline, with the way to upload
    generated = [p for p in (tmp_path / "data").iterdir() if p.name.startswith("countdown-")]
    assert len(generated) == 1 and {"train.parquet", "test.parquet"} <= {p.name for p in generated[0].iterdir()}
    # The resolved config is printed with the generated files and the pass-through template in place.
    assert f"train_files: {generated[0]}/train.parquet" in out
    assert "custom_chat_template: '{%- for message in messages -%}{{ message[''content'']" in out
    assert "WANDB_MODE: offline" in out

    # The same task config again (here in-process) reuses the files instead of regenerating them.
    again = compose(["+recipe=countdown_3b", f"data_root={tmp_path}/data", *SMALL])
    assert f"task data: reusing {generated[0]}" in prepare_data(again)


def test_too_few_gpus_fails_fast_naming_found_needed_and_the_keys(tmp_path):
    result = run_train("+recipe=countdown_3b", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "found 0 GPU(s) (local CUDA) but the config needs 2 = trainer.n_gpus_per_node (2) x trainer.nnodes (1)" in result.stderr
    assert not (tmp_path / "data").exists()  # failed before generating anything


def test_cfg_job_prints_the_composed_config(tmp_path):
    result = run_train("+recipe=countdown_3b", tmp_path=tmp_path, flags=["--cfg", "job"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "adv_estimator: grpo" in result.stdout and "path: Qwen/Qwen2.5-3B" in result.stdout


def test_help_shows_how_to_run_a_recipe_not_the_whole_config(tmp_path):
    result = run_train(tmp_path=tmp_path, flags=["--help"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "python -m tinyzero.train +recipe=NAME" in result.stdout
    listed = next(line for line in result.stdout.splitlines() if line.strip().startswith("recipe: "))
    assert {"countdown_0_5b", "countdown_1_5b", "countdown_1_5b_primed", "countdown_3b"} <= set(listed.split(": ")[1].split(", "))
    assert "algorithm.adv_estimator=gae" in result.stdout
    assert "ppo_mini_batch_size" not in result.stdout  # the full config is `--cfg job`'s job


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.n_gpu_per_node=2", "unknown config key(s): trainer.n_gpu_per_node (did you mean trainer.n_gpus_per_node?)"),
        ("task.max_cont=5", "unknown config key(s): task.max_cont (did you mean task.max_count?)"),
        ("actor_rollout_ref.model.path=/no/such/model", "actor_rollout_ref.model.path='/no/such/model': no such folder"),
        ("task.prompt_style=chat", "task (countdown): prompt_style must be one of base, instruct, compact, got 'chat'"),
        ("data.train_batch_size=255", "actor_rollout_ref.actor.ppo_mini_batch_size (128) must divide data.train_batch_size (255)"),
    ],
)
def test_bad_input_from_the_command_line_gets_its_message(tmp_path, override, message):
    result = run_train("+recipe=countdown_3b", "dry_run=true", override, tmp_path=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


# --- Data ------------------------------------------------------------------------------------


def test_a_changed_generator_knob_gets_its_own_data_folder(tmp_path):
    base = compose(["+recipe=countdown_3b", f"data_root={tmp_path}"])
    same = compose(["+recipe=countdown_3b", f"data_root={tmp_path}"])
    other = compose(["+recipe=countdown_3b", f"data_root={tmp_path}", "task.max_target=200"])
    assert task_data_dir(base)[0] == task_data_dir(same)[0]
    assert task_data_dir(base)[0] != task_data_dir(other)[0]
    assert task_data_dir(base)[0].parent == tmp_path


def test_bad_generator_knobs_are_named_before_any_data_is_written(tmp_path):
    from tinyzero.train.checks import CheckError

    with pytest.raises(CheckError, match=r"task: .*bogus.*takes: name, train_size"):
        task_data_dir(compose(["+recipe=countdown_3b", f"data_root={tmp_path}", "+task.bogus=1"]))
    with pytest.raises(CheckError, match=r"task \(countdown\): .*max_count"):
        prepare_data(compose(["+recipe=countdown_3b", f"data_root={tmp_path}", "task.max_count=1"]))
    assert not any(tmp_path.iterdir())


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, tiny_model_dir):
    """The flagship config on the tiny model, with small generated data, as train hands it to verl."""
    folder = tmp_path_factory.mktemp("prepared")
    config = compose(["+recipe=countdown_3b", f"actor_rollout_ref.model.path={tiny_model_dir}", f"data_root={folder}", *SMALL])
    apply_prompt_style(config)
    prepare_data(config)
    return config


def verl_model_config(config):
    """verl's HFModelConfig, built from our config the way verl's workers build it."""
    from verl.utils.config import omega_conf_to_dataclass

    return omega_conf_to_dataclass(config.actor_rollout_ref.model)


def test_verls_rlhf_dataset_reads_our_parquet(prepared):
    from verl.utils.dataset.rl_dataset import RLHFDataset

    tokenizer = verl_model_config(prepared).tokenizer
    dataset = RLHFDataset(data_files=prepared.data.train_files, tokenizer=tokenizer, config=prepared.data)
    assert len(dataset) == 32
    item = dataset[0]
    assert item["data_source"] == "countdown"
    assert item["raw_prompt"][0]["role"] == "user" and item["raw_prompt"][0]["content"].rstrip().endswith("<think>")
    ground_truth = item["reward_model"]["ground_truth"]
    assert int(ground_truth["target"]) > 0 and len(ground_truth["numbers"]) >= 3


def verl_prompt_ids(config, messages):
    """The prompt token ids verl's single-turn agent loop sends to vLLM (its Continuous Token path)."""
    from verl.utils.tokenizer.continuous_token_wiring import create_continuous_token_builder

    model_config = verl_model_config(config)  # applies custom_chat_template to the tokenizer, as verl does
    builder = create_continuous_token_builder(model_config.tokenizer, hf_model_type=model_config.hf_config.model_type)
    return model_config.tokenizer, builder.build_initial_tokens(messages)


def test_base_prompts_reach_the_model_as_exactly_their_text(prepared):
    from verl.utils.dataset.rl_dataset import RLHFDataset

    tokenizer, _ = verl_prompt_ids(prepared, [{"role": "user", "content": "x"}])
    messages = RLHFDataset(data_files=prepared.data.train_files, tokenizer=tokenizer, config=prepared.data)[0]["raw_prompt"]
    _, ids = verl_prompt_ids(prepared, messages)
    text = messages[0]["content"]
    assert ids == tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text  # no <|im_start|>, no role names: the base model sees the text


def test_instruct_prompts_get_the_models_own_chat_template(tmp_path, tiny_model_dir):
    config = compose(["+recipe=countdown_3b_instruct", f"actor_rollout_ref.model.path={tiny_model_dir}"])
    apply_prompt_style(config)
    assert config.actor_rollout_ref.model.custom_chat_template is None
    messages = [{"role": "system", "content": "Think first."}, {"role": "user", "content": "Make 24 from 4 6 1 1."}]
    tokenizer, ids = verl_prompt_ids(config, messages)
    expected = "<|im_start|>system\nThink first.<|im_end|>\n<|im_start|>user\nMake 24 from 4 6 1 1.<|im_end|>\n<|im_start|>assistant\n"
    assert ids == tokenizer(expected, add_special_tokens=False)["input_ids"]


# --- Reward ----------------------------------------------------------------------------------


def test_verl_loads_our_reward_and_its_reward_manager_scores_rollouts(prepared):
    """verl's own reward loading (reward.custom_reward_function) and its naive reward manager."""
    from verl import DataProto
    from verl.trainer.ppo.reward import load_reward_manager
    from verl.utils.dataset.rl_dataset import RLHFDataset

    tokenizer = verl_model_config(prepared).tokenizer
    item = RLHFDataset(data_files=prepared.data.train_files, tokenizer=tokenizer, config=prepared.data)[0]
    solution = item["extra_info"]["solution"]
    manager = load_reward_manager(prepared, tokenizer)

    def score(response: str) -> dict:
        response_ids = torch.tensor(tokenizer(response, add_special_tokens=False)["input_ids"])
        prompt_ids = torch.tensor(tokenizer("Q", add_special_tokens=False)["input_ids"])
        data = DataProto.from_dict(
            tensors={"responses": response_ids[None], "prompts": prompt_ids[None],
                     "attention_mask": torch.ones(1, len(prompt_ids) + len(response_ids), dtype=torch.long)},
            non_tensors={key: np.array([item[key]], dtype=object) for key in ("data_source", "reward_model", "extra_info")},
        )
        return manager.loop.run_until_complete(manager.run_single(data))

    right = score(f" I add them up. </think> <answer>{solution}</answer>")
    wrong = score(" Guessing. </think> <answer>1 + 1</answer>")
    assert right["reward_score"] == 1.0 and right["reward_extra_info"]["acc"] == 1.0
    assert wrong["reward_score"] == pytest.approx(0.1) and wrong["reward_extra_info"]["acc"] == 0.0
    assert set(right["reward_extra_info"]) == set(wrong["reward_extra_info"]) >= {"score", "acc", "has_answer"}


def test_dry_run_attaches_to_a_running_ray_cluster_and_counts_its_gpus(tmp_path, tiny_model_dir):
    """Multi-node in miniature: this test process runs the 'cluster' (2 logical GPUs), the
    command attaches to it by address as it would to a head node started with `ray start --head`."""
    import ray

    from tinyzero.train import checks

    ray.init(num_gpus=2, num_cpus=1, include_dashboard=False, logging_level="ERROR")
    try:
        inventory = checks.count_gpus()  # in this process: Ray is already initialised here
        assert inventory.count == 2
        with pytest.raises(checks.CheckError, match=r"found 2 GPU\(s\).*needs 4 = trainer.n_gpus_per_node \(2\) x trainer.nnodes \(2\)"):
            checks.check_gpus(compose(["+recipe=countdown_3b", "trainer.nnodes=2"]), inventory)
        address = ray.get_runtime_context().gcs_address
        result = run_train("+recipe=countdown_3b", "dry_run=true", f"ray_address={address}",
                           f"actor_rollout_ref.model.path={tiny_model_dir}", f"data_root={tmp_path}/data",
                           f"trainer.default_local_dir={tmp_path}/ckpt", *SMALL, tmp_path=tmp_path,
                           # Ray's token authentication: the cluster's token, as every node of a real one has.
                           env_extra={"RAY_AUTH_TOKEN_PATH": os.path.expanduser("~/.ray/auth_token")})
    finally:
        ray.shutdown()
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"check: GPUs    2 GPU(s) found (Ray cluster at {address}), 2 needed" in result.stdout
    assert f"address: {address}" in result.stdout  # verl's run_ppo connects to the same cluster


# --- Logging ---------------------------------------------------------------------------------


@pytest.fixture
def clean_environment(monkeypatch, tmp_path):
    """A private copy of the environment, with no wandb settings and a home without ~/.netrc."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "TENSORBOARD_"))}
    environment["HOME"] = str(tmp_path)
    monkeypatch.setattr(os, "environ", environment)
    return environment


def test_wandb_with_credentials_stays_online(clean_environment, tmp_path):
    from tinyzero.train.app import configure_logging

    clean_environment["WANDB_API_KEY"] = "x" * 40
    config = compose(["+recipe=countdown_3b", f"trainer.default_local_dir={tmp_path}/ckpt"])
    assert configure_logging(config) == []
    assert "WANDB_MODE" not in clean_environment
    (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password " + "y" * 40 + "\n")
    (tmp_path / ".netrc").chmod(0o600)  # as `wandb login` writes it; netrc refuses looser files
    del clean_environment["WANDB_API_KEY"]
    assert configure_logging(config) == []  # `wandb login` credentials count too


def test_tensorboard_is_one_override(clean_environment, tmp_path):
    from tinyzero.train.app import configure_logging

    config = compose(["+recipe=countdown_3b", "trainer.logger=[console,tensorboard]", f"trainer.default_local_dir={tmp_path}/ckpt"])
    notes = configure_logging(config)
    assert notes == [f"tensorboard: tensorboard --logdir {tmp_path}/ckpt/tensorboard"]
    assert config.ray_kwargs.ray_init.runtime_env.env_vars.TENSORBOARD_DIR == f"{tmp_path}/ckpt/tensorboard"
    assert "WANDB_MODE" not in clean_environment
