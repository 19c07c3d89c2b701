"""verl 0.9.1 loads tinyzero.rewards.compute_score through its own reward loading and its reward
manager calls it on a decoded response. (Full Hydra composition is tested with the train app.)"""

from pathlib import Path

import pytest

np = pytest.importorskip("numpy")
torch = pytest.importorskip("torch")
pytest.importorskip("verl")

import tinyzero.rewards  # noqa: E402

GROUND_TRUTH = {"target": 65, "numbers": np.array([19, 36, 55, 7])}  # as read back from parquet


@pytest.fixture(scope="module")
def tokenizer():
    from tinyzero.testing import build_tiny_tokenizer

    return build_tiny_tokenizer()


def _one_sample(tokenizer, response: str):
    """A one-row DataProto shaped like what verl's agent loop hands its reward manager."""
    from verl import DataProto

    ids = tokenizer(response, return_tensors="pt").input_ids[0]
    pad = 5  # right padding, which the reward manager must cut off before decoding
    responses = torch.cat([ids, torch.full((pad,), tokenizer.pad_token_id)]).unsqueeze(0)
    prompts = torch.full((1, 3), tokenizer.pad_token_id)
    attention_mask = torch.cat([torch.ones(3 + len(ids), dtype=torch.long), torch.zeros(pad, dtype=torch.long)])
    return DataProto.from_dict(
        tensors={"prompts": prompts, "responses": responses, "attention_mask": attention_mask.unsqueeze(0)},
        non_tensors={
            "data_source": np.array(["countdown"], dtype=object),
            "reward_model": np.array([{"style": "rule", "ground_truth": GROUND_TRUTH}], dtype=object),
            "extra_info": np.array([{"split": "train", "index": 0}], dtype=object),
        },
    )


@pytest.mark.parametrize("path", ["pkg://tinyzero.rewards", str(Path(tinyzero.rewards.__file__))])
def test_verl_reward_manager_loads_and_calls_compute_score(tokenizer, path):
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import load_reward_manager

    config = OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {
                    "path": path,
                    "name": "compute_score",
                    "reward_kwargs": {"format_score": 0.2},  # our score levels are reward_kwargs
                },
                "reward_manager": {"source": "register", "name": "naive"},
            }
        }
    )
    manager = load_reward_manager(config, tokenizer)
    cases = [
        ("<think>55 + 36 = 91</think> <answer>55 + 36 - 19 - 7</answer>", 1.0, 1.0, 1.0),
        ("<think>hm</think> <answer>55 + 36</answer>", 0.2, 0.0, 1.0),
        ("<think>I give up", 0.0, 0.0, 0.0),
    ]
    for response, score, acc, has_answer in cases:
        out = manager.loop.run_until_complete(manager.run_single(_one_sample(tokenizer, response)))
        assert out["reward_score"] == score
        assert out["reward_extra_info"] == {"score": score, "acc": acc, "has_answer": has_answer}


def test_readme_overrides_compose_with_verls_config_and_load():
    """The README's command-line keys, composed with verl's own ppo_trainer config."""
    from hydra import compose, initialize_config_module
    from verl.trainer.ppo.reward import get_custom_reward_fn

    with initialize_config_module(config_module="verl.trainer.config", version_base=None):
        config = compose(
            config_name="ppo_trainer",
            overrides=[
                "reward.custom_reward_function.path=pkg://tinyzero.rewards",
                "reward.custom_reward_function.name=compute_score",
                "+reward.custom_reward_function.reward_kwargs.format_score=0.2",
            ],
        )
    score = get_custom_reward_fn(config)
    truth = {"target": 65, "numbers": [19, 36, 55, 7]}
    assert score(data_source="countdown", solution_str="<answer>55 + 36</answer>", ground_truth=truth) == {
        "score": 0.2, "acc": 0.0, "has_answer": 1.0,
    }


def _naive_manager(tokenizer, reward_kwargs: dict, **manager_kwargs):
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import load_reward_manager

    config = OmegaConf.create(
        {
            "reward": {
                "custom_reward_function": {
                    "path": "pkg://tinyzero.rewards", "name": "compute_score", "reward_kwargs": reward_kwargs,
                },
                "reward_manager": {"source": "register", "name": "naive"},
            }
        }
    )
    return load_reward_manager(config, tokenizer, **manager_kwargs)


def test_the_keywords_verl_adds_with_a_reward_model_are_accepted(tokenizer):
    """With a reward model router, verl's managers also pass reward_router_address and
    reward_model_tokenizer (experimental/reward_loop/reward_manager/naive.py 58-65)."""
    manager = _naive_manager(tokenizer, {}, reward_router_address="127.0.0.1:1", reward_model_tokenizer=tokenizer)
    sample = _one_sample(tokenizer, "<think>hm</think> <answer>55 + 36 - 19 - 7</answer>")
    assert manager.loop.run_until_complete(manager.run_single(sample))["reward_score"] == 1.0


def test_a_misspelt_reward_kwarg_fails_naming_it(tokenizer):
    manager = _naive_manager(tokenizer, {"formt_score": 0.5})
    sample = _one_sample(tokenizer, "<answer>55 + 36</answer>")
    with pytest.raises(TypeError, match="'formt_score' \\(did you mean 'format_score'\\?\\)"):
        manager.loop.run_until_complete(manager.run_single(sample))
