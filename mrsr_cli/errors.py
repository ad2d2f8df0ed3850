"""User-facing errors.

Library code raises :class:`MrsrError` (a runtime problem: unreadable or unusable input, missing
model, exit code 1) or :class:`UsageError` (an invalid value or conflicting settings, exit code
2).  The CLI turns them into a one-line message on stderr; a traceback only appears with
``--debug``.
"""


class MrsrError(Exception):
    """A problem the user can act on; the message is one line naming it."""

    exit_code = 1


class UsageError(MrsrError):
    """A value is invalid (wrong factor, conflicting settings, unknown loss term, ...)."""

    exit_code = 2
