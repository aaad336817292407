"""Helpers shared by the benchmark scripts: timing with medians, and the CPU's FP32 peak."""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def median_rate(run, items_per_call: int, repeats: int = 5, warmup: int = 2) -> float:
    """Median items/s of `run()` over `repeats` timed calls after `warmup` untimed ones."""
    for _ in range(warmup):
        run()
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        rates.append(items_per_call / (time.perf_counter() - start))
    return statistics.median(rates)


def theoretical_fp32_peak() -> tuple[float, str]:
    """FLOP/s from core count x clock x FP32 FLOPs per cycle read off /proc/cpuinfo flags.

    Assumes two FMA pipes of 256 bits (32 FLOP/cycle) for AVX2/AVX-512 parts: right for AMD
    Zen 3/4 and conservative for CPUs with full 512-bit FMA pipes.
    """
    cores = os.cpu_count() or 1
    megahertz, flags = 0.0, ""
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("cpu MHz") and not megahertz:
                megahertz = float(line.split(":")[1])
            elif line.startswith("flags") and not flags:
                flags = line
    per_cycle = 32 if " fma" in flags else 8
    peak = cores * megahertz * 1e6 * per_cycle
    return peak, f"{cores} cores x {megahertz / 1000:.2f} GHz x {per_cycle} FLOP/cycle"


def measured_matmul_peak(size: int = 2048) -> float:
    """FLOP/s that a large float32 matmul reaches here: the practical ceiling for convs."""
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    matmul = tf.function(lambda: tf.matmul(a, b))
    return median_rate(lambda: matmul().numpy(), 2 * size**3, repeats=5)
