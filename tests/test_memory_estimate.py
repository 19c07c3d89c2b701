"""The memory estimate's phases (tinyzero.train.memory): each verl key it reads moves the phase
it should, and the estimate imports without a config library (benchmarks/gpu_check.py needs that)."""

import subprocess
import sys

import pytest

from tinyzero.recipe import CheckError, compose
from tinyzero.train import memory

SHAPE = memory.QWEN25_SHAPES["qwen2.5-3b"]


def flagship(*overrides, gpu_gib=139.0):
    return memory.estimate_memory(compose(["+recipe=countdown_3b", *overrides]), SHAPE, gpu_gib)


def test_the_reference_waits_on_the_cpu_and_comes_to_the_gpu_one_unit_at_a_time():
    """verl offloads the forward-only reference to the CPU under FSDP1 (the recipes') and FSDP2
    alike (verl/workers/engine/fsdp/transformer_impl.py 432-433, 459-463)."""
    bf16, fp32 = flagship(), flagship("actor_rollout_ref.ref.fsdp_config.model_dtype=fp32")
    actor_only = SHAPE.n_params * (4 + 8) / 2 / memory.GIB  # fp32 weights and Adam moments over 2 GPUs
    assert bf16.state_gib == pytest.approx(actor_only) == bf16.resident_during_rollout_gib
    assert fp32.state_gib == bf16.state_gib  # its dtype moves only what it gathers during its own pass
    gathered = (SHAPE.root_params + 2 * SHAPE.layer_params) * 2 / memory.GIB  # 2 bytes more a parameter
    assert fp32.reference_gib - bf16.reference_gib == pytest.approx(gathered)
    assert bf16.reference_peak_gib < bf16.log_prob_peak_gib  # no entropy: the actor's pass is the larger
    longer = flagship("actor_rollout_ref.ref.log_prob_max_token_len_per_gpu=65536", gpu_gib=45.0)
    assert longer.reference_tokens == 65536 and longer.reference_peak_gib > longer.log_prob_peak_gib
    with pytest.raises(CheckError, match=r"(?s)reference's log-probs.*actor_rollout_ref\.ref\.log_prob_max_token_len_per_gpu"):
        memory.check_memory(longer)
    assert "reference log-probs" in bf16.summary()


def test_weight_sync_holds_vllm_weights_and_the_bucket_beside_the_resident_state():
    base = flagship()
    bigger = flagship("actor_rollout_ref.rollout.checkpoint_engine.update_weights_bucket_megabytes=4096")
    assert bigger.weight_sync_peak_gib - base.weight_sync_peak_gib == pytest.approx(2.0)
    assert base.weight_sync_peak_gib == pytest.approx(
        base.resident_during_rollout_gib + SHAPE.n_params * 2 / memory.GIB + 2.0 + memory.OVERHEAD_GIB
    )


def test_a_vllm_that_does_not_sleep_keeps_its_share_during_training():
    asleep, awake = flagship(), flagship("actor_rollout_ref.rollout.free_cache_engine=false")
    assert asleep.vllm_asleep_gib == memory.VLLM_ASLEEP_GIB
    assert awake.training_peak_gib - asleep.training_peak_gib == pytest.approx(awake.vllm_gib - memory.VLLM_ASLEEP_GIB)


def test_old_log_probs_with_entropy_at_their_own_budget():
    base = flagship()
    doubled = flagship("actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu=32768")
    assert doubled.log_prob_tokens == 32768 and doubled.log_prob_gib > 1.9 * base.log_prob_gib
    unfused = flagship("actor_rollout_ref.actor.fsdp_config.use_torch_compile=false")
    assert unfused.log_prob_gib > base.log_prob_gib  # softmax and product both materialised
    too_long = flagship("actor_rollout_ref.rollout.log_prob_max_token_len_per_gpu=131072", gpu_gib=80.0)
    with pytest.raises(CheckError, match=r"old log-probs and entropy.*log_prob_max_token_len_per_gpu"):
        memory.check_memory(too_long)


def test_the_critic_runs_at_its_own_token_budget():
    """verl 0.9.1's trainer sizes the critic's micro-batches by critic.ppo_infer_max_token_len_per_gpu
    (trainer/ppo/v1/trainer_base.py 266-268), not by critic.ppo_max_token_len_per_gpu."""
    grpo, ppo = flagship(), flagship("algorithm.adv_estimator=gae")
    assert grpo.critic_tokens is None and grpo.critic_update_peak_gib == 0
    assert ppo.critic_tokens == 32768 and ppo.critic_activations_gib > 0  # verl's critic default, twice the actor's
    smaller = flagship("algorithm.adv_estimator=gae", "+critic.ppo_infer_max_token_len_per_gpu=8192")
    assert smaller.critic_tokens == 8192 and smaller.critic_update_peak_gib < ppo.critic_update_peak_gib
    unread = flagship("algorithm.adv_estimator=gae", "critic.ppo_max_token_len_per_gpu=8192")
    assert unread.critic_tokens == 32768
    assert "critic update" in ppo.summary() and "critic update" not in grpo.summary()


def test_the_estimate_imports_without_omegaconf_or_verl():
    code = (
        "import sys; sys.modules.update(omegaconf=None, verl=None, hydra=None)\n"
        "from tinyzero.train.memory import QWEN25_SHAPES, FsdpModel, MemorySettings, estimate\n"
        "s = MemorySettings(n_gpus=1, actor=FsdpModel(4, True), reference=None, critic=None,"
        " update_tokens=16, log_prob_tokens=16, critic_tokens=0)\n"
        "print(estimate(s, QWEN25_SHAPES['qwen2.5-0.5b'], 80.0).training_peak_gib > 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "True", result.stderr
