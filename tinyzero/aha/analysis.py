"""From a rollout folder to the aha analysis: per-step metrics, the aha step, example transcripts.

Two passes, both streaming: the first measures every step file line by line; the second reads
step files from the aha step on only until it has found the example transcripts (usually the
aha step's own file). Memory stays bounded by one step's file whatever the size of the dump.
The run's validation dumps (`validation/STEP.jsonl` beside `rollouts/`, verl's
trainer.validation_data_dir), when there are any, give the held-out accuracy that confirms an aha.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

from tinyzero.aha.changepoint import AhaMoment, Validation, find_aha
from tinyzero.aha.detectors import REFLECTIVE, Detector, Span, default_detectors, detect
from tinyzero.aha.metrics import StepMetrics, measure_step
from tinyzero.aha.reader import STEP_FILE, Rollout, StepFile, find_step_files, no_rollouts_error
from tinyzero.progress import Progress


@dataclass
class Example:
    """A transcript to show, with the spans each behaviour was found in."""

    rollout: Rollout
    spans: dict[str, list[Span]]

    @property
    def behaviours(self) -> list[str]:
        return [b for b, spans in self.spans.items() if spans]

    def as_json(self) -> dict:
        return {
            "step": self.rollout.step,
            "index": self.rollout.index,
            "correct": self.rollout.correct,
            "behaviours": self.behaviours,
        }


@dataclass
class Analysis:
    source: str
    rows: list[dict]  # metrics.csv, one dict per step
    aha: AhaMoment
    examples: list[Example]  # first reflective responses reaching the right answer, from the aha step on
    contrast: Example | None  # a response from the step before the aha step, for comparison
    malformed_lines: int
    responses: int
    cut_responses: int  # measured on their first reader.MEASURED_CHARS characters only
    length_unit: str
    validation_dir: str | None = None  # where the held-out accuracy came from, when there were validations


def _is_payoff(example: Example) -> bool:
    return example.rollout.correct and any(example.spans.get(b) for b in REFLECTIVE)


# How many step files the example search reads, from the aha step on, looking for varied examples.
EXAMPLE_STEPS = 3


def _first_examples(
    step_files: Sequence[StepFile], from_step: int, detectors: Sequence[Detector], count: int
) -> list[Example]:
    """The first `count` reflective responses that reach the right answer, from `from_step` on,
    preferring a new combination of behaviours each (so the report shows more than one kind).
    Reads at most EXAMPLE_STEPS step files unless it has found fewer than `count` examples."""
    varied: list[Example] = []
    repeats: list[Example] = []  # payoffs whose behaviours were already shown, kept to fill up
    for files_read, step_file in enumerate(f for f in step_files if f.step >= from_step):
        if files_read >= EXAMPLE_STEPS and len(varied) + len(repeats) >= count:
            break
        for rollout in step_file:
            example = Example(rollout, detect(rollout, detectors))
            if not _is_payoff(example):
                continue
            if set(example.behaviours) not in [set(e.behaviours) for e in varied]:
                varied.append(example)
                if len(varied) == count:
                    return varied
            elif len(repeats) < count:
                repeats.append(example)
    chosen = varied + repeats[: count - len(varied)]
    return sorted(chosen, key=lambda e: (e.rollout.step, e.rollout.index))


def _contrast(step_files: Sequence[StepFile], aha_step: int, detectors: Sequence[Detector]) -> Example | None:
    """The first response of the last step before the aha step."""
    earlier = [f for f in step_files if f.step < aha_step]
    if not earlier:
        return None
    for rollout in earlier[-1]:
        return Example(rollout, detect(rollout, detectors))
    return None


def _measure_file(step_file: StepFile, detectors: Sequence[Detector], length: Callable[[str], int]) -> StepMetrics:
    metrics = measure_step(step_file.step, step_file, detectors, length)
    metrics.malformed_lines = step_file.malformed
    metrics.cut_responses = step_file.cut
    return metrics


VALIDATION_DIR = "validation"  # beside rollouts/: the recipes' trainer.validation_data_dir


def validation_folder(rollout_dir: str | Path) -> Path | None:
    """The run's validation dumps beside its rollout folder, if it has any."""
    path = Path(rollout_dir)
    folder = path.parent / VALIDATION_DIR
    if path.is_dir() and folder.is_dir() and any(STEP_FILE.match(child.name) for child in folder.iterdir()):
        return folder
    return None


def read_validations(folder: str | Path) -> list[Validation]:
    """Held-out accuracy per validation step, streaming each STEP.jsonl. Raises DumpError when the
    folder has no step files."""
    validations = []
    for step_file in find_step_files(folder):
        problems = correct = 0
        for rollout in step_file:
            problems += 1
            correct += rollout.correct
        if problems:
            validations.append(Validation(step_file.step, problems, correct))
    return validations


def analyse(
    rollout_dir: str | Path,
    detectors: Sequence[Detector] | None = None,
    examples: int = 3,
    length: Callable[[str], int] = len,
    length_unit: str = "characters",
    workers: int = 1,
    validation_dir: str | Path | None = None,
) -> Analysis:
    """Measure every step of a rollout dump and find the aha step. Raises DumpError when the
    folder is missing, has no step files, or has no readable line at all.

    validation_dir: the run's validation dumps (default: `validation/` beside the rollout folder,
    when it holds STEP.jsonl files); their held-out accuracy confirms or refutes the aha.
    workers > 1 measures that many step files at once in separate processes (memory: one step
    file per worker); detectors and `length` must then be picklable."""
    if workers < 1:
        raise ValueError(f"workers={workers}: must be at least 1")
    detectors = list(detectors) if detectors is not None else default_detectors()
    step_files = find_step_files(rollout_dir)
    validation_dir = validation_dir if validation_dir is not None else validation_folder(rollout_dir)
    validations = read_validations(validation_dir) if validation_dir is not None else []
    # Memory does not grow with the dump (files stream line by line), so there is nothing to
    # refuse up front; a dump of many files takes a while, so say how far it is.
    measured = []
    with Progress(len(step_files), "step files measured") as progress, ExitStack() as stack:
        if workers == 1:
            results = (_measure_file(f, detectors, length) for f in step_files)
        else:
            pool = stack.enter_context(ProcessPoolExecutor(workers))
            results = pool.map(_measure_file, step_files, repeat(detectors), repeat(length))
        for metrics in results:
            measured.append(metrics)
            progress.update(1)
    rows = [m.row() for m in measured if m.responses]
    malformed = sum(m.malformed_lines for m in measured)
    responses = sum(m.responses for m in measured)
    if not rows:
        raise no_rollouts_error(rollout_dir, step_files, malformed)
    aha = find_aha(rows, validations)
    # With no aha step, still show the first reflective responses that reached the answer.
    shown_from = aha.step if aha.step is not None else rows[0]["step"]
    chosen = _first_examples(step_files, shown_from, detectors, examples) if examples else []
    aha.examples = [e.as_json() for e in chosen]
    contrast = _contrast(step_files, aha.step, detectors) if aha.step is not None else None
    return Analysis(
        source=str(rollout_dir),
        rows=rows,
        aha=aha,
        examples=chosen,
        contrast=contrast,
        malformed_lines=malformed,
        responses=responses,
        cut_responses=sum(m.cut_responses for m in measured),
        length_unit=length_unit,
        validation_dir=str(validation_dir) if validations else None,
    )
