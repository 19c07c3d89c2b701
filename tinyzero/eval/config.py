"""The evaluation config: the command's whole interface, one home and one default per knob.

A structured config (dataclasses registered with Hydra's ConfigStore): Hydra rejects unknown
keys and values of the wrong type itself; `validate` checks what types cannot say, before any
model is loaded. Each field's `help` is what `--help` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from typing import Optional

from omegaconf import MISSING, OmegaConf

from tinyzero.templates import PROMPT_STYLES


class Backend(str, Enum):
    auto = "auto"  # vllm when vLLM is installed and a GPU is visible, else hf
    vllm = "vllm"
    hf = "hf"


def _help(text: str, **kwargs):
    return field(metadata={"help": text}, **kwargs)


@dataclass
class BudgetConfig:
    thinking_tokens: list[int] = _help(
        "thinking budgets to sweep, e.g. [256,512,1024]; empty: no forcing", default_factory=list
    )
    num_extend: int = _help(
        "times an early end of thinking is suppressed by appending `wait` (s1 went up to 6)", default=0
    )
    wait: str = _help("what is appended when an early end of thinking is suppressed (s1's choice)", default="Wait")
    answer_tokens: int = _help(
        "tokens left for the answer once thinking ends (answers are a few dozen tokens)", default=128
    )


@dataclass
class VLLMConfig:
    gpu_memory_utilization: float = _help("share of GPU memory vLLM may take", default=0.85)
    tensor_parallel_size: int = _help("GPUs per model (1 fits up to 7B in bf16 on 80 GB)", default=1)
    max_model_len: Optional[int] = _help("context length; null: the model's own", default=None)


@dataclass
class EvalConfig:
    model: str = _help(
        "Hugging Face folder, hub name, or verl checkpoint (global_step_N or its actor/)", default=MISSING
    )
    data: Optional[str] = _help("parquet file in tinyzero's schema (null: the test split of `recipe`)", default=None)
    recipe: Optional[str] = _help(
        "use the test split training generated for this recipe (e.g. countdown_3b; run from where you trained)",
        default=None,
    )
    output_dir: str = _help("where metrics.json, samples.jsonl, summary.md and plots go", default=MISSING)
    backend: Backend = _help("auto | vllm | hf (transformers)", default=Backend.auto)
    n: int = _help("samples per problem (pass@k needs n >= k)", default=1)
    temperature: float = _help("0: greedy; R1-Zero style sampling uses 0.6-1.0", default=0.0)
    top_p: float = _help("nucleus sampling mass (1.0: off)", default=1.0)
    max_new_tokens: int = _help("response length cap without budgets (the training response length)", default=1024)
    limit: Optional[int] = _help("evaluate only the first N problems; null: all", default=None)
    seed: int = _help("sampling seed", default=0)
    pass_k: Optional[list[int]] = _help("k values for pass@k; null: 1, 2, 4, ... up to n", default=None)
    prompt_style: Optional[str] = _help(
        "base | instruct | compact; null: each row's extra_info.prompt_style (as training)", default=None
    )
    batch_size: int = _help("prompts per forward pass on the hf backend (vllm takes all at once)", default=32)
    dtype: str = _help("auto (bf16 on GPU, fp32 on CPU) | bfloat16 | float16 | float32", default="auto")
    merged_model_dir: Optional[str] = _help(
        "where a verl checkpoint is merged to (once); null: <checkpoint>/actor/merged_hf", default=None
    )
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    vllm: VLLMConfig = field(default_factory=VLLMConfig)


DTYPES = ("auto", "bfloat16", "float16", "float32")
# vLLM rejects hotter sampling per request, after the model has loaded (vllm/sampling_params.py
# `_verify_args`: "temperature must be in [0, 2]"); training checks its rollout keys the same way.
MAX_VLLM_TEMPERATURE = 2.0


def _uses_vllm(backend) -> bool:
    """backend=vllm, or auto where it would pick vLLM (installed, a GPU visible)."""
    from tinyzero.eval.backends import cuda_available, vllm_available

    backend = Backend(backend)
    return backend == Backend.vllm or (backend == Backend.auto and vllm_available() and cuda_available())


class EvalConfigError(ValueError):
    """A bad option or input: the message names the value and what to do instead."""


def validate(cfg) -> None:
    """Check what Hydra's types cannot, before anything expensive. `cfg` is an OmegaConf config."""
    errors = []
    # Hydra leaves a required key unset (???) until it is read, which would be after the data.
    if OmegaConf.is_missing(cfg, "model"):
        errors.append("model is required: model=PATH (Hugging Face folder, hub name or verl checkpoint)")
    if OmegaConf.is_missing(cfg, "output_dir"):
        errors.append("output_dir is required: output_dir=DIR (where metrics.json and the rest go)")
    if (cfg.data is None) == (cfg.recipe is None):
        errors.append(
            f"data={cfg.data!r}, recipe={cfg.recipe!r}: give exactly one, a parquet file (data=PATH) or "
            "the training recipe whose test split to use (recipe=countdown_3b)"
        )
    if cfg.n < 1:
        errors.append(f"n={cfg.n}: need at least 1 sample per problem")
    if cfg.temperature < 0:
        errors.append(f"temperature={cfg.temperature}: must be >= 0 (0 is greedy)")
    if cfg.temperature > MAX_VLLM_TEMPERATURE and _uses_vllm(cfg.backend):
        errors.append(
            f"temperature={cfg.temperature} with backend={Backend(cfg.backend).value}: vLLM accepts at most "
            f"{MAX_VLLM_TEMPERATURE:g} and would reject it only after loading the model; use temperature<="
            f"{MAX_VLLM_TEMPERATURE:g}, or backend=hf"
        )
    if cfg.n > 1 and cfg.temperature == 0:
        errors.append(
            f"n={cfg.n} with temperature=0 gives {cfg.n} identical greedy samples: "
            "set temperature>0 (e.g. temperature=0.6) or n=1"
        )
    if not 0 < cfg.top_p <= 1:
        errors.append(f"top_p={cfg.top_p}: must be in (0, 1]")
    if cfg.max_new_tokens < 1:
        errors.append(f"max_new_tokens={cfg.max_new_tokens}: must be at least 1")
    if cfg.limit is not None and cfg.limit < 1:
        errors.append(f"limit={cfg.limit}: must be at least 1, or null for all problems")
    if cfg.batch_size < 1:
        errors.append(f"batch_size={cfg.batch_size}: must be at least 1")
    if cfg.dtype not in DTYPES:
        errors.append(f"dtype={cfg.dtype!r}: use one of {', '.join(DTYPES)}")
    if cfg.prompt_style is not None and cfg.prompt_style not in PROMPT_STYLES:
        errors.append(f"prompt_style={cfg.prompt_style!r}: use {', '.join(PROMPT_STYLES)}, or null (from the data)")
    if cfg.pass_k is not None:
        if not cfg.pass_k:
            errors.append("pass_k=[]: give at least one k, or null for 1, 2, 4, ... up to n")
        bad = [k for k in cfg.pass_k if not 1 <= k <= cfg.n]
        if bad:
            errors.append(
                f"pass_k={list(cfg.pass_k)}: k must be between 1 and n={cfg.n} (k={bad[0]} is not); "
                f"raise n (with temperature>0) or drop that k"
            )
    budget = cfg.budget
    low = [b for b in budget.thinking_tokens if b < 1]
    if low:
        errors.append(
            f"budget.thinking_tokens={list(budget.thinking_tokens)}: every budget must be at least 1 token "
            f"({low[0]} is not); use [] for no forcing"
        )
    if len(set(budget.thinking_tokens)) != len(budget.thinking_tokens):
        errors.append(f"budget.thinking_tokens={list(budget.thinking_tokens)}: budgets repeat")
    if budget.num_extend < 0:
        errors.append(f"budget.num_extend={budget.num_extend}: must be >= 0 (0: never suppress the end of thinking)")
    if budget.num_extend > 0 and not budget.wait:
        errors.append("budget.wait='': appending nothing cannot extend thinking; use e.g. budget.wait=Wait")
    if budget.answer_tokens < 1:
        errors.append(f"budget.answer_tokens={budget.answer_tokens}: must be at least 1")
    if cfg.vllm.tensor_parallel_size < 1:
        errors.append(f"vllm.tensor_parallel_size={cfg.vllm.tensor_parallel_size}: must be at least 1")
    if not 0 < cfg.vllm.gpu_memory_utilization <= 1:
        errors.append(f"vllm.gpu_memory_utilization={cfg.vllm.gpu_memory_utilization}: must be in (0, 1]")
    if errors:
        raise EvalConfigError("bad evaluation options:\n  " + "\n  ".join(errors))


def describe_options(config_class=EvalConfig, prefix: str = "") -> list[tuple[str, str, str]]:
    """(key, default, help) for every option, nested sections included: the `--help` table."""
    rows = []
    for f in fields(config_class):
        default = f.default_factory() if callable(f.default_factory) else f.default
        if is_dataclass(default):
            rows += describe_options(type(default), prefix + f.name + ".")
            continue
        shown = "???" if default is MISSING else (default.value if isinstance(default, Enum) else default)
        rows.append((prefix + f.name, "null" if shown is None else str(shown), f.metadata.get("help", "")))
    return rows
