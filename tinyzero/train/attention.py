"""Which attention kernel the actor, the reference and the critic use: flash-attention 2 when the
`flash_attn` package imports, PyTorch's `sdpa` when it does not.

verl 0.9.1 builds every model with `flash_attention_2` unless the model's `override_config` says
otherwise (verl/workers/config/model.py 185), `verl[vllm]` does not install flash-attn, and
transformers raises when the package is missing. So the launch picks the kernel (tinyzero's
`attention` key, `auto` by default) and writes it into verl's keys:
`actor_rollout_ref.model.override_config.attn_implementation` (actor and reference share it) and
`critic.model.override_config.attn_implementation`. A value already set in those verl keys wins.
The critic needs one more step, because verl hard-codes flash-attention 2 when it loads a value
model: see tinyzero/platforms/verl_0_9_1.py (_critic_with_config_attention).

Padding-free packing (`use_remove_padding`) stays on with sdpa: transformers 5 builds the packed
mask from the position ids (tests/test_attention.py checks log-probabilities through verl's own
FSDP engine, packed against padded).
"""

from __future__ import annotations

from omegaconf import DictConfig, open_dict

from tinyzero.recipe import CheckError

FLASH = "flash_attention_2"
CHOICES = ("auto", FLASH, "sdpa", "eager")
INSTALL_FLASH_ATTN = "`pip install flash-attn --no-build-isolation` (README: Training, attention)"


def flash_attn_import_error() -> str | None:
    """None when `flash_attn` imports here, else why not (missing, or built for another torch/CUDA)."""
    try:
        import flash_attn  # noqa: F401
    except Exception as error:  # ImportError, or OSError from a wheel built for another CUDA
        return f"{type(error).__name__}: {error}"
    return None


def _sections(config: DictConfig, with_critic: bool) -> list[tuple[str, str, DictConfig]]:
    """(verl key, who uses it, the section): the reference shares the actor's model section."""
    sections = [("actor_rollout_ref.model", "actor and reference", config.actor_rollout_ref.model)]
    if with_critic:
        sections.append(("critic.model", "critic", config.critic.model))
    return sections


def apply_attention(config: DictConfig, with_critic: bool, import_error: str | None = None) -> str:
    """Write the chosen kernel into verl's keys; return the plan's line. `import_error` is
    flash_attn_import_error() (a parameter so tests can say either)."""
    choice = str(config.attention)
    if choice not in CHOICES:
        raise CheckError(f"attention={choice!r}: use one of {', '.join(CHOICES)}")
    if choice == "auto":
        choice = FLASH if import_error is None else "sdpa"
        why = "flash-attn imports" if import_error is None else f"flash-attn does not import; for speed: {INSTALL_FLASH_ATTN}"
        if import_error is not None and "No module named 'flash_attn'" not in import_error:
            why += f"; it is installed but fails: {import_error}"
    elif choice == FLASH and import_error is not None:
        raise CheckError(
            f"attention={FLASH} but flash-attn does not import here ({import_error}). Install it: "
            f"{INSTALL_FLASH_ATTN}; or set attention=auto (sdpa without flash-attn)."
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
                    f"({import_error}). Install it ({INSTALL_FLASH_ATTN}) or drop that override."
                )
        chosen.append(f"{users} {section.override_config.attn_implementation}")
    return f"{', '.join(chosen)} ({why})"
