"""The one monkeypatch of verl: the critic (PPO's value model) loads with the attention kernel its
config names, instead of always flash-attention 2.

verl 0.9.1's `verl.utils.model.load_valuehead_model` (verl/utils/model.py 649 and 674) passes
`attn_implementation="flash_attention_2"` to `from_pretrained`, and transformers lets that
argument override the config (transformers/modeling_utils.py, `if "attn_implementation" in
kwargs`), so `critic.model.override_config.attn_implementation=sdpa` alone still fails without
flash-attn. verl offers no key for this.

This module is a `verl.plugins` entry point (pyproject.toml): verl imports it in every process that
imports verl (verl/__init__.py 55-75), the critic's Ray worker included, which is the process that
loads the model. The replacement loads a model that has a token-classification head (Qwen2 and
the other common decoders) exactly as verl's first branch does, with the config's attention, and
hands everything else to verl's own function. It changes nothing when the config asks for
flash-attention 2, and nothing at all on another verl version.
"""

from __future__ import annotations

import logging

import verl

VERL_VERSION = "0.9.1"  # the version whose verl/utils/model.py 641-681 this replaces
FLASH = "flash_attention_2"

log = logging.getLogger(__name__)


def load_value_model_with_config_attention(original):
    """verl's `load_valuehead_model`, honouring `model_config._attn_implementation`."""

    def load_valuehead_model(local_path, torch_dtype, model_config, trust_remote_code):
        from transformers import AutoModelForTokenClassification
        from transformers.models.auto.modeling_auto import MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING

        attention = getattr(model_config, "_attn_implementation", None) or FLASH
        if attention == FLASH or type(model_config) not in MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING:
            return original(local_path, torch_dtype, model_config, trust_remote_code)
        return AutoModelForTokenClassification.from_pretrained(
            pretrained_model_name_or_path=local_path,
            torch_dtype=torch_dtype,
            config=model_config,
            attn_implementation=attention,
            trust_remote_code=trust_remote_code,
        )

    load_valuehead_model.tinyzero_original = original
    return load_valuehead_model


def apply() -> bool:
    """Install the replacement once; True when it is (or already was) installed."""
    if verl.__version__ != VERL_VERSION:
        log.warning("tinyzero: critic attention patch skipped: written for verl %s, found %s", VERL_VERSION, verl.__version__)
        return False
    import verl.utils.model as verl_model

    if not hasattr(verl_model.load_valuehead_model, "tinyzero_original"):
        verl_model.load_valuehead_model = load_value_model_with_config_attention(verl_model.load_valuehead_model)
    return True


apply()
