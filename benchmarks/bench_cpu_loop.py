"""Where the time of verl's training loop on a CPU goes: `python -m tinyzero.train +recipe=countdown_tiny`
run for real, its start-up split by phase and its steps split by verl's own timers.

    python -m tinyzero.setup_cpu                      # once, on a machine without GPUs
    python benchmarks/bench_cpu_loop.py [--steps 10] [--prime] [--keep DIR] [OVERRIDE ...]

The recipe's priming (verl's SFT trainer) is skipped unless --prime: this measures the RL loop.

Start-up is timed from the launcher's output as it arrives: the checks, data and model build (up
to the plan), Ray's start, then verl's workers, the vLLM server and the first weight sync (up to
"Training from scratch"). Steps come from verl's `timing_s/*` metrics (the recipe's file logger):
generation, old log-probs, reference, advantages, update, weight sync, checkpoint save,
validation. Step 1 is shown apart: it pays for vLLM's and the kernels' warm-up. Prints a table,
and the run's peak memory: the proportional set size (shared pages split between the processes that
share them) summed over the launcher and everything it starts (Ray, verl's workers, vLLM), sampled
every second. tinyzero.train.cpu.CPU_RUN_MEMORY_GIB is this figure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PHASES = [
    ("generation", "timing_s/gen"),
    ("old log-prob", "timing_s/old_log_prob"),
    ("reference", "timing_s/ref"),
    ("advantages", "timing_s/adv"),
    ("update", "timing_s/update_actor"),
    ("weight sync", "timing_s/update_weights"),
    ("save", "timing_s/save_checkpoint"),
    ("validation", "timing_s/testing"),
    ("whole step", "timing_s/step"),
]
# Start-up milestones: (label, text that marks its end in the launcher's output).
MILESTONES = [
    ("checks, data, tiny model (priming with --prime), plan", "[tinyzero] outputs"),
    ("Ray starts", "Started a local Ray instance"),
    ("verl's workers, vLLM server, first weight sync", "Training from scratch"),
]


class PeakMemory(threading.Thread):
    """Samples the summed PSS of a process and all its descendants until the process ends."""

    def __init__(self, pid: int, interval: float = 1.0):
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_bytes, self.peak_processes = 0, 0

    def run(self) -> None:
        import psutil  # a Ray dependency

        root = psutil.Process(self.pid)
        while root.is_running() and root.status() != psutil.STATUS_ZOMBIE:
            total, count = 0, 0
            for process in [root, *root.children(recursive=True)]:
                try:
                    total += process.memory_full_info().pss
                    count += 1
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue  # ended between listing and reading
            if total > self.peak_bytes:
                self.peak_bytes, self.peak_processes = total, count
            time.sleep(self.interval)


def run(steps: int, work: Path, overrides: list[str], prime: bool) -> tuple[dict[str, float], float, dict[int, dict], PeakMemory]:
    command = [
        sys.executable, "-m", "tinyzero.train", "+recipe=countdown_tiny", f"data_root={work / 'data'}",
        f"trainer.default_local_dir={work / 'run'}", f"trainer.total_training_steps={steps}",
        f"trainer.test_freq={steps}", f"trainer.save_freq={steps}", *([] if prime else ["priming=null"]), *overrides,
    ]  # fmt: skip
    start = time.monotonic()
    marks: dict[str, float] = {}
    log = work / "train.log"
    with log.open("w") as sink:
        process = subprocess.Popen(command, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        memory = PeakMemory(process.pid)
        memory.start()
        for line in process.stdout:
            sink.write(line)
            for label, marker in MILESTONES:
                if label not in marks and marker in line:
                    marks[label] = time.monotonic() - start
        process.wait()
    total = time.monotonic() - start
    if process.returncode != 0:
        sys.exit(f"training failed (exit status {process.returncode}); its output: {log}")
    metrics: dict[int, dict] = {}
    for path in sorted((work / "run" / "metrics").glob("*.jsonl")):
        for line in path.read_text().splitlines():
            record = json.loads(line)
            metrics.setdefault(record["step"], {}).update(record["data"])
    memory.join()
    return marks, total, metrics, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10, help="training steps (validation and a checkpoint at the last)")
    parser.add_argument("--prime", action="store_true", help="keep the recipe's priming (timed with the checks)")
    parser.add_argument("--keep", type=Path, help="run in this folder and keep it (default: a temporary one)")
    parser.add_argument("overrides", nargs="*", help="more KEY=VALUE overrides for the recipe")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        work = args.keep or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        marks, total, metrics, memory = run(args.steps, work, args.overrides, args.prime)

    priming = "with" if args.prime else "without"
    print(f"python -m tinyzero.train +recipe=countdown_tiny ({priming} priming), {args.steps} steps: {total:.0f} s in all\n")
    print("| start-up phase | ends at (s) | takes (s) |\n|---|---|---|")
    previous = 0.0
    for label, _ in MILESTONES:
        if label in marks:
            print(f"| {label} | {marks[label]:.1f} | {marks[label] - previous:.1f} |")
            previous = marks[label]
    steps = sorted(step for step in metrics if step >= 1)
    steady = [step for step in steps if step > 1]
    print(f"\n| step phase | step 1 (s) | steps 2-{steps[-1]}: median (s) | mean (s) |\n|---|---|---|---|")
    for label, key in PHASES:
        first = metrics[steps[0]].get(key)
        values = [metrics[step][key] for step in steady if key in metrics[step]]
        median = f"{statistics.median(values):.2f}" if values else "-"
        mean = f"{statistics.fmean(values):.2f}" if values else "-"
        print(f"| {label} | {first:.2f} | {median} | {mean} |" if first is not None else f"| {label} | - | {median} | {mean} |")
    tokens = [metrics[step]["perf/total_num_tokens"] for step in steady if "perf/total_num_tokens" in metrics[step]]
    if tokens:
        print(f"\ntokens per step (prompts and responses): {statistics.fmean(tokens):.0f}")
    print(
        f"peak memory: {memory.peak_bytes / 2**30:.2f} GiB, the proportional set size summed over "
        f"{memory.peak_processes} processes (the launcher, Ray, verl's workers, vLLM)"
    )


if __name__ == "__main__":
    main()
