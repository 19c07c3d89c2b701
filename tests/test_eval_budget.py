"""Budget forcing, deterministically: a scripted generator whose outputs are fixed by the context.

The scripted model writes words (one token each): `think_words` words of thinking, then
`</think>`, then `<answer> 1 + 2 + 3 </answer>` and the end of sequence. After a `Wait` it
thinks `think_words` more words. It honours max_tokens and stop strings exactly as the
`Generator` contract says, so the budget loop is tested without a model.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tinyzero.eval.budget import (
    FORCED_ANSWER,
    THINK_END,
    Continuation,
    generate_plain,
    generate_with_budget,
)
from tinyzero.rewards import compute_score

EOS = None
PROMPT = "Using the numbers [1, 2, 3], make 6. <think>"
GROUND_TRUTH = {"target": 6, "numbers": [1, 2, 3]}


class ScriptedGenerator:
    def __init__(self, think_words: dict[str, int] | int, wait: str = "Wait", end_with_eos: bool = False):
        self.think_words = think_words
        self.wait = wait
        self.end_with_eos = end_with_eos  # end thinking by ending the text instead of </think>
        self.calls: list[tuple[int, list[int], tuple[str, ...]]] = []

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _planned_tokens(self, context: str) -> list[str | None]:
        prompt, _, response = context.partition("<think>")
        words = self.think_words if isinstance(self.think_words, int) else self.think_words[prompt]
        answer = [" 1", " +", " 2", " +", " 3", " </answer>", EOS]
        if "<answer>" in response:
            return answer
        if THINK_END in response:
            return [" <answer>"] + answer
        since_wait = response.rsplit(self.wait, 1)[-1] if self.wait in response else response
        left = max(0, words - len(since_wait.split()))
        thinking = [f" w{i}" for i in range(left)]
        return thinking + ([EOS] if self.end_with_eos else [" " + THINK_END, " <answer>"] + answer)

    def generate(self, prompts, max_tokens, stop, seeds, desc="generating"):
        assert len(prompts) == len(max_tokens) == len(seeds)
        self.calls.append((len(prompts), list(max_tokens), tuple(stop)))
        outputs = []
        for context, limit in zip(prompts, max_tokens):
            assert limit >= 1, "a segment must never be asked for less than one token"
            text, finish, count = "", "length", 0
            for token in self._planned_tokens(context)[:limit]:
                count += 1
                if token is EOS:
                    finish = "eos"
                    break
                text += token
                hit = [s for s in stop if s in text]
                if hit:
                    text = text[: text.find(hit[0]) + len(hit[0])]
                    finish = "stop"
                    break
            outputs.append(Continuation(text=text, num_tokens=count, finish_reason=finish))
        return outputs


def score(response: str) -> dict:
    return compute_score("countdown", response, GROUND_TRUTH)


def test_budget_cuts_long_thinking_and_forces_the_answer():
    generator = ScriptedGenerator(think_words=50)
    traces = generate_with_budget(
        generator, [PROMPT] * 3, [0, 1, 2], budget=8, num_extend=0, wait="Wait", answer_tokens=16
    )
    for trace in traces:
        assert trace.thinking_tokens == 8
        assert trace.forced_answer and trace.waits == 0
        assert trace.response.count(THINK_END) == 1
        assert trace.response.split(FORCED_ANSWER)[0] == " " + " ".join(f"w{i}" for i in range(8))
        assert trace.response.endswith("</answer>")
        assert score(trace.response) == {"score": 1.0, "acc": 1.0, "has_answer": 1.0}
    # One call for the thinking of all three, one for their answers.
    assert generator.calls == [(3, [8, 8, 8], (THINK_END,)), (3, [16, 16, 16], ("</answer>",))]


def test_early_end_of_thinking_is_suppressed_exactly_num_extend_times():
    generator = ScriptedGenerator(think_words=3)
    (trace,) = generate_with_budget(generator, [PROMPT], [0], budget=100, num_extend=2, wait="Wait", answer_tokens=16)
    assert trace.waits == 2
    assert trace.response.count("Wait") == 2
    assert trace.response.count(THINK_END) == 1  # the suppressed delimiters were dropped
    assert not trace.forced_answer
    assert trace.response == " w0 w1 w2 Wait w0 w1 w2 Wait w0 w1 w2 </think> <answer> 1 + 2 + 3 </answer>"
    # Three thinking segments of 3 words + </think>, plus two one-token waits.
    assert trace.thinking_tokens == 3 * 4 + 2
    assert score(trace.response)["acc"] == 1.0


def test_no_extension_keeps_the_models_own_end_of_thinking():
    generator = ScriptedGenerator(think_words=3)
    (trace,) = generate_with_budget(generator, [PROMPT], [0], budget=100, num_extend=0, wait="Wait", answer_tokens=16)
    assert trace.response == " w0 w1 w2 </think> <answer> 1 + 2 + 3 </answer>"
    assert trace.waits == 0 and not trace.forced_answer


def test_extension_stops_when_the_budget_leaves_no_room():
    # 5 thinking tokens per segment (4 words + </think>), budget 12: one wait fits (5 + 1 = 6),
    # the second segment ends at 11 tokens, and a second wait would leave no token to think.
    generator = ScriptedGenerator(think_words=4)
    (trace,) = generate_with_budget(generator, [PROMPT], [0], budget=12, num_extend=5, wait="Wait", answer_tokens=16)
    assert trace.waits == 1
    assert trace.thinking_tokens == 11
    assert trace.response.endswith("</think> <answer> 1 + 2 + 3 </answer>")


def test_end_of_text_in_thinking_is_suppressed_too():
    generator = ScriptedGenerator(think_words=2, end_with_eos=True)
    (trace,) = generate_with_budget(generator, [PROMPT], [0], budget=50, num_extend=1, wait="Wait", answer_tokens=16)
    assert trace.waits == 1
    assert trace.response == " w0 w1Wait w0 w1"
    assert trace.finish_reason == "eos" and not trace.forced_answer


def test_sequences_advance_together_in_batches():
    prompts = {f"problem {i} ": words for i, words in enumerate([2, 30, 3, 30])}
    generator = ScriptedGenerator(think_words=prompts)
    texts = [p + "<think>" for p in prompts]
    traces = generate_with_budget(
        generator, texts, [0, 1, 2, 3], budget=10, num_extend=1, wait="Wait", answer_tokens=16
    )
    assert [t.forced_answer for t in traces] == [False, True, False, True]
    assert [t.waits for t in traces] == [1, 0, 1, 0]
    # Round 1: all four think; the two long ones are cut and answer at once. Round 2: the two
    # short ones think again after their wait, then answer.
    assert generator.calls == [
        (4, [10, 10, 10, 10], (THINK_END,)),
        (2, [16, 16], ("</answer>",)),
        (2, [6, 5], (THINK_END,)),
        (2, [16, 16], ("</answer>",)),
    ]


def test_plain_generation_counts_thinking_before_the_delimiter():
    generator = ScriptedGenerator(think_words=4)
    (trace,) = generate_plain(generator, [PROMPT], [0], max_new_tokens=100)
    assert trace.response == " w0 w1 w2 w3 </think> <answer> 1 + 2 + 3 </answer>"
    assert trace.thinking_tokens == 4
    assert trace.response_tokens == 4 + 1 + 1 + 6 + 1  # the end-of-sequence token is generated too
    assert trace.finish_reason == "eos"
    (cut,) = generate_plain(ScriptedGenerator(think_words=50), [PROMPT], [0], max_new_tokens=7)
    assert cut.thinking_tokens == cut.response_tokens == 7 and cut.finish_reason == "length"


@settings(max_examples=200, deadline=None)
@given(
    think=st.lists(st.integers(0, 40), min_size=1, max_size=5),
    budget=st.integers(1, 60),
    num_extend=st.integers(0, 4),
    wait=st.sampled_from(["Wait", "Wait, let me check.", "Hmm"]),
    eos=st.booleans(),
)
def test_budget_invariants(think, budget, num_extend, wait, eos):
    prompts = {f"p{i} ": words for i, words in enumerate(think)}
    generator = ScriptedGenerator(think_words=prompts, wait=wait, end_with_eos=eos)
    texts = [p + "<think>" for p in prompts]
    traces = generate_with_budget(
        generator, texts, list(range(len(texts))), budget=budget, num_extend=num_extend, wait=wait, answer_tokens=16
    )
    for trace in traces:
        assert trace.thinking_tokens <= budget  # the cap is never exceeded
        assert trace.waits <= num_extend
        assert trace.response.count(wait) == trace.waits
        # The text's thinking is at most what was counted (suppressed delimiters count, not shown).
        thought = trace.response.split(THINK_END, 1)[0]
        assert generator.count_tokens(thought) <= trace.thinking_tokens
        if trace.forced_answer:
            assert trace.response.count(FORCED_ANSWER) == 1
        if not eos:
            assert trace.response.count(THINK_END) == 1
            assert trace.response.endswith("</answer>")  # the answer is always written
            assert score(trace.response)["acc"] == 1.0
    # Batched: the number of generate calls depends on the rounds, not on how many prompts.
    assert len(generator.calls) <= 2 * (num_extend + 1)
    assert sum(n for n, _, stop in generator.calls if stop == ("</answer>",)) <= len(texts)
