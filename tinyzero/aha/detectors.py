"""Which reasoning behaviours a response shows, and where.

The behaviours follow "Cognitive Behaviors that Enable Self-Improving Reasoners" (Gandhi et al.,
2025): verification, backtracking, subgoal setting, backward chaining; plus self-correction that
pays off (the text takes back a wrong attempt, then the final answer is correct).

A detector is anything with a `behaviour` name and a `find(rollout) -> list[Span]` method; a
response shows the behaviour when the list is non-empty, and the spans are what the HTML report
highlights. The built-in detectors are offline and deterministic: phrase patterns over the
reasoning text, plus the arithmetic the text states (see `arithmetic.py`), checked against the
task's target. To use an LLM judge instead, write a class with the same two members (a judge may
return one span covering the whole response) and pass it to `analyse(..., detectors=[...])` or
name a factory with `python -m tinyzero.aha --detectors my_module:make_detectors`. A judge that
looks at whether the answer is right must say so (`reads_correctness`, see `Detector`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import Protocol, runtime_checkable

from tinyzero.aha.arithmetic import Equation, stated_equations
from tinyzero.aha.reader import Rollout, Task
from tinyzero.rewards.answer import ANSWER_OPEN

BEHAVIOURS = ("verification", "backtracking", "subgoal", "backward_chaining", "self_correction")
# Behaviours in which the model looks back at its own work: the "reflection" the aha step tracks
# (measured without reference to correctness: see detect_with_reflection).
REFLECTIVE = ("verification", "backtracking", "self_correction")


@dataclass(frozen=True)
class Span:
    """Characters [start, end) of the response that show `behaviour`."""

    start: int
    end: int
    behaviour: str


@runtime_checkable
class Detector(Protocol):
    """`find` spans of `behaviour`. A detector whose find() looks at whether the answer is right sets
    `reads_correctness = True`: its spans then never count in the reflection rate (the aha fit's
    series), since a rate that can only rise with accuracy cannot confirm that accuracy follows; it
    may offer `markers(rollout)`, the same evidence found over all responses, which then counts."""

    behaviour: str

    def find(self, rollout: Rollout) -> list[Span]: ...


class Reasoning:
    """What the detectors look at: the response up to its final <answer>, and its arithmetic."""

    _last: tuple[Rollout, Reasoning] | None = None

    @classmethod
    def of(cls, rollout: Rollout) -> Reasoning:
        """The detectors run one after another on the same rollout: parse its arithmetic once."""
        if cls._last is None or cls._last[0] is not rollout:
            cls._last = (rollout, cls(rollout))
        return cls._last[1]

    def __init__(self, rollout: Rollout):
        self.rollout = rollout
        answer_at = rollout.response.rfind(ANSWER_OPEN)
        self.text = rollout.response if answer_at < 0 else rollout.response[:answer_at]
        self.task: Task | None = rollout.task
        self._matches: dict[re.Pattern, list[re.Match]] = {}

    @cached_property
    def equations(self) -> list[Equation]:
        return stated_equations(self.text)

    def spans(self, behaviour: str, patterns: Iterable[re.Pattern]) -> list[Span]:
        return [Span(m.start(), m.end(), behaviour) for p in patterns for m in self.matches(p)]

    def matches(self, pattern: re.Pattern) -> list[re.Match]:
        """Matches of a pattern in the text; several detectors share some patterns: scan once."""
        if pattern not in self._matches:
            self._matches[pattern] = list(pattern.finditer(self.text))
        return self._matches[pattern]


def _patterns(*regexes: str) -> tuple[re.Pattern, ...]:
    """One case-insensitive alternation of the regexes: the text is scanned once, not once each."""
    return (re.compile("|".join(f"(?:{r})" for r in regexes), re.IGNORECASE),)


# ---------------------------------------------------------------------------------------------
# verification: going back over a result already produced (recompute, check, confirm)
_VERIFY = _patterns(
    r"\b(?:double|cross|sanity)[- ]?check\w*",
    r"\bverif(?:y|ying|ies|ied|ication)\b",
    r"\bre-?(?:check|comput|calculat|evaluat|add|do\b|count|verif|examin)\w*",
    # "let me check that", "to confirm", but not exploring: "check which/whether/how ..."
    r"\b(?:let me|let's|let us|i'll|i will|i should|i can|to|now|quick(?:ly)?|and)\s+(?:just\s+)?"
    r"(?:check|confirm|make sure|go (?:over|through))\b(?!\s+(?:which|whether|what|how|for)\b)",
    r"\bcheck(?:ing|ed)?\s*[:,]",
    r"\bcheck(?:ing)? (?:it|that|this|again|the (?:answer|result|sum|product|arithmetic|math|last))\b",
    r"\bchecks? (?:out|passes)\b",
    r"\bconfirm(?:ed|s|ing)?\b",
    r"\bto be (?:sure|safe|certain)\b",
    r"\bmake sure\b",
    r"\b(?:plug\w*|substitut\w*|divid\w*) (?:it |this |that )?back\b",
    r"\b(?:going|go) (?:over|through) it again\b",
    r"\b(?:add|comput|calculat|work|do|check|count|sum|multiply)\w*(?: it| that| this| them)?(?: up| out)? again\b",
    # a question the model puts to its own result: "Is that 47?", "Does that really give 65?"
    r"\b(?:is|does|did) (?:it|that|this)(?: really| actually)? (?:equal|give|make|come to|work|\d+)",
)


def _recomputations(reasoning: Reasoning) -> list[Span]:
    """A computation done again: the same expression evaluated twice, or a slip (a false chain)
    followed by a chain that reaches the slipped computation's true value."""
    spans = []
    earlier_by_value: dict = {}  # value -> the equations before that computed it
    for later in reasoning.equations:
        if not any(later.has_operator(i) for i in range(len(later.sides))):
            continue
        sides = set(later.sides) - {str(later.value)}
        for earlier in earlier_by_value.get(later.value, ()):
            if not earlier.holds or set(earlier.sides) & sides:
                spans.append(Span(later.start, later.end, "verification"))
                break
        earlier_by_value.setdefault(later.value, []).append(later)
    return spans


class VerificationDetector:
    behaviour = "verification"

    def find(self, rollout: Rollout) -> list[Span]:
        reasoning = Reasoning.of(rollout)
        return reasoning.spans(self.behaviour, _VERIFY) + _recomputations(reasoning)


# ---------------------------------------------------------------------------------------------
# backtracking: abandoning an approach and trying another
_BACKTRACK = _patterns(
    r"\b(?:try|trying|tried|use|using|attempt|look for|go with|consider)\s+(?:a\s+|an\s+|some\s+)?"
    r"(?:different|another|other|new|something else|anything else)\b",
    r"\b(?:different|another|new|other|alternative)\s+(?:approach|idea|way|route|strategy|path|"
    r"method|order|combination|plan|tack|option|grouping)\b",
    r"\btry\w*\s+(?:a\s+|an\s+)?(?:smaller|bigger|larger|different)\b",
    r"\b(?:scrap|abandon|discard|ditch|give up on)\w*\b",
    r"\b(?:drop|forget)\w*\s+(?:that|this|it|about|the idea|division|multiplication|addition|subtraction)\b",
    r"\bswap\w*\b",
    r"\bscrapping it\b|\bscratch that\b",
    r"\b(?:move on|start (?:over|again)|from scratch|back up|backtrack\w*|go(?:ing)? back|"
    r"step back|rethink|reconsider|switch\w*|instead|rather than|dead end|no good|stuck|what else)\b",
    r"\b(?:won't|will not|doesn't|does not|didn't|did not)\s+(?:work|help|do it|get there|land)\b",
    r"\b(?:isn't|is not|not)\s+(?:working|helping|going anywhere)\b",
    r"\b(?:that|this) (?:idea|approach|path|line|route|way) (?:fails|failed|won't|doesn't|isn't)\b",
    r"\bneither (?:works|is)\b|\bnot (?:that|it|this) either\b|\bnot this one\b|\bnope\b",
)


class BacktrackingDetector:
    behaviour = "backtracking"

    def find(self, rollout: Rollout) -> list[Span]:
        reasoning = Reasoning.of(rollout)
        return reasoning.spans(self.behaviour, _BACKTRACK) + _missed_then_retried(reasoning)


# ---------------------------------------------------------------------------------------------
# subgoal: setting an intermediate target on the way to the final one
_SUBGOAL = _patterns(
    r"\b(?:sub-?goal|intermediate (?:goal|target|step|result)|goal for now|partial products?)\b",
    r"\b(?:first|my|next)\s+(?:first\s+)?(?:job|aim|goal|target|task)\b",
    r"\bplan\s*:|\bstep (?:1|one)\b",
    r"\b(?:first|to start),?\s+(?:i'll|i will|let me|let's|we|i)\s+(?:try to\s+)?"
    r"(?:get|make|reach|build|combine|turn|aim|find|work out|create|compute)\b",
    r"\b(?:get|make|reach)\b[^.\n]{0,25}?\b(?:close to|near|in the \d+s)\b",
    r"\b(?:turn|combine|make)\b[^.\n]{0,40}?\binto (?:a |an )?(?:single |\d+|one\b|something)",
    r"\b(?:break|split|decompose|rewrite|write)\s+(?:\d+|it|this|that|the \w+)?\s*(?:into|as|up)\b",
    r"\bsplit\b|\buse \d+ = ",
)
# "I need 13", "want 32 from", "build 21 from": the number is the subgoal unless it is the target.
_NEEDED_NUMBER = re.compile(
    r"\b(?:need(?:ed)?(?: is)?|want|(?:goal|target|aim) is|reach|task is|hinges on getting|aim(?:ing)? for|"
    r"(?:must|have to) (?:make|get|produce|build)|try to (?:make|get|reach)|"
    r"(?:get|make|build|produce|form|find)(?= (?:an? )?\d+ (?:from|out of|with|using)))"
    r"\s+(?:to (?:make|get|produce|build|reach|find)\s+)?(?:an?\s+)?(\d+)\b",
    re.IGNORECASE,
)


def _needed_numbers(reasoning: Reasoning) -> list[tuple[re.Match, int]]:
    target = reasoning.task.target if reasoning.task else None
    return [(m, int(m.group(1))) for m in _NEEDED_NUMBER.finditer(reasoning.text) if int(m.group(1)) != target]


def _partial_products(reasoning: Reasoning) -> list[Span]:
    """Multiplication split into parts: "347 * 20 = 6940" or "98 is 100 - 2" for 347 * 29."""
    task = reasoning.task
    if task is None or task.kind != "multiply" or len(task.numbers) != 2:
        return []
    a, b = task.numbers
    spans = []
    for eq in reasoning.equations:
        if eq.is_equation and eq.sides[0] in (str(a), str(b)) and eq.has_operator(1):
            spans.append(Span(eq.start, eq.end, "subgoal"))
            continue
        for side, numbers in zip(eq.sides, eq.numbers):
            partial = "*" in side and len(numbers) >= 2 and set(numbers) & {a, b} and set(numbers) != {a, b}
            if partial:
                spans.append(Span(eq.start, eq.end, "subgoal"))
                break
    return spans


def _target_splits(reasoning: Reasoning) -> list[Equation]:
    """Countdown equations that start from the target: "65 = 72 - 7" or "65 - 55 = 10"."""
    task = reasoning.task
    if task is None or task.kind != "countdown":
        return []
    target, found, reached = str(task.target), [], False
    for eq in reasoning.equations:
        split_target = eq.is_equation and eq.sides[0] == target and eq.has_operator(1)
        # the target as the first operand, unless a forward computation already reached it
        target_operand = not reached and eq.has_operator(0) and eq.numbers[0][:1] == (task.target,)
        if split_target or target_operand:
            found.append(eq)
        reached = reached or (eq.has_operator(0) and eq.result == task.target)
    return found


class SubgoalDetector:
    behaviour = "subgoal"

    def find(self, rollout: Rollout) -> list[Span]:
        reasoning = Reasoning.of(rollout)
        needed = [Span(m.start(), m.end(), self.behaviour) for m, _ in _needed_numbers(reasoning)]
        # "65 = 72 - 7": splitting the target names the numbers still to be made
        split = [Span(eq.start, eq.end, self.behaviour) for eq in _target_splits(reasoning)]
        return reasoning.spans(self.behaviour, _SUBGOAL) + needed + split + _partial_products(reasoning)


# ---------------------------------------------------------------------------------------------
# backward chaining: reasoning from the target back to what is needed
_BACKWARD = _patterns(
    r"\bwork(?:ing|ed)? back(?:wards?)?\b",
    r"\bbackwards? from\b",
    r"\bfrom the (?:target|goal|end)\b",
)


# "Start from 70", "From 47, take away 38", "31 is one more than 30", checked against the target.
# (Patterns with a number group, compared after matching: one compiled pattern for every target.)
_FROM_NUMBER = _patterns(
    r"(?<!far )(?<!away )\b(?:start(?:ing)? )?from (\d+)\b(?!\s*[-+*/])",
    r"\b(\d+) is (?:one|two|three|\d+) (?:more|less) than\b",
)


def _one_step_from(target: int, needed: int, numbers: Sequence[int]) -> bool:
    """needed = target op n for one of the given numbers: a subgoal derived from the target."""
    for n in numbers:
        if needed in (target + n, target - n, n - target, target * n) or (n and target == needed * n):
            return True
    return False


class BackwardChainingDetector:
    behaviour = "backward_chaining"

    def find(self, rollout: Rollout) -> list[Span]:
        reasoning = Reasoning.of(rollout)
        spans = reasoning.spans(self.behaviour, _BACKWARD)
        task = reasoning.task
        if task is None or task.kind != "countdown":
            return spans
        target = task.target
        spans += [
            Span(m.start(), m.end(), self.behaviour)
            for p in _FROM_NUMBER
            for m in p.finditer(reasoning.text)
            if int(m.group(1) or m.group(2)) == target
        ]
        spans += [Span(eq.start, eq.end, self.behaviour) for eq in _target_splits(reasoning)]
        spans += [
            Span(m.start(), m.end(), self.behaviour)
            for m, needed in _needed_numbers(reasoning)
            if _one_step_from(target, needed, task.numbers)
        ]
        return spans


# ---------------------------------------------------------------------------------------------
# What the text says about an attempt that failed: it missed the target, or it had a slip.
_MISSED = _patterns(
    r"\b(?:too|way too|much too|far too)\s+(?:big|small|high|low|large|much|little)\b",
    r"\b(?:overshoot\w*|undershoot\w*|off by|short by|too many|one over|falls? short|far from|"
    r"nowhere near|not close|misses|missed|fails?)\b",
    r"\b(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten) (?:short|over|off|too many)\b",
    r"\b(?:way|well|far|too far)\s+(?:over|under|above|below|off|short)\b",
    r"\bnot (?:valid|allowed)\b",
    r"\b(?:unused|left over|haven't used|not used)\b|\bare (?:still )?left\b|\bleaves? \d+ unused\b",
    r"\b(?:won't|doesn't|does not|didn't|did not)\s+(?:work|give|reach|equal)\b",
)
_SLIP = _patterns(
    r"\b(?:wrong|mistake|slip(?:ped)?|oops|miscalculat\w*|incorrect|mis-?\w+ed)\b",
    r"\bcan't be right\b|\bthat's not right\b|\bnot (?:correct|right)\b",
    r"\bshould have\b",
    r"\bno(?:pe)?\s*[,.!]",
)


def _missed_then_retried(reasoning: Reasoning) -> list[Span]:
    """The text says an attempt missed ("too small", "off by one") and then computes anew.
    An admitted slip before the new computation ("I slipped", "wrong part") means the same attempt
    is being repaired, which is self-correction, not a change of approach."""
    slips = [span.start for span in reasoning.spans("", _SLIP)]
    found = []
    for span in reasoning.spans("backtracking", _MISSED):
        retry = next((eq.start for eq in reasoning.equations if eq.start > span.end), None)
        if retry is not None and not any(span.end <= slip < retry for slip in slips):
            found.append(span)
    return found


# self-correction: the text itself says a result or attempt was wrong, and the final answer is right.
# A false equation alone is not one: a small model's garble ("1 * 11 = 1. That reaches .") states
# wrong arithmetic without correcting anything.
_NOT_NUMBER = re.compile(
    r"\b(?:not|isn't|is not|instead of|rather than)\s+(?:quite\s+|exactly\s+|yet\s+)?(?:the target\s+)?(\d+)\b", re.I
)


def _retracted_numbers(reasoning: Reasoning) -> list[Span]:
    """"67, not 65" (the target), "70 + 27 = 97, not 105" (105 stated earlier as a result): the
    text says a number is not what it should be or what it claimed."""
    target = reasoning.task.target if reasoning.task else None
    spans = []
    for m in _NOT_NUMBER.finditer(reasoning.text):
        number = int(m.group(1))
        stated_before = any(number in side for eq in reasoning.equations if eq.end <= m.start() for side in eq.numbers[1:])
        if number == target or stated_before:
            spans.append(Span(m.start(), m.end(), "self_correction"))
    return spans


def _expression(side: str) -> str:
    """A side as a key: "10410 - (347)" (a continued chain) and "10410 - 347" are one expression."""
    return re.sub(r"\((\d+)\)", r"\1", side)


def _restated_results(reasoning: Reasoning) -> list[Span]:
    """The same expression stated again with a different result: "75 + 41 = 106 ... 75 + 41 is 116"."""
    first_result: dict[str, object] = {}
    spans = []
    for eq in reasoning.equations:
        if not (eq.is_equation and eq.has_operator(0)):
            continue
        key = _expression(eq.sides[0])
        if key in first_result and first_result[key] != eq.result:
            spans.append(Span(eq.start, eq.end, "self_correction"))
        first_result.setdefault(key, eq.result)
    return spans


def _slips_redone(reasoning: Reasoning) -> list[Span]:
    """A false equation, then the text goes back over it ("let me redo the subtraction", "add that
    again") and a computation reaches the slip's true value: "= 3911. Let me redo ... 3901"."""
    rechecks = [span.start for span in reasoning.spans("", _VERIFY)]
    spans = []
    for slip in (eq for eq in reasoning.equations if not eq.holds):
        for redo in reasoning.equations:
            if redo.start > slip.end and redo.result == slip.value and any(slip.end <= at < redo.start for at in rechecks):
                spans.append(Span(redo.start, redo.end, "self_correction"))
                break
    return spans


def correction_markers(rollout: Rollout) -> list[Span]:
    """Where the text corrects itself, whatever the final answer: a retraction ("that's wrong",
    "too small", "one short"), "not N" for the target or for a result it stated, the same
    expression recomputed with a different result, or a slip gone back over and redone."""
    reasoning = Reasoning.of(rollout)
    return (
        _retracted_numbers(reasoning)
        + _restated_results(reasoning)
        + _slips_redone(reasoning)
        + reasoning.spans("self_correction", _MISSED + _SLIP)
    )


class SelfCorrectionDetector:
    """Self-correction that pays off: correction markers in a response whose final answer is right.
    It reads correctness, so the reflection rate counts its `markers` (over all responses) instead."""

    behaviour = "self_correction"
    reads_correctness = True

    def find(self, rollout: Rollout) -> list[Span]:
        if not rollout.correct:
            return []  # only corrections that pay off count
        return correction_markers(rollout)

    def markers(self, rollout: Rollout) -> list[Span]:
        return correction_markers(rollout)


def default_detectors() -> list[Detector]:
    return [
        VerificationDetector(),
        BacktrackingDetector(),
        SubgoalDetector(),
        BackwardChainingDetector(),
        SelfCorrectionDetector(),
    ]


def load_detectors(spec: str) -> list[Detector]:
    """`module:factory` -> factory() -> detectors, e.g. an LLM judge the user wrote."""
    import importlib

    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"--detectors {spec!r}: expected MODULE:FACTORY, e.g. my_judges:make_detectors")
    try:
        factory: Callable[[], Iterable[Detector]] = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"--detectors {spec!r}: {error}") from None
    detectors = list(factory())
    for detector in detectors:
        if not isinstance(detector, Detector):
            raise ValueError(f"--detectors {spec!r}: {detector!r} has no `behaviour` and `find(rollout)`")
    return detectors


def detect(rollout: Rollout, detectors: Sequence[Detector]) -> dict[str, list[Span]]:
    """Spans per behaviour, for every detector (several detectors may share a behaviour)."""
    return detect_with_reflection(rollout, detectors)[0]


def detect_with_reflection(rollout: Rollout, detectors: Sequence[Detector]) -> tuple[dict[str, list[Span]], bool]:
    """detect(), and whether the response reflects as the reflection rate counts it: spans of a
    REFLECTIVE behaviour from a detector that does not read correctness, or the `markers` of one
    that does (self-correction's markers over all responses, whatever the final answer)."""
    found: dict[str, list[Span]] = {}
    reflects = False
    for detector in detectors:
        spans = detector.find(rollout)
        found.setdefault(detector.behaviour, []).extend(spans)
        if detector.behaviour in REFLECTIVE and not reflects:
            if not getattr(detector, "reads_correctness", False):
                reflects = bool(spans)
            elif hasattr(detector, "markers"):
                reflects = bool(detector.markers(rollout))
    return found, reflects


# ---------------------------------------------------------------------------------------------
# Precision and recall on the hand-labelled excerpts, shipped as package data (tinyzero/aha/data/)
# so that `python -m tinyzero.aha --evaluate-detectors` works from an installed wheel.
DEFAULT_LABELLED = Path(str(files("tinyzero.aha").joinpath("data", "labelled.jsonl")))


def load_labelled(path: str | Path = DEFAULT_LABELLED) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"labelled set {str(path)!r} not found: the default ships inside the package "
            "(tinyzero/aha/data/labelled.jsonl); pass --labelled PATH"
        )
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def evaluate_detectors(
    items: Sequence[dict], detectors: Sequence[Detector] | None = None
) -> dict[str, dict[str, float]]:
    """Per behaviour: tp, fp, fn, precision, recall over labelled excerpts."""
    detectors = list(detectors) if detectors is not None else default_detectors()
    counts = {b: Counter() for b in {d.behaviour for d in detectors}}
    for i, item in enumerate(items):
        rollout = Rollout(step=0, index=i, prompt="", response=item["text"],
                          ground_truth=item.get("gts"), acc=item.get("acc"))
        found = detect(rollout, detectors)
        for behaviour, count in counts.items():
            predicted, actual = bool(found.get(behaviour)), behaviour in item["labels"]
            count["tp" if predicted and actual else "fp" if predicted else "fn" if actual else "tn"] += 1
    figures = {}
    for behaviour in [b for b in BEHAVIOURS if b in counts] + sorted(set(counts) - set(BEHAVIOURS)):
        c = counts[behaviour]
        figures[behaviour] = {
            "tp": c["tp"], "fp": c["fp"], "fn": c["fn"], "support": c["tp"] + c["fn"],
            "precision": c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0,
            "recall": c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0,
        }
    return figures
