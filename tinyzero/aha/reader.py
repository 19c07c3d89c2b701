"""Stream rollout dumps one line at a time.

verl 0.9.1 writes `trainer.rollout_data_dir/STEP.jsonl` (`RayPPOTrainer._write_generations`), one
JSON object per response with `input` (decoded prompt), `output` (decoded response), `gts`
(the row's `reward_model.ground_truth`), `score` (summed token-level reward) and `step`, plus
every extra key the reward returned (`acc`, `has_answer` from tinyzero's reward) on the legacy
trainer. The default v1 trainer (`trainer.use_v1=true`) adds only `uid`, so `acc` and
`has_answer` may be missing: correctness then falls back to `score >= 1.0` (the reward's correct
score) and the format to `score > 0`. The legacy trainer serialises numpy values with `str`, so
`gts` may hold strings such as `"[19 36 55  7]"`.

Eval's `samples.jsonl` is read as a single step. Accepted keys, first match wins:
response text `output` | `response` | `completion`; prompt `input` | `prompt` | `problem` |
`question`; ground truth `gts` | `ground_truth` | `reward_model.ground_truth` | a `problem` object
with `target`; reward `score` | `reward`; correctness `acc` | `correct`; format `has_answer`.

Nothing here holds more than one line at a time: memory is bounded by the longest line, and the
per-step aggregation above it holds one number per response of the current step.

Each response is measured on its first MEASURED_CHARS characters (about 25,000 tokens, far past
any training response length): a longer one is cut there, and the report counts the cut ones.
The detectors and the report then cost a bounded amount per response, so the time is linear in
the dump whatever a response holds (a 50 MB response of nothing but behaviour markers stalled
the second pass and the report's highlighting).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tinyzero.rewards import CORRECT_SCORE, NO_ANSWER_SCORE
from tinyzero.rewards.score import GROUND_TRUTH_FIELDS

# verl names each dump file after the global step: "17.jsonl".
STEP_FILE = re.compile(r"^(\d+)\.jsonl$")
EVAL_SAMPLES_FILE = "samples.jsonl"
# What the analysis reads of one response; the rest is cut (and counted).
MEASURED_CHARS = 100_000


class DumpError(ValueError):
    """The rollout folder cannot be analysed (missing, empty, nothing readable)."""


@dataclass(frozen=True)
class Task:
    """What the response had to reach: the Countdown target and numbers, or the product."""

    kind: str  # "countdown" or "multiply"
    target: int
    numbers: tuple[int, ...]  # the Countdown numbers, or the two factors


@dataclass(frozen=True)
class Rollout:
    """One response as dumped by training (or eval), with where it came from."""

    step: int
    index: int  # 0-based line number in its step file: the example index in aha.json
    prompt: str
    response: str
    ground_truth: object = None
    score: float | None = None
    acc: float | None = None
    has_answer: float | None = None
    cut: int = 0  # characters cut from the end of the response (beyond MEASURED_CHARS)

    @property
    def correct(self) -> bool:
        if self.acc is not None:
            return self.acc >= 0.5
        return self.score is not None and self.score >= CORRECT_SCORE

    @property
    def formatted(self) -> bool:
        if self.has_answer is not None:
            return self.has_answer >= 0.5
        return self.score is not None and self.score > NO_ANSWER_SCORE

    @property
    def task(self) -> Task | None:
        return parse_ground_truth(self.ground_truth)


def _ints(value: object) -> tuple[int, ...] | None:
    """A list of integers from a list, a numpy-style string "[19 36 55  7]" or "[19, 36]"."""
    if isinstance(value, (list, tuple)):
        try:
            return tuple(int(v) for v in value)
        except (TypeError, ValueError):
            return None
    if isinstance(value, str):
        found = re.findall(r"-?\d+", value)
        return tuple(int(v) for v in found) if found else None
    return None


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def parse_ground_truth(gts: object) -> Task | None:
    """Countdown `{"target", "numbers"}`, multiply `{"product", "factors"}` or a bare product
    (the shapes tinyzero.rewards defines), also as JSON or numpy-style strings."""
    if isinstance(gts, str):
        try:
            gts = json.loads(gts)
        except ValueError:
            return None if _int(gts) is None else Task("multiply", _int(gts), ())
    if isinstance(gts, dict):
        for kind, (goal, inputs) in GROUND_TRUTH_FIELDS.items():
            if _int(gts.get(goal)) is not None:
                return Task(kind, _int(gts[goal]), _ints(gts.get(inputs)) or ())
        return None
    product = _int(gts)
    return None if product is None else Task("multiply", product, ())


def _first(record: dict, *keys: str) -> object:
    for key in keys:
        if record.get(key) is not None:
            return record[key]
    return None


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def parse_line(line: bytes, step: int, index: int) -> Rollout | None:
    """One dump line as a Rollout, or None when it is malformed (not a usable JSON object)."""
    try:
        record = json.loads(line)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict):
        return None
    response = _first(record, "output", "response", "completion")
    if not isinstance(response, str):
        return None
    prompt = _first(record, "input", "prompt", "problem", "question")
    problem = record.get("problem")
    ground_truth = _first(record, "gts", "ground_truth")
    if ground_truth is None and isinstance(record.get("reward_model"), dict):
        ground_truth = record["reward_model"].get("ground_truth")
    if ground_truth is None and isinstance(problem, dict) and "target" in problem:
        ground_truth = problem
    score = _number(_first(record, "score", "reward"))
    acc = _number(_first(record, "acc", "correct"))
    if score is None and acc is None:
        return None  # nothing says whether it was right: cannot be measured
    cut = max(0, len(response) - MEASURED_CHARS)
    return Rollout(
        step=step,
        index=index,
        prompt=prompt if isinstance(prompt, str) else json.dumps(prompt, ensure_ascii=False),
        response=response[:MEASURED_CHARS] if cut else response,
        ground_truth=ground_truth,
        score=score,
        acc=acc,
        has_answer=_number(record.get("has_answer")),
        cut=cut,
    )


class StepFile:
    """One step's dump file. Iterating it streams its rollouts and counts malformed lines and
    cut responses."""

    def __init__(self, step: int, path: Path):
        self.step = step
        self.path = path
        self.malformed = 0
        self.read = 0
        self.cut = 0

    def __iter__(self) -> Iterator[Rollout]:
        self.malformed = self.read = self.cut = 0
        with open(self.path, "rb") as lines:  # bytes: a bad encoding is one malformed line
            for index, line in enumerate(lines):
                if not line.strip():
                    continue
                rollout = parse_line(line, self.step, index)
                if rollout is None:
                    self.malformed += 1
                    continue
                self.read += 1
                self.cut += rollout.cut > 0
                yield rollout

    def __repr__(self) -> str:
        return f"StepFile(step={self.step}, path={str(self.path)!r})"


_WHAT_TO_PASS = (
    "the folder training wrote to trainer.rollout_data_dir (one STEP.jsonl per step), "
    "one STEP.jsonl, or an eval samples.jsonl"
)


def no_rollouts_error(rollout_dir: str | Path, step_files: list[StepFile], malformed: int) -> DumpError:
    """Nothing readable: for a file given in place of the folder, say what was expected."""
    lines = (f"{malformed} malformed line(s); each line must be a JSON object with the response text in "
             "`output` (or `response`) and a `score` (or `acc`)")
    if Path(rollout_dir).is_file():
        return DumpError(f"{str(rollout_dir)!r} is a file, read as one step, with no readable rollouts "
                         f"({lines}); expected {_WHAT_TO_PASS}")
    return DumpError(f"no readable rollouts in {str(rollout_dir)!r}: {len(step_files)} file(s), {lines}")


def find_step_files(rollout_dir: str | Path) -> list[StepFile]:
    """The step files of a dump, in step order. Raises DumpError naming the path and the fix."""
    path = Path(rollout_dir)
    if not path.exists():
        raise DumpError(
            f"rollout folder or file {str(path)!r} does not exist: pass {_WHAT_TO_PASS}"
        )
    if path.is_file():
        if path.stat().st_size == 0:
            raise DumpError(f"{str(path)!r} is an empty file; expected {_WHAT_TO_PASS}")
        match = STEP_FILE.match(path.name)
        return [StepFile(int(match.group(1)) if match else 0, path)]
    steps = sorted(
        (int(m.group(1)), child)
        for child in path.iterdir()
        if child.is_file() and (m := STEP_FILE.match(child.name))
    )
    if steps:
        return [StepFile(step, child) for step, child in steps]
    if (path / EVAL_SAMPLES_FILE).is_file():
        return [StepFile(0, path / EVAL_SAMPLES_FILE)]
    if (path / "rollouts").is_dir():  # the checkpoint folder instead of its rollouts/ inside
        raise DumpError(f"{str(path)!r} has no STEP.jsonl files; did you mean {str(path / 'rollouts')!r}?")
    raise DumpError(
        f"rollout folder {str(path)!r} has no STEP.jsonl files (nor an eval {EVAL_SAMPLES_FILE}): "
        "set trainer.rollout_data_dir when training (the recipes do) and pass that folder"
    )
