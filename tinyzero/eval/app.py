"""`python -m tinyzero.eval model=PATH data=PARQUET output_dir=DIR [options]`: the Hydra app.

Reads the problems, resolves the model (merging a verl checkpoint once), generates n samples per
problem for each thinking budget (or once without forcing), scores them with
`tinyzero.rewards.compute_score`, and writes metrics.json, samples.jsonl, summary.md and plots.
Everything that can be wrong with the input is checked before the model is loaded.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from pathlib import Path

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from tinyzero.eval import report
from tinyzero.eval.backends import build_generator, choose_backend, load_tokenizer
from tinyzero.eval.budget import Trace, generate_plain, generate_with_budget
from tinyzero.eval.config import Backend, EvalConfig, EvalConfigError, describe_options, validate
from tinyzero.eval.data import Problem, load_problems, recipe_test_split, render_prompt
from tinyzero.eval.metrics import ScoredSample, budget_summary, by_difficulty, default_ks, summarize
from tinyzero.eval.model import resolve_model
from tinyzero.files import check_writable_folder, write_json, write_jsonl, write_text
from tinyzero.progress import check_memory
from tinyzero.rewards import compute_score


@dataclass
class Run:
    """The scored samples of one setting: one thinking budget, or none."""

    budget: int | None
    traces: list[Trace]
    scored: list[ScoredSample]
    seconds: float


def check_output_dir(output_dir: str) -> Path:
    """The output folder, checked to be writable (or creatable) but not created: the result files
    create it when they are written, so a run refused on the way leaves nothing behind."""
    out = Path(output_dir).expanduser()
    try:
        check_writable_folder(out, option="output_dir")
    except ValueError as error:
        raise EvalConfigError(str(error)) from None
    return out


def score_traces(problems: list[Problem], n: int, budget: int | None, traces: list[Trace]) -> list[ScoredSample]:
    scored = []
    for index, trace in enumerate(traces):
        problem, sample = problems[index // n], index % n
        result = compute_score(
            data_source=problem.data_source,
            solution_str=trace.response,
            ground_truth=problem.ground_truth,
            extra_info=problem.extra_info,
        )
        scored.append(
            ScoredSample(
                problem=problem.index,
                sample=sample,
                budget=budget,
                difficulty=problem.difficulty,
                acc=result["acc"],
                score=result["score"],
                has_answer=result["has_answer"],
                response_tokens=trace.response_tokens,
                thinking_tokens=trace.thinking_tokens,
            )
        )
    return scored


def sample_rows(problems: list[Problem], prompts: list[str], run: Run):
    for trace, s in zip(run.traces, run.scored):
        problem = problems[s.problem]
        yield {
            "problem": s.problem,
            "sample": s.sample,
            "budget": run.budget,
            "data_source": problem.data_source,
            "difficulty": s.difficulty,
            "data_difficulty": problem.extra_info.get("difficulty"),  # data_gen's own measure, if any
            "prompt": prompts[s.problem],
            "ground_truth": problem.ground_truth,
            "response": trace.response,
            "score": s.score,
            "acc": s.acc,
            "has_answer": s.has_answer,
            "response_tokens": s.response_tokens,
            "thinking_tokens": s.thinking_tokens,
            "waits": trace.waits,
            "forced_answer": trace.forced_answer,
            "finish_reason": trace.finish_reason,
        }


# Memory per sampled response, until samples.jsonl is written: its text (about 6 bytes per token
# of English-like text, counted at the cap) and the trace and score records around it (~1 KiB).
BYTES_PER_TOKEN = 6
BYTES_PER_SAMPLE = 1024
BYTES_PER_PROBLEM = 4096  # the row, its rendered prompt and its scores


def response_token_caps(cfg) -> list[int]:
    """Each setting's longest response: the plain cap, or a budget's thinking, delimiter and answer."""
    if not cfg.budget.thinking_tokens:
        return [cfg.max_new_tokens]
    return [budget + 16 + cfg.budget.answer_tokens for budget in cfg.budget.thinking_tokens]


def estimated_memory(problems: int, cfg) -> int:
    """Bytes the results of an eval hold at most (the model's weights come on top)."""
    samples = sum(problems * cfg.n * (cap * BYTES_PER_TOKEN + BYTES_PER_SAMPLE) for cap in response_token_caps(cfg))
    return problems * BYTES_PER_PROBLEM + samples


def check_eval_fits(problems: int, cfg, available: int | None = None) -> None:
    """Refuse before the model loads an eval whose responses the machine's memory cannot hold."""
    settings = len(response_token_caps(cfg))
    try:
        check_memory(
            estimated_memory(problems, cfg),
            f"eval of {problems:,} problems x n={cfg.n:,} x {settings} setting(s), responses up to "
            f"{max(response_token_caps(cfg)):,} tokens,",
            "evaluate fewer problems (limit=N), fewer samples (n=) or budgets, or shorter responses",
            available,
        )
    except ValueError as error:
        raise EvalConfigError(str(error)) from None


def run_eval(cfg) -> dict:
    """The whole evaluation for a composed config; returns the metrics written to metrics.json."""
    if not OmegaConf.is_config(cfg):  # an EvalConfig built in Python
        cfg = OmegaConf.structured(cfg)
    validate(cfg)
    if cfg.data is None:
        cfg.data = str(recipe_test_split(cfg.recipe))
    problems = load_problems(cfg.data, cfg.limit, cfg.prompt_style)
    check_eval_fits(len(problems), cfg)
    backend = choose_backend(Backend(cfg.backend).value)
    out = check_output_dir(cfg.output_dir)
    model_path = resolve_model(cfg.model, cfg.merged_model_dir)
    tokenizer = load_tokenizer(model_path)
    prompts = [render_prompt(tokenizer, p) for p in problems]
    ks = sorted(set(cfg.pass_k)) if cfg.pass_k else default_ks(cfg.n)
    budgets = sorted(cfg.budget.thinking_tokens)

    generator = build_generator(backend, model_path, tokenizer, cfg)
    # Problem-major: the n samples of problem i are sequences i*n .. i*n+n-1. Every budget reuses
    # the same seeds, so settings differ only by the forcing.
    sequence_prompts = [prompt for prompt in prompts for _ in range(cfg.n)]
    seeds = [cfg.seed + i for i in range(len(sequence_prompts))]
    runs = []
    for budget in budgets or [None]:
        start = time.perf_counter()
        if budget is None:
            traces = generate_plain(generator, sequence_prompts, seeds, cfg.max_new_tokens)
        else:
            traces = generate_with_budget(
                generator,
                sequence_prompts,
                seeds,
                budget=budget,
                num_extend=cfg.budget.num_extend,
                wait=cfg.budget.wait,
                answer_tokens=cfg.budget.answer_tokens,
            )
        seconds = time.perf_counter() - start
        runs.append(Run(budget, traces, score_traces(problems, cfg.n, budget, traces), seconds))

    metrics = build_metrics(cfg, backend, model_path, runs, ks)
    write_jsonl(out / "samples.jsonl", (row for run in runs for row in sample_rows(problems, prompts, run)))
    report.plot_pass_at_k(
        [(f"B={r['budget']}", r["pass_at_k"]) for r in metrics["budgets"]] or [("no budget", metrics["pass_at_k"])],
        out / "pass_at_k.png",
    )
    if budgets:
        report.plot_budget_curve(metrics["budget_curve"], out / "budget_curve.png")
    else:  # a curve left by an earlier run in this folder would belong to other settings
        (out / "budget_curve.png").unlink(missing_ok=True)
    write_text(out / "summary.md", report.summary_markdown(metrics))
    write_json(out / "metrics.json", metrics)  # last: its presence means the run finished
    return metrics


def build_metrics(cfg, backend: str, model_path: str, runs: list[Run], ks: list[int]) -> dict:
    per_setting = []
    for run in runs:
        summary = summarize(run.scored, ks)
        generated = sum(t.response_tokens for t in run.traces)
        summary.update(
            by_difficulty=by_difficulty(run.scored, ks),
            forced_answer_rate=sum(t.forced_answer for t in run.traces) / len(run.traces),
            mean_waits=sum(t.waits for t in run.traces) / len(run.traces),
            generation_seconds=run.seconds,
            tokens_per_second=generated / run.seconds if run.seconds > 0 else None,
        )
        if run.budget is not None:
            summary = {"budget": run.budget, **summary}
        per_setting.append(summary)
    # Headline numbers: the run without forcing, or the largest budget (the most compute).
    main = per_setting[-1]
    metrics = {
        "model": cfg.model,
        "model_path": model_path,
        "data": cfg.data,
        "backend": backend,
        "n": cfg.n,
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "seed": cfg.seed,
        "main_budget": runs[-1].budget,
        **{k: v for k, v in main.items() if k != "budget"},
        "budgets": [s for s in per_setting if "budget" in s],
    }
    if metrics["budgets"]:
        metrics.update(
            budget_summary(
                {s["budget"]: s for s in metrics["budgets"]},
                [sample for run in runs for sample in run.scored],
            )
        )
    metrics["config"] = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    return metrics


# Hydra wiring: the structured config is the schema; `--help` prints every option with its help.

HELP_HEADER = """python -m tinyzero.eval: accuracy, pass@k and s1-style budget forcing for a model or checkpoint.

Usage:
  python -m tinyzero.eval model=PATH_OR_HUB_NAME data=TEST.parquet output_dir=DIR [key=value ...]
  python -m tinyzero.eval model=PATH_OR_HUB_NAME recipe=RECIPE output_dir=DIR [key=value ...]

Examples:
  python -m tinyzero.eval model=checkpoints/tinyzero/countdown_3b/global_step_200 \\
      recipe=countdown_3b output_dir=eval/step200
  python -m tinyzero.eval model=Qwen/Qwen2.5-3B data=... output_dir=eval/base n=16 temperature=0.6
  python -m tinyzero.eval ... budget.thinking_tokens=[128,256,512,1024] budget.num_extend=2

Writes DIR/metrics.json, DIR/samples.jsonl, DIR/summary.md, DIR/pass_at_k.png and, with budgets,
DIR/budget_curve.png.
"""


def help_text() -> str:
    rows = describe_options()
    width = max(len(key) + len(default) for key, default, _ in rows) + 3
    lines = [f"  {key}={default}".ljust(width + 2) + f"  {text}" for key, default, text in rows]
    return "== Options (key=value; ??? = required) ==\n" + "\n".join(lines) + "\n"


def _register() -> None:
    cs = ConfigStore.instance()
    cs.store(name="eval_schema", node=EvalConfig)
    cs.store(
        group="hydra/help",
        name="tinyzero_eval",
        node={
            "app_name": "python -m tinyzero.eval",
            # OmegaConf would read "${...}" as interpolation; the help has none.
            "header": HELP_HEADER,
            "footer": "Hydra's own flags: --hydra-help. Show the composed config: --cfg job\n",
            "template": "${hydra.help.header}\n" + help_text() + "\n${hydra.help.footer}",
        },
    )
    cs.store(
        name="eval",
        node={
            "defaults": [
                "eval_schema",
                "_self_",
                {"override hydra/help": "tinyzero_eval"},
                {"override hydra/job_logging": "stdout"},  # no log file dropped in the working directory
            ],
            # Everything the run writes goes to output_dir: no outputs/DATE folder, no .hydra copy.
            "hydra": {"run": {"dir": "."}, "output_subdir": None, "job": {"chdir": False}},
        },
    )


_register()


@hydra.main(version_base=None, config_name="eval")
def main(cfg) -> None:
    try:
        metrics = run_eval(cfg)
    except EvalConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(
        f"accuracy {metrics['accuracy']:.3f}, format rate {metrics['format_rate']:.3f}: {cfg.output_dir}/metrics.json"
    )
