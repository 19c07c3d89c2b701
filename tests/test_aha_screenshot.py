"""benchmarks/aha_screenshot.py in a real headless Chromium, on the aha report of a synthetic dump.

Runs wherever Chromium is installed (CI installs Debian's chromium-headless-shell); elsewhere it
is skipped, except under CI, where a missing browser is a failure.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "aha_screenshot.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _browser():
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from aha_screenshot import find_browser
    finally:
        sys.path.remove(str(SCRIPT.parent))
    return find_browser()


BROWSER = _browser()
if BROWSER is None and os.environ.get("CI"):
    raise RuntimeError("CI must install Chromium (.ci/run: apt-get install chromium-headless-shell)")
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (apt-get install chromium-headless-shell)")


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    """The aha report (with plots) of a synthetic dump whose reflection starts at step 6."""
    root = tmp_path_factory.mktemp("aha-browser")
    for command in (
        ["tinyzero.aha.synthetic", str(root / "rollouts"), "--steps", "12", "--aha-step", "6", "--samples-per-step", "12", "--seed", "2"],
        ["tinyzero.aha", str(root / "rollouts"), "--out", str(root / "report")],
    ):
        subprocess.run([sys.executable, "-m", *command], check=True, capture_output=True, text=True)
    return root / "report"


def screenshot(report, out, *extra):
    done = subprocess.run([sys.executable, str(SCRIPT), str(report), "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=300)
    return done.returncode, json.loads(done.stdout), done.stderr


def test_report_renders_with_every_plot_and_no_error(report_dir, tmp_path):
    status, result, stderr = screenshot(report_dir, tmp_path / "shot.png")
    assert status == 0 and result["problems"] == [], stderr
    assert [image["alt"] for image in result["images"]] == ["reward_accuracy.png", "length.png", "behaviours.png"]
    assert all(image["width"] > 100 and image["height"] > 100 for image in result["images"])
    png = (tmp_path / "shot.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE)
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (1280, min(1600, result["page_height"]))


def test_broken_pages_are_reported(report_dir, tmp_path):
    html = (report_dir / "report.html").read_text(encoding="utf-8")
    broken = tmp_path / "report.html"
    # A plot that does not decode, a script error, a console error, and a request to the network.
    broken.write_text(html.replace("</body>", (
        "<img alt='broken.png' src='data:image/png;base64,AAAA'>"
        "<script>console.error('plot failed'); undefinedFunction();</script>"
        "<img alt='remote.png' src='http://127.0.0.1:9/x.png'></body>")), encoding="utf-8")
    status, result, stderr = screenshot(broken, tmp_path / "shot.png")
    assert status == 1
    problems = "\n".join(result["problems"])
    assert "image 'broken.png' did not load" in problems
    assert "console error: plot failed" in problems
    assert "undefinedFunction is not defined" in problems
    assert "network request from a page meant to be self-contained: http://127.0.0.1:9/x.png" in problems
    assert "problem: " in stderr


def test_a_report_without_plots_is_a_problem(tmp_path):
    rollouts = tmp_path / "rollouts"
    subprocess.run([sys.executable, "-m", "tinyzero.aha.synthetic", str(rollouts), "--steps", "4", "--aha-step", "2",
                    "--samples-per-step", "4"], check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "tinyzero.aha", str(rollouts), "--out", str(tmp_path / "report"), "--no-plots"],
                   check=True, capture_output=True)
    status, result, _ = screenshot(tmp_path / "report", tmp_path / "shot.png")
    assert status == 1 and any("no image on the page" in problem for problem in result["problems"])
