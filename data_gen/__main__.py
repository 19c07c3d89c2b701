"""Command line: `python -m data_gen countdown|multiply|import-classic --out DIR [options]`, and
`python -m data_gen traces countdown|multiply --out DIR [options]` (supervised traces, data_gen.traces).

Every option except --out and --workers is a field of the task's config dataclass, with the same
default and help text, so the command line and the recipes share one config.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import typing
from pathlib import Path

from data_gen.classic import ClassicImportConfig
from data_gen.countdown import CountdownConfig
from data_gen.dataset import default_workers, write_dataset
from data_gen.multiply import MultiplyConfig
from data_gen.traces import add_traces_command, traces_config_from, write_traces
from tinyzero.files import check_writable_folder

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


def _cap_workers(workers: int) -> int:
    """More processes than cores generate no faster (the work is CPU-bound) and each costs memory:
    use the cores, and say so. The files never depend on the worker count."""
    cores = os.cpu_count() or 1
    if workers > cores:
        print(f"note: --workers {workers} is more than this machine's {cores} core(s); using {cores}", file=sys.stderr)
        return cores
    return workers


def _missing_folders(out: str) -> list[Path]:
    """The folders a run would create for --out, innermost first (removed again if it is interrupted)."""
    path = Path(out)
    return [folder for folder in (path, *path.parents) if not folder.exists()]


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    name = f"{parser.prog} {args.command}" + (f" {args.task}" if args.command == "traces" else "")
    if args.command != "traces" and args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    try:
        check_writable_folder(args.out)  # before any generation: a bad folder fails in a second, not after
    except ValueError as error:
        parser.exit(2, f"{name}: error: {error}\n")
    created = _missing_folders(args.out)
    try:
        if args.command == "traces":
            result = write_traces(traces_config_from(args), args.out)
        else:
            config_class = COMMANDS[args.command][0]
            values = {spec.name: getattr(args, spec.name) for spec in dataclasses.fields(config_class)}
            result = write_dataset(config_class(**values), args.out, workers=_cap_workers(args.workers))
    except ValueError as error:
        parser.exit(2, f"{name}: error: {error}\n")
    except KeyboardInterrupt:
        # The files are renamed into place only at the end, so the old ones (if any) stand.
        for folder in created:
            try:
                folder.rmdir()
            except OSError:
                break
        print(f"{name}: interrupted, nothing written", file=sys.stderr)
        return 130
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
