"""benchmarks/gpu_check.py runs end to end in its tiny CPU mode (the GPU run needs a GPU machine)."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_smoke_run_prints_every_row():
    result = subprocess.run([sys.executable, str(SCRIPT), "--smoke"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for row in (
        "training state after the update (actor fp32 + Adam; reference bf16 on the CPU)",
        "reference log-probs peak at 384 tokens (FSDP1, parameters offloaded)",
        "update peak at 384 tokens",
        "old log-probs + entropy peak at 384 tokens",
        "sdpa vs eager log-probs (bf16), max |diff|",
        "packed sdpa vs padded sdpa (bf16), max |diff|",
        "attention time: sdpa packed, 384-token micro-batches",
        "attention time: sdpa packed, 100-token micro-batches",  # the budget auto lowers it to
        "attention time: sdpa padded, 384-token micro-batches",
        "eval tokens/s (transformers backend, batch 2)",
    ):
        assert row in out, out
    assert "skipped" not in out and "OFF by" not in out  # nothing measured on CPU, so nothing flagged


def test_without_a_gpu_it_says_how_to_run():
    result = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120,
                            env={"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"})
    assert result.returncode != 0 and "no CUDA GPU visible" in result.stderr and "--smoke" in result.stderr
