"""`facedenoise denoise`: denoise photos of any size; paths work like `cp`."""

from __future__ import annotations

import contextlib
from typing import Annotated

import typer

from facedenoise.cli.common import console, quiet_tensorflow, user_errors
from facedenoise.config import DenoiseConfig

DEFAULTS = DenoiseConfig()
_PROGRESS_FROM = 4  # images; fewer finish before a bar would be worth reading


def denoise(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="INPUT... [OUTPUT]. Files, folders or globs (quote globs: 'photos/*.jpg'). "
            "With one path each result goes beside its input as <name>.denoised.<ext>; with "
            "more, the last path is the output: a file when the only input is a file (its "
            "extension picks the format), else a folder, created if missing, in which files "
            "from a folder or glob keep their sub-folders.",
            show_default=False,
        ),
    ],
    model: Annotated[
        str | None,
        typer.Option(
            help="Run folder, .keras file or 'latest' (default: the packaged starter weights, "
            "else the newest run in --runs).",
            show_default=False,
        ),
    ] = None,
    tile: Annotated[
        int, typer.Option(min=32, help="Images larger than this go through tiles of this side.")
    ] = DEFAULTS.tile,
    tile_overlap: Annotated[
        int, typer.Option(min=0, help="Overlap between tiles, in pixels (blended smoothly).")
    ] = DEFAULTS.tile_overlap,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Images (or tiles) per model call.")
    ] = DEFAULTS.batch_size,
    suffix: Annotated[str, typer.Option(help="Suffix of outputs written beside inputs.")] = (
        DEFAULTS.suffix
    ),
    recursive: Annotated[bool, typer.Option(help="Descend into sub-folders.")] = False,
    jpeg_quality: Annotated[
        int, typer.Option(min=1, max=100, help="Quality of JPEG and WebP outputs.")
    ] = DEFAULTS.jpeg_quality,
    force: Annotated[
        bool,
        typer.Option(
            help="Overwrite existing outputs. Without it, a single image refuses to overwrite, "
            "and with several images existing outputs are skipped, so re-running resumes. "
            "Inputs are never overwritten."
        ),
    ] = False,
    runs: Annotated[str, typer.Option(help="Folder that holds run folders.")] = "runs",
) -> None:
    """Remove Gaussian noise from photos of any size.

    Formats: PNG, JPEG, WebP, TIFF, BMP; 8/16-bit, grey, RGBA (alpha kept, except in JPEG).

    Exits 1 if any image failed; the others are still written.
    """
    quiet_tensorflow()
    from facedenoise.inference import denoise_paths

    config = DenoiseConfig(
        tile=tile,
        tile_overlap=tile_overlap,
        batch_size=batch_size,
        suffix=suffix,
        jpeg_quality=jpeg_quality,
    )
    with user_errors(), _progress_bar() as on_progress:
        summary = denoise_paths(
            paths,
            model=model,
            config=config,
            force=force,
            recursive=recursive,
            runs_dir=runs,
            on_progress=on_progress,
        )
    console.print(summary.describe(), soft_wrap=True)  # unwrapped, so paths copy whole
    if summary.failed:
        raise typer.Exit(1)


@contextlib.contextmanager
def _progress_bar():
    """Yield an on_progress(finished, total) callback that drives a rich progress bar."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    # Logs and pipes get only the summary; a transient bar would leave a blank line there.
    quiet = not console.is_terminal
    with Progress(*columns, console=console, transient=True, disable=quiet) as progress:
        task = progress.add_task("Loading the model", total=None)

        def on_progress(finished: int, total: int) -> None:
            progress.update(
                task,
                description="Denoising",
                completed=finished,
                total=total,
                visible=total >= _PROGRESS_FROM,
            )

        yield on_progress
