"""Command line: `python -m data_gen countdown|multiply|import-classic --out DIR [options]`, and
`python -m data_gen traces countdown|multiply --out DIR [options]` (supervised traces, data_gen.traces).

Every option except --out and --workers is a field of the task's config dataclass, with the same
default and help text, so the command line and the recipes share one config.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import typing

from data_gen.classic import ClassicImportConfig
from data_gen.countdown import CountdownConfig
from data_gen.dataset import default_workers, write_dataset
from data_gen.multiply import MultiplyConfig
from data_gen.traces import add_traces_command, traces_config_from, write_traces

COMMANDS = {
    "countdown": (CountdownConfig, "generate solvable Countdown problems"),
    "multiply": (MultiplyConfig, "generate multiplication problems"),
    "import-classic": (ClassicImportConfig, "convert a classic Countdown file (rows with target and nums) to our schema"),
}


def add_config_options(parser: argparse.ArgumentParser, config_class, exclude=()) -> None:
    """One option per dataclass field (but `exclude`): --field-name, typed, with the field's default and help."""
    hints = typing.get_type_hints(config_class)
    for spec in dataclasses.fields(config_class):
        if spec.name in exclude:
            continue
        kind = hints[spec.name]
        help_text = spec.metadata.get("help", "")
        required = spec.default is dataclasses.MISSING
        if required:  # a required field is a positional argument (the classic file's path)
            parser.add_argument(spec.name, help=help_text)
            continue
        option = "--" + spec.name.replace("_", "-")
        if kind is bool:
            parser.add_argument(option, action=argparse.BooleanOptionalAction, default=spec.default,
                                help=f"{help_text} (default: {spec.default})")
        else:
            choices = spec.metadata.get("choices")
            parser.add_argument(option, type=kind if kind in (int, float, str) else str, default=spec.default,
                                choices=choices, metavar=None if choices else spec.name.upper(),
                                help=f"{help_text} (default: {spec.default})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m data_gen",
        description="Write train.parquet, test.parquet and dataset_info.json in verl's row schema.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join([*COMMANDS, "traces"]) + "}")
    for name, (config_class, description) in COMMANDS.items():
        command = commands.add_parser(name, help=description, description=description)
        command.add_argument("--out", required=True, help="folder for the files (created if missing)")
        command.add_argument("--workers", type=int, default=default_workers(),
                             help="processes for generation; changes speed only, never the files (default: %(default)s)")
        add_config_options(command, config_class)
    add_traces_command(commands, add_config_options)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "traces":
        try:
            result = write_traces(traces_config_from(args), args.out)
        except ValueError as error:
            parser.exit(2, f"{parser.prog} traces {args.task}: error: {error}\n")
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    config_class = COMMANDS[args.command][0]
    values = {spec.name: getattr(args, spec.name) for spec in dataclasses.fields(config_class)}
    config = config_class(**values)
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    try:
        result = write_dataset(config, args.out, workers=args.workers)
    except ValueError as error:
        parser.exit(2, f"{parser.prog} {args.command}: error: {error}\n")
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
