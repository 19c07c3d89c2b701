"""A synthetic rollout dump in verl's format, in which reflection starts at a known step.

For tests, demos and the README's example report: it is made up, not a training run. Before
`aha_step` the "model" answers in one pass (rarely reflecting, mostly wrong); from `aha_step` on
a growing share of responses check their work, abandon failed attempts and correct themselves,
and those reach the right answer far more often. Wordings vary so that the detectors are not
fed one template.

    python -m tinyzero.aha.synthetic DIR --steps 40 --aha-step 15
    python -m tinyzero.aha.synthetic DIR --steps 40 --aha-step 10 --ramp 15   # a gradual rise
"""

from __future__ import annotations

import argparse
import json
import random
from fractions import Fraction
from pathlib import Path

from tinyzero.aha.arithmetic import apply_operator
from tinyzero.files import write_text
from tinyzero.rewards import CORRECT_SCORE, FORMAT_SCORE, NO_ANSWER_SCORE
from tinyzero.rewards.answer import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE
from tinyzero.rewards.score import GROUND_TRUTH_FIELDS



def training_prompt(numbers: list[int], target: int) -> str:
    """The text training shows a base model for this problem (data_gen's prompt, base style: the
    chat template passes it through unchanged), as verl's dump records it in `input`."""
    from data_gen.tasks import TASK_SPECS

    return "".join(message["content"] for message in TASK_SPECS["countdown"].prompt("base", numbers, target))


_OPS = "+-*"
_REJECT = [
    "That gives {value}, not {target}.",
    "Hmm, {value} is not {target}, so this doesn't work.",
    "{value} misses the target of {target}.",
    "That's {value}, which is too far from {target}.",
]
_RETRY = [
    "Let me try a different order.",
    "Let's try another combination.",
    "Scrap that and start over.",
    "I'll try something else.",
]
_CHECK = [
    "Let me verify: {chain}. Correct.",
    "Double-checking: {chain}. Yes.",
    "To be sure, I recompute: {chain}.",
    "Let me check that again: {chain}. It works.",
]
_OPENERS = ["", "Let me think. ", "Okay. ", "We need {target}. "]


def _left_to_right(numbers: list[int], ops: list[str]) -> tuple[str, str, Fraction]:
    """((a op b) op c) op d as an answer expression, its worked chain, and its value."""
    value, expression, chain = Fraction(numbers[0]), str(numbers[0]), []
    for op, n in zip(ops, numbers[1:]):
        new = apply_operator(value, op, Fraction(n))
        chain.append(f"{value} {op} {n} = {new}")
        if op == "*" and ("+" in expression or "-" in expression):
            expression = f"({expression})"
        expression = f"{expression} {op} {n}"
        value = new
    return expression, ", ".join(chain), value


def _problem(rng: random.Random) -> tuple[list[int], list[str], int]:
    while True:
        numbers = [rng.randint(1, 60) for _ in range(4)]
        ops = [rng.choice(_OPS) for _ in range(3)]
        _, _, value = _left_to_right(numbers, ops)
        if 1 <= value <= 500:
            return numbers, ops, int(value)


def _wrong_attempt(rng: random.Random, numbers: list[int], target: int) -> tuple[str, str, Fraction]:
    for _ in range(100):
        shuffled = rng.sample(numbers, len(numbers))
        attempt = _left_to_right(shuffled, [rng.choice(_OPS) for _ in range(3)])
        if attempt[2] != target:
            return attempt
    return _left_to_right(numbers, ["+", "+", "+"]) if sum(numbers) != target else _left_to_right(numbers, ["*"] * 3)


def _final(answer: str) -> str:
    """The end of a response: thinking closed, then the answer in the tags the reward reads."""
    return f" {THINK_CLOSE} {ANSWER_OPEN} {answer} {ANSWER_CLOSE}"


def _response(rng: random.Random, reflective: bool, numbers: list[int], ops: list[str], target: int):
    """(response text, correct, has_answer)."""
    expression, chain, _ = _left_to_right(numbers, ops)
    opener = rng.choice(_OPENERS).format(target=target)
    if not reflective:
        if rng.random() < 0.2:  # correct in one pass
            return f"{opener}{chain}.{_final(expression)}", True, True
        wrong, wrong_chain, _ = _wrong_attempt(rng, numbers, target)
        if rng.random() < 0.15:  # no answer tags at all
            return f"{opener}{wrong_chain}. I am not sure.", False, False
        return f"{opener}{wrong_chain}.{_final(wrong)}", False, True
    wrong, wrong_chain, wrong_value = _wrong_attempt(rng, numbers, target)
    reject = rng.choice(_REJECT).format(value=wrong_value, target=target)
    retry = rng.choice(_RETRY)
    if rng.random() < 0.15:  # reflects but still fails
        other, other_chain, _ = _wrong_attempt(rng, numbers, target)
        return f"{opener}{wrong_chain}. {reject} {retry} {other_chain}.{_final(other)}", False, True
    kind = rng.random()
    if kind < 0.4:  # check only
        text = f"{opener}{chain}. {rng.choice(_CHECK).format(chain=chain)}"
    elif kind < 0.8:  # wrong attempt, abandoned, then the right one and a check
        text = f"{opener}{wrong_chain}. {reject} {retry} {chain}. {rng.choice(_CHECK).format(chain=chain)}"
    else:  # wrong attempt, abandoned, then the right one
        text = f"{opener}{wrong_chain}. {reject} {retry} {chain}."
    return f"{text}{_final(expression)}", True, True


RARE, FULL = 0.03, 0.8  # the reflection probability before the aha step, and at its height


def reflection_probability(step: int, steps: int, aha_step: int, ramp: int = 0) -> float:
    """Rare before aha_step. ramp=0: jumps to 0.4 there and climbs to 0.8 by the last step.
    ramp=R: climbs in a straight line from aha_step on, reaching 0.8 at step aha_step + R - 1 (the
    ramp's end) and staying there."""
    if step < aha_step:
        return RARE
    if ramp:
        return RARE + (FULL - RARE) * min(1.0, (step - aha_step + 1) / ramp)
    return 0.4 + 0.4 * (step - aha_step) / max(1, steps - aha_step)


def write_synthetic_dump(
    out_dir: str | Path,
    steps: int = 40,
    aha_step: int = 15,
    samples_per_step: int = 32,
    seed: int = 0,
    reward_extras: bool = True,
    ramp: int = 0,
) -> Path:
    """Write out_dir/1.jsonl .. out_dir/STEPS.jsonl as verl does (steps count from 1).

    reward_extras=False leaves out `acc` and `has_answer`, as verl's default v1 trainer does.
    ramp=R makes reflection rise gradually over R steps from aha_step (reflection_probability)."""
    if not 1 <= aha_step <= steps:
        raise ValueError(f"aha_step={aha_step} must be within 1..steps={steps}")
    if ramp < 0:
        raise ValueError(f"ramp={ramp} must be 0 (a jump) or a number of steps")
    if samples_per_step < 1:
        raise ValueError(f"samples_per_step={samples_per_step} must be at least 1")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    for step in range(1, steps + 1):
        lines = []
        for i in range(samples_per_step):
            numbers, ops, target = _problem(rng)
            reflective = rng.random() < reflection_probability(step, steps, aha_step, ramp)
            text, correct, has_answer = _response(rng, reflective, numbers, ops, target)
            record = {
                "input": training_prompt(numbers, target),
                "output": text,
                "gts": dict(zip(GROUND_TRUTH_FIELDS["countdown"], (target, numbers))),
                "score": CORRECT_SCORE if correct else FORMAT_SCORE if has_answer else NO_ANSWER_SCORE,
                "step": step,
                "uid": f"{step}_{i}",
            }
            if reward_extras:
                record.update(acc=float(correct), has_answer=float(has_answer))
            lines.append(json.dumps(record))
        write_text(out / f"{step}.jsonl", "\n".join(lines) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinyzero.aha.synthetic", description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", help="folder to write STEP.jsonl files into")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--aha-step", type=int, default=15, help="step at which reflection starts")
    parser.add_argument("--samples-per-step", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ramp", type=int, default=0, metavar="STEPS",
                        help="reflection climbs gradually over STEPS steps from the aha step (default 0: a jump)")
    args = parser.parse_args(argv)
    try:
        out = write_synthetic_dump(args.out_dir, args.steps, args.aha_step, args.samples_per_step, args.seed,
                                   ramp=args.ramp)
    except ValueError as error:
        parser.error(str(error))
    shape = f"rising from step {args.aha_step} to {args.aha_step + args.ramp - 1}" if args.ramp else f"from step {args.aha_step}"
    print(f"wrote a synthetic dump of {args.steps} steps (reflection {shape}) to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
