"""Speed of the Countdown solver and of dataset generation, with peak memory.

    python benchmarks/bench_data_gen.py                     # solver + the classic-sized set
    python benchmarks/bench_data_gen.py --difficulty all    # also count every train problem
    python benchmarks/bench_data_gen.py --skip-solver --train-size 32768

Targets (issue 3): solve 4 numbers well under 1 ms on average, 6 numbers well under 100 ms;
327,680 train + 1,024 test Countdown problems in at most 20 s with peak memory under 2 GB.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import tempfile
import time

from data_gen import CountdownConfig, write_dataset
from data_gen.solver import Solver, modulus_for


def bench_solver(count: int, problems: int, max_target: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    cases = [([rng.randint(1, 99) for _ in range(count)], rng.randint(1, max_target)) for _ in range(problems)]
    modulus = modulus_for(count, 99, max_target)
    start = time.perf_counter()
    found = sum(Solver(numbers, modulus).find(target) is not None for numbers, target in cases)
    solve_ms = (time.perf_counter() - start) / problems * 1e3
    start = time.perf_counter()
    total = sum(Solver(numbers, modulus).count(target) for numbers, target in cases)
    count_ms = (time.perf_counter() - start) / problems * 1e3
    print(f"solver, {count} numbers in 1..99, targets 1..{max_target}, {problems} random problems: "
          f"solve {solve_ms:.3f} ms, count {count_ms:.3f} ms on average "
          f"({found / problems:.0%} solvable, {total / problems:.1f} solutions on average)")


def cpu_seconds() -> float:
    """User + system time of this process and its finished workers: less sensitive to load than wall time."""
    return sum(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))


def peak_rss_mb(who: int) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-size", type=int, default=327_680)
    parser.add_argument("--test-size", type=int, default=1_024)
    parser.add_argument("--target-mode", default="expression")
    parser.add_argument("--difficulty", default="test")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-solver", action="store_true")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} (other work slows every figure)")
    if not args.skip_solver:
        bench_solver(4, 2000, 100)
        bench_solver(6, 30, 1000)

    config = CountdownConfig(train_size=args.train_size, test_size=args.test_size,
                             target_mode=args.target_mode, difficulty=args.difficulty)
    with tempfile.TemporaryDirectory() as out:
        start, cpu_start = time.perf_counter(), cpu_seconds()
        result = write_dataset(config, out, workers=args.workers)
        seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu_start
        sizes = {name: os.path.getsize(result[name]) / 2**20 for name in ("train", "test")}
    problems = args.train_size + args.test_size
    print(f"countdown {args.train_size:,} train + {args.test_size:,} test, target_mode={args.target_mode}, "
          f"difficulty={args.difficulty}, {args.workers} workers: {seconds:.1f} s, {problems / seconds:,.0f} problems/s "
          f"(train.parquet {sizes['train']:.1f} MiB); CPU time {cpu:.1f} s in all processes")
    print(f"peak memory: main process {peak_rss_mb(resource.RUSAGE_SELF):.0f} MiB, "
          f"largest worker {peak_rss_mb(resource.RUSAGE_CHILDREN):.0f} MiB")


if __name__ == "__main__":
    main()
