"""PSNR and SSIM on float images in [0, 1] (max_val 1.0), as the original notebook measured.

Both use TensorFlow's definitions (`tf.image.psnr`, `tf.image.ssim`: 11x11 Gaussian window,
sigma 1.5, K1 0.01, K2 0.03, 'valid' filtering, SSIM averaged over RGB channels). They equal
scikit-image's `peak_signal_noise_ratio(data_range=1.0)` and `structural_similarity(
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0)` up to float32
round-off (see tests/test_metrics.py for the tolerances).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

MAX_VAL = 1.0
SSIM_WINDOW = 11  # tf.image.ssim's filter size: smaller images have no valid SSIM window


def psnr(clean, restored):
    """Per-image PSNR in dB of float [0, 1] batches (N, H, W, C) -> (N,).

    Identical images give +inf.
    """
    clean = tf.cast(clean, tf.float32)
    return tf.image.psnr(clean, tf.cast(restored, tf.float32), max_val=MAX_VAL)


def ssim(clean, restored):
    """Per-image SSIM of float [0, 1] batches (N, H, W, C) -> (N,); H and W >= 11."""
    clean = tf.cast(clean, tf.float32)
    return tf.image.ssim(clean, tf.cast(restored, tf.float32), max_val=MAX_VAL)


def psnr_ssim(clean, restored) -> tuple[np.ndarray, np.ndarray]:
    """PSNR (dB) and SSIM of each image of two float [0, 1] batches (N, H, W, 3), as numpy.

    A single image (H, W, 3) is treated as a batch of one. Returns two float64 arrays (N,).
    """
    clean = np.asarray(clean, np.float32)
    restored = np.asarray(restored, np.float32)
    if clean.ndim == 3:
        clean, restored = clean[None], restored[None]
    return (
        psnr(clean, restored).numpy().astype(np.float64),
        ssim(clean, restored).numpy().astype(np.float64),
    )
