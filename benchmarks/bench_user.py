"""What a user sees: `facedenoise denoise` with its defaults on clean, compressed and noisy
copies of photos nobody trained on, scored against the clean originals.

    python benchmarks/bench_user.py --photos /work/corpus/heldout [--model starter] \\
        [--ensemble N] [--no-chroma-filter] [--out bench_out/user]

Inputs: the bundled sample's val and test faces (the default split: never trained on) and
every photo in --photos, at full size. Conditions: the clean PNG; the clean image saved as
JPEG quality 85; Gaussian noise at 0.05 ... 0.5 (clipped, stored as 8-bit PNG, seeded per
image and level); noise 0.1 then JPEG 85; correlated noise of std 0.05 and 0.1 (white noise
blurred by a Gaussian of sigma 0.7 and rescaled, a stand-in for camera noise after
demosaicing, as in bench_told_levels.py). Each condition's files go through one
`facedenoise denoise IN_DIR OUT_DIR` process (noise level auto, the default model unless
--model; `--ensemble N` and `--no-chroma-filter` passed on when given), exactly as a user
would run it. Prints PSNR (dB) of the input and of the output against the clean original,
per set, with the gain; writes results.json and results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

LEVELS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
CORRELATED_LEVELS = (0.05, 0.1)
CORRELATION_SIGMA = 0.7  # pixels: the Gaussian that blurs white noise into correlated noise
JPEG_QUALITY = 85
SEED = 2026


def held_out_faces() -> list[Path]:
    """The sample's val and test faces of the default split, prepared in a temporary folder."""
    from facedenoise.config import PrepareConfig
    from facedenoise.dataset import clean_files
    from facedenoise.prepare import prepare

    data_dir = Path(tempfile.mkdtemp(prefix="bench_user_")) / "data"
    prepare("sample", data_dir, PrepareConfig())
    return clean_files(data_dir, "val") + clean_files(data_dir, "test")


def conditions() -> list[str]:
    return ["clean PNG", f"clean JPEG q{JPEG_QUALITY}", *[f"noise {level:g}" for level in LEVELS],
            f"noise 0.1 + JPEG q{JPEG_QUALITY}",
            *[f"correlated {level:g}" for level in CORRELATED_LEVELS]]


def degrade(clean: np.ndarray, condition: str, name: str) -> tuple[np.ndarray, str]:
    """(8-bit RGB input, file suffix) for one condition of one clean float image."""
    from facedenoise.imageio import quantize
    from facedenoise.noise import add_gaussian_noise, noise_rng

    if condition == "clean PNG":
        return quantize(clean), ".png"
    if condition.startswith("correlated"):
        level = float(condition.split()[1])
        white = noise_rng(SEED, f"{name}@correlated{level:g}").standard_normal(clean.shape)
        noise = cv2.GaussianBlur(white.astype(np.float32), (0, 0), CORRELATION_SIGMA)
        return quantize(np.clip(clean + level * noise / noise.std(), 0, 1)), ".png"
    level = 0.1 if "+" in condition else (0.0 if "clean" in condition else float(condition[6:]))
    pixels = clean
    if level:
        pixels = add_gaussian_noise(clean, level, noise_rng(SEED, f"{name}@{level:g}"))
    suffix = ".jpg" if "JPEG" in condition else ".png"
    return quantize(pixels), suffix


def _write(path: Path, rgb: np.ndarray) -> None:
    options = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if path.suffix == ".jpg" else []
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), options)


def _read(path: Path) -> np.ndarray:
    from facedenoise.imageio import read_image

    return read_image(path).pixels


def run_condition(images: dict[str, np.ndarray], condition: str, model: str | None,
                  work: Path, ensemble: int = 1, chroma_filter: bool = True) -> dict:
    """Write every image's input, run one `facedenoise denoise` on the folder, score it."""
    in_dir, out_dir = work / "in", work / "out"
    in_dir.mkdir(parents=True)
    for name, clean in images.items():
        rgb, suffix = degrade(clean, condition, name)
        _write(in_dir / f"{name}{suffix}", rgb)
    command = [sys.executable, "-m", "facedenoise", "denoise", str(in_dir), str(out_dir)]
    if model:
        command += ["--model", model]
    if ensemble > 1:
        command += ["--ensemble", str(ensemble)]
    if not chroma_filter:
        command += ["--no-chroma-filter"]
    subprocess.run(command, check=True, capture_output=True, text=True)
    inputs, outputs, cleans = [], [], []
    for path in sorted(in_dir.iterdir()):
        clean = images[path.stem]
        inputs.append(_read(path))
        outputs.append(_read(out_dir / path.name))
        cleans.append(clean)
    psnr_in = [_psnr(clean, image) for clean, image in zip(cleans, inputs, strict=True)]
    psnr_out = [_psnr(clean, image) for clean, image in zip(cleans, outputs, strict=True)]
    return {"input": _mean_psnr(psnr_in), "output": _mean_psnr(psnr_out),
            "min_output": float(np.min(psnr_out))}


def _psnr(clean: np.ndarray, image: np.ndarray) -> float:
    from facedenoise.metrics import psnr_ssim

    return float(psnr_ssim(clean[None], image[None])[0][0])


def _mean_psnr(values: list[float]) -> float:
    """Mean PSNR with identical images (inf) counted as 100 dB."""
    return float(np.mean(np.minimum(values, 100.0)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True, help="held-out photos folder")
    parser.add_argument("--model", default=None, help="default: what denoise picks")
    parser.add_argument("--out", type=Path, default=Path("bench_out/user"))
    parser.add_argument("--ensemble", type=int, default=1, help="denoise --ensemble N")
    parser.add_argument("--no-chroma-filter", dest="chroma_filter", action="store_false",
                        help="denoise --no-chroma-filter")
    args = parser.parse_args()
    from facedenoise.imageio import list_images

    sets = {
        "faces": {path.stem: _read(path) for path in held_out_faces()},
        "photos": {path.stem: _read(path) for path in list_images(args.photos)},
    }
    results: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        for set_name, images in sets.items():
            for condition in conditions():
                work = Path(folder) / set_name / condition.replace(" ", "_")
                results.setdefault(set_name, {})[condition] = run_condition(
                    images, condition, args.model, work, args.ensemble, args.chroma_filter)
                print(set_name, condition, results[set_name][condition], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [f"| input | {' | '.join(f'{name} in / out (gain)' for name in sets)} |",
             "|---|" + "---|" * len(sets)]
    for condition in conditions():
        cells = []
        for set_name in sets:
            row = results[set_name][condition]
            gain = "" if row["input"] >= 100 else f" ({row['output'] - row['input']:+.2f})"
            cells.append(f"{_db(row['input'])} / {row['output']:.2f}{gain}")
        lines.append(f"| {condition} | {' | '.join(cells)} |")
    table = "\n".join(lines)
    (args.out / "results.md").write_text(table + "\n")
    print(table)


def _db(value: float) -> str:
    return "inf" if value >= 100 else f"{value:.2f}"


if __name__ == "__main__":
    main()
