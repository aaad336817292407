"""`facedenoise evaluate`: PSNR/SSIM of a model (and classical baselines) on a split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facedenoise.cli.common import console, quiet_tensorflow, user_errors


def evaluate(
    split: Annotated[str, typer.Option(help="test or val.")] = "test",
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
        typer.Option(help="Report folder (default: <run>/eval/<split>/).", show_default=False),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON on stdout.")
    ] = False,
    baselines: Annotated[
        str,
        typer.Option(help="Classical denoisers to compare: gaussian,nlm,bm3d,tv,wavelet or all."),
    ] = "",
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
    """Measure PSNR/SSIM on the fixed noisy files of a split and write a report."""
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
        )
    if json_output:
        typer.echo(report.to_json())
    else:
        console.print(report.table())
        console.print(f"[green]Report written to[/] {report.out_dir}")
