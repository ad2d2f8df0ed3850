"""Progress bars on a terminal, silence in logs: one helper for every long-running loop."""

from __future__ import annotations

import sys


def start_progress(label: str, total: int, *columns, enabled: bool = True, transient: bool = True, **fields):
    """``(bar, task)`` with a rich progress bar on stderr when it is a TTY, else ``(None, None)``."""
    if not enabled or not sys.stderr.isatty():
        return None, None
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn

    bar = Progress(TextColumn(label), BarColumn(), *columns, transient=transient, console=Console(stderr=True))
    bar.start()
    return bar, bar.add_task(label, total=total, **fields)
