"""The human side of an evaluation: summary.md and the PNG plots, written atomically."""

from __future__ import annotations

from pathlib import Path

from tinyzero.files import write_atomically


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def summary_markdown(metrics: dict) -> str:
    """A short human summary of metrics.json."""
    lines = [
        "# Evaluation summary",
        "",
        f"- model: `{metrics['model']}`",
        f"- data: `{metrics['data']}` ({metrics['problems']} problems, n={metrics['samples_per_problem']} "
        f"samples each, backend {metrics['backend']}, temperature {metrics['temperature']})",
    ]
    if metrics.get("main_budget") is not None:
        lines.append(f"- headline numbers below are at the largest thinking budget, {metrics['main_budget']} tokens")
    lines += [
        "",
        "| accuracy | format rate | mean response tokens | mean thinking tokens |",
        "|---|---|---|---|",
        f"| {_fmt(metrics['accuracy'])} | {_fmt(metrics['format_rate'])} | {_fmt(metrics['mean_response_tokens'], 1)} "
        f"| {_fmt(metrics['mean_thinking_tokens'], 1)} |",
        "",
        "| k | " + " | ".join(metrics["pass_at_k"]) + " |",
        "|---|" + "---|" * len(metrics["pass_at_k"]),
        "| pass@k | " + " | ".join(_fmt(v) for v in metrics["pass_at_k"].values()) + " |",
        "",
        "![pass@k](pass_at_k.png)",
    ]
    if metrics.get("budget_curve"):
        lines += [
            "",
            "## Budget forcing",
            "",
            f"control {_fmt(metrics['control'])} (share of samples within budget), scaling "
            f"{_fmt(metrics['scaling'])} (accuracy per 1,000 thinking tokens, mean pairwise slope), "
            f"performance {_fmt(metrics['performance'])} (best accuracy)",
            "",
            "| budget | accuracy | mean thinking tokens | forced answers | waits per sample |",
            "|---|---|---|---|---|",
        ]
        for point, run in zip(metrics["budget_curve"], metrics["budgets"]):
            lines.append(
                f"| {point['thinking_tokens']} | {_fmt(point['accuracy'])} | {_fmt(point['mean_thinking_tokens'], 1)} "
                f"| {_fmt(run['forced_answer_rate'])} | {_fmt(run['mean_waits'], 2)} |"
            )
        lines += ["", "![accuracy against thinking tokens](budget_curve.png)"]
    lines += [
        "",
        "## By difficulty",
        "",
        "| difficulty | problems | accuracy | format rate | mean response tokens |",
        "|---|---|---|---|---|",
    ]
    for label, row in metrics["by_difficulty"].items():
        lines.append(
            f"| {label} | {row['problems']} | {_fmt(row['accuracy'])} | {_fmt(row['format_rate'])} "
            f"| {_fmt(row['mean_response_tokens'], 1)} |"
        )
    return "\n".join(lines) + "\n"


def _new_axes():
    """A small figure on matplotlib's file-only backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(5, 3.5))


def _save_figure(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    write_atomically(path, lambda temp: fig.savefig(temp, format="png", dpi=120, bbox_inches="tight"))
    plt.close(fig)


def plot_pass_at_k(runs: list[tuple[str, dict]], path: Path) -> None:
    """pass@k against k (log2 axis), one line per setting."""
    fig, ax = _new_axes()
    for label, pass_k in runs:
        ks = [int(k) for k in pass_k]
        ax.plot(ks, list(pass_k.values()), marker="o", label=label)
    ax.set_xscale("log", base=2)
    all_ks = sorted({int(k) for _, pass_k in runs for k in pass_k})
    ax.set_xticks(all_ks, [str(k) for k in all_ks])
    ax.minorticks_off()
    ax.set_xlabel("k (samples)")
    ax.set_ylabel("pass@k")
    ax.set_title("pass@k (unbiased estimator)", fontsize=10)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    if len(runs) > 1:
        ax.legend(fontsize=8)
    _save_figure(fig, path)


def plot_budget_curve(curve: list[dict], path: Path) -> None:
    """Accuracy against mean thinking tokens, each point labelled with its budget (s1's figure)."""
    fig, ax = _new_axes()
    xs = [p["mean_thinking_tokens"] for p in curve]
    ys = [p["accuracy"] for p in curve]
    ax.plot(xs, ys, marker="o")
    for p, x, y in zip(curve, xs, ys):
        ax.annotate(f"B={p['thinking_tokens']}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    ax.set_xlabel("mean thinking tokens")
    ax.set_ylabel("accuracy")
    ax.set_title("budget forcing: accuracy against thinking", fontsize=10)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    _save_figure(fig, path)
