"""Which model eval loads: Hugging Face folder, hub name, or verl checkpoint (detection, command).

The real merge of a tiny FSDP checkpoint by verl's merger runs in test_eval_cli.py, end to end.
"""

from __future__ import annotations

import json
import sys

import pytest

from tinyzero.eval.config import EvalConfigError
from tinyzero.eval.model import find_actor_dir, merge_command, resolve_model


def fake_actor(folder):
    """The files that identify a verl FSDP actor checkpoint (contents irrelevant to detection)."""
    folder.mkdir(parents=True)
    (folder / "fsdp_config.json").write_text(json.dumps({"FSDP_version": 1, "world_size": 2}))
    for rank in range(2):
        (folder / f"model_world_size_2_rank_{rank}.pt").write_bytes(b"")
    (folder / "huggingface").mkdir()
    return folder


def test_detects_actor_folder_from_step_or_actor(tmp_path):
    actor = fake_actor(tmp_path / "global_step_40" / "actor")
    assert find_actor_dir(actor) == actor
    assert find_actor_dir(tmp_path / "global_step_40") == actor
    assert find_actor_dir(tmp_path) is None


def test_merge_command_is_verls_documented_one(tmp_path):
    command = merge_command(tmp_path / "actor", tmp_path / "out")
    assert command == [
        sys.executable, "-m", "verl.model_merger", "merge", "--backend", "fsdp",
        "--local_dir", str(tmp_path / "actor"), "--target_dir", str(tmp_path / "out"),
    ]  # fmt: skip


def test_hf_folder_is_used_as_is(tiny_model_dir):
    assert resolve_model(str(tiny_model_dir)) == str(tiny_model_dir)


def test_hub_names_pass_through_missing_paths_fail(tmp_path):
    assert resolve_model("Qwen/Qwen2.5-3B") == "Qwen/Qwen2.5-3B"
    with pytest.raises(EvalConfigError, match="no such folder"):
        resolve_model(str(tmp_path / "checkpoints" / "global_step_5" / "actor"))


def test_folder_that_is_neither_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(EvalConfigError, match="neither a Hugging Face folder"):
        resolve_model(str(tmp_path))


def test_checkpoint_without_hf_config_is_refused_before_merging(tmp_path):
    actor = fake_actor(tmp_path / "global_step_1" / "actor")
    with pytest.raises(EvalConfigError, match="huggingface/config.json"):
        resolve_model(str(actor))
    assert not (actor / "merged_hf").exists()
