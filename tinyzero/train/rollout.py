"""How rollouts run, settled at launch: where they stop and how many run at once.

- Stop at `</answer>`: `actor_rollout_ref.rollout.agent.default_agent_loop` names tinyzero's agent
  loop (conf/train.yaml); verl finds it through `agent_loop_config_path`, which the launch points
  at this installation's conf/agent_loops.yaml when it is unset (see tinyzero/train/agent_loop.py).
- `actor_rollout_ref.rollout.max_num_seqs` null (conf/train.yaml): each vLLM replica may run every
  request it gets in a step at once (verl's 256 would queue half of the flagship's 512).

The sampling values vLLM accepts (temperatures, top_p, top_k) are checked with every other range
in tinyzero.train.ranges.
"""

from __future__ import annotations

import math

from omegaconf import DictConfig, open_dict

from tinyzero.recipe import CheckError

AGENT_LOOP_NAME = "tinyzero_stop_at_answer"  # registered by conf/agent_loops.yaml


def agent_loops_file() -> str:
    """conf/agent_loops.yaml of this installation, as an absolute path (verl takes it as is; a
    relative one it looks for only under the working directory and verl's own folder)."""
    from importlib.resources import files

    return str(files("tinyzero.train").joinpath("conf/agent_loops.yaml"))


def stops_at_answer(config: DictConfig) -> bool:
    return config.actor_rollout_ref.rollout.agent.default_agent_loop == AGENT_LOOP_NAME


def requests_per_replica(config: DictConfig) -> int:
    """Training requests one vLLM replica gets per step: prompts x answers over the replicas."""
    rollout = config.actor_rollout_ref.rollout
    gpus = int(config.trainer.n_gpus_per_node) * int(config.trainer.nnodes)
    replicas = max(1, gpus // max(1, int(rollout.tensor_model_parallel_size)))
    return math.ceil(int(config.data.train_batch_size) * int(rollout.n) / replicas)


def configure_rollout(config: DictConfig) -> str:
    """Fill in the launch-time rollout keys; return the plan's line."""
    rollout = config.actor_rollout_ref.rollout
    with open_dict(config):
        if rollout.max_num_seqs is None:
            rollout.max_num_seqs = requests_per_replica(config)
        if stops_at_answer(config):
            if rollout.name != "vllm":
                raise CheckError(
                    f"actor_rollout_ref.rollout.agent.default_agent_loop={AGENT_LOOP_NAME} passes vLLM's stop "
                    f"options, but actor_rollout_ref.rollout.name={rollout.name}: use vllm, or set "
                    "actor_rollout_ref.rollout.agent.default_agent_loop=single_turn_agent (no stop at </answer>)."
                )
            if rollout.agent.agent_loop_config_path is None:
                rollout.agent.agent_loop_config_path = agent_loops_file()
    stop = "stop at </answer> (kept)" if stops_at_answer(config) else f"agent loop {rollout.agent.default_agent_loop}"
    return f"{stop}; up to {rollout.max_num_seqs} sequences at once per vLLM replica"
