"""Budget forcing (s1): control how long a model thinks, the same way on every backend.

A response is built in segments. Each segment is one batched call to a `Generator`, which only
knows how to continue texts up to a token limit or a stop string; the rules live here:

- thinking is counted in tokens from the end of the prompt (which opens `<think>`) until the
  model writes `</think>`;
- at the budget B, thinking is cut at B tokens and the answer is forced: `</think>\\n<answer>` is
  appended and the model gets `answer_tokens` more tokens to write it;
- when the model ends thinking early (writes `</think>`, or ends the text) and extensions remain,
  the end is suppressed: the delimiter is dropped, the wait string appended, thinking goes on,
  at most `num_extend` times;
- the forced wait strings count as thinking tokens, so thinking never exceeds B.

With no budget, a response is one segment of `max_new_tokens`, as in training.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tinyzero.rewards.answer import ANSWER_CLOSE, ANSWER_OPEN  # the tags the reward reads
from tinyzero.rewards.answer import THINK_CLOSE as THINK_END
# What budget forcing appends when thinking reaches the budget: end thinking, open the answer.
FORCED_ANSWER = THINK_END + "\n" + ANSWER_OPEN

FINISH_REASONS = ("stop", "eos", "length")


@dataclass(frozen=True)
class Continuation:
    """What a generator wrote after one prompt.

    `text` includes the stop string when one ended it (finish_reason "stop"); it never includes
    the end-of-sequence token ("eos"). "length" means `max_tokens` tokens were written.
    `num_tokens` counts the generated tokens (at most `max_tokens`).
    """

    text: str
    num_tokens: int
    finish_reason: str


class Generator(Protocol):
    """A backend: continues a batch of texts. Implementations: `tinyzero.eval.backends`."""

    def generate(
        self,
        prompts: Sequence[str],
        max_tokens: Sequence[int],
        stop: tuple[str, ...],
        seeds: Sequence[int],
        desc: str = "generating",
    ) -> list[Continuation]:
        """Continue every prompt (batched, never one at a time), each up to its own `max_tokens`,
        stopping at the first of the `stop` strings or at the end-of-sequence token. `desc`
        labels the progress bar."""
        ...

    def count_tokens(self, text: str) -> int:
        """Tokens in `text`, as the model tokenizes it."""
        ...


@dataclass
class Trace:
    """One sampled response, as budget forcing builds it."""

    prompt: str
    seed: int
    response: str = ""
    response_tokens: int = 0  # generated tokens plus the tokens of forced strings
    thinking_tokens: int = 0
    waits: int = 0  # how many times the wait string was appended
    forced_answer: bool = False  # thinking hit the budget and the answer was forced
    finish_reason: str = ""  # of the last segment: "stop", "eos" or "length"
    phase: str = "think"  # "think" -> "answer" -> "done"

    @property
    def context(self) -> str:
        return self.prompt + self.response


def segment_seed(seed: int, call: int, num_sequences: int) -> int:
    """A distinct seed per (sequence, generate call), independent of how requests are batched."""
    return seed + call * num_sequences


def generate_plain(
    generator: Generator, prompts: Sequence[str], seeds: Sequence[int], max_new_tokens: int
) -> list[Trace]:
    """No forcing: one segment per response, ending at end-of-sequence or `max_new_tokens`."""
    traces = [Trace(prompt=p, seed=s) for p, s in zip(prompts, seeds)]
    outputs = generator.generate(prompts, [max_new_tokens] * len(prompts), (), seeds, desc="generating")
    for trace, out in zip(traces, outputs):
        trace.response = out.text
        trace.response_tokens = out.num_tokens
        # Thinking is what precedes the first </think>; all of it when thinking never ended.
        thought = out.text.split(THINK_END, 1)[0]
        trace.thinking_tokens = out.num_tokens if thought == out.text else generator.count_tokens(thought)
        trace.finish_reason = out.finish_reason
        trace.phase = "done"
    return traces


def generate_with_budget(
    generator: Generator,
    prompts: Sequence[str],
    seeds: Sequence[int],
    budget: int,
    num_extend: int,
    wait: str,
    answer_tokens: int,
) -> list[Trace]:
    """Budget forcing for a batch of prompts (see the module docstring)."""
    if budget < 1:
        raise ValueError(f"thinking budget must be at least 1 token, got {budget}")
    traces = [Trace(prompt=p, seed=s) for p, s in zip(prompts, seeds)]
    wait_tokens = generator.count_tokens(wait)
    forced_tokens = generator.count_tokens(FORCED_ANSWER)
    segment = 0
    while any(t.phase != "done" for t in traces):
        thinking = [t for t in traces if t.phase == "think"]
        if thinking:
            outputs = generator.generate(
                [t.context for t in thinking],
                [budget - t.thinking_tokens for t in thinking],
                (THINK_END,),
                [segment_seed(t.seed, 2 * segment, len(traces)) for t in thinking],
                desc=f"budget {budget}: thinking, segment {segment + 1}",
            )
            for trace, out in zip(thinking, outputs):
                _after_thinking_segment(trace, out, budget, num_extend, wait, wait_tokens, forced_tokens)
        # Responses whose thinking just ended write their answer in the same round.
        answering = [t for t in traces if t.phase == "answer"]
        if answering:
            outputs = generator.generate(
                [t.context for t in answering],
                [answer_tokens] * len(answering),
                (ANSWER_CLOSE,),
                [segment_seed(t.seed, 2 * segment + 1, len(traces)) for t in answering],
                desc=f"budget {budget}: answering",
            )
            for trace, out in zip(answering, outputs):
                trace.response += out.text
                trace.response_tokens += out.num_tokens
                trace.finish_reason = out.finish_reason
                trace.phase = "done"
        segment += 1
    return traces


def _after_thinking_segment(
    trace: Trace, out: Continuation, budget: int, num_extend: int, wait: str, wait_tokens: int, forced_tokens: int
) -> None:
    trace.thinking_tokens += out.num_tokens
    trace.response_tokens += out.num_tokens
    trace.finish_reason = out.finish_reason
    if out.finish_reason == "length":
        # The budget is spent: end thinking here and make the model answer.
        trace.response += out.text + FORCED_ANSWER
        trace.response_tokens += forced_tokens
        trace.forced_answer = True
        trace.phase = "answer"
        return
    # The model ended thinking (</think>) or the whole text (eos) before the budget.
    thought = out.text[: -len(THINK_END)] if out.finish_reason == "stop" else out.text
    room = budget - trace.thinking_tokens
    if trace.waits < num_extend and room > wait_tokens:
        trace.response += thought + wait
        trace.thinking_tokens += wait_tokens
        trace.response_tokens += wait_tokens
        trace.waits += 1
        return
    trace.response += out.text
    # After </think> the model writes its own answer; after end-of-sequence it is done.
    trace.phase = "answer" if out.finish_reason == "stop" else "done"
