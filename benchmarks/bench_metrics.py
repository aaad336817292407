"""SSIM's cost, side by side: `metrics.ssim` (two 1-D Gaussian passes) against
`tf.image.ssim` (one 11x11 window), alone and as a training metric.

    python benchmarks/bench_metrics.py [--rounds 7] [--batch 16] [--patch 96]

Every round times each variant once, in turn, so that a noisy machine slows all of them
alike; the table gives the median over rounds and each variant's ratio to the first. The
training step is one `train_on_batch` of a model with the metrics `train` compiles in
(PSNR and SSIM), with no metrics, and with SSIM computed by tf.image.ssim.
"""

from __future__ import annotations

import argparse
import statistics
import time

import _common  # noqa: F401  (quiets TensorFlow before it loads)
import numpy as np
from rich.console import Console
from rich.table import Table

MODELS = {  # name -> ModelConfig fields
    "resunet-w8 (bench_quality's)": {"arch": "resunet", "width": 8, "blocks_per_level": 2,
                                     "middle_blocks": 2},
    "resunet (default)": {"arch": "resunet"},
}


def _seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _ssim_calls(batch: int, patch: int) -> dict:
    import tensorflow as tf

    from facedenoise.metrics import ssim

    rng = np.random.default_rng(0)
    clean = rng.random((batch, patch, patch, 3), dtype=np.float32)
    noisy = np.clip(clean + 0.1 * rng.standard_normal(clean.shape), 0, 1).astype(np.float32)
    ours = tf.function(ssim)
    theirs = tf.function(lambda x, y: tf.image.ssim(x, y, max_val=1.0))
    return {f"SSIM of {batch} images {patch}x{patch}, metrics.ssim":
            lambda: ours(clean, noisy).numpy(),
            f"SSIM of {batch} images {patch}x{patch}, tf.image.ssim":
            lambda: theirs(clean, noisy).numpy()}


def _training_steps(name: str, fields: dict, batch: int, patch: int) -> dict:
    import keras
    import tensorflow as tf

    from facedenoise.config import ModelConfig
    from facedenoise.models import build_model, takes_noise_level
    from facedenoise.train import psnr, ssim

    def tf_image_ssim(y_true, y_pred):
        return tf.reduce_mean(tf.image.ssim(y_true, y_pred, max_val=1.0))

    rng = np.random.default_rng(1)
    clean = rng.random((batch, patch, patch, 3), dtype=np.float32)
    steps = {}
    for label, metrics in (("PSNR + metrics.ssim (train's)", [psnr, ssim]),
                           ("no metrics", []),
                           ("PSNR + tf.image.ssim", [psnr, tf_image_ssim])):
        keras.utils.set_random_seed(0)
        model = build_model(ModelConfig(**fields))
        model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse", metrics=metrics)
        inputs = [clean, np.full((batch, 1), 0.2, np.float32)] if takes_noise_level(
            model) else clean
        steps[f"training step, {name}, {label}"] = (
            lambda model=model, inputs=inputs: model.train_on_batch(inputs, clean))
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--patch", type=int, default=96)
    args = parser.parse_args()

    groups = [_ssim_calls(args.batch, args.patch)] + [
        _training_steps(name, fields, args.batch, args.patch) for name, fields in MODELS.items()]
    for group in groups:
        for run in group.values():
            for _ in range(2):  # trace, then warm up
                run()
    times = {name: [] for group in groups for name in group}
    for _ in range(args.rounds):
        for group in groups:
            for name, run in group.items():
                times[name].append(_seconds(run))

    table = Table(title=f"Median of {args.rounds} interleaved rounds (batch {args.batch}, "
                  f"{args.patch}x{args.patch})")
    for column in ("what", "ms", "x first of its group"):
        table.add_column(column, justify="left" if column == "what" else "right")
    for group in groups:
        first = statistics.median(times[next(iter(group))])
        for name in group:
            median = statistics.median(times[name])
            table.add_row(name, f"{median * 1000:.0f}", f"{median / first:.2f}")
    Console(width=160).print(table)


if __name__ == "__main__":
    main()
