"""What `--ensemble N` buys: PSNR / SSIM of one model averaged over 1, 2, 4 and 8 flips and
rotations, given the true level, on held-out faces and photo crops at several noise levels.

    python benchmarks/bench_ensemble.py --photos /work/corpus/heldout [--model starter] \\
        [--levels 0.05,0.1,0.2,0.3,0.5] [--max-photos 10] [--crop 256]

Images: the bundled sample's val and test faces (the default split: never trained on) and
the first --max-photos photos in --photos, each cut to its centre square of at most --crop
pixels. Noise: `clip(clean + level * N(0, 1), 0, 1)` stored as 8-bit, seeded per set, image
and level. Prints a markdown table (mean PSNR dB / SSIM per set and level, one column per N).
"""

from __future__ import annotations

import argparse

import _common  # noqa: F401  (quiets TensorFlow before it loads)
import numpy as np
from bench_user import held_out_faces

SIZES = (1, 2, 4, 8)
SEED = 7


def centre_square(pixels: np.ndarray, crop: int) -> np.ndarray:
    height, width = pixels.shape[:2]
    side = min(height, width, crop)
    top, left = (height - side) // 2, (width - side) // 2
    return pixels[top : top + side, left : left + side]


def main() -> None:
    from facedenoise.config import DenoiseConfig
    from facedenoise.imageio import list_images, quantize, read_image
    from facedenoise.inference import Denoiser
    from facedenoise.metrics import psnr, ssim
    from facedenoise.noise import add_gaussian_noise, noise_rng

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", required=True, help="held-out photos folder")
    parser.add_argument("--model", default="starter")
    parser.add_argument("--levels", default="0.05,0.1,0.2,0.3,0.5")
    parser.add_argument("--max-photos", type=int, default=10)
    parser.add_argument("--crop", type=int, default=256)
    args = parser.parse_args()
    sets = {
        "faces": [read_image(path).pixels for path in held_out_faces()],
        "photos": [centre_square(read_image(path).pixels, args.crop)
                   for path in list_images(args.photos)[: args.max_photos]],
    }
    denoisers = {size: Denoiser.load(args.model, config=DenoiseConfig(ensemble=size))
                 for size in SIZES}
    print("| set | level | " + " | ".join(f"ensemble {size}" for size in SIZES) + " |")
    print("|---|---|" + "---|" * len(SIZES))
    for name, images in sets.items():
        for level in (float(value) for value in args.levels.split(",")):
            noisy = [
                quantize(add_gaussian_noise(clean, level, noise_rng(SEED, f"{name}{i}{level}")))
                .astype(np.float32) / 255
                for i, clean in enumerate(images)
            ]
            cells = []
            for size in SIZES:
                outputs = [denoisers[size].denoise(image, noise_level=level) for image in noisy]
                scores = [(psnr(clean, out), ssim(clean, out))
                          for clean, out in zip(images, outputs, strict=True)]
                cells.append(f"{np.mean([p for p, _ in scores]):.2f} / "
                             f"{np.mean([s for _, s in scores]):.3f}")
            print(f"| {name} | {level:g} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
