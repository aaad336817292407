"""What every command shares: the console, and turning core errors into one red line."""

from __future__ import annotations

import contextlib
import os
import sys

import typer
from rich.console import Console

console = Console()
error_console = Console(stderr=True)


@contextlib.contextmanager
def user_errors():
    """Turn FaceDenoiseError into one red line and exit 1; Ctrl-C into exit 130."""
    from facedenoise.errors import FaceDenoiseError

    try:
        yield
    except FaceDenoiseError as error:
        error_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        error_console.print(
            "[yellow]Interrupted.[/] Run the same command again to resume.", highlight=False
        )
        raise typer.Exit(130) from None


def quiet_tensorflow() -> None:
    """Import TensorFlow without its start-up chatter.

    TensorFlow's C++ core logs (oneDNN notes, "could not find cuda drivers") before
    TF_CPP_MIN_LOG_LEVEL takes effect, so file descriptor 2 points at /dev/null while it
    loads and probes its devices. Python exceptions still propagate.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    if "tensorflow" in sys.modules:
        return
    saved_stderr = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices()
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)
