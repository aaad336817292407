"""`facedenoise prepare`: build the split dataset and its fixed noisy evaluation pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facedenoise.cli.common import console, user_errors
from facedenoise.config import PrepareConfig

DEFAULTS = PrepareConfig()


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
            ".tar(.gz) archive, or 'sample' for the bundled faces (the default).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[Path, typer.Option(help="Output folder for the prepared dataset.")] = Path(
        "data"
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
        )
        manifest = run_prepare(source, out, config, workers=workers, force=force)
    _print_summary(manifest, out)


def _print_summary(manifest, out: Path) -> None:
    """A table of the splits, the skipped files by reason, and hints for what comes next."""
    from collections import Counter

    from rich.table import Table

    from facedenoise.dataset import NOISY_SPLITS, SPLITS

    table = Table(title=f"Prepared {out}", title_justify="left")
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
        reasons = Counter(_reason_kind(entry["reason"]) for entry in manifest.skipped)
        listed = "; ".join(f"{n:,} {reason}" for reason, n in reasons.most_common())
        console.print(
            f"[yellow]Skipped {len(manifest.skipped):,}[/] ({listed}); see 'skipped' in "
            f"{manifest.path}.",
            highlight=False,
        )
    if manifest.shortfall:
        console.print(f"[yellow]Note:[/] {manifest.shortfall}.", highlight=False)
    if manifest.data["source"] == "sample":
        console.print(
            "Hint: this is the small bundled sample; for the FFHQ protocol, download "
            "thumbnails128x128 and pass --source PATH/TO/thumbnails128x128 (or its .zip).",
            highlight=False,
            soft_wrap=True,
        )


def _reason_kind(reason: str) -> str:
    """Group skip reasons: 'duplicate of a/b.png.' and 'duplicate of c.png.' are one kind."""
    kinds = {"duplicate of": "duplicates", "smaller than --size": "too small", "empty": "empty"}
    return next((kind for key, kind in kinds.items() if key in reason), "unreadable")
