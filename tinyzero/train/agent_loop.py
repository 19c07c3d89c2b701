"""Rollouts that end at the closing answer tag, in training and in validation.

verl 0.9.1's single-turn agent loop asks vLLM only for temperature, top-p, top-k, repetition
penalty and log-probs (verl/experimental/agent_loop/agent_loop.py 590-596, and the same in the v1
trainer's verl/trainer/ppo/v1/agent_loop_tq.py 64-70). A base model then writes on after
`</answer>` to its end-of-text or to the response limit, and may invent a further "User:" turn
whose answer is the one the reward scores (the last pair). That costs rollout time, training
tokens, and reward signal.

`StopAtAnswerAgentLoop` is verl's single-turn loop with one change: every request also carries
`stop=["</answer>"]` with `include_stop_str_in_output=True`. verl hands the dict to vLLM's
`SamplingParams` unchanged (verl/workers/rollout/vllm_rollout/vllm_async_server.py 634), and
returns vLLM's token ids, which run up to and including the token that completed the tag: the
reward still sees `</answer>`.

It is wired through verl's extension point for agent loops: conf/agent_loops.yaml registers it
(`actor_rollout_ref.rollout.agent.agent_loop_config_path`, filled in at launch by
tinyzero.train.rollout) and `actor_rollout_ref.rollout.agent.default_agent_loop:
tinyzero_stop_at_answer` (conf/train.yaml) selects it for every sample. verl runs this module in
its agent-loop workers; training and validation requests both go through it.
"""

from __future__ import annotations

from typing import Any

from verl.experimental.agent_loop.single_turn_agent_loop import SingleTurnAgentLoop

from tinyzero.rewards.answer import ANSWER_CLOSE


def with_stop_at_answer(sampling_params: dict[str, Any], stop: list[str]) -> dict[str, Any]:
    """The request's vLLM sampling parameters, ending at the first stop string, which is kept."""
    return {**sampling_params, "stop": list(stop), "include_stop_str_in_output": True}


class StopAtAnswerAgentLoop(SingleTurnAgentLoop):
    """verl's single-turn loop; generation stops at `</answer>` (kept in the response)."""

    def __init__(self, *args, stop: list[str] | None = None, **kwargs):
        # verl instantiates the class with the YAML entry's keys; `name` goes on to the base class.
        super().__init__(*args, **kwargs)
        self.stop = list(stop) if stop else [ANSWER_CLOSE]

    async def run(self, sampling_params: dict[str, Any], **kwargs):
        return await super().run(with_stop_at_answer(sampling_params, self.stop), **kwargs)
