"""Evaluation of checkpoints: accuracy, pass@k and s1-style budget forcing.

Command: `python -m tinyzero.eval model=PATH data=PARQUET output_dir=DIR [options]` (`--help`).
From Python: `tinyzero.eval.app.run_eval(EvalConfig(model=..., data=..., output_dir=...))`.

Modules, one job each (nothing is imported here, so `tinyzero.eval.metrics` stays light):
- config:   the options (`EvalConfig`, a Hydra structured config) and their checks
- data:     problems from a parquet file in tinyzero's schema, rendered as in training
- model:    Hugging Face folder, hub name, or verl checkpoint (merged once by verl's merger)
- budget:   budget forcing over any `Generator` (`generate_with_budget`, `generate_plain`)
- backends: the generators: transformers (`HFGenerator`) and vLLM (`VLLMGenerator`)
- metrics:  `pass_at_k`, summaries, s1's control / scaling / performance
- report:   metrics.json, samples.jsonl, summary.md and plots, written atomically
- app:      the Hydra app tying them together
"""
