"""The allowed range of every knob the recipes set or the README tells users to override, in one
table, checked against the composed config right after the key and name checks: before any model,
data, priming or Ray work, so a value no run can use fails in seconds with the key, the value, the
range and a fix.

Where the ranges come from (each entry's text names its source):
- vLLM checks sampling values only per request (vllm/sampling_params.py `_verify_args`), at the
  first rollout, and its engine arguments (vllm/config/cache.py, scheduler.py) only when the engine
  starts, after the models have loaded: the same bounds are checked here.
- verl 0.9.1 validates few numbers before it starts: its validate_config (batch divisibility,
  loss_agg_mode, micro-batch settings) runs in checks.check_batch_arithmetic, whose CheckError
  carries verl's own message on one line. Every other range below verl takes silently (a negative
  learning rate ascends the loss, rollout.n=0 trains on no response) or trips over only deep inside
  a Ray worker or the SFT process (clip_ratio_c, core_algos.py 1249; SFT's test_freq=0,
  sft_trainer.py 413).
- The task, tiny_model and priming.traces blocks have validate() on their own dataclasses
  (data_gen's task configs, tinyzero.models.TinyModelConfig, data_gen.traces.TracesConfig): the task
  and traces ones run here too (prepare_tiny_model runs the model's before building anything).

Beyond single values: the folders the run writes under (FOLDERS) must be folders or creatable, and
an estimator that compares the answers to one prompt (GROUP_ESTIMATORS: grpo, rloo, ...) needs
more than one answer per prompt.

Frequencies, and what "never" means:
- trainer.test_freq / save_freq (verl's RL trainer: verl/trainer/ppo/v1/trainer_base.py 491 and 481,
  ray_trainer.py 1727 and 1704 with trainer.use_v1=false): N >= 1 validates / saves every N steps
  and at the last step; 0 or below never (verl's default, -1). Never validating still validates
  once before training (trainer.val_before_train); never saving saves no checkpoint at all, not
  even the last step, so nothing can resume or be evaluated. The plan says which (`schedule`).
- priming.sft.trainer.test_freq / save_freq (verl's SFT trainer): N >= 1, -1 never, or
  after_each_epoch; 0 divides by zero there (sft_trainer.py 413). SFT saves the last step whatever
  the value, which is the checkpoint priming keeps.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable

from omegaconf import DictConfig, OmegaConf

from tinyzero.recipe import CheckError, absolute, task_config
from tinyzero.train import prime

_ABSENT = object()  # a key the composed config does not have (a + key, or no priming block)


def _uses_vllm(config: DictConfig) -> bool:
    return config.actor_rollout_ref.rollout.name == "vllm"


@dataclass(frozen=True)
class Range:
    """What one key accepts: a number between low and high (each bound included unless open),
    an integer when `integer`, and the exact `special` values with their meaning (None: null).
    `why` says who accepts the range and what a value outside it would do; it names the range
    as {allowed}. `when`: the range applies only to configs it is true for."""

    key: str
    why: str
    fix: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    integer: bool = False
    special: tuple[tuple[object, str], ...] = ()
    when: Callable[[DictConfig], bool] | None = None

    def allowed(self) -> str:
        parts = [self._interval()] + [f"{'null' if value is None else value} ({meaning})" for value, meaning in self.special]
        return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]

    def _interval(self) -> str:
        low, high = self.low, self.high
        if self.integer:
            if low is not None and high is not None:
                return f"an integer in [{low:g}, {high:g}]"
            return f"an integer >= {low:g}" if low is not None else "an integer"
        if low is not None and high is not None:
            return f"in {'(' if self.low_open else '['}{low:g}, {high:g}{')' if self.high_open else ']'}"
        if low is not None:
            return f"{'>' if self.low_open else '>='} {low:g}"
        return f"{'<' if self.high_open else '<='} {high:g}" if high is not None else "a number"

    def accepts(self, value) -> bool:
        if any(value is None if special is None else value == special for special, _ in self.special):
            return True
        if value is None or isinstance(value, (bool, str)):  # YAML true or a quoted '1e-5': not a number
            return False
        if not isinstance(value, int) and (self.integer or not isinstance(value, float) or not math.isfinite(value)):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or not (value > self.high or (self.high_open and value == self.high))

    def problem(self, value) -> str:
        return f"{self.key}={as_typed(value)}: {self.why.format(allowed=self.allowed())}; {self.fix}"


def as_typed(value) -> str:
    """A value as the command line writes it: null, true, a quoted string (a '1e-5' that is not a number)."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return repr(value) if isinstance(value, str) else str(value)


def _optimizer(section: str, lr_fix: str) -> list[Range]:
    """The ranges of a verl optimizer block (verl/workers/config/optimizer.py FSDPOptimizerConfig)."""
    return [
        Range(f"{section}.lr", low=0, high=1, low_open=True,
              why="the learning rate must be {allowed}: 0 leaves the weights where they are and a negative one "
                  "climbs the loss (verl takes both silently)", fix=lr_fix),
        Range(f"{section}.weight_decay", low=0, why="AdamW's weight decay must be {allowed}",
              fix="0 switches it off (verl: 0.01)"),
        Range(f"{section}.lr_warmup_steps_ratio", low=0, high=1,
              why="the share of steps spent warming up must be {allowed}", fix="0 warms up not at all (verl's default)"),
        Range(f"{section}.clip_grad", low=0, low_open=True,
              why="the gradient-norm clip must be {allowed}: 0 zeroes every gradient", fix="verl's default is 1.0"),
        Range(f"{section}.min_lr_ratio", low=0, high=1, special=((None, "0"),),
              why="the cosine schedule's floor, a share of the learning rate, must be {allowed}: verl asserts it "
                  "only when the workers build their scheduler (verl/utils/torch_functional.py 749)",
              fix="0 decays to 0 (verl's default)"),
    ]


_POSITIVE_INT = dict(low=1, integer=True)
# A fixed micro-batch size: read only without dynamic batch sizes, so null is allowed.
_MICRO_BATCH = dict(**_POSITIVE_INT, special=((None, "only with use_dynamic_bsz=true"),))
_SAMPLING = "vLLM rejects such a request at the first rollout, minutes in (vllm/sampling_params.py _verify_args)"

RANGES: tuple[Range, ...] = (
    # --- Counts and sizes ---
    Range("data.train_batch_size", **_POSITIVE_INT, why="the prompts per step must be {allowed}",
          fix="the recipes use 16 to 256"),
    Range("data.max_prompt_length", **_POSITIVE_INT, why="the prompt budget in tokens must be {allowed}",
          fix="the launch measures the longest prompt and says how long it is"),
    Range("data.max_response_length", **_POSITIVE_INT,
          why="the response budget in tokens must be {allowed}: vLLM takes max_tokens >= 1 and 0 leaves no room "
              "for an answer", fix="the recipes use 96 to 1024"),
    Range("data.dataloader_num_workers", low=0, integer=True, why="data loader processes must be {allowed}",
          fix="0 loads in the trainer's process"),
    Range("actor_rollout_ref.rollout.n", **_POSITIVE_INT,
          why="the answers sampled per prompt must be {allowed}: 0 gives no response to train on",
          fix="GRPO needs a group: the recipes use 4 or 8"),
    Range("actor_rollout_ref.rollout.val_kwargs.n", **_POSITIVE_INT,
          why="the answers per validation prompt must be {allowed}", fix="1 is verl's default"),
    Range("actor_rollout_ref.actor.ppo_mini_batch_size", **_POSITIVE_INT,
          why="the prompts per policy update must be {allowed}", fix="e.g. half of data.train_batch_size"),
    Range("actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu", **_MICRO_BATCH,
          why="the sequences per GPU micro-batch must be {allowed}", fix="the recipes use 8"),
    Range("actor_rollout_ref.actor.ppo_max_token_len_per_gpu", **_POSITIVE_INT,
          why="the token budget of a dynamic micro-batch must be {allowed}", fix="verl's default is 16384"),
    Range("actor_rollout_ref.actor.ppo_epochs", **_POSITIVE_INT,
          why="the passes over each step's batch must be {allowed}", fix="1 is verl's default and the recipes'"),
    Range("actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu", **_MICRO_BATCH,
          why="the sequences per GPU log-prob micro-batch must be {allowed}", fix="the recipes use 16"),
    Range("actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu", **_MICRO_BATCH,
          why="the sequences per GPU log-prob micro-batch must be {allowed}", fix="the recipes use 16"),
    Range("critic.ppo_micro_batch_size_per_gpu", **_MICRO_BATCH,
          why="the sequences per GPU micro-batch must be {allowed}", fix="the recipes use 8"),
    Range("critic.ppo_max_token_len_per_gpu", **_POSITIVE_INT,
          why="the token budget of a dynamic micro-batch must be {allowed}", fix="verl's default is 32768"),
    Range("trainer.total_epochs", **_POSITIVE_INT,
          why="the passes over the training set must be {allowed}: 0 trains nothing",
          fix="verl stops at the first of total_epochs and total_training_steps"),
    Range("trainer.total_training_steps", **_POSITIVE_INT, special=((None, "the epochs decide"),),
          why="the steps must be {allowed}: 0 trains nothing, verl would only validate once and stop",
          fix="to only validate the model, set trainer.val_only=true instead"),
    Range("trainer.nnodes", **_POSITIVE_INT, why="the nodes must be {allowed}", fix="1 for one machine"),
    Range("trainer.n_gpus_per_node", **_POSITIVE_INT, why="the GPUs per node must be {allowed}",
          fix="a CPU run uses 1 logical GPU (recipes/countdown_tiny.yaml)"),
    Range("actor_rollout_ref.rollout.tensor_model_parallel_size", **_POSITIVE_INT,
          why="the GPUs per vLLM replica must be {allowed}", fix="1: a replica per GPU"),
    Range("actor_rollout_ref.rollout.agent.num_workers", **_POSITIVE_INT,
          why="the agent-loop worker processes must be {allowed}", fix="verl's default is 8"),
    Range("reward.num_workers", **_POSITIVE_INT, why="the reward worker processes must be {allowed}",
          fix="verl's default is 8"),
    Range("transfer_queue.backend.SimpleStorage.num_data_storage_units", **_POSITIVE_INT,
          special=((None, "2 per node, set at launch"),), why="TransferQueue's storage units must be {allowed}",
          fix="leave it null"),
    Range("ray_kwargs.ray_init.num_cpus", **_POSITIVE_INT, special=((None, "Ray counts the cores"),),
          why="the CPUs Ray offers must be {allowed}: with 0 no worker can be placed", fix="leave it null on a GPU machine"),
    Range("ray_kwargs.ray_init.num_gpus", low=0, integer=True, special=((None, "Ray counts the GPUs"),),
          why="the GPUs Ray offers must be {allowed}", fix="1 logical GPU for a CPU run"),
    Range("trainer.log_val_generations", low=0, integer=True,
          why="the validation answers logged per test step must be {allowed}", fix="0 logs none"),
    Range("trainer.max_actor_ckpt_to_keep", integer=True, special=((None, "keep all"),),
          why="the checkpoints kept must be {allowed} (0 or below: keep all)", fix="the recipes keep 2 or 3"),
    Range("trainer.max_critic_ckpt_to_keep", integer=True, special=((None, "keep all"),),
          why="the checkpoints kept must be {allowed} (0 or below: keep all)", fix="the recipes keep 3"),
    # --- Frequencies (see the docstring for what "never" means) ---
    Range("trainer.test_freq", integer=True,
          why="verl validates every N steps and at the last one for N >= 1, never for 0 or below; "
              "it must be {allowed}", fix="the recipes use 5 or 20"),
    Range("trainer.save_freq", integer=True,
          why="verl saves a checkpoint every N steps and at the last one for N >= 1, never (not even at the end) "
              "for 0 or below; it must be {allowed}", fix="the recipes use 10 or 50"),
    # --- Probabilities and sampling (vLLM's rules; verl passes them through) ---
    *(Range(f"actor_rollout_ref.rollout.{prefix}temperature", low=0, high=2, when=_uses_vllm,
            why="vLLM accepts temperatures {allowed} and would reject every request at the first rollout",
            fix="pick a value in that range (1.0 samples the policy as it is)")
      for prefix in ("", "val_kwargs.")),
    *(Range(f"actor_rollout_ref.rollout.{prefix}top_p", low=0, high=1, low_open=True, when=_uses_vllm,
            why="top_p must be {allowed}: " + _SAMPLING, fix="1.0 samples from the whole distribution")
      for prefix in ("", "val_kwargs.")),
    *(Range(f"actor_rollout_ref.rollout.{prefix}top_k", low=-1, integer=True, when=_uses_vllm,
            why="top_k must be {allowed} (-1 and 0: off): " + _SAMPLING, fix="-1 samples from every token")
      for prefix in ("", "val_kwargs.")),
    Range("actor_rollout_ref.rollout.gpu_memory_utilization", low=0, high=1, low_open=True, when=_uses_vllm,
          why="vLLM's share of each GPU must be {allowed} (vllm/config/cache.py), checked by vLLM only once the "
              "models are loaded", fix="verl's default is 0.5; the memory check says how much fits"),
    Range("actor_rollout_ref.rollout.max_num_seqs", **_POSITIVE_INT, when=_uses_vllm,
          special=((None, "sized at launch to the requests of a step"),),
          why="vLLM's concurrent sequences must be {allowed} (vllm/config/scheduler.py)", fix="leave it null"),
    Range("gpu_memory_gib", low=0, low_open=True, special=((None, "read from the GPU"),),
          why="one GPU's memory in GiB must be {allowed}", fix="e.g. 79 for an H100 80 GB"),
    # --- Loss and KL coefficients, clip ratios ---
    Range("actor_rollout_ref.actor.kl_loss_coef", low=0,
          why="the KL loss coefficient must be {allowed}: a negative one pushes the policy away from the reference",
          fix="0.001 as R1-Zero, or actor_rollout_ref.actor.use_kl_loss=false for no KL loss"),
    Range("algorithm.kl_ctrl.kl_coef", low=0,
          why="the in-reward KL coefficient must be {allowed}: a negative one rewards drifting from the reference",
          fix="0.001 is verl's default"),
    Range("actor_rollout_ref.actor.entropy_coeff", low=0,
          why="the entropy bonus must be {allowed}: a negative one rewards collapsing onto one answer",
          fix="0, verl's default, adds none"),
    Range("actor_rollout_ref.actor.clip_ratio", low=0, low_open=True,
          why="PPO's clip ratio must be {allowed}: 0 clips the probability ratio to exactly 1", fix="0.2 is verl's default"),
    Range("actor_rollout_ref.actor.clip_ratio_low", low=0, high=1, low_open=True,
          why="the lower clip ratio must be {allowed}: 0 clips the probability ratio to exactly 1", fix="0.2 is verl's default"),
    Range("actor_rollout_ref.actor.clip_ratio_high", low=0, low_open=True,
          why="the upper clip ratio must be {allowed}: 0 clips the probability ratio to exactly 1", fix="0.2 is verl's default (DAPO: 0.28)"),
    Range("actor_rollout_ref.actor.clip_ratio_c", low=1, low_open=True,
          why="dual-clip PPO's bound must be {allowed}: verl asserts 'The lower bound of the clip_ratio_c for "
              "dual-clip PPO should be greater than 1.0' only at the first policy update (core_algos.py 1249)",
          fix="3.0 is verl's default"),
    Range("critic.cliprange_value", low=0, low_open=True,
          why="the value clip range must be {allowed}", fix="0.5 is verl's default"),
    Range("algorithm.gamma", low=0, high=1, why="the discount must be {allowed}",
          fix="1.0, verl's default, for a reward at the end of the answer"),
    Range("algorithm.lam", low=0, high=1, why="GAE's lambda must be {allowed}", fix="1.0 is verl's default"),
    # --- Learning rates and the optimizers ---
    *_optimizer("actor_rollout_ref.actor.optim", "1e-6 for the 0.5B-7B recipes"),
    *_optimizer("critic.optim", "1e-5 for the 0.5B-7B recipes"),
    # --- Priming: verl's SFT trainer, the keys a recipe's priming.sft block sets ---
    Range("priming.sft.data.train_batch_size", **_POSITIVE_INT, why="the traces per SFT step must be {allowed}",
          fix="at most priming.traces.size"),
    Range("priming.sft.data.micro_batch_size_per_gpu", **_POSITIVE_INT,
          why="the traces per GPU micro-batch must be {allowed}", fix="verl's default is 4"),
    Range("priming.sft.data.max_token_len_per_gpu", **_POSITIVE_INT,
          why="the token budget of a dynamic micro-batch must be {allowed}", fix="verl's default is 8192"),
    Range("priming.sft.data.max_length", **_POSITIVE_INT, why="the prompt + trace budget in tokens must be {allowed}",
          fix="the launch measures the longest trace before SFT starts"),
    Range("priming.sft.data.num_workers", low=0, integer=True, why="data loader processes must be {allowed}",
          fix="0 loads in the trainer's process"),
    Range("priming.sft.trainer.total_epochs", **_POSITIVE_INT, why="the passes over the traces must be {allowed}",
          fix="the recipes use 5 to 250"),
    Range("priming.sft.trainer.total_training_steps", **_POSITIVE_INT, special=((None, "the epochs decide"),),
          why="the SFT steps must be {allowed}: 0 primes nothing", fix="leave it null"),
    *(Range(f"priming.sft.trainer.{key}", **_POSITIVE_INT, special=((-1, "never"), ("after_each_epoch", "once an epoch")),
            why=f"verl's SFT trainer {what} every N steps; it takes {{allowed}}, and 0 divides by zero in it "
                "(sft_trainer.py 413)", fix="-1, verl's default (the last step is saved either way)")
      for key, what in (("test_freq", "validates"), ("save_freq", "saves"))),
    *_optimizer("priming.sft.optim", "1e-5 for a pretrained model (s1), about 1e-3 for a tiny one from scratch"),
)

# Folders the run writes under: an existing folder, or a path where one can be created (nothing
# is created here). The value is what null means, where verl takes null.
FOLDERS: dict[str, str | None] = {
    "data_root": None,
    "tiny_model.folder": None,
    "trainer.default_local_dir": None,
    "trainer.rollout_data_dir": "no rollout dumps",
    "trainer.validation_data_dir": "no validation dumps",
}

# verl 0.9.1's advantage estimators that compare the answers to one prompt, and what each does with
# a group of one (verl/trainer/ppo/core_algos.py): none learns what it is meant to.
_RAW_REWARD = "so each advantage is the raw reward: REINFORCE without a baseline, not {name}"
GROUP_ESTIMATORS = {
    "grpo": "a group of one gets mean 0 and std 1 (core_algos.py 315), " + _RAW_REWARD,
    "grpo_vectorized": "a group of one gets mean 0 and std 1 (verl/utils/groupwise.py group_mean_std), " + _RAW_REWARD,
    "gdpo": "it is GRPO per reward key, and a group of one gets mean 0 and std 1 (core_algos.py 315), " + _RAW_REWARD,
    "gpg": "a group of one gets mean 0 (core_algos.py 817), " + _RAW_REWARD,
    "rloo": "the leave-one-out baseline of a group of one is 0 (core_algos.py 622), " + _RAW_REWARD,
    "opo": "the baseline of a group of one is 0 (core_algos.py 678), " + _RAW_REWARD,
    "reinforce_plus_plus_baseline": "the group mean of a group of one is 0 (core_algos.py 572), which leaves plain "
                                    "reinforce_plus_plus: ask for that",
    "optimal_token_baseline": "a group of one gets no baseline (core_algos.py 950), " + _RAW_REWARD,
    "tir_optimal_token_baseline": "a group of one gets no baseline (core_algos.py 1085), " + _RAW_REWARD,
    "rloo_vectorized": "a group of one gets advantage 0 (core_algos.py 864), so nothing is learned",
    "grpo_passk": "verl raises 'Pass@k requires at least 2 samples per group' at the first step (core_algos.py 518)",
}


def folder_problem(key: str, value) -> str | None:
    """Why `value` cannot be the folder `key` names, or None when it is one or can be created."""
    if value is None:
        return None if FOLDERS[key] else f"{key}=null: it must name a folder; set it to a folder path"
    path = absolute(value)
    if path.exists() and not path.is_dir():
        return f"{key}={value}: {path} is a file, not a folder; point {key} at a folder, or a path where one can be created"
    existing = next(parent for parent in (path, *path.parents) if parent.exists())
    if not existing.is_dir():
        return f"{key}={value}: no folder can be created there, {existing} is a file; point {key} elsewhere"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{key}={value}: {existing} is not writable; point {key} at a folder you can write to"
    return None


def group_size_problem(config: DictConfig) -> str | None:
    """A group estimator with one answer per prompt runs without a word and learns nothing it should."""
    estimator, n = config.algorithm.adv_estimator, config.actor_rollout_ref.rollout.n
    if n != 1 or estimator not in GROUP_ESTIMATORS:
        return None
    return (f"algorithm.adv_estimator={estimator} with actor_rollout_ref.rollout.n=1: {estimator} compares the answers "
            f"to one prompt, and {GROUP_ESTIMATORS[estimator].format(name=estimator)}; set actor_rollout_ref.rollout.n "
            "to 2 or more (the recipes use 4), or use an estimator for one answer per prompt "
            "(algorithm.adv_estimator=reinforce_plus_plus, or gae: PPO with a critic)")


def check_ranges(config: DictConfig) -> str:
    """Every value of RANGES and FOLDERS within its range, then the group size and the task and
    traces blocks' own validate(); CheckError naming each value out of range. Writes nothing."""
    problems, unusable = [], []
    for key in FOLDERS:
        value = OmegaConf.select(config, key, default=_ABSENT)
        if value is _ABSENT:
            continue
        path = None if value is None else absolute(value)
        if path is not None and any(folder in path.parents for folder in unusable):
            continue  # tiny_model.folder under a data_root that is a file: said once, for data_root
        if problem := folder_problem(key, value):
            problems.append(problem)
            if path is not None:
                unusable.append(path)
    for entry in RANGES:
        value = OmegaConf.select(config, entry.key, default=_ABSENT)
        if value is _ABSENT or (entry.when and not entry.when(config)):
            continue
        if not entry.accepts(value):
            problems.append(entry.problem(value))
    if not problems and (problem := group_size_problem(config)):
        problems.append(problem)
    if len(problems) == 1:
        raise CheckError(problems[0])
    if problems:
        raise CheckError("\n  - ".join(["values no run can use:", *problems]))
    task_config(config)  # data_gen's validate(): the task block, before any data is generated
    if config.get("priming") is not None:
        prime.traces_config(config)  # data_gen.traces' validate(): before any trace is written
    return "every value is within its range"


def schedule(config: DictConfig) -> str:
    """The plan's words for trainer.test_freq and save_freq, "never" included."""
    trainer = config.trainer
    test, save = int(trainer.test_freq), int(trainer.save_freq)
    if test > 0:
        validation = f"validation every {test}"
    elif trainer.get("val_before_train", True):
        validation = f"validation only before training (trainer.test_freq={test})"
    else:
        validation = f"no validation (trainer.test_freq={test})"
    keep = trainer.max_actor_ckpt_to_keep
    if save > 0:
        saving = f"checkpoint every {save} (keep {keep if keep is not None and keep > 0 else 'all'})"
    else:
        saving = f"no checkpoint, not even the last step (trainer.save_freq={save}): nothing to resume or evaluate"
    return f"{validation}, {saving}"

