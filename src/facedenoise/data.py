"""tf.data pipelines: training images with fresh noise every batch, fixed validation pairs.

Images enter as 8-bit PNGs written by `facedenoise prepare`, are decoded once and cached as
uint8, and leave as float32 in [0, 1]. Randomness (shuffling, augmentation, noise) comes from
stateless ops seeded by a `Dataset.random` stream, so a seed fixes the whole data order.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from facedenoise.config import TrainConfig
from facedenoise.dataset import clean_files, split_pairs
from facedenoise.errors import FaceDenoiseError
from facedenoise.imageio import list_images, read_header
from facedenoise.noise import level_weight

AUTOTUNE = tf.data.AUTOTUNE
# Above this many cached bytes the decoded training set goes to a cache file, not to RAM.
MEMORY_CACHE_LIMIT = 4 * 1024**3


def _decode_png(path):
    return tf.io.decode_png(tf.io.read_file(path), channels=3)


def _to_float(image):
    return tf.image.convert_image_dtype(image, tf.float32)


def augment(image, seeds, config: TrainConfig):
    """Random crop/flip/rotation/jitter of one uint8 image; returns float32 in [0, 1].

    seeds: int64 tensor of shape (4, 2), one stateless seed per random decision.
    """
    if config.patch_size:
        size = config.patch_size
        image = tf.image.stateless_random_crop(image, (size, size, 3), seed=seeds[0])
    image = _to_float(image)
    if config.flip:
        image = tf.image.stateless_random_flip_left_right(image, seed=seeds[1])
    if config.rotate:
        turns = tf.random.stateless_uniform((), seeds[2], minval=0, maxval=4, dtype=tf.int32)
        image = tf.image.rot90(image, turns)
    if config.color_jitter:
        image = tf.image.stateless_random_brightness(image, 0.1, seed=seeds[3])
        image = tf.image.stateless_random_contrast(image, 0.85, 1.15, seed=seeds[3] + 1)
        image = tf.clip_by_value(image, 0.0, 1.0)
    return image


def add_noise(clean, seed, noise_factor):
    """noisy = clip(clean + noise_factor * N(0, 1), 0, 1), per pixel and channel.

    noise_factor: a float or a scalar float32 tensor (one image's level).
    """
    noise = tf.random.stateless_normal(tf.shape(clean), seed=seed, dtype=clean.dtype)
    return tf.clip_by_value(clean + noise_factor * noise, 0.0, 1.0)


def draw_noise_level(seed, noise_range: tuple[float, float], clean_fraction: float):
    """One image's noise level: 0 with probability `clean_fraction`, else uniform in range.

    seed: int64 tensor (2,). Returns a scalar float32 tensor. Level-0 images teach a
    noise-conditional model to hand clean photos back untouched.
    """
    low, high = noise_range
    draws = tf.random.stateless_uniform((2,), seed=seed, dtype=tf.float32)
    level = low + (high - low) * draws[0]
    return tf.where(draws[1] < clean_fraction, tf.constant(0.0), level)


def decoded_images(paths: list[Path], cache_file: Path | None = None) -> tf.data.Dataset:
    """Decode PNG files once and cache them as uint8 (in memory, or in `cache_file`)."""
    dataset = tf.data.Dataset.from_tensor_slices([str(path) for path in paths])
    dataset = dataset.map(_decode_png, num_parallel_calls=AUTOTUNE)
    return dataset.cache(str(cache_file) if cache_file else "")


def _short_side(path: Path) -> int:
    """The shorter side of an image file, from its header (FaceDenoiseError if unreadable)."""
    header = read_header(path)
    return min(header.width, header.height)


def extra_training_images(folder: Path, patch_size: int | None) -> list[Path]:
    """Images of `folder` (recursively) to train on besides the prepared train split.

    They may have any size at least `patch_size`, since training takes random crops of them;
    without `patch_size` they could not be batched with the prepared images.
    """
    if not patch_size:
        raise FaceDenoiseError("--extra-train needs --patch-size (training crops of that size).")
    if not folder.is_dir():
        raise FaceDenoiseError(f"--extra-train {folder} is not a folder of images.")
    paths = [path for path in list_images(folder) if path.suffix.lower() == ".png"]
    if not paths:
        raise FaceDenoiseError(f"--extra-train {folder} holds no PNG images.")
    too_small = [path for path in paths if _short_side(path) < patch_size]
    if too_small:
        raise FaceDenoiseError(
            f"{too_small[0]} (and {len(too_small) - 1} more) is smaller than --patch-size "
            f"{patch_size}; remove it or lower --patch-size."
        )
    return paths


def training_dataset(
    data_dir: Path,
    config: TrainConfig,
    noise_factor: float,
    cache_dir: Path | None = None,
    with_level: bool = False,
) -> tuple[tf.data.Dataset, int]:
    """An endless dataset of (noisy, clean) float32 batches and the number of train images.

    Every batch gets fresh noise; batches have `config.batch_size` (global) images. With
    `config.noise_range` each image gets its own level (see `draw_noise_level`), else
    `noise_factor`. `with_level`: yield ((noisy, level), clean) with level of shape (1,), for
    a noise-conditional model. With a range and `config.level_weighted_loss` (and a loss other
    than psnr), batches carry a third element, each image's loss weight (`level_weight`).
    """
    paths = clean_files(data_dir, "train")
    if config.extra_train:
        paths += extra_training_images(Path(config.extra_train), config.patch_size)
    cache_file = None
    first = tf.io.decode_png(tf.io.read_file(str(paths[0])), channels=3)
    if cache_dir is not None and len(paths) * int(tf.size(first)) > MEMORY_CACHE_LIMIT:
        cache_dir.mkdir(parents=True, exist_ok=True)
        cache_file = cache_dir / "train-cache"
    images = decoded_images(paths, cache_file).repeat()
    images = images.shuffle(min(len(paths), 10_000), seed=config.seed)
    seeds = tf.data.Dataset.random(seed=config.seed).batch(12)  # 6 stateless seeds a sample

    def make_pair(image, numbers):
        numbers = tf.reshape(numbers, (6, 2))
        clean = augment(image, numbers[:4], config)
        if config.noise_range is None:
            level = tf.constant(noise_factor, tf.float32)
        else:
            level = draw_noise_level(numbers[5], config.noise_range, config.clean_fraction)
        noisy = add_noise(clean, numbers[4], level)
        inputs = (noisy, tf.reshape(level, (1,))) if with_level else noisy
        if config.noise_range is not None and config.level_weighted_loss and (
                config.loss != "psnr"):  # the PSNR loss balances the levels itself
            # Shaped (1, 1) per image: Keras multiplies it into the per-pixel loss (H, W).
            weight = level_weight(level, config.level_weight_power)
            return inputs, clean, tf.reshape(weight, (1, 1))
        return inputs, clean

    dataset = tf.data.Dataset.zip((images, seeds)).map(make_pair, num_parallel_calls=AUTOTUNE)
    dataset = dataset.batch(config.batch_size, drop_remainder=True)
    return dataset.prefetch(AUTOTUNE), len(paths)


def with_level_in_target(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """Batches ((noisy, level), clean[, weight]) -> ((noisy, level), target[, weight]) with
    target (N, H, W, 4): the clean image and the level as a constant fourth channel, for a loss
    that needs each image's level (facedenoise.chroma_loss)."""

    def add_level(inputs, clean, *weight):
        level_map = tf.ones_like(clean[..., :1]) * tf.reshape(inputs[1], (-1, 1, 1, 1))
        return (inputs, tf.concat([clean, level_map], axis=-1), *weight)

    return dataset.map(add_level, num_parallel_calls=AUTOTUNE)


def pairs_dataset(
    data_dir: Path, split: str, batch_size: int, level: float | None = None
) -> tf.data.Dataset:
    """The fixed (noisy, clean) float32 pairs that `prepare` wrote for `split`, batched.

    level: for a noise-conditional model, the files' noise level; the dataset then yields
    ((noisy, level), clean) with level of shape (1,).
    """
    pairs = split_pairs(data_dir, split)
    noisy = [str(noisy_path) for noisy_path, _ in pairs]
    clean = [str(clean_path) for _, clean_path in pairs]
    dataset = tf.data.Dataset.from_tensor_slices((noisy, clean))
    dataset = dataset.map(
        lambda noisy_path, clean_path: (_decode_png(noisy_path), _decode_png(clean_path)),
        num_parallel_calls=AUTOTUNE,
    ).cache()
    def to_pair(noisy_image, clean_image):
        noisy_float, clean_float = _to_float(noisy_image), _to_float(clean_image)
        if level is None:
            return noisy_float, clean_float
        return (noisy_float, tf.constant([level], tf.float32)), clean_float

    return dataset.map(to_pair).batch(batch_size).prefetch(AUTOTUNE)


def clean_images(data_dir: Path, split: str, limit: int | None = None) -> list:
    """The clean float32 [0, 1] images of a prepared split (for sweeps over noise levels)."""
    import numpy as np

    paths = clean_files(data_dir, split)[:limit]
    return [np.asarray(_to_float(_decode_png(str(path)))) for path in paths]
