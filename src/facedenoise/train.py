"""Training: `train(data_dir, runs_dir, model_config, train_config) -> run_dir`.

A run folder holds everything needed to rebuild, resume or evaluate the model: config.json,
best.keras, last.keras (with optimizer state), state.json, history.csv, training_curves.png
and TensorBoard logs. Progress reaches the caller through plain callbacks (`on_start`,
`on_batch`, `on_epoch`); nothing here prints.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import keras
import tensorflow as tf

from facedenoise import __version__
from facedenoise.callbacks import (
    HISTORY,
    CosineSchedule,
    LevelValidation,
    ProgressForwarder,
    RunCheckpoint,
    load_state,
    read_history,
)
from facedenoise.chroma_loss import smooth_chroma_differentiable, split_target
from facedenoise.config import (
    LOSSES,
    RUNS_DIR,
    STRATEGIES,
    ModelConfig,
    RunConfig,
    TrainConfig,
    check_model_config,
    check_train_config,
    check_training_fits_model,
    load_run_config,
    save_run_config,
)
from facedenoise.data import (
    clean_images,
    pairs_dataset,
    training_dataset,
    with_level_in_target,
)
from facedenoise.dataset import (
    check_patch_size,
    manifest_sha256,
    noise_factor_of,
)
from facedenoise.errors import FaceDenoiseError, check_choice
from facedenoise.metrics import psnr as psnr_per_image
from facedenoise.metrics import ssim as ssim_per_image
from facedenoise.models import WITHOUT_NOISE_INPUT, build_model, takes_noise_level
from facedenoise.runs import CONFIG, LAST

# With --noise-range, validation also reports PSNR at these levels (fixed seeded noise on the
# clean validation images), besides the prepared noisy files' level.
EXTRA_VALIDATION_LEVELS = (0.02, 0.1, 0.5)  # 0.02: where a generalist fades to the identity
EXTRA_VALIDATION_IMAGES = 200  # the first validation images: enough for a stable mean


# A clean image handed back exactly has an infinite PSNR; in a batch mean it would hide
# every other image, so the training metric caps each image's PSNR here.
PSNR_CAP_DB = 100.0


@keras.saving.register_keras_serializable(package="facedenoise")
def psnr(y_true, y_pred):
    """Mean PSNR (dB, max_val 1.0, each image capped at PSNR_CAP_DB) of a batch."""
    return tf.reduce_mean(tf.minimum(psnr_per_image(y_true, y_pred), PSNR_CAP_DB))


@keras.saving.register_keras_serializable(package="facedenoise")
def ssim(y_true, y_pred):
    """Mean SSIM (max_val 1.0) of a batch, as a Keras metric."""
    return tf.reduce_mean(ssim_per_image(y_true, y_pred))


@keras.saving.register_keras_serializable(package="facedenoise")
def charbonnier(y_true, y_pred):
    """Charbonnier loss sqrt((x - y)^2 + eps^2), a smooth L1."""
    difference = tf.cast(y_true, tf.float32) - tf.cast(y_pred, tf.float32)
    return tf.reduce_mean(tf.sqrt(tf.square(difference) + 1e-6), axis=[1, 2, 3])


# Squared errors below this (PSNR 50 dB) count alike: a near-perfect image does not steer
# the gradient by 1 / its error.
PSNR_LOSS_FLOOR = 1e-5


@keras.saving.register_keras_serializable(package="facedenoise")
def psnr_loss(y_true, y_pred):
    """Minus each image's PSNR in dB (-10 log10 of its MSE, floored at PSNR_LOSS_FLOOR), as
    NAFNet trains: the gradient is the MSE's over the image's own error, so every noise
    level counts alike in dB without a per-level weight."""
    difference = tf.cast(y_true, tf.float32) - tf.cast(y_pred, tf.float32)
    error = tf.reduce_mean(tf.square(difference), axis=[1, 2, 3])
    return (10.0 / math.log(10.0)) * tf.math.log(error + PSNR_LOSS_FLOOR)


# With TrainConfig.loss_after_chroma: the target carries the level (facedenoise.chroma_loss).
@keras.saving.register_keras_serializable(package="facedenoise")
def mse_after_chroma(target, output):
    """Per-pixel MSE between the clean image and the output after the chroma stage."""
    clean, level = split_target(target)
    return keras.losses.mean_squared_error(clean, smooth_chroma_differentiable(output, level))


@keras.saving.register_keras_serializable(package="facedenoise")
def psnr_after_chroma(target, output):
    """`psnr` of the output after the chroma stage."""
    clean, level = split_target(target)
    return psnr(clean, smooth_chroma_differentiable(output, level))


@keras.saving.register_keras_serializable(package="facedenoise")
def ssim_after_chroma(target, output):
    """`ssim` of the output after the chroma stage."""
    clean, level = split_target(target)
    return ssim(clean, smooth_chroma_differentiable(output, level))


def _loss(name: str):
    check_choice("loss", name, LOSSES)
    return {"mse": "mean_squared_error", "l1": "mean_absolute_error",
            "charbonnier": charbonnier, "psnr": psnr_loss}[name]


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy for `--strategy`: `mirrored` splits each batch across this
    machine's GPUs (or CPUs without one), `auto` is mirrored with several GPUs, else none.

    Several machines (MultiWorkerMirroredStrategy) are not offered: Keras 3.15's fit reduces
    a first data batch across workers while building, which fails on multi-worker collectives.
    """
    check_choice("strategy", name, STRATEGIES)
    gpus = tf.config.list_logical_devices("GPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "none"
    if name == "mirrored":
        devices = [device.name for device in gpus] or [
            device.name for device in tf.config.list_logical_devices("CPU")
        ]
        return tf.distribute.MirroredStrategy(devices=devices)
    return tf.distribute.get_strategy()


def _new_run_dir(runs_dir: Path, arch: str, name: str | None = None) -> Path:
    if name is not None:
        run_dir = Path(runs_dir) / name
        if name in ("", ".", "..") or Path(name).name != name:
            raise FaceDenoiseError(f"--name '{name}' must be a plain folder name.")
        if run_dir.exists():
            raise FaceDenoiseError(
                f"{run_dir} exists; continue it with --resume {run_dir}, or choose another --name."
            )
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        run_dir = Path(runs_dir) / f"{stamp}-{arch}"
        suffix = 1
        while run_dir.exists():
            suffix += 1
            run_dir = Path(runs_dir) / f"{stamp}-{arch}-{suffix}"
    try:
        run_dir.mkdir(parents=True)
    except OSError as error:
        raise FaceDenoiseError(
            f"Cannot create the run folder {run_dir}: {error.strerror or error}; "
            "choose another --runs."
        ) from error
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
    loss, metrics = _loss(train_config.loss), [psnr, ssim]
    if train_config.loss_after_chroma:
        # Named like the plain metrics, so history, curves and monitors read the same.
        loss = mse_after_chroma
        metrics = [keras.metrics.MeanMetricWrapper(psnr_after_chroma, name="psnr"),
                   keras.metrics.MeanMetricWrapper(ssim_after_chroma, name="ssim")]
    model.compile(
        optimizer=keras.optimizers.Adam(
            learning_rate=train_config.lr, global_clipnorm=train_config.clip_norm
        ),
        loss=loss,
        metrics=metrics,
        jit_compile=bool(train_config.jit_compile),
    )


def _copy_weights(source: str, model: keras.Model, runs_dir: Path) -> None:
    """Start `model` from the weights of a trained model of the same architecture."""
    from facedenoise.runs import load_model, resolve_model

    trained = load_model(resolve_model(source, Path(runs_dir)))
    shapes = [tuple(weight.shape) for weight in model.weights]
    if trained.name != model.name or shapes != [tuple(w.shape) for w in trained.weights]:
        raise FaceDenoiseError(
            f"--init {source} is a different architecture ({trained.name}, "
            f"{trained.count_params():,} parameters); pass the same --arch/--width/--depth "
            "(and --level-modulation when they have it)."
        )
    model.set_weights(trained.get_weights())


def _fresh_config(data_dir: Path, model_config: ModelConfig, train_config: TrainConfig):
    if model_config.arch in WITHOUT_NOISE_INPUT:
        model_config = replace(model_config, noise_input=False)
    build_model(model_config)  # fail on a bad architecture before creating a folder
    check_training_fits_model(model_config, train_config)
    return RunConfig(
        model=model_config,
        train=_use_accelerator_defaults(train_config),
        noise_factor=train_config.noise_factor or noise_factor_of(data_dir),
        manifest_sha256=manifest_sha256(data_dir),
        data_dir=str(Path(data_dir).resolve()),
        version=__version__,
    )


def _resumed_config(run_dir: Path, data_dir: Path | None, epochs: int | None):
    """(data_dir, RunConfig, state) of a run to resume; `epochs` may extend the run."""
    if not (run_dir / CONFIG).is_file() or not (run_dir / LAST).is_file():
        raise FaceDenoiseError(
            f"{run_dir} is not a resumable run (needs {CONFIG} and {LAST} from a finished "
            "epoch or an interrupted one)."
        )
    config = load_run_config(run_dir / CONFIG)
    try:
        check_model_config(config.model)
        check_train_config(config.train)
    except (FaceDenoiseError, TypeError, ValueError) as error:
        raise FaceDenoiseError(
            f"{run_dir / CONFIG} holds settings no run can use: {error}"
        ) from None
    data_dir = Path(data_dir if data_dir is not None else config.data_dir or "")
    if config.manifest_sha256 and config.manifest_sha256 != manifest_sha256(data_dir):
        raise FaceDenoiseError(
            f"{data_dir} is not the dataset {run_dir} was trained on (manifest differs); "
            f"pass --data {config.data_dir}."
        )
    state = load_state(run_dir)
    read_history(run_dir / HISTORY)  # damaged: say so now, not after an epoch of training
    done = state.get("epoch", 0)
    if epochs is not None and epochs != config.train.epochs:
        if epochs <= done:
            raise FaceDenoiseError(
                f"{run_dir} has done {done} epochs already; pass --epochs above {done} to "
                "extend it, or start a new run from its weights with --init."
            )
        config = replace(config, train=replace(config.train, epochs=epochs))
        state = {**state, "stop_reason": None, "wait": 0}
        save_run_config(config, run_dir / CONFIG)
    if state.get("stop_reason") or done >= config.train.epochs:
        raise FaceDenoiseError(
            f"{run_dir} has already finished ({done} epochs, {state.get('stop_reason') or 'all'}"
            "); pass a larger --epochs to extend it, or start a new run with --init."
        )
    return data_dir, config, state


@contextlib.contextmanager
def _sigterm_as_ctrl_c():
    """Treat SIGTERM (`kill`, a batch scheduler's time limit) like Ctrl-C for one run: the run
    saves a resumable checkpoint instead of dying mid-epoch. Main thread only (Python's rule)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def _precision_policy(mixed: bool):
    """Set the mixed-precision policy for one run and restore the caller's afterwards."""
    previous = keras.mixed_precision.global_policy()
    if mixed:
        keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _callbacks(run_dir, config, state, steps_per_epoch, data_dir, hooks):
    settings = config.train
    time_limit = settings.time_limit_minutes * 60 if settings.time_limit_minutes else None
    checkpoint = RunCheckpoint(run_dir, settings.patience, time_limit, state,
                               clock=settings.time_limit_clock,
                               monitor="val_loss" if settings.noise_range is None
                               else "val_psnr_mean")
    callbacks = []
    if settings.noise_range is not None:
        images = clean_images(data_dir, "val", limit=EXTRA_VALIDATION_IMAGES)
        callbacks.append(LevelValidation(images, EXTRA_VALIDATION_LEVELS, settings.seed,
                                         chroma_filter=settings.loss_after_chroma))
    callbacks += [checkpoint, ProgressForwarder(**hooks)]
    callbacks.append(
        keras.callbacks.TensorBoard(log_dir=str(run_dir / "tensorboard"), write_graph=False)
    )
    if settings.schedule == "cosine":
        total_steps = settings.epochs * steps_per_epoch
        warmup = min(100, total_steps // 20)  # short: time-limited runs may take few steps
        callbacks.append(CosineSchedule(settings.lr, total_steps, warmup, checkpoint, time_limit))
    elif settings.schedule == "plateau":
        patience = max(1, settings.patience // 3)
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor=checkpoint.monitor, mode="min" if checkpoint.monitor == "val_loss" else "max",
            factor=0.5, patience=patience,
        ))
    return checkpoint, callbacks


def _model_for(run_dir, config, resume, strategy, runs_dir):
    from facedenoise.runs import load_model

    with strategy.scope():
        if resume is None:
            model = build_model(config.model)
            if config.train.init_from:
                _copy_weights(config.train.init_from, model, runs_dir)
            _compile(model, config.train)
            return model
        model = load_model(run_dir / LAST, compile=True)
        if getattr(model, "optimizer", None) is None:  # saved without its optimizer
            _compile(model, config.train)
        return model


def train(
    data_dir: Path | None,
    runs_dir: Path = Path(RUNS_DIR),
    model_config: ModelConfig = ModelConfig(),
    train_config: TrainConfig = TrainConfig(),
    resume: Path | None = None,
    *,
    epochs: int | None = None,
    run_name: str | None = None,
    on_start: Callable[[Path, dict], None] | None = None,
    on_batch: Callable[[int, int, dict], None] | None = None,
    on_epoch: Callable[[int, dict], None] | None = None,
) -> Path:
    """Train (or resume) a denoiser on a prepared dataset; returns the run folder.

    Images are float [0, 1]; the loss compares the model's output with the clean image.
    data_dir: the prepared dataset (None with `resume`: the run's own).
    resume: a run folder to continue (its config wins; `epochs` may extend it).
    run_name: the new run folder's name in `runs_dir` (default: <timestamp>-<arch>).
    on_start(run_dir, info): once the data and model are ready (info: epochs, done_epochs,
        steps_per_epoch, batch_size); on_batch(epoch, step, logs); on_epoch(epoch, logs).
    Ctrl-C (or SIGTERM) saves last.keras and state.json before KeyboardInterrupt propagates,
    so even a run stopped in its first epoch can be resumed; any other failure before the
    first checkpoint removes the new run folder.
    """
    if resume is None:
        check_train_config(train_config)
        if data_dir is None:
            raise FaceDenoiseError("Pass --data, the prepared dataset to train on.")
        strategy = make_strategy(train_config.strategy)
        config = _fresh_config(Path(data_dir), model_config, train_config)
        check_patch_size(Path(data_dir), config.train.patch_size)
        run_dir = _new_run_dir(runs_dir, config.model.arch, run_name)
        state = {}
    else:
        run_dir = Path(resume)
        data_dir, config, state = _resumed_config(run_dir, data_dir, epochs)
        strategy = make_strategy(config.train.strategy)
    if resume is None:
        save_run_config(config, run_dir / CONFIG)
    try:
        with _precision_policy(bool(config.train.mixed_precision)), _sigterm_as_ctrl_c():
            _fit(Path(data_dir), run_dir, config, state, resume, runs_dir, strategy,
                 dict(on_start=on_start, on_batch=on_batch, on_epoch=on_epoch))
    except KeyboardInterrupt:
        raise
    except BaseException:
        if resume is None and not (run_dir / LAST).exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    return run_dir


def _create_state_before_tracing(model: keras.Model, train_data: tf.data.Dataset) -> None:
    """Create the optimizer's and the metrics' variables now, from one small batch of zeros
    shaped like the training data: created inside the first traced training step, they make
    TensorFlow trace the whole step twice (about 3 s of every run's start on two cores)."""
    def zeros(spec):  # unknown image sides: 16, a size every model and SSIM take
        return tf.zeros([1] + [size or 16 for size in spec.shape[1:]], spec.dtype)

    inputs, target, weights = keras.utils.unpack_x_y_sample_weight(
        tf.nest.map_structure(zeros, train_data.element_spec))
    model.optimizer.build(model.trainable_variables)
    model.compute_metrics(inputs, target, model(inputs), sample_weight=weights)
    model.reset_metrics()


def _fit(data_dir, run_dir, config, state, resume, runs_dir, strategy, hooks) -> None:
    settings = config.train
    keras.utils.set_random_seed(settings.seed)
    model = _model_for(run_dir, config, resume, strategy, runs_dir)
    conditional = takes_noise_level(model)
    train_data, train_count = training_dataset(
        data_dir, settings, config.noise_factor, cache_dir=run_dir / "cache",
        with_level=conditional,
    )
    val_data = pairs_dataset(data_dir, "val", settings.batch_size,
                             level=config.noise_factor if conditional else None)
    if settings.loss_after_chroma:
        train_data = with_level_in_target(train_data).prefetch(tf.data.AUTOTUNE)
        val_data = with_level_in_target(val_data)
    steps_per_epoch = settings.steps_per_epoch or max(1, train_count // settings.batch_size)
    if not isinstance(strategy, tf.distribute.MirroredStrategy):  # there Keras does it
        _create_state_before_tracing(model, train_data)
    on_start = hooks.pop("on_start")
    checkpoint, callbacks = _callbacks(run_dir, config, state, steps_per_epoch, data_dir, hooks)
    done_epochs = state.get("epoch", 0)
    if on_start is not None:
        on_start(run_dir, {"epochs": settings.epochs, "done_epochs": done_epochs,
                           "steps_per_epoch": steps_per_epoch,
                           "batch_size": settings.batch_size})
    try:
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
    except KeyboardInterrupt:
        checkpoint.save_interrupted()
        raise
