"""The exception types for what the CLI reports in one line.

A `XitError` carries a one-line message that names the file, field or task at fault and
what would be valid. The CLI prints it and exits with code 2 before anything is started.
A `WorkError` (a `XitError` too, so code that catches either keeps working) is a failure
during work — a store that stops answering, a file whose checksum no longer matches, a
race lost in a way that cannot be recovered, a task's data file gone or malformed when a stage reads
it (`Task.load`): the CLI prints its one line and exits 1.
"""


class XitError(Exception):
    """Bad input from the user: a spec, a task name, a path, a store URL."""


class WorkError(XitError):
    """A failure during work, not bad input (exit code 1)."""
