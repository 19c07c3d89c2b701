"""`python -m tinyzero.eval` end to end on the tiny model (transformers backend), as a user runs it:
the files and their fields, a verl checkpoint merged by verl's own merger, and bad input refused
before any generation."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest


def write_problems(path, rows):
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    """data_gen's Countdown test split, base prompts."""
    from data_gen import TASKS, write_dataset

    out = tmp_path_factory.mktemp("countdown")
    return write_dataset(TASKS["countdown"](train_size=2, test_size=4, seed=0), out, workers=1)["test"]


@pytest.fixture(scope="module")
def multiply_file(tmp_path_factory):
    """data_gen's multiplication test split, instruct prompts (the model's chat template applies)."""
    from data_gen import TASKS, write_dataset

    out = tmp_path_factory.mktemp("multiply")
    config = TASKS["multiply"](train_size=2, test_size=3, seed=0, digits_a=2, digits_b=2, prompt_style="instruct")
    return write_dataset(config, out, workers=1)["test"]


def run_eval(*args, timeout=240, env=None):
    return subprocess.run(
        [sys.executable, "-m", "tinyzero.eval", *map(str, args)], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def test_help_lists_every_option():
    result = run_eval("--help")
    assert result.returncode == 0, result.stderr
    keys = ["model=???", "data=null", "recipe=null", "output_dir=???", "backend=auto", "n=1", "pass_k=null"]
    keys += ["limit=null", "budget.thinking_tokens=[]", "budget.num_extend=0", "budget.wait=Wait", "seed=0"]
    for key in keys:
        assert key in result.stdout


def test_end_to_end_with_budget_forcing_and_sampling(tiny_model_dir, data_file, tmp_path):
    out = tmp_path / "eval"
    result = run_eval(
        f"model={tiny_model_dir}", f"data={data_file}", f"output_dir={out}", "backend=hf",
        "n=2", "temperature=1.0", "budget.thinking_tokens=[4,12]", "budget.num_extend=1", "budget.answer_tokens=6",
        env={"TINYZERO_PROGRESS_SECONDS": "0"},  # a progress line at every batch, however short the run
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "budget 12: thinking, segment 1, sequences: 8 / 8 (100%)" in result.stderr  # the progress lines
    assert sorted(p.name for p in out.iterdir()) == [
        "budget_curve.png", "metrics.json", "pass_at_k.png", "samples.jsonl", "summary.md",
    ]  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["backend"] == "hf" and metrics["problems"] == 4 and metrics["samples_per_problem"] == 2
    assert set(metrics["pass_at_k"]) == {"1", "2"}
    assert 0 <= metrics["accuracy"] <= metrics["pass_at_k"]["2"] <= 1
    assert 0 <= metrics["format_rate"] <= 1 and metrics["mean_response_tokens"] > 0
    assert [p["thinking_tokens"] for p in metrics["budget_curve"]] == [4, 12]
    for point in metrics["budget_curve"]:
        assert set(point) == {"thinking_tokens", "accuracy", "mean_thinking_tokens"}
        assert point["mean_thinking_tokens"] <= point["thinking_tokens"]
    assert metrics["control"] == 1.0
    assert metrics["performance"] == max(p["accuracy"] for p in metrics["budget_curve"])
    assert "scaling" in metrics and metrics["main_budget"] == 12
    assert set(metrics["by_difficulty"]) <= {"3 numbers", "4 numbers"}
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 2 * 4 * 2  # budgets x problems x n
    for s in samples:
        assert s["thinking_tokens"] <= s["budget"]
        assert s["waits"] <= 1
        assert {"problem", "response", "score", "acc", "response_tokens", "ground_truth", "prompt"} <= set(s)
    # Base prompts are given to the model exactly as stored.
    rows = pq.read_table(data_file).to_pylist()
    assert {s["problem"]: s["prompt"] for s in samples} == {
        i: row["prompt"][0]["content"] for i, row in enumerate(rows)
    }
    for png in ("pass_at_k.png", "budget_curve.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = (out / "summary.md").read_text()
    assert "## Budget forcing" in summary and "pass@k" in summary


def build_fsdp_checkpoint(hf_dir, step_dir):
    """A verl FSDP actor checkpoint with one rank, as verl lays it out: the rank's state dict,
    fsdp_config.json, and the Hugging Face config and tokenizer in huggingface/."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    actor = step_dir / "actor"
    (actor / "huggingface").mkdir(parents=True)
    model = AutoModelForCausalLM.from_pretrained(hf_dir)
    torch.save(model.state_dict(), actor / "model_world_size_1_rank_0.pt")
    (actor / "fsdp_config.json").write_text(json.dumps({"FSDP_version": 1, "world_size": 1}))
    model.config.save_pretrained(actor / "huggingface")
    model.generation_config.save_pretrained(actor / "huggingface")
    AutoTokenizer.from_pretrained(hf_dir).save_pretrained(actor / "huggingface")
    return actor


def test_verl_checkpoint_is_merged_once_then_evaluated(tiny_model_dir, multiply_file, tmp_path):
    from tinyzero.eval.model import resolve_model

    step_dir = tmp_path / "checkpoints" / "global_step_3"
    actor = build_fsdp_checkpoint(tiny_model_dir, step_dir)
    out = tmp_path / "eval"
    result = run_eval(f"model={step_dir}", f"data={multiply_file}", f"output_dir={out}", "limit=2", "max_new_tokens=8")
    assert result.returncode == 0, result.stderr[-3000:]
    merged = actor / "merged_hf"
    assert (merged / "config.json").is_file() and (merged / "model.safetensors").is_file()
    assert not list(actor.glob("merged_hf.partial-*"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model_path"] == str(merged) and metrics["problems"] == 2
    assert "budget_curve" not in metrics and not (out / "budget_curve.png").exists()
    assert set(metrics["by_difficulty"]) == {"2x2 digits"}
    # Instruct prompts went through the model's chat template (ChatML for the tiny model).
    sample = json.loads((out / "samples.jsonl").read_text().splitlines()[0])
    assert sample["prompt"].startswith("<|im_start|>system\n") and sample["prompt"].endswith("<|im_start|>assistant\n")
    # Cached: resolving again reuses the merged folder without running the merger.
    stamp = (merged / "model.safetensors").stat().st_mtime_ns
    assert resolve_model(str(step_dir)) == str(merged)
    assert (merged / "model.safetensors").stat().st_mtime_ns == stamp


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["budget.thinking_tokens=[0,256]"], "every budget must be at least 1 token"),
        (["pass_k=[1,4]", "n=2", "temperature=0.7"], "k must be between 1 and n=2"),
        (["budget.num_extend=-1"], "budget.num_extend=-1"),
        (["n=4"], "identical greedy samples"),
        (["temperature=2.5", "backend=vllm"], "vLLM accepts at most 2"),  # vLLM would reject it after loading
        (["data=/nonexistent/test.parquet"], "no such file"),
        (["model=/nonexistent/checkpoints/global_step_1/actor"], "no such folder"),
        (["budget.thinkng_tokens=[4]"], "thinkng_tokens"),  # a typo: Hydra's struct check
        (["n=two"], "n=two"),
    ],
)
def test_bad_input_fails_before_generation(tiny_model_dir, data_file, tmp_path, options, message):
    out = tmp_path / "eval"
    defaults = {"model": tiny_model_dir, "data": data_file, "output_dir": out}
    overridden = {o.split("=", 1)[0] for o in options}
    args = [f"{k}={v}" for k, v in defaults.items() if k not in overridden] + options
    result = run_eval(*args, timeout=60)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout
    assert "generating" not in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()  # not even an empty output_dir


@pytest.mark.parametrize("model, message", [
    ("/nonexistent/model", "model='/nonexistent/model': no such folder"),
    ("/nonexistent/checkpoints/global_step_1/actor", "no such folder"),
])
def test_a_refused_run_leaves_no_output_dir(data_file, tmp_path, model, message):
    from tinyzero.eval.app import run_eval as run_in_process
    from tinyzero.eval.config import EvalConfig, EvalConfigError

    out = tmp_path / "eval" / "step200"
    with pytest.raises(EvalConfigError, match=re.escape(message)):
        run_in_process(EvalConfig(model=model, data=str(data_file), output_dir=str(out)))
    assert not (tmp_path / "eval").exists()


@pytest.mark.parametrize("output_dir, message", [
    ("/proc/tinyzero-eval", "output_dir='/proc/tinyzero-eval' cannot be created in '/proc'"),
    ("{data}/eval", "cannot be created: '{data}' is a file: give a folder"),
])
def test_an_output_dir_that_cannot_be_written_is_refused_before_the_model(data_file, output_dir, message):
    from tinyzero.eval.app import run_eval as run_in_process
    from tinyzero.eval.config import EvalConfig, EvalConfigError

    config = EvalConfig(model="/nonexistent/model", data=str(data_file), output_dir=output_dir.format(data=data_file))
    with pytest.raises(EvalConfigError, match=re.escape(message.format(data=data_file))):
        run_in_process(config)  # the output_dir error, not the model's: it is checked first


def test_missing_columns_and_prompt_style_are_named(tmp_path):
    from tinyzero.eval.app import run_eval as run_in_process
    from tinyzero.eval.config import EvalConfig, EvalConfigError

    no_truth = write_problems(
        tmp_path / "no_truth.parquet", [{"data_source": "countdown", "prompt": [{"role": "user", "content": "x"}]}]
    )
    # The model does not exist either: the data error must come first (before any model work).
    config = EvalConfig(model="/nonexistent/model", data=str(no_truth), output_dir=str(tmp_path / "out"))
    with pytest.raises(EvalConfigError, match="lacks column\\(s\\) reward_model"):
        run_in_process(config)
    no_style = write_problems(
        tmp_path / "no_style.parquet",
        [{"data_source": "countdown", "prompt": [{"role": "user", "content": "x"}],
          "reward_model": {"ground_truth": {"target": 1, "numbers": [1]}}, "extra_info": {"index": 0}}],
    )  # fmt: skip
    config.data = str(no_style)
    with pytest.raises(EvalConfigError, match="set prompt_style=base"):
        run_in_process(config)
    assert not (tmp_path / "out").exists()


def test_missing_required_options_and_a_data_folder_are_named(data_file, tmp_path):
    from pathlib import Path

    from tinyzero.eval.app import run_eval as run_in_process
    from tinyzero.eval.config import EvalConfig, EvalConfigError

    # Both named at once, before the data is read (Hydra alone would fail later, with a traceback).
    with pytest.raises(EvalConfigError, match=r"model is required(.|\n)*output_dir is required"):
        run_in_process(EvalConfig(data=str(data_file)))
    folder = Path(data_file).parent  # data_gen's output folder instead of a split in it
    config = EvalConfig(model="/nonexistent/model", data=str(folder), output_dir=str(tmp_path / "out"))
    with pytest.raises(EvalConfigError, match="is a folder; give a parquet file in it, e.g. data=.*test.parquet"):
        run_in_process(config)
    assert not (tmp_path / "out").exists()


def test_recipe_names_the_test_split_training_generated(tiny_model_dir, tmp_path, monkeypatch):
    from data_gen import TASKS, write_dataset
    from tinyzero.eval.config import EvalConfigError
    from tinyzero.eval.data import recipe_test_split
    from tinyzero.recipe import compose, task_data_dir

    monkeypatch.setenv("TINYZERO_DATA_ROOT", str(tmp_path / "data"))
    with pytest.raises(EvalConfigError, match="not generated yet.*dry_run=true"):
        recipe_test_split("countdown_0_5b")
    with pytest.raises(EvalConfigError, match="not a recipe; use one of .*countdown_3b"):
        recipe_test_split("countdown_9b")
    # Put a (small) test split where training would have generated the recipe's data.
    folder, _ = task_data_dir(compose(["+recipe=countdown_0_5b"]))
    write_dataset(TASKS["countdown"](train_size=2, test_size=3, seed=1), folder, workers=1)
    out = tmp_path / "eval"
    # Inside the Hydra app, too: composing train's config must not disturb the running app.
    result = run_eval(f"model={tiny_model_dir}", "recipe=countdown_0_5b", f"output_dir={out}", "max_new_tokens=4")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"] == str(folder / "test.parquet") and metrics["problems"] == 3
    both = run_eval(f"model={tiny_model_dir}", "recipe=countdown_0_5b", "data=x.parquet", f"output_dir={out}")
    assert both.returncode == 2 and "give exactly one" in both.stderr
