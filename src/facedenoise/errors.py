"""The one exception the core raises for user mistakes, and the checks that raise it.

The message is a sentence that tells the user what to do; the CLI prints it as one red line
and exits with status 1. Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable


class FaceDenoiseError(Exception):
    """A user-facing error: bad input, missing data, an unusable model file."""


def check_choice(what: str, value: object, choices: Iterable[object]) -> None:
    """Raise FaceDenoiseError unless `value` is one of `choices`, listing the valid ones.

    what: the noun for the message ("architecture", "loss", ...).
    """
    choices = list(choices)
    if value not in choices:
        valid = ", ".join(str(choice) for choice in choices)
        raise FaceDenoiseError(f"Unknown {what} '{value}'; choose one of: {valid}.")
