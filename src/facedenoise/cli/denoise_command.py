"""`facedenoise denoise`: denoise photos of any size; paths work like `cp`.

Arguments are checked before anything heavy is imported; TensorFlow loads only when a
.keras file or a run folder is used (the packaged starter and .onnx files run on ONNX
Runtime).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from facedenoise.cli.common import console, error_console, progress_bar, user_errors
from facedenoise.config import DEFAULT_TILE_OVERLAP, RUNS_DIR, DenoiseConfig

DEFAULTS = DenoiseConfig()
_PROGRESS_FROM = 4  # images; fewer finish before a bar would be worth reading
_STYLES = {"done": "bold green", "skipped": "bold yellow", "failed": "red", "empty": "yellow",
           "metadata": "yellow"}

MODEL_HELP = (
    "Run folder, .keras or .onnx file, 'starter' (the packaged weights) or 'latest' (the "
    "newest run in --runs). Default: the newest run in --runs, else the packaged starter."
)
NOISE_LEVEL_HELP = (
    "Std of the noise on [0, 1] images (0.3 = 76.5/255), or 'auto' to estimate it for each "
    "image. Higher smooths more, lower keeps more detail (a level well above the image's "
    "own noise is met by adding seeded noise first, which --verbose reports; one above the "
    "model's training range runs at its top, 0.5 for the starter). Only for models with a "
    "noise-level input."
)


# Options as types, so that the command's signature reads as a list (and export shares them).
Paths = Annotated[
    list[str],
    typer.Argument(
        metavar="PATHS",
        help="INPUT... [OUTPUT]: files, folders or globs (quote globs: 'photos/*.jpg'). "
        "With one path each result goes beside its input as <name>.denoised.<ext>; with "
        "more, the last path is the output: a file when the only input is a file (its "
        "extension picks the format), else a folder, created if missing, in which files "
        "from a folder or glob keep their sub-folders.",
        show_default=False,
    ),
]
ModelOption = Annotated[
    str | None,
    typer.Option(metavar="RUN|FILE|starter|latest", help=MODEL_HELP, show_default=False),
]
NoiseLevelOption = Annotated[str, typer.Option(metavar="auto|LEVEL", help=NOISE_LEVEL_HELP)]
TileOption = Annotated[
    int,
    typer.Option(min=32, metavar="PIXELS", help="Images larger than this (in pixels, either "
                 "side) go through overlapping square tiles of this side."),
]
OverlapOption = Annotated[
    int | None, typer.Option(min=0, metavar="PIXELS", show_default=False,
                             help="Overlap between tiles, in pixels (blended smoothly). "
                             f"Default: {DEFAULT_TILE_OVERLAP}, at most a quarter of --tile.")
]
EnsembleOption = Annotated[
    int,
    typer.Option(metavar="1|2|4|8",
                 help="Average the model over N flips/rotations of each image: a little "
                 "cleaner (up to about +0.5 dB with 8) for N times the model time."),
]
ChromaFilterOption = Annotated[
    bool,
    typer.Option("--chroma-filter/--no-chroma-filter", metavar="",
                 help="After the model, smooth leftover colour speckle with a luma-guided "
                 "filter as strong as the noise level (off below 0.03; models without a "
                 "noise input skip it)."),
]
TopUpOption = Annotated[
    bool,
    typer.Option("--top-up/--no-top-up", metavar="",
                 help="When --noise-level is well above an image's own noise, add seeded "
                 "noise first, so that a higher level smooths more instead of brightening "
                 "the image and drawing texture on it (docs/noise_estimation.md)."),
]
BatchOption = Annotated[
    int, typer.Option(min=1, metavar="N", help="Images (or tiles) per model call.")
]
MaxPixelsOption = Annotated[
    int,
    typer.Option(min=1, metavar="PIXELS", help="Skip (and report) images with more pixels "
                 "than this (width x height), checked from the header before decoding."),
]
SuffixOption = Annotated[
    str, typer.Option(metavar="TEXT", help="Suffix of outputs written beside inputs.")
]
RecursiveOption = Annotated[
    bool, typer.Option("--recursive/--no-recursive", metavar="", help="Descend into sub-folders.")
]
QualityOption = Annotated[
    int, typer.Option(min=1, max=100, metavar="Q", help="Quality of JPEG and WebP outputs.")
]
ExifOption = Annotated[
    bool,
    typer.Option("--keep-exif/--strip-exif", metavar="",
                 help="Copy the input's EXIF (capture date, camera, GPS position) into PNG "
                 "and JPEG outputs, its orientation set upright; --strip-exif writes none."),
]
ForceOption = Annotated[
    bool,
    typer.Option("--force/--no-force", metavar="",
                 help="Overwrite existing outputs. Without it, a single image refuses to "
                 "overwrite, and with several images existing outputs are skipped, so "
                 "re-running resumes. Inputs are never overwritten."),
]
VerboseOption = Annotated[
    bool, typer.Option("--verbose", "-v", metavar="",
                       help="Print each file with the noise level it used.")
]
RunsOption = Annotated[
    Path, typer.Option(metavar="FOLDER", help="Folder that holds run folders.")
]


def denoise(
    paths: Paths,
    model: ModelOption = None,
    noise_level: NoiseLevelOption = str(DEFAULTS.noise_level),
    tile: TileOption = DEFAULTS.tile,
    tile_overlap: OverlapOption = DEFAULTS.tile_overlap,
    batch_size: BatchOption = DEFAULTS.batch_size,
    ensemble: EnsembleOption = DEFAULTS.ensemble,
    chroma_filter: ChromaFilterOption = DEFAULTS.chroma_filter,
    top_up: TopUpOption = DEFAULTS.top_up,
    max_pixels: MaxPixelsOption = DEFAULTS.max_pixels,
    suffix: SuffixOption = DEFAULTS.suffix,
    recursive: RecursiveOption = False,
    jpeg_quality: QualityOption = DEFAULTS.jpeg_quality,
    keep_exif: ExifOption = DEFAULTS.keep_exif,
    force: ForceOption = False,
    verbose: VerboseOption = False,
    runs: RunsOption = Path(RUNS_DIR),
) -> None:
    """Remove Gaussian noise from photos of any size.

    Formats: PNG, JPEG, WebP, TIFF, BMP; 8/16-bit, grey, RGBA (alpha kept, except in JPEG).

    Exits 1 if any image failed; the others are still written.
    """
    with user_errors():
        from facedenoise.inference import check_config, check_noise_level, denoise_paths

        config = DenoiseConfig(
            tile=tile,
            tile_overlap=tile_overlap,
            batch_size=batch_size,
            suffix=suffix,
            jpeg_quality=jpeg_quality,
            keep_exif=keep_exif,
            noise_level=check_noise_level(noise_level),
            max_pixels=max_pixels,
            ensemble=ensemble,
            chroma_filter=chroma_filter,
            top_up=top_up,
        )
        check_config(config)
        with _progress_bar(runs) as (on_model, on_progress):
            summary = denoise_paths(
                paths,
                model=model,
                config=config,
                force=force,
                recursive=recursive,
                runs_dir=runs,
                on_model=on_model,
                on_progress=on_progress,
            )
    if verbose:
        _print_files(summary, config.noise_level)
    for kind, line in summary.describe():
        console.print(escape(line), style=_STYLES.get(kind), soft_wrap=True, highlight=False)
    if summary.failed:
        raise typer.Exit(1)


def _print_files(summary, requested) -> None:
    """One line per denoised file: source, target, the noise level it used (and the level
    asked for when the model's range lowered it) and the noise added first when the level
    was told well above the image's own (`requested`: the checked --noise-level)."""
    import math

    from facedenoise.inference.levels import TOP_UP_RATIO

    for result in summary.done:
        if result.noise_level is None:
            level = "no noise-level input"
        elif result.level_estimated:
            level = f"noise level {result.noise_level:.3f} (estimated)"
        elif abs(requested - result.noise_level) > 1e-9:
            level = (f"noise level {result.noise_level:.3f} (given {requested:g}: the top of "
                     "the model's training range)")
        else:
            level = f"noise level {result.noise_level:.3f} (given)"
        if result.top_up > 0:
            # top-up = sqrt((level / ratio)^2 - own^2): what the image read as, recovered
            target = result.noise_level / TOP_UP_RATIO
            own = math.sqrt(max(target**2 - result.top_up**2, 0.0))
            level += (f"; the image read as {own:.3f}, so noise of {result.top_up:.3f} was "
                      f"added first (to {target:.3f}, the level / {TOP_UP_RATIO:g})")
        console.print(
            escape(f"{result.source} -> {result.target}  {level}"), soft_wrap=True,
            highlight=False,
        )


@contextlib.contextmanager
def _progress_bar(runs_dir: Path):
    """Yield (on_model, on_progress) callbacks: the model used, then a rich progress bar."""
    from facedenoise.runs import describe_model

    # On stdout, with the summary; hidden for a few images that finish before it is readable.
    with progress_bar("Loading the model", target=console,
                      min_total=_PROGRESS_FROM) as (on_progress, set_label):

        def on_model(denoiser) -> None:
            where = describe_model(denoiser.source, runs_dir) if denoiser.source else "a model"
            runtime = denoiser.runtime.name
            if denoiser.config.ensemble > 1:
                runtime += f", ensemble {denoiser.config.ensemble}"
            if denoiser.takes_noise_level and not denoiser.config.chroma_filter:
                runtime += ", no chroma filter"
            console.print(escape(f"Model: {where} ({runtime})"), soft_wrap=True, highlight=False)
            level, highest = denoiser.config.noise_level, denoiser.highest_level
            if isinstance(level, float) and highest is not None and level > highest:
                error_console.print(
                    f"--noise-level {level:g} is above the levels this model was trained on "
                    f"(up to {highest:g}); it runs at {highest:g}.", style="yellow",
                    soft_wrap=True, highlight=False)
            set_label("Denoising")

        yield on_model, on_progress

