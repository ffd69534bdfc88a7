"""Errors the user can fix: the message is one line saying what is wrong and what to do (exit 2)."""


class BadInput(Exception):
    """Input, a device, a file or a setting the user must fix; `callmon` prints it and exits 2."""


class PipelineError(Exception):
    """The pipeline could not finish; the message is one line for the user (exit 1)."""
