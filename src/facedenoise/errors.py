"""The one exception the core raises for user mistakes.

The message is a sentence that tells the user what to do; the CLI prints it as one red line
and exits with status 1. Anything else that escapes is a bug and keeps its traceback.
"""


class FaceDenoiseError(Exception):
    """A user-facing error: bad input, missing data, an unusable model file."""
