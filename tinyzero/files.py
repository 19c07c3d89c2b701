"""Atomic file writes: a temporary file beside the target, renamed into place, so a crash or a
bad input never leaves a half-written or stale output file. Standard library only."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

_UMASK = os.umask(0)
os.umask(_UMASK)


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(temp_path)` then rename the temporary file to `path`."""
    write_all_atomically({path: write})


def write_all_atomically(writes: dict[Path, Callable[[Path], None]]) -> None:
    """Each `write(temp_path)` first, then every rename, in order: one failure leaves every target
    as it was (no half-written file, no new file beside stale ones)."""
    temporaries: dict[Path, Path] = {}
    try:
        for path, write in writes.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=path.suffix)
            os.close(fd)
            temporaries[path] = Path(temp)
            write(Path(temp))
            os.chmod(temp, 0o666 & ~_UMASK)  # mkstemp makes the file private; give it the usual mode
        for path, temp in temporaries.items():
            os.replace(temp, path)
    except BaseException:
        for temp in temporaries.values():
            temp.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    write_atomically(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def write_json(path: Path, data) -> None:
    write_text(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    write_text(path, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def check_writable_folder(folder: str | os.PathLike, option: str = "--out") -> None:
    """Raise ValueError, in one line naming `option` and the path, unless `folder` is a folder
    files can be written in, or one that can be created. Asked of the file system itself, by
    creating and removing a temporary entry (nothing is left behind): permissions, read-only
    mounts, immutable folders and /proc all answer truthfully, even to root."""
    text = os.fspath(folder)
    if not text.strip():
        raise ValueError(f"{option}={text!r} is empty: give a folder (. for this one)")
    path = Path(text)
    existing = path
    while not existing.exists():  # the nearest folder there is; what is missing below it is created
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == path else f"cannot be created: {str(existing)!r} is a file"
        raise ValueError(f"{option}={text!r} {where}: give a folder")
    try:
        if existing == path:
            fd, probe = tempfile.mkstemp(dir=path, prefix=".write-check-")
            os.close(fd)
            os.unlink(probe)
        else:
            os.rmdir(tempfile.mkdtemp(dir=existing, prefix=".write-check-"))
    except OSError as error:
        verb = "is not writable" if existing == path else f"cannot be created in {str(existing)!r}"
        raise ValueError(f"{option}={text!r} {verb}: {error.strerror or error}") from None
