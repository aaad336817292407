"""`facedenoise prepare`: build the split dataset and its fixed noisy evaluation pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facedenoise.cli.common import console, progress_bar, user_errors
from facedenoise.config import DATA_DIR, PrepareConfig

DEFAULTS = PrepareConfig()
# How the summary names each skip kind (kinds a newer core adds are shown as they are).
_KIND_LABELS = {
    "duplicate": "duplicates",
    "too_small": "too small",
    "too_large": "too large",
    "empty": "empty",
    "unreadable": "unreadable",
    "not_a_regular_file": "not regular files",
}


def _parse_count(value: str) -> int | None:
    from facedenoise.errors import FaceDenoiseError

    if value.lower() == "all":
        return None
    try:
        count = int(value)
    except ValueError:
        raise FaceDenoiseError(f"--count must be a whole number or 'all', not '{value}'.") from None
    if count < 1:
        raise FaceDenoiseError(f"--count must be at least 1, not {count}.")
    return count


def prepare(
    source: Annotated[
        str | None,
        typer.Option(
            help="Folder of images (FFHQ thumbnails128x128 or any folder of faces), a .zip or "
            ".tar(.gz) archive, or 'sample' for the bundled faces (the default). Must not "
            "overlap --out.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Output folder for the prepared dataset.")] = Path(
        DATA_DIR
    ),
    count: Annotated[str, typer.Option(help="How many images to use ('all' for every one).")] = str(
        DEFAULTS.count
    ),
    test_fraction: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="Share of the selection held out for test.")
    ] = DEFAULTS.test_fraction,
    val_fraction: Annotated[
        float,
        typer.Option(min=0.0, max=0.9, help="Share of the non-test images used for validation."),
    ] = DEFAULTS.val_fraction,
    size: Annotated[
        int,
        typer.Option(min=8, metavar="PIXELS", help="Side of the square output images, in pixels."),
    ] = DEFAULTS.size,
    noise_factor: Annotated[
        float,
        typer.Option(
            min=0.0, max=1.0,
            help="Gaussian noise std on [0, 1] images (0.3 = 76.5/255); above 0.",
        ),
    ] = DEFAULTS.noise_factor,
    seed: Annotated[int, typer.Option(help="Seed of the selection, split and noise.")] = (
        DEFAULTS.seed
    ),
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default: all cores).")
    ] = None,
    max_pixels: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="PIXELS",
            help="Skip source images larger than this (width x height, read from the header "
            "before decoding); bounds each worker's memory.",
        ),
    ] = DEFAULTS.max_pixels,
    allow_upscale: Annotated[
        bool,
        typer.Option(metavar="", help="Keep images smaller than --size by upscaling them."),
    ] = DEFAULTS.allow_upscale,
    force: Annotated[
        bool,
        typer.Option(metavar="", help="Overwrite an --out folder prepared with other settings."),
    ] = False,
) -> None:
    """Select, split, resize and add fixed noise to a face dataset (default: bundled sample).

    Writes clean/{train,val,test}/<id>.png, noisy/{val,test}/<id>.png and manifest.json.
    Running it again with the same settings verifies the files and resumes an interrupted run.
    """
    from facedenoise.prepare import prepare as run_prepare

    with user_errors():
        config = PrepareConfig(
            count=_parse_count(count),
            test_fraction=test_fraction,
            val_fraction=val_fraction,
            size=size,
            noise_factor=noise_factor,
            seed=seed,
            allow_upscale=allow_upscale,
            max_pixels=max_pixels,
        )
        with progress_bar("Preparing", show_rate=True) as (on_progress, _):
            manifest = run_prepare(
                source, out, config, workers=workers, force=force, on_progress=on_progress
            )
    _print_summary(manifest, out)


def _print_summary(manifest, out: Path) -> None:
    """A table of the splits, the skipped files by kind, and hints for what comes next."""
    from rich.markup import escape
    from rich.table import Table

    from facedenoise.dataset import NOISY_SPLITS, SPLITS

    table = Table(title=f"Prepared {escape(str(out))}", title_justify="left")
    table.add_column("split")
    table.add_column("clean", justify="right")
    table.add_column("noisy", justify="right")
    for split in SPLITS:
        count = manifest.counts[split]
        table.add_row(split, f"{count:,}", f"{count:,}" if split in NOISY_SPLITS else "-")
    console.print(table)
    done = len(manifest.images)
    rate = done / manifest.seconds if manifest.seconds else 0.0
    reused = f", {manifest.reused:,} verified from the previous run" if manifest.reused else ""
    console.print(f"{done:,} images in {manifest.seconds:.1f} s ({rate:,.0f} images/s){reused}")
    if manifest.skipped:
        console.print(
            f"[yellow]Skipped {len(manifest.skipped):,}[/] ({_skipped_by_kind(manifest)}); see "
            f"'skipped' in {escape(str(manifest.path))}.",
            highlight=False,
        )
    if manifest.shortfall:
        console.print(f"[yellow]Note:[/] {escape(manifest.shortfall)}.", highlight=False)
    if manifest.data["source"] == "sample":
        console.print(
            "Hint: this is the small bundled sample; for the FFHQ protocol, download "
            "thumbnails128x128 and pass --source PATH/TO/thumbnails128x128 (or its .zip).",
            highlight=False,
            soft_wrap=True,
        )


def _skipped_by_kind(manifest) -> str:
    """'3 unreadable; 1 duplicates': counts of the skipped files per kind, most first."""
    from collections import Counter

    from rich.markup import escape

    kinds = Counter(entry.get("kind", "unreadable") for entry in manifest.skipped)
    return "; ".join(
        f"{n:,} {escape(_KIND_LABELS.get(kind, str(kind)))}" for kind, n in kinds.most_common()
    )
