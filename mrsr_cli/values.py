"""One check for every number a user gives: finite, of the right type, in range, with its unit.

Shared by every layer (like :mod:`mrsr_cli.errors`); the message names the option as the user
typed it.

>>> check_number(0.5, "--noise", lo=0, hi=1)
0.5
>>> check_number(float("nan"), "--lr", lo=0, lo_open=True)
Traceback (most recent call last):
...
mrsr_cli.errors.UsageError: --lr must be a finite number > 0, got nan
>>> check_number("3", "epochs", integer=True, lo=1)
Traceback (most recent call last):
...
mrsr_cli.errors.UsageError: epochs must be an integer >= 1, got '3'
"""

from __future__ import annotations

import math
import numbers

from mrsr_cli.errors import UsageError


def check_number(value, what: str, *, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
                 integer: bool = False, unit: str = ""):
    """``value`` unchanged if it is a finite number (an ``int`` when ``integer``) in ``[lo, hi]``
    (``(lo, hi]`` when ``lo_open``), else a :class:`UsageError` naming ``what`` and the range."""
    bounds = []
    if lo is not None:
        bounds.append(f"{'>' if lo_open else '>='} {lo:g}")
    if hi is not None:
        bounds.append(f"<= {hi:g}")
    wanted = ("an integer" if integer else "a finite number") + (" " + " and ".join(bounds) if bounds else "")
    wanted += f" {unit}" if unit else ""
    kind = numbers.Integral if integer else numbers.Real  # numpy's scalars are registered too
    if isinstance(value, bool) or not isinstance(value, kind):
        raise UsageError(f"{what} must be {wanted}, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or (lo is not None and (number <= lo if lo_open else number < lo)) \
            or (hi is not None and number > hi):
        raise UsageError(f"{what} must be {wanted}, got {value!r}")
    return value
