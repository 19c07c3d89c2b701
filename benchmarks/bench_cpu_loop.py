"""Where the time of verl's training loop on a CPU goes: `python -m tinyzero.train +recipe=countdown_tiny`
run for real, its start-up split by phase and its steps split by verl's own timers.

    python -m tinyzero.setup_cpu                      # once, on a machine without GPUs
    python benchmarks/bench_cpu_loop.py [--steps 10] [--prime] [--keep DIR] [OVERRIDE ...]

The recipe's priming (verl's SFT trainer) is skipped unless --prime: this measures the RL loop.
With --prime, the SFT step time is timed from verl's console lines as they arrive (the median gap
between consecutive `step:N - train/loss` lines).

The figures depend on the processor: the script prints its flags that matter (avx2, avx512f,
avx512_bf16, amx) and the compute dtype the launch chose (tinyzero.train.cpu.compute_dtype). Each
verl step is set beside a plain-PyTorch fp32 forward and backward of the same model over the same
number of tokens, timed here after the run, so the overhead of verl's engine shows as a ratio. To
see the emulated-bf16 path on a processor with native bf16, run with `ONEDNN_MAX_CPU_ISA=AVX2` and
`cpu_dtype=bf16` (and `cpu_dtype=fp32` for the fix).

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
import os
import re
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


SFT_STEP = re.compile(r"^step:(\d+) - .*train/loss:")
SFT_TOKENS = re.compile(r"train/global_tokens:(\d+)")


def run(steps: int, work: Path, overrides: list[str], prime: bool):
    command = [
        sys.executable, "-m", "tinyzero.train", "+recipe=countdown_tiny", f"data_root={work / 'data'}",
        f"trainer.default_local_dir={work / 'run'}", f"trainer.total_training_steps={steps}",
        f"trainer.test_freq={steps}", f"trainer.save_freq={steps}", *([] if prime else ["priming=null"]), *overrides,
    ]  # fmt: skip
    start = time.monotonic()
    marks: dict[str, float] = {}
    sft_steps: list[float] = []  # arrival time of each SFT step's console line
    sft_tokens: list[int] = []
    plan: list[str] = []
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
            if SFT_STEP.match(line):
                sft_steps.append(time.monotonic())
                sft_tokens += [int(found) for found in SFT_TOKENS.findall(line)]
            if line.startswith("[tinyzero] "):
                plan.append(line.rstrip())
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
    gaps = [later - earlier for earlier, later in zip(sft_steps, sft_steps[1:])]
    sft = {"step_s": statistics.median(gaps) if gaps else None, "tokens": statistics.median(sft_tokens) if sft_tokens else None}
    return marks, total, metrics, memory, sft, plan


def processor() -> str:
    """The processor's model name and the flags that decide bf16's speed."""
    from tinyzero.train import cpu

    flags = cpu.cpu_flags()
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
    name = next((line.partition(":")[2].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")), "unknown")
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA")
    return (f"{name}, {os.cpu_count()} cores; flags: {' '.join(f for f in wanted if f in flags) or 'none of ' + ', '.join(wanted)}"
            + (f"; ONEDNN_MAX_CPU_ISA={isa}" if isa else ""))


def plain_fp32_step(model_dir: Path, sequences: int, tokens: int, repeats: int = 5) -> float:
    """Median seconds of a plain-PyTorch fp32 forward and backward of the model over `tokens`
    tokens in `sequences` padded rows (no FSDP, no autocast): what a verl step is set beside."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(os.cpu_count() or 1)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    model.train()
    length = max(1, round(tokens / sequences))
    ids = torch.randint(0, model.config.vocab_size, (sequences, length))
    times = []
    for _ in range(repeats + 1):
        begin = time.perf_counter()
        model(input_ids=ids, labels=ids).loss.backward()
        model.zero_grad(set_to_none=True)
        times.append(time.perf_counter() - begin)
    return statistics.median(times[1:])  # the first pays for allocation


def reference_steps(model_dir: Path, metrics: dict[int, dict], sft: dict, overrides: list[str]) -> dict[str, float]:
    """Plain-PyTorch fp32 times for the policy update's and the SFT step's tokens (as many rows as verl's batches)."""
    from omegaconf import OmegaConf

    recipe = OmegaConf.load(Path(__file__).resolve().parents[1] / "recipes" / "countdown_tiny.yaml")
    recipe.merge_with_dotlist([o for o in overrides if not o.startswith("+") and "=" in o])
    reference = {}
    tokens = [metrics[step]["perf/total_num_tokens"] for step in metrics if step > 1 and "perf/total_num_tokens" in metrics[step]]
    if tokens:
        rows = int(recipe.data.train_batch_size) * int(recipe.actor_rollout_ref.rollout.n)
        reference["update"] = plain_fp32_step(model_dir, rows, statistics.median(tokens))
    if sft["tokens"]:
        reference["sft"] = plain_fp32_step(model_dir, int(recipe.priming.sft.data.train_batch_size), sft["tokens"])
    return reference


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
        marks, total, metrics, memory, sft, plan = run(args.steps, work, args.overrides, args.prime)
        model_dir = next(Path(line.split()[-1]) for line in plan if line.startswith("[tinyzero] model "))
        reference = reference_steps(model_dir, metrics, sft, args.overrides)

    priming = "with" if args.prime else "without"
    print(f"python -m tinyzero.train +recipe=countdown_tiny ({priming} priming), {args.steps} steps: {total:.0f} s in all")
    print(f"processor: {processor()}")
    compute = next((line.split("compute", 1)[1].strip() for line in plan if line.startswith("[tinyzero] compute ")), "not printed")
    print(f"compute dtype: {compute}\n")
    if sft["step_s"] is not None:
        ratio = f"; plain-PyTorch fp32 forward and backward of the same tokens: {reference['sft']:.2f} s ({sft['step_s'] / reference['sft']:.1f}x)"
        print(f"priming SFT step (median): {sft['step_s']:.2f} s for {sft['tokens']:.0f} tokens{ratio}\n")
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
    if "update" in reference:
        update = statistics.median(metrics[step]["timing_s/update_actor"] for step in steady)
        print(f"policy update {update:.2f} s against a plain-PyTorch fp32 forward and backward of the same tokens: "
              f"{reference['update']:.2f} s ({update / reference['update']:.1f}x)")
    print(
        f"peak memory: {memory.peak_bytes / 2**30:.2f} GiB, the proportional set size summed over "
        f"{memory.peak_processes} processes (the launcher, Ray, verl's workers, vLLM)"
    )


if __name__ == "__main__":
    main()
