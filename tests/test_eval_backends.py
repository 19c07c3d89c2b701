"""The generators: transformers for real on the tiny model; vLLM up to its boundary (requests built,
outputs read), since vLLM is not installed on CPU machines."""

from __future__ import annotations

import pytest

from tinyzero.eval.backends import (
    HFGenerator,
    choose_backend,
    end_token_ids,
    continuation_from_vllm,
    load_tokenizer,
    vllm_available,
    vllm_requests,
)
from tinyzero.eval.budget import Continuation, generate_with_budget
from tinyzero.eval.config import EvalConfigError


@pytest.fixture(scope="module")
def greedy(tiny_model_dir):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    return HFGenerator(str(tiny_model_dir), tokenizer, temperature=0.0, top_p=1.0, batch_size=3)


def test_auto_backend_is_hf_without_vllm_or_gpu():
    assert choose_backend("hf") == "hf"
    if not vllm_available():
        assert choose_backend("auto") == "hf"
        with pytest.raises(EvalConfigError, match=r"pip install 'tinyzero\[gpu\]'"):
            choose_backend("vllm")


def test_rows_keep_their_own_token_limit(greedy):
    prompts = ["What is 12 * 34? <think>", "Using the numbers [1, 2]", "A conversation between"] * 2
    limits = [1, 5, 9, 2, 7, 3]
    outputs = greedy.generate(prompts, limits, (), list(range(6)))
    for out, limit in zip(outputs, limits):
        assert 1 <= out.num_tokens <= limit
        if out.finish_reason == "length":
            assert out.num_tokens == limit
            # What was written is what the text says (re-encoding it gives the same length).
            assert greedy.count_tokens(out.text) <= limit


def test_batched_greedy_matches_one_prompt_at_a_time(greedy):
    prompts = ["What is 12 * 34? <think>", "Using the numbers [19, 36, 55, 7], create an equation"]
    together = greedy.generate(prompts, [12, 12], (), [0, 1])
    alone = [greedy.generate([p], [12], (), [0])[0] for p in prompts]
    assert together == alone


@pytest.fixture(scope="module")
def sampled(tiny_model_dir):
    tokenizer = load_tokenizer(str(tiny_model_dir))
    return HFGenerator(str(tiny_model_dir), tokenizer, temperature=1.0, top_p=1.0, batch_size=4)


def test_stop_string_ends_the_text_after_it(sampled):
    prompt = "Show your work in <think>"
    # Same seed, same tokens: the stop string is taken from what the model writes unconstrained.
    (free,) = sampled.generate([prompt], [24], (), [7])
    assert free.finish_reason == "length" and len(free.text) > 12
    stop = free.text[8:11]
    (stopped,) = sampled.generate([prompt], [24], (stop,), [7])
    assert stopped.finish_reason == "stop"
    assert stopped.text == free.text[: free.text.find(stop) + len(stop)]
    assert stopped.num_tokens <= free.num_tokens


def test_stop_string_is_matched_in_the_generated_text_only(sampled):
    # transformers' StopStringCriteria would match across the prompt's end (">" + first char).
    prompt = "Show your work in <think>"
    (free,) = sampled.generate([prompt], [24], (), [7])
    stop = prompt[-1] + free.text[0]
    (out,) = sampled.generate([prompt], [24], (stop,), [7])
    if stop in free.text:
        assert out.finish_reason == "stop" and out.text == free.text[: free.text.find(stop) + len(stop)]
    else:
        assert out == free


def test_budget_forcing_on_the_real_model_keeps_the_cap(greedy):
    prompts = ["Using the numbers [1, 2, 3], create 6. <think>", "What is 12 * 34? <think>"]
    traces = generate_with_budget(greedy, prompts, [0, 1], budget=6, num_extend=1, wait="Wait", answer_tokens=5)
    for trace in traces:
        assert trace.thinking_tokens <= 6
        assert trace.forced_answer == ("</think>\n<answer>" in trace.response)


def test_responses_end_at_the_eos_ids_and_not_at_the_pad_token(tiny_model_dir):
    # vLLM (and so verl's rollouts) stops at the EOS ids only; the tiny model pads with another token,
    # and a model that writes it goes on.
    from transformers import GenerationConfig

    tokenizer = load_tokenizer(str(tiny_model_dir))
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert end_token_ids(tokenizer, GenerationConfig.from_pretrained(tiny_model_dir)) == [tokenizer.eos_token_id]
    assert end_token_ids(tokenizer, GenerationConfig(eos_token_id=[7, tokenizer.eos_token_id])) == [
        7,
        tokenizer.eos_token_id,
    ]


def test_vllm_requests_group_the_n_samples_of_a_prompt():
    ids = [[1, 2, 3], [1, 2, 3], [4, 5], [1, 2, 3]]
    requests = vllm_requests(
        ids, [8, 8, 8, 4], ("</think>",), [10, 11, 12, 13], end_ids=[2], temperature=0.6, top_p=0.95
    )
    assert [members for _, _, members in requests] == [[0, 1], [2], [3]]
    prompt, params, _ = requests[0]
    assert prompt == {"prompt_token_ids": [1, 2, 3]}
    assert params == {
        "n": 2,
        "temperature": 0.6,
        "top_p": 0.95,
        "max_tokens": 8,
        "stop": ["</think>"],
        "include_stop_str_in_output": True,
        "stop_token_ids": [2],
        "skip_special_tokens": True,
        "seed": 10,
    }
    assert requests[2][1]["max_tokens"] == 4 and requests[2][1]["seed"] == 13


def test_vllm_greedy_requests_are_never_grouped_or_seeded():
    requests = vllm_requests([[1], [1]], [5, 5], (), [0, 1], end_ids=[2], temperature=0.0, top_p=0.9)
    assert [members for _, _, members in requests] == [[0], [1]]
    assert all(params["n"] == 1 and params["seed"] is None and params["top_p"] == 1.0 for _, params, _ in requests)


def test_vllm_outputs_become_continuations():
    assert continuation_from_vllm("a </think>", [1, 2, 3], "stop", "</think>") == Continuation("a </think>", 3, "stop")
    assert continuation_from_vllm("a", [1, 2], "stop", None) == Continuation("a", 2, "eos")
    assert continuation_from_vllm("a", [1, 2], "stop", 151643) == Continuation("a", 2, "eos")
    assert continuation_from_vllm("abc", [1, 2, 3, 4], "length", None) == Continuation("abc", 4, "length")
    # The stop string ended inside the last token: the text ends at the stop string.
    assert continuation_from_vllm("a </think>\n", [1, 2, 3], "stop", "</think>") == Continuation("a </think>", 3, "stop")
    with pytest.raises(RuntimeError, match="abort"):
        continuation_from_vllm("", [], "abort", None)
