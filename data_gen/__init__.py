"""Task generators for Countdown and multiplication, in verl's row schema.

    from data_gen import TASKS, write_dataset
    config = TASKS["countdown"](train_size=1000, test_size=100, seed=1)
    write_dataset(config, "data/countdown")   # train.parquet, test.parquet, dataset_info.json

The same configs drive the command line: `python -m data_gen countdown --help`.
"""

from data_gen.classic import ClassicImportConfig
from data_gen.countdown import CountdownConfig, count_solutions, solve
from data_gen.dataset import generate_problems, write_dataset
from data_gen.multiply import MultiplyConfig
from data_gen.tasks import TASK_SPECS, TaskSpec, task_spec

# Task name -> generator config class (as the README uses it); the full declarations are TASK_SPECS.
TASKS = {name: spec.config for name, spec in TASK_SPECS.items()}

__all__ = ["TASKS", "TASK_SPECS", "TaskSpec", "task_spec", "ClassicImportConfig", "CountdownConfig", "MultiplyConfig", "count_solutions", "generate_problems", "solve", "write_dataset"]
