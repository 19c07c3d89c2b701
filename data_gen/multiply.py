"""Multiplication: the product of two factors with given digit counts.

Problems are drawn without replacement from the index space of distinct factor pairs, so there
is no rejection loop and no duplicate, and the number of distinct problems is exact. With equal
digit counts, a * b and b * a are the same problem (the factors are shown in a random order).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import ClassVar

from data_gen.config import PRIMING_RESERVE_HELP, check_between, check_choice, check_integers, check_sizes, drawn, field_help
from data_gen.prompts import PROMPT_STYLES, chat_prompt, multiply_question
from data_gen.tasks import TaskSpec, register
from tinyzero.rewards import score_multiply
from tinyzero.rewards.score import GROUND_TRUTH_FIELDS

__all__ = ["MultiplyConfig", "long_multiplication_steps"]

# 9 by 9 digits keeps every product below 10**18, inside parquet's int64.
MAX_DIGITS = 9


def long_multiplication_steps(a: int, b: int) -> int:
    """Difficulty: the single-digit products long multiplication needs (pairs of nonzero digits)."""
    return sum(c != "0" for c in str(a)) * sum(c != "0" for c in str(b))


@dataclass
class MultiplyConfig:
    """Multiplication problems: digit counts of the two factors, sizes, seed, prompt style."""

    task: ClassVar[str] = "multiply"
    chunk_size: ClassVar[int | None] = None  # one chunk: sampling without replacement, no rejection

    train_size: int = field(default=100_000, metadata=field_help("problems in train.parquet"))
    test_size: int = field(default=1_024, metadata=field_help("problems in test.parquet (drawn first, so it does not depend on train_size)"))
    priming_reserve: int = field(default=0, metadata=field_help(PRIMING_RESERVE_HELP))
    seed: int = field(default=0, metadata=field_help("random seed: same config and seed give byte-identical files"))
    # 3 by 3 digits: hard enough that a small model must work it out, short enough to check.
    digits_a: int = field(default=3, metadata=field_help(f"digits of the first factor (1 to {MAX_DIGITS})"))
    digits_b: int = field(default=3, metadata=field_help(f"digits of the second factor (1 to {MAX_DIGITS})"))
    prompt_style: str = field(default="base", metadata=field_help("prompt for a base model (plain text ending in <think>), chat messages for an instruct model, or compact text for a model trained from scratch", choices=PROMPT_STYLES))

    def validate(self) -> None:
        """Raise ValueError naming the first bad field, with its value and what to do instead."""
        check_integers(self, ("train_size", "test_size", "priming_reserve", "seed", "digits_a", "digits_b"))
        check_sizes(self)
        check_between(self, ("digits_a", "digits_b"), 1, MAX_DIGITS)
        check_choice(self, "prompt_style", PROMPT_STYLES)
        available = self.distinct_problems()
        total, fields = drawn(self)
        if total > available:
            raise ValueError(
                f"{fields} = {total} but {self.digits_a}- by "
                f"{self.digits_b}-digit factors give only {available} distinct problems: ask for fewer or use more digits"
            )

    def check_capacity(self) -> None:
        self.validate()  # the count of distinct problems is exact and cheap

    def _factor_count(self, digits: int) -> int:
        return 9 * 10 ** (digits - 1)

    def distinct_problems(self) -> int:
        """Distinct factor pairs (unordered when both factors have the same digit count)."""
        count_a, count_b = self._factor_count(self.digits_a), self._factor_count(self.digits_b)
        if self.digits_a == self.digits_b:
            return count_a * (count_a + 1) // 2
        return count_a * count_b

    def _pair(self, index: int, rng: random.Random) -> tuple[int, int]:
        """The factor pair with this index in [0, distinct_problems())."""
        low_a, low_b = 10 ** (self.digits_a - 1), 10 ** (self.digits_b - 1)
        if self.digits_a != self.digits_b:
            i, j = divmod(index, self._factor_count(self.digits_b))
            return low_a + i, low_b + j
        # Unordered pairs i <= j, listed by j: pair (i, j) has index j*(j+1)/2 + i.
        j = (math.isqrt(8 * index + 1) - 1) // 2
        i = index - j * (j + 1) // 2
        a, b = low_a + i, low_a + j
        return (a, b) if rng.random() < 0.5 else (b, a)

    def generate_chunk(self, chunk: int, size: int, seen: set | None = None) -> list[tuple]:
        """All problems in one go (chunk 0): sampling without replacement needs no rejection."""
        if chunk != 0:
            return []
        rng = random.Random(f"multiply/{self.seed}")
        indices = rng.sample(range(self.distinct_problems()), size)
        problems = []
        for index in indices:
            a, b = self._pair(index, rng)
            problems.append((a, b, a * b, long_multiplication_steps(a, b)))
        return problems

    def table(self, problems: list[tuple], split: str, first_index: int = 0):
        """verl's rows for one split of (a, b, product, difficulty) problems."""
        import pyarrow as pa

        from data_gen.dataset import int_lists, verl_table

        rows = len(problems)
        return verl_table(
            "multiply",
            (chat_prompt(multiply_question(a, b, self.prompt_style), self.prompt_style) for a, b, _, _ in problems),
            ground_truth=dict(zip(GROUND_TRUTH_FIELDS["multiply"], (pa.array([p[2] for p in problems], pa.int64()), int_lists([[a, b] for a, b, _, _ in problems])))),
            extra_info={
                "split": pa.array([split] * rows, pa.string()),
                "index": pa.array(range(first_index, first_index + rows), pa.int64()),
                "solution": pa.array([str(p[2]) for p in problems], pa.string()),
                "difficulty": pa.array([p[3] for p in problems], pa.int64()),
                "prompt_style": pa.array([self.prompt_style] * rows, pa.string()),
                "digits_a": pa.array([self.digits_a] * rows, pa.int64()),
                "digits_b": pa.array([self.digits_b] * rows, pa.int64()),
            },
        )

    @staticmethod
    def key(problem: tuple) -> tuple:
        return tuple(sorted(problem[:2]))

    @staticmethod
    def summary(problems: list[tuple]) -> dict:
        from data_gen.dataset import numeric_summary

        return {
            "product": numeric_summary([p[2] for p in problems]),
            "difficulty": numeric_summary([p[3] for p in problems]),
        }


def multiply_difficulty(ground_truth) -> str:
    """Eval's breakdown: digits per factor, or the product's digits when the factors are not given."""
    product_key, factors_key = GROUND_TRUTH_FIELDS["multiply"]
    factors = ground_truth.get(factors_key) if isinstance(ground_truth, dict) else None
    if isinstance(factors, (list, tuple)):
        return "x".join(str(len(str(abs(int(f))))) for f in factors) + " digits"
    product = ground_truth.get(product_key) if isinstance(ground_truth, dict) else ground_truth
    return f"{len(str(abs(int(product))))}-digit product"


MULTIPLY = register(
    TaskSpec(
        name=MultiplyConfig.task,
        config=MultiplyConfig,
        question=multiply_question,
        ground_truth_fields=GROUND_TRUTH_FIELDS["multiply"],
        difficulty=multiply_difficulty,
        reward=score_multiply,
    )
)
