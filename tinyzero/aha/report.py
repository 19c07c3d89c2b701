"""Write the analysis: metrics.csv, aha.json, PNG plots and one self-contained report.html.

Everything is rendered in memory first, then each file is written to a temporary name in the
output folder and renamed, so a failure never leaves a partial file behind. The HTML page has no
external reference at all (no script, font, stylesheet or link): plots are base64 data URIs and
model text is HTML-escaped.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from pathlib import Path

from tinyzero.aha.analysis import Analysis, Example
from tinyzero.aha.changepoint import REPLICATES, significance_rule
from tinyzero.aha.detectors import BEHAVIOURS
from tinyzero.aha.metrics import COLUMNS
from tinyzero.aha.reader import MEASURED_CHARS
from tinyzero.files import write_atomically

PLOTS = ("reward_accuracy.png", "length.png", "behaviours.png")
COLOURS = {
    "verification": "#1f77b4",
    "backtracking": "#d62728",
    "subgoal": "#2ca02c",
    "backward_chaining": "#9467bd",
    "self_correction": "#ff7f0e",
}


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file beside path, then rename it into place."""
    write_atomically(path, lambda temp: temp.write_bytes(data))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def metrics_csv(rows: list[dict]) -> str:
    extra = sorted({key for row in rows for key in row} - set(COLUMNS))  # a plugged-in detector's behaviour
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*COLUMNS, *extra])
    for row in rows:
        writer.writerow([_cell(row.get(column, "")) for column in (*COLUMNS, *extra)])
    return buffer.getvalue()


def aha_json(analysis: Analysis) -> str:
    document = analysis.aha.as_json()
    document.update(
        source=analysis.source,
        steps=len(analysis.rows),
        responses=analysis.responses,
        malformed_lines=analysis.malformed_lines,
        cut_responses=analysis.cut_responses,
        measured_chars=MEASURED_CHARS,
        length_unit=analysis.length_unit,
        validation_dir=analysis.validation_dir,
    )
    return json.dumps(document, indent=2) + "\n"


def render_plots(analysis: Analysis) -> dict[str, bytes]:
    """The three PNG plots. matplotlib comes with the `train` extra: imported only here."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    rows = analysis.rows
    steps = [r["step"] for r in rows]
    aha_step, ramp_end = analysis.aha.step, analysis.aha.ramp_end

    marker = f"aha step {aha_step} (rise begins)" if analysis.aha.confirmed else f"rise begins, step {aha_step} (no aha)"

    def finish(fig, ax, ylabel: str) -> bytes:
        if aha_step is not None:
            ax.axvline(aha_step, color="black", linestyle="--", linewidth=1, label=marker)
            if ramp_end is not None and ramp_end > aha_step:
                ax.axvspan(aha_step, ramp_end, color="black", alpha=0.04, label=f"rise, to step {ramp_end}")
        ax.set_xlabel("training step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        plt.close(fig)
        return buffer.getvalue()

    plots = {}
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot(steps, [r["reward_mean"] for r in rows], label="reward mean")
    ax.plot(steps, [r["accuracy"] for r in rows], label="accuracy")
    ax.plot(steps, [r["format_rate"] for r in rows], label="format rate", alpha=0.6)
    plots["reward_accuracy.png"] = finish(fig, ax, "per step")

    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot(steps, [r["response_length_mean"] for r in rows], label="response length, mean")
    ax.plot(steps, [r["response_length_p90"] for r in rows], label="response length, p90", alpha=0.6)
    ax.plot(steps, [r["thinking_length_mean"] for r in rows], label="thinking length, mean")
    plots["length.png"] = finish(fig, ax, analysis.length_unit)

    fig, ax = plt.subplots(figsize=(7, 3.6))
    for behaviour in BEHAVIOURS:
        ax.plot(steps, [r[behaviour] for r in rows], label=behaviour, color=COLOURS[behaviour])
    # The reflection rate with the band sampling alone moves it in, so that a one-step spike shows
    # for what it is, and the fit the verdict rests on.
    ax.fill_between(steps, [r["reflection_low"] for r in rows], [r["reflection_high"] for r in rows],
                    color="#8c564b", alpha=0.25, linewidth=0, label="reflection, 95% binomial band")
    ax.plot(steps, [r["reflection"] for r in rows], label="reflection (any of V, B, SC markers)", color="black", alpha=0.6)
    if analysis.aha.fitted:
        ax.plot(steps, analysis.aha.fitted, color="black", linestyle=":", linewidth=1.5, label="flat-ramp-flat fit")
    ax.set_ylim(-0.02, 1.02)
    plots["behaviours.png"] = finish(fig, ax, "share of responses")
    return plots


def highlight(text: str, spans: dict) -> str:
    """HTML-escaped text with each character run marked by the behaviours whose spans cover it."""
    cover: list[set[str]] = [set() for _ in text]
    for behaviour, found in spans.items():
        for span in found:
            for i in range(max(0, span.start), min(len(text), span.end)):
                cover[i].add(behaviour)
    parts, start = [], 0
    for i in range(1, len(text) + 1):
        if i == len(text) or cover[i] != cover[start]:
            chunk = html.escape(text[start:i])
            if cover[start]:
                names = sorted(cover[start], key=lambda b: BEHAVIOURS.index(b) if b in BEHAVIOURS else 99)
                classes = " ".join(f"b-{html.escape(n)}" for n in names)
                parts.append(f'<mark class="{classes}" title="{html.escape(", ".join(names))}">{chunk}</mark>')
            else:
                parts.append(chunk)
            start = i
    return "".join(parts)


def _transcript(example: Example, title: str) -> str:
    r = example.rollout
    behaviours = ", ".join(example.behaviours) or "none detected"
    return (
        f"<section class='example'><h3>{html.escape(title)}</h3>"
        f"<p class='meta'>step {r.step}, line {r.index} &middot; "
        f"{'correct' if r.correct else 'not correct'} &middot; score {_cell(r.score)} &middot; "
        f"behaviours: {html.escape(behaviours)}</p>"
        f"<details><summary>prompt</summary><pre>{html.escape(r.prompt)}</pre></details>"
        f"<pre>{highlight(r.response, example.spans)}</pre></section>"
    )


_STYLE = """
body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.85em}td,th{border:1px solid #ddd;padding:2px 6px;text-align:right}
pre{white-space:pre-wrap;background:#f7f7f7;padding:.6em;border-radius:4px}
.meta{color:#555;font-size:.9em}.aha{font-size:1.2em}img{max-width:100%}
mark{border-radius:2px;padding:0 1px}
""" + "".join(f"mark.b-{b},.legend .b-{b}{{background:{c}33;border-bottom:2px solid {c}}}\n" for b, c in COLOURS.items())


def report_html(analysis: Analysis, plots: dict[str, bytes]) -> str:
    aha = analysis.aha
    esc = html.escape
    out = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        "<title>tinyzero aha report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Where the aha moment happened</h1>",
        f"<p class='meta'>source {esc(analysis.source)} &middot; {len(analysis.rows)} steps &middot; "
        f"{analysis.responses} responses &middot; {analysis.malformed_lines} malformed line(s) skipped "
        f"&middot; {analysis.cut_responses} response(s) cut to their first {MEASURED_CHARS:,} characters "
        f"&middot; lengths in {esc(analysis.length_unit)}</p>",
    ]
    out.append(f"<p class='aha'>Verdict: <b>{esc(aha.verdict)}</b></p><p>{esc(aha.reason)}.</p>")
    if aha.step is not None:
        rise = f"the rise begins at step {aha.step} and ends at step {aha.ramp_end}" if aha.ramp_end != aha.step \
            else f"a sudden jump at step {aha.step}"
        held = f", its risen level held {aha.held_steps} step(s)" if aha.held_steps is not None else ""
        out.append(f"<p>Reflection: {rise}{held}.</p>")
        if aha.confirmation:
            out.append(f"<p>Confirmation from {esc(aha.confirmation['description'])}.</p>")
        out.append("<table><tr><th></th><th>before the rise</th><th>at its risen level</th></tr>")
        out.append(f"<tr><th>reflection rate</th><td>{aha.reflection_before:.3f}</td><td>{aha.reflection_after:.3f}</td></tr>")
        out.append(f"<tr><th>training accuracy</th><td>{aha.accuracy_before:.3f}</td><td>{aha.accuracy_after:.3f}</td></tr>")
        if aha.confirmation.get("source") == "held_out_accuracy":
            out.append(f"<tr><th>held-out accuracy</th><td>{aha.confirmation['before']:.3f}</td>"
                       f"<td>{aha.confirmation['after']:.3f}</td></tr>")
        for b in BEHAVIOURS:
            out.append(f"<tr><th>{b}</th><td>{aha.before[b]:.3f}</td><td>{aha.after[b]:.3f}</td></tr>")
        out.append("</table>")
    out.append(f"<p class='meta'>{esc(significance_rule(aha.replicates or REPLICATES))}</p>")
    if plots:
        out.append("<h2>Curves</h2>")
        for name, png in plots.items():
            data = base64.b64encode(png).decode("ascii")
            out.append(f"<p><img alt='{esc(name)}' src='data:image/png;base64,{data}'></p>")
    out.append("<h2>Transcripts</h2><p class='legend'>Highlighted: " + " ".join(
        f"<mark class='b-{b}'>{b}</mark>" for b in BEHAVIOURS) + "</p>")
    if analysis.contrast is not None:
        out.append(_transcript(analysis.contrast, "Before the aha step"))
    for i, example in enumerate(analysis.examples, 1):
        out.append(_transcript(example, f"Reflection that pays off #{i}"))
    if not analysis.examples:
        out.append("<p>No reflective response reached the right answer.</p>")
    out.append("<h2>Per-step metrics</h2><table><tr>")
    shown = ("step", "reward_mean", "accuracy", "format_rate", "response_length_mean", *BEHAVIOURS)
    out.append("".join(f"<th>{c}</th>" for c in shown) + "<th>reflection (95% band)</th><th>responses</th></tr>")
    for row in analysis.rows:
        band = f"{row['reflection']:.3f} ({row['reflection_low']:.3f}&ndash;{row['reflection_high']:.3f})"
        out.append("<tr>" + "".join(f"<td>{esc(_cell(row[c]))}</td>" for c in shown)
                   + f"<td>{band}</td><td>{row['responses']}</td></tr>")
    out.append("</table></body></html>\n")
    return "\n".join(out)


def write_report(analysis: Analysis, out_dir: str | Path, plots: bool = True) -> list[Path]:
    """Render everything, then write each file atomically. Returns the paths written."""
    out = Path(out_dir)
    rendered_plots = render_plots(analysis) if plots else {}
    files: dict[str, bytes] = {
        "metrics.csv": metrics_csv(analysis.rows).encode(),
        "aha.json": aha_json(analysis).encode(),
        **rendered_plots,
        "report.html": report_html(analysis, rendered_plots).encode(),
    }
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        write_atomic(out / name, data)
    return [out / name for name in files]
