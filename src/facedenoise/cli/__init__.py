"""The `facedenoise` command line: a root Typer app and one module per command.

Nothing here imports TensorFlow at module level, so `--help` and `--version` answer fast.
Usage errors (an unknown option, a value that does not parse) are one red line and exit
status 2, like every other error the CLI prints (those exit 1).
"""

from __future__ import annotations

import inspect
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from facedenoise import __version__
from facedenoise.cli import (
    denoise_command,
    evaluate_command,
    export_command,
    models_command,
    prepare_command,
    train_command,
)
from facedenoise.cli.common import print_error

USAGE_EXIT = 2


class _PlainHelpOption:
    """Mixed into commands and the group: the --help row shows no `<bool>` type, and a
    docstring's paragraphs flow to the terminal's width (Typer 0.29 keeps every source line
    break after the first paragraph, so an 80-column terminal showed ragged lines)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in getattr(self, "params", ()):
            if getattr(param, "is_flag", False):  # --flip/--no-flip, --dry-run: no value
                param.metavar = ""
        if self.help:
            paragraphs = inspect.cleandoc(self.help).split("\n\n")
            self.help = "\n\n".join(" ".join(part.split("\n")) for part in paragraphs)

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option


class _Command(_PlainHelpOption, TyperCommand):
    """A command whose --help row shows no `<bool>` type."""


class _Group(_PlainHelpOption, TyperGroup):
    """The root group: usage errors become one red line (exit 2) instead of a boxed panel."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        from typer._click import exceptions
        from typer.exceptions import Abort

        try:
            status = super().main(args, prog_name, complete_var, False, **extra)
        except exceptions.NoArgsIsHelpError as error:
            sys.exit(error.exit_code)  # the help is already printed
        except exceptions.UsageError as error:
            command = error.ctx.command_path if error.ctx is not None else None
            if command in (None, "facedenoise"):  # the parser's errors carry no command
                command = self._command_path(sys.argv[1:] if args is None else args)
            print_error(f"{error.format_message()} (see '{command} --help')")
            sys.exit(USAGE_EXIT)
        except exceptions.ClickException as error:
            print_error(error.format_message())
            sys.exit(error.exit_code)
        except Abort:
            print_error("Aborted.")
            sys.exit(1)
        sys.exit(status if isinstance(status, int) else 0)

    def _command_path(self, args) -> str:
        """'facedenoise <command>' when the first argument that is not an option names one."""
        named = next((arg for arg in args if not arg.startswith("-")), None)
        return f"facedenoise {named}" if named in self.commands else "facedenoise"


app = typer.Typer(
    name="facedenoise",
    cls=_Group,
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
            "--version", callback=_print_version, is_eager=True, metavar="",
            help="Print the version.",
        ),
    ] = False,
) -> None:
    """Train and run a U-Net that removes Gaussian noise from photographs of faces."""


app.command("prepare", cls=_Command)(prepare_command.prepare)
app.command("train", cls=_Command)(train_command.train)
app.command("evaluate", cls=_Command)(evaluate_command.evaluate)
app.command("denoise", cls=_Command)(denoise_command.denoise)
app.command("export", cls=_Command)(export_command.export)
app.command("models", cls=_Command)(models_command.models)


def main() -> None:
    """Console-script entry point."""
    app()
