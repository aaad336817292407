"""Reproduce the packaged starter weights (src/facedenoise/weights/).

    python scripts/build_starter_data.py --out /tmp/starter_photos     # natural photos
    python scripts/train_starter.py --photos /tmp/starter_photos --minutes 90

1. Prepares the bundled sample faces with the default settings (seed 42): their `test`
   split is the held-out set of the model card, their `val` split picks the best epoch, and
   only their `train` split is trained on.
2. Cuts the natural photos into 256x256 tiles at full and half scale, and adds the face
   training images three more times so faces weigh more than any one photo.
3. Trains the default `unet` on random 128x128 crops with fresh noise (factor 0.3) for
   `--minutes`, with a cosine schedule that ends when the time does.
4. Copies the best model and its config.json into src/facedenoise/weights/.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import cv2

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from facedenoise.config import ModelConfig, PrepareConfig, TrainConfig  # noqa: E402
from facedenoise.dataset import clean_files  # noqa: E402
from facedenoise.imageio import list_images, quantize, read_image  # noqa: E402
from facedenoise.prepare import prepare  # noqa: E402
from facedenoise.train import train  # noqa: E402

TILE = 256
SCALES = (1.0, 0.5)
FACE_COPIES = 3
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "src" / "facedenoise" / "weights"


def cut_tiles(photo: Path, out_dir: Path) -> int:
    """Write TILE x TILE tiles of `photo` at each scale; returns how many."""
    pixels = quantize(read_image(photo).pixels)
    written = 0
    for scale in SCALES:
        scaled = pixels if scale == 1.0 else cv2.resize(
            pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA
        )
        height, width = scaled.shape[:2]
        for top in range(0, height - TILE + 1, TILE):
            for left in range(0, width - TILE + 1, TILE):
                tile = scaled[top:top + TILE, left:left + TILE]
                name = f"{photo.stem}_s{int(scale * 100)}_{top}_{left}.png"
                cv2.imwrite(str(out_dir / name), cv2.cvtColor(tile, cv2.COLOR_RGB2BGR))
                written += 1
    return written


def build_extra(photos: Path, faces_data: Path, extra_dir: Path) -> int:
    """Fill `extra_dir` with photo tiles and copies of the face training images."""
    if extra_dir.exists():
        shutil.rmtree(extra_dir)
    extra_dir.mkdir(parents=True)
    count = sum(cut_tiles(photo, extra_dir) for photo in list_images(photos))
    for face in clean_files(faces_data, "train"):
        for copy in range(FACE_COPIES):
            shutil.copyfile(face, extra_dir / f"face_{face.stem}_{copy}.png")
            count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True, help="natural photos folder")
    parser.add_argument("--work", type=Path, default=Path("build/starter"))
    parser.add_argument("--minutes", type=float, default=90.0)
    parser.add_argument("--epochs", type=int, default=400)
    parser.add_argument("--steps-per-epoch", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--install", action="store_true", help="copy into the package")
    args = parser.parse_args()

    faces_data = args.work / "faces"
    prepare("sample", faces_data, PrepareConfig(), show_progress=False)
    extra_count = build_extra(args.photos, faces_data, args.work / "extra")
    print(f"training on {len(clean_files(faces_data, 'train'))} faces + {extra_count} extra")
    train_config = TrainConfig(
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        batch_size=args.batch_size,
        lr=args.lr,
        patch_size=128,
        extra_train=str(args.work / "extra"),
        patience=args.epochs,  # the time limit ends the run; keep the best epoch
        time_limit_minutes=args.minutes,
    )
    run_dir = train(faces_data, args.work / "runs", ModelConfig(), train_config)
    print(f"run: {run_dir}")
    if args.install:
        WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run_dir / "best.keras", WEIGHTS_DIR / "starter.keras")
        shutil.copyfile(run_dir / "config.json", WEIGHTS_DIR / "config.json")
        print(f"installed into {WEIGHTS_DIR}")


if __name__ == "__main__":
    main()
