"""verl 0.9.1's replay buffer with a shorter poll, through verl's own extension point
(`trainer.v1.sampler.custom_sampler.{path,name}`, verl/trainer/ppo/v1/trainer_base.py 139-153).

verl's sync trainer waits for a step's rollouts by polling the buffer every `poll_interval` seconds,
2 by default (verl/trainer/ppo/v1/replay_buffer.py 144, 409): a generation done in 0.5 s is counted
as 2. On GPUs a step takes minutes and 2 s is noise; on a CPU run of a tiny model a whole step is a
few seconds, so recipes/countdown_tiny.yaml uses this buffer, which polls every 0.1 s (a poll is
one small metadata call to TransferQueue's controller).

verl hands a custom sampler only the base constructor arguments (no DAPO group filtering), which a
plain GRPO or PPO run does not use; the launch refuses the combination (tinyzero.train.checks).
"""

from __future__ import annotations

from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

POLL_INTERVAL_S = 0.1


class QuickPollReplayBuffer(ReplayBuffer):
    """verl's sync-mode ReplayBuffer, polling every POLL_INTERVAL_S seconds instead of 2."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("poll_interval", POLL_INTERVAL_S)
        super().__init__(*args, **kwargs)


def check_sampler(config) -> None:
    """This buffer is verl's sync-mode one: refuse it with another trainer mode or with DAPO's group
    filtering, which verl does not wire into a custom sampler (trainer_base.py 163-183)."""
    from tinyzero.recipe import CheckError

    sampler = config.trainer.v1.sampler.custom_sampler
    if sampler.get("name") != QuickPollReplayBuffer.__name__:
        return
    key = "trainer.v1.sampler.custom_sampler"
    if config.trainer.v1.trainer_mode != "sync":
        raise CheckError(f"{key} is tinyzero's sync-mode replay buffer, but trainer.v1.trainer_mode="
                         f"{config.trainer.v1.trainer_mode}: set {key}.path=null and {key}.name=null")
    filter_groups = config.algorithm.get("filter_groups") or {}
    if filter_groups.get("enable", False):
        raise CheckError(f"algorithm.filter_groups.enable=true needs verl's own replay buffer (a custom sampler gets no "
                         f"group filtering): set {key}.path=null and {key}.name=null")
