"""The behaviour detectors, the arithmetic they read, and their precision/recall on the labelled set."""

import json
import re
from collections import Counter

import pytest

from tinyzero.aha.arithmetic import stated_equations
from tinyzero.aha.detectors import (
    BEHAVIOURS,
    DEFAULT_LABELLED,
    Detector,
    SelfCorrectionDetector,
    correction_markers,
    default_detectors,
    detect,
    detect_with_reflection,
    evaluate_detectors,
    load_detectors,
    load_labelled,
)
from tinyzero.aha.detectors import Span
from tinyzero.aha.reader import Rollout
from tinyzero.rewards import compute_score

LABELLED = DEFAULT_LABELLED  # shipped as package data: tinyzero/aha/data/labelled.jsonl
MIN_PRECISION, MIN_RECALL = 0.9, 0.8


@pytest.fixture(scope="module")
def labelled():
    return load_labelled(LABELLED)


def test_detectors_reach_precision_and_recall_on_the_labelled_set(labelled):
    """On the written excerpts, which hold every behaviour. The real countdown_tiny sample holds no
    behaviour at all, so it measures only false alarms; those are reported in the README (subgoal
    and backward chaining fire on 12 of its 110 responses), not hidden in a pooled figure."""
    figures = evaluate_detectors([item for item in labelled if item["source"] == "written"])
    for behaviour, f in figures.items():
        print(f"{behaviour:18s} precision {f['precision']:.3f} recall {f['recall']:.3f} support {f['support']}")
    assert set(figures) == set(BEHAVIOURS)
    for behaviour, f in figures.items():
        assert f["precision"] >= MIN_PRECISION, (behaviour, f)
        assert f["recall"] >= MIN_RECALL, (behaviour, f)


def test_labelled_set_is_large_varied_and_consistent_with_the_reward(labelled):
    assert len(labelled) >= 200
    assert {item["split"] for item in labelled} == {"dev", "heldout", "fresh"}
    assert len({item["id"] for item in labelled}) == len(labelled)
    positives = Counter(label for item in labelled for label in item["labels"])
    assert set(positives) == set(BEHAVIOURS)
    assert min(positives.values()) >= 30, positives
    # hard negatives: responses with none of the behaviours
    assert sum(not item["labels"] for item in labelled) >= 40
    # many wordings, not one cue word
    assert sum("wait" in item["text"].lower() for item in labelled) < 0.05 * len(labelled)
    for item in labelled:
        # the stored correctness is what tinyzero's own reward says about the response
        score = compute_score(item["task"], item["text"], item["gts"])
        assert score["acc"] == item["acc"], item["id"]
        if "self_correction" in item["labels"]:
            assert item["acc"] == 1.0, item["id"]


@pytest.mark.parametrize(
    "text, sides, holds",
    [
        ("55 + 36 = 91, then", [("55 + 36", "91")], [True]),
        ("so 70 + 27 - 2 = 105 - 2 = 103. No", [("70 + 27 - 2", "105 - 2", "103")], [False]),
        ("5 x 6 is 30 and 84 divided by 6 is 14", [("5 * 6", "30"), ("84 / 6", "14")], [True, True]),
        ("Step 1: make 3 (12 - 9 = 3).", [("12 - 9", "3")], [True]),
        # "minus 19 is 72" continues the earlier 91: it reads as 91 - 19 = 72, not "19 = 72"
        ("55 + 36 is 91, minus 19 is 72", [("55 + 36", "91"), ("91 - (19)", "72")], [True, True]),
        ("347 * 30 = 10410, minus 347 gives 10073", [("347 * 30", "10410"), ("10410 - (347)", "10073")], [True, False]),
        ("(95 - 3)(95 + 3) = 9025 - 9 = 9016", [("9025 - 9", "9016")], [True]),
        ("The numbers are 19, 36, 55 and 7.", [], []),
    ],
)
def test_stated_equations_reads_and_checks_written_arithmetic(text, sides, holds):
    found = stated_equations(text)
    assert [e.sides for e in found] == sides
    assert [e.holds for e in found] == holds


def _rollout(text, acc, gts=None):
    return Rollout(step=1, index=0, prompt="", response=text, ground_truth=gts or {"target": 65, "numbers": [19, 36, 55, 7]}, acc=acc)


def test_self_correction_counts_only_when_the_final_answer_is_right():
    text = ("55 + 19 = 74, 74 - 7 = 67. That's 67, not 65. Let me try another order. "
            "55 + 36 = 91, 91 - 19 = 72, 72 - 7 = 65. </think> <answer> 55 + 36 - 19 - 7 </answer>")
    assert SelfCorrectionDetector().find(_rollout(text, acc=1.0))
    assert not SelfCorrectionDetector().find(_rollout(text, acc=0.0))
    # correctness falls back to the score when the dump has no `acc` (verl's v1 trainer)
    no_acc = Rollout(1, 0, "", text, {"target": 65, "numbers": [19, 36, 55, 7]}, score=1.0)
    assert SelfCorrectionDetector().find(no_acc)


def test_spans_point_at_the_evidence():
    text = "55 + 36 = 91, 91 - 19 = 72, 72 - 7 = 65. Let me double-check: 55 + 36 = 91. </think> <answer> x </answer>"
    spans = detect(_rollout(text, acc=1.0), default_detectors())
    assert {text[s.start:s.end] for s in spans["verification"]} >= {"double-check", "55 + 36 = 91"}
    assert all(s.end <= text.index("<answer>") for found in spans.values() for s in found)


def test_the_final_answer_is_not_read_as_a_recomputation():
    text = "55 + 36 - 19 - 7 = 65. </think> <answer> 55 + 36 - 19 - 7 </answer>"
    assert not any(detect(_rollout(text, acc=1.0), default_detectors()).values())


JUDGE_MODULE = """
from tinyzero.aha.detectors import Span, default_detectors

class LongResponse:
    # a stand-in for an LLM judge: any object with `behaviour` and `find` plugs in
    behaviour = "long_response"

    def find(self, rollout):
        return [Span(0, len(rollout.response), self.behaviour)] if len(rollout.response) > 80 else []

def make_judges():
    return [*default_detectors(), LongResponse()]
"""


def test_a_custom_detector_plugs_in(tmp_path, monkeypatch):
    (tmp_path / "my_judges.py").write_text(JUDGE_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    detectors = load_detectors("my_judges:make_judges")
    assert all(isinstance(d, Detector) for d in detectors)
    found = detect(_rollout("x" * 100, acc=0.0), detectors)
    assert found["long_response"] and set(found) == {*BEHAVIOURS, "long_response"}


def test_load_detectors_names_a_bad_spec():
    with pytest.raises(ValueError, match="MODULE:FACTORY"):
        load_detectors("no_colon_here")
    with pytest.raises(ValueError, match="--detectors 'no_such_module_here:make'"):
        load_detectors("no_such_module_here:make")
    with pytest.raises(ValueError, match="--detectors 'json:no_such_factory'"):
        load_detectors("json:no_such_factory")


def test_labelled_file_is_valid_jsonl():
    with open(LABELLED, encoding="utf-8") as lines:
        for line in lines:
            item = json.loads(line)
            assert set(item["labels"]) <= set(BEHAVIOURS)
            assert item["text"].strip()


def test_a_false_equation_alone_is_not_self_correction():
    """What a 0.2M-parameter model writes: a false equation, no word about it, a right answer."""
    garble = _rollout("1 * 11 = 1. That reaches . </think> <answer> 1 * 11 </answer>", acc=1.0,
                      gts={"target": 11, "numbers": [1, 11]})
    assert SelfCorrectionDetector().find(garble) == []
    missed = _rollout("55 + 19 + 36 - 7 = 103. 55 + 36 - 19 - 7 = 65. </think> <answer> 55 + 36 - 19 - 7 </answer>", acc=1.0)
    assert SelfCorrectionDetector().find(missed) == []  # an attempt that misses, never said to


@pytest.mark.parametrize(
    "text, marker",
    [
        ("55 + 19 = 74, 74 - 7 = 67. That's wrong. 55 + 36 = 91, 91 - 19 = 72, 72 - 7 = 65.", "wrong"),  # retraction
        ("55 + 36 = 81, 81 - 19 = 62. Then 55 + 36 = 91, 91 - 19 = 72, 72 - 7 = 65.", "55 + 36 = 91"),  # recomputed
        ("55 + 19 = 74, 74 - 7 = 67, not 65. 55 + 36 = 91, 91 - 19 = 72, 72 - 7 = 65.", "not 65"),  # the target
        ("70 + 27 = 105, wait: 97, not 105. 55 + 36 = 91, 91 - 19 = 72, 72 - 7 = 65.", "not 105"),  # a stated result
        ("55 + 36 = 91, 91 - 19 = 62. Let me redo that: 91 - 19 = 72, 72 - 7 = 65.", "91 - 19 = 72"),  # a slip redone
        ("55 - 19 + 36 - 7 = 66. One over. 55 + 36 - 19 - 7 = 65.", "One over"),
    ],
)
def test_self_correction_needs_a_marker_in_the_text(text, marker):
    right = _rollout(f"{text} </think> <answer> 55 + 36 - 19 - 7 </answer>", acc=1.0)
    wrong = _rollout(f"{text} </think> <answer> 55 + 36 - 19 + 7 </answer>", acc=0.0)
    assert marker in [right.response[s.start:s.end] for s in SelfCorrectionDetector().find(right)]
    assert SelfCorrectionDetector().find(wrong) == [] and correction_markers(wrong)  # pays off only if right


def test_the_reflection_never_reads_correctness():
    text = "55 + 19 = 74, 74 - 7 = 67, not 65. </think> <answer> 55 + 36 - 19 + 7 </answer>"
    found, reflects = detect_with_reflection(_rollout(text, acc=0.0), default_detectors())
    assert not found["self_correction"] and reflects  # the marker counts over wrong answers too

    class RightAnswers:  # reads correctness and offers no markers: never part of the reflection
        behaviour = "verification"
        reads_correctness = True

        def find(self, rollout):
            return [Span(0, 1, self.behaviour)] if rollout.correct else []

    found, reflects = detect_with_reflection(_rollout("55 + 36 = 91.", acc=1.0), [RightAnswers()])
    assert found["verification"] and not reflects


def test_labelled_items_say_where_their_text_comes_from(labelled):
    assert {item["source"] for item in labelled} <= {"written", "countdown_tiny_run"}
    run = [item for item in labelled if item["source"] == "countdown_tiny_run"]
    # copied from the dumps: findable again by step and 0-based line, evaluated once, numbered r001..
    assert [item["id"] for item in run] == [f"r{i:03d}" for i in range(1, len(run) + 1)]
    for item in run:
        assert item["split"] == "fresh" and item["task"] == "countdown", item["id"]
        assert isinstance(item["step"], int) and item["step"] >= 1, item["id"]
        assert isinstance(item["line"], int) and item["line"] >= 0, item["id"]
        assert "</answer>" not in item["text"] or item["text"].endswith("</answer>"), item["id"]


def test_evaluation_reports_each_source(tmp_path, capsys):
    from tinyzero.aha.__main__ import main

    run_items = [
        {"id": "r001", "split": "fresh", "source": "countdown_tiny_run", "task": "countdown",
         "gts": {"target": 11, "numbers": [1, 11]}, "acc": 1.0, "labels": [],
         "text": "1 * 11 = 1. That reaches . </think> <answer> 1 * 11 </answer>"},
        {"id": "r002", "split": "fresh", "source": "countdown_tiny_run", "task": "countdown",
         "gts": {"target": 11, "numbers": [1, 11]}, "acc": 1.0, "labels": ["self_correction"],
         "text": "1 + 11 = 12, not 11. 1 * 11 = 11. </think> <answer> 1 * 11 </answer>"},
    ]
    path = tmp_path / "labelled.jsonl"
    # the shipped written excerpts plus two run lines of its own (the shipped run lines are left out)
    written = [item for item in load_labelled(LABELLED) if item["source"] == "written"]
    path.write_text("".join(json.dumps(item) + "\n" for item in [*written, *run_items]))
    assert main(["--evaluate-detectors", "--labelled", str(path)]) == 0
    out = capsys.readouterr().out
    assert "source written: 280, countdown_tiny_run: 2" in out
    section = out.split("source countdown_tiny_run (2 excerpts)")[1]
    assert re.search(r"self_correction\s+1\.000\s+1\.000\s+1\s+1\s+0\s+0", section), section
