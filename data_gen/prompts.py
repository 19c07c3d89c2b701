"""Prompt templates, in the project's own words, for both tasks and both prompt styles.

Every prompt asks the model to reason inside <think> </think> and to put only the final answer
inside <answer> </answer>, and shows the answer format with an example. A row's `prompt` is always
a chat list (verl's schema):
- `base`: one user message whose content is the whole text a base model sees, a dialogue prefix
  that ends by opening the think tag (tinyzero.templates passes it through unchanged).
- `instruct`: a system message with the rules and a user message with the problem, for an
  instruct model's own chat template.
- `compact`: plain text like `base`, the problem alone in a few words and then the opened think
  tag, for a model trained from scratch (recipes/countdown_tiny.yaml): it learns the format from
  its priming traces, so the rules only cost tokens (about 25 instead of about 140).
"""

from __future__ import annotations

from collections.abc import Sequence

from tinyzero.rewards.answer import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN  # the tags, defined once

PROMPT_STYLES = ("base", "instruct", "compact")
# Styles whose prompt is plain text ending by opening the think tag: passed through unchanged
# (tinyzero.templates), and a response continues the think block.
TEXT_STYLES = ("base", "compact")

_RULES = (
    f"First think the problem through inside {THINK_OPEN} {THINK_CLOSE} tags, trying ideas and checking them, "
    f"then write only the final answer inside {ANSWER_OPEN} {ANSWER_CLOSE} tags."
)

_BASE_PREAMBLE = (
    "This is a conversation between a User and an Assistant. The User poses a problem and the "
    f"Assistant works it out. The Assistant reasons privately inside {THINK_OPEN} {THINK_CLOSE} tags, trying "
    f"ideas and checking them, then states the final answer inside {ANSWER_OPEN} {ANSWER_CLOSE} tags.\n"
)

# The base text ends by opening the think tag, so the model's first tokens are its reasoning.
_BASE_OPENING = f"\nAssistant: Let me work through this carefully.\n{THINK_OPEN}"

_INSTRUCT_SYSTEM = "You are a careful problem solver. " + _RULES


def countdown_question(numbers: Sequence[int], target: int, prompt_style: str = "base") -> str:
    numbers_text = ", ".join(str(n) for n in numbers)
    if prompt_style == "compact":
        return f"Numbers: {numbers_text}. Target: {target}."
    return (
        f"Combine the numbers [{numbers_text}] into an arithmetic expression whose value is {target}. "
        "Use each number exactly once; the allowed operations are +, -, * and /, with parentheses "
        f"as needed. The answer is the expression alone, for example {ANSWER_OPEN} (8 - 2) * 4 {ANSWER_CLOSE}."
    )


def multiply_question(a: int, b: int, prompt_style: str = "base") -> str:
    if prompt_style == "compact":
        return f"Compute {a} * {b}."
    return (
        f"Compute {a} * {b}. The answer is the product written as a plain integer, "
        f"for example {ANSWER_OPEN} 56088 {ANSWER_CLOSE}."
    )


def chat_prompt(question: str, prompt_style: str) -> list[dict[str, str]]:
    """The row's `prompt` for a question in the given style."""
    if prompt_style == "base":
        return [{"role": "user", "content": f"{_BASE_PREAMBLE}User: {question}{_BASE_OPENING}"}]
    if prompt_style == "compact":
        return [{"role": "user", "content": f"{question}\n{THINK_OPEN}"}]
    if prompt_style == "instruct":
        return [
            {"role": "system", "content": _INSTRUCT_SYSTEM},
            {"role": "user", "content": question},
        ]
    raise ValueError(f"unknown prompt_style {prompt_style!r}; use one of {', '.join(PROMPT_STYLES)}")
