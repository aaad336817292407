"""What every command shares: the console, and turning core errors into one red line."""

from __future__ import annotations

import contextlib
import os

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
    """Silence TensorFlow's start-up chatter before it is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
