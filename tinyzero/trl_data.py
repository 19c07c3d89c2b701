"""data_gen's files as a TRL dataset, with a tokenizer that shows the model what verl shows it.

    from tinyzero.trl_data import prepare_for_trl
    dataset, tokenizer = prepare_for_trl(["data/countdown", "data/multiply"], "Qwen/Qwen2.5-0.5B")
    GRPOTrainer(model=..., processing_class=tokenizer, reward_funcs=task_reward, train_dataset=dataset, ...)

Two things a plain `datasets.load_dataset("parquet", ...)` gets wrong with these files:
- Tasks mix badly: each task's `reward_model.ground_truth` is a struct with its own fields
  (`{target, numbers}`, `{product, factors}`), and `datasets` refuses to cast one to the other.
  Here the files are read with pyarrow and joined on the union of the fields (the other task's
  fields are null), which `tinyzero.rewards.trl.task_reward` reads row by row.
- TRL applies the tokenizer's chat template to conversational prompts. A `base` prompt is the whole
  text a base model sees, so the tokenizer given here has the project's pass-through template
  (`tinyzero.templates`, the one verl trains with), and the model reads the prompt unchanged.

This module lives outside `tinyzero.rewards`, which stays standard-library only: it needs
`datasets` and `transformers`, both of which `pip install trl` brings.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from tinyzero.templates import chat_template_for

# The columns of verl's row schema that TRL and task_reward need.
REQUIRED_COLUMNS = ("prompt", "data_source", "reward_model")
SPLITS = ("train", "test")


def _parquet_file(path, split: str) -> Path:
    """A parquet file, or a data_gen folder's `<split>.parquet`."""
    path = Path(path)
    if path.is_dir():
        path = path / f"{split}.parquet"
        if not path.is_file():
            raise ValueError(f"{path.parent} has no {path.name}: give a folder written by `python -m data_gen` or a parquet file")
    elif not path.is_file():
        raise ValueError(f"{path} does not exist: give a folder written by `python -m data_gen` or a parquet file")
    elif path.suffix != ".parquet":
        raise ValueError(f"{path} is not a .parquet file: give a folder written by `python -m data_gen` or a parquet file")
    return path


def read_rows(paths: str | os.PathLike | Iterable, split: str = "train"):
    """One pyarrow table of every row of `paths` (files or data_gen folders), in order, tasks mixed.

    Struct columns of different files are joined on the union of their fields, nulls filling
    the fields a file lacks.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    files = [_parquet_file(path, split) for path in paths]
    if not files:
        raise ValueError("no files given: pass data_gen folders or parquet files")
    tables = []
    for file in files:
        table = pq.read_table(file)
        missing = [name for name in REQUIRED_COLUMNS if name not in table.column_names]
        if missing:
            raise ValueError(
                f"{file} lacks the column(s) {', '.join(missing)} of verl's row schema "
                f"({', '.join(REQUIRED_COLUMNS)}): write it with `python -m data_gen`"
            )
        tables.append(table)
    # "permissive" unifies struct types field by field: {target, numbers} + {product, factors}.
    return pa.concat_tables(tables, promote_options="permissive")


def _with_ground_truth_columns(table):
    """Each ground-truth field also as a column (`target`, `numbers`, `product`, ...), the columns
    `countdown_reward` and `multiply_reward` read; a column already there is kept."""
    import pyarrow.compute as pc

    import pyarrow as pa

    try:
        ground_truth = pc.struct_field(table.column("reward_model"), "ground_truth")
    except (KeyError, ValueError):
        raise ValueError("the reward_model column has no ground_truth field (verl's row schema): write the files with `python -m data_gen`") from None
    if not pa.types.is_struct(ground_truth.type):  # a bare product, say: nothing to spread out
        return table
    for index, spec in enumerate(ground_truth.type):
        if spec.name not in table.column_names:
            table = table.append_column(spec.name, pc.struct_field(ground_truth, [index]))
    return table


def _as_text_prompts(table):
    """Base-style prompts (one user message holding the whole text) as plain strings."""
    import pyarrow.compute as pc

    prompt = table.column("prompt")
    lengths = pc.list_value_length(prompt)
    roles = pc.struct_field(pc.list_flatten(prompt), "role")
    if pc.any(pc.not_equal(lengths, 1)).as_py() or pc.any(pc.not_equal(roles, "user")).as_py():
        raise ValueError(
            "text_prompts=True needs base-style prompts (one user message holding the whole text); "
            "these rows have other messages (instruct style?): keep them conversational (text_prompts=False) "
            "so that the model's chat template applies"
        )
    text = pc.struct_field(pc.list_flatten(prompt), "content")
    return table.set_column(table.column_names.index("prompt"), "prompt", text)


def _trl_table(paths, split: str, text_prompts: bool):
    table = _with_ground_truth_columns(read_rows(paths, split))
    return _as_text_prompts(table) if text_prompts else table


def trl_dataset(paths, *, split: str = "train", text_prompts: bool = False):
    """A `datasets.Dataset` of data_gen rows for TRL, from files or data_gen folders, tasks mixed.

    Columns: verl's (`prompt`, `data_source`, `reward_model`, `extra_info`, ...) plus each
    ground-truth field (`target`, `numbers` for Countdown; `product`, `factors` for
    multiplication; null in rows of the other task). `prompt` stays a chat list (TRL's
    conversational format); `text_prompts=True` makes base-style prompts plain strings.
    """
    from datasets import Dataset

    return Dataset(_trl_table(paths, split, text_prompts))


def prompt_style_of(table) -> str:
    """The one prompt style (`base` or `instruct`) data_gen recorded in a table's `extra_info`."""
    import pyarrow.compute as pc

    try:
        styles = pc.unique(pc.struct_field(table.column("extra_info"), "prompt_style")).to_pylist()
    except (KeyError, ValueError, TypeError):
        raise ValueError(
            "the rows have no extra_info.prompt_style (not written by data_gen?): pass prompt_style='base' or 'instruct'"
        ) from None
    if len(styles) != 1 or styles[0] is None:
        raise ValueError(
            f"the rows mix prompt styles {styles}: one tokenizer cannot render them all; "
            "generate every task with the same --prompt-style, or pass prompt_style="
        )
    return styles[0]


def trl_tokenizer(model: str | os.PathLike, prompt_style: str = "base", **from_pretrained):
    """The model's tokenizer, with the pass-through chat template for `base` prompts (the one
    verl trains with), or its own template for `instruct` prompts."""
    from transformers import AutoTokenizer

    template = chat_template_for(prompt_style)  # raises on an unknown style, naming the choices
    tokenizer = AutoTokenizer.from_pretrained(model, **from_pretrained)
    if template is not None:
        tokenizer.chat_template = template
    return tokenizer


def prepare_for_trl(paths, model: str | os.PathLike, *, split: str = "train", prompt_style: str | None = None,
                    text_prompts: bool = False):
    """(dataset, tokenizer) for `trl.GRPOTrainer(train_dataset=..., processing_class=...)`.

    The prompt style is read from the rows unless given.
    """
    from datasets import Dataset

    table = _trl_table(paths, split, text_prompts)
    style = prompt_style or prompt_style_of(table)
    return Dataset(table), trl_tokenizer(model, style)
