"""Reward throughput and worst-case latency: `python benchmarks/bench_rewards.py`.

Prints, from the same run:
- responses/s of `tinyzero.rewards.compute_score` and of the classic eval-based Countdown scorer
  on a realistic corpus (~800 characters of reasoning, then a correct, wrong, malformed or
  missing answer), and their ratio (target: >= 1.5x);
- the slowest single response among adversarial inputs under 100,000 characters (target: <= 1 ms);
- time against response length up to 10 million characters (linear), and evaluate_expression's
  worst case.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time

from tinyzero.rewards import compute_score, evaluate_expression

# --- the classic scorer, rebuilt from its description (benchmark only, never in the library) ---
_CLASSIC_ANSWER = re.compile(r"<answer>(.*?)</answer>")
_CLASSIC_WHITELIST = re.compile(r"^[\d+\-*/().\s]+$")


def classic_score(solution_str: str, ground_truth: dict, format_score: float = 0.1, score: float = 1.0) -> float:
    """Regex-extract the last answer, check its numbers, character-whitelist it, then `eval` it."""
    matches = list(_CLASSIC_ANSWER.finditer(solution_str))
    if not matches:
        return 0.0
    equation = matches[-1].group(1).strip()
    try:
        used = sorted(int(n) for n in re.findall(r"\d+", equation))
        if used != sorted(ground_truth["numbers"]):
            return format_score
        if not _CLASSIC_WHITELIST.match(equation):
            return format_score
        # Unsafe by design: `95**36**32**91` passes the whitelist and never returns. The benchmark
        # only ever feeds this function the realistic corpus below.
        result = eval(equation, {"__builtins__": None}, {})
        return score if abs(result - ground_truth["target"]) < 1e-5 else format_score
    except Exception:
        return format_score


# --- a realistic corpus ---
_REASONING_STEPS = [
    "Let me try {a} {op} {b} = {c}.",
    "That gives {c}, which is not the target yet.",
    "Maybe I should start from the largest number, {a}.",
    "Wait, {a} {op} {b} is {c}; combining it with the rest might work.",
    "Hmm, that overshoots. Let me go back and try another order.",
    "If I subtract, {a} - {b} = {d}. Then I still need to use the other numbers.",
    "Let me verify: {a} {op} {b} = {c}. Yes, that is right.",
]


def _random_expression(rng: random.Random, numbers: list[int]) -> str:
    """A random fully bracketed expression using every number once."""
    parts = [str(n) for n in numbers]
    rng.shuffle(parts)
    while len(parts) > 1:
        i = rng.randrange(len(parts) - 1)
        op = rng.choice("+-*/")
        parts[i : i + 2] = [f"({parts[i]} {op} {parts[i + 1]})"]
    expression = parts[0]
    return expression[1:-1] if expression.startswith("(") else expression


def _reasoning(rng: random.Random, numbers: list[int], chars: int = 800) -> str:
    text = "<think>"
    while len(text) < chars:
        a, b = rng.sample(numbers, 2)
        op = rng.choice("+*")
        text += " " + rng.choice(_REASONING_STEPS).format(a=a, b=b, op=op, c=a + b if op == "+" else a * b, d=a - b)
    return text + " </think>\n"


KINDS = ("correct", "wrong", "malformed", "missing")


def make_corpus(size: int, seed: int = 0) -> list[tuple[str, dict]]:
    """(response, ground_truth) pairs, a quarter each: correct, wrong, malformed, missing answer.

    A "wrong" answer from another expression tree can still hit the target by chance; it then
    counts as correct for both scorers.
    """
    rng = random.Random(seed)
    corpus = []
    while len(corpus) < size:
        numbers = [rng.randint(1, 99) for _ in range(rng.choice((3, 4)))]
        expression = _random_expression(rng, numbers)
        evaluated = evaluate_expression(expression)
        if evaluated is None or evaluated[0].denominator != 1 or evaluated[0] <= 0:
            continue  # division by zero, or not a positive integer target
        target = int(evaluated[0])
        truth = {"target": target, "numbers": numbers}
        kind = len(corpus) % 4
        if kind == 0:  # correct, a quarter of them closing with "= target"
            answer = f"<answer> {expression}{f' = {target}' if rng.random() < 0.25 else ''} </answer>"
        elif kind == 1:  # wrong: half another expression over the numbers, half a number reused or dropped
            if rng.random() < 0.5:
                answer = f"<answer> {_random_expression(rng, numbers)} </answer>"
            else:
                numbers_used = numbers[:-1] + [numbers[0]] if rng.random() < 0.5 else numbers[:-1]
                answer = f"<answer> {_random_expression(rng, numbers_used)} </answer>"
        elif kind == 2:  # malformed: prose, a bare number, an equation chain, a decimal
            answer = rng.choice(
                [f"<answer> {target} </answer>", "<answer> I could not find it </answer>",
                 f"<answer> {numbers[0]} + {numbers[1]} = {numbers[0] + numbers[1]} </answer>",
                 f"<answer> {numbers[0]} / 2.5 </answer>"]
            )
        else:  # missing: the model never closed its answer
            answer = f"<answer> {expression}"
        corpus.append((_reasoning(rng, numbers) + answer, truth))
    return corpus


def throughputs(scorers, corpus, repeats: int, chunk: int = 500) -> list[float]:
    """Responses/s of each `score_one(response, truth)` over the corpus.

    The machine is shared, so the corpus is timed in short chunks, the scorers taking turns on
    each chunk, and each chunk counts its fastest of `repeats` passes: a burst of load elsewhere
    then spoils one sample, not the figure.
    """
    chunks = [corpus[i : i + chunk] for i in range(0, len(corpus), chunk)]
    totals = [0.0] * len(scorers)
    for part in chunks:
        best = [float("inf")] * len(scorers)
        for _ in range(repeats):
            for i, score_one in enumerate(scorers):
                start = time.perf_counter()
                for response, truth in part:
                    score_one(response, truth)
                best[i] = min(best[i], time.perf_counter() - start)
        totals = [total + seconds for total, seconds in zip(totals, best)]
    return [len(corpus) / total for total in totals]


def ours(response: str, truth: dict) -> float:
    return compute_score("countdown", response, truth)["score"]


# --- adversarial inputs, each under 100,000 characters ---
def adversarial_inputs() -> dict[str, tuple[str, dict]]:
    truth = {"target": 24, "numbers": [95, 36, 32, 91]}
    filler = "x" * 90_000
    deep = "(" * 10_000 + "95" + ")" * 10_000
    deep_short = "(" * 480 + "95+36+32+91" + ")" * 480
    return {
        "exponent tower": ("<answer>95**36**32**91</answer>", truth),
        "exponent tower, unicode times": ("<answer>95××36××32</answer>", truth),
        "10,000-deep parentheses": (f"<answer>{deep}</answer>", truth),
        "480-deep parentheses (under the length cap)": (f"<answer>{deep_short}</answer>", truth),
        "90k filler then an answer": (filler + "<answer>95 + 36 - 32 - 91</answer>", truth),
        "90k of '<answer>'": ("<answer>" * 11_000 + "1</answer>", truth),
        "90k of '</answer>'": ("</answer>" * 10_000, truth),
        "90k of '<answer>' unclosed": ("<answer>" * 11_000, truth),
        "999-char answer of +1s": ("<answer>" + "+".join(["1"] * 499) + "</answer>", truth),
        "999-char answer of 9-digit products": ("<answer>" + "*".join(["999999999"] * 99) + "</answer>", truth),
        "1001-char answer": ("<answer>" + "1" * 1001 + "</answer>", truth),
        "python code": ("<answer>__import__('os').system('true')</answer>", truth),
        "lambda recursion": ("<answer>(lambda f: f(f))(lambda f: f(f))</answer>", truth),
        "unicode digits": ("<answer>٩٥ + ３６ - 32 - 91</answer>", truth),
        "99k of digits in answer": ("<answer>" + "9" * 99_000 + "</answer>", truth),
        "fraction chain": ("<answer>" + "/".join(["95", "36", "32", "91"]) + "</answer>", truth),
        "multiply, 99k commas": ("<answer>" + "1," * 49_000 + "000</answer>", 56088),
        "multiply, 99k spaces": ("<answer>" + " " * 99_000 + "56088</answer>", 56088),
    }


def slowest(cases: dict[str, tuple[str, object]], calls: int = 11) -> list[tuple[float, str, int]]:
    """(median seconds of one call, name, characters) per case, slowest first."""
    timings = []
    for name, (response, truth) in cases.items():
        assert len(response) < 100_000, name
        source = "multiply" if name.startswith("multiply") else "countdown"
        samples = []
        for _ in range(calls):
            start = time.perf_counter()
            compute_score(source, response, truth)
            samples.append(time.perf_counter() - start)
        timings.append((statistics.median(samples), name, len(response)))
    return sorted(timings, reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20_000, help="responses in the corpus")
    parser.add_argument("--repeats", type=int, default=5, help="timed passes per chunk; the fastest counts")
    args = parser.parse_args()

    corpus = make_corpus(args.size)
    # The guard the classic scorer lacks: an exponent tower would hang it (and this benchmark).
    assert not any("**" in response for response, _ in corpus)
    our_scores = [ours(r, t) for r, t in corpus]
    classic_scores = [classic_score(r, t) for r, t in corpus]
    agree = sum(a == b for a, b in zip(our_scores, classic_scores)) / len(corpus)
    mean_chars = sum(len(r) for r, _ in corpus) / len(corpus)
    print(f"corpus: {len(corpus)} responses, {mean_chars:.0f} characters on average, "
          f"mean reward ours {sum(our_scores) / len(corpus):.3f} / classic {sum(classic_scores) / len(corpus):.3f}, "
          f"agreement {agree:.1%}")

    ours_rate, classic_rate = throughputs([ours, classic_score], corpus, args.repeats)
    print(f"tinyzero.rewards.compute_score: {ours_rate:>10,.0f} responses/s")
    print(f"classic eval-based scorer:      {classic_rate:>10,.0f} responses/s")
    print(f"ratio: {ours_rate / classic_rate:.2f}x (target >= 1.5x)")
    for kind, name in enumerate(KINDS):  # the corpus cycles through the kinds
        ours_part, classic_part = throughputs([ours, classic_score], corpus[kind :: len(KINDS)], args.repeats)
        print(f"  {name:>9} answers: ours {ours_part:>10,.0f}/s, classic {classic_part:>10,.0f}/s")

    timings = slowest(adversarial_inputs())
    print("adversarial inputs, median of 11 calls, slowest first:")
    for seconds, name, chars in timings:
        print(f"  {seconds * 1e6:8.1f} us  {chars:>6} chars  {name}")
    print(f"slowest single response under 100,000 characters: {timings[0][0] * 1e3:.3f} ms (target <= 1 ms)")

    # Linear time: ten times the characters, about ten times the time (fastest of 5 calls).
    # Worst cases for the search from the end: the answer at the very start, a closing-tag flood.
    truth = {"target": 24, "numbers": [95, 36, 32, 91]}
    for name, head, unit in (
        ("answer first", "<answer>95 + 36 - 32 - 91</answer>", "Let me check it again. "),
        ("'</answer>' flood", "", "</answer>"),
    ):
        cells = []
        for chars in (100_000, 1_000_000, 10_000_000):
            response = head + unit * (chars // len(unit))
            samples = []
            for _ in range(5):
                start = time.perf_counter()
                compute_score("countdown", response, truth)
                samples.append(time.perf_counter() - start)
            cells.append(f"{len(response):>10,} chars {min(samples) * 1e3:7.3f} ms")
        print(f"scaling, {name:>17}: " + " | ".join(cells))

    # evaluate_expression has no numbers to bound it, only its 1,000-character cap.
    # Harmonic sums grow the denominators fastest: 1/2 + 1/3 + ... up to 1,000 characters.
    terms = [f"1/{k}" for k in range(2, 1000)]
    worst = "+".join(terms[: max(n for n in range(len(terms)) if len("+".join(terms[:n])) <= 1000)])
    start = time.perf_counter()
    value, _ = evaluate_expression(worst)
    print(f"evaluate_expression on a {len(worst)}-character sum of unit fractions: "
          f"{(time.perf_counter() - start) * 1e3:.3f} ms (a fraction over {len(str(value.denominator))} digits)")


if __name__ == "__main__":
    main()
