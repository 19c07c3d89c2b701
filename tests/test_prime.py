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


# --- The stage in the train app --------------------------------------------------------------

PRIMING = "priming={traces:{size:16},sft:{data:{train_batch_size:8,micro_batch_size_per_gpu:4,max_length:1024}}}"
SMALL = ["task.train_size=32", "task.test_size=8", "data.train_batch_size=8", "actor_rollout_ref.actor.ppo_mini_batch_size=4",
         "data.max_prompt_length=512"]  # the tiny tokenizer makes prompts long in tokens


def test_train_dry_run_plans_priming_and_starts_rl_from_the_primed_model(tmp_path, tiny_model_dir):
    import os
    import subprocess
    import sys

    command = [sys.executable, "-m", "tinyzero.train", "+recipe=countdown_3b", "dry_run=true", PRIMING, *SMALL,
               f"actor_rollout_ref.model.path={tiny_model_dir}", "algorithm.adv_estimator=gae",
               f"data_root={tmp_path}/data", f"trainer.default_local_dir={tmp_path}/ckpt", f"hydra.run.dir={tmp_path}/hydra"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RAY_ADDRESS"))}
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert f"priming: would prime {tiny_model_dir} into {tmp_path}/data/primed/countdown-" in out
    assert "(2 steps per epoch x 1 epochs, batch 8)" in out and "check: priming runs on this machine (cpu)" in out
    model_line = next(line for line in out.splitlines() if line.startswith("[tinyzero] model "))
    model = model_line.split()[-1]
    assert model.startswith(f"{tmp_path}/data/primed/countdown-") and model.endswith("/model")
    assert out.count(f"path: {model}\n") >= 2  # the actor (and so the reference) and the critic start primed
    assert not (tmp_path / "data" / "primed").exists()  # a dry run primes nothing


def test_train_reuses_a_primed_model_and_a_changed_knob_primes_anew(tmp_path, tiny_model_dir):
    from tinyzero.recipe import compose
    from tinyzero.train.app import prepare_priming
    from tinyzero.train.checks import GpuInventory

    def prepared(*overrides):
        config = compose(["+recipe=countdown_3b", PRIMING, f"actor_rollout_ref.model.path={tiny_model_dir}",
                          f"data_root={tmp_path}/data", *overrides])
        return config, prepare_priming(config, True, GpuInventory(0, None, "local CUDA"))

    config, lines = prepared()
    model = config.actor_rollout_ref.model.path
    assert lines[0].startswith("priming: would prime") and model.endswith("/model")
    changed, _ = prepared("+priming.sft.optim.lr=1e-5")
    assert changed.actor_rollout_ref.model.path != model  # a changed knob never reuses a stale model
    (tmp_path / "data" / "primed" / model.split("/")[-2]).mkdir(parents=True)
    (tmp_path / "data" / "primed" / model.split("/")[-2] / prime.RECORD_FILE).write_text("{}")
    again, lines = prepared()
    assert lines == [f"priming: reusing {model}"] and again.actor_rollout_ref.model.path == model
    unprimed, lines = prepared("priming=null")
    assert lines == [] and unprimed.actor_rollout_ref.model.path == str(tiny_model_dir)


def test_a_ray_head_without_gpus_does_not_prime_on_its_cpu(tmp_path, monkeypatch):
    import verl.utils.device

    from tinyzero.train.app import check_priming_machine, prepare_priming
    from tinyzero.train.checks import GpuInventory

    monkeypatch.setattr(verl.utils.device, "get_device_name", lambda: "cpu")
    cluster = GpuInventory(4, 80.0, "Ray cluster at 10.0.0.1:6379")
    with pytest.raises(CheckError, match=r"this one has no GPU \(the 4 GPU\(s\) are in the Ray cluster at 10\.0\.0\.1:6379\)"):
        check_priming_machine(cluster)
    assert check_priming_machine(GpuInventory(0, None, "local CUDA")) == "runs on this machine (cpu)"
    config = OmegaConf.merge(make_config(tmp_path, "base-model"), {"critic": {"model": {"path": "base-model"}}})
    lines = prepare_priming(config, True, cluster)
    assert lines[1].startswith("check: priming WOULD FAIL without dry_run: priming runs on the machine that launches")
