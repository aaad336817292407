"""`facedenoise denoise`: denoise photos of any size; paths work like `cp`."""

from __future__ import annotations

from typing import Annotated

import typer

from facedenoise.cli.common import console, quiet_tensorflow, user_errors
from facedenoise.config import DenoiseConfig

DEFAULTS = DenoiseConfig()


def denoise(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="INPUT... [OUTPUT]. Files, folders or globs. With one path the result goes "
            "beside it as <name>.denoised.<ext>; with more, the last path is the output (a file "
            "for a single input file, else a folder).",
            show_default=False,
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            help="Run folder, .keras file or 'latest' (default: the packaged starter weights).",
            show_default=False,
        ),
    ] = None,
    tile: Annotated[int, typer.Option(min=32, help="Tile side for large images.")] = DEFAULTS.tile,
    tile_overlap: Annotated[
        int, typer.Option(min=0, help="Overlap between tiles, in pixels.")
    ] = DEFAULTS.tile_overlap,
    batch_size: Annotated[int, typer.Option(min=1, help="Images per model call.")] = (
        DEFAULTS.batch_size
    ),
    suffix: Annotated[str, typer.Option(help="Suffix of outputs written beside inputs.")] = (
        DEFAULTS.suffix
    ),
    recursive: Annotated[bool, typer.Option(help="Descend into sub-folders.")] = False,
    jpeg_quality: Annotated[
        int, typer.Option(min=1, max=100, help="Quality of JPEG and WebP outputs.")
    ] = DEFAULTS.jpeg_quality,
    force: Annotated[bool, typer.Option(help="Overwrite existing outputs.")] = False,
    runs: Annotated[str, typer.Option(help="Folder that holds run folders.")] = "runs",
) -> None:
    """Remove Gaussian noise from photos (PNG, JPEG, WebP, TIFF, BMP; 8/16-bit; grey; RGBA)."""
    quiet_tensorflow()
    from facedenoise.inference import denoise_paths

    config = DenoiseConfig(
        tile=tile,
        tile_overlap=tile_overlap,
        batch_size=batch_size,
        suffix=suffix,
        jpeg_quality=jpeg_quality,
    )
    with user_errors():
        summary = denoise_paths(paths, model=model, config=config, force=force,
                                recursive=recursive, runs_dir=runs)
    console.print(summary.describe())
    if summary.failed:
        raise typer.Exit(1)
