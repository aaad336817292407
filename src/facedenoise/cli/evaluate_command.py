"""`facedenoise evaluate`: PSNR/SSIM of a model (and classical baselines) on a split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facedenoise.cli.common import console, quiet_tensorflow, user_errors


def evaluate(
    split: Annotated[str, typer.Option(help="test or val (ignored with --pairs).")] = "test",
    data: Annotated[Path, typer.Option(help="Prepared dataset (see facedenoise prepare).")] = Path(
        "data"
    ),
    model: Annotated[
        str | None,
        typer.Option(
            help="Run folder or .keras file (default: newest run in --runs, else the packaged "
            "starter weights).",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Report folder. Default: <run>/eval/<split>/ for a run's best.keras, "
            "<folder>/eval/<file name>/<split>/ for another .keras file, "
            "./eval/starter/<split>/ for the packaged weights; <split> is 'pairs' with --pairs.",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON on stdout.")
    ] = False,
    baselines: Annotated[
        str,
        typer.Option(
            help="Classical denoisers to compare on the same files: a comma-separated list of "
            "gaussian,nlm,tv,wavelet,bm3d, or all (bm3d needs pip install 'facedenoise\\[bm3d]').",
        ),
    ] = "",
    noise_factor: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Noise std on [0, 1] the baselines assume (default: the dataset's, or 0.3 "
            "with --pairs).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Evaluate only the first N images.")
    ] = None,
    pairs: Annotated[
        tuple[Path, Path] | None,
        typer.Option(help="NOISY_DIR CLEAN_DIR: your own pairs, matched by file name.",
                     show_default=False),
    ] = None,
    runs: Annotated[Path, typer.Option(help="Folder that holds run folders.")] = Path("runs"),
) -> None:
    """Measure PSNR/SSIM on the fixed noisy files of a split and write a report.

    Writes metrics.json, per_image.csv, samples.png, psnr_gain.png and a self-contained
    report.html, and prints a table ranking the model, the noisy input and any baselines.
    """
    quiet_tensorflow()
    from facedenoise.evaluate import evaluate as run_evaluate

    with user_errors():
        report = run_evaluate(
            model=model,
            data_dir=data,
            split=split,
            out=out,
            baselines=baselines,
            limit=limit,
            pairs=pairs,
            runs_dir=runs,
            show_progress=not json_output,
            noise_factor=noise_factor,
        )
    if json_output:
        typer.echo(report.to_json())
    else:
        console.print(report.table())
        console.print(f"[green]Report written to[/] {report.out_dir}")
