"""What every command shares: the consoles, and turning core errors into one red line."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import typer
from rich.console import Console
from rich.markup import escape

from facedenoise.runs import quiet_tensorflow  # noqa: F401  (re-exported for the commands)

console = Console()
error_console = Console(stderr=True)

RESUME_HINT = "Run the same command again to resume."


def print_error(message: str) -> None:
    """Print `message` (plain text, escaped here) as one red `error:` line on stderr."""
    error_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)


@contextlib.contextmanager
def user_errors(interrupt_hint: str | Callable[[], str] = RESUME_HINT):
    """Turn FaceDenoiseError into one red line and exit 1; Ctrl-C into exit 130.

    interrupt_hint: what to do after Ctrl-C, printed after "Interrupted." (a string, or a
    function called then, for hints that name something made during the command). The
    default suits commands that resume where they stopped (prepare, denoise).
    """
    from facedenoise.errors import FaceDenoiseError

    try:
        yield
    except FaceDenoiseError as error:
        print_error(str(error))
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        hint = interrupt_hint() if callable(interrupt_hint) else interrupt_hint
        error_console.print(
            f"[yellow]Interrupted.[/] {escape(hint)}", highlight=False, soft_wrap=True
        )
        raise typer.Exit(130) from None
