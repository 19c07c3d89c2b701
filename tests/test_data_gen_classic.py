"""Importing a classic Countdown file keeps the prompt the file carries, unless asked to re-render."""

import json
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_gen import ClassicImportConfig, write_dataset
from data_gen.prompts import chat_prompt, countdown_question
from tinyzero.rewards import compute_score


def tinyzero_prompt(nums, target) -> str:
    """Prompt text in the style of TinyZero's preprocessed Countdown parquet (its wording, not ours)."""
    return (
        "A conversation between User and Assistant. The user asks a question, and the Assistant solves it.\n"
        f"User: Using the numbers {nums}, create an equation that equals {target}. You can use basic arithmetic "
        "operations (+, -, *, /) and each number can only be used once.\nAssistant: Let me solve this step by step.\n<think>"
    )


PROBLEMS = [(24, [3, 3, 8, 8]), (10, [2, 5]), (3, [1, 2]), (9, [3, 3]), (100, [1, 1]), (11, [5, 6])]  # row 4: unsolvable


def preprocessed_rows():
    """Rows like TinyZero's train.parquet: the raw columns kept, plus verl's."""
    return [
        {
            "target": target, "nums": nums, "data_source": "countdown",
            "prompt": [{"role": "user", "content": tinyzero_prompt(nums, target)}],
            "ability": "math",
            "reward_model": {"style": "rule", "ground_truth": {"target": target, "numbers": nums}},
            "extra_info": {"split": "train", "index": index},
        }
        for index, (target, nums) in enumerate(PROBLEMS)
    ]


def imported(tmp_path, source, *options):
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "data_gen", "import-classic", str(source), "--out", str(out),
         "--train-size", "4", "--test-size", "2", "--workers", "1", *options],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = pq.read_table(out / "train.parquet").to_pylist() + pq.read_table(out / "test.parquet").to_pylist()
    return json.loads(done.stdout), rows


def test_the_files_prompts_are_kept_and_the_summary_says_so(tmp_path):
    source = tmp_path / "countdown.parquet"
    pq.write_table(pa.Table.from_pylist(preprocessed_rows()), source)
    summary, rows = imported(tmp_path, source)
    assert summary["import"]["prompts"] == {
        "kept_from_file": 5, "kept_styles": {"base": 5}, "written_by_data_gen": 0, "data_gen_style": "base",
    }
    assert len(rows) == 5  # the unsolvable row is dropped, as before
    for row in rows:
        truth = row["reward_model"]["ground_truth"]
        assert row["prompt"] == [{"role": "user", "content": tinyzero_prompt(truth["numbers"], truth["target"])}]
        # One user message is the whole text: the pass-through template shows it unchanged.
        assert row["extra_info"]["prompt_style"] == "base"
        response = f"<answer>{row['extra_info']['solution']}</answer>"
        assert compute_score("countdown", response, truth)["score"] == 1.0


def test_re_rendering_in_a_data_gen_style(tmp_path):
    source = tmp_path / "countdown.parquet"
    pq.write_table(pa.Table.from_pylist(preprocessed_rows()), source)
    summary, rows = imported(tmp_path, source, "--no-keep-prompts", "--prompt-style", "instruct")
    assert summary["import"]["prompts"] == {
        "kept_from_file": 0, "kept_styles": {}, "written_by_data_gen": 5, "data_gen_style": "instruct",
    }
    for row in rows:
        truth = row["reward_model"]["ground_truth"]
        assert row["prompt"] == chat_prompt(countdown_question(truth["numbers"], truth["target"]), "instruct")
        assert row["extra_info"]["prompt_style"] == "instruct"


def test_verl_schema_without_raw_columns_and_a_mix_of_prompt_forms(tmp_path):
    rows = preprocessed_rows()
    for row in rows:
        del row["target"], row["nums"]  # the ground truth only where verl keeps it
    rows[1]["prompt"] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Make 10 from 2, 5."}]
    source = tmp_path / "verl.parquet"
    pq.write_table(pa.Table.from_pylist(rows), source)
    summary, imported_rows = imported(tmp_path, source)
    assert summary["import"]["prompts"]["kept_styles"] == {"base": 4, "instruct": 1}
    chat = next(row for row in imported_rows if row["reward_model"]["ground_truth"]["target"] == 10)
    assert chat["prompt"][0]["role"] == "system" and chat["extra_info"]["prompt_style"] == "instruct"


def test_jsonl_rows_with_and_without_a_prompt(tmp_path):
    source = tmp_path / "classic.jsonl"
    lines = [{"target": t, "nums": n} for t, n in PROBLEMS]
    lines[0]["prompt"] = "Reach 24 with 3, 3, 8, 8.\n<think>"  # text: one user message
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    summary, rows = imported(tmp_path, source)
    assert summary["import"]["prompts"]["kept_from_file"] == 1
    assert summary["import"]["prompts"]["written_by_data_gen"] == 4
    assert rows[0]["prompt"] == [{"role": "user", "content": "Reach 24 with 3, 3, 8, 8.\n<think>"}]
    assert rows[1]["prompt"] == chat_prompt(countdown_question([2, 5], 10), "base")


def test_a_prompt_that_is_neither_text_nor_messages_is_named(tmp_path):
    source = tmp_path / "bad.jsonl"
    source.write_text(json.dumps({"target": 3, "nums": [1, 2], "prompt": 42}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl line 1: prompt '42' is neither text nor .*--no-keep-prompts"):
        write_dataset(ClassicImportConfig(path=str(source), train_size=1, test_size=0), tmp_path / "out", workers=1)
    # The fix it names works: the file's prompts are then not read at all.
    config = ClassicImportConfig(path=str(source), train_size=1, test_size=0, keep_prompts=False)
    assert write_dataset(config, tmp_path / "out", workers=1)["import"]["prompts"]["written_by_data_gen"] == 1
