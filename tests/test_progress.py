"""Long work shows progress (a bar on a terminal, plain lines otherwise) and refuses, before any
work, what the machine's memory cannot hold."""

import fcntl
import io
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios

import pytest

import tinyzero.progress
from data_gen import CountdownConfig, MultiplyConfig, write_dataset
from data_gen.dataset import check_fits_in_memory
from tinyzero.progress import GIB, Progress, check_memory


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_plain_lines_with_rate_and_time_left():
    clock, stream = Clock(), io.StringIO()
    progress = Progress(1000, "countdown problems", stream=stream, interval=10, clock=clock)
    clock.now += 5
    progress.update(100)
    assert stream.getvalue() == ""  # nothing before the first interval
    clock.now += 5
    progress.update(100)  # 200 in 10 s: 20/s, 800 left
    clock.now += 30
    progress.update(600)  # 800 in 40 s: 20/s, 200 left
    clock.now += 10
    progress.update(200)
    progress.close()
    assert stream.getvalue().splitlines() == [
        "countdown problems: 200 / 1,000 (20%), 20/s, about 40 s left",
        "countdown problems: 800 / 1,000 (80%), 20/s, about 10 s left",
        "countdown problems: 1,000 / 1,000 (100%), 20/s, done in 50 s",
    ]


def test_short_work_stays_silent():
    stream = io.StringIO()
    with Progress(10, "things", stream=stream) as progress:
        progress.update(10)
    assert stream.getvalue() == ""
    # Work that took an interval or more says it finished, even in one update.
    clock = Clock()
    with Progress(10, "things", stream=stream, interval=10, clock=clock) as progress:
        clock.now += 12
        progress.update(10)
    assert stream.getvalue() == "things: 10 / 10 (100%), 1/s, done in 12 s\n"


def test_the_interval_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("TINYZERO_PROGRESS_SECONDS", "2.5")
    assert Progress(1, "x", stream=io.StringIO()).interval == 2.5
    monkeypatch.setenv("TINYZERO_PROGRESS_SECONDS", "soon")
    with pytest.raises(ValueError, match="TINYZERO_PROGRESS_SECONDS='soon': give seconds"):
        Progress(1, "x", stream=io.StringIO())


def test_durations_read_naturally():
    progress = Progress(100_000, "rows", stream=io.StringIO(), clock=lambda: 0.0)
    progress.done = 10
    assert progress.line(1.0) == "rows: 10 / 100,000 (0%), 10/s, about 2 h 46 min left"
    progress.done = 50_000
    assert progress.line(100.0) == "rows: 50,000 / 100,000 (50%), 500/s, about 1 min 40 s left"
    progress.done = 0
    assert progress.line(1.0).endswith("time left unknown")


def run_in_terminal(code: str, columns: int = 100) -> str:
    """What a terminal of `columns` columns shows while `python -c code` runs in it."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdin, stdout and stderr are the terminal
        os.execv(sys.executable, [sys.executable, "-c", code])
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    out = b""
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, out.decode(errors="replace")
    return out.decode(errors="replace")


def test_a_terminal_gets_a_bar():
    shown = run_in_terminal(
        "import time\n"
        "from tinyzero.progress import Progress\n"
        "with Progress(20, 'step files') as progress:\n"
        "    for _ in range(20):\n"
        "        time.sleep(0.1)\n"
        "        progress.update(1)\n"
    )
    frames = [frame for frame in re.split(r"[\r\n]", shown) if frame.strip()]
    assert any(re.fullmatch(r"step files: +\d+%\|.*\| \d+/20 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+/s\]\s*", f) for f in frames), frames
    assert "\n" not in shown.strip("\r\n").replace("\r\n", "")  # redrawn in place, not line after line


def test_memory_check_names_both_figures_and_the_fix():
    check_memory(GIB, "a job", "do less", available=2 * GIB)
    with pytest.raises(ValueError, match=r"a job needs about 3.0 GiB of memory but this machine has 2.0 GiB available: do less"):
        check_memory(3 * GIB, "a job", "do less", available=2 * GIB)


def test_data_gen_refuses_what_memory_cannot_hold():
    with pytest.raises(ValueError) as refused:
        check_fits_in_memory(CountdownConfig(train_size=10**6, test_size=1000), workers=1, available=GIB)
    message = str(refused.value)
    assert message.startswith("countdown: train_size + test_size = 1,001,000 problems needs about 1.4 GiB")
    assert "1.0 GiB available: ask for at most about 629,145 problems here" in message
    # The largest request it names fits.
    check_fits_in_memory(MultiplyConfig(train_size=629_145 - 1000, test_size=1000), workers=1, available=GIB)


def test_data_gen_cli_refuses_a_huge_request_before_any_work(tmp_path):
    out = tmp_path / "huge"
    done = subprocess.run([sys.executable, "-m", "data_gen", "countdown", "--out", str(out), "--train-size", "100000000"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and not out.exists()
    assert re.search(r"100,001,024 problems needs about 1\d\d\.\d GiB of memory but this machine has [\d.]+ GiB "
                     r"available: ask for at most about [\d,]+ problems here", done.stderr), done.stderr


def test_data_gen_reports_progress_on_standard_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tinyzero.progress, "PLAIN_INTERVAL", 0.0)  # a line at every update
    config = CountdownConfig(train_size=9000, test_size=200, seed=4, difficulty="test")
    result = write_dataset(config, tmp_path, workers=1)
    captured = capsys.readouterr()
    assert json.loads(json.dumps(result))["counts"] == {"train": 9000, "test": 200}
    lines = captured.err.splitlines()
    problems = [line for line in lines if line.startswith("countdown problems: ")]
    assert problems[0].startswith("countdown problems: 4,096 / 9,200 (45%), ") and problems[0].endswith(" left")
    # (the second chunk repeats a few problems of the first: they are dropped, then topped up)
    assert re.match(r"countdown problems: 8,1\d\d / 9,200 \(89%\), ", problems[1]), lines
    assert problems[-1].startswith("countdown problems: 9,200 / 9,200 (100%), ") and "done in" in problems[-1]
    assert [line.split(":")[0] for line in lines[len(problems):]] == [
        "countdown difficulty, test split", "train.parquet rows written", "test.parquet rows written",
    ]
    assert captured.out == ""  # stdout stays for the JSON summary
    # Writing a file of several row groups reports too.
    write_dataset(MultiplyConfig(train_size=70_000, test_size=10, seed=1), tmp_path / "m", workers=1)
    lines = capsys.readouterr().err.splitlines()
    assert any(line.startswith("train.parquet rows written: 65,536 / 70,000 (94%)") for line in lines), lines


def test_aha_reports_progress_over_step_files(tmp_path, monkeypatch, capsys):
    from tinyzero.aha import analyse
    from tinyzero.aha.synthetic import write_synthetic_dump

    write_synthetic_dump(tmp_path / "rollouts", steps=4, aha_step=2, samples_per_step=4, seed=0)
    monkeypatch.setattr(tinyzero.progress, "PLAIN_INTERVAL", 0.0)
    analyse(tmp_path / "rollouts", examples=0)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in lines] == [
        "step files measured: 1 / 4 (25%)", "step files measured: 2 / 4 (50%)",
        "step files measured: 3 / 4 (75%)", "step files measured: 4 / 4 (100%)",
    ]
    assert "done in" in lines[-1]


def test_eval_refuses_responses_its_memory_cannot_hold(tiny_model_dir, tmp_path):
    data = write_dataset(CountdownConfig(train_size=2, test_size=4, seed=0), tmp_path / "data", workers=1)["test"]
    done = subprocess.run(
        [sys.executable, "-m", "tinyzero.eval", f"model={tiny_model_dir}", f"data={data}",
         f"output_dir={tmp_path / 'eval'}", "n=10000000", "temperature=0.7"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2 and not (tmp_path / "eval" / "metrics.json").exists()
    assert re.search(r"error: eval of 4 problems x n=10,000,000 x 1 setting\(s\), responses up to 1,024 tokens, "
                     r"needs about 267\.0 GiB of memory but this machine has [\d.]+ GiB available: evaluate fewer "
                     r"problems \(limit=N\)", done.stderr), done.stderr


def test_eval_memory_estimate_counts_every_budget():
    from omegaconf import OmegaConf

    from tinyzero.eval.app import check_eval_fits, estimated_memory
    from tinyzero.eval.config import EvalConfig, EvalConfigError

    cfg = OmegaConf.structured(EvalConfig(model="m", output_dir="o"))
    plain = estimated_memory(1000, cfg)
    assert plain == 1000 * 4096 + 1000 * (1024 * 6 + 1024)
    cfg.budget.thinking_tokens = [256, 512]
    assert estimated_memory(1000, cfg) == 1000 * 4096 + 1000 * ((256 + 16 + 128) * 6 + 1024 + (512 + 16 + 128) * 6 + 1024)
    check_eval_fits(1000, cfg, available=GIB)
    with pytest.raises(EvalConfigError, match="2 setting"):
        check_eval_fits(10**6, cfg, available=GIB)
