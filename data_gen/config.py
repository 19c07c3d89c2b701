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
    """train_size at least 1, test_size 0 or more (the integer check comes first)."""
    if config.train_size < 1:
        raise ValueError(f"train_size must be at least 1, got {config.train_size}")
    if config.test_size < 0:
        raise ValueError(f"test_size must be 0 or more, got {config.test_size}")


def check_between(config, names, low: int, high: int) -> None:
    for name in names:
        if not low <= getattr(config, name) <= high:
            raise ValueError(f"{name} must be between {low} and {high}, got {getattr(config, name)}")


def check_choice(config, name: str, choices) -> None:
    value = getattr(config, name)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
