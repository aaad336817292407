"""Accuracy and speed of the automatic noise-level estimate (facedenoise.noise_estimation).

Reproduces the tables in docs/noise_estimation.md:

    python benchmarks/bench_estimator.py                       # held-out faces and photos
    python benchmarks/bench_estimator.py --methods ours,immerkaer,wavelet   # vs. the classics
    python benchmarks/bench_estimator.py --methods ours,auto   # and what `auto` uses

Faces: the val and test faces of the bundled sample (prepared with the default split into a
temporary folder, or --faces-data DIR for a prepared folder). Photos: --photos DIR (default
/work/corpus/heldout, photos no model here was trained on). Every image gets the protocol's
noise, `clip(clean + level * N(0, 1), 0, 1)`, seeded by (repeat, image, level) and stored as
8-bit (as a user's file would be), --repeats draws per image and level; "jpeg85"/"jpeg95"
rows are the clean image saved as JPEG at that quality (the true level is 0), and
"0.1+jpeg85" is noise of 0.1 then JPEG (scored against 0.1, though JPEG removes some of the
noise: an informative row, not a target). Prints, per
method and level, the mean absolute error, the bias (mean signed error) and the largest error
over all images and draws, then the median time per call for a 128x128 face and a 12-megapixel
photo. Time it through /work/coord/quiet.sh on a shared machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from facedenoise.imageio import quantize, read_image
from facedenoise.noise import add_gaussian_noise, noise_rng
from facedenoise.noise_estimation import estimate_noise_level

LEVELS = "0,0.02,0.05,0.1,0.2,0.3,0.4,0.5,jpeg85,jpeg95"


def immerkaer(pixels: np.ndarray) -> float:
    """Immerkaer (1996): the mean absolute 3x3 Laplacian-difference response, per channel,
    with no correction for clipping or texture."""
    kernel = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)
    sigmas = []
    for channel in np.moveaxis(np.atleast_3d(pixels), 2, 0):
        response = cv2.filter2D(np.ascontiguousarray(channel), -1, kernel)[1:-1, 1:-1]
        sigmas.append(np.sqrt(np.pi / 2.0) * np.abs(response).mean() / 6.0)
    return float(np.mean(sigmas))


def wavelet(pixels: np.ndarray) -> float:
    """scikit-image's estimate_sigma: the median absolute finest diagonal wavelet coefficient
    (Donoho's MAD / 0.6745), averaged over channels."""
    from skimage.restoration import estimate_sigma

    return float(estimate_sigma(pixels, channel_axis=-1, average_sigmas=True))


def auto(pixels: np.ndarray) -> float:
    """What `--noise-level auto` uses: ours, raised towards its reading at half scale."""
    from facedenoise.inference.levels import auto_level

    return auto_level(pixels)


METHODS = {"ours": estimate_noise_level, "auto": auto, "immerkaer": immerkaer,
           "wavelet": wavelet}


def degraded(clean: np.ndarray, level: str, seed: int, image_id: str) -> np.ndarray:
    """`clean` under `level`: a number (the protocol's noise), jpegNN (a clean JPEG at quality
    NN) or NUMBER+jpegNN (noise, then JPEG), read back as 8-bit."""
    noise, _, quality = level.partition("+jpeg") if "+" in level else (level, "", "")
    if noise.startswith("jpeg"):
        noise, quality = "0", noise[4:]
    pixels = clean
    if float(noise) > 0:
        noisy = add_gaussian_noise(clean, float(noise), noise_rng(seed, f"{image_id}/{level}"))
        pixels = quantize(noisy).astype(np.float32) / 255.0
    if quality:
        bgr = quantize(pixels)[..., ::-1]
        encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])[1]
        pixels = cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0
    return pixels


def held_out_faces(faces_data: Path | None) -> list[Path]:
    """The val and test clean faces of a prepared folder (the bundled sample by default)."""
    if faces_data is None:
        from facedenoise.config import PrepareConfig
        from facedenoise.prepare import prepare

        faces_data = Path(tempfile.mkdtemp()) / "data"
        prepare("sample", faces_data, PrepareConfig(), workers=1)
    return sorted((faces_data / "clean" / "val").glob("*.png")) + sorted(
        (faces_data / "clean" / "test").glob("*.png")
    )


def errors_by_level(images, levels, methods, repeats):
    """{(method, level): [signed error, ...]} over every image and repeat."""
    errors = {(method, level): [] for method in methods for level in levels}
    for path in images:
        clean = read_image(path).pixels
        for level in levels:
            truth = 0.0 if level.startswith("jpeg") else float(level.split("+")[0])
            draws = 1 if level.startswith("jpeg") else repeats
            for seed in range(draws):
                noisy = degraded(clean, level, seed, path.name)
                for method in methods:
                    errors[(method, level)].append(METHODS[method](noisy) - truth)
    return errors


def print_table(title: str, errors, levels, methods, count: int) -> None:
    print(f"\n### {title} ({count} images)\n")
    header = "| level | " + " | ".join(f"{m} MAE | {m} bias | {m} max" for m in methods) + " |"
    print(header)
    print("|" + "---|" * (1 + 3 * len(methods)))
    for level in levels:
        cells = []
        for method in methods:
            values = np.array(errors[(method, level)])
            cells += [
                f"{np.abs(values).mean():.4f}",
                f"{values.mean():+.4f}",
                f"{np.abs(values).max():.4f}",
            ]
        print(f"| {level} | " + " | ".join(cells) + " |")


def median_ms(function, pixels, repeats: int = 7) -> tuple[float, float]:
    """Median wall and CPU (this process) milliseconds per call, after one warm-up call. On a
    shared machine the CPU time is the steadier of the two (the estimator is one thread)."""
    function(pixels)
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        function(pixels)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return 1000.0 * statistics.median(wall), 1000.0 * statistics.median(cpu)


def print_timing(methods, face: Path) -> None:
    face_pixels = degraded(read_image(face).pixels, "0.3", 0, "timing")
    rng = np.random.default_rng(0)
    rows, columns = np.mgrid[0:3000, 0:4000].astype(np.float32)
    photo = 0.5 + 0.3 * np.sin(rows / 150.0)[..., None] * np.cos(columns / 200.0)[..., None]
    photo = np.clip(photo + 0.1 * rng.standard_normal((3000, 4000, 3), np.float32), 0, 1)
    print("\n| method | 128x128 face: wall / CPU ms | 4000x3000 photo: wall / CPU ms |")
    print("|---|---|---|")
    for method in methods:
        face_ms = median_ms(METHODS[method], face_pixels)
        photo_ms = median_ms(METHODS[method], photo, repeats=3)
        print(
            f"| {method} | {face_ms[0]:.1f} / {face_ms[1]:.1f} "
            f"| {photo_ms[0]:.0f} / {photo_ms[1]:.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faces-data", type=Path, help="a prepared folder (default: sample)")
    parser.add_argument("--photos", type=Path, default=Path("/work/corpus/heldout"))
    parser.add_argument("--levels", default=LEVELS, help=f"comma-separated (default {LEVELS})")
    parser.add_argument("--methods", default="ours", help="ours,auto,immerkaer,wavelet")
    parser.add_argument("--repeats", type=int, default=3, help="noise draws per image and level")
    parser.add_argument("--no-timing", action="store_true")
    args = parser.parse_args()
    levels = args.levels.split(",")
    methods = args.methods.split(",")
    faces = held_out_faces(args.faces_data)
    photos = sorted(args.photos.glob("*.png")) if args.photos.is_dir() else []
    for title, images in [("held-out faces", faces), (f"photos in {args.photos}", photos)]:
        if images:
            errors = errors_by_level(images, levels, methods, args.repeats)
            print_table(title, errors, levels, methods, len(images))
    if not args.no_timing:
        print_timing(methods, faces[0])


if __name__ == "__main__":
    main()
