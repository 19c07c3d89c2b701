"""Supervised reasoning traces for priming a model before RL (s1; Gandhi et al., 2025).

A trace is one worked answer to one task problem, in the row's own prompt style: the reasoning that
a `<think>` tag opens, then `</think>` and `<answer> ANSWER </answer>`. Two styles:

- `direct`: only the solution's steps (Countdown: the merges that reach the target; multiplication:
  the partial products and their sum). No reflection at all: no check, no move back.
- `search`: Countdown: a real depth-first search, narrated in the order it ran (merges in a random
  order, each line of attack finished with the pair's finish nearest the target): every dead end it
  met with its true value, the check that rejects it and the move back, then the solution and a
  verification that recomputes it. The first try may succeed (then only the verification shows).
  Multiplication: plausible wrong methods with their true values, each rejected by a size check,
  a move back to the start, the solution, and the product split the other way.

Every number a trace states is true: values are exact integers (Countdown traces only use merges
whose value is a non-negative integer; a problem without such a solution is skipped and counted).
Which behaviours each style shows is part of the contract and tested against tinyzero.aha's
detectors: `search` shows verification, backtracking and self-correction, `direct` none of them,
so `search_fraction` sets how much reflection the primed model has seen.

The problems come from the task generator with the RL data's own config and seed: they are the
problems drawn right after its test split (`generate_problems(replace(data, train_size=size))
["train"]`; the generator's streams are prefix-stable), and data_gen never repeats a problem across
splits, so no trace is an RL test problem. With `data.priming_reserve` at least `size`, the RL data
keeps exactly those problems out of its train split too (the traces then come from the reserve
alone), so priming never shows a problem GRPO trains on: recipes/countdown_tiny.yaml does this.
Without a reserve the traces are the first `size` RL training problems.

Rows are in the schema of verl 0.9.1's SFT trainer (`verl.utils.dataset.multiturn_sft_dataset.
MultiTurnSFTDataset`, its `data.messages_key` defaults to `messages`): a `messages` list of
{role, content}, the prompt's messages exactly as the RL row has them plus one assistant message
holding the trace. Prompt plus trace is therefore what RL sees: the prompt, then a response. verl
tokenizes each message on its own and checks that this equals tokenizing the whole conversation, so
a base-style trace starts with a space (no merge across the prompt's closing `<think>`).
The RL row's `data_source` and `reward_model` columns come along, so any trace can be re-scored.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from data_gen.config import check_integers, field_help
from data_gen.countdown import CountdownConfig
from data_gen.dataset import generate_problems
from data_gen.multiply import MultiplyConfig
from data_gen.prompts import TEXT_STYLES
from data_gen.solver import join_expression
from data_gen.tasks import TASK_SPECS
from tinyzero.files import write_all_atomically
from tinyzero.rewards.answer import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN

__all__ = ["STYLES", "TRACES_FILE", "TRACES_INFO_FILE", "TracesConfig", "countdown_trace", "make_traces", "multiply_trace", "write_traces"]

STYLES = ("direct", "search")
TRACES_FILE = "traces.parquet"
TRACES_INFO_FILE = "traces_info.json"

# Random search orders tried for a search trace before the problem is skipped (an order that needs
# more than max_failed_attempts dead ends is not shown).
_SEARCH_ORDERS = 50
# The search for a solution with integer steps gives up after this many merges (a 6-number
# problem whose only solutions go through fractions); the problem is then skipped.
_SOLUTION_SEARCH_BUDGET = 200_000


@dataclass
class TracesConfig:
    """Supervised traces for the problems of one task's RL data config (`data`)."""

    # The RL data these traces go with: its task, its difficulty knobs (numbers, ranges, digits),
    # its prompt style, its seed and its test split, which the traces avoid.
    data: CountdownConfig | MultiplyConfig = field(default_factory=CountdownConfig, metadata=field_help("the task's generator config"))
    # s1 primes with about 1,000 curated traces.
    size: int = field(default=1_000, metadata=field_help("number of traces"))
    # Half and half: the primed model has seen both answering at once and searching, so RL can
    # reward whichever pays on each problem (Gandhi et al.: the behaviours must be there to grow).
    search_fraction: float = field(default=0.5, metadata=field_help("share of traces in the search style (the rest are direct), 0 to 1"))
    # Up to two dead ends keeps a search trace within a few hundred tokens.
    max_failed_attempts: int = field(default=2, metadata=field_help("most dead ends a search trace shows (Countdown: a search order that meets more is not shown; multiplication: each shows 1 to this many)"))

    @property
    def task(self) -> str:
        return self.data.task

    def validate(self) -> None:
        """Raise ValueError naming the first bad field, with its value and what to do instead."""
        if type(self.data) not in [TASK_SPECS[task].config for task in TRACERS]:
            names = ", ".join(TASK_SPECS[task].config.__name__ for task in TRACERS)
            raise ValueError(f"data must be the generator config of a task with traces ({names}), got {self.data!r}")
        check_integers(self, ("size", "max_failed_attempts"))
        if self.size < 1:
            raise ValueError(f"size must be at least 1, got {self.size}")
        if isinstance(self.search_fraction, bool) or not isinstance(self.search_fraction, (int, float)) or not 0 <= self.search_fraction <= 1:
            raise ValueError(f"search_fraction must be a number from 0 to 1 (the share of search traces), got {self.search_fraction!r}")
        if not 1 <= self.max_failed_attempts <= 5:
            raise ValueError(f"max_failed_attempts must be between 1 and 5, got {self.max_failed_attempts}")
        try:
            self.problem_config().check_capacity()
        except ValueError as error:
            raise ValueError(f"data: {error} (for traces, train_size is the trace count: size={self.size})") from None
        if 0 < self.data.priming_reserve < self.size:
            raise ValueError(f"size={self.size} is above the RL data's priming_reserve={self.data.priming_reserve}: "
                             "the traces past the reserve would be RL training problems; raise priming_reserve to size")

    def problem_config(self, wanted: int | None = None):
        """The RL data config drawing `wanted` (default: size) problems right after its test split."""
        return dataclasses.replace(self.data, train_size=wanted or self.size, priming_reserve=0)

    def search_count(self) -> int:
        return round(self.size * self.search_fraction)


# -- wording shared by both tasks ---------------------------------------------------------------

def _listing(values) -> str:
    """19, 36, 55 and 7."""
    values = [str(v) for v in values]
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]


def _response(body: str, answer: str, prompt_style: str) -> str:
    """The assistant's text: a base or compact prompt already opened <think>, an instruct prompt did not."""
    think = body if prompt_style in TEXT_STYLES else THINK_OPEN + body
    return f"{think}\n{THINK_CLOSE}\n{ANSWER_OPEN} {answer} {ANSWER_CLOSE}"


# -- Countdown ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Merge:
    """One step of a Countdown attempt: two current values become one (`left op right = value`)."""

    left: int
    op: str
    right: int
    value: int

    def __str__(self) -> str:
        return f"{self.left} {self.op} {self.right} = {self.value}"


def _merges(values: list[int]) -> list[tuple[int, int, _Merge]]:
    """Every merge of two of the values (by position) whose value is a non-negative integer."""
    found = []
    for i in range(len(values)):
        for j in range(len(values)):
            if i == j:
                continue
            x, y = values[i], values[j]
            if i < j:
                found.append((i, j, _Merge(x, "+", y, x + y)))
                found.append((i, j, _Merge(x, "*", y, x * y)))
            if x >= y:
                found.append((i, j, _Merge(x, "-", y, x - y)))
            if y and x % y == 0:
                found.append((i, j, _Merge(x, "/", y, x // y)))
    return found


def _apply(state: list[tuple[int, tuple[str, int]]], i: int, j: int, merge: _Merge):
    """The state after a merge: the two values replaced by the result (with its expression text)."""
    rest = [item for k, item in enumerate(state) if k not in (i, j)]
    return rest + [(merge.value, join_expression(state[i][1], merge.op, state[j][1]))]


def _start_state(numbers) -> list[tuple[int, tuple[str, int]]]:
    return [(n, (str(n), 3)) for n in numbers]  # 3: an atom, never parenthesised


def _solution_merges(numbers, target: int, rng: random.Random) -> tuple[list[_Merge], str] | None:
    """Merges with integer values from the numbers to the target, and the answer expression, or None.

    Depth-first over merges in random order, remembering value multisets that cannot reach the
    target; None when every solution goes through a fraction or a negative value (or the budget
    runs out).
    """
    dead: set[tuple[int, ...]] = set()
    budget = [_SOLUTION_SEARCH_BUDGET]

    def search(state):
        values = [v for v, _ in state]
        if len(state) == 1:
            return [] if values[0] == target else None
        key = tuple(sorted(values))
        if key in dead:
            return None
        options = _merges(values)
        rng.shuffle(options)
        for i, j, merge in options:
            budget[0] -= 1
            if budget[0] < 0:
                return None
            rest = search(_apply(state, i, j, merge))
            if rest is not None:
                return [(i, j, merge), *rest]
        dead.add(key)
        return None

    path = search(_start_state(numbers))
    if path is None:
        return None
    state = _start_state(numbers)
    for i, j, merge in path:
        state = _apply(state, i, j, merge)
    return [merge for _, _, merge in path], state[0][1][0]


def _best_finish(state, target: int) -> tuple[int, int, _Merge]:
    """Of the merges of the last two values, the one whose value is nearest the target: a searcher
    works out the finishes of a pair and keeps the closest (the target itself when one reaches it)."""
    return min(_merges([v for v, _ in state]), key=lambda option: abs(option[2].value - target))


def _search_events(numbers, target: int, rng: random.Random, max_failed_attempts: int):
    """The search a trace narrates, as it ran: depth first over merges in a random order, each line
    of attack finished with its best finish (_best_finish) and abandoned when that misses.

    Returns (attempts, restarts) or None when the search meets more than max_failed_attempts dead
    ends before the solution (or finds none with integer steps). `attempts` are merge lists from
    the start, the last one reaching the target; `restarts[k]` is how many merges attempt k+1
    keeps of attempt k (the point the search went back to).
    """
    attempts: list[list[_Merge]] = []
    budget = [_SOLUTION_SEARCH_BUDGET]

    def search(state, path) -> bool:
        if len(state) == 2:
            i, j, merge = _best_finish(state, target)
            attempts.append([*path, merge])
            return merge.value == target
        options = _merges([v for v, _ in state])
        rng.shuffle(options)
        for i, j, merge in options:
            budget[0] -= 1
            if budget[0] < 0 or len(attempts) > max_failed_attempts:
                return False
            if search(_apply(state, i, j, merge), [*path, merge]):
                return True
        return False

    numbers = list(numbers)
    if len(numbers) < 2:
        return None
    found = search(_start_state(numbers), [])
    if not found or len(attempts) > max_failed_attempts + 1:
        return None
    restarts = []
    for earlier, later in zip(attempts, attempts[1:]):
        kept = 0
        while kept < len(earlier) - 1 and earlier[kept] == later[kept]:
            kept += 1
        restarts.append(kept)
    return attempts, restarts


def countdown_trace(numbers, target: int, style: str, prompt_style: str, rng: random.Random,
                    max_failed_attempts: int = 2) -> tuple[str, str, int] | None:
    """(response, answer expression, failed attempts shown) for one problem, or None when the
    problem has no solution whose steps are all non-negative integers (a search trace: none within
    max_failed_attempts dead ends of a search in this order)."""
    numbers = list(numbers)
    opening = f" I need to reach {target} with {_listing(numbers)}, each used once."
    if style == "direct":
        solved = _solution_merges(numbers, target, rng)
        if solved is None:
            return None
        solution, answer = solved
        body = f"{opening}\n{'. '.join(map(str, solution))}. That reaches {target}."
        return _response(body, answer, prompt_style), answer, 0

    # search: the real order of a depth-first search; each miss is checked against the target and
    # the search goes back to the last point with untried merges (the start, or a partial result).
    # A search order that meets more dead ends than a trace may show is set aside for another
    # random order (the searches shown are real, in their real order; the problems are all kept).
    for _ in range(_SEARCH_ORDERS):
        events = _search_events(numbers, target, rng, max_failed_attempts)
        if events is not None:
            break
    else:
        return None
    attempts, restarts = events
    lines = [opening]
    shown_from = 0  # merges of the current attempt already in the text
    for attempt, kept in zip(attempts, [*restarts, None]):
        lines.append(f"Try {', '.join(map(str, attempt[shown_from:]))}.")
        value = attempt[-1].value
        if kept is None:  # the last attempt reaches the target
            lines[-1] += f" That reaches {target}."
            break
        lines.append(f"{value}, not {target}: too {'big' if value > target else 'small'}.")
        if kept:
            back_to = [v for v, _ in _state_after(numbers, attempt[:kept])]
            lines.append(f"That doesn't work. Back to {_listing(back_to)}: let me try something else.")
        else:
            lines.append("That doesn't work. Back to the start: let me try a different combination.")
        shown_from = kept
    solution = attempts[-1]
    answer = _state_after(numbers, solution)[0][1][0]
    lines.append(f"Let me verify {answer}: {', '.join(map(str, solution))}. It uses {_listing(numbers)} once each.")
    return _response("\n".join(lines), answer, prompt_style), answer, len(attempts) - 1


def _position(state, merge: _Merge) -> tuple[int, int]:
    """Positions of a merge's operands in a state (the first matching values)."""
    values = [v for v, _ in state]
    i = values.index(merge.left)
    j = next(k for k, v in enumerate(values) if v == merge.right and k != i)
    return i, j


def _state_after(numbers, merges: list[_Merge]):
    state = _start_state(numbers)
    for merge in merges:
        state = _apply(state, *_position(state, merge), merge)
    return state


# -- multiplication -------------------------------------------------------------------------------

def _place_parts(n: int) -> list[int]:
    """29 -> [20, 9], 307 -> [300, 7]: the nonzero digits with their place values."""
    digits = str(n)
    return [int(d) * 10 ** (len(digits) - 1 - k) for k, d in enumerate(digits) if d != "0"] or [0]


def _products_line(a: int, parts: list[int], left: bool = False) -> tuple[str, int]:
    """'347 * 20 = 6940, 347 * 9 = 3123, 6940 + 3123 = 10063' and the sum (parts * a when left)."""
    products = [p * a for p in parts]
    steps = [f"{p} * {a} = {p * a}" if left else f"{a} * {p} = {p * a}" for p in parts]
    if len(parts) > 1:
        steps.append(f"{' + '.join(map(str, products))} = {sum(products)}")
    return ", ".join(steps), sum(products)


def _leading_bounds(n: int) -> tuple[int, int]:
    """347 -> (300, 400): the leading digit's place value, rounded down and up."""
    unit = 10 ** (len(str(n)) - 1)
    low = n // unit * unit
    return low, low + unit


def _multiply_failures(a: int, b: int) -> list[tuple[str, str, int]]:
    """(attempt text, diagnosis, value) of plausible wrong methods, every number in them true."""
    parts = _place_parts(b)
    failures = []
    # The leading partial product one place too far: always far above the bound (> 5.5 x the product).
    shifted = [parts[0] * 10, *parts[1:]]
    line, value = _products_line(a, shifted)
    lead_digit = str(parts[0])[0]
    failures.append((line, f"I moved the {lead_digit} of {b} one place too far: it stands for {parts[0]}.", value))
    if b >= 10:
        digits = [int(d) for d in str(b) if d != "0"]
        if len(digits) > 1:
            line, value = _products_line(a, digits)
            failures.append((line, f"I dropped the place values: the digits of {b} stand for {' + '.join(map(str, parts))}.", value))
        reversed_b = int(str(b)[::-1])
        if str(b)[-1] != "0" and reversed_b != b:
            line, value = _products_line(a, _place_parts(reversed_b))
            failures.append((f"reading {b} as {reversed_b}: {line}", f"I read {b} backwards.", value))
    return failures


def multiply_trace(a: int, b: int, style: str, prompt_style: str, rng: random.Random,
                   max_failed_attempts: int = 2) -> tuple[str, str, int]:
    """(response, answer, failed attempts shown) for a * b: partial products of b's place values."""
    product = a * b
    parts = _place_parts(b)
    solution, total = _products_line(a, parts)
    assert total == product
    if len(parts) > 1:
        working = f"Split {b} into {' + '.join(map(str, parts))}: {solution}."
    else:
        working = f"{solution}."
    opening = f" I need the product of {a} and {b}."  # not "a * b": that would read as computing it twice
    if style == "direct":
        return _response(f"{opening}\n{working}", str(product), prompt_style), str(product), 0

    (low_a, high_a), (low_b, high_b) = _leading_bounds(a), _leading_bounds(b)
    low, high = low_a * low_b, high_a * high_b
    lines = [
        opening,
        f"First a size check: {a} is between {low_a} and {high_a}, and {b} is between {low_b} and {high_b}, "
        f"so the product is between {low_a} * {low_b} = {low} and {high_a} * {high_b} = {high}.",
    ]
    # Only failures the size check really rejects are shown (the shifted one always is).
    failures = [f for f in _multiply_failures(a, b) if not low <= f[2] <= high]
    rng.shuffle(failures)
    shown = failures[: rng.randint(1, max_failed_attempts)]
    for attempt, diagnosis, value in shown:
        verdict = f"{value} is above {high}: too big." if value > high else f"{value} is below {low}: too small."
        lines.append(f"Try {attempt}.")
        lines.append(f"{verdict} {diagnosis} That doesn't work, so let me go back to the start.")
    lines.append(f"{working} {product} is between {low} and {high}.")
    check, recomputed = _products_line(b, _place_parts(a), left=True)
    assert recomputed == product
    lines.append(f"Let me verify by splitting {a} instead: {check}. Both ways give {product}.")
    return _response("\n".join(lines), str(product), prompt_style), str(product), len(shown)


# How each task writes a trace of one problem, from its first two fields (Countdown: numbers and
# target; multiplication: the factors): (response, answer, failed attempts), or None to skip it.
TRACERS = {"countdown": countdown_trace, "multiply": multiply_trace}


# -- the traces file -----------------------------------------------------------------------------

def make_traces(config: TracesConfig) -> tuple[list[dict], dict]:
    """(rows, report): the traces in verl's SFT row schema, and what was made.

    Problems are taken in generator order; a Countdown problem with no all-integer solution is
    skipped and the next one taken, so the set is `size` long whatever the skips.
    """
    config.validate()
    wanted = config.size
    reserve = config.data.priming_reserve
    while True:
        problems = generate_problems(config.problem_config(wanted))["train"]
        traces, skipped = _traces_for(config, problems)
        if len(traces) == config.size:
            break
        if reserve and wanted >= reserve:
            raise ValueError(f"only {len(traces)} of the {reserve} reserved problems have a {config.task} trace "
                             f"({skipped} skipped): raise the RL data's priming_reserve above size={config.size}")
        # The generator's streams are prefix-stable: asking for more keeps the same first problems,
        # and the same seed gives the same traces for them.
        wanted += 2 * (config.size - len(traces)) + 8
        if reserve:
            wanted = min(wanted, reserve)
    rl_rows = config.data.table([problem for problem, *_ in traces], "train").to_pylist()
    rows = []
    for index, (rl_row, (_, style, response, answer, failed)) in enumerate(zip(rl_rows, traces)):
        rows.append({
            "messages": [*rl_row["prompt"], {"role": "assistant", "content": response}],
            "data_source": rl_row["data_source"],
            "reward_model": rl_row["reward_model"],
            "extra_info": {"index": index, "trace_style": style, "failed_attempts": failed, "answer": answer,
                           "prompt_style": config.data.prompt_style},
        })
    report = {
        "task": config.task,
        "config": dataclasses.asdict(config),
        "count": len(rows),
        "styles": dict(sorted(Counter(t[1] for t in traces).items())),
        "failed_attempts": {str(k): v for k, v in sorted(Counter(t[4] for t in traces if t[1] == "search").items())},
        "skipped_problems": skipped,  # no all-integer solution, or no way astray to show
        "excluded": f"the {config.data.test_size} test problems of this data config and seed"
                    + (f"; drawn from its priming_reserve of {reserve}, which its train split excludes" if reserve else ""),
    }
    return rows, report


def _traces_for(config: TracesConfig, problems: list[tuple]) -> tuple[list[tuple], int]:
    """(problem, style, response, answer, failed attempts) for the first `size` problems that have
    a trace, and how many were skipped. Styles are dealt exactly: search_count() of them search."""
    rng = random.Random(f"traces/{config.task}/{config.data.seed}")
    styles = ["search"] * config.search_count() + ["direct"] * (config.size - config.search_count())
    rng.shuffle(styles)
    traces, skipped = [], 0
    for problem in problems:
        if len(traces) == config.size:
            break
        style = styles[len(traces)]
        made = TRACERS[config.task](problem[0], problem[1], style, config.data.prompt_style, rng, config.max_failed_attempts)
        if made is None:
            skipped += 1
            continue
        traces.append((problem, style, *made))
    return traces, skipped


def write_traces(config: TracesConfig, out_dir: str | os.PathLike) -> dict:
    """Write out_dir/traces.parquet and out_dir/traces_info.json, both or neither (atomic renames)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"output path {out_dir} exists and is not a folder: choose another --out")
    rows, report = make_traces(config)
    write_all_atomically({
        out_dir / TRACES_FILE: lambda temp: pq.write_table(pa.Table.from_pylist(rows), temp),
        out_dir / TRACES_INFO_FILE: lambda temp: temp.write_text(json.dumps(report, indent=2) + "\n"),
    })
    return {"traces": str(out_dir / TRACES_FILE), "info": str(out_dir / TRACES_INFO_FILE),
            **{key: report[key] for key in ("count", "styles", "skipped_problems")}}


# -- command line: `python -m data_gen traces TASK --out DIR [options]` ---------------------------

# The trace knobs are options of their own; every other option is the task generator's, describing
# the RL data the traces go with (its seed and test split decide which problems are avoided).
# train_size is left out: `--size` is how many traces.
_NOT_OPTIONS = {"traces": ("data",), "data": ("train_size",)}


def add_traces_command(commands, add_config_options) -> None:
    """Add `traces TASK` to `python -m data_gen`'s subcommands (add_config_options: its option builder)."""
    description = (
        "write supervised traces (traces.parquet, in verl's SFT messages schema, and traces_info.json) for "
        "priming a model before RL; the task's options describe the RL data, whose test problems are avoided"
    )
    command = commands.add_parser("traces", help="write supervised reasoning traces for priming", description=description)
    tasks = command.add_subparsers(dest="task", required=True, metavar="{" + ",".join(TRACERS) + "}")
    for task in TRACERS:
        parser = tasks.add_parser(task, help=f"traces for {task} problems", description=description)
        parser.add_argument("--out", required=True, help="folder for the files (created if missing)")
        add_config_options(parser.add_argument_group("traces"), TracesConfig, exclude=_NOT_OPTIONS["traces"])
        add_config_options(parser.add_argument_group(f"the RL data ({task} generator options)"), TASK_SPECS[task].config,
                           exclude=_NOT_OPTIONS["data"])


def traces_config_from(args) -> TracesConfig:
    """The TracesConfig the parsed options of `traces TASK` describe."""
    data_class = TASK_SPECS[args.task].config
    data = data_class(**{spec.name: getattr(args, spec.name) for spec in dataclasses.fields(data_class)
                         if spec.name not in _NOT_OPTIONS["data"]})
    knobs = {spec.name: getattr(args, spec.name) for spec in dataclasses.fields(TracesConfig) if spec.name not in _NOT_OPTIONS["traces"]}
    return TracesConfig(data=data, **knobs)
