"""The `facedenoise` command line: a root Typer app and one module per command.

Nothing here imports TensorFlow at module level, so `--help` and `--version` answer fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from facedenoise import __version__
from facedenoise.cli import (
    denoise_command,
    evaluate_command,
    models_command,
    prepare_command,
    train_command,
)

app = typer.Typer(
    name="facedenoise",
    help="Train and run a U-Net that removes Gaussian noise from photographs of faces.\n\n"
    "Typical session: facedenoise prepare, facedenoise train, facedenoise evaluate, "
    "facedenoise denoise in.png out.png.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"facedenoise {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Train and run a U-Net that removes Gaussian noise from photographs of faces."""


app.command("prepare")(prepare_command.prepare)
app.command("train")(train_command.train)
app.command("evaluate")(evaluate_command.evaluate)
app.command("denoise")(denoise_command.denoise)
app.command("models")(models_command.models)


def main() -> None:
    """Console-script entry point."""
    app()
