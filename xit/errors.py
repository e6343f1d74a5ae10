"""The one exception type for user errors.

A `XitError` carries a one-line message that names the file, field or task at fault and
what would be valid. The CLI prints it and exits with code 2 before anything is started.
"""


class XitError(Exception):
    """Bad input from the user: a spec, a task name, a path, a store URL."""
