"""Import a classic Countdown file (rows with `target` and `nums`) into our schema.

The classic TinyZero recipe trained on the first 327,680 rows of a downloaded Countdown set and
tested on the next 1,024. Importing the same file with the same sizes gives the same problems in
our schema, so runs can be compared with published curves. Each row is solved with our solver:
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

__all__ = ["ClassicImportConfig", "read_classic_rows"]

_CHUNK_ROWS = 4096
_REPORTED_DROPS = 20  # dropped rows listed in dataset_info.json (all are counted)


def read_classic_rows(path: str | Path) -> list[tuple]:
    """(target, nums) of every row of a parquet or JSONL file, in file order."""
    path = Path(path)
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
        missing = [name for name in ("target", "nums") if name not in schema.names]
        if missing:
            raise ValueError(f"{path} has no column {', '.join(missing)}: a classic file has `target` and `nums` columns")
        table = pq.read_table(path, columns=["target", "nums"])
        return list(zip(table.column("target").to_pylist(), table.column("nums").to_pylist()))
    if path.suffix in (".jsonl", ".json"):
        rows = []
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    rows.append((row["target"], row["nums"]))
                except (ValueError, KeyError, TypeError) as error:
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
    """(row number, problem or None, why dropped) for each row; difficulty for rows in `counted_rows`."""
    results = []
    for offset, (target, nums) in enumerate(rows):
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
            results.append((first_row + offset, (tuple(nums), target, solution, difficulty), None))
    return results


@dataclass
class ClassicImportConfig:
    """A classic Countdown file: which rows become train and test, and the prompt style."""

    task: ClassVar[str] = "countdown"

    path: str = field(metadata=field_help("local parquet or JSONL file with `target` and `nums` per row"))
    # The classic recipe's split: first 327,680 rows train, the next 1,024 test.
    train_size: int = field(default=327_680, metadata=field_help("rows [0, train_size) become train"))
    test_size: int = field(default=1_024, metadata=field_help("rows [train_size, train_size + test_size) become test"))
    difficulty: str = field(default="test", metadata=field_help("which splits get each problem's solution count as its difficulty; the others store null", choices=DIFFICULTY_SPLITS))
    prompt_style: str = field(default="base", metadata=field_help("prompt for a base model or chat messages for an instruct model", choices=PROMPT_STYLES))

    def validate(self) -> None:
        check_integers(self, ("train_size", "test_size"))
        check_sizes(self)
        check_choice(self, "difficulty", DIFFICULTY_SPLITS)
        check_choice(self, "prompt_style", PROMPT_STYLES)
        if not Path(self.path).is_file():
            raise ValueError(f"path {self.path!r} is not a file: give a local parquet or JSONL classic Countdown file")

    def check_capacity(self) -> None:
        self.validate()
        self._rows = read_classic_rows(self.path)
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
        for results in runner.map(_solve_rows, starts, pieces, [counted] * len(starts)):
            for row, problem, why in results:
                split = "train" if row < self.train_size else "test"
                if problem is None:
                    self._dropped.append({"row": row, "split": split, "reason": why})
                else:
                    kept[split].append(problem)
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
            }
        }

    def table(self, problems: list[tuple], split: str, first_index: int = 0):
        return countdown_table(problems, split, self.prompt_style, first_index)

    summary = staticmethod(CountdownConfig.summary)
