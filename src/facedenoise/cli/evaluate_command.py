"""`facedenoise evaluate`: PSNR/SSIM of a model (and classical baselines) on a split."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from facedenoise.cli.common import (
    console,
    error_console,
    progress_bar,
    quiet_tensorflow,
    user_errors,
)
from facedenoise.cli.denoise_command import ChromaFilterOption, EnsembleOption
from facedenoise.config import DATA_DIR, RUNS_DIR, EvaluateConfig

DEFAULTS = EvaluateConfig()
MAX_SKIPPED_SHOWN = 10  # skipped pairs listed on the terminal; report.html lists them all


def evaluate(
    split: Annotated[str, typer.Option(help="test or val (ignored with --pairs).")] = (
        DEFAULTS.split
    ),
    data: Annotated[Path, typer.Option(help="Prepared dataset (see facedenoise prepare).")] = Path(
        DATA_DIR
    ),
    model: Annotated[
        str | None,
        typer.Option(
            help="Run folder, .keras or .onnx file, 'latest' (newest run in --runs) or "
            "'starter' (the packaged weights). Default: the newest run in --runs, else the "
            "packaged starter weights, as for facedenoise denoise.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Report folder. Default: <run>/eval/<split>/ for a run's best.keras, "
            "<folder>/eval/<file name>/<split>/ for another model file, "
            "./eval/starter/<split>/ for the packaged weights; <split> is 'pairs' with --pairs.",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", metavar="", help="Print the summary as JSON on stdout.")
    ] = False,
    baselines: Annotated[
        str,
        typer.Option(
            help="Classical denoisers to compare on the same files: a comma-separated list of "
            "gaussian,nlm,tv,wavelet,bm3d, or all (bm3d needs pip install 'facedenoise\\[bm3d]').",
        ),
    ] = DEFAULTS.baselines,
    noise_factor: Annotated[
        float | None,
        typer.Option(
            min=0.0,
            help="Noise level (std on [0, 1]) of the noisy files, told to the baselines and "
            "to a noise-conditional model (default: the dataset's, or 0.3 with --pairs).",
            show_default=False,
        ),
    ] = None,
    noise_levels: Annotated[
        str,
        typer.Option(
            help="Also sweep these noise levels, e.g. 0,0.05,0.1,0.2,0.3,0.4,0.5: the same clean "
            "images with fresh noise seeded per (level, image); writes noise_sweep.png.",
            show_default=False,
        ),
    ] = ",".join(f"{level:g}" for level in DEFAULTS.noise_levels),
    sweep_seed: Annotated[
        int, typer.Option(help="Seed of the sweep's noise (--noise-levels).")
    ] = DEFAULTS.sweep_seed,
    limit: Annotated[
        int | None, typer.Option(min=1, help="Evaluate only the first N images.")
    ] = DEFAULTS.limit,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Images per model call.")
    ] = DEFAULTS.batch_size,
    ensemble: EnsembleOption = DEFAULTS.ensemble,
    chroma_filter: ChromaFilterOption = DEFAULTS.chroma_filter,
    pairs: Annotated[
        tuple[Path, Path] | None,
        typer.Option(help="NOISY_DIR CLEAN_DIR: your own pairs, matched by file name.",
                     show_default=False),
    ] = None,
    runs: Annotated[Path, typer.Option(help="Folder that holds run folders.")] = Path(RUNS_DIR),
) -> None:
    """Measure PSNR/SSIM on the fixed noisy files of a split and write a report.

    Writes metrics.json, per_image.csv, samples.png, psnr_gain.png and report.html
    (with --noise-levels also noise_sweep.png and sweep_per_image.csv), and prints
    a table ranking the model, the noisy input and any baselines.
    """
    with user_errors():
        from facedenoise.inference.ensemble import check_ensemble

        check_ensemble(ensemble)  # before TensorFlow loads: a typo should fail fast
    quiet_tensorflow()
    from facedenoise.evaluate import evaluate as run_evaluate
    from facedenoise.evaluate import parse_noise_levels
    from facedenoise.report import MODEL

    with user_errors():
        config = EvaluateConfig(split=split, batch_size=batch_size, limit=limit,
                                baselines=baselines, noise_levels=parse_noise_levels(noise_levels),
                                sweep_seed=sweep_seed, ensemble=ensemble,
                                chroma_filter=chroma_filter)
        with progress_bar("Evaluating", enabled=not json_output) as (on_progress, _):
            report = run_evaluate(model=model, data_dir=data, out=out, config=config,
                                  pairs=pairs, runs_dir=runs, noise_factor=noise_factor,
                                  on_progress=on_progress)
    summary = report.summary()
    _print_model_and_skipped(summary, runs)
    if json_output:
        typer.echo(report.to_json())
        return
    console.print(ranking_table(summary))
    if summary["sweep"]:
        for metric, digits in (("psnr", 2), ("ssim", 3)):
            console.print(sweep_table(summary, metric, digits))
        if "noise_level_used" in summary["sweep"][0]["methods"][MODEL]:
            console.print(estimate_table(summary))
    console.print(f"[green]Report written to[/] {escape(str(report.out_dir))}", highlight=False,
                  soft_wrap=True)


def _print_model_and_skipped(summary: dict, runs_dir: Path) -> None:
    """Which model was used (and by which rule), and the pairs that could not be scored;
    on stderr, so that --json output stays clean."""
    from facedenoise.runs import describe_model

    model = escape(describe_model(Path(summary["model"]), runs_dir))
    error_console.print(f"Model: {model}", highlight=False, soft_wrap=True)
    skipped = summary["skipped"]
    for item in skipped[:MAX_SKIPPED_SHOWN]:
        error_console.print(f"[yellow]skipped[/] {escape(item['image'])}: "
                            f"{escape(item['reason'])}", highlight=False, soft_wrap=True)
    if len(skipped) > MAX_SKIPPED_SHOWN:
        error_console.print(f"[yellow]... and {len(skipped) - MAX_SKIPPED_SHOWN} more "
                            "skipped pairs[/] (all listed in report.html)", highlight=False)


def ranking_table(summary: dict) -> Table:
    """The methods ranked by mean PSNR, from `Report.summary()`; readable at 80 columns
    (medians, extremes and SSIM spread are in report.html and metrics.json)."""
    from facedenoise.report import INPUT, MODEL, format_number, format_speed

    what = summary.get("split") or "pairs"
    table = Table(
        title=f"PSNR (dB) and SSIM on {escape(what)}: {summary['images']} images, "
        f"noise factor {summary.get('noise_factor', '?')}",
        caption="mean ± std; gain: mean per-image improvement over the noisy input; "
        f"images/s on {escape(str(summary.get('device', 'this machine')))}",
        box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False, pad_edge=False,
    )
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("method", min_width=12)
    for header in ("PSNR", "± std", "SSIM", "gain dB", "gain SSIM", "img/s"):
        table.add_column(header, justify="right", no_wrap=True)
    for rank, name in enumerate(summary["ranking"], start=1):
        method = summary["methods"][name]
        is_input = name == INPUT
        label = escape(method["label"])
        table.add_row(
            str(rank),
            f"[bold]{label}[/]" if name == MODEL else label,
            format_number(method["psnr"]["mean"], 2),
            _spread(method["psnr"]["std"]),
            format_number(method["ssim"]["mean"], 3),
            "" if is_input else format_number(method["psnr_gain"], 2, sign=True),
            "" if is_input else format_number(method["ssim_gain"], 3, sign=True),
            format_speed(method["images_per_second"]),
        )
    return table


def sweep_table(summary: dict, metric: str, digits: int) -> Table:
    """Mean PSNR or SSIM of every method at each sweep level ('inf': identical to clean)."""
    from facedenoise.report import MODEL, format_number

    levels = summary["sweep"]
    table = Table(title=f"Noise sweep: mean {metric.upper()} by noise level, "
                  f"{summary['images']} images", box=box.SIMPLE_HEAD, padding=(0, 1),
                  show_edge=False)
    table.add_column("method", min_width=12)
    for level in levels:
        table.add_column(f"{level['noise_level']:g}", justify="right", no_wrap=True)
    for name, method in levels[0]["methods"].items():
        label = escape(method["label"])
        cells = [format_number(level["methods"][name][metric]["mean"], digits)
                 for level in levels]
        table.add_row(f"[bold]{label}[/]" if name == MODEL else label, *cells)
    return table


def estimate_table(summary: dict) -> Table:
    """The noise level the model estimated (noise level auto) at each true sweep level:
    mean and range over the images."""
    from facedenoise.report import MODEL

    table = Table(title="Noise level the model estimated (auto), by true level",
                  box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False)
    table.add_column("true level", justify="right")
    for header in ("mean", "min", "max"):
        table.add_column(header, justify="right", no_wrap=True)
    for level in summary["sweep"]:
        used = level["methods"][MODEL]["noise_level_used"]
        table.add_row(f"{level['noise_level']:g}",
                      *[f"{used[stat]:.3f}" for stat in ("mean", "min", "max")])
    return table


def _spread(std: float | None) -> str:
    # None: a standard deviation over an infinite PSNR (an image identical to its clean one).
    return "-" if std is None else f"{std:.2f}"
