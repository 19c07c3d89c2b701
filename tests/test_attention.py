"""The attention kernel: chosen at launch, honoured by the critic (verl hard-codes flash-attention 2
there), and padding-free packing with sdpa gives the log-probabilities of padded batches through
verl's own FSDP engine."""

import os
import socket

import pytest
import torch

from tinyzero.recipe import CheckError, compose
from tinyzero.train import attention, memory

NO_FLASH = "ModuleNotFoundError: No module named 'flash_attn'"


def kernels(config):
    return (config.actor_rollout_ref.model.override_config.get("attn_implementation"),
            config.critic.model.override_config.get("attn_implementation"))


def test_auto_is_sdpa_without_flash_attn_and_flash_attention_2_with_it():
    without = compose(["+recipe=countdown_3b", "algorithm.adv_estimator=gae"])
    line = attention.apply_attention(without, with_critic=True, import_error=NO_FLASH)
    assert kernels(without) == ("sdpa", "sdpa")
    assert line.startswith("actor and reference sdpa, critic sdpa (flash-attn does not import; flash-attn has no wheel on PyPI")
    assert "pip install flash-attn --no-build-isolation" in line and "CUDA toolkit" in line
    with_flash = compose(["+recipe=countdown_3b"])
    assert attention.apply_attention(with_flash, with_critic=False, import_error=None) == (
        "actor and reference flash_attention_2 (flash-attn imports)"
    )
    assert kernels(with_flash) == ("flash_attention_2", None)  # GRPO: no critic to configure


SHAPE_3B = memory.QWEN25_SHAPES["qwen2.5-3b"]


def test_auto_without_flash_attn_lowers_the_packed_budgets_and_says_the_cost():
    """sdpa attends densely over a whole packed micro-batch: auto keeps packing at budgets where
    that adds at most DENSE_ATTENTION_SHARE of the linear layers' FLOPs."""
    config = compose(["+recipe=countdown_3b", "algorithm.adv_estimator=gae"])
    line = attention.apply_attention(config, with_critic=True, import_error=NO_FLASH, shape=SHAPE_3B)
    budget = attention.dense_budget(SHAPE_3B, 256 + 1024)
    assert budget == 5120 and attention.dense_attention_share(SHAPE_3B, budget) <= attention.DENSE_ATTENTION_SHARE
    assert attention.dense_attention_share(SHAPE_3B, budget + attention.BUDGET_STEP) > attention.DENSE_ATTENTION_SHARE
    arr = config.actor_rollout_ref
    assert (arr.actor.ppo_max_token_len_per_gpu, arr.rollout.log_prob_max_token_len_per_gpu,
            arr.ref.log_prob_max_token_len_per_gpu, config.critic.ppo_infer_max_token_len_per_gpu) == (budget,) * 4
    assert {batch.tokens for batch in memory.micro_batches(config).values()} == {budget}  # what the estimate reads
    assert "actor_rollout_ref.actor.ppo_max_token_len_per_gpu 16384 -> 5120" in line
    assert "critic.ppo_infer_max_token_len_per_gpu 32768 -> 5120" in line
    assert "+24% on the linear layers' FLOPs (flash-attn's per-sequence attention 3%; at 32768 tokens +157%)" in line


def test_sdpa_chosen_keeps_the_budgets_and_padded_batches_cost_nothing_dense():
    chosen = compose(["+recipe=countdown_3b", "attention=sdpa"])
    line = attention.apply_attention(chosen, with_critic=False, import_error=NO_FLASH, shape=SHAPE_3B)
    assert chosen.actor_rollout_ref.actor.ppo_max_token_len_per_gpu == 16384
    assert line.endswith("+78% on the linear layers' FLOPs at 16384 tokens (flash-attn's per-sequence attention 3%); "
                         "attention=auto lowers the token budgets to 5120")
    padded = compose(["+recipe=countdown_3b", "actor_rollout_ref.model.use_remove_padding=false"])
    line = attention.apply_attention(padded, with_critic=False, import_error=NO_FLASH, shape=SHAPE_3B)
    assert padded.actor_rollout_ref.actor.ppo_max_token_len_per_gpu == 16384 and "densely" not in line
    unknown = compose(["+recipe=countdown_3b"])
    line = attention.apply_attention(unknown, with_critic=False, import_error=NO_FLASH, shape=None)
    assert unknown.actor_rollout_ref.actor.ppo_max_token_len_per_gpu == 16384 and "cost not estimated" in line


def test_explicit_choices_and_verl_keys():
    forced = compose(["+recipe=countdown_3b", "attention=flash_attention_2"])
    with pytest.raises(CheckError, match=r"attention=flash_attention_2 but flash-attn does not import.*attention=auto"):
        attention.apply_attention(forced, with_critic=False, import_error=NO_FLASH)
    eager = compose(["+recipe=countdown_3b", "attention=eager"])
    attention.apply_attention(eager, with_critic=False, import_error=None)
    assert kernels(eager)[0] == "eager"
    verl_key = compose(["+recipe=countdown_3b", "+actor_rollout_ref.model.override_config.attn_implementation=eager"])
    attention.apply_attention(verl_key, with_critic=False, import_error=NO_FLASH)
    assert kernels(verl_key)[0] == "eager"  # the verl key, set explicitly, wins
    with pytest.raises(CheckError, match="attention='flash'"):
        attention.apply_attention(compose(["+recipe=countdown_3b", "attention=flash"]), with_critic=False)


def test_critic_loads_with_the_configured_kernel(tiny_model_dir):
    """verl's load_valuehead_model (verl/utils/model.py 649) asks for flash-attention 2 whatever the
    config says; tinyzero.platforms.verl_0_9_1, installed by the entry point verl loads on import,
    makes it honour the config. verl's original still fails here, where flash-attn is absent."""
    import verl.utils.model as verl_model
    from transformers import AutoConfig

    assert hasattr(verl_model.load_valuehead_model, "tinyzero_original")  # installed by `import verl`
    config = AutoConfig.from_pretrained(tiny_model_dir, attn_implementation="sdpa")
    config.num_labels = 1  # as verl's FSDP engine sets it for the value model
    critic = verl_model.load_valuehead_model(str(tiny_model_dir), torch.float32, config, False)
    assert type(critic).__name__ == "Qwen2ForTokenClassification" and critic.config._attn_implementation == "sdpa"
    with pytest.raises(BaseException):
        verl_model.load_valuehead_model.tinyzero_original(str(tiny_model_dir), torch.float32, config, False)


@pytest.fixture(scope="module")
def process_group():
    """A one-process gloo group, as verl's workers have on the CPU platform."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
    torch.distributed.init_process_group("gloo")
    yield
    torch.distributed.destroy_process_group()


def verl_log_probs(model_dir, kernel: str, packed: bool, batch):
    """Per-token log-probabilities from verl's FSDP engine (FSDPEngineWithLMHead.infer_batch), the
    code path of the actor's and the reference's log-probs, with verl's own no-padding conversion."""
    from verl.trainer.config import CheckpointConfig
    from verl.utils import tensordict_utils as tu
    from verl.workers.config import FSDPEngineConfig, HFModelConfig
    from verl.workers.engine import EngineRegistry
    from verl.workers.utils.padding import left_right_2_no_padding

    model = HFModelConfig(path=str(model_dir), use_remove_padding=True, enable_gradient_checkpointing=False,
                          override_config={"attn_implementation": kernel})
    # fp32 compute, so that packed and padded differ only by rounding (bf16 would hide a mask error).
    full_precision = {"param_dtype": "fp32", "reduce_dtype": "fp32", "buffer_dtype": "fp32"}
    engine_config = FSDPEngineConfig(strategy="fsdp2", forward_only=True, model_dtype="fp32", use_torch_compile=False,
                                     mixed_precision=full_precision)
    engine = EngineRegistry.new(model_type="language_model", backend="fsdp2", model_config=model,
                                engine_config=engine_config, optimizer_config=None, checkpoint_config=CheckpointConfig())
    engine.initialize()
    data = left_right_2_no_padding(batch.clone())
    tu.assign_non_tensor(data, temperature=1.0, use_dynamic_bsz=False, micro_batch_size_per_gpu=2,
                         calculate_entropy=False, compute_loss=False, use_remove_padding=packed)
    with engine.eval_mode():
        output = engine.infer_batch(data, loss_function=None)
    return output["model_output"]["log_probs"].values(), data


def left_right_padded_batch(vocab_size: int):
    """Four prompt+response pairs of different lengths, left/right padded as verl's rollout stores them."""
    from tensordict import TensorDict

    generator = torch.Generator().manual_seed(0)
    prompt_lens, response_lens, max_prompt, max_response = [6, 3, 5, 2], [10, 7, 4, 9], 6, 10
    ids = torch.zeros(4, max_prompt + max_response, dtype=torch.long)
    mask = torch.zeros_like(ids)
    response_mask = torch.zeros(4, max_response, dtype=torch.long)
    for row, (p, r) in enumerate(zip(prompt_lens, response_lens)):
        ids[row, max_prompt - p : max_prompt + r] = torch.randint(5, vocab_size, (p + r,), generator=generator)
        mask[row, max_prompt - p : max_prompt + r] = 1
        response_mask[row, :r] = 1
    return TensorDict({
        "input_ids": ids, "attention_mask": mask, "response_mask": response_mask,
        "position_ids": (mask.cumsum(-1) - 1).clamp(min=0),
        "prompts": ids[:, :max_prompt], "responses": ids[:, max_prompt:],
    }, batch_size=4)


def test_packing_with_sdpa_matches_padded_batches_through_verl(tiny_model_dir, process_group):
    from transformers import AutoConfig, AutoModelForCausalLM

    batch = left_right_padded_batch(AutoConfig.from_pretrained(tiny_model_dir).vocab_size)
    packed, data = verl_log_probs(tiny_model_dir, "sdpa", packed=True, batch=batch)
    padded, _ = verl_log_probs(tiny_model_dir, "sdpa", packed=False, batch=batch)
    eager, _ = verl_log_probs(tiny_model_dir, "eager", packed=False, batch=batch)
    assert packed.shape == (16 + 10 + 9 + 11,)
    assert torch.allclose(packed, padded, atol=1e-5) and torch.allclose(packed, eager, atol=1e-5)

    # The comparison can fail: the same packed row where tokens see the sequences before them (no
    # packed mask; transformers builds none when a cache exists) gives other log-probs.
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa").eval()
    row = data["input_ids"].values().unsqueeze(0)
    with torch.no_grad():
        logits = model(input_ids=row, position_ids=data["position_ids"].values().unsqueeze(0), use_cache=True).logits
    leaked = torch.log_softmax(logits.float(), -1).gather(-1, torch.roll(row, -1, 1).unsqueeze(-1)).squeeze()
    first = 16  # the first sequence sees nothing before it either way
    assert torch.allclose(leaked[:first], packed[:first], atol=1e-5)
    assert (leaked[first:] - packed[first:]).abs().max() > 1e-3
