"""PSNR and SSIM on float images in [0, 1] (max_val 1.0), as the original notebook measured.

Both use TensorFlow's definitions (`tf.image.psnr`, `tf.image.ssim`: 11x11 Gaussian window,
sigma 1.5, K1 0.01, K2 0.03, SSIM averaged over RGB channels).
"""

from __future__ import annotations

import tensorflow as tf

MAX_VAL = 1.0


def psnr(clean, restored):
    """Per-image PSNR in dB of float [0, 1] batches (N, H, W, C) -> (N,)."""
    clean = tf.cast(clean, tf.float32)
    return tf.image.psnr(clean, tf.cast(restored, tf.float32), max_val=MAX_VAL)


def ssim(clean, restored):
    """Per-image SSIM of float [0, 1] batches (N, H, W, C) -> (N,)."""
    clean = tf.cast(clean, tf.float32)
    return tf.image.ssim(clean, tf.cast(restored, tf.float32), max_val=MAX_VAL)
