"""The fixes verl 0.9.1 offers no extension point for: monkeypatches, all of them here, installed
by tinyzero.platforms.verl_plugin only on exactly verl 0.9.1 (each cites the verl line it works
around; check them when verl moves). The CPU ones are installed only where verl chooses the CPU
platform; on a GPU machine only `_trl_without_value_head` and `_critic_with_config_attention` are.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import re
from importlib import metadata

VERL_VERSION = "0.9.1"
CPU_BACKEND = "cpu:gloo"
# trl 1.13 dropped its PPO value-head model (trl.experimental.ppo); 1.10 and 1.12 still have it.
TRL_WITHOUT_VALUE_HEAD = (1, 13)
FLASH_ATTENTION = "flash_attention_2"

logger = logging.getLogger(__name__)


def install(cpu_platform: bool) -> bool:
    """Install the fixes; False (and a warning) on another verl version, where they may not fit."""
    version = metadata.version("verl")
    if version != VERL_VERSION:
        logger.warning(
            "tinyzero's fixes are written for verl %s, found %s: not installed; training may fail.",
            VERL_VERSION,
            version,
        )
        return False
    _trl_without_value_head()
    if cpu_platform:
        _process_group_on_gloo()
        _reference_offload_unpinned()
    _critic_with_config_attention()  # imports verl.utils.model: after the fixes its imports read
    return True


def _trl_without_value_head() -> None:
    """verl/models/transformers/monkey_patch.py 352-356 imports trl's AutoModelForCausalLMWithValueHead
    whenever trl is importable, to patch its state_dict, and raises ImportError on trl >= 1.13,
    which no longer has it: every FSDP model build fails in an environment with a recent trl
    (tinyzero's `test` extra brings one). verl asks `is_trl_available()` (utils/import_utils.py 64)
    there and in utils/model.py 654, both for that value head only, and both modules import the
    name after verl's plugins load: answer False when trl lacks the value head."""
    from verl.utils import import_utils

    trl = import_utils.is_trl_available

    @functools.wraps(trl)
    def is_trl_available() -> bool:
        try:
            version = metadata.version("trl")
        except metadata.PackageNotFoundError:
            return trl()
        leading = re.match(r"\d+(?:\.\d+)*", version)
        release = tuple(int(part) for part in leading.group().split(".")) if leading else ()
        return trl() and release < TRL_WITHOUT_VALUE_HEAD

    import_utils.is_trl_available = is_trl_available


def _critic_with_config_attention() -> None:
    """verl/utils/model.py 649 and 674 (`load_valuehead_model`) pass
    `attn_implementation="flash_attention_2"` to `from_pretrained`, and transformers lets that
    argument override the config, so PPO's critic needs flash-attn even with
    `critic.model.override_config.attn_implementation=sdpa`; verl offers no key for this. The
    replacement loads a model with a token-classification head (Qwen2 and the other common
    decoders) as verl's first branch does, with the config's attention, and hands everything else
    (and a config asking for flash-attention 2) to verl's own function. The FSDP engine looks the
    function up in verl.utils.model when it builds the critic, after verl's plugins load."""
    import verl.utils.model as verl_model

    original = verl_model.load_valuehead_model
    if hasattr(original, "tinyzero_original"):
        return

    @functools.wraps(original)
    def load_valuehead_model(local_path, torch_dtype, model_config, trust_remote_code):
        from transformers import AutoModelForTokenClassification
        from transformers.models.auto.modeling_auto import MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING

        attention = getattr(model_config, "_attn_implementation", None) or FLASH_ATTENTION
        if attention == FLASH_ATTENTION or type(model_config) not in MODEL_FOR_TOKEN_CLASSIFICATION_MAPPING:
            return original(local_path, torch_dtype, model_config, trust_remote_code)
        return AutoModelForTokenClassification.from_pretrained(
            pretrained_model_name_or_path=local_path,
            torch_dtype=torch_dtype,
            config=model_config,
            attn_implementation=attention,
            trust_remote_code=trust_remote_code,
        )

    load_valuehead_model.tinyzero_original = original
    verl_model.load_valuehead_model = load_valuehead_model


def _process_group_on_gloo() -> None:
    """verl/utils/distributed.py 63 and 89 build the backend f"cpu:gloo,{device}:{backend}", which on
    the CPU platform reads "cpu:gloo,cpu:gloo" and torch rejects ("Duplicate device type cpu").
    Callers import these names at their first import (workers/engine_workers.py 38,
    trainer/sft_trainer.py 453), after verl's plugins load, so replacing them here reaches them."""
    from verl.utils import distributed

    for_ray = distributed.initialize_global_process_group_ray

    @functools.wraps(for_ray)
    def initialize_global_process_group_ray(timeout_second=None, backend=None):
        return for_ray(timeout_second=timeout_second, backend=backend or CPU_BACKEND)

    @functools.wraps(distributed.initialize_global_process_group)
    def initialize_global_process_group(timeout_second=36000):
        # verl's version: init from the environment (torchrun), then set_device, a no-op on CPU.
        for_ray(timeout_second=timeout_second, backend=CPU_BACKEND)
        return int(os.environ["LOCAL_RANK"]), int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])

    distributed.initialize_global_process_group_ray = initialize_global_process_group_ray
    distributed.initialize_global_process_group = initialize_global_process_group


def _reference_offload_unpinned() -> None:
    """workers/engine/fsdp/transformer_impl.py 462 gives every forward-only FSDP2 model (the reference
    policy) `CPUOffloadPolicy(pin_memory=True)`; pinning needs an accelerator ("Cannot access
    accelerator device when none is available"). transformer_impl takes the class from
    verl.utils.fsdp_utils (line 43) when it is first imported, after verl's plugins load."""
    from verl.utils import fsdp_utils

    pinned = fsdp_utils.CPUOffloadPolicy
    if pinned is None:  # torch without FSDP2: verl asserts on it itself
        return

    @dataclasses.dataclass
    class CPUOffloadPolicy(pinned):
        """torch's CPUOffloadPolicy that never pins: on a CPU there is no device to pin for."""

        def __post_init__(self) -> None:
            self.pin_memory = False

    fsdp_utils.CPUOffloadPolicy = CPUOffloadPolicy
