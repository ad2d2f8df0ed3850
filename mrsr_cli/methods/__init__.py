"""Super-resolution methods for ``mrsr upscale --method``: a registry of functions.

Each method is ``fn(volume, target_grid, **options) -> (data, info)``: ``volume`` an
:class:`~mrsr_cli.data.io.Volume`, ``target_grid`` the output :class:`~mrsr_cli.data.geometry.Grid`,
``data`` float32 on that grid (same intensity scale as the input), ``info`` a dict of
BIDS-style keys for the JSON sidecar.  The keywords a method accepts are its options; giving
it one it does not take is a usage error (:func:`run_method`), so ``--model`` with
``--method spline`` is refused without any per-method check in the CLI.

Adding a method is one module plus one line: write ``def my_method(volume, target, *,
my_option=...)`` in ``methods/my_method.py`` and add ``"my-method": my_method`` to
:data:`METHODS`; its options are rows of ``UPSCALE`` in :mod:`mrsr_cli.app.options` with
``to_method=True``, which give the CLI flag, the Nipype trait and the docs line
(docs/extending.md; ``tests/test_extending.py`` does it).

Example::

    >>> sorted(METHODS), method_options("spline")
    (['cnn', 'lrtv', 'spline'], ('order',))
"""

from __future__ import annotations

import inspect

from mrsr_cli.errors import UsageError
from mrsr_cli.methods.cnn import cnn
from mrsr_cli.methods.lrtv import LRTV_VOLUMES, lrtv_method
from mrsr_cli.methods.spline import spline

METHODS = {"cnn": cnn, "spline": spline, "lrtv": lrtv_method}
# float32 volumes of the output grid a method holds at least (upscale refuses a grid they do not fit
# before any work; the engine's tiles and the consistency step budget their own on top)
WORKING_VOLUMES = {"spline": 2, "cnn": 3, "lrtv": LRTV_VOLUMES}


def method_options(name: str) -> tuple[str, ...]:
    """The option names a method accepts."""
    params = inspect.signature(_lookup(name)).parameters.values()
    return tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY)


def check_options(name: str, options) -> None:
    """A :class:`UsageError` for the first of ``options`` (names) that method ``name`` does not take."""
    accepted = method_options(name)
    for option in options:
        if option not in accepted:
            raise UsageError(f"{option} does not apply to method {name} (it takes: {', '.join(accepted) or 'nothing'})")


def run_method(name: str, volume, target, **options):
    """``METHODS[name](volume, target, **options)`` after checking that it takes every option given."""
    check_options(name, options)
    return _lookup(name)(volume, target, **options)


def _lookup(name: str):
    try:
        return METHODS[name]
    except KeyError:
        raise UsageError(f"unknown method {name!r}: --method must be one of {', '.join(METHODS)}") from None
