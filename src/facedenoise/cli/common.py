"""What every command shares: the consoles, and turning core errors into one red line."""

from __future__ import annotations

import contextlib
import time
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


@contextlib.contextmanager
def progress_bar(label: str, *, target: Console | None = None, enabled: bool = True,
                 show_rate: bool = False, min_total: int = 0):
    """A transient rich bar for core work that reports `on_progress(done, total)`.

    Yields (on_progress, set_label): the callback for the core, and a function that renames
    the bar (e.g. from "Loading the model" to "Denoising"). The bar draws on `target`
    (default stderr) only when it is a terminal: logs and pipes get just the summary.
    show_rate adds images/s; a total below `min_total` keeps the bar hidden (work that
    finishes before a bar would be worth reading).
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    target = target or error_console
    columns = [SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               MofNCompleteColumn()]
    if show_rate:
        columns.append(TextColumn("{task.fields[rate]}"))
    columns.append(TimeRemainingColumn())
    bar = Progress(*columns, console=target, transient=True,
                   disable=not (enabled and target.is_terminal))
    task = bar.add_task(label, total=None, rate="")
    started = time.perf_counter()

    def on_progress(done: int, total: int) -> None:
        rate = f"{done / max(time.perf_counter() - started, 1e-9):,.0f} images/s"
        bar.update(task, completed=done, total=total, rate=rate, visible=total >= min_total)

    with bar:
        yield on_progress, lambda text: bar.update(task, description=text)
