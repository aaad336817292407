"""How much of `facedenoise denoise` is the model, and how much is the tool around it.

    python benchmarks/bench_denoise.py [--count 1000] [--size 128] [--model RUN_OR_FILE]
                                       [--batch-size 8] [--repeats 3] [--large 6000x4000]
    python benchmarks/bench_denoise.py --model identity   # the tool alone, no network

Writes `--count` noisy `--size`-pixel PNGs to a temporary folder, then runs `denoise_paths`
over the folder `--repeats` times (into fresh output folders) with one loaded model, and
prints the median total time, time inside model calls, the rest (reading, decoding,
padding, batching, encoding, writing: the tool's overhead) and images/s. Speed does not
depend on the weights, so the default model is a freshly built, untrained default `unet`.
`--large WxH` also times one noisy photo of that size through the tiled path and reports
the process's peak memory.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

import _common  # noqa: F401  (quiets TensorFlow's start-up logs before it loads)
from rich.console import Console
from rich.table import Table

NOISE_FACTOR = 0.3


def noisy_photo(height: int, width: int, rng):
    """A float32 RGB photo-like image (the astronaut, resized) with the mission's noise."""
    import cv2
    import numpy as np
    import skimage.data

    photo = cv2.resize(skimage.data.astronaut(), (width, height), interpolation=cv2.INTER_AREA)
    noisy = rng.standard_normal(photo.shape, dtype=np.float32)  # float32: keeps peak memory low
    noisy *= NOISE_FACTOR
    noisy += photo / np.float32(255)
    return np.clip(noisy, 0, 1, out=noisy)


def write_noisy_folder(folder: Path, count: int, size: int) -> None:
    """`count` different noisy `size` x `size` crops of a photo, as 8-bit PNGs."""
    import numpy as np

    from facedenoise.imageio import write_image

    rng = np.random.default_rng(0)
    photo = noisy_photo(512, 512, rng)
    for index in range(count):
        top, left = rng.integers(0, 512 - size, 2)
        write_image(folder / f"{index:05d}.png", photo[top : top + size, left : left + size])


def load_denoiser(model: str | None, config):
    """The model to time: a run/.keras file, a fresh untrained default `unet` (None), or
    'identity', a model that does nothing, which times the tool alone."""
    import keras

    from facedenoise.config import ModelConfig
    from facedenoise.inference import Denoiser
    from facedenoise.models import build_model

    if model == "identity":
        noisy = keras.Input(shape=(None, None, 3))
        identity = keras.Model(noisy, keras.layers.Identity()(noisy))
        return Denoiser(identity, config=config, source=Path("identity (no model)"))
    if model is not None:
        return Denoiser.load(model, config=config)
    return Denoiser(build_model(ModelConfig()), config=config, source=Path("untrained unet"))


def time_folder(denoiser, folder: Path, work: Path, repeats: int):
    from facedenoise.inference import denoise_paths

    runs = []
    for repeat in range(repeats):
        summary = denoise_paths(
            [str(folder), str(work / f"out{repeat}")], model=denoiser, config=denoiser.config
        )
        assert not summary.failed and not summary.skipped, summary.describe()
        runs.append(summary)
    return runs


def time_large(denoiser, height: int, width: int) -> tuple[float, float]:
    """Seconds for one noisy height x width photo through Denoiser.denoise (uint8)."""
    import numpy as np

    from facedenoise.imageio import quantize

    photo = quantize(noisy_photo(height, width, np.random.default_rng(1)))
    model_before = denoiser.model_seconds
    started = time.perf_counter()
    clean = denoiser.denoise(photo)
    assert clean.shape == photo.shape
    return time.perf_counter() - started, denoiser.model_seconds - model_before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument(
        "--model", default=None, help="Run folder, .keras file, or 'identity' (the tool alone)."
    )
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--large", default=None, help="WIDTHxHEIGHT of one tiled photo.")
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    from facedenoise.config import DenoiseConfig

    config = (
        DenoiseConfig() if args.batch_size is None else DenoiseConfig(batch_size=args.batch_size)
    )
    console = Console()
    started = time.perf_counter()
    denoiser = load_denoiser(args.model, config)
    denoiser.denoise_batch([np.zeros((args.size, args.size, 3), np.float32)])  # trace once
    ready = time.perf_counter() - started
    device = "GPU" if tf.config.list_physical_devices("GPU") else f"CPU ({os.cpu_count()} cores)"

    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        (work / "in").mkdir()
        write_noisy_folder(work / "in", args.count, args.size)
        runs = time_folder(denoiser, work / "in", work, args.repeats)

    total = statistics.median(run.seconds for run in runs)
    model = statistics.median(run.model_seconds for run in runs)
    overhead = statistics.median(run.seconds - run.model_seconds for run in runs)
    table = Table(
        title=f"denoise_paths: {args.count} noisy {args.size}x{args.size} PNGs, "
        f"{denoiser.source}, batch {config.batch_size}, {device}, "
        f"median of {args.repeats}"
    )
    for column in ("total s", "model s", "overhead s", "overhead share", "images/s"):
        table.add_column(column, justify="right")
    table.add_row(
        f"{total:.2f}",
        f"{model:.2f}",
        f"{overhead:.2f}",
        f"{overhead / total:.1%}",
        f"{args.count / total:.1f}",
    )
    console.print(table)
    console.print(f"Loading and tracing the model once: {ready:.1f} s (not in the table).")

    if args.large:
        width, height = (int(value) for value in args.large.lower().split("x"))
        seconds, model_seconds = time_large(denoiser, height, width)
        peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        console.print(
            f"One {width}x{height} photo, tiles of {config.tile} overlapping by "
            f"{config.tile_overlap}: {seconds:.1f} s ({model_seconds:.1f} s in the model); "
            f"peak memory of this process {peak_gib:.2f} GiB."
        )


if __name__ == "__main__":
    main()
