"""`facedenoise train`: train a U-Net on a prepared dataset into a run folder."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from facedenoise.cli.common import console, error_console, quiet_tensorflow, user_errors
from facedenoise.cli.models_command import describe_one
from facedenoise.config import DATA_DIR, RUNS_DIR, ModelConfig, TrainConfig
from facedenoise.config import model_config as model_config_of

MODEL = ModelConfig()
TRAIN = TrainConfig()


def parse_noise_range(text: str | None) -> tuple[float, float] | None:
    """'LOW:HIGH' -> (low, high); None stays None. Bad text raises typer.BadParameter."""
    if text is None:
        return None
    try:
        low, high = (float(part) for part in text.split(":"))
    except ValueError:
        raise typer.BadParameter(f"'{text}' is not LOW:HIGH, e.g. 0:0.5.") from None
    return low, high


def train(
    ctx: typer.Context,
    data: Annotated[
        Path | None,
        typer.Option(help=f"Prepared dataset (see facedenoise prepare). Default: {DATA_DIR}, "
                     "or with --resume the run's own.", show_default=False),
    ] = None,
    arch: Annotated[
        str,
        typer.Option(help="Architecture: resunet, nafunet, unet or original (the notebook's; "
                     "no noise-level input). See facedenoise models."),
    ] = MODEL.arch,
    width: Annotated[
        int | None,
        typer.Option(min=1, help=f"Channels at the first level (default {MODEL.width}; unet "
                     "and nafunet 32; with --init, the width of those weights).",
                     show_default=False),
    ] = None,
    depth: Annotated[int, typer.Option(min=1, max=6, help="Resolution levels.")] = MODEL.depth,
    blocks_per_level: Annotated[
        int | None,
        typer.Option(min=1, help=f"resunet/nafunet: blocks per level, each side (default "
                     f"{MODEL.blocks_per_level}).", show_default=False),
    ] = None,
    middle_blocks: Annotated[
        int | None,
        typer.Option(min=0, help=f"resunet/nafunet: blocks at the lowest resolution (default "
                     f"{MODEL.middle_blocks}; nafunet 4).", show_default=False),
    ] = None,
    noise_input: Annotated[
        bool,
        typer.Option("--noise-input/--no-noise-input",
                     help="Give the model the noise level as a second input."),
    ] = MODEL.noise_input,
    level_modulation: Annotated[
        bool,
        typer.Option("--level-modulation",
                     help="resunet: also modulate every block by the noise level (FiLM, as "
                          "the packaged weights; docs/architecture_experiments.md; with "
                          "--init, taken from those weights)."),
    ] = MODEL.level_modulation,
    epochs: Annotated[
        int | None,
        typer.Option(min=1, help=f"Total epochs (default {TRAIN.epochs}; with --resume, a "
                     "larger number extends the run).", show_default=False),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Global batch size (split across devices).")
    ] = TRAIN.batch_size,
    lr: Annotated[float, typer.Option(min=0.0, help="Peak learning rate (Adam).")] = TRAIN.lr,
    clip_norm: Annotated[
        float | None,
        typer.Option(help="Clip each step's gradients to this global norm (default: off).",
                     show_default=False),
    ] = TRAIN.clip_norm,
    loss: Annotated[str, typer.Option(
        help="mse, l1, charbonnier, or psnr (minus each image's PSNR: with --noise-range "
             "every level counts alike in dB, in place of the per-level weights).")] = TRAIN.loss,
    schedule: Annotated[str, typer.Option(help="cosine, plateau or constant.")] = (
        TRAIN.schedule
    ),
    patience: Annotated[
        int, typer.Option(min=1, help="Early stopping: epochs without validation gain.")
    ] = TRAIN.patience,
    patch_size: Annotated[
        int | None,
        typer.Option(min=8, help="Train on random crops of this many pixels a side.",
                     show_default=False),
    ] = TRAIN.patch_size,
    steps_per_epoch: Annotated[
        int | None,
        typer.Option(min=1, help="Batches per epoch (default: one pass).", show_default=False),
    ] = TRAIN.steps_per_epoch,
    extra_train: Annotated[
        Path | None,
        typer.Option(help="Folder of more clean PNGs to train on (any size >= --patch-size).",
                     show_default=False),
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(help="Start from these weights (run folder, .keras, 'latest' or "
                     "'starter'): fine-tune.", show_default=False),
    ] = None,
    noise_factor: Annotated[
        float | None,
        typer.Option(help="Noise std on [0, 1] (default: the dataset's, 0.3).",
                     show_default=False),
    ] = TRAIN.noise_factor,
    noise_range: Annotated[
        str | None,
        typer.Option(help="LOW:HIGH, e.g. 0:0.5: a fresh noise level per image in this range "
                     "(and --clean-fraction clean images), so one model serves every level.",
                     show_default=False),
    ] = None,
    clean_fraction: Annotated[
        float, typer.Option(help="With --noise-range: share of images left clean (level 0).")
    ] = TRAIN.clean_fraction,
    level_weight_power: Annotated[
        float,
        typer.Option(help="With --noise-range: each image's squared error weighs "
                     "1 / level^POWER (2: every level alike in units of the level; 1 gives "
                     "strong noise more of the gradient; 0: plain MSE).")
    ] = TRAIN.level_weight_power,
    loss_after_chroma: Annotated[
        bool,
        typer.Option("--loss-after-chroma",
                     help="Score the output after the chroma stage that denoise runs (MSE, "
                     "metrics, validation), so the network may leave fine colour noise to it."),
    ] = TRAIN.loss_after_chroma,
    flip: Annotated[bool, typer.Option("--flip/--no-flip", help="Random horizontal flips.")] = (
        TRAIN.flip
    ),
    rotate: Annotated[
        bool, typer.Option("--rotate/--no-rotate", help="Random 90-degree rotations.")
    ] = TRAIN.rotate,
    color_jitter: Annotated[
        bool, typer.Option("--color-jitter/--no-color-jitter",
                           help="Small random brightness/contrast changes.")
    ] = TRAIN.color_jitter,
    seed: Annotated[int, typer.Option(help="Seed of weights, shuffling and noise.")] = TRAIN.seed,
    time_limit: Annotated[
        float | None,
        typer.Option(min=0.0, help="Stop cleanly after this many minutes, keeping best and last.",
                     show_default=False),
    ] = TRAIN.time_limit_minutes,
    mixed_precision: Annotated[
        bool | None,
        typer.Option("--mixed-precision/--no-mixed-precision", help="Default: on with a GPU.",
                     show_default=False),
    ] = TRAIN.mixed_precision,
    jit_compile: Annotated[
        bool | None,
        typer.Option("--jit-compile/--no-jit-compile", help="XLA. Default: on with a GPU.",
                     show_default=False),
    ] = TRAIN.jit_compile,
    strategy: Annotated[
        str, typer.Option(help="auto (mirrored with several GPUs), none or mirrored.")
    ] = TRAIN.strategy,
    runs: Annotated[Path, typer.Option(help="Folder that holds run folders.")] = Path(RUNS_DIR),
    name: Annotated[
        str | None,
        typer.Option(help="Name of the new run folder in --runs (default: <timestamp>-<arch>).",
                     show_default=False),
    ] = None,
    resume: Annotated[
        Path | None,
        typer.Option(help="Continue an interrupted run folder (its settings win).",
                     show_default=False),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the model's size and cost, train nothing.")
    ] = False,
) -> None:
    """Train a denoising U-Net; writes runs/<timestamp>-<arch>/ with the best and last model."""
    model_config = model_config_of(
        arch, width=width, depth=depth, blocks_per_level=blocks_per_level,
        middle_blocks=middle_blocks, noise_input=noise_input if arch != "original" else None,
        level_modulation=level_modulation,
    )
    train_config = TrainConfig(
        epochs=epochs or TRAIN.epochs, batch_size=batch_size, lr=lr, clip_norm=clip_norm, loss=loss,
        schedule=schedule, patience=patience, patch_size=patch_size,
        steps_per_epoch=steps_per_epoch, extra_train=str(extra_train) if extra_train else None,
        init_from=init, noise_factor=noise_factor, noise_range=parse_noise_range(noise_range),
        clean_fraction=clean_fraction, level_weight_power=level_weight_power,
        loss_after_chroma=loss_after_chroma, flip=flip,
        rotate=rotate, color_jitter=color_jitter, seed=seed, time_limit_minutes=time_limit,
        mixed_precision=mixed_precision, jit_compile=jit_compile, strategy=strategy,
    )
    for warning in _ignored_options(ctx, resume, noise_range):
        error_console.print(f"[yellow]{escape(warning)}[/]", highlight=False, soft_wrap=True)
    with user_errors():
        if init is not None and width is None and resume is None:
            model_config = _shape_of_init(model_config, init, runs)
        _check_before_loading(model_config, train_config, data, resume)
        if dry_run:
            if resume is not None:  # the run's own model, not the command line's
                from facedenoise.config import load_run_config

                model_config = load_run_config(Path(resume) / "config.json").model
            describe_one(model_config)
            return
        quiet_tensorflow()
        from facedenoise.train import train as run_train

        with _progress() as (hooks, started):
            try:
                run_dir = run_train(
                    data if data is not None or resume else Path(DATA_DIR), runs,
                    model_config, train_config, resume=resume, epochs=epochs, run_name=name,
                    **hooks,
                )
            except KeyboardInterrupt:
                hint = (f"Resume with: facedenoise train --resume {started[0]}" if started
                        else "Nothing was saved.")
                error_console.print(f"[yellow]Interrupted.[/] {escape(hint)}", highlight=False,
                                    soft_wrap=True)
                raise typer.Exit(130) from None
    console.print(f"[green]Run saved to[/] {escape(str(run_dir))}", soft_wrap=True)


# What --resume still takes from the command line; every other setting is the run's own.
_RESUME_OPTIONS = {"resume", "epochs", "runs", "data", "dry_run"}


def _ignored_options(ctx: typer.Context, resume, noise_range) -> list[str]:
    """Warnings for options given on the command line that this run will not use."""
    # By name: typer vendors click's ParameterSource enum (typer._click) from 0.2x on.
    given = [name for name in ctx.params
             if getattr(ctx.get_parameter_source(name), "name", None) == "COMMANDLINE"]
    warnings = []
    if resume is not None:
        ignored = [f"--{name.replace('_', '-')}" for name in given
                   if name not in _RESUME_OPTIONS]
        if ignored:
            warnings.append(f"--resume continues the run with its stored settings; ignored: "
                            f"{', '.join(ignored)}.")
    elif noise_range is None:
        warnings += [f"--{name.replace('_', '-')} applies only with --noise-range; ignored."
                     for name in ("clean_fraction", "level_weight_power") if name in given]
    return warnings


def _check_before_loading(model_config, train_config, data, resume) -> None:
    """Validate what can be validated without TensorFlow, so a typo costs no start-up."""
    from facedenoise.errors import FaceDenoiseError

    if resume is not None:
        if not Path(resume).is_dir():
            raise FaceDenoiseError(f"--resume {resume} is not a run folder.")
        return
    from facedenoise.config import (
        check_model_config,
        check_train_config,
        check_training_fits_model,
    )

    check_model_config(model_config)
    check_train_config(train_config)
    check_training_fits_model(model_config, train_config)
    folder = Path(data if data is not None else DATA_DIR)
    if not (folder / "manifest.json").is_file():
        raise FaceDenoiseError(
            f"{folder} is not a prepared dataset (no manifest.json); run facedenoise prepare "
            "first or pass --data."
        )
    from facedenoise.dataset import check_patch_size

    check_patch_size(folder, train_config.patch_size)


@contextlib.contextmanager
def _progress():
    """Yield (train()'s hooks, the run folder once known), drawing a rich bar per epoch."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("loss {task.fields[loss]}"),
        TextColumn("val PSNR {task.fields[val_psnr]}"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )
    plan: dict = {}
    tasks: dict[int, int] = {}
    last_psnr = ["-"]
    started: list[Path] = []

    def on_start(run_dir, info):
        started.append(run_dir)
        plan.update(info)
        console.print(f"Training into {escape(str(run_dir))}", soft_wrap=True)

    def on_batch(epoch, step, logs):
        if epoch not in tasks:
            tasks[epoch] = progress.add_task(
                "train", total=plan["steps_per_epoch"], epoch=epoch, epochs=plan["epochs"],
                loss="-", val_psnr=last_psnr[0])
        loss = logs.get("loss")
        progress.update(tasks[epoch], completed=step,
                        loss="-" if loss is None else f"{loss:.5f}")

    def on_epoch(epoch, logs):
        if "val_psnr" in logs:
            last_psnr[0] = f"{logs['val_psnr']:.2f} dB"
        if epoch in tasks:
            progress.update(tasks[epoch], val_psnr=last_psnr[0])
        if not console.is_terminal:
            console.print(f"epoch {epoch}: loss {logs.get('loss', float('nan')):.5f}, "
                          f"val PSNR {last_psnr[0]}")

    with progress:
        yield {"on_start": on_start, "on_batch": on_batch, "on_epoch": on_epoch}, started


def _shape_of_init(model_config, init: str, runs: Path):
    """`model_config` at the width and with the level modulation of the --init weights when
    they are the same architecture (the packaged starter is wider than the default and
    modulates every block by the level), so `--init` alone fine-tunes them."""
    from dataclasses import replace

    from facedenoise.runs import resolve_model, stored_model_config

    stored = stored_model_config(resolve_model(init, runs))
    if stored is None or stored.arch != model_config.arch:
        return model_config
    return replace(model_config, width=stored.width,
                   level_modulation=model_config.level_modulation or stored.level_modulation)
