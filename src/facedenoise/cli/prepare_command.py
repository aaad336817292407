"""`facedenoise prepare`: build the split dataset and its fixed noisy evaluation pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facedenoise.cli.common import console, user_errors
from facedenoise.config import PrepareConfig

DEFAULTS = PrepareConfig()


def _parse_count(value: str) -> int | None:
    if value.lower() == "all":
        return None
    try:
        count = int(value)
    except ValueError:
        raise typer.BadParameter("use a whole number or 'all'") from None
    if count < 1:
        raise typer.BadParameter("must be at least 1")
    return count


def prepare(
    source: Annotated[
        str | None,
        typer.Option(
            help="Folder of images (FFHQ thumbnails128x128 or any folder of faces), a .zip or "
            ".tar(.gz) archive, or 'sample' for the bundled faces (the default).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Output folder for the prepared dataset.")] = Path(
        "data"
    ),
    count: Annotated[
        str, typer.Option(help="How many images to use ('all' for every one).")
    ] = str(DEFAULTS.count),
    test_fraction: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Share of the selection held out for test.")
    ] = DEFAULTS.test_fraction,
    val_fraction: Annotated[
        float,
        typer.Option(min=0.0, max=0.9, help="Share of the non-test images used for validation."),
    ] = DEFAULTS.val_fraction,
    size: Annotated[int, typer.Option(min=8, help="Side of the square output images.")] = (
        DEFAULTS.size
    ),
    noise_factor: Annotated[
        float, typer.Option(min=0.0, help="Gaussian noise std on [0,1] images.")
    ] = DEFAULTS.noise_factor,
    seed: Annotated[int, typer.Option(help="Seed of the selection, split and noise.")] = (
        DEFAULTS.seed
    ),
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default: all cores).")
    ] = None,
    allow_upscale: Annotated[
        bool, typer.Option(help="Keep images smaller than --size by upscaling them.")
    ] = DEFAULTS.allow_upscale,
    force: Annotated[
        bool, typer.Option(help="Overwrite an --out folder prepared with other settings.")
    ] = False,
) -> None:
    """Select, split, resize and add fixed noise to a face dataset (default: bundled sample)."""
    from facedenoise.prepare import prepare as run_prepare

    config = PrepareConfig(
        count=_parse_count(count),
        test_fraction=test_fraction,
        val_fraction=val_fraction,
        size=size,
        noise_factor=noise_factor,
        seed=seed,
        allow_upscale=allow_upscale,
    )
    with user_errors():
        manifest = run_prepare(source, out, config, workers=workers, force=force)
    console.print(f"[green]Prepared[/] {out} ({manifest.summary_line()})")
