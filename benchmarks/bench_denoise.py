"""How long `facedenoise denoise` takes, end to end and inside, on TensorFlow and ONNX Runtime.

    python benchmarks/bench_denoise.py --end-to-end [--repeats 3] [--folder-repeats 1]
    python benchmarks/bench_denoise.py [--count 1000] [--size 128] [--model RUN_OR_FILE]
                                       [--batch-size 8] [--repeats 3] [--large 6000x4000]
    python benchmarks/bench_denoise.py --model identity   # the tool alone, no network

`--end-to-end` times whole processes (start to exit, as a user waits) of `facedenoise denoise`
with the packaged starter on one noisy 128x128 face, one noisy 12-megapixel photo (4000x3000)
and a folder of 1,000 noisy faces, once through ONNX Runtime (`--model starter`, the default
path) and once through TensorFlow (a copy of starter.keras), and prints the medians with the
time inside model calls and, for the 12-megapixel photo, the share of the CPU's FP32 peak the
model reached (its convolutions' FLOPs over all tiles / model seconds / peak).

Without it:
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
import re
import resource
import shutil
import statistics
import subprocess
import sys
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


# --- End to end: whole processes, as a user waits ---------------------------------------------

_SUMMARY = re.compile(r"in ([0-9.]+) s \(.*model ([0-9.]+) s\)")


def run_command(arguments: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds from process start to exit, seconds inside model calls) of one
    `facedenoise ...` process; the model time is read off its summary line."""
    command = [sys.executable, "-m", "facedenoise", *arguments]
    started = time.perf_counter()
    finished = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{finished.stdout}{finished.stderr}")
    match = _SUMMARY.search(finished.stdout)
    return wall, float(match.group(2)) if match else float("nan")


def write_inputs(work: Path, count: int) -> dict[str, Path]:
    """One noisy face, one noisy 12-megapixel photo and a folder of `count` noisy faces."""
    import numpy as np

    from facedenoise.imageio import read_image, write_image
    from facedenoise.noise import add_gaussian_noise
    from facedenoise.runs import packaged_weights

    faces = packaged_weights().parent.parent / "sample" / "faces"
    face = read_image(sorted(faces.glob("*.png"))[-1]).pixels
    rng = np.random.default_rng(0)
    write_image(work / "face.png", add_gaussian_noise(face, NOISE_FACTOR, rng))
    write_image(work / "photo12mp.png", noisy_photo(3000, 4000, rng))
    write_noisy_folder(work / "faces", count, 128)
    return {"one face": work / "face.png", "12-MP photo": work / "photo12mp.png",
            f"{count} faces": work / "faces"}


def fp32_share_12mp(model_seconds: float) -> float:
    """Share of the CPU's FP32 peak: FLOPs of every 512-pixel tile of a 4000x3000 photo at the
    default settings (2 per multiply-accumulate), over `model_seconds`, over the peak."""
    from _common import theoretical_fp32_peak

    from facedenoise.config import DenoiseConfig
    from facedenoise.inference.runtimes import network_multiple
    from facedenoise.inference.tiling import plan_axis
    from facedenoise.models import count_macs
    from facedenoise.runs import load_model, packaged_weights

    model = load_model(packaged_weights())
    config, multiple = DenoiseConfig(), network_multiple(model)
    rows = plan_axis(3000, config.tile, config.overlap, multiple)
    columns = plan_axis(4000, config.tile, config.overlap, multiple)
    flops = 2 * count_macs(model, rows.tile) * len(rows.starts) * len(columns.starts)
    peak, _ = theoretical_fp32_peak()
    return flops / model_seconds / peak


def end_to_end(repeats: int, folder_repeats: int, count: int) -> None:
    from facedenoise.runs import quiet_tensorflow

    quiet_tensorflow()  # this process builds inputs and counts FLOPs with TensorFlow
    console = Console()
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        inputs = write_inputs(work, count)
        keras_copy = work / "starter-copy.keras"  # not the packaged file: forces TensorFlow
        from facedenoise.runs import packaged_weights

        shutil.copy(packaged_weights(), keras_copy)
        table = Table(title=f"facedenoise denoise, end to end (process start to exit), "
                      f"packaged starter, CPU ({os.cpu_count()} cores), medians")
        for column in ("input", "runtime", "runs", "wall s", "model s", "wall / model"):
            table.add_column(column, justify="right")
        model_12mp = {}
        for name, source in inputs.items():
            runs = folder_repeats if source.is_dir() else repeats
            for runtime, model in (("onnxruntime", "starter"), ("tensorflow", str(keras_copy))):
                suffix = "" if source.is_dir() else source.suffix
                times = [run_command(["denoise", str(source), str(work / f"out{index}{suffix}"),
                                      "--model", model, "--force"], work)
                         for index in range(runs)]
                wall = statistics.median(t[0] for t in times)
                model_seconds = statistics.median(t[1] for t in times)
                if name == "12-MP photo":
                    model_12mp[runtime] = model_seconds
                # The summary line gives model time to 0.1 s: a face's model time reads 0.0.
                ratio = f"{wall / model_seconds:.2f}" if model_seconds > 0 else "n/a"
                table.add_row(name, runtime, str(runs), f"{wall:.2f}", f"{model_seconds:.2f}",
                              ratio)
        console.print(table)
        for runtime, seconds in model_12mp.items():
            console.print(f"12-MP photo, {runtime}: {fp32_share_12mp(seconds):.1%} of the "
                          "CPU's theoretical FP32 peak inside model calls.")


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
    parser.add_argument("--end-to-end", action="store_true",
                        help="Time whole `facedenoise denoise` processes, ONNX vs TensorFlow.")
    parser.add_argument("--folder-repeats", type=int, default=1,
                        help="Runs of the folder of faces with --end-to-end.")
    args = parser.parse_args()
    if args.end_to_end:
        end_to_end(args.repeats, args.folder_repeats, args.count)
        return

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
            f"{config.overlap}: {seconds:.1f} s ({model_seconds:.1f} s in the model); "
            f"peak memory of this process {peak_gib:.2f} GiB."
        )


if __name__ == "__main__":
    main()
