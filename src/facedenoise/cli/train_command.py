"""`facedenoise train`: train a U-Net on a prepared dataset into a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facedenoise.cli.common import console, quiet_tensorflow, user_errors
from facedenoise.config import ModelConfig, TrainConfig

MODEL = ModelConfig()
TRAIN = TrainConfig()


def train(
    data: Annotated[Path, typer.Option(help="Prepared dataset (see facedenoise prepare).")] = Path(
        "data"
    ),
    arch: Annotated[
        str, typer.Option(help="Architecture: unet (default) or original (the notebook's).")
    ] = MODEL.arch,
    width: Annotated[int, typer.Option(min=1, help="unet: channels at the first level.")] = (
        MODEL.width
    ),
    depth: Annotated[int, typer.Option(min=1, max=6, help="unet: resolution levels.")] = (
        MODEL.depth
    ),
    epochs: Annotated[int, typer.Option(min=1, help="Total epochs.")] = TRAIN.epochs,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Global batch size (split across devices).")
    ] = TRAIN.batch_size,
    lr: Annotated[float, typer.Option(min=0.0, help="Peak learning rate (Adam).")] = TRAIN.lr,
    loss: Annotated[str, typer.Option(help="mse, l1 or charbonnier.")] = TRAIN.loss,
    schedule: Annotated[str, typer.Option(help="cosine, plateau or constant.")] = (
        TRAIN.schedule
    ),
    patience: Annotated[
        int, typer.Option(min=1, help="Early stopping: epochs without validation gain.")
    ] = TRAIN.patience,
    patch_size: Annotated[
        int | None, typer.Option(min=8, help="Train on random crops of this size.")
    ] = TRAIN.patch_size,
    steps_per_epoch: Annotated[
        int | None, typer.Option(min=1, help="Batches per epoch (default: one pass).")
    ] = TRAIN.steps_per_epoch,
    extra_train: Annotated[
        Path | None,
        typer.Option(help="Folder of more clean PNGs to train on (any size >= --patch-size).",
                     show_default=False),
    ] = None,
    init: Annotated[
        str | None,
        typer.Option(help="Start from these weights (run folder, .keras or 'starter'): fine-tune.",
                     show_default=False),
    ] = None,
    noise_factor: Annotated[
        float | None, typer.Option(min=0.0, help="Noise std (default: the dataset's).")
    ] = TRAIN.noise_factor,
    flip: Annotated[bool, typer.Option(help="Random horizontal flips.")] = TRAIN.flip,
    rotate: Annotated[bool, typer.Option(help="Random 90-degree rotations.")] = TRAIN.rotate,
    color_jitter: Annotated[
        bool, typer.Option(help="Small random brightness/contrast changes.")
    ] = TRAIN.color_jitter,
    seed: Annotated[int, typer.Option(help="Seed of weights, shuffling and noise.")] = TRAIN.seed,
    time_limit: Annotated[
        float | None,
        typer.Option(min=0.0, help="Stop cleanly after this many minutes, keeping best and last."),
    ] = TRAIN.time_limit_minutes,
    mixed_precision: Annotated[
        bool | None,
        typer.Option("--mixed-precision/--no-mixed-precision", help="Default: on with a GPU."),
    ] = TRAIN.mixed_precision,
    jit_compile: Annotated[
        bool | None,
        typer.Option("--jit-compile/--no-jit-compile", help="XLA. Default: on with a GPU."),
    ] = TRAIN.jit_compile,
    strategy: Annotated[
        str, typer.Option(help="auto, none, mirrored (GPUs here) or multiworker (TF_CONFIG).")
    ] = TRAIN.strategy,
    runs: Annotated[Path, typer.Option(help="Folder that holds run folders.")] = Path("runs"),
    resume: Annotated[
        Path | None, typer.Option(help="Continue an interrupted run folder.", show_default=False)
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Print the model's size and cost, train nothing.")
    ] = False,
) -> None:
    """Train a denoising U-Net; writes runs/<timestamp>-<arch>/ with the best and last model."""
    quiet_tensorflow()
    from facedenoise.train import describe_model
    from facedenoise.train import train as run_train

    model_config = ModelConfig(arch=arch, width=width, depth=depth)
    train_config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        loss=loss,
        schedule=schedule,
        patience=patience,
        patch_size=patch_size,
        steps_per_epoch=steps_per_epoch,
        extra_train=str(extra_train) if extra_train else None,
        init_from=init,
        noise_factor=noise_factor,
        flip=flip,
        rotate=rotate,
        color_jitter=color_jitter,
        seed=seed,
        time_limit_minutes=time_limit,
        mixed_precision=mixed_precision,
        jit_compile=jit_compile,
        strategy=strategy,
    )
    with user_errors():
        if dry_run:
            console.print(describe_model(model_config))
            return
        run_dir = run_train(data, runs, model_config, train_config, resume=resume)
    console.print(f"[green]Run saved to[/] {run_dir}")
