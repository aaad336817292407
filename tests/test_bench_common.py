"""benchmarks/_common.py: the FP32 FLOPs per cycle read off /proc/cpuinfo."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _common import fp32_flops_per_cycle  # noqa: E402


def _cpuinfo(vendor: str, family: int, model: int, flags: str) -> str:
    # two processors, as a multi-core /proc/cpuinfo lists them: the first one is read
    one = (f"processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: "
           f"{model}\nmodel name\t: X\nflags\t\t: {flags}\n")
    return one + "\n" + one.replace("processor\t: 0", "processor\t: 1")


@pytest.mark.parametrize("vendor, family, model, flags, per_cycle", [
    # AMD Zen 5 EPYC 9005 (model 2 here): two 512-bit FMA pipes; the bench machine of stop 22
    # read 32 and printed 170-290% of "peak"
    ("AuthenticAMD", 26, 2, "fpu sse2 avx2 fma avx512f avx512bw", 64),
    ("AuthenticAMD", 26, 0x44, "fpu sse2 avx2 fma avx512f avx512bw", 64),  # desktop
    ("AuthenticAMD", 26, 0x24, "fpu sse2 avx2 fma avx512f avx512bw", 32),  # mobile: 256-bit
    ("AuthenticAMD", 25, 0x11, "fpu sse2 avx2 fma avx512f avx512bw", 32),  # Zen 4: 256-bit
    ("AuthenticAMD", 23, 0x31, "fpu sse2 avx2 fma", 32),  # Zen 2
    ("GenuineIntel", 6, 0x8F, "fpu sse2 avx2 fma avx512f", 32),  # conservative, see docstring
    ("GenuineIntel", 6, 0x3C, "fpu sse2 avx", 8),
])
def test_flops_per_cycle_follow_the_cpu(vendor, family, model, flags, per_cycle):
    assert fp32_flops_per_cycle(_cpuinfo(vendor, family, model, flags)) == per_cycle

