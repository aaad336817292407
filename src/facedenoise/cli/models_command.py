"""`facedenoise models`: the architectures, their size and cost per image.

Builds each architecture and counts its convolutions' multiply-accumulates; it imports the
models package only, not training.
"""

from __future__ import annotations

from typing import Annotated

import typer

from facedenoise.cli.common import console, quiet_tensorflow, user_errors
from facedenoise.config import IMAGE_SIZE


def architecture_rows(size: int) -> list[dict]:
    """name, parameters and GMACs per size x size RGB image of every registered architecture,
    each at its default settings (plain data for the table)."""
    from facedenoise.config import ModelConfig
    from facedenoise.models import ARCHITECTURES, build_model, count_macs

    rows = []
    for name in ARCHITECTURES:
        model = build_model(ModelConfig(arch=name))
        rows.append({"name": name, "parameters": int(model.count_params()),
                     "gmacs": count_macs(model, size) / 1e9})
    return rows


def models(
    size: Annotated[
        int, typer.Option(min=8, help="Image side in pixels for the GMAC count.")
    ] = IMAGE_SIZE,
) -> None:
    """List the architectures with parameters and GMACs per image."""
    from rich.table import Table

    quiet_tensorflow()
    with user_errors():
        rows = architecture_rows(size)
    table = Table(title=f"Architectures (cost per {size}x{size} RGB image)")
    for column in ("name", "parameters", "GMACs"):
        table.add_column(column, justify="left" if column == "name" else "right")
    for row in rows:
        table.add_row(row["name"], f"{row['parameters']:,}", f"{row['gmacs']:.2f}")
    console.print(table)
