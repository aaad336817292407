"""`facedenoise models`: the architectures, their size and cost per image.

Builds each architecture and counts its convolutions' multiply-accumulates; it imports the
models package only, not training.
"""

from __future__ import annotations

from typing import Annotated

import typer

from facedenoise.cli.common import console, quiet_tensorflow, user_errors
from facedenoise.config import IMAGE_SIZE, ModelConfig


def architecture_rows(size: int) -> list[dict]:
    """Plain facts (models.describe) of every registered architecture at its own defaults."""
    from facedenoise.config import model_config
    from facedenoise.models import ARCHITECTURES, describe

    return [describe(model_config(name), size) for name in ARCHITECTURES]


def print_models(rows: list[dict], size: int, title: str = "Architectures") -> None:
    """A table of describe() rows: name, parameters, GMACs, noise-level input."""
    from rich.table import Table

    table = Table(title=f"{title} (cost per {size}x{size} RGB image)")
    for column in ("name", "parameters", "GMACs", "noise-level input"):
        table.add_column(column, justify="left" if column == "name" else "right")
    for row in rows:
        table.add_row(row["arch"], f"{row['parameters']:,}", f"{row['gmacs']:.2f}",
                      "yes" if row["noise_input"] else "no")
    console.print(table)


def describe_one(config: ModelConfig, size: int = IMAGE_SIZE) -> None:
    """Print one configuration's row (train --dry-run)."""
    quiet_tensorflow()
    from facedenoise.models import describe

    print_models([describe(config, size)], size, title="Model")


def models(
    size: Annotated[
        int, typer.Option(min=8, help="Image side in pixels for the GMAC count.")
    ] = IMAGE_SIZE,
) -> None:
    """List the architectures with parameters, GMACs per image and whether they take a noise
    level (the default, resunet, first)."""
    quiet_tensorflow()
    with user_errors():
        rows = architecture_rows(size)
    print_models(rows, size)
