"""Errors the CLI reports as one line (exit code 2) instead of a traceback."""


class UserError(Exception):
    """A problem with what the user asked for: a missing file, a bad option value."""
