"""Which attention kernel the actor, the reference and the critic use: flash-attention 2 when the
`flash_attn` package imports, PyTorch's `sdpa` when it does not, and what packing then costs.

verl 0.9.1 builds every model with `flash_attention_2` unless the model's `override_config` says
otherwise (verl/workers/config/model.py 185), `verl[vllm]` does not install flash-attn, and
transformers raises when the package is missing. So the launch picks the kernel (tinyzero's
`attention` key, `auto` by default) and writes it into verl's keys:
`actor_rollout_ref.model.override_config.attn_implementation` (actor and reference share it) and
`critic.model.override_config.attn_implementation`. A value already set in those verl keys wins.
The critic needs one more step, because verl hard-codes flash-attention 2 when it loads a value
model: see tinyzero/platforms/verl_0_9_1.py (_critic_with_config_attention).

Padding-free packing (`use_remove_padding`) stays right with sdpa: transformers 5 builds the packed
mask from the position ids (tests/test_attention.py checks log-probabilities through verl's own
FSDP engine, packed against padded). It is not cheap: verl hands a packed micro-batch over as one
row with `attention_mask=None` (verl/workers/engine/fsdp/transformer_impl.py 1256-1260), from which
transformers builds a boolean mask over the whole row (masking_utils.py 884-888 in transformers
5.9, 855-862 and 974-976 in 5.19), and sdpa with a mask attends densely, token against token of
the whole micro-batch, without its grouped-query path (integrations/sdpa_attention.py,
`use_gqa_in_sdpa`). flash-attention's varlen kernel attends within each sequence only. The dense
cost grows with the square of the token budget, so without flash-attn `auto` keeps packing (padded
batches would spend the linear layers on padding, and verl's dynamic budgets count real tokens, so
a padded micro-batch outgrows its budget) and lowers each packed pass's token budget to where
that attention adds at most DENSE_ATTENTION_SHARE of the linear layers' FLOPs. The plan states the
cost either way; benchmarks/gpu_check.py times the options on a GPU.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tinyzero.train.memory import ModelShape

# The cost functions import without a config library (benchmarks/gpu_check.py uses them with torch
# and transformers only): what comes from omegaconf, verl or tinyzero.recipe is imported where used.
if TYPE_CHECKING:
    from omegaconf import DictConfig

FLASH = "flash_attention_2"
CHOICES = ("auto", FLASH, "sdpa", "eager")
# flash-attn has no wheel on PyPI (its source only), and verl[vllm]'s torch 2.11 is built for CUDA 13.
INSTALL_FLASH_ATTN = ("flash-attn has no wheel on PyPI: `pip install flash-attn --no-build-isolation` compiles it "
                      "and needs the CUDA toolkit that torch was built with (README: Training, attention)")
# The share of the linear layers' FLOPs that dense attention over a packed micro-batch may add
# before `auto` lowers the token budget (a stated choice: gpu_check.py times it on a GPU).
DENSE_ATTENTION_SHARE = 0.25
BUDGET_STEP = 256  # lowered budgets are multiples of this


def dense_attention_share(shape: ModelShape, tokens: int) -> float:
    """Attention FLOPs over `tokens` attended densely (QK and AV: 4 x tokens x hidden size per token
    and layer) relative to the linear layers' (2 per weight per token)."""
    return 2 * tokens * shape.hidden_size * shape.num_layers / shape.matmul_params


def dense_budget(shape: ModelShape, sequence: int) -> int:
    """The largest budget, a multiple of BUDGET_STEP and at least one full sequence, whose dense
    attention stays within DENSE_ATTENTION_SHARE."""
    tokens = DENSE_ATTENTION_SHARE * shape.matmul_params / (2 * shape.hidden_size * shape.num_layers)
    return max(sequence, int(tokens) // BUDGET_STEP * BUDGET_STEP)


def _sections(config: DictConfig, with_critic: bool) -> list[tuple[str, str, DictConfig]]:
    """(verl key, who uses it, the section): the reference shares the actor's model section."""
    sections = [("actor_rollout_ref.model", "actor and reference", config.actor_rollout_ref.model)]
    if with_critic:
        sections.append(("critic.model", "critic", config.critic.model))
    return sections


def _packed_passes(config: DictConfig, with_critic: bool, dense: set[str]) -> dict:
    """The passes whose models attend densely (kernel in `dense`) over packed micro-batches."""
    from verl.trainer.ppo.utils import need_reference_policy

    from tinyzero.train.memory import micro_batches

    kernels = {key: section.override_config.attn_implementation for key, _, section in _sections(config, with_critic)}
    users = {"update": "actor_rollout_ref.model", "log_prob": "actor_rollout_ref.model", "critic": "critic.model"}
    if need_reference_policy(config):
        users["reference"] = "actor_rollout_ref.model"
    return {name: batch for name, batch in micro_batches(config).items()
            if name in users and kernels.get(users[name]) in dense and batch.packed}


def packing_cost(config: DictConfig, with_critic: bool, shape: ModelShape | None, lower: bool) -> str:
    """What dense attention over packed micro-batches costs; with `lower`, first lower the budgets
    over dense_budget(). Returns the plan's clause ('' when nothing is packed densely)."""
    from omegaconf import OmegaConf, open_dict

    from tinyzero.train.checks import max_sequence_length

    passes = _packed_passes(config, with_critic, {"sdpa", "eager"})
    if not passes:
        return ""
    largest = max(batch.tokens for batch in passes.values())
    if shape is None:
        return (f"; packed micro-batches of up to {largest} tokens attend densely without flash-attn (cost not "
                "estimated: the model's shape is unknown)")
    sequence = max_sequence_length(config)
    flash = f"flash-attn's per-sequence attention {dense_attention_share(shape, sequence) / 2:.0%}"
    if not lower:
        return (f"; without flash-attn each packed micro-batch attends densely: +{dense_attention_share(shape, largest):.0%} "
                f"on the linear layers' FLOPs at {largest} tokens ({flash}); attention=auto lowers the token budgets "
                f"to {dense_budget(shape, sequence)}")
    budget = dense_budget(shape, sequence)
    lowered = {batch.key: batch.tokens for batch in passes.values() if batch.dynamic and batch.tokens > budget}
    with open_dict(config):
        for key in lowered:
            OmegaConf.update(config, key, budget, force_add=True)
    kept = [batch for batch in passes.values() if not batch.dynamic and batch.tokens > budget]
    worst = max([budget] + [batch.tokens for batch in kept])
    changes = ", ".join(f"{key} {tokens} -> {budget}" for key, tokens in lowered.items())
    said = f"token budgets lowered ({changes})" if lowered else f"token budgets at most {budget} already"
    fixed = "".join(f"; {batch.key} packs up to {batch.tokens} tokens (not lowered: a count of sequences)"
                    for batch in kept)
    return (f"; without flash-attn each packed micro-batch attends densely, so {said}: +"
            f"{dense_attention_share(shape, worst):.0%} on the linear layers' FLOPs ({flash}; at {largest} tokens "
            f"+{dense_attention_share(shape, largest):.0%}){fixed}; attention=sdpa keeps the budgets")


def apply_attention(config: DictConfig, with_critic: bool, import_error: str | None = None,
                    shape: ModelShape | None = None) -> str:
    """Write the chosen kernel into verl's keys (and, for `auto` without flash-attn, the lowered
    token budgets); return the plan's line. `import_error`: why `flash_attn` does not import where
    the models run (tinyzero.train.cluster's probe), None when it does; `shape` is the model's, for
    the cost of dense attention."""
    from omegaconf import open_dict

    from tinyzero.recipe import CheckError

    choice = str(config.attention)
    if choice not in CHOICES:
        raise CheckError(f"attention={choice!r}: use one of {', '.join(CHOICES)}")
    automatic = choice == "auto"
    if automatic:
        choice = FLASH if import_error is None else "sdpa"
        why = "flash-attn imports" if import_error is None else f"flash-attn does not import; {INSTALL_FLASH_ATTN}"
        if import_error is not None and "No module named 'flash_attn'" not in import_error:
            why += f"; it is installed but fails: {import_error}"
    elif choice == FLASH and import_error is not None:
        raise CheckError(
            f"attention={FLASH} but flash-attn does not import here ({import_error}). {INSTALL_FLASH_ATTN}; "
            "or set attention=auto (sdpa without flash-attn)."
        )
    else:
        why = f"attention={choice}"
    chosen = []
    for key, users, section in _sections(config, with_critic):
        with open_dict(section):
            if section.override_config is None:
                section.override_config = {}
            explicit = section.override_config.get("attn_implementation")
            if explicit is None:
                section.override_config.attn_implementation = choice
            elif explicit == FLASH and import_error is not None:
                raise CheckError(
                    f"{key}.override_config.attn_implementation={FLASH} but flash-attn does not import here "
                    f"({import_error}). {INSTALL_FLASH_ATTN}; or drop that override."
                )
        chosen.append(f"{users} {section.override_config.attn_implementation}")
    cost = packing_cost(config, with_critic, shape, lower=automatic)
    return f"{', '.join(chosen)} ({why}){cost}"
