"""Long work shows how far it is, and work that cannot fit in memory is refused before it starts.

`Progress` reports on standard error with a rate and the time left: a tqdm bar on a terminal,
a plain line every PLAIN_INTERVAL seconds otherwise (a log file gets readable lines, not
carriage returns; the environment variable TINYZERO_PROGRESS_SECONDS sets another interval). Short jobs stay silent: nothing appears before the first second (bar) or
the first interval (lines). `check_memory` compares an estimate with the memory the machine
has free and raises a ValueError with both figures and the fix.

A leaf of the project: the standard library and tqdm only, so data_gen, eval and aha share it.
"""

from __future__ import annotations

import os
import sys
import time

PLAIN_INTERVAL = 30.0  # seconds between plain progress lines (not a terminal)
INTERVAL_VARIABLE = "TINYZERO_PROGRESS_SECONDS"
BAR_DELAY = 1.0  # seconds before a bar appears on a terminal
GIB = 1024**3


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under 1 s"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def plain_interval() -> float:
    """Seconds between plain lines: $TINYZERO_PROGRESS_SECONDS, else PLAIN_INTERVAL."""
    value = os.environ.get(INTERVAL_VARIABLE)
    if value is None:
        return PLAIN_INTERVAL
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:
        raise ValueError(f"{INTERVAL_VARIABLE}={value!r}: give seconds between progress lines, e.g. 10 (0: every update)")
    return seconds


class Progress:
    """Progress of `total` units of work named `what` (e.g. "countdown problems").

        with Progress(total, "countdown problems") as progress:
            for chunk in chunks:
                ...
                progress.update(len(chunk))
    """

    def __init__(self, total: int, what: str, *, stream=None, interval: float | None = None, clock=time.monotonic):
        self.total, self.what = max(int(total), 0), what
        self.stream = stream if stream is not None else sys.stderr
        self.interval = plain_interval() if interval is None else interval
        self.clock = clock
        self.done = 0
        self.started = clock()
        self._last_line = self.started
        self._printed = False
        self._bar = None
        isatty = getattr(self.stream, "isatty", None)
        if self.total and isatty is not None and isatty():
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=what, unit="", file=self.stream, delay=BAR_DELAY,
                             dynamic_ncols=True, unit_scale=self.total >= 10_000, leave=False)

    def update(self, amount: int = 1) -> None:
        self.done += amount
        if self._bar is not None:
            self._bar.update(amount)
            return
        now = self.clock()
        if now - self._last_line >= self.interval and self.done < self.total:
            self._last_line = now
            self._write(self.line(now))

    def line(self, now: float | None = None) -> str:
        """`what: done / total (percent), rate/s, about T left` as of `now`."""
        elapsed = max((self.clock() if now is None else now) - self.started, 1e-9)
        rate = self.done / elapsed
        share = self.done / self.total if self.total else 1.0
        text = f"{self.what}: {_count(self.done)} / {_count(self.total)} ({share:.0%}), {_count(rate)}/s"
        if self.done < self.total:
            left = (self.total - self.done) / rate if rate > 0 else float("inf")
            text += f", about {_duration(left)} left" if left != float("inf") else ", time left unknown"
        else:
            text += f", done in {_duration(elapsed)}"
        return text

    def _write(self, text: str) -> None:
        self._printed = True
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._printed or (self.total and self.clock() - self.started >= self.interval):
            self._write(self.line())  # work that took an interval or more says that it finished

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def available_memory() -> int:
    """Bytes of memory the machine can give a new job: MemAvailable on Linux, else physical memory."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def check_memory(needed: float, what: str, fix: str, available: int | None = None) -> None:
    """Raise ValueError when `needed` bytes (an estimate) exceed what the machine has free."""
    available = available_memory() if available is None else available
    if needed > available:
        raise ValueError(
            f"{what} needs about {needed / GIB:.1f} GiB of memory but this machine has "
            f"{available / GIB:.1f} GiB available: {fix}"
        )
