"""Helpers shared by the benchmark scripts: timing with medians, and the CPU's FP32 peak."""

from __future__ import annotations

import math
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


def fp32_flops_per_cycle(cpuinfo: str) -> int:
    """FP32 FLOPs one core can issue per cycle, read off a /proc/cpuinfo text.

    64 for AMD Zen 5 server and desktop parts (family 26, models 0x00-0x1F and 0x40-0x4F: two
    FMA pipes of 512 bits); 32 for other AVX2/AVX-512 parts (two FMA pipes of 256 bits: AMD
    Zen 3/4 and mobile Zen 5, and conservative for Intel CPUs with two 512-bit FMA pipes);
    8 without FMA.
    """
    fields = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    if "fma" not in flags:
        return 8
    model = int(fields.get("model", "0"))
    full_width_zen5 = (fields.get("vendor_id") == "AuthenticAMD"
                       and int(fields.get("cpu family", "0")) == 26
                       and (model < 0x20 or 0x40 <= model < 0x50))
    return 64 if full_width_zen5 and "avx512f" in flags else 32


def theoretical_fp32_peak() -> tuple[float, str]:
    """FLOP/s from core count x nominal clock x FP32 FLOPs per cycle (/proc/cpuinfo).

    The clock is the one /proc/cpuinfo reports (in a VM usually the nominal one, on bare metal
    the current one; NaN when it reports none): a CPU that boosts above it can exceed this
    "peak"; `measured_matmul_peak` is the practical ceiling.
    """
    cores = len(os.sched_getaffinity(0))
    with open("/proc/cpuinfo") as handle:
        cpuinfo = handle.read()
    megahertz = next((float(line.split(":")[1]) for line in cpuinfo.splitlines()
                      if line.startswith("cpu MHz")), math.nan)  # absent on some ARM kernels
    per_cycle = fp32_flops_per_cycle(cpuinfo)
    peak = cores * megahertz * 1e6 * per_cycle
    clock = f"{megahertz / 1000:.2f} GHz (as reported)"
    return peak, f"{cores} cores x {clock} x {per_cycle} FLOP/cycle"


def measured_matmul_peak(size: int = 2048) -> float:
    """FLOP/s that a large float32 matmul reaches here: the practical ceiling for convs."""
    import tensorflow as tf

    a = tf.random.normal((size, size))
    b = tf.random.normal((size, size))
    matmul = tf.function(lambda: tf.matmul(a, b))
    return median_rate(lambda: matmul().numpy(), 2 * size**3, repeats=5)
