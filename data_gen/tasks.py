"""The task registry: everything the other stages need to know about a task, declared once by the
task's own module (data_gen/countdown.py, data_gen/multiply.py) and looked up here by name.

Train composes a task block from `config`'s defaults and generates data with it; eval breaks
accuracy down by `difficulty`; aha and eval read ground truths by `ground_truth_fields`; anyone
scoring outside verl calls `reward`. Adding a task is one module that registers its TaskSpec,
plus its rule in tinyzero.rewards (which keeps its own dispatch by name and imports nothing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    name: str  # the rows' data_source and the recipes' task.name
    config: type  # the generator config dataclass (defaults, `validate()` naming the bad field)
    question: Callable[..., str]  # the problem text (its last argument the prompt style); chat_prompt wraps it
    ground_truth_fields: tuple[str, ...]  # reward_model.ground_truth's fields (tinyzero.rewards' definition)
    difficulty: Callable[[dict], str]  # eval's breakdown label, read from a row's ground truth
    reward: Callable[..., object]  # the tinyzero.rewards function that scores one response

    def prompt(self, prompt_style: str, *question_args) -> list[dict[str, str]]:
        """A row's `prompt` (chat list), exactly as training data carries it."""
        from data_gen.prompts import chat_prompt

        return chat_prompt(self.question(*question_args, prompt_style), prompt_style)


TASK_SPECS: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    if spec.name in TASK_SPECS:
        raise ValueError(f"task {spec.name!r} is registered twice")
    TASK_SPECS[spec.name] = spec
    return spec


def task_spec(data_source: str) -> TaskSpec | None:
    """The task a row's data_source names (exactly, or containing one name, as the reward reads it)."""
    if data_source in TASK_SPECS:
        return TASK_SPECS[data_source]
    matches = [spec for name, spec in TASK_SPECS.items() if isinstance(data_source, str) and name in data_source]
    return matches[0] if len(matches) == 1 else None
