"""Problems from a parquet file in tinyzero's (verl's) row schema, and their prompt texts.

Prompts are used as stored, with the chat-template handling of training: a `base` prompt's
content passes through unchanged, an `instruct` prompt gets the model's own chat template.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from data_gen.dataset import ROW_COLUMNS
from data_gen.tasks import task_spec
from tinyzero.eval.config import EvalConfigError
from tinyzero.templates import PROMPT_STYLES, chat_template_for

REQUIRED_COLUMNS = tuple(ROW_COLUMNS)


@dataclass(frozen=True)
class Problem:
    index: int  # row number in the parquet file
    data_source: str
    messages: list[dict]  # the stored chat list
    ground_truth: object
    extra_info: dict
    prompt_style: str
    difficulty: str


def difficulty_label(data_source: str, ground_truth) -> str:
    """What makes a problem hard, as its task declares it (data_gen's registry): how many numbers
    (Countdown), how many digits per factor (multiplication). The data_source when not known."""
    spec = task_spec(data_source)
    if spec is None:
        return data_source
    try:
        return spec.difficulty(ground_truth)
    except (KeyError, TypeError, ValueError, AttributeError):  # a ground truth without the inputs
        return data_source


def recipe_test_split(recipe: str) -> Path:
    """The test split training generates for a recipe: DATA_ROOT/<task>-<hash>/test.parquet, as
    `python -m tinyzero.train +recipe=NAME` composes and names it (TINYZERO_DATA_ROOT honoured)."""
    from tinyzero.recipe import CheckError, recipe_config, task_data_dir

    # tinyzero's layer of the recipe (no Hydra): eval runs inside its own Hydra app.
    try:
        folder, _ = task_data_dir(recipe_config(recipe))
    except CheckError as error:
        raise EvalConfigError(str(error)) from None
    path = folder / "test.parquet"
    if not path.is_file():
        raise EvalConfigError(
            f"recipe={recipe}: its data is not generated yet ({path} is missing); generate it with "
            f"`python -m tinyzero.train +recipe={recipe} dry_run=true`, or give data=PATH"
        )
    return path


def load_problems(path: str | Path, limit: int | None = None, prompt_style: str | None = None) -> list[Problem]:
    """Read and check the rows; errors name the file, the row and the fix."""
    import pyarrow.parquet as pq

    path = Path(path)
    if path.is_dir():  # data_gen's output folder instead of a split in it
        raise EvalConfigError(
            f"data={str(path)!r} is a folder; give a parquet file in it, e.g. data={path / 'test.parquet'}"
        )
    if not path.is_file():
        raise EvalConfigError(
            f"data={str(path)!r}: no such file; give a parquet file written by `python -m data_gen` "
            f"(e.g. data/countdown/test.parquet)"
        )
    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for a non-parquet file
        raise EvalConfigError(f"data={str(path)!r} is not a readable parquet file: {exc}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in schema.names]
    if missing:
        raise EvalConfigError(
            f"data={str(path)!r} lacks column(s) {', '.join(missing)} (has: {', '.join(schema.names)}); "
            f"tinyzero's schema needs {', '.join(REQUIRED_COLUMNS)} and extra_info"
        )
    columns = list(REQUIRED_COLUMNS) + (["extra_info"] if "extra_info" in schema.names else [])
    table = pq.read_table(path, columns=columns)
    if limit is not None:
        table = table.slice(0, limit)
    if table.num_rows == 0:
        raise EvalConfigError(f"data={str(path)!r} has no rows")
    problems = []
    for index, row in enumerate(table.to_pylist()):
        where = f"data={str(path)!r} row {index}"
        messages = row["prompt"]
        if not isinstance(messages, list) or not all(isinstance(m, dict) and "content" in m for m in messages):
            raise EvalConfigError(f"{where}: prompt must be a chat list of {{role, content}}, got {messages!r:.200}")
        reward_model = row["reward_model"] or {}
        if "ground_truth" not in reward_model:
            raise EvalConfigError(f"{where}: reward_model has no ground_truth")
        extra_info = row.get("extra_info") or {}
        style = prompt_style or extra_info.get("prompt_style")
        if style not in PROMPT_STYLES:
            raise EvalConfigError(
                f"{where}: extra_info.prompt_style is {style!r}; expected one of {', '.join(PROMPT_STYLES)}, "
                f"or set prompt_style=base|instruct on the command line"
            )
        ground_truth = reward_model["ground_truth"]
        if isinstance(ground_truth, dict):  # parquet gives every row all struct fields; drop the unset
            ground_truth = {k: v for k, v in ground_truth.items() if v is not None}
        problems.append(
            Problem(
                index=index,
                data_source=row["data_source"],
                messages=messages,
                ground_truth=ground_truth,
                extra_info=extra_info,
                prompt_style=style,
                difficulty=difficulty_label(row["data_source"], ground_truth),
            )
        )
    return problems


def render_prompt(tokenizer, problem: Problem) -> str:
    """The model's input text, exactly as training renders it."""
    template = chat_template_for(problem.prompt_style)
    if template is None and not tokenizer.chat_template:
        raise EvalConfigError(
            f"problem {problem.index} is an instruct prompt but the tokenizer has no chat template; "
            "use base-style data for a base model (data_gen prompt_style=base) or set prompt_style=base"
        )
    # As verl's agent loop: the generation prompt is always requested; the base template ignores it.
    return tokenizer.apply_chat_template(
        problem.messages, chat_template=template, add_generation_prompt=True, tokenize=False
    )
