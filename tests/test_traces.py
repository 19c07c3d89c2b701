"""Supervised traces: true arithmetic, full-marks answers, the behaviours each style promises, no RL
test problem, and rows that verl's own SFT dataset reads into exactly what RL sees."""

from __future__ import annotations

import dataclasses
import json
import random
import re
import subprocess
import sys
from fractions import Fraction

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_gen import CountdownConfig, MultiplyConfig, generate_problems, write_dataset
from data_gen.traces import TRACES_FILE, TRACES_INFO_FILE, TracesConfig, countdown_trace, make_traces, multiply_trace, write_traces
from tinyzero.aha.arithmetic import stated_equations
from tinyzero.aha.detectors import REFLECTIVE, default_detectors, detect
from tinyzero.aha.reader import Rollout
from tinyzero.rewards import compute_score, evaluate_expression
from tinyzero.templates import chat_template_for

CONFIGS = {
    "countdown-base": TracesConfig(data=CountdownConfig(test_size=50, seed=1, min_count=3, max_count=5), size=120),
    "countdown-instruct": TracesConfig(
        data=CountdownConfig(test_size=20, seed=2, min_count=2, max_count=4, target_mode="uniform", prompt_style="instruct"),
        size=60, search_fraction=0.8, max_failed_attempts=3,
    ),
    "multiply-base": TracesConfig(data=MultiplyConfig(test_size=40, seed=3, digits_a=3, digits_b=2), size=80),
    "multiply-small": TracesConfig(data=MultiplyConfig(test_size=5, seed=4, digits_a=1, digits_b=1), size=30, search_fraction=1.0),
}


@pytest.fixture(scope="module")
def made() -> dict[str, tuple[list[dict], dict]]:
    return {name: make_traces(config) for name, config in CONFIGS.items()}


@pytest.fixture(scope="module")
def traces(made) -> dict[str, list[dict]]:
    return {name: rows for name, (rows, _) in made.items()}


def response_of(row: dict) -> str:
    assert row["messages"][-1]["role"] == "assistant"
    return row["messages"][-1]["content"]


def ground_truth(row: dict) -> dict:
    return {key: value for key, value in row["reward_model"]["ground_truth"].items() if value is not None}


def rollout_of(row: dict) -> Rollout:
    score = compute_score(row["data_source"], response_of(row), ground_truth(row))
    return Rollout(step=0, index=0, prompt=row["messages"][-2]["content"], response=response_of(row),
                   ground_truth=ground_truth(row), score=score["score"], acc=score["acc"])


# Every "a op b op ... = c" the text states, recomputed with the reward's exact evaluator.
_STATED = re.compile(r"(?<![\d*/+-] )(?<!\d)(\d+(?: [-+*/] \d+)+) = (\d+)(?!\d)")


@pytest.mark.parametrize("name", CONFIGS)
def test_every_stated_number_is_true(traces, name):
    for row in traces[name]:
        text = response_of(row)
        chains = _STATED.findall(text)
        assert chains, text
        for expression, value in chains:
            assert evaluate_expression(expression)[0] == Fraction(int(value)), (expression, value, text)
        # the project's own reading of written arithmetic (what the aha detectors see) agrees
        assert all(equation.holds for equation in stated_equations(text)), text
        # claims in words: bounds, and how a failed attempt compares with the goal
        for number, low, high in re.findall(r"(\d+) is between (\d+) and (\d+)", text):
            assert int(low) <= int(number) <= int(high), text
        for number, bound in re.findall(r"(\d+) is above (\d+)", text):
            assert int(number) > int(bound)
        for number, bound in re.findall(r"(\d+) is below (\d+)", text):
            assert int(number) < int(bound)
        for value, target, verdict in re.findall(r"(\d+), not (\d+): too (big|small)", text):
            assert value != target and (int(value) > int(target)) == (verdict == "big")


@pytest.mark.parametrize("name", CONFIGS)
def test_every_answer_scores_full_marks(traces, name):
    for row in traces[name]:
        score = compute_score(row["data_source"], response_of(row), ground_truth(row))
        assert score["score"] == 1.0, response_of(row)
        assert row["extra_info"]["answer"] in response_of(row)


@pytest.mark.parametrize("name", CONFIGS)
def test_each_style_shows_exactly_its_behaviours(traces, name):
    """search: verification, and backtracking and self-correction after a dead end (a Countdown search
    whose first try succeeds only verifies); direct: no reflection at all."""
    detectors = default_detectors()
    for row in traces[name]:
        found = detect(rollout_of(row), detectors)
        shown = {behaviour for behaviour in REFLECTIVE if found.get(behaviour)}
        if row["extra_info"]["trace_style"] == "direct":
            assert shown == set(), (shown, response_of(row))
        elif row["extra_info"]["failed_attempts"]:
            assert shown == set(REFLECTIVE), (shown, response_of(row))
        else:
            assert shown == {"verification"}, (shown, response_of(row))


@pytest.mark.parametrize("name", CONFIGS)
def test_styles_are_dealt_exactly_and_search_shows_its_dead_ends(traces, name):
    config = CONFIGS[name]
    rows = traces[name]
    assert len(rows) == config.size
    styles = [row["extra_info"]["trace_style"] for row in rows]
    assert styles.count("search") == round(config.size * config.search_fraction)
    for row in rows:
        failed = row["extra_info"]["failed_attempts"]
        if row["extra_info"]["trace_style"] == "search":
            countdown = row["data_source"] == "countdown"
            assert (0 if countdown else 1) <= failed <= config.max_failed_attempts  # a search may succeed at once
            assert response_of(row).count("Try ") == failed + countdown
            assert response_of(row).count("That doesn't work") == failed
        else:
            assert failed == 0 and "Try " not in response_of(row)


def test_countdown_search_is_a_real_depth_first_search():
    """Each dead end is the best finish of a line of attack the search really took, and the first
    try succeeds in some traces: nothing is staged."""
    rows, _ = make_traces(TracesConfig(data=CountdownConfig(test_size=20, seed=3, min_count=3, max_count=3, max_number=12,
                                                            max_target=50), size=80, search_fraction=1.0))
    failures = [row["extra_info"]["failed_attempts"] for row in rows]
    assert 0 in failures and max(failures) >= 1
    attempt = re.compile(r"Try (\d+) [-+*/] (\d+) = (\d+), (\d+) [-+*/] (\d+) = (\d+)")
    for row in rows:
        numbers = list(row["reward_model"]["ground_truth"]["numbers"])
        target = row["reward_model"]["ground_truth"]["target"]
        tries = [tuple(map(int, found)) for found in attempt.findall(response_of(row))]
        assert len(tries) == row["extra_info"]["failed_attempts"] + 1, response_of(row)
        for x, y, merged, p, q, finish in tries:
            left = list(numbers)
            left.remove(x)
            left.remove(y)  # the first merge takes two of the given numbers ...
            assert sorted([p, q]) == sorted([merged, left[0]]), response_of(row)  # ... the finish the rest
            a, b = max(merged, left[0]), min(merged, left[0])
            finishes = [a + b, a * b, a - b] + ([a // b] if b and a % b == 0 else [])
            assert abs(finish - target) == min(abs(f - target) for f in finishes), response_of(row)  # the nearest finish
        assert tries[-1][-1] == target and all(t[-1] != target for t in tries[:-1])


def test_traces_avoid_the_rl_test_split(tmp_path):
    """Same data config and seed as the RL data: no trace is a test problem; while size is at most
    the RL train size the traces are the first RL training problems."""
    data = CountdownConfig(train_size=300, test_size=200, seed=5, min_count=2, max_count=3, max_number=30, max_target=60)
    write_dataset(data, tmp_path / "rl", workers=1)

    def keys(table_rows):
        return [(tuple(sorted(r["reward_model"]["ground_truth"]["numbers"])), r["reward_model"]["ground_truth"]["target"])
                for r in table_rows]

    test = set(keys(pq.read_table(tmp_path / "rl" / "test.parquet").to_pylist()))
    train = keys(pq.read_table(tmp_path / "rl" / "train.parquet").to_pylist())
    for size in (100, 450):  # within and beyond the RL train split
        rows, report = make_traces(TracesConfig(data=data, size=size))
        trace_keys = keys(rows)
        assert len(set(trace_keys)) == size and not set(trace_keys) & test
        assert "200 test problems" in report["excluded"]
        if size <= data.train_size:
            assert trace_keys == train[:size]


def test_a_priming_reserve_keeps_the_traces_out_of_the_rl_train_split(tmp_path):
    """With priming_reserve, the RL test split is unchanged, its train split skips the reserve, and
    the traces come from the reserve: priming shows no problem GRPO trains or tests on."""
    plain = CountdownConfig(train_size=300, test_size=200, seed=5, min_count=3, max_count=3, max_number=12, max_target=50)
    reserved = dataclasses.replace(plain, priming_reserve=150)
    before, after = generate_problems(plain), generate_problems(reserved)
    assert after["test"] == before["test"] and len(after["train"]) == 300
    rows, report = make_traces(TracesConfig(data=reserved, size=150, search_fraction=0.5))
    key = CountdownConfig.key
    trace_keys = {(tuple(sorted(r["reward_model"]["ground_truth"]["numbers"])), r["reward_model"]["ground_truth"]["target"]) for r in rows}
    assert trace_keys == {key(p) for p in before["train"][:150]}  # exactly the reserve
    assert not trace_keys & {key(p) for p in after["train"] + after["test"]}
    assert "priming_reserve of 150" in report["excluded"]
    with pytest.raises(ValueError, match=r"size=151 is above the RL data's priming_reserve=150"):
        TracesConfig(data=reserved, size=151).validate()


def test_countdown_problem_with_only_fraction_solutions_is_skipped():
    # 6 / (1 - 3 / 4) = 24 is the only way: every trace states integer values, so none is made.
    for style in ("direct", "search"):
        assert countdown_trace([1, 3, 4, 6], 24, style, "base", random.Random(0)) is None
    assert countdown_trace([1, 3, 4, 6], 21, "direct", "base", random.Random(0)) is not None  # 6 * 4 * 1 - 3


def test_multiply_search_rejects_each_failure_with_the_size_check():
    response, answer, failed = multiply_trace(347, 29, "search", "base", random.Random(1), max_failed_attempts=3)
    assert answer == "10063" and failed >= 1
    assert "between 300 * 20 = 6000 and 400 * 30 = 12000" in response
    assert response.count("That doesn't work") == failed


def test_same_config_same_traces():
    config = CONFIGS["countdown-base"]
    assert make_traces(config) == make_traces(dataclasses.replace(config))


@pytest.mark.parametrize(("change", "field_name"), [
    ({"size": 0}, "size"),
    ({"size": 2.5}, "size"),
    ({"search_fraction": 1.5}, "search_fraction"),
    ({"search_fraction": "half"}, "search_fraction"),
    ({"max_failed_attempts": 0}, "max_failed_attempts"),
    ({"data": {"task": "countdown"}}, "data"),
    ({"data": CountdownConfig(min_count=5, max_count=3)}, "min_count"),
    ({"data": MultiplyConfig(digits_a=1, digits_b=1, test_size=10), "size": 100}, "size=100"),
])
def test_validate_names_the_bad_field(change, field_name):
    with pytest.raises(ValueError, match=re.escape(field_name)):
        dataclasses.replace(TracesConfig(), **change).validate()


def test_write_traces_files(tmp_path):
    config = TracesConfig(data=MultiplyConfig(test_size=10, seed=6), size=20)
    result = write_traces(config, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([TRACES_FILE, TRACES_INFO_FILE])
    assert result["count"] == 20 and result["styles"] == {"direct": 10, "search": 10}
    rows = pq.read_table(tmp_path / TRACES_FILE).to_pylist()
    assert rows == make_traces(config)[0]
    with pytest.raises(ValueError, match="not a folder"):
        write_traces(config, tmp_path / TRACES_FILE)


@pytest.mark.parametrize("name", ["countdown-base", "countdown-instruct", "multiply-base"])
def test_verl_sft_dataset_reads_prompt_then_trace_then_eos(traces, name, tmp_path, tiny_model_dir):
    """verl 0.9.1's MultiTurnSFTDataset (what its sft_trainer builds by default) reads the file; the
    tokens are the prompt exactly as RL renders it, then the trace, then EOS; only the trace and
    EOS are trained on."""
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    config = CONFIGS[name]
    rows = traces[name][:6]
    path = tmp_path / TRACES_FILE
    pq.write_table(pa.Table.from_pylist(rows), path)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    template = chat_template_for(config.data.prompt_style)
    if template is not None:  # what train sets as the model's custom_chat_template
        tokenizer.chat_template = template
    dataset = MultiTurnSFTDataset(
        parquet_files=str(path), tokenizer=tokenizer,
        config=OmegaConf.create({"max_length": 4096, "truncation": "error", "pad_mode": "no_padding"}),
    )
    assert len(dataset) == len(rows)
    for index, row in enumerate(rows):
        item = dataset[index]  # runs verl's check that per-message tokens equal whole-conversation tokens
        prompt = row["messages"][:-1]
        # what RL feeds the model: the prompt rendered with the generation prompt
        prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True)["input_ids"]
        ids = item["input_ids"].tolist()
        trained = [i for i, m in zip(ids, item["loss_mask"].tolist()) if m]
        assert ids[: len(prompt_ids)] == prompt_ids
        # the model learns to stop where RL stops it (ChatML adds a newline after its EOS)
        assert tokenizer.decode(trained).startswith(response_of(row) + tokenizer.eos_token)
        if config.data.prompt_style == "base":
            assert ids == prompt_ids + tokenizer(response_of(row))["input_ids"] + [tokenizer.eos_token_id]
            assert trained == ids[len(prompt_ids):]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "data_gen", "traces", *args], capture_output=True, text=True, timeout=120)


def test_cli_writes_the_traces_its_options_describe(tmp_path):
    done = run_cli("countdown", "--out", str(tmp_path), "--size", "12", "--search-fraction", "0.25",
                   "--test-size", "30", "--seed", "7", "--max-count", "3", "--prompt-style", "instruct")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["count"] == 12 and result["styles"] == {"direct": 9, "search": 3}
    config = TracesConfig(data=CountdownConfig(test_size=30, seed=7, max_count=3, prompt_style="instruct"), size=12, search_fraction=0.25)
    assert pq.read_table(tmp_path / TRACES_FILE).to_pylist() == make_traces(config)[0]
    info = json.loads((tmp_path / TRACES_INFO_FILE).read_text())
    assert info["config"]["data"]["seed"] == 7 and info["config"]["search_fraction"] == 0.25


def test_cli_names_a_bad_option_and_writes_nothing(tmp_path):
    done = run_cli("multiply", "--out", str(tmp_path / "out"), "--search-fraction", "2")
    assert done.returncode == 2 and "search_fraction must be a number from 0 to 1" in done.stderr
    assert not (tmp_path / "out").exists()
    assert "train-size" not in run_cli("multiply", "--help").stdout  # --size counts the traces
