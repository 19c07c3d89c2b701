"""`python -m data_gen` refuses what it cannot do before generating, in one line, and leaves nothing
behind: an output folder it cannot write, an empty --out, more workers than cores, Ctrl-C."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import data_gen.__main__ as cli
from tinyzero.files import write_all_atomically

FILES = ("train.parquet", "test.parquet", "dataset_info.json")
SMALL = ["--train-size", "20", "--test-size", "5"]


@pytest.fixture
def no_generation(monkeypatch):
    """Fails the test if generation starts: the refusals below must come before it."""
    def generate(*args, **kwargs):
        raise AssertionError("generation started")

    monkeypatch.setattr(cli, "write_dataset", generate)
    monkeypatch.setattr(cli, "write_traces", generate)


@pytest.mark.parametrize(
    "command", [["countdown", *SMALL], ["multiply", *SMALL], ["traces", "countdown", "--size", "20"]], ids=["countdown", "multiply", "traces"]
)
@pytest.mark.parametrize(
    "out, message",
    [
        ("", "--out='' is empty: give a folder"),
        ("/proc/tinyzero-data", "--out='/proc/tinyzero-data' cannot be created in '/proc': "),
        ("/proc", "--out='/proc' is not writable: "),
        ("{file}", "--out='{file}' is a file: give a folder"),
        ("{file}/data", "--out='{file}/data' cannot be created: '{file}' is a file: give a folder"),
    ],
)
def test_an_output_folder_that_cannot_be_written_is_refused_before_generating(
    tmp_path, capsys, no_generation, command, out, message
):
    file = tmp_path / "notes.txt"
    file.write_text("keep me")
    out, message = out.format(file=file), message.format(file=file)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(SystemExit) as exit_:
        cli.main([*command, "--out", out])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err  # one line
    assert sorted(os.listdir(tmp_path)) == before and file.read_text() == "keep me"
    assert not os.path.exists("/proc/tinyzero-data")


def test_more_workers_than_cores_are_capped_and_named(tmp_path, capsys):
    cores = os.cpu_count() or 1
    assert cli.main(["countdown", "--out", str(tmp_path / "out"), "--workers", "1000", *SMALL]) == 0
    err = capsys.readouterr().err
    assert f"--workers 1000 is more than this machine's {cores} core(s); using {cores}" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(FILES)


def test_ctrl_c_says_so_in_one_line_keeps_old_files_and_removes_new_folders(tmp_path, capsys, monkeypatch):
    old = tmp_path / "old"
    assert cli.main(["multiply", "--out", str(old), *SMALL]) == 0
    before = {name: (old / name).read_bytes() for name in FILES}
    capsys.readouterr()

    def interrupted_write(config, out_dir, workers):
        """A real atomic write, interrupted in the middle of its first file."""
        def write(temp):
            temp.write_bytes(b"half a parquet file")
            raise KeyboardInterrupt

        write_all_atomically({Path(out_dir) / name: write for name in FILES})

    monkeypatch.setattr(cli, "write_dataset", interrupted_write)
    for out in (old, tmp_path / "new" / "deeper"):
        assert cli.main(["multiply", "--out", str(out), *SMALL]) == 130
        assert capsys.readouterr().err == "python -m data_gen multiply: interrupted, nothing written\n"
    assert sorted(os.listdir(old)) == sorted(FILES)  # no temporary file left
    assert {name: (old / name).read_bytes() for name in FILES} == before
    assert not (tmp_path / "new").exists()  # the folders this run created are gone again


def test_a_real_ctrl_c_with_worker_processes_is_one_line_and_exit_130(tmp_path):
    """SIGINT to the whole process group, as a terminal sends it, once generation is under way
    (the first progress line): the workers ignore it, the main process says what happened."""
    out = tmp_path / "out"
    process = subprocess.Popen(
        [sys.executable, "-m", "data_gen", "countdown", "--out", str(out), "--train-size", "400000", "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "TINYZERO_PROGRESS_SECONDS": "0"},  # a line per chunk: we know when it runs
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # not ignored, as under a shell's &
    )
    try:
        assert select.select([process.stderr], [], [], 300)[0], "no progress line in 300 s"
        first = process.stderr.readline()
        assert first.startswith("countdown problems:"), first
        os.killpg(process.pid, signal.SIGINT)
        rest = process.stderr.read()
        assert process.wait(timeout=120) == 130
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    lines = [line for line in rest.splitlines() if not line.startswith("countdown problems:")]
    assert lines == ["python -m data_gen countdown: interrupted, nothing written"], rest
    assert not out.exists()
