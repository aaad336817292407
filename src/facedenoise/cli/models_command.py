"""`facedenoise models`: the architectures, their size and cost per 128x128 image."""

from __future__ import annotations

from typing import Annotated

import typer

from facedenoise.cli.common import console, quiet_tensorflow, user_errors
from facedenoise.config import IMAGE_SIZE


def models(
    size: Annotated[int, typer.Option(min=8, help="Image side for the GMAC count.")] = IMAGE_SIZE,
) -> None:
    """List the architectures with parameters and GMACs per image."""
    quiet_tensorflow()
    from facedenoise.train import architectures_table

    with user_errors():
        console.print(architectures_table(size))
