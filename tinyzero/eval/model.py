"""Which model to load: a Hugging Face folder, a hub name, or a verl checkpoint (merged once).

verl's FSDP trainer saves `checkpoints/.../global_step_N/actor/` holding one
`model_world_size_W_rank_R.pt` shard per rank, an `fsdp_config.json` (with the world size) and a
`huggingface/` folder with the config and tokenizer. verl's model merger turns that into a
Hugging Face folder; we run it once, in a subprocess, into a temporary folder renamed when done,
so an interrupted merge never passes for a finished one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from tinyzero.eval.config import EvalConfigError
from tinyzero.hub import looks_like_hub_name

MERGED_DIR_NAME = "merged_hf"


def find_actor_dir(path: Path) -> Path | None:
    """The FSDP actor folder if `path` is one (or a global_step_N holding one), else None."""
    for candidate in (path, path / "actor"):
        if (candidate / "fsdp_config.json").is_file() and any(candidate.glob("model_world_size_*_rank_0.pt")):
            return candidate
    return None


def merge_command(actor_dir: Path, target_dir: Path) -> list[str]:
    """verl's documented command that writes a Hugging Face folder from FSDP shards."""
    return [
        sys.executable, "-m", "verl.model_merger", "merge",
        "--backend", "fsdp",
        "--local_dir", str(actor_dir),
        "--target_dir", str(target_dir),
    ]  # fmt: skip


def is_hf_folder(path: Path) -> bool:
    return (path / "config.json").is_file() and any(
        (path / name).exists() for name in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
    )


def resolve_model(model: str, merged_model_dir: str | None = None) -> str:
    """A path or hub name transformers and vLLM can load; merges a verl checkpoint if needed."""
    path = Path(model).expanduser()
    if not path.exists():
        if looks_like_hub_name(model):
            return model  # loaded from the hub (or its local cache) by the backend
        raise EvalConfigError(
            f"model={model!r}: no such folder; give a Hugging Face folder, a hub name like "
            f"Qwen/Qwen2.5-3B, or a verl checkpoint folder (.../global_step_N/actor)"
        )
    actor_dir = find_actor_dir(path)
    if actor_dir is not None:
        target = Path(merged_model_dir).expanduser() if merged_model_dir else actor_dir / MERGED_DIR_NAME
        return str(merge_checkpoint(actor_dir, target))
    if is_hf_folder(path):
        return str(path)
    raise EvalConfigError(
        f"model={model!r} is neither a Hugging Face folder (config.json and weights) nor a verl FSDP "
        f"checkpoint (fsdp_config.json and model_world_size_*_rank_0.pt, in global_step_N/actor)"
    )


def merge_checkpoint(actor_dir: Path, target: Path) -> Path:
    """Merge once: an existing merged folder is reused."""
    if is_hf_folder(target):
        return target
    if not (actor_dir / "huggingface" / "config.json").is_file():
        raise EvalConfigError(
            f"verl checkpoint {str(actor_dir)!r} has no huggingface/config.json: verl saves the model "
            "config there beside the shards and its merger needs it; copy the base model's config.json "
            "and tokenizer files into that folder"
        )
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    print(f"merging verl checkpoint {actor_dir} -> {target} (once)", file=sys.stderr)
    result = subprocess.run(merge_command(actor_dir, partial), capture_output=True, text=True)
    if result.returncode != 0 or not is_hf_folder(partial):
        shutil.rmtree(partial, ignore_errors=True)
        tail = (result.stderr or result.stdout)[-2000:]
        raise RuntimeError(f"verl's model merger failed on {actor_dir} (exit {result.returncode}):\n{tail}")
    if target.exists():  # a merge raced us to it, or a broken earlier attempt: keep the fresh one
        shutil.rmtree(target)
    os.replace(partial, target)
    return target
