"""Progress bars on a terminal, silence in logs: one helper for every long-running loop; and the
log level of what a user sees by default."""

from __future__ import annotations

import logging
import sys
import time

# Between INFO (-v) and WARNING: shown at the default verbosity, hidden by -q. "wrote PATH" and the
# like: the one line that says where the result went, as FSL's and ANTs' tools print.
NOTICE = 25
logging.addLevelName(NOTICE, "NOTICE")


class ProgressBar:
    """A rich progress bar on stderr when it is a TTY (and ``enabled``).  On a log (stderr not a TTY:
    a SLURM job, a pipe) it writes one plain line per stage instead, when the stage completes, at the
    default verbosity: ``mrsr: super-resolving: 182/182 in 4.4 s``.  Disabled, every call is a no-op.

    >>> bar = ProgressBar("tiles", 12, enabled=False)
    >>> bar.advance(); bar.close()
    """

    def __init__(self, label: str, total: int, *columns, enabled: bool = True, transient: bool = True, **fields):
        self.bar = self.task = None
        self.label, self.total, self.done, self.started = label, total, 0, time.perf_counter()
        self.plain = enabled and not sys.stderr.isatty()
        if enabled and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn

            self.bar = Progress(TextColumn(label), BarColumn(), *columns, transient=transient, console=Console(stderr=True))
            self.bar.start()
            self.task = self.bar.add_task(label, total=total, **fields)

    def update(self, **kwargs) -> None:
        self.done = kwargs.get("completed", self.done)
        if self.bar:
            self.bar.update(self.task, **kwargs)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self.bar:
            self.bar.advance(self.task, n)

    def reset(self, total: int) -> None:
        self.total, self.done = total, 0
        if self.bar:
            self.bar.reset(self.task, total=total)

    def close(self) -> None:
        if self.bar:
            self.bar.stop()
            self.bar = None
        if self.plain and self.done >= self.total:  # a stage cut short (an error) says nothing: the error does
            self.plain = False
            logging.getLogger("mrsr").log(NOTICE, "%s: %d/%d in %.1f s", self.label, self.done, self.total,
                                          time.perf_counter() - self.started)
