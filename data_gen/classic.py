"""Import a classic Countdown file (rows with `target` and `nums`) into our schema.

The classic TinyZero recipe trained on the first 327,680 rows of a downloaded Countdown set and
tested on the next 1,024. Importing the same file with the same sizes gives the same problems in
our schema, so runs can be compared with published curves. A row's own prompt (a `prompt`
column, as in TinyZero's preprocessed parquet: its wording, not ours) is kept as it is, since
the wording changes the curves; `keep_prompts=False` writes every prompt in a data_gen style
instead. Each row is solved with our solver:
a row that is not a valid problem or has no solution under the reward's rules is dropped and
reported (in the returned counts and in dataset_info.json). Duplicates are kept, to stay
faithful to the file, and counted in the report.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import ClassVar

from data_gen.config import check_choice, check_integers, check_sizes, field_help
from data_gen.countdown import DIFFICULTY_SPLITS, CountdownConfig, countdown_table
from data_gen.prompts import PROMPT_STYLES
from data_gen.solver import MAX_NUMBERS, solver_for
from tinyzero.progress import Progress

__all__ = ["ClassicImportConfig", "read_classic_rows"]

_CHUNK_ROWS = 4096
_REPORTED_DROPS = 20  # dropped rows listed in dataset_info.json (all are counted)


def as_messages(prompt, where: str) -> list[dict[str, str]] | None:
    """A row's own prompt as chat messages: text becomes one user message, as verl's schema has it."""
    if prompt is None:
        return None
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    if isinstance(prompt, (list, tuple)) and prompt and all(
        isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in prompt
    ):
        return [{"role": m["role"], "content": m["content"]} for m in prompt]
    raise ValueError(
        f"{where}: prompt {str(prompt)[:80]!r} is neither text nor a list of {{role, content}} messages; "
        "fix the file, or pass --no-keep-prompts to write data_gen's own prompts"
    )


def prompt_style_of(messages: list[dict[str, str]]) -> str:
    """The chat template a kept prompt needs: one user message is the whole text (`base`, passed
    through unchanged, as TinyZero fed it), anything else is messages for the model's own template."""
    return "base" if len(messages) == 1 and messages[0]["role"] == "user" else "instruct"


def read_classic_rows(path: str | Path, prompts: bool = True) -> list[tuple]:
    """(target, nums, prompt) of every row of a parquet or JSONL file, in file order; prompt is
    the row's own (chat messages), or None when it has none or `prompts` is false.

    A parquet file without `target`/`nums` columns may hold them in verl's
    `reward_model.ground_truth.{target, numbers}` (TinyZero's preprocessed files)."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
        prompt_column = ["prompt"] if prompts and "prompt" in names else []
        if "target" in names and "nums" in names:
            table = pq.read_table(path, columns=["target", "nums", *prompt_column])
            targets, nums = table.column("target"), table.column("nums")
        elif "reward_model" in names:
            table = pq.read_table(path, columns=["reward_model", *prompt_column])
            try:
                truth = pc.struct_field(table.column("reward_model"), "ground_truth")
                targets, nums = pc.struct_field(truth, "target"), pc.struct_field(truth, "numbers")
            except (KeyError, ValueError):
                raise ValueError(f"{path}: reward_model has no ground_truth.target and .numbers (verl's Countdown schema)") from None
        else:
            raise ValueError(
                f"{path} has no `target` and `nums` columns (nor verl's reward_model.ground_truth): "
                "a classic file has `target` and `nums` per row"
            )
        prompts = table.column("prompt").to_pylist() if prompt_column else [None] * table.num_rows
        return [
            (target, numbers, as_messages(prompt, f"{path} row {row}"))
            for row, (target, numbers, prompt) in enumerate(zip(targets.to_pylist(), nums.to_pylist(), prompts))
        ]
    if path.suffix in (".jsonl", ".json"):
        rows = []
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    prompt = as_messages(row.get("prompt"), f"{path} line {number}") if prompts else None
                    rows.append((row["target"], row["nums"], prompt))
                except (KeyError, TypeError, json.JSONDecodeError) as error:
                    raise ValueError(f"{path} line {number} is not a JSON object with `target` and `nums`: {error}") from None
        return rows
    raise ValueError(f"{path}: expected a .parquet or .jsonl file")


def _problem_error(target, nums) -> str | None:
    """Why a row is not a Countdown problem we can pose, or None."""
    if isinstance(target, bool) or not isinstance(target, int):
        return f"target {target!r} is not an integer"
    if abs(target) > 10**9:
        return f"target {target} is beyond 10**9"
    if not isinstance(nums, list) or not all(isinstance(n, int) and not isinstance(n, bool) for n in nums):
        return f"nums {nums!r} is not a list of integers"
    if not 2 <= len(nums) <= MAX_NUMBERS:
        return f"{len(nums)} numbers (2 to {MAX_NUMBERS} supported)"
    if min(nums) < 1 or max(nums) > 10**6:
        return f"nums {nums} has a number outside 1..10**6"
    return None


def _solve_rows(first_row: int, rows: list[tuple], counted_rows: range) -> list[tuple]:
    """(row number, problem or None, why dropped) for each row; difficulty for rows in `counted_rows`.

    A problem is (numbers, target, solution, difficulty, the row's own prompt or None)."""
    results = []
    for offset, (target, nums, prompt) in enumerate(rows):
        error = _problem_error(target, nums)
        if error is not None:
            results.append((first_row + offset, None, error))
            continue
        solver = solver_for(nums, target)
        solution = solver.find(target)
        if solution is None:
            results.append((first_row + offset, None, "no solution"))
        else:
            difficulty = solver.count(target) if first_row + offset in counted_rows else None
            results.append((first_row + offset, (tuple(nums), target, solution, difficulty, prompt), None))
    return results


@dataclass
class ClassicImportConfig:
    """A classic Countdown file: which rows become train and test, and whose prompts they carry."""

    task: ClassVar[str] = "countdown"

    path: str = field(metadata=field_help("local parquet or JSONL file with `target` and `nums` per row (or verl's reward_model.ground_truth), and optionally its own `prompt`"))
    # The classic recipe's split: first 327,680 rows train, the next 1,024 test.
    train_size: int = field(default=327_680, metadata=field_help("rows [0, train_size) become train"))
    test_size: int = field(default=1_024, metadata=field_help("rows [train_size, train_size + test_size) become test"))
    difficulty: str = field(default="test", metadata=field_help("which splits get each problem's solution count as its difficulty; the others store null", choices=DIFFICULTY_SPLITS))
    # The file's wording is what published curves were trained on: kept unless asked otherwise.
    keep_prompts: bool = field(default=True, metadata=field_help("keep the prompt a row carries (a `prompt` column, as in TinyZero's preprocessed files); --no-keep-prompts writes every prompt in --prompt-style"))
    prompt_style: str = field(default="base", metadata=field_help("data_gen's prompt style for rows without their own prompt (all rows with --no-keep-prompts): text for a base model or chat messages for an instruct model", choices=PROMPT_STYLES))

    def validate(self) -> None:
        check_integers(self, ("train_size", "test_size"))
        check_sizes(self)
        check_choice(self, "difficulty", DIFFICULTY_SPLITS)
        check_choice(self, "prompt_style", PROMPT_STYLES)
        if not isinstance(self.keep_prompts, bool):
            raise ValueError(f"keep_prompts must be true or false, got {self.keep_prompts!r}")
        if not Path(self.path).is_file():
            raise ValueError(f"path {self.path!r} is not a file: give a local parquet or JSONL classic Countdown file")

    def check_capacity(self) -> None:
        self.validate()
        self._rows = read_classic_rows(self.path, prompts=self.keep_prompts)
        needed = self.train_size + self.test_size
        if len(self._rows) < needed:
            raise ValueError(
                f"{self.path} has {len(self._rows)} rows but train_size + test_size = {needed}: ask for fewer rows"
            )

    def __getstate__(self) -> dict:
        """Workers get the fields only, not the rows read from the file."""
        return {spec.name: getattr(self, spec.name) for spec in fields(self)}

    def make_splits(self, runner) -> dict[str, list[tuple]]:
        if not hasattr(self, "_rows"):
            self.check_capacity()
        rows = self._rows[: self.train_size + self.test_size]
        starts = list(range(0, len(rows), _CHUNK_ROWS))
        kept: dict[str, list[tuple]] = {"train": [], "test": []}
        self._dropped: list[dict] = []
        counted = {"all": range(len(rows)), "test": range(self.train_size, len(rows)), "none": range(0)}[self.difficulty]
        pieces = [rows[s : s + _CHUNK_ROWS] for s in starts]
        with Progress(len(rows), "classic rows solved") as progress:
            for results in runner.map(_solve_rows, starts, pieces, [counted] * len(starts)):
                for row, problem, why in results:
                    split = "train" if row < self.train_size else "test"
                    if problem is None:
                        self._dropped.append({"row": row, "split": split, "reason": why})
                    else:
                        kept[split].append(problem)
                progress.update(len(results))
        own = Counter(prompt_style_of(p[4]) for split in kept.values() for p in split if p[4] is not None)
        self._prompts = {
            "kept_from_file": sum(own.values()),
            "kept_styles": dict(sorted(own.items())),
            "written_by_data_gen": sum(len(split) for split in kept.values()) - sum(own.values()),
            "data_gen_style": self.prompt_style,
        }
        self._duplicates = {
            split: sum(n - 1 for n in Counter(CountdownConfig.key(p) for p in kept[split]).values()) for split in kept
        }
        train_keys = {CountdownConfig.key(p) for p in kept["train"]}
        self._overlap = sum(CountdownConfig.key(p) in train_keys for p in kept["test"])
        return kept

    def report(self) -> dict:
        """What the import dropped and what it kept that our generator would not have."""
        return {
            "import": {
                "source": str(Path(self.path).resolve()),
                "dropped": len(self._dropped),
                "dropped_by_reason": dict(sorted(Counter(d["reason"] if d["reason"] == "no solution" else "invalid row" for d in self._dropped).items())),
                "dropped_rows": self._dropped[:_REPORTED_DROPS],
                "duplicate_problems": self._duplicates,
                "test_problems_also_in_train": self._overlap,
                # Which wording the rows carry: the file's own, or data_gen's (and in what style).
                "prompts": self._prompts,
            }
        }

    def table(self, problems: list[tuple], split: str, first_index: int = 0):
        """verl's rows: data_gen's prompt, replaced by the row's own where it has one."""
        import pyarrow as pa

        table = countdown_table(problems, split, self.prompt_style, first_index)
        own = [problem[4] for problem in problems]
        if all(messages is None for messages in own):
            return table
        prompts = table.column("prompt").to_pylist()
        styles = table.column("extra_info").combine_chunks().field("prompt_style").to_pylist()
        for row, messages in enumerate(own):
            if messages is not None:
                prompts[row], styles[row] = messages, prompt_style_of(messages)
        extra_info = table.column("extra_info").combine_chunks()
        names = [spec.name for spec in extra_info.type]
        fields_ = [pa.array(styles, pa.string()) if name == "prompt_style" else extra_info.field(name) for name in names]
        table = table.set_column(table.column_names.index("prompt"), "prompt", pa.array(prompts, table.schema.field("prompt").type))
        return table.set_column(table.column_names.index("extra_info"), "extra_info", pa.StructArray.from_arrays(fields_, names=names))

    summary = staticmethod(CountdownConfig.summary)
