"""The reward rules of issue 2, one test (or parametrised case) per rule, plus adversarial inputs."""

import re
import subprocess
import sys
from fractions import Fraction

import pytest

from tinyzero.rewards import (
    MAX_ANSWER_CHARS,
    compute_score,
    evaluate_expression,
    extract_answer,
    score_countdown,
    score_multiply,
)
from tinyzero.rewards.trl import completion_text, countdown_reward, multiply_reward, task_reward

NUMBERS = [19, 36, 55, 7]
TARGET = 65  # 55 + 36 - 19 - 7
COUNTDOWN = {"target": TARGET, "numbers": NUMBERS}


def countdown(answer: str, **kwargs):
    return score_countdown(f"<think>reasoning</think>\n<answer>{answer}</answer>", TARGET, NUMBERS, **kwargs)


# --- extraction ---


@pytest.mark.parametrize(
    "response, expected",
    [
        ("<answer>1</answer>", "1"),
        ("<answer>1</answer> then <answer>2</answer>", "2"),  # the last pair wins
        ("<answer>1</answer> then <answer>2", "1"),  # the last *complete* pair
        ("<answer>\n 55 + 36\n - 19 - 7 \n</answer>", "55 + 36\n - 19 - 7"),  # spans lines
        ("<answer>a <answer>b</answer>", "b"),  # nearest opening tag before the last closing one
        ("</answer><answer>", None),
        ("no tags at all", None),
        ("<answer>unclosed", None),
        ("<Answer>1</Answer>", None),  # tags are exact
        ("<answer></answer>", ""),
    ],
)
def test_extract_answer_takes_the_last_complete_pair(response, expected):
    assert extract_answer(response) == expected




# --- scores ---


def test_the_three_score_levels():
    assert countdown("55 + 36 - 19 - 7").score == 1.0
    assert countdown("55 + 36 - 19 + 7").score == 0.1  # wrong, but a pair is present
    assert countdown("no idea").score == 0.1  # whatever it holds
    no_pair = score_countdown("55 + 36 - 19 - 7", TARGET, NUMBERS)
    assert (no_pair.score, no_pair.has_answer, no_pair.correct) == (0.0, False, False)


def test_score_levels_are_parameters():
    levels = dict(no_answer_score=-1.0, format_score=0.25, correct_score=2.0)
    assert countdown("55 + 36 - 19 - 7", **levels).score == 2.0
    assert countdown("55 + 36", **levels).score == 0.25
    assert score_countdown("nothing", TARGET, NUMBERS, **levels).score == -1.0
    assert score_multiply("<answer>12</answer>", 12, **levels).score == 2.0
    assert score_multiply("<answer>13</answer>", 12, **levels).score == 0.25
    assert score_multiply("12", 12, **levels).score == -1.0
    for truth, text in ((COUNTDOWN, "55 + 36"), (12, "13")):
        source = "countdown" if truth is COUNTDOWN else "multiply"
        assert compute_score(source, f"<answer>{text}</answer>", truth, **levels)["score"] == 0.25
        assert compute_score(source, "", truth, **levels)["score"] == -1.0


def test_result_explains_the_score():
    result = countdown(" 55 + 36 - 19 + 7 ")
    assert result.answer == "55 + 36 - 19 + 7"
    assert result.reason == "evaluates to 79, not the target 65"
    assert countdown("55 + 36 - 19 - 7").reason == "correct"
    assert "no complete" in score_countdown("", TARGET, NUMBERS).reason


# --- Countdown grammar ---


@pytest.mark.parametrize(
    "answer",
    [
        "55 + 36 - 19 - 7",
        "(55 + 36) - (19 + 7)",
        "((((55)))) + 36 - 19 - 7",
        "55+36-19-7",
        "\n55 +\t36\r\n- 19 - 7\n",
        "55 + 36 - 19 - 7 = 65",
        "55 + 36 - 19 - 7=65",
        "55 + 36 - 19 - 7 =  65 ",
        "36 - 19 + 55 - 7",
        "55 - (19 - 36) - 7",
    ],
)
def test_correct_countdown_expressions(answer):
    result = countdown(answer)
    assert result.correct and result.score == 1.0, result.reason


def test_unicode_times_and_divide_count_as_star_and_slash():
    assert score_countdown("<answer>(3 × 8) ÷ 2</answer>", 12, [3, 8, 2]).correct
    assert score_countdown("<answer>3 × (8 ÷ 2)</answer>", 12, [3, 8, 2]).correct


@pytest.mark.parametrize(
    "answer, reason_part",
    [
        ("55 + 36 - 19 - 7 = 64", "target is 65"),  # `= N` only when N is the target
        ("55 + 36 - 19 - 7 = 65 = 65", "after '='"),
        ("55 + 36 - 19 - 7 = x", "after '='"),
        ("65 = 55 + 36 - 19 - 7", "after '='"),
        ("55 + 36 - 19 - 7 = ٦٥", "after '='"),
        ("55 + 36 - 19 - seven", "not allowed"),
        ("55 ** 36 - 19 - 7", "expected a number"),
        ("55 // 36 - 19 - 7", "expected a number"),
        ("55 % 36 - 19 - 7", "not allowed"),
        ("55 ^ 36 - 19 - 7", "not allowed"),
        ("55.0 + 36 - 19 - 7", "not allowed"),
        ("-55 + 36 + 19 + 7", "expected a number"),  # unary minus
        ("+55 + 36 - 19 - 7", "expected a number"),  # unary plus
        ("55 + -36 - 19 - 7", "expected a number"),
        ("٥٥ + 36 - 19 - 7", "not allowed"),  # Arabic-Indic digits
        ("５５ + 36 - 19 - 7", "not allowed"),  # full-width digits
        ("55 + 36 - 19 - 7\u00a0", "not allowed"),  # only ASCII white space
        ("55 36 - 19 - 7", "expected an operator"),
        ("55 + 36 - 19 - 7 +", "ends without a number"),
        ("", "empty expression"),
        ("()", "expected a number"),
        ("(55 + 36 - 19 - 7", "unbalanced '('"),
        ("55 + 36) - 19 - 7", "unbalanced ')'"),
        ("55 + 36 (- 19) - 7", "expected an operator"),
        ("55(36) - 19 - 7", "expected an operator"),
        ("1_000 + 36 - 19 - 7", "not allowed"),
        ("[55 + 36] - 19 - 7", "not allowed"),
    ],
)
def test_everything_outside_the_grammar_is_wrong_not_an_error(answer, reason_part):
    result = countdown(answer)
    assert (result.score, result.correct, result.has_answer) == (0.1, False, True)
    assert reason_part in result.reason


def test_literals_must_be_exactly_the_given_numbers():
    assert not countdown("55 + 36 - 19").correct  # 7 unused
    assert "not exactly" in countdown("55 + 36 - 26").reason  # a number not given
    assert not countdown("55 + 36 - 19 - 7 + 0").correct  # one literal too many
    # The same number twice counts twice: given [2, 2] both must be used, and 2 alone is not enough.
    assert score_countdown("<answer>2 * 2</answer>", 4, [2, 2]).correct
    assert not score_countdown("<answer>2 + 2</answer>", 4, [2]).correct
    assert not score_countdown("<answer>2 + 2</answer>", 4, [2, 3]).correct
    # Multiset, not order.
    assert score_countdown("<answer>7 - 19 + 36 + 55 - 14</answer>", 65, [55, 36, 19, 7, 14]).correct


def test_at_most_once_rule_is_a_parameter():
    assert not countdown("55 + 36 - 26").correct
    loose = dict(allow_unused_numbers=True)
    assert score_countdown("<answer>55 + 10</answer>", 65, [55, 10, 3], **loose).correct
    assert not score_countdown("<answer>55 + 5 + 5</answer>", 65, [55, 5, 3], **loose).correct  # 5 twice
    assert not score_countdown("<answer>55 + 10</answer>", 65, [55, 11], **loose).correct
    assert compute_score("countdown", "<answer>55 + 10</answer>", {"target": 65, "numbers": [55, 10, 3]},
                         allow_unused_numbers=True)["acc"] == 1.0


def test_arithmetic_is_exact_with_fractions():
    # 8 / (3 - 8 / 3) = 24 only in exact arithmetic (floats give 23.99...).
    assert score_countdown("<answer>8 / (3 - 8 / 3)</answer>", 24, [8, 3, 8, 3]).correct
    assert score_countdown("<answer>(1 / 3) * 9 + 1</answer>", 4, [1, 3, 9, 1]).correct
    # 1/3 + 1/3 + 1/3 is exactly 1 (never 0.999...).
    assert score_countdown("<answer>1/3 + 1/3 + 1/3</answer>", 1, [1, 3, 1, 3, 1, 3]).correct
    # Close is not equal: 10/3 is not 3.
    assert not score_countdown("<answer>10 / 3</answer>", 3, [10, 3]).correct
    # Precedence and left associativity.
    assert score_countdown("<answer>2 + 3 * 4</answer>", 14, [2, 3, 4]).correct
    assert score_countdown("<answer>20 - 5 - 3</answer>", 12, [20, 5, 3]).correct
    assert score_countdown("<answer>48 / 4 / 2</answer>", 6, [48, 4, 2]).correct
    assert score_countdown("<answer>48 / 4 * 2</answer>", 24, [48, 4, 2]).correct
    # Negative intermediate values are fine.
    assert score_countdown("<answer>(3 - 10) * (2 - 5)</answer>", 21, [3, 10, 2, 5]).correct


def test_division_by_zero_is_wrong():
    result = score_countdown("<answer>5 / (3 - 3) + 1</answer>", 6, [5, 3, 3, 1])
    assert not result.correct and result.score == 0.1 and result.reason == "division by zero"
    assert not score_countdown("<answer>0 / 0</answer>", 0, [0, 0]).correct
    assert score_countdown("<answer>0 / 7</answer>", 0, [0, 7]).correct


def test_answer_over_the_length_cap_is_wrong_without_parsing():
    at_cap = "55 + 36 - 19 - 7" + " " * (MAX_ANSWER_CHARS - 17) + "+"  # 1,000 characters of content
    assert countdown(at_cap).reason == "expression ends without a number"  # parsed
    result = countdown(at_cap + "0")  # 1,001
    assert (result.score, result.correct) == (0.1, False) and "longer than" in result.reason


def test_white_space_around_the_answer_does_not_count_to_the_cap():
    for space in (" ", "\n", "\t\r\n"):
        padding = space * MAX_ANSWER_CHARS
        assert countdown(padding + "55 + 36 - 19 - 7" + padding).correct, repr(space)
        assert score_multiply(f"<answer>{padding}56088{padding}</answer>", 56088).correct
    inside = "55 + 36" + " " * MAX_ANSWER_CHARS + "- 19 - 7"  # white space inside the answer counts
    assert "longer than" in countdown(inside).reason
    # Only ASCII white space is padding, as in the grammar: an ideographic space is content.
    assert "longer than" in countdown("\u3000" * MAX_ANSWER_CHARS + "55 + 36 - 19 - 7").reason


@pytest.mark.parametrize("answer", ["07 + 36 - 19 - 55", "(055 + 36) - 19 - 7", "55 + 36 - 19 - 007"])
def test_countdown_literals_with_leading_zeros_are_wrong(answer):
    # As in the classic eval-based scorer and reasoning-gym: `07` is not how 7 is written.
    result = score_countdown(f"<answer>{answer}</answer>", 65, [19, 36, 55, 7])
    assert (result.score, result.correct) == (0.1, False) and "leading zero" in result.reason
    assert score_countdown("<answer>0 + 7</answer>", 7, [0, 7]).correct  # 0 itself is a literal
    assert not score_countdown("<answer>00 + 7</answer>", 7, [0, 7]).correct
    assert evaluate_expression("07 * 3") is None and evaluate_expression("0 * 3") == (0, [0, 3])


# --- evaluate_expression (used by the aha analysis) ---


def test_evaluate_expression():
    assert evaluate_expression("1/3 + 1/6") == (Fraction(1, 2), [1, 3, 1, 6])
    assert evaluate_expression("(1 + 2) × (3 + 4) ÷ (5 - 6)") == (Fraction(-21), [1, 2, 3, 4, 5, 6])
    value, literals = evaluate_expression("8 / (3 - 8 / 3)")
    assert type(value) is Fraction and value == 24 and literals == [8, 3, 8, 3]
    for invalid in ("1/0", "1 / (2 - 2)", "2 ** 3", "-1", "1.5", "", "abc", None, 12, "1 + 1 = 2"):
        assert evaluate_expression(invalid) is None, invalid
    assert evaluate_expression("1+" * 600 + "1") is None  # over max_chars
    assert evaluate_expression("1+" * 600 + "1", max_chars=2000) == (Fraction(601), [1] * 601)


# --- multiplication ---


# Leading zeros are accepted in a product (`056088`): unlike a Countdown literal, which must be
# one of the given numbers as written, a product has one value however it is padded.
@pytest.mark.parametrize("answer", ["56088", " 56088 ", "\n56088\n", "56,088", "056088"])
def test_correct_products(answer):
    assert score_multiply(f"<answer>{answer}</answer>", 56088).correct


@pytest.mark.parametrize(
    "answer",
    ["+56088", "-56088", "1_000", "56088.0", "56.088", "5,6088", "56,08,8", ",56,088", "56,088,", "56 088",
     "５６０８８", "٥٦٠٨٨", "56088 = 123 * 456", "123 * 456", "", "56089", "5608800", "0x0"],
)
def test_anything_but_a_plain_integer_is_wrong(answer):
    result = score_multiply(f"<answer>{answer}</answer>", 56088)
    assert (result.score, result.correct, result.has_answer) == (0.1, False, True)


def test_multiply_groups_of_three_and_big_products():
    assert score_multiply("<answer>1,000</answer>", 1000).correct
    assert score_multiply("<answer>1,234,567,890</answer>", 1234567890).correct
    assert score_multiply("<answer>1000</answer>", 1000).correct
    assert not score_multiply("<answer>1,0000</answer>", 10000).correct
    big = 123456789 ** 5
    assert score_multiply(f"<answer>{big}</answer>", big).correct


# --- compute_score: verl's entry point ---

KEYS = {"score", "acc", "has_answer"}


@pytest.mark.parametrize(
    "response, expected",
    [
        ("<answer>55 + 36 - 19 - 7</answer>", {"score": 1.0, "acc": 1.0, "has_answer": 1.0}),
        ("<answer>55 + 36 - 19 + 7</answer>", {"score": 0.1, "acc": 0.0, "has_answer": 1.0}),
        ("<answer>" + "1" * 2000 + "</answer>", {"score": 0.1, "acc": 0.0, "has_answer": 1.0}),
        ("55 + 36 - 19 - 7", {"score": 0.0, "acc": 0.0, "has_answer": 0.0}),
    ],
)
def test_compute_score_returns_the_same_float_keys_for_every_sample(response, expected):
    result = compute_score("countdown", response, COUNTDOWN, extra_info={"index": 3})
    assert result == expected
    assert set(result) == KEYS and all(type(v) is float for v in result.values())


@pytest.mark.parametrize(
    "source, truth, answer",
    [
        ("countdown", COUNTDOWN, "55 + 36 - 19 - 7"),
        ("countdown_3to4", COUNTDOWN, "55 + 36 - 19 - 7"),
        ("Jiayi-Pan/Countdown-Tasks-3to4/countdown", COUNTDOWN, "55 + 36 - 19 - 7"),
        ("multiply", {"product": 56088, "factors": [123, 456]}, "56088"),
        ("multiply", 56088, "56088"),  # the classic bare-int ground truth
        ("yolo/multiply-3_digit", 56088, "56,088"),
    ],
)
def test_data_source_selects_the_task(source, truth, answer):
    assert compute_score(source, f"<answer>{answer}</answer>", truth)["acc"] == 1.0


@pytest.mark.parametrize("source", ["gsm8k", "", "Countdown", "countdown_multiply", None, 3, ["countdown"]])
def test_unknown_data_source_raises_naming_the_known_ones(source):
    with pytest.raises(ValueError, match="countdown.*multiply"):
        compute_score(source, "<answer>1</answer>", 1)


def test_verls_extra_keyword_arguments_are_accepted():
    # verl adds reward_router_address / reward_model_tokenizer, and extra_info carries num_turns etc.
    result = compute_score(
        data_source="countdown", solution_str="<answer>55+36-19-7</answer>", ground_truth=COUNTDOWN,
        extra_info={"num_turns": None, "rollout_reward_scores": {}}, reward_router_address=None,
        reward_model_tokenizer=None,
    )
    assert result["score"] == 1.0


def test_unknown_keywords_are_refused_by_name():
    with pytest.raises(TypeError, match="'formt_score' \\(did you mean 'format_score'\\?\\).*reward_kwargs"):
        compute_score("countdown", "<answer>55+36-19-7</answer>", COUNTDOWN, formt_score=0.5)
    with pytest.raises(TypeError, match="'formt_score'"):
        score_countdown("<answer>1</answer>", TARGET, NUMBERS, formt_score=0.5)
    with pytest.raises(TypeError, match="'allow_unused_numbers'"):
        score_multiply("<answer>1</answer>", 1, allow_unused_numbers=True)


SCORE_LEVELS = dict(no_answer_score=0.0, format_score=0.1, correct_score=1.0)


@pytest.mark.parametrize(
    "options, error, message",
    [
        (dict(allow_unused_numbers="false"), TypeError, "allow_unused_numbers='false': must be True or False, got str"),
        (dict(allow_unused_numbers=1), TypeError, "allow_unused_numbers=1: must be True or False, got int"),
        (dict(correct_score=float("nan")), ValueError, "correct_score=nan: must be a finite number"),
        (dict(no_answer_score=float("-inf")), ValueError, "no_answer_score=-inf: must be a finite number"),
        (dict(format_score="0.1"), TypeError, "format_score='0.1': must be a number, got str"),
        (dict(correct_score=True), TypeError, "correct_score=True: must be a number, got bool"),
        (dict(format_score=2.0), ValueError, "format_score=2.0 must be below correct_score=1.0: otherwise a wrong"),
        (dict(format_score=1.0), ValueError, "format_score=1.0 must be below correct_score=1.0"),
        (dict(no_answer_score=0.5), ValueError, "no_answer_score=0.5 must not exceed format_score=0.1"),
    ],
)
def test_options_are_checked(options, error, message):
    scorers = [
        lambda: compute_score("countdown", "<answer>55+36-19-7</answer>", COUNTDOWN, **options),
        lambda: score_countdown("<answer>55+36-19-7</answer>", TARGET, NUMBERS, **options),
        lambda: countdown_reward(completions=["<answer>1</answer>"], target=[TARGET], numbers=[NUMBERS], **options),
    ]
    if "allow_unused_numbers" not in options:
        scorers.append(lambda: score_multiply("<answer>12</answer>", 12, **options))
        scorers.append(lambda: multiply_reward(completions=["<answer>12</answer>"], product=[12], **options))
    else:  # refused whatever the task, so a typo'd value in a mixed dataset fails on any row
        scorers.append(lambda: compute_score("multiply", "<answer>12</answer>", 12, **options))
    for scorer in scorers:
        with pytest.raises(error, match=re.escape(message)):
            scorer()


def test_checked_options_still_score():
    levels = dict(no_answer_score=-1, format_score=0, correct_score=2)  # ints, a negative level, equal low levels
    assert countdown("55 + 36", **levels).score == 0.0
    assert compute_score("countdown", "none", COUNTDOWN, **levels)["score"] == -1.0
    assert compute_score("multiply", "<answer>12</answer>", 12, **levels)["score"] == 2.0
    assert compute_score("countdown", "none", COUNTDOWN, no_answer_score=0.1, format_score=0.1)["score"] == 0.1


def test_ground_truth_as_tuple_and_numpy_array():
    np = pytest.importorskip("numpy")
    response = "<answer>55 + 36 - 19 - 7</answer>"
    for numbers in ((19, 36, 55, 7), np.array(NUMBERS), np.array(NUMBERS, dtype=np.int32), [np.int64(n) for n in NUMBERS]):
        truth = {"target": np.int64(TARGET), "numbers": numbers}
        assert compute_score("countdown", response, truth)["score"] == 1.0
    assert compute_score("multiply", "<answer>56088</answer>", np.int64(56088))["score"] == 1.0
    truth = {"product": np.int64(56088), "factors": np.array([123, 456])}
    assert compute_score("multiply", "<answer>56088</answer>", truth)["score"] == 1.0


@pytest.mark.parametrize(
    "source, truth, message",
    [
        ("countdown", {"target": 65}, "'numbers'"),
        ("countdown", {"numbers": NUMBERS}, "'target'"),
        ("countdown", 65, "'target'"),
        ("countdown", {"target": 65.5, "numbers": NUMBERS}, "target must be an integer"),
        ("countdown", {"target": 65, "numbers": [1.5, 2]}, "numbers must be"),
        ("countdown", {"target": 65, "numbers": 7}, "numbers must be"),
        ("multiply", {"factors": [1, 2]}, "'product'"),
        ("multiply", "56088", "product must be an integer"),
    ],
)
def test_bad_ground_truth_is_a_clear_error(source, truth, message):
    with pytest.raises((TypeError, ValueError), match=message):
        compute_score(source, "<answer>1</answer>", truth)


# --- adversarial inputs: wrong (or right), never an error, never a hang ---

ADVERSARIAL = [
    "95**36**32**91",
    "95 ** 36 ** 32 ** 91",
    "9**9**9**9**9",
    "(" * 10_000 + "55" + ")" * 10_000,
    "(" * 492 + "55 + 36 - 19 + 7" + ")" * 492,  # under the cap: parsed, iteratively, and wrong
    ")" * 999,
    "__import__('os').system('echo pwned')",
    "exec('import os')",
    "(lambda f: f(f))(lambda f: f(f))",
    "[x for x in range(10**10)]",
    "'a' * 10**9",
    "55 + 36 - 19 - 7; import os",
    "٥٥ + ٣٦ - ١٩ - ٧",
    "𝟓𝟓 + 36 - 19 - 7",
    "55\x00 + 36 - 19 - 7",
    "\ud800",  # a lone surrogate
    "9" * 999,
    "1/" * 499 + "1",
]


@pytest.mark.parametrize("answer", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_answers_are_wrong_not_errors(answer):
    assert len(answer) <= MAX_ANSWER_CHARS or answer.startswith("((")
    response = f"<answer>{answer}</answer>"
    assert compute_score("countdown", response, COUNTDOWN) == {"score": 0.1, "acc": 0.0, "has_answer": 1.0}
    assert score_countdown(response, TARGET, NUMBERS).score == 0.1
    assert compute_score("multiply", response, 56088)["score"] == 0.1
    evaluate_expression(answer)  # must return, whatever it returns


def test_deep_parentheses_under_the_cap_are_evaluated():
    answer = "(" * 490 + "55 + 36 - 19 - 7" + ")" * 490
    assert len(answer) <= MAX_ANSWER_CHARS and countdown(answer).correct
    assert evaluate_expression("(" * 5000 + "1" + ")" * 5000, max_chars=20_000) == (Fraction(1), [1])


def test_one_megabyte_response():
    reasoning = "<think>" + "Let me try 55 + 36 = 91. <answer>wrong</answer " * 22_000 + "</think>"
    assert len(reasoning) > 1_000_000
    assert compute_score("countdown", reasoning + "<answer>55 + 36 - 19 - 7</answer>", COUNTDOWN)["score"] == 1.0
    assert compute_score("countdown", reasoning, COUNTDOWN)["score"] == 0.0
    assert compute_score("countdown", "<answer>" * 130_000, COUNTDOWN)["score"] == 0.0
    assert compute_score("countdown", "</answer>" * 120_000, COUNTDOWN)["score"] == 0.0
    assert compute_score("countdown", "<answer>" + "(" * 1_000_000 + "</answer>", COUNTDOWN)["score"] == 0.1
    assert compute_score("multiply", "<answer>" + "1," * 500_000 + "000</answer>", 1)["score"] == 0.1


@pytest.mark.parametrize(
    "response, kind", [(None, "NoneType"), (b"<answer>1</answer>", "bytes"), (12, "int"), (["<answer>1</answer>"], "list")]
)
def test_a_response_that_is_not_a_str_is_a_type_error_naming_its_type(response, kind):
    """One rule for every scorer: bytes holding a right answer must not quietly score 0."""
    for scorer in (
        lambda: compute_score("countdown", response, COUNTDOWN),
        lambda: compute_score("multiply", response, 1),
        lambda: score_countdown(response, TARGET, NUMBERS),
        lambda: score_multiply(response, 1),
        lambda: extract_answer(response),
    ):
        with pytest.raises(TypeError, match=f"the response must be a str, got {kind} "):
            scorer()
    if kind != "list":  # a list is a conversation to the TRL adapter
        with pytest.raises(TypeError, match=f"a completion must be a string or a list .*, got {kind} "):
            countdown_reward(completions=[response], target=[TARGET], numbers=[NUMBERS])
    with pytest.raises(TypeError, match="decode it first"):
        compute_score("countdown", b"<answer>55+36-19-7</answer>", COUNTDOWN)


@pytest.mark.parametrize(
    "source, truth, error, message",
    [
        ("countdown", {"target": True, "numbers": [1]}, TypeError, "Countdown target must be an integer, got the bool True"),
        ("countdown", {"target": 24, "numbers": {3, 8}}, TypeError, "got the set {8, 3}: it would drop repeated numbers"),
        ("countdown", {"target": 24, "numbers": frozenset({3, 8})}, TypeError, "frozenset"),
        ("countdown", {"target": 24, "numbers": {3: 1, 8: 2}}, TypeError, "got the dict {3: 1, 8: 2}"),
        ("countdown", {"target": 2, "numbers": [True, True]}, TypeError, "got bools in [True, True]"),
        ("countdown", {"target": 24, "numbers": [-3, 8]}, ValueError, "must not be negative, got -3 in [-3, 8]: no answer"),
        ("countdown", {"target": 24, "numbers": []}, ValueError, "Countdown numbers are empty"),
        ("multiply", True, TypeError, "the product must be an integer, got bool True"),
        ("multiply", {"product": True, "factors": [1, 1]}, TypeError, "the product must be an integer, got bool True"),
        ("multiply", -12, ValueError, "the product must not be negative, got -12"),
        ("multiply", {"product": 12, "factors": [3, 5]}, ValueError, "the factors [3, 5] multiply to 15, not the product 12"),
        ("multiply", {"product": 12, "factors": [3, "4"]}, TypeError, "the factors must be a list of integers, got [3, '4']"),
        ("multiply", {"product": 12, "factors": 12}, TypeError, "the factors must be a list of integers, got 12"),
    ],
)
def test_ground_truth_that_no_answer_could_meet_is_refused_naming_the_field(source, truth, error, message):
    with pytest.raises(error, match=re.escape(message)):
        compute_score(source, "<answer>8*3</answer>", truth)


def test_duplicated_numbers_as_a_list_still_need_every_copy():
    """{3, 3, 8, 8} as a set would let 8*3 score 1.0; as the list it is, 8*3 leaves two unused."""
    assert compute_score("countdown", "<answer>8*3</answer>", {"target": 24, "numbers": [3, 3, 8, 8]})["acc"] == 0.0
    assert score_countdown("<answer>8*3</answer>", 24, (3, 3, 8, 8), allow_unused_numbers=True).correct
    truth = {"product": 12, "factors": (3, 4)}
    assert compute_score("multiply", "<answer>12</answer>", truth)["acc"] == 1.0


# --- TRL adapter ---


def test_trl_adapter_plain_and_conversational_completions():
    completions = [
        "<answer>55 + 36 - 19 - 7</answer>",
        [{"role": "assistant", "content": "<think>hm</think><answer>55 + 36 - 19 - 7</answer>"}],
        [{"role": "assistant", "content": "<answer>55 + 36</answer>"}],
        [{"role": "assistant", "content": [{"type": "text", "text": "<answer>55+36-19-7</answer>"}]}],
        "no answer",
    ]
    n = len(completions)
    # TRL passes every dataset column as a keyword argument, one item per completion.
    rewards = countdown_reward(
        prompts=["p"] * n, completions=completions, completion_ids=[[1]] * n, trainer_state=None,
        target=[TARGET] * n, numbers=[NUMBERS] * n, split=["train"] * n,
    )
    assert rewards == [1.0, 1.0, 0.1, 1.0, 0.0]
    assert all(type(r) is float for r in rewards)
    assert multiply_reward(completions=["<answer>12</answer>", "<answer>13</answer>"], product=[12, 12]) == [1.0, 0.1]


def test_trl_task_reward_reads_verl_row_schema():
    rows = [
        ("countdown", {"style": "rule", "ground_truth": COUNTDOWN}, "<answer>55+36-19-7</answer>"),
        ("multiply", {"style": "rule", "ground_truth": {"product": 56088, "factors": [123, 456]}}, "<answer>56088</answer>"),
        ("multiply", {"style": "rule", "ground_truth": 12}, "<answer>13</answer>"),
    ]
    sources, reward_models, completions = map(list, zip(*rows))
    assert task_reward(completions=completions, data_source=sources, reward_model=reward_models) == [1.0, 1.0, 0.1]


def test_trl_adapter_errors_name_the_problem():
    with pytest.raises(TypeError, match="'numbers' column"):
        countdown_reward(completions=["x"], target=[1])
    with pytest.raises(ValueError, match="'target' has 2 items but there are 1"):
        countdown_reward(completions=["x"], target=[1, 2], numbers=[[1]])
    # A mixed-task dataset has nulls in the other task's columns: the fix is task_reward.
    with pytest.raises(ValueError, match="row 1 of the batch has no 'target'.*use task_reward"):
        countdown_reward(completions=["x", "y"], target=[1, None], numbers=[[1], None])
    with pytest.raises(ValueError, match="row 0 of the batch has no 'product'.*use task_reward"):
        multiply_reward(completions=["x"], product=[None])
    with pytest.raises(TypeError, match="string or a list"):
        completion_text(3)
    # Messages other than the assistant's (a tool's output, say) are not the model's answer.
    conversation = [{"role": "assistant", "content": "<answer>1"}, {"role": "tool", "content": "</answer>"}]
    assert completion_text(conversation) == "<answer>1"


def test_trl_adapters_refuse_a_keyword_that_is_neither_an_option_nor_a_column():
    n = 2
    trl_arguments = dict(prompts=["p"] * n, completion_ids=[[1]] * n, trainer_state=None, log_extra=print,
                         log_metric=print, environments=None)
    completions = ["<answer>55+36-19-7</answer>", "<answer>55+36</answer>"]
    columns = dict(target=[TARGET] * n, numbers=[NUMBERS] * n)
    assert countdown_reward(completions=completions, **columns, **trl_arguments, split=["a", "b"]) == [1.0, 0.1]
    with pytest.raises(TypeError, match=re.escape("countdown_reward got formt_score=0.5 (did you mean 'format_score'?)")):
        countdown_reward(completions=completions, **columns, formt_score=0.5)
    with pytest.raises(TypeError, match="multiply_reward got allow_unused_numbers=True: neither one of its options"):
        multiply_reward(completions=["<answer>12</answer>"], product=[12], allow_unused_numbers=True)
    rows = dict(data_source=["multiply"], reward_model=[{"ground_truth": 12}])
    with pytest.raises(TypeError, match=re.escape("task_reward got note=[1, 2]: neither one of its options")):
        task_reward(completions=["<answer>12</answer>"], **rows, note=[1, 2])  # two items, one completion


# --- dependencies ---


def test_import_brings_no_third_party_package():
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import tinyzero.rewards, tinyzero.rewards.trl\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(new - set(sys.stdlib_module_names) - {'tinyzero'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_no_eval_exec_or_compile_in_the_reward_code():
    import ast
    from pathlib import Path

    import tinyzero.rewards

    for path in Path(tinyzero.rewards.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"eval", "exec", "compile", "__import__"}, f"{path.name}:{node.lineno}"
