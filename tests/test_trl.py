"""The TRL adapters and data helper under a real `trl.GRPOTrainer`, on the tiny local model.

Each run is two GRPO steps on CPU. A random tiny model writes no answers, so every reward is 0;
what is checked is the wiring TRL depends on: what the model is shown (the prompt text exactly,
no chat markers around a base prompt), what the adapters get (plain or conversational
completions, the dataset's columns) and give back (each completion's score, which TRL logs).
"""

import re
import shlex
from pathlib import Path

import pytest
import trl  # the `test` extra brings it
from transformers import AutoModelForCausalLM, AutoTokenizer

from data_gen import TASKS, write_dataset
from tinyzero.rewards import compute_score
from tinyzero.rewards.trl import countdown_reward, multiply_reward, task_reward
from tinyzero.templates import BASE_CHAT_TEMPLATE
from tinyzero.trl_data import prepare_for_trl, trl_dataset, trl_tokenizer

ROWS_PER_TASK = 4


@pytest.fixture(scope="module")
def task_dirs(tmp_path_factory):
    """data_gen folders with 4 training problems each, for Countdown and multiplication."""
    root = tmp_path_factory.mktemp("trl-data")
    folders = {}
    for task in ("countdown", "multiply"):
        folders[task] = root / task
        write_dataset(TASKS[task](train_size=ROWS_PER_TASK, test_size=2, seed=3), folders[task], workers=1)
    return folders


class ForwardRecorder:
    """The token rows every forward pass of the model receives (a PyTorch forward pre-hook)."""

    def __init__(self, model):
        self.rows: list[list[int]] = []
        model.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        input_ids, mask = kwargs.get("input_ids"), kwargs.get("attention_mask")
        if input_ids is None or mask is None or input_ids.shape != mask.shape:
            return None  # decoding steps past the prompt: one new token each
        for ids, keep in zip(input_ids.tolist(), mask.tolist()):
            self.rows.append([token for token, kept in zip(ids, keep) if kept])
        return None


def run_grpo(model_dir, dataset, tokenizer, adapter, output_dir, prompts_per_step):
    """Two GRPO steps with `adapter` wrapped to record its calls; (trainer, calls, recorder)."""
    calls = []

    def reward(prompts, completions, **columns):
        rewards = adapter(prompts=prompts, completions=completions, **columns)
        calls.append({"prompts": prompts, "completions": completions, "columns": columns, "rewards": rewards})
        return rewards

    reward.__name__ = adapter.__name__  # TRL logs rewards/<name>/mean
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    recorder = ForwardRecorder(model)
    args = trl.GRPOConfig(
        output_dir=str(output_dir), use_cpu=True, bf16=False, max_steps=2, seed=0,
        # every prompt of the (small) dataset in each step, twice
        per_device_train_batch_size=2 * prompts_per_step, num_generations=2, max_completion_length=16,
        report_to="none", save_strategy="no", logging_steps=1, disable_tqdm=True,
    )
    trainer = trl.GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=dataset,
                              processing_class=tokenizer)
    trainer.train()
    return trainer, calls, recorder


def prompt_text(prompt) -> str:
    return prompt if isinstance(prompt, str) else "".join(message["content"] for message in prompt)


def completion_of(completion) -> str:
    return completion if isinstance(completion, str) else completion[0]["content"]


def check_run(trainer, calls, recorder, tokenizer, adapter_name, expect_score, conversational):
    """Two steps ran; the model read each prompt unchanged; each reward is its completion's score."""
    assert trainer.state.global_step == 2 and len(calls) == 2
    chat_marker = tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert recorder.rows and all(row[0] != chat_marker for row in recorder.rows), "a chat template wrapped the prompt"
    for call in calls:
        for prompt in call["prompts"]:
            assert isinstance(prompt, list) is conversational
            expected = tokenizer(prompt_text(prompt), add_special_tokens=False)["input_ids"]
            assert any(row[: len(expected)] == expected for row in recorder.rows), prompt_text(prompt)[:80]
        completions, columns = call["completions"], call["columns"]
        assert all(isinstance(c, list) is conversational for c in completions)
        assert isinstance(call["rewards"], list) and len(call["rewards"]) == len(completions)
        for index, (completion, reward) in enumerate(zip(completions, call["rewards"])):
            row = {name: values[index] for name, values in columns.items() if isinstance(values, list)}
            assert reward == expect_score(completion_of(completion), row)
    # TRL logs the mean of what the adapter returned, step by step.
    name = f"rewards/{adapter_name}/mean"
    logged = [entry[name] for entry in trainer.state.log_history if name in entry]
    assert logged == pytest.approx([sum(call["rewards"]) / len(call["rewards"]) for call in calls])


def countdown_score(text, row):
    return compute_score("countdown", text, {"target": row["target"], "numbers": row["numbers"]})["score"]


def multiply_score(text, row):
    return compute_score("multiply", text, row["product"])["score"]


def row_score(text, row):
    return compute_score(row["data_source"], text, row["reward_model"]["ground_truth"])["score"]


@pytest.mark.parametrize("conversational", [True, False], ids=["conversational", "plain"])
@pytest.mark.parametrize(
    "task, adapter, expect_score",
    [("countdown", countdown_reward, countdown_score), ("multiply", multiply_reward, multiply_score),
     ("countdown", task_reward, row_score)],
    ids=["countdown_reward", "multiply_reward", "task_reward"],
)
def test_grpo_trainer_runs_with_each_adapter(tiny_model_dir, task_dirs, tmp_path, task, adapter, expect_score,
                                             conversational):
    dataset, tokenizer = prepare_for_trl(task_dirs[task], tiny_model_dir, text_prompts=not conversational)
    assert dataset.num_rows == ROWS_PER_TASK
    trainer, calls, recorder = run_grpo(tiny_model_dir, dataset, tokenizer, adapter, tmp_path, ROWS_PER_TASK)
    check_run(trainer, calls, recorder, tokenizer, adapter.__name__, expect_score, conversational)
    assert {source for call in calls for source in call["columns"]["data_source"]} == {task}


@pytest.mark.parametrize("conversational", [True, False], ids=["conversational", "plain"])
def test_grpo_trainer_on_mixed_countdown_and_multiply_files(tiny_model_dir, task_dirs, tmp_path, conversational):
    files = [task_dirs["countdown"] / "train.parquet", task_dirs["multiply"] / "train.parquet"]
    dataset, tokenizer = prepare_for_trl(files, tiny_model_dir, text_prompts=not conversational)
    assert dataset.num_rows == 2 * ROWS_PER_TASK
    trainer, calls, recorder = run_grpo(tiny_model_dir, dataset, tokenizer, task_reward, tmp_path, 2 * ROWS_PER_TASK)
    check_run(trainer, calls, recorder, tokenizer, "task_reward", row_score, conversational)
    for call in calls:  # every step scored rows of both tasks, each by its own rule
        assert set(call["columns"]["data_source"]) == {"countdown", "multiply"}


def test_mixed_rows_keep_each_task_ground_truth(task_dirs):
    dataset = trl_dataset([task_dirs["countdown"], task_dirs["multiply"]])
    rows = list(dataset)
    countdown, multiply = rows[:ROWS_PER_TASK], rows[ROWS_PER_TASK:]
    assert all(row["data_source"] == "countdown" and row["product"] is None for row in countdown)
    assert all(row["data_source"] == "multiply" and row["target"] is None for row in multiply)
    for row in countdown:
        assert row["reward_model"]["ground_truth"]["target"] == row["target"]
        assert row["numbers"] == row["reward_model"]["ground_truth"]["numbers"]
        # The stored solution scores 1.0 through the adapter, as TRL would call it.
        answer = [{"role": "assistant", "content": f"<answer>{row['extra_info']['solution']}</answer>"}]
        assert countdown_reward(completions=[answer], target=[row["target"]], numbers=[row["numbers"]]) == [1.0]
    for row in multiply:
        assert row["product"] == row["factors"][0] * row["factors"][1]
        assert task_reward(completions=[f"<answer>{row['product']}</answer>"], data_source=[row["data_source"]],
                           reward_model=[row["reward_model"]]) == [1.0]


def test_tokenizer_follows_the_prompt_style(tiny_model_dir, task_dirs, tmp_path):
    base = trl_tokenizer(tiny_model_dir, "base")
    assert base.chat_template == BASE_CHAT_TEMPLATE
    messages = [{"role": "user", "content": "Compute 2 * 3."}]
    assert base.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) == "Compute 2 * 3."
    # Instruct prompts are chat messages for the model's own template.
    own = AutoTokenizer.from_pretrained(tiny_model_dir).chat_template
    assert trl_tokenizer(tiny_model_dir, "instruct").chat_template == own
    write_dataset(TASKS["countdown"](train_size=2, test_size=1, seed=1, prompt_style="instruct"), tmp_path / "chat", workers=1)
    dataset, tokenizer = prepare_for_trl(tmp_path / "chat", tiny_model_dir)
    assert tokenizer.chat_template == own and [m["role"] for m in dataset[0]["prompt"]] == ["system", "user"]
    with pytest.raises(ValueError, match="mix prompt styles"):
        prepare_for_trl([tmp_path / "chat", task_dirs["countdown"]], tiny_model_dir)
    with pytest.raises(ValueError, match="text_prompts=True needs base-style prompts"):
        trl_dataset(tmp_path / "chat", text_prompts=True)
    with pytest.raises(ValueError, match="unknown prompt_style 'chat'"):
        trl_tokenizer(tiny_model_dir, "chat")


def test_bad_paths_are_named(tmp_path, task_dirs):
    with pytest.raises(ValueError, match="has no test.parquet"):
        trl_dataset(tmp_path, split="test")
    with pytest.raises(ValueError, match="does not exist"):
        trl_dataset(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="split must be one of"):
        trl_dataset(task_dirs["countdown"], split="validation")
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"target": [1], "nums": [[1]]}), tmp_path / "classic.parquet")
    with pytest.raises(ValueError, match="lacks the column.*prompt, data_source, reward_model"):
        trl_dataset(tmp_path / "classic.parquet")


def readme_trl_example() -> tuple[list[str], str]:
    """The README's TRL example: its data_gen command lines and its Python code."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("**TRL**") :]
    section = section[: section.index("\n## ")]
    commands = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    return [line for line in commands.splitlines() if line.strip()], code


def test_readme_trl_example_runs_as_written(tiny_model_dir, tmp_path, monkeypatch):
    from data_gen.__main__ import main as data_gen_main

    commands, code = readme_trl_example()
    monkeypatch.chdir(tmp_path)
    for command in commands:
        words = shlex.split(command)
        assert words[:3] == ["python", "-m", "data_gen"], command
        assert data_gen_main(words[3:] + ["--workers", "1"]) == 0
    # The one change: the tiny local model instead of the hub's Qwen2.5-0.5B.
    assert code.count('"Qwen/Qwen2.5-0.5B"') == 1
    namespace = {}
    exec(compile(code.replace('"Qwen/Qwen2.5-0.5B"', repr(str(tiny_model_dir))), "README.md", "exec"), namespace)
    trainer = namespace["trainer"]
    assert trainer.state.global_step == trainer.args.max_steps == 2
    assert {"countdown", "multiply"} <= set(namespace["dataset"]["data_source"])
