"""Rollouts: the stop at </answer> (config wiring, verl's agent-loop registry, real vLLM) and vLLM's
concurrency per replica (the sampling ranges vLLM accepts: tests/test_ranges.py). The stop through
verl's whole training loop is checked on the CPU-loop session run (tests/test_cpu_loop.py)."""

import pytest
from omegaconf import OmegaConf

from tinyzero.recipe import CheckError, compose
from tinyzero.train import rollout


def test_every_recipe_stops_at_the_answer_tag_in_training_and_validation():
    from tinyzero.recipe import recipe_files

    for name in recipe_files():
        config = compose([f"+recipe={name}"])
        assert config.actor_rollout_ref.rollout.agent.default_agent_loop == rollout.AGENT_LOOP_NAME, name
        rollout.configure_rollout(config)
        # One agent loop serves both: verl's AgentLoopWorker (and the v1 trainer's AgentLoopWorkerTQ)
        # picks default_agent_loop for every sample, validation batches included.
        assert config.actor_rollout_ref.rollout.agent.agent_loop_config_path == rollout.agent_loops_file()


def test_verl_loads_the_agent_loop_file_and_finds_the_class():
    """What verl's AgentLoopWorker does with agent_loop_config_path (agent_loop.py 534-539), then
    the hydra target it instantiates."""
    from hydra.utils import get_class
    from verl.utils.import_utils import resolve_config_path

    from tinyzero.train.agent_loop import StopAtAnswerAgentLoop

    entries = OmegaConf.load(resolve_config_path(rollout.agent_loops_file()))
    registered = {entry.name: entry for entry in entries}
    assert get_class(registered[rollout.AGENT_LOOP_NAME]._target_) is StopAtAnswerAgentLoop


def test_stop_parameters_stop_real_vllm_at_the_first_closing_tag(tmp_path):
    """vLLM (the CPU build here) on a tiny model whose output a regex forces to write an answer, a
    made-up further turn and a second answer. verl's own sampling parameters run on to the end; with
    tinyzero's, generation ends at the first </answer>, and the tag is in the token ids verl keeps."""
    from transformers import AutoTokenizer
    from vllm import LLM, SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    from tinyzero.testing import build_tiny_model
    from tinyzero.train.agent_loop import with_stop_at_answer

    model = build_tiny_model(tmp_path / "tiny", hidden_size=256)  # vLLM's CPU attention needs head_dim 64
    tokenizer = AutoTokenizer.from_pretrained(model)
    llm = LLM(model=str(model), dtype="float32", max_model_len=256, enforce_eager=True, max_num_seqs=2, seed=0,
              gpu_memory_utilization=0.05)  # on CPU: the share of host memory for the KV cache
    forced = StructuredOutputsParams(regex=r"Let me check\. <answer> 1 \+ 2 </answer> User: more <answer> 3 </answer>")
    verl_params = dict(temperature=1.0, top_p=1.0, top_k=-1, repetition_penalty=1.0, logprobs=None)  # agent_loop.py 590-596
    prompt = {"prompt_token_ids": tokenizer("Solve:", add_special_tokens=False)["input_ids"]}

    def generate(params):
        (output,) = llm.generate([prompt], SamplingParams(max_tokens=64, structured_outputs=forced, **params))
        return tokenizer.decode(output.outputs[0].token_ids, skip_special_tokens=True)

    try:
        assert generate(verl_params).endswith("User: more <answer> 3 </answer>")
        assert generate(with_stop_at_answer(verl_params, ["</answer>"])) == "Let me check. <answer> 1 + 2 </answer>"
    finally:
        llm.llm_engine.engine_core.shutdown()  # the engine's processes end with the test, not at exit


def test_max_num_seqs_is_sized_to_the_requests_of_a_replica():
    flagship = compose(["+recipe=countdown_3b"])
    rollout.configure_rollout(flagship)
    assert flagship.actor_rollout_ref.rollout.max_num_seqs == 256 * 4 // 2  # 2 GPUs, one replica each
    one_gpu = compose(["+recipe=countdown_0_5b"])
    rollout.configure_rollout(one_gpu)
    assert one_gpu.actor_rollout_ref.rollout.max_num_seqs == one_gpu.data.train_batch_size * one_gpu.actor_rollout_ref.rollout.n
    tensor_parallel = compose(["+recipe=countdown_3b", "actor_rollout_ref.rollout.tensor_model_parallel_size=2"])
    rollout.configure_rollout(tensor_parallel)
    assert tensor_parallel.actor_rollout_ref.rollout.max_num_seqs == 1024  # one replica over both GPUs
    chosen = compose(["+recipe=countdown_3b", "actor_rollout_ref.rollout.max_num_seqs=64"])
    rollout.configure_rollout(chosen)
    assert chosen.actor_rollout_ref.rollout.max_num_seqs == 64


def test_the_stop_needs_vllm():
    config = compose(["+recipe=countdown_3b", "actor_rollout_ref.rollout.name=sglang"])
    with pytest.raises(CheckError, match="default_agent_loop=single_turn_agent"):
        rollout.configure_rollout(config)
    verl_loop = compose(["+recipe=countdown_3b", "actor_rollout_ref.rollout.agent.default_agent_loop=single_turn_agent"])
    assert "agent loop single_turn_agent" in rollout.configure_rollout(verl_loop)
    assert verl_loop.actor_rollout_ref.rollout.agent.agent_loop_config_path is None
