"""Writing a task's dataset: distinct problems, split into test and train, as verl parquet files.

One path for every task config (CountdownConfig, MultiplyConfig, ClassicImportConfig): the config
makes problems chunk by chunk (each chunk its own seeded stream, so chunks can run in parallel
and the result does not depend on how many processes ran them), this module merges them in chunk
order without duplicates, takes the test split first and the train split next, and writes
train.parquet, test.parquet and dataset_info.json, each to a temporary name then renamed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import statistics
import sys
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from functools import partial
from pathlib import Path

from data_gen.config import drawn

# Leaves of the project (standard library only, import nothing else of it): see tinyzero/stats.py.
from tinyzero.files import write_all_atomically
from tinyzero.progress import Progress, check_memory
from tinyzero.stats import percentile

SPLITS = ("train", "test")

# verl's row schema: the columns training (RLHFDataset and the reward) and eval cannot do without,
# with what each holds. `verl_table` writes them (and `ability`, `extra_info`, which are optional).
ROW_COLUMNS = {
    "data_source": "the task name the reward dispatches on",
    "prompt": "the chat messages, a list of {role, content}",
    "reward_model": "a struct whose ground_truth the reward checks against",
}
INFO_FILE = "dataset_info.json"


# Memory a run holds, measured with /usr/bin/time on this project's machine: every problem is kept
# until the files are written (1.16 KiB each for Countdown, 0.85 for multiplication, counted as
# 1.25), on top of the interpreter and pyarrow in the main process and in each worker.
BYTES_PER_PROBLEM = 1.25 * 1024
BASE_BYTES = 256 * 1024**2
BYTES_PER_WORKER = 400 * 1024**2


def estimated_memory(problems: int, workers: int) -> float:
    """Bytes a run of `problems` problems with `workers` processes needs at its peak (an estimate)."""
    return BASE_BYTES + workers * BYTES_PER_WORKER + problems * BYTES_PER_PROBLEM


def check_fits_in_memory(config, workers: int, available: int | None = None) -> None:
    """Refuse, before any work, a request the machine cannot hold, with the largest one it can."""
    from tinyzero.progress import available_memory

    available = available_memory() if available is None else available
    total, fields = drawn(config)
    room = available - BASE_BYTES - (workers if workers > 1 else 0) * BYTES_PER_WORKER
    largest = max(int(room // BYTES_PER_PROBLEM), 0)
    check_memory(
        estimated_memory(total, workers if workers > 1 else 0),
        f"{config.task}: {fields} = {total:,} problems",
        f"ask for at most about {largest:,} problems here (--train-size, --test-size), "
        "or generate on a machine with more memory",
        available,
    )


def default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def _call(method, *arguments):
    return method(*arguments)


def _spawn_can_start() -> bool:
    """Spawned workers re-import the main script by its path: impossible for `python - < script`."""
    main_file = getattr(sys.modules.get("__main__"), "__file__", None)
    return main_file is None or os.path.exists(main_file)


class ChunkRunner:
    """Runs a config's chunk jobs in worker processes (or inline), results in submission order."""

    def __init__(self, workers: int):
        self.workers = workers
        self._pool = None

    def map(self, method, *argument_lists) -> Iterable:
        jobs = len(argument_lists[0])
        if self.workers <= 1 or jobs <= 1 or not _spawn_can_start():
            return map(method, *argument_lists)
        if self._pool is None:
            # spawn, not fork: the caller may hold threads (Ray, torch) that fork would copy mid-flight.
            # Ctrl-C reaches every process of the group: the workers ignore it, and the main process
            # stops the pool and says it was interrupted (a worker would print a traceback each).
            self._pool = ProcessPoolExecutor(self.workers, mp_context=get_context("spawn"),
                                             initializer=signal.signal, initargs=(signal.SIGINT, signal.SIG_IGN))
        return self._pool.map(_call, [method] * jobs, *argument_lists)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)


def generate_problems(config, workers: int = 1) -> dict[str, list[tuple]]:
    """Distinct problems for each split: {"test": first test_size, "train": the next train_size}."""
    with ChunkRunner(workers) as runner:
        return _generate(config, runner)


def _generate(config, runner: ChunkRunner) -> dict[str, list[tuple]]:
    total, _ = drawn(config)
    with Progress(total, f"{config.task} problems") as progress:
        problems = _distinct_problems(config, runner, total, progress)
    # The priming reserve sits between the splits: the same test split whatever the reserve, and a
    # train split that holds none of the problems priming traces are drawn from.
    after_test = config.test_size + getattr(config, "priming_reserve", 0)
    splits = {"test": problems[: config.test_size], "train": problems[after_test:]}
    # Difficulty, where costly, is worked out after the split and only for the splits that want it.
    chunk_size = config.chunk_size or total
    for split in getattr(config, "difficulty_splits", tuple)():
        pieces = [splits[split][start : start + chunk_size] for start in range(0, len(splits[split]), chunk_size)]
        with Progress(len(splits[split]), f"{config.task} difficulty, {split} split") as progress:
            counted = []
            for piece in runner.map(config.with_difficulty, pieces):
                counted += piece
                progress.update(len(piece))
        splits[split] = counted
    return splits


def _distinct_problems(config, runner: ChunkRunner, total: int, progress: Progress) -> list[tuple]:
    chunk_size = config.chunk_size or total
    seen: set[tuple] = set()
    problems: list[tuple] = []
    next_chunk = 0
    while len(problems) < total:
        deficit = total - len(problems)
        sizes = [min(chunk_size, deficit - start) for start in range(0, deficit, chunk_size)]
        chunks = list(range(next_chunk, next_chunk + len(sizes)))
        next_chunk += len(sizes)
        if not problems:
            # First round: chunks in parallel, each blind to the others (duplicates across
            # chunks are dropped below, in chunk order).
            results = runner.map(config.generate_chunk, chunks, sizes)
        else:
            # Top-up rounds are small: run here, skipping every problem already kept, so a
            # chunk that comes back short means the config has run out of new problems.
            results = (config.generate_chunk(c, n, set(seen)) for c, n in zip(chunks, sizes))
        for size, result in zip(sizes, results):  # in chunk order
            kept = len(problems)
            for problem in result:
                key = config.key(problem)
                if key not in seen:
                    seen.add(key)
                    problems.append(problem)
            progress.update(min(len(problems), total) - min(kept, total))
            if len(result) < size:  # the chunk ran out of draws before finding enough new problems
                raise ValueError(
                    f"{drawn(config)[1]} = {total} but only {len(problems)} distinct problems could be "
                    "found for this config: ask for fewer or widen its ranges"
                )
    del problems[total:]
    return problems


def histogram(values: Iterable) -> dict[str, int]:
    """Counts per value, keys as strings in numeric order (JSON-ready)."""
    counts = Counter(values)
    return {str(key): counts[key] for key in sorted(counts)}


def numeric_summary(values: list[int]) -> dict:
    """min, max, mean, quartiles and a 10-bin histogram of the values (empty dict when none)."""
    if not values:
        return {}
    low, high = min(values), max(values)
    ordered = sorted(values)
    quartiles = [int(percentile(ordered, q)) for q in (25, 50, 75)]
    width = max(1, -(-(high - low + 1) // 10))
    bins = Counter((v - low) // width for v in values)
    return {
        "min": low,
        "max": high,
        "mean": round(statistics.fmean(values), 4),
        "quartiles": quartiles,
        "histogram": [
            {"from": low + b * width, "to": min(high, low + (b + 1) * width - 1), "count": bins[b]}
            for b in range(max(bins) + 1)
        ],
    }


def verl_table(data_source: str, prompts: Iterable[list[dict]], ground_truth: dict, extra_info: dict):
    """A pyarrow table in verl's row schema, built column by column (fast for 300k rows).

    `prompts` yields each row's chat messages (a generator keeps them from all being held); `ground_truth` and `extra_info` map field names to
    pyarrow arrays (one value per row) that become the fields of those struct columns.
    """
    import pyarrow as pa

    offsets, roles, contents = [0], [], []
    for messages in prompts:
        roles += [m["role"] for m in messages]
        contents += [m["content"] for m in messages]
        offsets.append(len(roles))
    rows = len(offsets) - 1
    prompt = pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()),
        pa.StructArray.from_arrays([pa.array(roles, pa.string()), pa.array(contents, pa.string())], names=["role", "content"]),
    )
    reward_model = pa.StructArray.from_arrays(
        [pa.array(["rule"] * rows, pa.string()), pa.StructArray.from_arrays(list(ground_truth.values()), names=list(ground_truth))],
        names=["style", "ground_truth"],
    )
    return pa.table({
        "data_source": pa.array([data_source] * rows, pa.string()),
        "prompt": prompt,
        "ability": pa.array(["math"] * rows, pa.string()),
        "reward_model": reward_model,
        "extra_info": pa.StructArray.from_arrays(list(extra_info.values()), names=list(extra_info)),
    })


def int_lists(lists: list) -> "pa.Array":
    """A list<int64> array from Python lists of ints."""
    import pyarrow as pa

    offsets = [0]
    flat: list[int] = []
    for values in lists:
        flat += values
        offsets.append(len(flat))
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(flat, pa.int64()))


# Rows per parquet row group: tables are built and written a group at a time, which bounds the
# memory their text needs whatever the dataset's size.
ROW_GROUP = 65_536


def _write_parquet(config, problems: list[tuple], split: str, path: Path, runner: ChunkRunner) -> None:
    import pyarrow.parquet as pq

    starts = list(range(0, max(len(problems), 1), ROW_GROUP))
    pieces = [problems[start : start + ROW_GROUP] for start in starts]
    writer = None
    progress = Progress(len(problems), f"{split}.parquet rows written")
    try:
        # Row groups are built in the workers (their text is most of the work) and written here, in order.
        for table in runner.map(config.table, pieces, [split] * len(starts), starts):
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
            progress.update(table.num_rows)
    finally:
        progress.close()
        if writer is not None:
            writer.close()


def write_dataset(config, out_dir: str | os.PathLike, workers: int | None = None) -> dict:
    """Write out_dir/train.parquet, out_dir/test.parquet and out_dir/dataset_info.json.

    Validates the config (and that enough distinct problems exist) before touching any file;
    every file is written to a temporary name in out_dir and renamed into place, the info file
    last, so a failed run leaves no partial file. Returns the paths and counts.
    `workers` (processes for generation) changes speed only, never the output.
    """
    config.check_capacity()
    check_fits_in_memory(config, workers or default_workers())
    space = config.space_note() if hasattr(config, "space_note") else None
    if space and "warning" in space:
        print(f"warning: {space['warning']}", file=sys.stderr, flush=True)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"output path {out_dir} exists and is not a folder: choose another --out")
    with ChunkRunner(workers or default_workers()) as runner:
        if hasattr(config, "make_splits"):  # a config that reads its problems rather than drawing them
            splits = config.make_splits(runner)
        else:
            splits = _generate(config, runner)
        counts = {split: len(splits[split]) for split in SPLITS}
        report = config.report() if hasattr(config, "report") else {}
        if space:
            report = {**report, "space": space}
        info = {
            "task": config.task,
            "config": dataclasses.asdict(config),
            "counts": counts,
            "distributions": {split: config.summary(splits[split]) for split in SPLITS},
            **report,
        }
        _write_files(config, splits, info, out_dir, runner)
    return {
        "train": str(out_dir / "train.parquet"),
        "test": str(out_dir / "test.parquet"),
        "info": str(out_dir / INFO_FILE),
        "counts": counts,
        **report,
    }


def _write_files(config, splits: dict[str, list[tuple]], info: dict, out_dir: Path, runner: ChunkRunner) -> None:
    paths = {split: out_dir / f"{split}.parquet" for split in SPLITS}
    writes = {path: partial(_write_parquet, config, splits[split], split, runner=runner) for split, path in paths.items()}
    # The info file is renamed last: its presence means the parquet files beside it are complete.
    writes[out_dir / INFO_FILE] = lambda temp: temp.write_text(json.dumps(info, indent=2) + "\n")
    write_all_atomically(writes)
