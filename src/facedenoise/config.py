"""Frozen settings for data, model and training: the one place where each default lives.

Every run stores its settings in `config.json`; `load_run_config` rebuilds them, so a model
can always be rebuilt from its run folder.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from facedenoise.errors import FaceDenoiseError

NOISE_FACTOR = 0.3  # the mission's noise: noisy = clip(clean + 0.3 * N(0, 1), 0, 1)
IMAGE_SIZE = 128
DATA_DIR = "data"  # where `prepare` writes and the other commands read a prepared dataset
RUNS_DIR = "runs"  # the folder that holds run folders, for every command
# Largest image any command decodes (width x height), checked from the header before decoding:
# 100 megapixels is above any camera photo people denoise, and bounds one decode's memory.
MAX_PIXELS = 100_000_000
# Largest image file or archive member read (bytes), checked before reading and while reading
# in chunks: an uncompressed 16-bit RGBA TIFF at MAX_PIXELS is 800 MB, no real photo is larger.
MAX_FILE_BYTES = 1 << 30
# Noise levels are the std of the Gaussian noise before clipping, in [0, 1] units (0.3 is
# the mission's 76.5/255). Inputs and options accept levels in this closed range.
NOISE_LEVEL_RANGE = (0.0, 1.0)
AUTO = "auto"  # --noise-level auto: estimate each image's level


# Choices, here so that commands can check them before importing TensorFlow.
ARCHITECTURES = ("resunet", "nafunet", "unet", "original")
LOSSES = ("mse", "l1", "charbonnier", "psnr")
SCHEDULES = ("cosine", "plateau", "constant")
STRATEGIES = ("auto", "none", "mirrored")
CLOCKS = ("wall", "cpu")


@dataclass(frozen=True)
class PrepareConfig:
    """How `facedenoise prepare` selects, splits and degrades images."""

    count: int | None = 10_000  # None: every image the source holds
    test_fraction: float = 0.2
    val_fraction: float = 0.2
    size: int = IMAGE_SIZE
    noise_factor: float = NOISE_FACTOR
    seed: int = 42
    allow_upscale: bool = False
    max_pixels: int = MAX_PIXELS


@dataclass(frozen=True)
class ModelConfig:
    """Which architecture to build and how big. The defaults are the default model's (see
    `model_config` for another architecture's own defaults); `original` has a fixed shape."""

    arch: str = "resunet"
    width: int = 24  # channels at the first level; doubles at each level below
    depth: int = 4  # number of resolution levels (3 downsamplings)
    convs_per_level: int = 2  # `unet`: 3x3 convolutions per level (called `blocks` before 0.2)
    blocks_per_level: int = 2  # resunet/nafunet: blocks per level, encoder and decoder each
    middle_blocks: int = 2  # resunet/nafunet: blocks at the lowest resolution
    # A second input, the noise level per image (N, 1), concatenated as a constant map. Runs
    # written before noise-conditional models existed load with False (see load_run_config).
    noise_input: bool = True
    # resunet/nafunet with a noise input: output = clip(noisy - s * prediction) with
    # s = min(1, level / level_fade): level 0 hands the image back exactly. level_fade None:
    # s = level (noise predicted in units of the level; configs written before 0.2's fade).
    scale_by_level: bool = True
    level_fade: float | None = 0.02
    # resunet with a noise input: also modulate every block by the level (a per-channel scale
    # and shift computed from it, FiLM), not only through the map at the input (the packaged
    # weights since their sixth polish).
    level_modulation: bool = False
    # With level_modulation: modulate each block's second convolution too, so that the level
    # also scales what every block adds (an experiment; measured no better than once at
    # width 8: docs/architecture_experiments.md, stop 30).
    residual_modulation: bool = False


# Each architecture's own defaults, where they differ from ModelConfig's (the default model's).
ARCHITECTURE_DEFAULTS = {
    "nafunet": {"width": 32, "blocks_per_level": 2, "middle_blocks": 4},
    "unet": {"width": 32},  # the 0.1 default: 32-64-128-256, two convolutions per level
    "original": {"noise_input": False},
}


def model_config(arch: str = ModelConfig.arch, **fields) -> ModelConfig:
    """The ModelConfig of `arch` with its own defaults, overridden by `fields` (None = default)."""
    given = {key: value for key, value in fields.items() if value is not None}
    return ModelConfig(arch=arch, **{**ARCHITECTURE_DEFAULTS.get(arch, {}), **given})


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained. `noise_factor=None` takes the prepared data's factor."""

    epochs: int = 40
    batch_size: int = 16
    lr: float = 1e-3
    # Rescale each step's gradients so that their global norm is at most this (None: never).
    # Without normalisation layers a spike can push a residual U-Net into exploding
    # activations (it happened to the starter run at lr 1e-3: docs/architecture_experiments.md).
    # With several GPUs (mirrored) Keras clips each replica's gradients before they are
    # summed, so the limit is per replica there.
    clip_norm: float | None = None
    loss: str = "mse"  # mse | l1 | charbonnier
    schedule: str = "cosine"  # cosine | plateau | constant
    patience: int = 10  # early stopping on the best-epoch monitor (callbacks.MONITORS)
    patch_size: int | None = None  # random crops of this size; None: whole images
    steps_per_epoch: int | None = None  # None: one pass over the training split
    extra_train: str | None = None  # a folder of more clean training images (any size)
    init_from: str | None = None  # start from these weights (.keras or run folder): fine-tuning
    noise_factor: float | None = None
    # Train on every level at once: (low, high) draws a level per image and batch, with a
    # share `clean_fraction` of level-0 images so that clean photos are left alone.
    noise_range: tuple[float, float] | None = None
    clean_fraction: float = 0.05
    # With a range: weight each image's loss by (0.3^2 + e^2) / (level^2 + e^2), e = 0.02, so
    # that the squared error is measured in units of the level and every level counts alike
    # (plain MSE would let the strongest noise decide everything); weight 1 at 0.3. Not with
    # loss "psnr", which balances the levels itself (each image's error over its own).
    level_weighted_loss: bool = True
    level_weight_power: float = 2.0  # 2: 1/level^2 as above; 1: a gentler 1/level
    # Measure the loss, metrics and level validation after the chroma stage that `denoise`
    # runs after noise-conditional models (facedenoise.chroma_loss): the network may then
    # leave fine colour noise to the stage. MSE only.
    loss_after_chroma: bool = False
    flip: bool = True
    rotate: bool = False  # random 90-degree rotations (faces are upright, so off by default)
    color_jitter: bool = False  # small brightness/contrast changes
    seed: int = 42
    time_limit_minutes: float | None = None
    # What the time limit counts: "wall" clock, or "cpu" seconds of this process (fair
    # equal-budget comparisons on a machine shared with other jobs).
    time_limit_clock: str = "wall"
    mixed_precision: bool | None = None  # None: on when a GPU is present
    jit_compile: bool | None = None  # None: on when a GPU is present
    strategy: str = "auto"  # auto | none | mirrored


# The starter's output is off by 5.2/255 32 pixels from a tile's edge, 0.9 at 64, 0.03 at 96:
# with the outer third of each overlap as context, 96 keeps seams below 1/255.
DEFAULT_TILE_OVERLAP = 96


@dataclass(frozen=True)
class DenoiseConfig:
    """How inference runs over photos of any size."""

    tile: int = 512  # pixels; images larger than this go through overlapping tiles
    # pixels; None: DEFAULT_TILE_OVERLAP, at most a quarter of the tile (`overlap`)
    tile_overlap: int | None = None
    batch_size: int = 8
    suffix: str = ".denoised"
    jpeg_quality: int = 95
    keep_exif: bool = True  # the input's EXIF (date, camera, GPS) in PNG and JPEG outputs
    noise_level: float | str = AUTO  # a level in NOISE_LEVEL_RANGE, or AUTO (estimated)
    # A level told well above an image's own noise: add seeded noise first (inference/levels.py)
    top_up: bool = True
    max_pixels: int = MAX_PIXELS
    # Model calls averaged over this many flips/rotations (1, 2, 4 or 8): up to +0.4 dB with 4
    # and +0.5 dB with 8, for that many times the model time
    # (docs/architecture_experiments.md), so off by default.
    ensemble: int = 1
    # After the model, smooth colour with a luma-guided filter whose radius grows with the
    # noise level (off below 0.03): +0.1 to +1.7 dB on held-out faces and photos from 0.05 to
    # 0.5 for the packaged weights (docs/architecture_experiments.md, "The chroma stage").
    chroma_filter: bool = True

    @property
    def overlap(self) -> int:
        """The tile overlap in pixels: `tile_overlap`, or the default for this tile."""
        if self.tile_overlap is not None:
            return self.tile_overlap
        return min(DEFAULT_TILE_OVERLAP, self.tile // 4)


@dataclass(frozen=True)
class EvaluateConfig:
    """How `facedenoise evaluate` scores a model."""

    split: str = "test"
    batch_size: int = DenoiseConfig.batch_size  # images per model call, as in `denoise`
    limit: int | None = None
    baselines: str = ""
    # `--noise-levels`: an optional sweep; each level gets its own seeded noise per image.
    noise_levels: tuple[float, ...] = ()
    sweep_seed: int = 2026
    ensemble: int = DenoiseConfig.ensemble  # as in `denoise --ensemble`
    chroma_filter: bool = DenoiseConfig.chroma_filter  # as in `denoise --no-chroma-filter`


def check_training_fits_model(model: ModelConfig, train: TrainConfig) -> None:
    """Raise FaceDenoiseError for training settings that need a noise input the model lacks
    (a range of levels; the loss after the chroma stage)."""
    if model.noise_input:
        return
    # 'original' never has a noise input; other architectures only with --no-noise-input.
    never = ARCHITECTURE_DEFAULTS.get(model.arch, {}).get("noise_input") is False
    remedy = "choose another --arch" if never else "drop --no-noise-input"
    if train.noise_range is not None:
        raise FaceDenoiseError(
            f"--noise-range needs a noise-conditional model; '{model.arch}' without a noise "
            f"input could not tell the levels apart: {remedy}, or drop the range."
        )
    if train.loss_after_chroma:
        raise FaceDenoiseError(
            f"--loss-after-chroma needs a noise-conditional model; '{model.arch}' without a "
            f"noise input gets no chroma stage: {remedy}, or drop the option."
        )


@dataclass(frozen=True)
class RunConfig:
    """Everything stored in a run's `config.json`."""

    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    noise_factor: float = NOISE_FACTOR
    manifest_sha256: str | None = None
    data_dir: str | None = None
    version: str = ""


def check_model_config(config: ModelConfig) -> None:
    """Raise FaceDenoiseError for a model no builder can make."""
    from facedenoise.errors import check_choice

    check_choice("architecture", config.arch, ARCHITECTURES)
    sizes = (config.width, config.depth, config.convs_per_level, config.blocks_per_level)
    if min(sizes) < 1 or config.middle_blocks < 0 or config.depth > 6:
        raise FaceDenoiseError(
            "Model width, depth (up to 6), convs_per_level and blocks_per_level must be at "
            "least 1, middle_blocks at least 0."
        )
    if config.level_modulation and (config.arch != "resunet" or not config.noise_input):
        raise FaceDenoiseError("--level-modulation works with --arch resunet and a noise input "
                               f"only, not {config.arch}"
                               f"{'' if config.noise_input else ' without one'}.")
    if config.residual_modulation and not config.level_modulation:
        raise FaceDenoiseError("residual_modulation needs level_modulation.")


def check_train_config(config: TrainConfig) -> None:
    """Raise FaceDenoiseError for training settings no run can use."""
    import math

    from facedenoise.errors import check_choice

    check_choice("loss", config.loss, LOSSES)
    check_choice("schedule", config.schedule, SCHEDULES)
    check_choice("strategy", config.strategy, STRATEGIES)
    check_choice("time-limit clock", config.time_limit_clock, CLOCKS)
    low, high = NOISE_LEVEL_RANGE
    if config.noise_factor is not None and not low < config.noise_factor <= high:
        raise FaceDenoiseError(
            f"--noise-factor must lie in ({low:g}, {high:g}], not {config.noise_factor}."
        )
    if config.noise_range is not None:
        start, end = config.noise_range
        if not (math.isfinite(start) and math.isfinite(end) and low <= start < end <= high):
            raise FaceDenoiseError(
                f"--noise-range must be LOW:HIGH with {low:g} <= LOW < HIGH <= {high:g}, "
                f"not {start}:{end}."
            )
    if config.loss_after_chroma and config.loss != "mse":
        raise FaceDenoiseError(
            f"--loss-after-chroma works with --loss mse only, not {config.loss}: pass "
            "--loss mse or drop --loss-after-chroma."
        )
    if not (math.isfinite(config.level_weight_power) and config.level_weight_power >= 0):
        raise FaceDenoiseError(
            f"--level-weight-power must be a number >= 0, not {config.level_weight_power}.")
    if not 0.0 <= config.clean_fraction < 1.0:
        raise FaceDenoiseError(f"--clean-fraction must lie in [0, 1), not {config.clean_fraction}.")
    if min(config.epochs, config.batch_size, config.patience) < 1 or not (
        math.isfinite(config.lr) and config.lr >= 0
    ):
        raise FaceDenoiseError("Epochs, batch size and patience must be at least 1, lr >= 0.")
    if config.time_limit_minutes is not None and not config.time_limit_minutes > 0:
        raise FaceDenoiseError("--time-limit must be a positive number of minutes.")
    if config.clip_norm is not None and not (math.isfinite(config.clip_norm)
                                             and config.clip_norm > 0):
        raise FaceDenoiseError(f"--clip-norm must be a positive number, not {config.clip_norm}.")


def to_dict(config) -> dict:
    """A JSON-ready dict of any of the dataclasses above."""
    return dataclasses.asdict(config)


# Fields renamed since a release: old config.json files still load.
_RENAMED = {"blocks": "convs_per_level"}


def _from_dict(cls, values: dict):
    known = {f.name for f in dataclasses.fields(cls)}
    values = {_RENAMED.get(key, key): value for key, value in values.items()}
    return cls(**{key: value for key, value in values.items() if key in known})


def _train_from_dict(values: dict) -> TrainConfig:
    config = _from_dict(TrainConfig, values)
    if config.noise_range is not None:
        low, high = config.noise_range  # JSON gives a list
        config = dataclasses.replace(config, noise_range=(float(low), float(high)))
    return config


def save_run_config(config: RunConfig, path: Path) -> None:
    """Write `config` as JSON to `path` atomically."""
    from facedenoise.fileio import atomic_write_text

    atomic_write_text(path, json.dumps(to_dict(config), indent=2) + "\n")


def load_run_config(path: Path) -> RunConfig:
    """Read a `config.json` written by `save_run_config`."""
    try:
        values = json.loads(Path(path).read_text())
        return RunConfig(
            model=_from_dict(ModelConfig, {"noise_input": False, "level_fade": None,
                                           **values.get("model", {})}),
            train=_train_from_dict(values.get("train", {})),
            noise_factor=values.get("noise_factor", NOISE_FACTOR),
            manifest_sha256=values.get("manifest_sha256"),
            data_dir=values.get("data_dir"),
            version=values.get("version", ""),
        )
    except (OSError, ValueError, TypeError, AttributeError) as error:
        raise FaceDenoiseError(
            f"Cannot read run settings from {path} ({error}); is it a facedenoise run folder?"
        ) from error
