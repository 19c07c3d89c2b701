"""What every task config shares: the help its fields give the command line, and the checks of
the fields they have in common (each raises ValueError naming the field, its value and the fix).
"""

from __future__ import annotations


def field_help(text: str, **extra) -> dict:
    """A field's metadata: its --help text (and e.g. its `choices`), read by `python -m data_gen`."""
    return {"help": text, **extra}


def check_integers(config, names) -> None:
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{name} must be an integer, got {value!r}")


def check_sizes(config) -> None:
    """train_size at least 1, test_size and priming_reserve 0 or more (the integer check comes first)."""
    if config.train_size < 1:
        raise ValueError(f"train_size must be at least 1, got {config.train_size}")
    if config.test_size < 0:
        raise ValueError(f"test_size must be 0 or more, got {config.test_size}")
    if getattr(config, "priming_reserve", 0) < 0:
        raise ValueError(f"priming_reserve must be 0 or more, got {config.priming_reserve}")


def drawn(config) -> tuple[int, str]:
    """(how many distinct problems a config draws, the fields that say so): the test split, the
    problems reserved for priming traces (kept out of both splits), the train split."""
    reserve = getattr(config, "priming_reserve", 0)
    if reserve:
        return config.test_size + reserve + config.train_size, "test_size + priming_reserve + train_size"
    return config.test_size + config.train_size, "train_size + test_size"


# The field both generated tasks share (declared in each config, after test_size).
PRIMING_RESERVE_HELP = (
    "problems drawn after the test split and kept out of the train split, for priming traces "
    "(data_gen traces takes its problems from them): priming then never shows a problem RL trains or tests on"
)


def check_between(config, names, low: int, high: int) -> None:
    for name in names:
        if not low <= getattr(config, name) <= high:
            raise ValueError(f"{name} must be between {low} and {high}, got {getattr(config, name)}")


def check_choice(config, name: str, choices) -> None:
    value = getattr(config, name)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
