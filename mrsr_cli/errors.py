"""User-facing errors.

Library code raises :class:`MrsrError` (runtime problem, exit code 1) or :class:`InputError`
(bad argument or unusable input file, exit code 2 when it is a usage problem).  The CLI turns
them into a one-line message on stderr; a traceback only appears with ``--debug``.
"""


class MrsrError(Exception):
    """A problem the user can act on; the message is one line naming it."""

    exit_code = 1


class UsageError(MrsrError):
    """A command-line value is invalid (wrong factor, conflicting options, ...)."""

    exit_code = 2
