"""The one progress and logging mechanism: lines and progress bars on stderr, silent when quiet.

Long jobs take a :class:`Progress` (commands build it from ``--quiet``); calling it writes a
line, :meth:`Progress.over` wraps an iterable in a progress bar. ``Progress(quiet=True)`` says
nothing; :data:`SILENT` is that instance, the default of library functions so that a notebook
user sees no output unless they ask for it.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, TextIO, TypeVar

T = TypeVar("T")


@dataclass
class Progress:
    """Where a long job reports: ``progress("message")`` and ``progress.over(items, "what")``."""

    quiet: bool = False
    stream: TextIO | None = None
    sink: Callable[[str], Any] | None = field(default=None, repr=False)

    def __call__(self, message: str) -> None:
        if self.sink is not None:
            self.sink(message)
            return
        if not self.quiet:
            print(message, file=self.stream or sys.stderr, flush=True)

    def over(self, items: Iterable[T], desc: str, *, total: int | None = None, unit: str = "it") -> Iterator[T]:
        """``items`` with a progress bar (none when quiet or reporting to a sink)."""
        if self.quiet or self.sink is not None:
            yield from items
            return
        from tqdm import tqdm

        yield from tqdm(items, desc=desc, total=total, unit=unit, file=self.stream or sys.stderr,
                        leave=False, dynamic_ncols=True)

    @contextmanager
    def counter(self, total: int, desc: str, *, unit: str = "it") -> Iterator[Callable[[int], None]]:
        """A progress bar advanced by hand: the block gets ``advance(n)`` (none when quiet or to a sink)."""
        if self.quiet or self.sink is not None or not total:
            yield lambda n: None
            return
        from tqdm import tqdm

        bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream or sys.stderr, smoothing=0.1,
                   dynamic_ncols=True)
        try:
            yield bar.update
        finally:
            bar.close()


SILENT = Progress(quiet=True)


def as_progress(log: "Progress | Callable[[str], Any] | None", *, quiet: bool = False) -> Progress:
    """A :class:`Progress` from what a caller passed: a Progress, a plain callable, or None (silent)."""
    if isinstance(log, Progress):
        return log
    if log is None:
        return SILENT
    return Progress(quiet=quiet, sink=log)
