"""Levels told too high: the model run on the image as it is against the tool's default, which
first tops the image's noise up towards the told level (facedenoise/inference/levels.py).

    python benchmarks/bench_told_levels.py --photos /work/corpus/heldout [--model starter] \\
        [--out bench_out/told_levels]

Inputs: the bundled sample's val and test faces (128x128, never trained on) and a centre
square of at most 256x256 of every photo in --photos. Conditions: clean; Gaussian noise at
0.05, 0.1 and 0.2; correlated noise of std 0.1 (white noise blurred by a Gaussian of sigma
0.7, rescaled: a stand-in for camera noise after demosaicing, which the estimator reads low);
noise 0.1 then JPEG quality 85. Each is denoised through `Denoiser.denoise` told 0.07, 0.1,
0.15, 0.2 and 0.3, with and without the top-up, and with the level estimated (auto). Prints mean
PSNR (dB) against the clean images per set; writes results.json and results.md.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import cv2
import numpy as np
from bench_user import held_out_faces

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TOLD = (0.07, 0.1, 0.15, 0.2, 0.3)
CROP = 256
JPEG_QUALITY = 85
SEED = 2026


def _correlated(clean: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    noise = cv2.GaussianBlur(rng.standard_normal(clean.shape).astype(np.float32), (0, 0), 0.7)
    return np.clip(clean + std * noise / noise.std(), 0, 1)


def _jpeg(pixels: np.ndarray) -> np.ndarray:
    from facedenoise.imageio import quantize

    bgr = cv2.cvtColor(quantize(pixels), cv2.COLOR_RGB2BGR)  # OpenCV's channel order
    _, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(
        np.float32) / 255


def conditions():
    from facedenoise.noise import add_gaussian_noise

    return {
        "clean": lambda clean, rng: clean,
        "noise 0.05": lambda clean, rng: add_gaussian_noise(clean, 0.05, rng),
        "noise 0.1": lambda clean, rng: add_gaussian_noise(clean, 0.1, rng),
        "noise 0.2": lambda clean, rng: add_gaussian_noise(clean, 0.2, rng),
        "correlated 0.1": lambda clean, rng: _correlated(clean, 0.1, rng),
        f"noise 0.1 + JPEG q{JPEG_QUALITY}": lambda clean, rng: _jpeg(
            add_gaussian_noise(clean, 0.1, rng)),
    }


def _centre_square(pixels: np.ndarray) -> np.ndarray:
    height, width = pixels.shape[:2]
    side = min(height, width, CROP)
    top, left = (height - side) // 2, (width - side) // 2
    return np.ascontiguousarray(pixels[top : top + side, left : left + side])


def _psnr(clean: np.ndarray, restored: np.ndarray) -> float:
    mse = float(np.mean((clean - restored) ** 2))
    return 10 * np.log10(1 / max(mse, 1e-10))  # an untouched image: 100 dB


def _mean_psnr(denoiser, images, noisy, level) -> float:
    return float(np.mean([_psnr(clean, denoiser.denoise(image, noise_level=level))
                          for clean, image in zip(images, noisy, strict=True)]))


def score_set(denoiser, as_told, images: list[np.ndarray]) -> dict:
    """{condition: {"estimate", "input", "auto", "as told 0.1", "topped up 0.1", ...}};
    `as_told` is the same model without the top-up (`DenoiseConfig(top_up=False)`)."""
    from facedenoise.inference import levels

    results = {}
    for condition, degrade in conditions().items():
        noisy = [degrade(clean, np.random.default_rng((SEED, index)))
                 for index, clean in enumerate(images)]
        row = {
            "estimate": float(np.mean([levels.estimate_level(image) for image in noisy])),
            "input": float(np.mean([_psnr(c, n) for c, n in zip(images, noisy, strict=True)])),
            "auto": _mean_psnr(denoiser, images, noisy, "auto"),
        }
        for told in TOLD:
            row[f"as told {told:g}"] = _mean_psnr(as_told, images, noisy, told)
            row[f"topped up {told:g}"] = _mean_psnr(denoiser, images, noisy, told)
        results[condition] = row
        print(f"  {condition}: " + ", ".join(f"{key} {value:.3f}" for key, value in row.items()),
              flush=True)
    return results


def markdown(results: dict) -> str:
    lines = []
    for name, rows in results.items():
        lines += [f"**{name}** (mean PSNR dB; told: as told -> topped up)", "",
                  "| input | estimate | input PSNR | auto | "
                  + " | ".join(f"told {told:g}" for told in TOLD) + " |",
                  "|---" * (4 + len(TOLD)) + "|"]
        for condition, row in rows.items():
            told = [f"{row[f'as told {t:g}']:.2f} -> {row[f'topped up {t:g}']:.2f}" for t in TOLD]
            lines.append(f"| {condition} | {row['estimate']:.3f} | {row['input']:.2f} | "
                         f"{row['auto']:.2f} | " + " | ".join(told) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, required=True, help="held-out photos")
    parser.add_argument("--model", default="starter")
    parser.add_argument("--out", type=Path, default=Path("bench_out/told_levels"))
    args = parser.parse_args()
    from facedenoise.config import DenoiseConfig
    from facedenoise.imageio import read_image
    from facedenoise.inference import Denoiser

    denoiser = Denoiser.load(args.model)
    as_told = Denoiser.load(args.model, config=DenoiseConfig(top_up=False))
    sets = {
        "faces": [read_image(path).pixels for path in held_out_faces()],
        "photos": [_centre_square(read_image(path).pixels)
                   for path in sorted(args.photos.iterdir()) if path.is_file()],
    }
    results = {}
    for name, images in sets.items():
        print(f"{name}: {len(images)} images", flush=True)
        results[name] = score_set(denoiser, as_told, images)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    table = markdown(results)
    (args.out / "results.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
