"""Find and show the aha moment in training rollout dumps.

    from tinyzero.aha import analyse, write_report
    analysis = analyse("checkpoints/run/rollouts")      # streams one step file at a time
    write_report(analysis, "aha_report")                 # metrics.csv, aha.json, PNGs, report.html
    print(analysis.aha.verdict)                          # "aha at step 12 (p = 0.001)", "no rise", ...

Command line: `python -m tinyzero.aha ROLLOUT_DIR --out DIR`. A synthetic dump for trying it out:
`tinyzero.aha.synthetic.write_synthetic_dump(dir)` or `python -m tinyzero.aha.synthetic DIR`.
"""

from tinyzero.aha.analysis import Analysis, Example, analyse
from tinyzero.aha.changepoint import AhaMoment, RampFit, Validation, find_aha, fit_ramp, mean_shift, rise_p_value
from tinyzero.aha.detectors import (
    BEHAVIOURS,
    REFLECTIVE,
    Detector,
    Span,
    default_detectors,
    detect,
    evaluate_detectors,
)
from tinyzero.aha.reader import DumpError, Rollout, StepFile, Task, find_step_files, parse_ground_truth
from tinyzero.aha.report import write_report

__all__ = [
    "AhaMoment", "Analysis", "BEHAVIOURS", "Detector", "DumpError", "Example", "REFLECTIVE", "Rollout",
    "Span", "StepFile", "Task", "analyse", "default_detectors", "detect", "evaluate_detectors",
    "find_aha", "find_step_files", "fit_ramp", "mean_shift", "parse_ground_truth", "RampFit", "rise_p_value",
    "Validation", "write_report",
]
