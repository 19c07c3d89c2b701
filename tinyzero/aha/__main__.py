"""`python -m tinyzero.aha ROLLOUT_DIR --out DIR`: find and show the aha moment in rollout dumps."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

DESCRIPTION = """\
Find and show the aha moment in training rollouts.

ROLLOUT_DIR is what training wrote to trainer.rollout_data_dir (one STEP.jsonl per step), a
single STEP.jsonl, or eval's samples.jsonl (read as one step). Writes to --out:
metrics.csv (one row per step), aha.json (the verdict and its evidence), reward_accuracy.png,
length.png, behaviours.png and report.html (one self-contained page). Prints a one-line verdict:
"aha at step N (p = ...)", "rise not significant (p = ...)", "still rising at the end: not
confirmed", "rise at step N (p = ...), not confirmed: ... does not rise" or "no rise".
"""
EPILOG = """\
examples:
  python -m tinyzero.aha checkpoints/tinyzero/countdown_3b/rollouts --out aha_report
  python -m tinyzero.aha ROLLOUTS --out aha_report --tokenizer Qwen/Qwen2.5-3B   # lengths in tokens
  python -m tinyzero.aha --evaluate-detectors                                    # precision/recall
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tinyzero.aha",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("rollout_dir", nargs="?", metavar="ROLLOUT_DIR", help="folder of STEP.jsonl dumps")
    parser.add_argument("--out", metavar="DIR", help="output folder (created if missing)")
    parser.add_argument("--examples", type=int, default=3, metavar="N",
                        help="example transcripts to show from the aha step on (default 3)")
    parser.add_argument("--no-plots", action="store_true",
                        help="skip the PNG plots (no matplotlib needed); the HTML then has no curves")
    parser.add_argument("--tokenizer", metavar="PATH",
                        help="count lengths in tokens of this Hugging Face tokenizer, a local folder or a "
                        "hub name already in the cache (default: characters)")
    parser.add_argument("--validation", metavar="DIR",
                        help="the run's validation dumps (trainer.validation_data_dir), whose held-out accuracy "
                        "confirms the aha (default: the validation/ folder beside ROLLOUT_DIR, when it exists)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="measure N step files at once in N processes (memory: one step file each)")
    parser.add_argument("--detectors", metavar="MODULE:FACTORY",
                        help="use FACTORY() -> list of detectors instead of the built-in ones (e.g. an LLM judge)")
    parser.add_argument("--evaluate-detectors", action="store_true",
                        help="print the detectors' precision and recall on the labelled set, then exit")
    parser.add_argument("--labelled", metavar="PATH", help="labelled set for --evaluate-detectors "
                        "(default: the set shipped in tinyzero/aha/data/labelled.jsonl)")
    return parser


def _evaluate(args, parser) -> int:
    from tinyzero.aha.detectors import DEFAULT_LABELLED, evaluate_detectors, load_detectors, load_labelled

    try:
        items = load_labelled(args.labelled or DEFAULT_LABELLED)
        detectors = load_detectors(args.detectors) if args.detectors else None
    except (FileNotFoundError, ValueError, ImportError, AttributeError) as error:
        parser.error(str(error))
    # Figures per split (how the excerpts were used while building the detectors) and per source
    # (written for the project, or taken from a real run's dumps: the honest figure for real text).
    groups: dict[str, dict[str, list[dict]]] = {"split": {}, "source": {}}
    for item in items:
        for key, by_value in groups.items():
            by_value.setdefault(item.get(key, "unknown"), []).append(item)
    counts = "; ".join(f"{key} " + ", ".join(f"{name}: {len(subset)}" for name, subset in by_value.items())
                       for key, by_value in groups.items())
    print(f"labelled set: {len(items)} excerpts ({counts})")
    sections = [("all", items)] + [(f"{key} {name}", subset) for key, by_value in groups.items()
                                   for name, subset in by_value.items()]
    for name, subset in sections:
        print(f"\n{name} ({len(subset)} excerpts)")
        print(f"{'behaviour':<18} {'precision':>9} {'recall':>7} {'support':>8} {'tp':>4} {'fp':>4} {'fn':>4}")
        for behaviour, f in evaluate_detectors(subset, detectors).items():
            print(f"{behaviour:<18} {f['precision']:>9.3f} {f['recall']:>7.3f} {f['support']:>8} "
                  f"{f['tp']:>4} {f['fp']:>4} {f['fn']:>4}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.evaluate_detectors:
        return _evaluate(args, parser)
    if args.rollout_dir is None or args.out is None:
        parser.error("give ROLLOUT_DIR and --out DIR (or --evaluate-detectors)")
    if args.examples < 0:
        parser.error(f"--examples {args.examples}: must be 0 or more")
    if args.workers < 1:
        parser.error(f"--workers {args.workers}: must be 1 or more")
    # Check everything cheap before reading a possibly large dump.
    if not args.no_plots and importlib.util.find_spec("matplotlib") is None:
        parser.error("the PNG plots need matplotlib: pip install 'tinyzero[train]', or pass --no-plots")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        parser.error(f"--out {args.out!r} is a file: give a folder")

    from tinyzero.aha.analysis import analyse
    from tinyzero.aha.detectors import load_detectors
    from tinyzero.aha.reader import MEASURED_CHARS, DumpError, find_step_files
    from tinyzero.aha.report import write_report

    if args.validation is not None:
        from tinyzero.aha.reader import STEP_FILE

        folder = Path(args.validation)
        if not folder.is_dir() or not any(STEP_FILE.match(child.name) for child in folder.iterdir()):
            parser.error(f"--validation {args.validation!r} is not a folder of STEP.jsonl files: give the run's "
                         "validation dump folder (trainer.validation_data_dir, e.g. checkpoints/tinyzero/RUN/validation)")
    try:
        find_step_files(args.rollout_dir)  # a missing or empty folder fails here, before anything else
        detectors = load_detectors(args.detectors) if args.detectors else None
    except DumpError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (ValueError, ImportError, AttributeError) as error:
        parser.error(str(error))
    length, unit = len, "characters"
    if args.tokenizer:  # loaded before the dump is read, so a bad name fails at once
        from tinyzero.aha.metrics import TokenLength

        try:
            length, unit = TokenLength(args.tokenizer), "tokens"
        except (OSError, ValueError) as error:
            parser.error(f"--tokenizer {args.tokenizer!r} cannot be loaded ({error}); give a local "
                         "Hugging Face tokenizer folder, or the model's folder")
    try:
        analysis = analyse(args.rollout_dir, detectors, examples=args.examples, length=length,
                           length_unit=unit, workers=args.workers, validation_dir=args.validation)
    except DumpError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    written = write_report(analysis, out, plots=not args.no_plots)
    aha = analysis.aha
    print(f"read {analysis.responses} responses over {len(analysis.rows)} steps "
          f"({analysis.malformed_lines} malformed line(s) skipped, {analysis.cut_responses} cut to their first "
          f"{MEASURED_CHARS:,} characters)")
    print(aha.verdict)
    if aha.confirmation:  # a significant, sustained rise: the evidence either way
        rise = f"rising to step {aha.ramp_end}" if aha.ramp_end != aha.step else "a jump"
        print(f"  reflection {aha.reflection_before:.2f} -> {aha.reflection_after:.2f} (from step {aha.step}, {rise}, "
              f"held {aha.held_steps} steps); {aha.confirmation['description']}")
    else:
        print(f"  {aha.reason}")
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
