"""`python -m tinyzero.aha`: reading dumps, the aha step, and the report files."""

import csv
import inspect
import json
import math
import random
import re
import time
import tracemalloc

import pytest

from tinyzero.aha import analyse, changepoint, find_aha, find_step_files, fit_ramp, mean_shift, parse_ground_truth
from tinyzero.aha.__main__ import main
from tinyzero.aha.detectors import Span
from tinyzero.aha.reader import MEASURED_CHARS, Task, parse_line
from tinyzero.aha.report import write_atomic
from tinyzero.aha.synthetic import write_synthetic_dump
from tinyzero.rewards import compute_score

REQUIRED_COLUMNS = [
    "step", "reward_mean", "accuracy", "format_rate", "response_length_mean",
    "verification", "backtracking", "subgoal", "backward_chaining", "self_correction",
]


@pytest.fixture(scope="module")
def dump(tmp_path_factory):
    """30 steps, 24 responses each, reflection from step 12."""
    return write_synthetic_dump(tmp_path_factory.mktemp("rollouts"), steps=30, aha_step=12, samples_per_step=24, seed=1)


@pytest.fixture(scope="module")
def report(dump, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert main([str(dump), "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("aha_step, seed", [(8, 2), (20, 3)])
def test_the_aha_step_of_a_synthetic_dump_is_found_within_two_steps(tmp_path, aha_step, seed):
    dump = write_synthetic_dump(tmp_path, steps=30, aha_step=aha_step, samples_per_step=24, seed=seed)
    analysis = analyse(dump, examples=0)
    assert analysis.aha.step is not None and abs(analysis.aha.step - aha_step) <= 2, analysis.aha
    assert analysis.aha.confirmed
    assert analysis.aha.accuracy_after > analysis.aha.accuracy_before


def test_synthetic_dump_is_scored_as_tinyzeros_reward_scores_it(dump):
    for step_file in find_step_files(dump)[:3]:
        for line in open(step_file.path, encoding="utf-8"):
            record = json.loads(line)
            reward = compute_score("countdown", record["output"], record["gts"])
            assert (reward["score"], reward["acc"], reward["has_answer"]) == (
                record["score"], record["acc"], record["has_answer"])


def test_report_files_and_metrics_columns(report, dump):
    assert sorted(p.name for p in report.iterdir()) == [
        "aha.json", "behaviours.png", "length.png", "metrics.csv", "report.html", "reward_accuracy.png"]
    with open(report / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0])[:10] == REQUIRED_COLUMNS
    assert [int(r["step"]) for r in rows] == list(range(1, 31))
    for row in rows:
        for column in REQUIRED_COLUMNS[2:4] + REQUIRED_COLUMNS[5:]:
            assert 0.0 <= float(row[column]) <= 1.0
        assert int(row["responses"]) == 24
    for png in ("behaviours.png", "length.png", "reward_accuracy.png"):
        assert (report / png).read_bytes().startswith(b"\x89PNG")


def test_aha_json_evidence_points_at_real_transcripts(report, dump):
    aha = json.loads((report / "aha.json").read_text())
    assert abs(aha["step"] - 12) <= 2
    assert aha["reflection_rate"]["after"] > aha["reflection_rate"]["before"]
    assert aha["accuracy"]["after"] > aha["accuracy"]["before"]
    assert aha["responses"] == 30 * 24 and aha["malformed_lines"] == 0
    assert len(aha["examples"]) == 3
    for example in aha["examples"]:
        assert example["step"] >= aha["step"] and example["correct"]
        line = (dump / f"{example['step']}.jsonl").read_text().splitlines()[example["index"]]
        assert json.loads(line)["acc"] == 1.0
        assert set(example["behaviours"]) & {"verification", "backtracking", "self_correction"}


def test_report_html_is_one_self_contained_file(report):
    page = (report / "report.html").read_text(encoding="utf-8")
    assert page.count("src='data:image/png;base64,") == 3
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page).lower()
    for reference in ("http:", "https:", "//", "<script", "<link", "@import", "url(", "<iframe", "<object"):
        assert reference not in text, reference
    assert re.findall(r"src=['\"](?!data:)", page) == []
    assert "<mark class=" in page  # behaviour spans highlighted


def test_model_text_is_html_escaped(tmp_path):
    dump = tmp_path / "rollouts"
    write_synthetic_dump(dump, steps=4, aha_step=2, samples_per_step=4, seed=0)
    evil = {"input": "<img src=x onerror=alert(1)>", "output": "Let me verify: 1 + 1 = 2. <script>alert(1)</script>"
            " </think> <answer> 2 </answer>", "gts": {"target": 2, "numbers": [1, 1]}, "score": 1.0, "acc": 1.0}
    with open(dump / "3.jsonl", "a") as f:
        f.write(json.dumps(evil) + "\n")
    out = tmp_path / "out"
    assert main([str(dump), "--out", str(out), "--examples", "50", "--no-plots"]) == 0
    page = (out / "report.html").read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page and "<img src=x" not in page


def test_broken_lines_are_skipped_and_counted(tmp_path):
    dump = write_synthetic_dump(tmp_path / "rollouts", steps=5, aha_step=3, samples_per_step=6, seed=0)
    with open(dump / "2.jsonl", "ab") as f:
        f.write(b'{"output": "truncated by a crash\n')  # not JSON
        f.write(b"[1, 2, 3]\n")  # not an object
        f.write(b'{"input": "no response text", "score": 1.0}\n')
        f.write(b'{"output": "bad bytes \xff\xfe", "score": 0.0}\n')  # not UTF-8
        f.write(b"\n")  # blank lines are not counted
    out = tmp_path / "out"
    assert main([str(dump), "--out", str(out), "--no-plots"]) == 0
    aha = json.loads((out / "aha.json").read_text())
    assert aha["malformed_lines"] == 4 and aha["responses"] == 30
    rows = list(csv.DictReader(open(out / "metrics.csv")))
    assert [int(r["malformed_lines"]) for r in rows] == [0, 4, 0, 0, 0]
    assert "4 malformed line(s) skipped" in (out / "report.html").read_text()


def test_empty_folder_is_a_clear_error_and_writes_nothing(tmp_path, capsys):
    empty = tmp_path / "rollouts"
    empty.mkdir()
    out = tmp_path / "out"
    assert main([str(empty), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "rollout_data_dir" in err
    assert not out.exists()


def test_missing_folder_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "nowhere"
    assert main([str(missing), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and str(missing) in err
    assert not (tmp_path / "out").exists()


def test_folder_of_only_broken_lines_is_an_error(tmp_path, capsys):
    dump = tmp_path / "rollouts"
    dump.mkdir()
    (dump / "1.jsonl").write_text("not json\n{}\n")
    out = tmp_path / "out"
    assert main([str(dump), "--out", str(out)]) == 2
    assert "2 malformed line(s)" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize("content", [b"", b"\n\n", b"step,accuracy\n1,0.5\n"], ids=["empty", "blank", "csv"])
def test_a_file_in_place_of_the_folder_says_a_folder_was_expected(tmp_path, capsys, content):
    given = tmp_path / "metrics.csv"
    given.write_bytes(content)
    out = tmp_path / "out"
    assert main([str(given), "--out", str(out), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert str(given) in err and "rollout_data_dir" in err and "file" in err
    assert not out.exists()


def test_a_long_response_is_measured_on_its_first_characters():
    line = json.dumps({"output": "y" * (MEASURED_CHARS + 5), "score": 0.0}).encode()
    rollout = parse_line(line, step=1, index=0)
    assert len(rollout.response) == MEASURED_CHARS and rollout.cut == 5
    whole = parse_line(json.dumps({"output": "y" * MEASURED_CHARS, "score": 0.0}).encode(), step=1, index=0)
    assert len(whole.response) == MEASURED_CHARS and whole.cut == 0


def test_a_huge_marker_dense_response_is_cut_and_does_not_stall(tmp_path):
    """21 MB of nothing but verification markers, correct, so it is also shown as an example.
    Unbounded, the detectors alone take about 1.4 us a character (30 s here, in both passes) and
    the report's highlighting builds one set per character; cut, the whole run takes a second or two."""
    dump = write_synthetic_dump(tmp_path / "rollouts", steps=4, aha_step=2, samples_per_step=4, seed=0)
    huge = {"input": "p", "output": "Wait, let me verify. " * 1_000_000 + "<answer>1 + 1</answer>",
            "gts": {"target": 2, "numbers": [1, 1]}, "score": 1.0, "acc": 1.0}
    with open(dump / "2.jsonl", "w") as f:  # the step's only response
        f.write(json.dumps(huge) + "\n")
    out = tmp_path / "out"
    start = time.perf_counter()
    assert main([str(dump), "--out", str(out), "--no-plots", "--examples", "50"]) == 0
    seconds = time.perf_counter() - start
    assert seconds < 20, f"{seconds:.1f} s for a 21 MB response (bound: 20 s)"
    aha = json.loads((out / "aha.json").read_text())
    assert aha["cut_responses"] == 1 and aha["measured_chars"] == MEASURED_CHARS
    assert [int(r["cut_responses"]) for r in csv.DictReader(open(out / "metrics.csv"))] == [0, 1, 0, 0]
    page = (out / "report.html").read_text()
    assert f"1 response(s) cut to their first {MEASURED_CHARS:,} characters" in page
    assert len(page) < 20 * MEASURED_CHARS  # the transcript shows the measured part, not 21 MB


def test_reader_streams_one_step_at_a_time(dump, tmp_path):
    copy = tmp_path / "rollouts"
    copy.mkdir()
    for name in ("1.jsonl", "2.jsonl", "10.jsonl"):
        (copy / name).write_bytes((dump / name).read_bytes())
    (copy / "notes.txt").write_text("ignored")
    files = find_step_files(copy)
    assert [f.step for f in files] == [1, 2, 10]  # numeric, not lexicographic, order
    first = iter(files[0])
    assert inspect.isgenerator(first)
    next(first)
    # reading step 1 never touches the other step files
    (copy / "2.jsonl").unlink()
    (copy / "10.jsonl").unlink()
    assert sum(1 for _ in first) == 23


def test_memory_is_bounded_by_one_step_file(tmp_path):
    dump = write_synthetic_dump(tmp_path / "rollouts", steps=10, aha_step=5, samples_per_step=300, seed=0)
    total = sum(f.stat().st_size for f in dump.iterdir())
    one_step = max(f.stat().st_size for f in dump.iterdir())
    analyse(dump, examples=0)  # warm up imports and regex caches
    tracemalloc.start()
    analyse(dump, examples=3)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < one_step, (peak, one_step, total)  # far below the whole dump (10 steps)


def test_worker_processes_give_the_same_metrics(dump):
    assert analyse(dump, examples=0, workers=2).rows == analyse(dump, examples=0).rows


def test_dump_without_reward_extras_falls_back_to_the_score(tmp_path):
    """verl's default v1 trainer dumps only the score: acc and has_answer come from it."""
    with_extras = analyse(write_synthetic_dump(tmp_path / "a", steps=6, aha_step=3, seed=5), examples=0)
    without = analyse(write_synthetic_dump(tmp_path / "b", steps=6, aha_step=3, seed=5, reward_extras=False), examples=0)
    assert with_extras.rows == without.rows


def test_eval_samples_jsonl_is_read_as_one_step(tmp_path):
    rows = [
        {"problem": i, "sample": 0, "budget": None, "prompt": "Using the numbers [19, 36, 55, 7] ...",
         "ground_truth": {"target": 65, "numbers": [19, 36, 55, 7]}, "response": response,
         "score": compute_score("countdown", response, {"target": 65, "numbers": [19, 36, 55, 7]})["score"],
         "response_tokens": 30, "thinking_tokens": 20}
        for i, response in enumerate([
            "55 + 36 = 91, 91 - 19 = 72, 72 - 7 = 65. Let me verify: 55 + 36 = 91. </think> <answer> 55 + 36 - 19 - 7 </answer>",
            "55 + 7 = 62. </think> <answer> 55 + 7 </answer>",
        ])
    ]
    folder = tmp_path / "eval"
    folder.mkdir()
    (folder / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    analysis = analyse(folder)
    assert len(analysis.rows) == 1 and analysis.rows[0]["accuracy"] == 0.5
    assert analysis.rows[0]["verification"] == 0.5 and analysis.rows[0]["format_rate"] == 1.0
    assert analysis.aha.step is None and "change-point" in analysis.aha.reason


@pytest.mark.parametrize(
    "gts, task",
    [
        ({"target": 65, "numbers": [19, 36, 55, 7]}, Task("countdown", 65, (19, 36, 55, 7))),
        ({"target": 65, "numbers": "[19 36 55  7]"}, Task("countdown", 65, (19, 36, 55, 7))),  # legacy numpy str
        ('{"target": 65, "numbers": [19, 36]}', Task("countdown", 65, (19, 36))),
        ({"product": 10063, "factors": [347, 29]}, Task("multiply", 10063, (347, 29))),
        (10063, Task("multiply", 10063, ())),
        (None, None),
    ],
)
def test_ground_truth_shapes(gts, task):
    assert parse_ground_truth(gts) == task


def test_mean_shift_finds_the_jump():
    assert mean_shift([0.0, 0.1, 0.0, 0.1, 0.6, 0.7, 0.6, 0.8]) == 4
    assert mean_shift([0.1, 0.2, 0.3]) is None  # too short to split


def _rows(reflection, accuracy, responses=64):
    """Metrics rows: each step's rates are shares of `responses` (the significance test's counts)."""
    zeros = dict.fromkeys(REQUIRED_COLUMNS[5:], 0.0)
    return [{**zeros, "step": i + 1, "reflection": r, "accuracy": a, "responses": responses}
            for i, (r, a) in enumerate(zip(reflection, accuracy))]


def test_aha_needs_reflection_to_rise_and_accuracy_to_confirm_it():
    flat = find_aha(_rows([0.1] * 8, [0.2] * 8))
    assert flat.step is None and "does not rise" in flat.reason
    falling = find_aha(_rows([0.6] * 4 + [0.1] * 4, [0.2] * 8))
    assert falling.step is None
    unconfirmed = find_aha(_rows([0.0] * 4 + [0.7] * 4, [0.5] * 4 + [0.3] * 4))
    assert unconfirmed.step == 5 and not unconfirmed.confirmed
    confirmed = find_aha(_rows([0.0] * 4 + [0.7] * 4, [0.2] * 4 + [0.6] * 4))
    assert confirmed.step == 5 and confirmed.confirmed


# --- Where the rise begins: the ramp fit -------------------------------------------------------


def _ramp(steps, first_raised, ramp_end, low=0.05, high=0.65):
    """low up to first_raised - 1, a straight climb reaching high at ramp_end, then high."""
    span = ramp_end - first_raised + 1
    return [low + (high - low) * min(1.0, max(0, step - first_raised + 1) / span) for step in range(1, steps + 1)]


def test_a_gradual_ramp_is_reported_where_it_begins_and_ends_not_mid_ramp():
    reflection = _ramp(40, first_raised=11, ramp_end=25)
    accuracy = [0.1 + r / 2 for r in reflection]
    aha = find_aha(_rows(reflection, accuracy))
    assert (aha.step, aha.ramp_end) == (11, 25) and aha.confirmed
    assert aha.fit["low"] == pytest.approx(0.05) and aha.fit["high"] == pytest.approx(0.65)
    assert aha.reflection_before == pytest.approx(0.05) and aha.reflection_after == pytest.approx(0.65)
    # The single mean-shift split this replaces lands in the middle of the ramp.
    assert 16 <= mean_shift(reflection) + 1 <= 20


def test_a_sudden_jump_starts_and_ends_at_the_same_step():
    aha = find_aha(_rows([0.0] * 4 + [0.7] * 4, [0.2] * 4 + [0.6] * 4))
    assert aha.step == aha.ramp_end == 5
    jump_then_climb = [0.03] * 9 + [0.4 + 0.4 * i / 30 for i in range(31)]  # the synthetic dump's default shape
    aha = find_aha(_rows(jump_then_climb, [0.5] * 40))
    assert aha.step == 10 and aha.fit["start"] == pytest.approx(0.4) and aha.ramp_end == 40


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_noisy_ramp_is_found_within_two_steps(seed):
    rng = random.Random(seed)
    # 64 responses a step: binomial noise of about 0.05, the size of one step of the climb (0.04)
    reflection = [sum(rng.random() < p for _ in range(64)) / 64 for p in _ramp(40, first_raised=10, ramp_end=24)]
    aha = find_aha(_rows(reflection, reflection))
    assert abs(aha.step - 10) <= 2 and abs(aha.ramp_end - 24) <= 2, aha.as_json()


@pytest.mark.parametrize("seed", [0, 1])
def test_a_synthetic_dump_with_a_gradual_rise(tmp_path, seed):
    dump = write_synthetic_dump(tmp_path, steps=40, aha_step=10, samples_per_step=32, seed=seed, ramp=15)
    aha = analyse(dump, examples=0).aha
    assert abs(aha.step - 10) <= 2 and abs(aha.ramp_end - 24) <= 2 and aha.confirmed, aha.as_json()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_noise_without_a_rise_is_no_aha_moment(seed):
    rng = random.Random(seed)
    reflection = [sum(rng.random() < 0.2 for _ in range(32)) / 32 for _ in range(40)]
    aha = find_aha(_rows(reflection, reflection, responses=32))
    assert aha.step is None and aha.ramp_end is None
    assert "within its noise" in aha.reason or "does not rise" in aha.reason


def test_the_fit_is_the_least_squares_one_over_every_pair_of_knots():
    """Against a brute-force least-squares fit of each curve shape at every pair of knots."""
    import numpy as np

    def design(x, s, e, jump):
        rows = []
        for i, xi in enumerate(x):
            origin = x[s + 1] if jump else x[s]
            ramp = 0.0 if i <= s else 1.0 if i >= e else (xi - origin) / (x[e] - origin)
            rows.append([1.0, float(i > s), ramp] if jump else [1.0, ramp])
        return np.array(rows)

    def sse(x, y, s, e, jump):
        matrix = design(x, s, e, jump)
        coefficients = np.linalg.lstsq(matrix, np.array(y), rcond=None)[0]
        return float(((matrix @ coefficients - y) ** 2).sum())

    rng = random.Random(4)
    for _ in range(20):
        n = rng.randint(7, 12)
        x = sorted(rng.sample(range(1, 50), n))  # uneven steps: a dump with gaps
        y = [rng.random() for _ in x]
        pairs = [(s, e) for s in range(1, n - 2) for e in range(s + 1, n) if not (e == s + 1 and n - e < 2)]
        ramp = min(sse(x, y, s, e, False) for s, e in pairs)
        jump = min(sse(x, y, s, e, True) for s, e in pairs if e > s + 1)
        with_jump = n * math.log(ramp / jump) > changepoint.JUMP_PENALTY * math.log(n)
        fit = fit_ramp(y, x)
        assert sse(x, y, fit.last_low, fit.first_high, with_jump) == pytest.approx(jump if with_jump else ramp, abs=1e-9)
        assert fit.noise == pytest.approx(math.sqrt((jump if with_jump else ramp) / (n - (5 if with_jump else 4))))
    assert fit_ramp([0.1, 0.2, 0.3]) is None  # too short


def test_synthetic_ramp_option(tmp_path, capsys):
    from tinyzero.aha.synthetic import main as synthetic_main

    assert synthetic_main([str(tmp_path), "--steps", "12", "--aha-step", "4", "--ramp", "5", "--samples-per-step", "2"]) == 0
    assert "reflection rising from step 4 to 8" in capsys.readouterr().out
    with pytest.raises(ValueError, match="ramp=-1 must be 0"):
        write_synthetic_dump(tmp_path, steps=12, aha_step=4, ramp=-1)


def test_lengths_in_tokens_with_a_tokenizer(tmp_path, tiny_model_dir):
    dump = write_synthetic_dump(tmp_path / "rollouts", steps=4, aha_step=2, samples_per_step=4, seed=0)
    out = tmp_path / "out"
    assert main([str(dump), "--out", str(out), "--no-plots", "--tokenizer", str(tiny_model_dir)]) == 0
    assert json.loads((out / "aha.json").read_text())["length_unit"] == "tokens"
    in_tokens = [float(r["response_length_mean"]) for r in csv.DictReader(open(out / "metrics.csv"))]
    in_chars = [r["response_length_mean"] for r in analyse(dump, examples=0).rows]
    assert all(0 < t < c for t, c in zip(in_tokens, in_chars))


def test_help_and_usage_errors(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    assert "ROLLOUT_DIR" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        main(["somewhere"])  # no --out
    assert exit_.value.code == 2


def test_evaluate_detectors_prints_the_figures(capsys):
    assert main(["--evaluate-detectors"]) == 0
    out = capsys.readouterr().out
    assert "precision" in out and "heldout" in out and "self_correction" in out


def test_outputs_are_written_atomically(report, tmp_path):
    assert not [p for p in report.iterdir() if p.name.startswith(".")]  # no temporary files left
    with pytest.raises(TypeError):
        write_atomic(tmp_path / "metrics.csv", "not bytes")  # fails half-way through the write
    assert list(tmp_path.iterdir()) == []  # neither a partial file nor a temporary one


# --- The verdict: significant, sustained and not circular --------------------------------------


def _binomial_rates(rng, probabilities, responses):
    return [sum(rng.random() < p for _ in range(responses)) / responses for p in probabilities]


def test_a_flat_series_with_one_high_last_step_is_not_confirmed():
    """The reported case: reflection 0.8-7.8% for 20 steps of 128 responses, 13.3% at step 21 alone,
    accuracy higher there too. Whatever the p-value says of one point, one step is no moment."""
    rng = random.Random(7)
    reflection = _binomial_rates(rng, [0.035] * 20, 128) + [17 / 128]
    accuracy = [0.48] * 20 + [0.61]
    aha = find_aha(_rows(reflection, accuracy, responses=128))
    assert not aha.confirmed, aha.as_json()
    assert aha.verdict in ("still rising at the end: not confirmed", f"rise not significant (p = {aha.p_value:.3f})")
    # Without any noise the spike is as significant as a test can say, and the hold rule refuses it.
    exact = find_aha(_rows([0.035] * 20 + [0.133], accuracy, responses=128))
    assert exact.p_value < changepoint.ALPHA and exact.held_steps < changepoint.MIN_HOLD
    assert not exact.confirmed and exact.verdict == "still rising at the end: not confirmed"


def test_a_high_last_step_in_a_dump_is_not_an_aha_in_aha_json(tmp_path):
    """End to end: reflection only in the last step's responses, accuracy up with it."""
    dump = write_synthetic_dump(tmp_path / "rollouts", steps=12, aha_step=12, samples_per_step=48, seed=4)
    out = tmp_path / "out"
    assert main([str(dump), "--out", str(out), "--no-plots"]) == 0
    aha = json.loads((out / "aha.json").read_text())
    assert aha["confirmed"] is False
    assert aha["verdict"] == "still rising at the end: not confirmed"
    assert 0 < aha["p_value"] < changepoint.ALPHA
    assert aha["significance"]["replicates"] == changepoint.REPLICATES and aha["significance"]["min_hold"] == 3


def test_a_ramp_starting_at_step_31_is_still_found_and_confirmed(tmp_path):
    dump = write_synthetic_dump(tmp_path, steps=60, aha_step=31, samples_per_step=32, seed=0, ramp=10)
    aha = analyse(dump, examples=0).aha
    assert 29 <= aha.step <= 34 and aha.confirmed, aha.as_json()
    assert aha.verdict == f"aha at step {aha.step} (p = {aha.p_value:.3f})" and aha.p_value < changepoint.ALPHA
    rng = random.Random(5)
    reflection = _binomial_rates(rng, _ramp(60, first_raised=31, ramp_end=40), 64)
    rows = find_aha(_rows(reflection, [0.2 + r / 2 for r in reflection]))
    assert 29 <= rows.step <= 34 and rows.confirmed, rows.as_json()


def test_the_planted_dumps_keep_their_step_and_are_confirmed_as_significant(dump):
    aha = analyse(dump, examples=0).aha
    assert aha.step == 12 and aha.confirmed  # the README's example: found at the planted step
    assert aha.verdict == "aha at step 12 (p = 0.001)"  # the test's floor: no simulated flat run fits as well
    assert aha.confirmation["source"] == "training_accuracy"
    assert aha.held_steps == 19  # a jump that climbs on holds from the jump


@pytest.mark.parametrize("seed", range(20))
def test_flat_binomial_series_are_rarely_significant(seed):
    rng = random.Random(100 + seed)
    reflection = _binomial_rates(rng, [0.1] * 24, 64)
    aha = find_aha(_rows(reflection, reflection))
    # A rise is found in about ALPHA of flat runs: 1% here, so none of these 20 seeded ones.
    assert aha.verdict == "no rise" or aha.verdict.startswith("rise not significant (p = "), aha.as_json()


def test_the_p_value_is_seeded_and_respects_each_steps_number_of_responses():
    first = find_aha(_rows(_binomial_rates(random.Random(3), [0.1] * 15 + [0.3] * 5, 32), [0.5] * 20))
    again = find_aha(_rows(_binomial_rates(random.Random(3), [0.1] * 15 + [0.3] * 5, 32), [0.5] * 20))
    assert first.p_value == again.p_value
    # The same counts at the end are telling from 300 responses a step, chance from 3.
    early = [30, 29, 31, 30, 28, 32, 30, 31, 29, 30]
    late = [1, 2, 1, 1]

    def rows(late_responses):
        counts = [(c, 300) for c in early] + [(round(k * late_responses / 3), late_responses) for k in late]
        return [{**_rows([c / n], [0.5])[0], "step": i + 1, "responses": n} for i, (c, n) in enumerate(counts)]

    many, few = find_aha(rows(300)), find_aha(rows(3))
    assert many.p_value < changepoint.ALPHA < few.p_value, (many.p_value, few.p_value)


def _write_dump(folder, steps, response):
    """A dump of `steps` steps of 16 responses, response(step, i) -> text, for the target 65."""
    folder.mkdir(parents=True, exist_ok=True)
    gts = {"target": 65, "numbers": [19, 36, 55, 7]}
    for step in range(1, steps + 1):
        lines = []
        for i in range(16):
            text = response(step, i)
            reward = compute_score("countdown", text, gts)
            lines.append(json.dumps({"input": "", "output": text, "gts": gts, "score": reward["score"], "acc": reward["acc"]}))
        (folder / f"{step}.jsonl").write_text("\n".join(lines) + "\n")
    return folder


RIGHT, WRONG = "55 + 36 - 19 - 7", "55 + 36 - 19 + 7"


def _accuracy_rises(step, i):
    """2 of 16 right up to step 8, 14 of 16 from step 9 on."""
    return i < (2 if step <= 8 else 14)


def test_a_behaviour_that_fires_only_on_correct_answers_cannot_confirm_by_itself(tmp_path):
    # Every response corrects itself in words, right or wrong: self-correction that pays off rises
    # with accuracy, the reflection rate (its markers over all responses) stays flat.
    def corrected(step, i):
        answer = RIGHT if _accuracy_rises(step, i) else WRONG
        return f"55 + 19 = 74, 74 - 7 = 67. That's 67, not 65. </think> <answer> {answer} </answer>"

    analysis = analyse(_write_dump(tmp_path / "marked", 16, corrected), examples=0)
    aha = analysis.aha
    assert aha.step is None and not aha.confirmed and aha.verdict == "no rise", aha.as_json()
    assert [r["reflection"] for r in analysis.rows] == [1.0] * 16
    assert analysis.rows[-1]["self_correction"] > analysis.rows[0]["self_correction"]  # it does rise

    # A plugged-in detector that fires on every right answer and says it reads correctness.
    class RightAnswers:
        behaviour = "verification"
        reads_correctness = True

        def find(self, rollout):
            return [Span(0, 1, self.behaviour)] if rollout.correct else []

    def plain(step, i):
        return f"55 + 36 = 91. </think> <answer> {RIGHT if _accuracy_rises(step, i) else WRONG} </answer>"

    analysis = analyse(_write_dump(tmp_path / "plain", 16, plain), detectors=[RightAnswers()], examples=0)
    assert analysis.rows[-1]["verification"] == 14 / 16 and analysis.aha.verdict == "no rise"


def test_garble_before_a_right_answer_is_no_aha(tmp_path):
    """The tiny model's "1 * 11 = 1. That reaches ." before right answers: a false equation
    corrects nothing, so accuracy rising no longer drags the reflection rate up with it."""
    def garble(step, i):
        return f"55 * 1 = 5. That reaches . </think> <answer> {RIGHT if _accuracy_rises(step, i) else WRONG} </answer>"

    analysis = analyse(_write_dump(tmp_path / "rollouts", 16, garble), examples=0)
    assert all(r["self_correction"] == 0 and r["reflection"] == 0 for r in analysis.rows)
    assert analysis.aha.verdict == "no rise"


def _write_validations(folder, accuracies, problems=48):
    """verl's validation dumps: one STEP.jsonl per validation, `acc` per held-out problem."""
    folder.mkdir(parents=True)
    gts = {"target": 65, "numbers": [19, 36, 55, 7]}
    for step, accuracy in accuracies.items():
        right = round(accuracy * problems)
        lines = [json.dumps({"input": "", "output": f"</think> <answer> {RIGHT if i < right else WRONG} </answer>",
                             "gts": gts, "score": 1.0 if i < right else 0.1, "acc": float(i < right)})
                 for i in range(problems)]
        (folder / f"{step}.jsonl").write_text("\n".join(lines) + "\n")


def test_held_out_accuracy_from_the_validation_dumps_decides(tmp_path):
    run = tmp_path / "run"
    dump = write_synthetic_dump(run / "rollouts", steps=30, aha_step=12, samples_per_step=24, seed=1)
    _write_validations(run / "validation", {0: 0.375, 20: 0.3125})  # the reported run: held-out accuracy fell
    out = tmp_path / "out"
    assert main([str(dump), "--out", str(out), "--no-plots"]) == 0  # validation/ beside rollouts/ is found
    aha = json.loads((out / "aha.json").read_text())
    assert aha["confirmed"] is False and aha["step"] == 12
    assert aha["verdict"] == "rise at step 12 (p = 0.001), not confirmed: held-out accuracy does not rise"
    assert aha["confirmation"]["source"] == "held_out_accuracy"
    assert aha["confirmation"]["validation_steps"] == {"before": [0], "after": [20]}
    assert aha["validation_dir"] == str(run / "validation")
    assert aha["accuracy"]["after"] > aha["accuracy"]["before"]  # training accuracy alone would have confirmed it

    rising = tmp_path / "rising"
    _write_validations(rising, {0: 0.25, 20: 0.5})
    confirmed = analyse(dump, examples=0, validation_dir=rising).aha
    assert confirmed.confirmed and confirmed.verdict == "aha at step 12 (p = 0.001)"
    # validations on one side of the rise only: training accuracy decides, and the report says why
    early = tmp_path / "early"
    _write_validations(early, {0: 0.25})
    fallback = analyse(dump, examples=0, validation_dir=early).aha
    assert fallback.confirmed and fallback.confirmation["source"] == "training_accuracy"
    assert "validations at step(s) 0: none both before step 12 and from step 12 on" in fallback.confirmation["description"]


def test_validation_folder_option_is_checked_first(tmp_path, capsys):
    dump = write_synthetic_dump(tmp_path / "rollouts", steps=4, aha_step=2, samples_per_step=4, seed=0)
    (tmp_path / "empty").mkdir()
    for bad in (tmp_path / "nowhere", tmp_path / "empty"):
        with pytest.raises(SystemExit) as exit_:
            main([str(dump), "--out", str(tmp_path / "out"), "--validation", str(bad)])
        assert exit_.value.code == 2
        assert f"--validation {str(bad)!r} is not a folder of STEP.jsonl files" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_report_shows_the_verdict_the_rule_and_the_binomial_band(report):
    rows = list(csv.DictReader(open(report / "metrics.csv")))
    for row in rows:
        assert float(row["reflection_low"]) <= float(row["reflection"]) <= float(row["reflection_high"])
        assert float(row["reflection_high"]) - float(row["reflection_low"]) > 0.1  # 24 responses: a wide band
    page = (report / "report.html").read_text()
    assert "Verdict: <b>aha at step 12 (p = 0.001)</b>" in page
    assert "reflection (95% band)" in page and "p &lt; 0.01 from 999 simulated runs" in page
    assert "training accuracy 0.208 -&gt; 0.596" in page  # which confirmation it used
    aha = json.loads((report / "aha.json").read_text())
    assert (aha["verdict"], aha["p_value"], aha["confirmation"]["source"]) == (
        "aha at step 12 (p = 0.001)", 0.001, "training_accuracy")


def test_rows_without_response_counts_are_refused():
    rows = [{k: v for k, v in row.items() if k != "responses"} for row in _rows([0.1] * 8, [0.2] * 8)]
    with pytest.raises(ValueError, match="metrics row of step 1 has no `responses`"):
        find_aha(rows)
