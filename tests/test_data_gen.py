"""Task generators: solvable and scored 1.0 by the reward, distinct, reproducible, verl-loadable."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_gen import TASKS, ClassicImportConfig, CountdownConfig, MultiplyConfig, count_solutions, generate_problems, write_dataset
from tinyzero.rewards import compute_score
from tinyzero.templates import BASE_CHAT_TEMPLATE

FILES = ("train.parquet", "test.parquet", "dataset_info.json")


def rows(folder: Path, split: str) -> list[dict]:
    return pq.read_table(folder / f"{split}.parquet").to_pylist()


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "data_gen", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, Path]:
    """Small datasets of each kind, written once for the module."""
    configs = {
        "countdown-expression": CountdownConfig(train_size=400, test_size=60, seed=1, difficulty="all"),
        "countdown-uniform": CountdownConfig(
            train_size=120, test_size=30, seed=2, target_mode="uniform", min_count=2, max_count=5,
            max_target=200, prompt_style="instruct",
        ),
        "multiply": MultiplyConfig(train_size=300, test_size=50, seed=3, digits_a=2, digits_b=4),
    }
    folders = {}
    for name, config in configs.items():
        folders[name] = tmp_path_factory.mktemp(name)
        result = write_dataset(config, folders[name], workers=1)
        assert result["counts"] == {"train": config.train_size, "test": config.test_size}
    return folders


@pytest.mark.parametrize("name", ["countdown-expression", "countdown-uniform", "multiply"])
def test_every_stored_solution_scores_full_marks(datasets, name):
    for split in ("train", "test"):
        for row in rows(datasets[name], split):
            ground_truth = row["reward_model"]["ground_truth"]
            ground_truth = {key: value for key, value in ground_truth.items() if value is not None}
            response = f"<think>...</think><answer>{row['extra_info']['solution']}</answer>"
            assert compute_score(row["data_source"], response, ground_truth)["score"] == 1.0, row


@pytest.mark.parametrize("name", ["countdown-expression", "countdown-uniform"])
def test_countdown_problems_match_their_config(datasets, name):
    info = json.loads((datasets[name] / "dataset_info.json").read_text())
    config = CountdownConfig(**info["config"])
    for split in ("train", "test"):
        for index, row in enumerate(rows(datasets[name], split)):
            truth, extra = row["reward_model"]["ground_truth"], row["extra_info"]
            assert config.min_count <= len(truth["numbers"]) <= config.max_count
            assert all(config.min_number <= n <= config.max_number for n in truth["numbers"])
            assert config.min_target <= truth["target"] <= config.max_target
            assert (extra["split"], extra["index"], extra["num_count"]) == (split, index, len(truth["numbers"]))
            assert extra["prompt_style"] == config.prompt_style
            if split == "test" or config.difficulty == "all":
                assert extra["difficulty"] == count_solutions(truth["numbers"], truth["target"]) >= 1
            else:
                assert extra["difficulty"] is None


def problem_key(row: dict) -> tuple:
    truth = row["reward_model"]["ground_truth"]
    if row["data_source"] == "multiply":
        return tuple(sorted(truth["factors"]))
    return tuple(sorted(truth["numbers"])), truth["target"]


@pytest.mark.parametrize("name", ["countdown-expression", "countdown-uniform", "multiply"])
def test_no_duplicates_and_splits_disjoint(datasets, name):
    train = [problem_key(row) for row in rows(datasets[name], "train")]
    test = [problem_key(row) for row in rows(datasets[name], "test")]
    assert len(set(train)) == len(train) and len(set(test)) == len(test)
    assert not set(train) & set(test)


def test_multiply_rows(datasets):
    for row in rows(datasets["multiply"], "train"):
        a, b = row["reward_model"]["ground_truth"]["factors"]
        assert row["reward_model"]["ground_truth"]["product"] == a * b
        assert (len(str(a)), len(str(b))) == (2, 4)
        assert f"{a} * {b}" in row["prompt"][0]["content"]


def test_prompt_styles(datasets):
    base = rows(datasets["countdown-expression"], "train")[0]
    [message] = base["prompt"]
    truth = base["reward_model"]["ground_truth"]
    assert message["role"] == "user" and message["content"].endswith("<think>")
    assert f"[{', '.join(map(str, truth['numbers']))}]" in message["content"] and str(truth["target"]) in message["content"]
    assert "<answer>" in message["content"] and "</answer>" in message["content"]  # an example of the format
    instruct = rows(datasets["countdown-uniform"], "test")[0]["prompt"]
    assert [m["role"] for m in instruct] == ["system", "user"]
    assert "<think>" in instruct[0]["content"] and "<answer>" in instruct[1]["content"]
    assert not instruct[1]["content"].endswith("<think>")


def test_dataset_info(datasets):
    info = json.loads((datasets["countdown-expression"] / "dataset_info.json").read_text())
    assert info["task"] == "countdown" and info["counts"] == {"train": 400, "test": 60}
    assert info["config"]["seed"] == 1
    train = info["distributions"]["train"]
    assert sum(train["num_count"].values()) == 400
    assert {"min", "max", "mean", "quartiles", "histogram"} <= set(train["target"]) and train["difficulty"]["min"] >= 1
    assert sum(bin_["count"] for bin_ in train["target"]["histogram"]) == 400


def test_same_arguments_give_identical_bytes_whatever_the_hash_seed(tmp_path):
    args = ["countdown", "--train-size", "9000", "--test-size", "100", "--seed", "5"]
    first = run_cli(*args, "--out", str(tmp_path / "a"), "--workers", "1", env={"PYTHONHASHSEED": "1"})
    second = run_cli(*args, "--out", str(tmp_path / "b"), "--workers", "2", env={"PYTHONHASHSEED": "2"})
    other_seed = run_cli(*args[:-1], "6", "--out", str(tmp_path / "c"), "--workers", "1")
    for result in (first, second, other_seed):
        assert result.returncode == 0, result.stderr
    for name in FILES:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert (tmp_path / "a" / "train.parquet").read_bytes() != (tmp_path / "c" / "train.parquet").read_bytes()
    assert json.loads(first.stdout)["counts"] == {"train": 9000, "test": 100}


def test_test_split_does_not_depend_on_train_size(tmp_path):
    small = CountdownConfig(train_size=50, test_size=40, seed=9, difficulty="none")
    large = CountdownConfig(train_size=5000, test_size=40, seed=9, difficulty="none")
    write_dataset(small, tmp_path / "small", workers=1)
    write_dataset(large, tmp_path / "large", workers=1)
    assert rows(tmp_path / "small", "test") == rows(tmp_path / "large", "test")


@pytest.mark.parametrize(
    "args,named",
    [
        (["countdown", "--train-size", "-1"], "train_size"),
        (["countdown", "--test-size", "-5"], "test_size"),
        (["countdown", "--min-number", "50", "--max-number", "10"], "min_number"),
        (["countdown", "--min-target", "9", "--max-target", "3"], "min_target"),
        (["countdown", "--min-count", "4", "--max-count", "3"], "min_count"),
        (["countdown", "--max-count", "7"], "max_count"),
        # 3 multisets of two numbers from 1..2, times one target: at most 3 problems.
        (["countdown", "--min-count", "2", "--max-count", "2", "--max-number", "2", "--max-target", "1", "--train-size", "4", "--test-size", "0"], "at most 3"),
        # Pairs from 1..3 reach only 16 distinct (numbers, target) problems with targets 1..10.
        (["countdown", "--min-count", "2", "--max-count", "2", "--max-number", "3", "--max-target", "10", "--train-size", "15", "--test-size", "2"], "only 16"),
        (["multiply", "--digits-a", "1", "--digits-b", "1", "--train-size", "40", "--test-size", "6"], "only 45"),
        (["multiply", "--digits-a", "10"], "digits_a"),
        (["import-classic", "no/such/file.jsonl"], "path"),
    ],
)
def test_bad_arguments_fail_before_touching_files(tmp_path, args, named):
    out = tmp_path / "out"
    result = run_cli(*args, "--out", str(out))
    assert result.returncode == 2 and named in result.stderr, result.stderr
    assert not out.exists()


def test_failed_run_keeps_previous_files_and_leaves_no_temporary(tmp_path):
    config = MultiplyConfig(train_size=20, test_size=5, digits_a=1, digits_b=2)
    write_dataset(config, tmp_path, workers=1)
    before = {name: (tmp_path / name).read_bytes() for name in FILES}
    with pytest.raises(ValueError, match="test_size"):
        write_dataset(MultiplyConfig(train_size=20, test_size=-1), tmp_path)
    with pytest.raises(ValueError, match="only 16"):
        write_dataset(CountdownConfig(train_size=17, test_size=0, min_count=2, max_count=2, max_number=3, max_target=10), tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == set(FILES)
    assert {name: (tmp_path / name).read_bytes() for name in FILES} == before


def test_generation_stops_when_no_new_problem_comes():
    # Past the up-front checks (called directly), generation itself must end with a clear error.
    config = CountdownConfig(train_size=17, test_size=0, min_count=2, max_count=2, max_number=3, max_target=10)
    with pytest.raises(ValueError, match="only 16 distinct problems"):
        generate_problems(config, workers=1)


def test_asking_for_every_distinct_problem_works(tmp_path):
    config = CountdownConfig(train_size=12, test_size=4, min_count=2, max_count=2, max_number=3, max_target=10)
    assert config.distinct_problems() == 16
    write_dataset(config, tmp_path, workers=1)
    keys = [problem_key(row) for split in ("train", "test") for row in rows(tmp_path, split)]
    assert len(set(keys)) == 16
    multiply = MultiplyConfig(train_size=40, test_size=5, digits_a=1, digits_b=1)
    write_dataset(multiply, tmp_path / "m", workers=1)
    assert len({problem_key(row) for split in ("train", "test") for row in rows(tmp_path / "m", split)}) == 45


def test_classic_import(tmp_path):
    classic = [
        {"target": 24, "nums": [3, 3, 8, 8]},
        {"target": 100, "nums": [1, 1]},  # unsolvable
        {"target": 7, "nums": [0, 7]},  # not a valid problem
        {"target": 24, "nums": [8, 8, 3, 3]},  # same problem again
        {"target": 10, "nums": [2, 5]},
        {"target": 3, "nums": [1, 2]},
    ]
    jsonl = tmp_path / "classic.jsonl"
    jsonl.write_text("".join(json.dumps(row) + "\n" for row in classic))
    parquet = tmp_path / "classic.parquet"
    pq.write_table(pa.Table.from_pylist(classic), parquet)
    for source in (jsonl, parquet):
        out = tmp_path / f"out-{source.suffix[1:]}"
        result = run_cli("import-classic", str(source), "--out", str(out), "--train-size", "4", "--test-size", "2")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["counts"] == {"train": 2, "test": 2}
        assert report["import"]["dropped"] == 2 and report["import"]["duplicate_problems"] == {"train": 1, "test": 0}
        assert [d["row"] for d in report["import"]["dropped_rows"]] == [1, 2]
        train = rows(out, "train")
        assert [r["reward_model"]["ground_truth"]["numbers"] for r in train] == [[3, 3, 8, 8], [8, 8, 3, 3]]
        for row in train + rows(out, "test"):
            response = f"<answer>{row['extra_info']['solution']}</answer>"
            assert compute_score("countdown", response, row["reward_model"]["ground_truth"])["score"] == 1.0
    too_few = run_cli("import-classic", str(jsonl), "--out", str(tmp_path / "x"), "--train-size", "6", "--test-size", "1")
    assert too_few.returncode == 2 and "has 6 rows" in too_few.stderr


def test_verl_loads_the_parquet(datasets, tiny_model_dir, tmp_path):
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.utils.dataset.rl_dataset import RLHFDataset

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = OmegaConf.create({
        "prompt_key": "prompt", "max_prompt_length": 4096, "filter_overlong_prompts": True,
        "filter_overlong_prompts_workers": 1, "cache_dir": str(tmp_path / "cache"),
    })
    for name in ("countdown-expression", "countdown-uniform", "multiply"):
        path = datasets[name] / "test.parquet"
        dataset = RLHFDataset(str(path), tokenizer, config)
        expected = rows(datasets[name], "test")
        assert len(dataset) == len(expected)
        item = dataset[3]
        assert item["raw_prompt"] == expected[3]["prompt"] and item["index"] == 3
        assert item["reward_model"] == expected[3]["reward_model"] and item["data_source"] == expected[3]["data_source"]
    # The base style's text reaches the model unchanged through the project's base template.
    messages = rows(datasets["countdown-expression"], "test")[0]["prompt"]
    text = tokenizer.apply_chat_template(messages, chat_template=BASE_CHAT_TEMPLATE, tokenize=False, add_generation_prompt=True)
    assert text == messages[0]["content"]


def test_registry_and_help_document_every_option():
    assert set(TASKS) == {"countdown", "multiply"}
    for command, config_class in [*TASKS.items(), ("import-classic", ClassicImportConfig)]:
        help_text = run_cli(command, "--help").stdout
        for field in dataclasses.fields(config_class):
            option = field.name if field.name == "path" else "--" + field.name.replace("_", "-")
            assert option in help_text, (command, option)


def test_importing_data_gen_needs_neither_numpy_nor_pandas():
    code = "import sys, data_gen, data_gen.__main__; print(sorted({'numpy', 'pandas', 'pyarrow'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
