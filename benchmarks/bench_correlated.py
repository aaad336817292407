"""How far `auto` may follow the half-scale reading: the cap on it against correlated noise and
clean textures (the table in docs/noise_estimation.md, "Correlated noise under auto").

    python benchmarks/bench_correlated.py --photos /work/corpus/heldout \\
        --textures /work/data/photos/train [--model starter] [--out bench_out/correlated]

Each image is read at full scale (`levels.estimate_level`, "fine") and on its 2x2 means, times
2 ("half"), and denoised through `Denoiser.denoise` told max(fine, min(half, k x fine)) for
each cap k (k = 1: the fine reading alone), and told `levels.auto_level` (the tool's rule).
Sets: the bundled sample's val/test faces and centre squares of at most 256x256 of every photo
in --photos (clean, JPEG q85, white noise 0.05, noise 0.1 then JPEG q85, correlated noise
0.03 / 0.05 / 0.1: white noise blurred by a Gaussian of sigma 0.7 and rescaled, seeded per
image); centre squares of every photo in --textures, clean and JPEG q85 (granular textures
that the half scale reads as noise). Prints mean PSNR (dB) per set and cap, the worst image,
and the mean level `auto` used; writes results.json.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
from bench_told_levels import SEED, _centre_square, _correlated, _jpeg
from bench_user import held_out_faces

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

CAPS = (1.0, 1.5, 2.0, 2.5, 3.0)


def _psnr(clean: np.ndarray, image: np.ndarray) -> float:
    mse = float(np.mean((clean - image) ** 2))
    return 10 * np.log10(1 / max(mse, 1e-10))  # an untouched image: 100 dB


def conditions(textures: bool) -> dict:
    from facedenoise.noise import add_gaussian_noise

    kept = {"clean": lambda clean, rng: clean, "JPEG q85": lambda clean, rng: _jpeg(clean)}
    if textures:
        return kept
    return {
        **kept,
        "noise 0.05": lambda clean, rng: add_gaussian_noise(clean, 0.05, rng),
        "noise 0.1 + JPEG q85": lambda clean, rng: _jpeg(add_gaussian_noise(clean, 0.1, rng)),
        **{f"correlated {std:g}": (lambda clean, rng, std=std: _correlated(clean, std, rng))
           for std in (0.03, 0.05, 0.1)},
    }


def score(denoiser, noisy: np.ndarray, clean: np.ndarray) -> list[float]:
    """PSNR told each cap's level, then told `auto_level`'s, then that level."""
    from facedenoise.inference import levels

    fine = levels.estimate_level(noisy)
    half = levels._half_scale(noisy, fine)
    told = [max(fine, min(half, cap * fine)) for cap in CAPS] + [levels.auto_level(noisy)]
    scores: dict[float, float] = {}
    for level in told:
        if level not in scores:
            scores[level] = _psnr(clean, denoiser.denoise(noisy, noise_level=level))
    return [scores[level] for level in told] + [told[-1]]


def main() -> None:
    from facedenoise.imageio import read_image
    from facedenoise.inference import Denoiser

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=Path, required=True, help="held-out photos")
    parser.add_argument("--textures", type=Path, required=True, help="clean textured photos")
    parser.add_argument("--model", default="starter")
    parser.add_argument("--out", type=Path, default=Path("bench_out/correlated"))
    args = parser.parse_args()

    denoiser = Denoiser.load(args.model)
    texture_paths = sorted(args.textures.glob("*.png"))
    sets = {
        "faces": ([read_image(path).pixels for path in held_out_faces()], False),
        "photos": ([_centre_square(read_image(path).pixels)
                    for path in sorted(args.photos.glob("*.png"))], False),
        "textures": ([_centre_square(read_image(path).pixels) for path in texture_paths], True),
    }
    columns = [f"k={cap:g}" for cap in CAPS] + ["auto"]
    print("| set | input | " + " | ".join(columns) + " | worst (k=1 / auto) | auto level |")
    print("|---" * (len(columns) + 4) + "|")
    results = {}
    for name, (images, textures) in sets.items():
        for condition, degrade in conditions(textures).items():
            rows = np.array([
                [_psnr(clean, noisy), *score(denoiser, noisy, clean)]
                for index, clean in enumerate(images)
                for noisy in [degrade(clean, np.random.default_rng((SEED, index)))]
            ])
            means = rows.mean(axis=0)
            results[f"{name} {condition}"] = rows.tolist()
            print(f"| {name} {condition} | {means[0]:.2f} | "
                  + " | ".join(f"{value:.2f}" for value in means[1:-1])
                  + f" | {rows[:, 1].min():.2f} / {rows[:, -2].min():.2f} | {means[-1]:.4f} |",
                  flush=True)
    # The clean textures that some cap brings under 45 dB, one by one.
    print("\n| clean texture | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    for path, row in zip(texture_paths, results["textures clean"], strict=True):
        if min(row[1:-1]) < 45:
            print(f"| {path.stem} | " + " | ".join(f"{value:.2f}" for value in row[1:-1]) + " |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps({"caps": CAPS, "rows": results}))


if __name__ == "__main__":
    main()
