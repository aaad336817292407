"""Training: `train(data_dir, runs_dir, model_config, train_config) -> run_dir`.

A run folder holds everything needed to rebuild, resume or evaluate the model: config.json,
best.keras, last.keras (with optimizer state), state.json, history.csv, training_curves.png
and TensorBoard logs.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import keras
import tensorflow as tf
from rich.table import Table

from facedenoise import __version__
from facedenoise.callbacks import CosineSchedule, RichProgress, RunCheckpoint, load_state
from facedenoise.config import ModelConfig, RunConfig, TrainConfig, load_run_config, save_run_config
from facedenoise.data import pairs_dataset, training_dataset
from facedenoise.dataset import manifest_sha256, noise_factor_of
from facedenoise.errors import FaceDenoiseError
from facedenoise.metrics import psnr as psnr_per_image
from facedenoise.metrics import ssim as ssim_per_image
from facedenoise.models import ARCHITECTURES, build_model, count_macs
from facedenoise.runs import CONFIG, LAST

LOSSES = ("mse", "l1", "charbonnier")
SCHEDULES = ("cosine", "plateau", "constant")
STRATEGIES = ("auto", "none", "mirrored", "multiworker")


@keras.saving.register_keras_serializable(package="facedenoise")
def psnr(y_true, y_pred):
    """Mean PSNR (dB, max_val 1.0) of a batch, as a Keras metric."""
    return tf.reduce_mean(psnr_per_image(y_true, y_pred))


@keras.saving.register_keras_serializable(package="facedenoise")
def ssim(y_true, y_pred):
    """Mean SSIM (max_val 1.0) of a batch, as a Keras metric."""
    return tf.reduce_mean(ssim_per_image(y_true, y_pred))


@keras.saving.register_keras_serializable(package="facedenoise")
def charbonnier(y_true, y_pred):
    """Charbonnier loss sqrt((x - y)^2 + eps^2), a smooth L1."""
    difference = tf.cast(y_true, tf.float32) - tf.cast(y_pred, tf.float32)
    return tf.reduce_mean(tf.sqrt(tf.square(difference) + 1e-6), axis=[1, 2, 3])


def _loss(name: str):
    losses = {"mse": "mean_squared_error", "l1": "mean_absolute_error", "charbonnier": charbonnier}
    if name not in losses:
        raise FaceDenoiseError(f"Unknown loss '{name}'; choose one of: {', '.join(LOSSES)}.")
    return losses[name]


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy for `--strategy` (auto: mirrored with several GPUs,
    multi-worker when TF_CONFIG is set, else the default single-device strategy)."""
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        if os.environ.get("TF_CONFIG"):
            name = "multiworker"
        elif len(gpus) > 1:
            name = "mirrored"
        else:
            name = "none"
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = [device.name for device in gpus] or [
            device.name for device in tf.config.list_logical_devices("CPU")
        ]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise FaceDenoiseError(f"Unknown strategy '{name}'; choose one of: {', '.join(STRATEGIES)}.")


def describe_model(model_config: ModelConfig, size: int = 128) -> Table:
    """A table with the parameters and GMACs per size x size image of one configuration."""
    model = build_model(model_config)
    table = Table(title=f"{model_config.arch} (per {size}x{size} RGB image)")
    table.add_column("parameters", justify="right")
    table.add_column("GMACs", justify="right")
    table.add_row(f"{model.count_params():,}", f"{count_macs(model, size) / 1e9:.2f}")
    return table


def architectures_table(size: int = 128) -> Table:
    """Parameters and GMACs per image of every registered architecture (default settings)."""
    table = Table(title=f"Architectures (cost per {size}x{size} RGB image)")
    for column in ("name", "parameters", "GMACs"):
        table.add_column(column, justify="left" if column == "name" else "right")
    for name in ARCHITECTURES:
        model = build_model(ModelConfig(arch=name))
        table.add_row(name, f"{model.count_params():,}", f"{count_macs(model, size) / 1e9:.2f}")
    return table


def _check(train_config: TrainConfig) -> None:
    _loss(train_config.loss)
    if train_config.schedule not in SCHEDULES:
        raise FaceDenoiseError(
            f"Unknown schedule '{train_config.schedule}'; choose one of: {', '.join(SCHEDULES)}."
        )
    if train_config.strategy not in STRATEGIES:
        raise FaceDenoiseError(
            f"Unknown strategy '{train_config.strategy}'; choose one of: {', '.join(STRATEGIES)}."
        )


def _new_run_dir(runs_dir: Path, arch: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = Path(runs_dir) / f"{stamp}-{arch}"
    suffix = 1
    while run_dir.exists():
        suffix += 1
        run_dir = Path(runs_dir) / f"{stamp}-{arch}-{suffix}"
    run_dir.mkdir(parents=True)
    return run_dir


def _use_accelerator_defaults(train_config: TrainConfig) -> TrainConfig:
    """Mixed precision and XLA default to on when a GPU is present, off on the CPU."""
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    return replace(
        train_config,
        mixed_precision=has_gpu if train_config.mixed_precision is None
        else train_config.mixed_precision,
        jit_compile=has_gpu if train_config.jit_compile is None else train_config.jit_compile,
    )


def _compile(model: keras.Model, train_config: TrainConfig) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=train_config.lr),
        loss=_loss(train_config.loss),
        metrics=[psnr, ssim],
        jit_compile=bool(train_config.jit_compile),
    )


def _copy_weights(source: Path, model: keras.Model) -> None:
    """Start `model` from the weights of a trained model of the same architecture."""
    from facedenoise.runs import load_model, resolve_model

    trained = load_model(resolve_model(str(source), Path("runs")))
    shapes = [tuple(weight.shape) for weight in model.weights]
    if trained.name != model.name or shapes != [tuple(w.shape) for w in trained.weights]:
        raise FaceDenoiseError(
            f"--init {source} is a different architecture ({trained.name}, "
            f"{trained.count_params():,} parameters); pass the same --arch/--width/--depth."
        )
    model.set_weights(trained.get_weights())


def _start_or_resume(data_dir, runs_dir, model_config, train_config, resume):
    """Return (run_dir, RunConfig, state) for a fresh run or for `resume`."""
    data_hash = manifest_sha256(data_dir)
    if resume is None:
        noise_factor = train_config.noise_factor or noise_factor_of(data_dir)
        config = RunConfig(
            model=model_config,
            train=_use_accelerator_defaults(train_config),
            noise_factor=noise_factor,
            manifest_sha256=data_hash,
            data_dir=str(Path(data_dir).resolve()),
            version=__version__,
        )
        build_model(model_config)  # fail on a bad architecture before creating a folder
        run_dir = _new_run_dir(runs_dir, model_config.arch)
        save_run_config(config, run_dir / CONFIG)
        return run_dir, config, {}
    run_dir = Path(resume)
    if not (run_dir / CONFIG).is_file() or not (run_dir / LAST).is_file():
        raise FaceDenoiseError(
            f"{run_dir} is not a resumable run (needs {CONFIG} and {LAST} from a finished epoch)."
        )
    config = load_run_config(run_dir / CONFIG)
    if config.manifest_sha256 and config.manifest_sha256 != data_hash:
        raise FaceDenoiseError(
            f"{data_dir} is not the dataset {run_dir} was trained on (manifest differs); "
            f"pass --data {config.data_dir}."
        )
    return run_dir, config, load_state(run_dir)


def train(
    data_dir: Path,
    runs_dir: Path,
    model_config: ModelConfig = ModelConfig(),
    train_config: TrainConfig = TrainConfig(),
    resume: Path | None = None,
    console=None,
) -> Path:
    """Train (or resume) a denoiser on a prepared dataset; returns the run folder.

    Images are float [0, 1]; the loss compares the model's output with the clean image.
    """
    _check(train_config)
    run_dir, config, state = _start_or_resume(
        data_dir, runs_dir, model_config, train_config, resume
    )
    settings = config.train
    done_epochs = state.get("epoch", 0)
    if state.get("stop_reason") or done_epochs >= settings.epochs:
        raise FaceDenoiseError(f"{run_dir} has already finished ({done_epochs} epochs).")

    keras.utils.set_random_seed(settings.seed)
    if settings.mixed_precision:
        keras.mixed_precision.set_global_policy("mixed_float16")
    strategy = make_strategy(settings.strategy)
    train_data, train_count = training_dataset(
        data_dir, settings, config.noise_factor, cache_dir=run_dir / "cache"
    )
    val_data = pairs_dataset(data_dir, "val", settings.batch_size)
    steps_per_epoch = settings.steps_per_epoch or max(1, train_count // settings.batch_size)

    with strategy.scope():
        if resume is None:
            model = build_model(config.model)
            if settings.init_from:
                _copy_weights(Path(settings.init_from), model)
            _compile(model, settings)
        else:
            model = keras.saving.load_model(run_dir / LAST, compile=True)

    time_limit = settings.time_limit_minutes * 60 if settings.time_limit_minutes else None
    checkpoint = RunCheckpoint(run_dir, settings.patience, time_limit, state)
    callbacks = [
        checkpoint,
        RichProgress(settings.epochs, steps_per_epoch, settings.batch_size, console=console),
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard"), write_graph=False),
    ]
    if settings.schedule == "cosine":
        total_steps = settings.epochs * steps_per_epoch
        warmup = min(100, total_steps // 20)  # short: time-limited runs may take few steps
        callbacks.append(
            CosineSchedule(settings.lr, total_steps, warmup, checkpoint, time_limit)
        )
    elif settings.schedule == "plateau":
        patience = max(1, settings.patience // 3)
        callbacks.append(keras.callbacks.ReduceLROnPlateau(factor=0.5, patience=patience))

    model.fit(
        train_data,
        validation_data=val_data,
        epochs=settings.epochs,
        initial_epoch=done_epochs,
        steps_per_epoch=steps_per_epoch,
        callbacks=callbacks,
        verbose=0,
        shuffle=False,  # the dataset is already shuffled, with a seed
    )
    return run_dir

