"""Reproduce the packaged starter weights (src/facedenoise/weights/).

    python scripts/build_starter_data.py --out /tmp/starter_photos        # natural photos
    python scripts/train_starter.py --photos /tmp/starter_photos --natural-minutes 60 \\
        --face-minutes 30 --install

Two stages, both with fresh Gaussian noise (factor 0.3) in every batch:

1. natural: the photos are cut into 128x128 tiles at full, half and quarter scale (at most
   TILES_PER_SCALE per photo and scale, so large photos do not drown small ones), prepared
   like any dataset (5% validation, 5% test), and the default `unet` learns on them.
2. faces: the bundled sample faces are prepared with the default settings (seed 42); only
   their `train` split is trained on, their `val` split picks the best epoch and their `test`
   split is the held-out set of the model card. The network starts from stage 1 and keeps
   seeing NATURAL_IN_STAGE_2 of the natural tiles, with each face added FACE_COPIES times.

The best model of stage 2 and its config.json are copied into src/facedenoise/weights/.
"""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from facedenoise.config import ModelConfig, PrepareConfig, TrainConfig  # noqa: E402
from facedenoise.dataset import clean_files  # noqa: E402
from facedenoise.imageio import list_images, quantize, read_image  # noqa: E402
from facedenoise.prepare import prepare  # noqa: E402
from facedenoise.runs import load_model  # noqa: E402
from facedenoise.train import train  # noqa: E402

TILE = 128
SCALES = (1.0, 0.5, 0.25)
TILES_PER_SCALE = 60
FACE_COPIES = 16  # with NATURAL_IN_STAGE_2 tiles, faces are about a quarter of stage 2
NATURAL_IN_STAGE_2 = 1000
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "src" / "facedenoise" / "weights"


def cut_tiles(photo: Path, out_dir: Path) -> int:
    """Write up to TILES_PER_SCALE evenly spread TILE x TILE tiles of `photo` per scale."""
    pixels = quantize(read_image(photo).pixels)
    written = 0
    for scale in SCALES:
        scaled = pixels if scale == 1.0 else cv2.resize(
            pixels, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA
        )
        height, width = scaled.shape[:2]
        corners = [(top, left) for top in range(0, height - TILE + 1, TILE)
                   for left in range(0, width - TILE + 1, TILE)]
        if len(corners) > TILES_PER_SCALE:
            picks = np.linspace(0, len(corners) - 1, TILES_PER_SCALE).round().astype(int)
            corners = [corners[index] for index in picks]
        for top, left in corners:
            tile = scaled[top:top + TILE, left:left + TILE]
            name = f"{photo.stem}_s{int(scale * 100):03d}_{top:05d}_{left:05d}.png"
            cv2.imwrite(str(out_dir / name), cv2.cvtColor(tile, cv2.COLOR_RGB2BGR))
            written += 1
    return written


def prepare_natural(photos: Path, work: Path) -> Path:
    tiles = work / "natural_tiles"
    if not tiles.is_dir():
        tiles.mkdir(parents=True)
        count = sum(cut_tiles(photo, tiles) for photo in list_images(photos))
        print(f"{count} tiles from {photos}")
    data = work / "natural"
    config = PrepareConfig(count=None, test_fraction=0.05, val_fraction=0.05)
    prepare(tiles, data, config, show_progress=False)
    return data


def face_extra(faces_data: Path, natural_data: Path, work: Path) -> Path:
    """A folder with some natural training tiles and FACE_COPIES copies of each face."""
    extra = work / "face_extra"
    if extra.exists():
        shutil.rmtree(extra)
    extra.mkdir(parents=True)
    tiles = clean_files(natural_data, "train")
    picks = np.linspace(0, len(tiles) - 1, min(len(tiles), NATURAL_IN_STAGE_2)).round()
    for index in picks.astype(int):
        os.link(tiles[index], extra / f"natural_{tiles[index].name}")
    for face in clean_files(faces_data, "train"):
        for copy in range(FACE_COPIES):
            shutil.copyfile(face, extra / f"face_{face.stem}_{copy}.png")
    return extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, required=True, help="natural photos folder")
    parser.add_argument("--work", type=Path, default=Path("build/starter"))
    parser.add_argument("--stage", choices=("natural", "faces", "all"), default="all")
    parser.add_argument("--natural-minutes", type=float, default=60.0)
    parser.add_argument("--face-minutes", type=float, default=30.0)
    parser.add_argument("--init", default=None, help="stage-1 run (with --stage faces)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--install", action="store_true", help="copy into the package")
    args = parser.parse_args()

    natural_data = prepare_natural(args.photos, args.work)
    runs = args.work / "runs"
    common = dict(epochs=10_000, patience=10_000, batch_size=args.batch_size,
                  steps_per_epoch=100)
    init = args.init
    if args.stage in ("natural", "all"):
        config = TrainConfig(lr=args.lr, time_limit_minutes=args.natural_minutes, **common)
        init = str(train(natural_data, runs, ModelConfig(), config))
        print(f"stage 1 (natural): {init}")
    if args.stage in ("faces", "all"):
        faces_data = args.work / "faces"
        prepare("sample", faces_data, PrepareConfig(), show_progress=False)
        config = TrainConfig(
            lr=args.lr / 3, time_limit_minutes=args.face_minutes, patch_size=TILE,
            extra_train=str(face_extra(faces_data, natural_data, args.work)),
            init_from=init, **common,
        )
        run_dir = train(faces_data, runs, ModelConfig(), config)
        print(f"stage 2 (faces): {run_dir}")
        if args.install:
            WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
            # Without the optimizer state the file is a third of the size (package data).
            load_model(run_dir / "best.keras").save(WEIGHTS_DIR / "starter.keras")
            shutil.copyfile(run_dir / "config.json", WEIGHTS_DIR / "config.json")
            print(f"installed into {WEIGHTS_DIR}")


if __name__ == "__main__":
    main()
