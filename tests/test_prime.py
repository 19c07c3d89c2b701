"""Priming with verl's own SFT trainer: the checks, the key, and a real run on the tiny model."""

from __future__ import annotations

import dataclasses
import json

import pytest
from omegaconf import OmegaConf

from data_gen import CountdownConfig
from tinyzero.recipe import CheckError
from tinyzero.train import prime


def make_config(tmp_path, model_path, **priming) -> OmegaConf:
    task = dataclasses.asdict(CountdownConfig(train_size=100, test_size=20, seed=3, min_count=3, max_count=3))
    block = {
        "traces": {"size": 16},
        "sft": {"data": {"train_batch_size": 8, "micro_batch_size_per_gpu": 4, "max_length": 1024},
                "trainer": {"total_epochs": 1, "total_training_steps": 2}, "optim": {"lr": 1e-3}},
    }
    return OmegaConf.create({
        "task": {"name": "countdown", **task},
        "data_root": str(tmp_path / "data"),
        "actor_rollout_ref": {"model": {"path": str(model_path), "override_config": {"attn_implementation": "sdpa"}},
                              "actor": {"strategy": "fsdp2"}},
        "trainer": {"n_gpus_per_node": 1},
        "priming": OmegaConf.merge(block, priming),
    })


def test_key_follows_every_knob(tmp_path):
    config = make_config(tmp_path, "base-model")
    folder = prime.primed_dir(config, prime.traces_config(config))
    assert folder.parent == (tmp_path / "data" / "primed").resolve() and folder.name.startswith("countdown-")
    assert prime.primed_dir(config, prime.traces_config(config)) == folder
    for change in ({"priming": {"traces": {"search_fraction": 0.9}}}, {"priming": {"sft": {"optim": {"lr": 1e-5}}}},
                   {"actor_rollout_ref": {"model": {"path": "other-model"}}}, {"task": {"max_number": 50}},
                   {"task": {"prompt_style": "instruct"}}):
        changed = OmegaConf.merge(config, change)
        assert prime.primed_dir(changed, prime.traces_config(changed)) != folder, change


@pytest.mark.parametrize(("priming", "message"), [
    ({"traces": {"size": 0}}, "priming.traces: size must be at least 1"),
    ({"traces": {"sizes": 10}}, "priming.traces.sizes is not a traces knob"),
    ({"sft": {"data": {"train_batch_size": 32}}}, "train_batch_size=32 is above priming.traces.size=16"),
    ({"sft": {"model": {"path": "elsewhere"}}}, "priming.sft.model.path is set by the launch"),
    ({"sft": {"engine": {"strategy": "fsdp"}}}, "priming.sft.engine.strategy is set by the launch"),
])
def test_bad_priming_is_named_before_any_work(tmp_path, priming, message):
    config = make_config(tmp_path, "base-model", **priming)
    with pytest.raises(CheckError, match=message.replace(".", r"\.")):
        prime.prime(config, dry_run=True)
    assert not (tmp_path / "data").exists()


def test_dry_run_plans_without_writing(tmp_path):
    config = make_config(tmp_path, "base-model")
    model, lines = prime.prime(config, dry_run=True)
    assert model.name == prime.MODEL_FOLDER and "would prime base-model" in lines[0] and "2 steps per epoch" in lines[0]
    assert not (tmp_path / "data").exists()


def test_primes_the_tiny_model_with_verls_sft_trainer_then_reuses_it(tmp_path, tiny_model_dir):
    """A real run: traces, torchrun, verl's run_sft on this machine's platform, the HF model out."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = make_config(tmp_path, tiny_model_dir)
    model, lines = prime.prime(config)
    assert "primed" in lines[0] and "longest prompt + trace" in lines[0]
    assert (model / "model.safetensors").is_file() and not (model.parent / "checkpoints").exists()
    record = json.loads((model.parent / prime.RECORD_FILE).read_text())
    assert record["traces"]["size"] == 16 and record["model"] == str(tiny_model_dir)
    primed = AutoModelForCausalLM.from_pretrained(model)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    moved = sum((p.float() - q.float()).abs().sum().item() for p, q in zip(primed.parameters(), base.parameters()))
    assert moved > 0  # two optimizer steps changed the weights
    tokenizer = AutoTokenizer.from_pretrained(model)
    assert "eos_token" in tokenizer.chat_template  # the template it was trained with travels along
    with torch.no_grad():
        primed(torch.tensor([[1, 2, 3]]))
    again, lines = prime.prime(config)
    assert again == model and lines == [f"priming: reusing {model}"]
