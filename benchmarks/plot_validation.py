"""Plot held-out validation accuracy against the training step, from a run's own validation dumps.

verl writes one `STEP.jsonl` per validation into `trainer.validation_data_dir` (the recipes put it
at checkpoints/<project>/<experiment>/validation), one line per test problem with the reward's
`acc` (1 when the answer is right). Step 0 is the validation before the first update
(`trainer.val_before_train`), i.e. the model RL starts from.

    python benchmarks/plot_validation.py checkpoints/tinyzero/countdown_tiny/validation \
        --out docs/countdown_tiny_validation.png [--rollouts checkpoints/.../rollouts]
        [--more OTHER_RUN/validation --labels "seed 0" "seed 1"]

Prints one line per validation (step, problems, accuracy) and writes the PNG. With --rollouts the
training reward's accuracy per step (the share of sampled answers that are right, temperature 1)
is drawn too, from the rollout dumps (`trainer.rollout_data_dir`). --more adds other runs' held-out
curves (another seed) to the same plot; --labels names the runs in order.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _correct(row: dict) -> float:
    """Validation dumps carry the reward's `acc`; verl's rollout dumps carry only `score`, which is
    CORRECT_SCORE exactly when the answer is right."""
    from tinyzero.rewards import CORRECT_SCORE

    return float(row["acc"]) if "acc" in row else float(float(row["score"]) >= CORRECT_SCORE)


def dump_accuracy(folder: Path) -> list[tuple[int, int, float]]:
    """(step, lines, mean acc) for every STEP.jsonl in folder, by step."""
    points = []
    for path in folder.glob("*.jsonl"):
        if not path.stem.isdigit():
            continue
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if not rows:
            continue
        if "acc" not in rows[0] and "score" not in rows[0]:
            raise SystemExit(f"{path} has neither `acc` nor `score`: not a verl dump of tinyzero's reward (fields: {sorted(rows[0])})")
        points.append((int(path.stem), len(rows), sum(_correct(row) for row in rows) / len(rows)))
    return sorted(points)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("validation", type=Path, help="the run's validation dump folder (STEP.jsonl files)")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--rollouts", type=Path, help="the run's rollout dump folder: also draw the training accuracy")
    parser.add_argument("--more", type=Path, nargs="*", default=[], help="other runs' validation folders, drawn beside it")
    parser.add_argument("--labels", nargs="*", help="a name for each run, in order (default: held-out, greedy)")
    parser.add_argument("--title", default="countdown_tiny: held-out accuracy under GRPO")
    args = parser.parse_args(argv)
    folders = [args.validation, *args.more]
    if args.labels is not None and len(args.labels) != len(folders):
        parser.error(f"--labels names {len(args.labels)} run(s) but {len(folders)} validation folder(s) were given")
    curves = []
    for index, folder in enumerate(folders):
        if not folder.is_dir():
            parser.error(f"{folder} is not a folder: pass the run's validation dump folder (trainer.validation_data_dir)")
        validation = dump_accuracy(folder)
        if not validation:
            parser.error(f"{folder} holds no STEP.jsonl validation dumps")
        name = args.labels[index] if args.labels else "held-out"
        for step, count, accuracy in validation:
            print(f"{name}: step {step:4d}  {count} problems  accuracy {accuracy:.3f}")
        first, last = validation[0], validation[-1]
        print(f"{name}: change {first[0]} -> {last[0]}: {100 * (last[2] - first[2]):+.1f} points")
        curves.append((name, validation))

    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    if args.rollouts:
        training = dump_accuracy(args.rollouts)
        if training:
            axes.plot([s for s, _, _ in training], [100 * a for _, _, a in training], color="0.7", linewidth=1,
                      label="training samples (temperature 1)")
    for index, (name, validation) in enumerate(curves):
        label = f"{name}, held-out greedy ({validation[0][1]} problems)" if args.labels else f"held-out, greedy ({validation[0][1]} problems)"
        axes.plot([s for s, _, _ in validation], [100 * a for _, _, a in validation], marker="o", color=f"C{index}", label=label)
    axes.set_xlabel("GRPO step (0: the primed model, before any update)")
    axes.set_ylabel("accuracy (%)")
    axes.set_title(args.title)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
