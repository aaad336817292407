"""Reproduce the packaged starter weights (src/facedenoise/weights/): a noise-conditional
generalist trained on every noise level from 0 to 0.5.

    python scripts/build_starter_data.py --out /tmp/starter_photos   # licensed photos
    python scripts/train_starter.py data --photos /tmp/starter_photos/train
    python scripts/train_starter.py train --hours 8        # start, or resume, the one run
    python scripts/train_starter.py polish --minutes 120 [--init WEIGHTS]   # measure, then
    python scripts/train_starter.py blend --weights build/starter/runs/polish/last.keras \\
        --init WEIGHTS --alpha 0.5                          # optional: halfway back
    python scripts/train_starter.py install --run build/starter/runs/polish # -> the package

The packaged weights: `train` stopped after its epoch 3 (its best.keras copied aside), then
`polish --init` that copy for 120 minutes (stopped after 104); then, on the grown corpus (a
fresh `data` folder), `polish --init <the first polish's best.keras> --lr 1.5e-4 --minutes 120`;
then, in a third work folder, `polish --init <the second polish's best.keras> --width 28
--lr 7e-5 --minutes 100 --loss-after-chroma`, twice more the same way from each best, and a
sixth time `--level-modulation --level-weight-power 1 --lr 1e-4 --minutes 100
--loss-after-chroma`, then `install --run` that sixth polish (every command: MODEL_CARD.md).

`data` cuts the training photos into 128x128 tiles at full, half and quarter scale (at most
TILES_PER_SCALE per photo and scale, so large photos do not drown small ones), prepares them
as a dataset (5% validation, 5% test: the validation tiles pick the best epoch), prepares the
bundled sample faces with the default settings (seed 42) and links their `train` split,
FACE_COPIES times each, into a folder of extra training images. The sample's `val` and `test`
faces and the photos' held-out set are never trained on.

`train` runs ONE resumable run (the same folder across sessions: it resumes when the folder
exists): ARCH with a noise-level input, fresh Gaussian noise every batch at a level drawn per
image from NOISE_RANGE, MSE weighted per level (TrainConfig.level_weighted_loss), Adam, XLA,
a cosine schedule over the planned steps.
Stop it at any time (Ctrl-C, or kill): the next `train` resumes from the last epoch.

`polish` settles an unfinished `train` run for packaging: a second, short run (runs/polish)
that starts from `--init` (default: the main run's best weights) with a lower learning rate
decaying to almost nothing within `--minutes` (a run still early in its schedule learns fast
but its weights jitter at the high rate). It leaves the main run untouched, so `train` can
go on later; delete runs/polish to polish again from the newer weights. With `--width` it
first grows `--init` to that width without changing its output (scripts/widen_model.py, into
WORK/widened/) and polishes the wider network: room to gain at every level at once, where a
polish at the same width trades weak noise against strong (docs/architecture_experiments.md).
With `--level-modulation` it grows `--init` the same way into the network with the level in
every block (FiLM; at equal steps it closed most of the gap to a 0.3-only model,
docs/architecture_experiments.md "Equal steps, and the level in every block").

`install` copies the best weights of a run (`--run`, default the main run; without optimizer
state) and its config.json into the package and exports them to ONNX beside them. Measure
before installing (`tests/test_starter_weights.py`, `benchmarks/bench_user.py`,
`benchmarks/bench_anchors.py`): the main run's epoch 5, unclipped, damaged clean images
(docs/architecture_experiments.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from facedenoise.config import (  # noqa: E402
    ModelConfig,
    PrepareConfig,
    TrainConfig,
    load_run_config,
)
from facedenoise.dataset import clean_files  # noqa: E402
from facedenoise.fileio import atomic_path, atomic_write_bytes, atomic_write_text  # noqa: E402
from facedenoise.imageio import list_images, quantize, read_image  # noqa: E402

TILE = 128
SCALES = (1.0, 0.5, 0.25)
TILES_PER_SCALE = 60
FACE_COPIES = 16  # the sample's 15 training faces, each seen as often as ~16 tiles
ARCH = ModelConfig(arch="resunet", width=24, depth=4, blocks_per_level=2, middle_blocks=2)
NOISE_RANGE = (0.0, 0.5)
STEPS_PER_EPOCH = 250
POLISH_LR = 3e-4
# Gradients rescaled to this global norm at most: typical steps measure 1.6 (median; 90th
# percentile 4.2) on the epoch-3 weights, so only spikes are cut. Without it, the main run at
# lr 1e-3 went into exploding activations between epochs 3 and 5
# (docs/architecture_experiments.md).
CLIP_NORM = 2.0
POLISH_STEPS_PER_EPOCH = 125  # shorter epochs: the best one is picked more finely
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


def build_data(photos: Path, work: Path) -> None:
    """Tiles -> work/natural (prepared), sample faces -> work/faces, extras -> work/extra."""
    from facedenoise.prepare import prepare

    tiles = work / "natural_tiles"
    if not tiles.is_dir():
        staging = work / "natural_tiles.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        count = sum(cut_tiles(photo, staging) for photo in list_images(photos))
        staging.rename(tiles)
        print(f"{count} tiles from {photos}")
    natural = PrepareConfig(count=None, test_fraction=0.05, val_fraction=0.05)
    prepare(tiles, work / "natural", natural)
    prepare("sample", work / "faces", PrepareConfig())
    extra = work / "extra"
    if extra.exists():
        shutil.rmtree(extra)
    extra.mkdir(parents=True)
    for face in clean_files(work / "faces", "train"):
        for copy in range(FACE_COPIES):
            os.link(face, extra / f"face_{face.stem}_{copy:02d}.png")
    print(f"data ready in {work}: natural/ (tiles), faces/ (sample), extra/ (training faces)")


def run_folder(work: Path) -> Path:
    return work / "runs" / "starter"


def train_config(epochs: int, hours: float | None) -> TrainConfig:
    # No clean images: the prediction fades out below level 0.02 (ModelConfig.level_fade), so
    # level 0 returns the input exactly and a clean image teaches nothing. XLA: ~12% fewer CPU
    # seconds a step here (measured on resunet, batch 16).
    return TrainConfig(
        epochs=epochs, batch_size=16, lr=1e-3, patience=10_000, patch_size=TILE,
        steps_per_epoch=STEPS_PER_EPOCH, noise_range=NOISE_RANGE, clean_fraction=0.0,
        rotate=True, jit_compile=True, clip_norm=CLIP_NORM,
        time_limit_minutes=None if hours is None else hours * 60,
    )


def train_or_resume(work: Path, epochs: int, hours: float | None) -> Path:
    """Start the one run in work/runs/starter, or resume it where it stopped."""
    from facedenoise.train import train

    run_dir = run_folder(work)
    if (run_dir / "last.keras").is_file():
        return train(None, work / "runs", resume=run_dir, epochs=epochs)
    config = train_config(epochs, hours)
    config = replace(config, extra_train=str(work / "extra"))
    # A fixed name makes resuming across sessions one command.
    return train(work / "natural", work / "runs", ARCH, config, run_name=run_dir.name)


def polish_folder(work: Path) -> Path:
    return work / "runs" / "polish"


# The settings a polish resume must repeat: resuming continues the stored run as it started,
# so a different value would be ignored without this check.
POLISH_SETTINGS = (
    "lr", "init_from", "loss_after_chroma", "level_weight_power", "time_limit_minutes")


def widened_init(work: Path, init: Path, width: int | None,
                 level_modulation: bool = False) -> tuple[Path, ModelConfig]:
    """The weights a polish starts from and their network: `init` itself, or (with a `width`
    other than its own, or `level_modulation` that it lacks) `init` grown to that network
    without changing its output (scripts/widen_model.py), written once to
    WORK/widened/<init's stem>_w<width>[_film]/ (best.keras and its config.json)."""
    from widen_model import widen_file

    model = load_run_config(init.parent / "config.json").model
    width = width or model.width
    film = level_modulation and not model.level_modulation
    if width == model.width and not film:
        return init, model
    suffix = "_film" if level_modulation or model.level_modulation else ""
    widened = work / "widened" / f"{init.stem}_w{width}{suffix}" / "best.keras"
    if not widened.is_file():
        widen_file(init, width, widened, level_modulation)
    return widened, load_run_config(widened.parent / "config.json").model


def polish_or_resume(
    work: Path, minutes: float, init: Path | None = None, lr: float = POLISH_LR,
    loss_after_chroma: bool = TrainConfig.loss_after_chroma,
    level_weight_power: float = TrainConfig.level_weight_power,
    width: int | None = None, level_modulation: bool = False,
) -> Path:
    """Start runs/polish from `init` (default: the main run's best weights; grown first to
    `width` and/or to FiLM with `level_modulation`, when given), or resume it (SystemExit
    when a POLISH_SETTINGS value or the network differs from the one it started with)."""
    from facedenoise.train import train

    run_dir = polish_folder(work)
    start, start_model = widened_init(
        work, init or run_folder(work) / "best.keras", width, level_modulation)
    # Many epochs, ended by the time limit: the cosine decays with the minutes spent.
    config = replace(
        train_config(epochs=1000, hours=minutes / 60), lr=lr,
        steps_per_epoch=POLISH_STEPS_PER_EPOCH, extra_train=str(work / "extra"),
        init_from=str(start),
        loss_after_chroma=loss_after_chroma, level_weight_power=level_weight_power,
    )
    if (run_dir / "last.keras").is_file():
        started = load_run_config(run_dir / "config.json")
        settings = [(name, getattr(started.train, name), getattr(config, name))
                    for name in POLISH_SETTINGS]
        settings += [(name, getattr(started.model, name), getattr(start_model, name))
                     for name in ("width", "level_modulation")]
        for name, before, now in settings:
            if before != now:
                raise SystemExit(
                    f"{run_dir} was started with {name}={before}, not {now}: resume it with "
                    "the same setting, or delete it to polish afresh.")
        return train(None, work / "runs", resume=run_dir)
    model = replace(ARCH, width=start_model.width,
                    level_modulation=start_model.level_modulation)
    return train(work / "natural", work / "runs", model, config, run_name=run_dir.name)


def blend_folder(work: Path) -> Path:
    return work / "runs" / "blend"


def blend(work: Path, weights: Path, init: Path, alpha: float) -> Path:
    """Write WORK/runs/blend/best.keras = alpha * `weights` + (1 - alpha) * `init`, weight by
    weight (both one architecture; `weights` a run's file, fine-tuned from `init`), with the
    config.json of the run that holds `weights` and a blend.json that records the mix.

    A polish from converged weights trades levels against each other (its gains at strong
    noise cost weak noise); part of the way along the straight line between the two keeps a
    larger share of the gains than of the loss (docs/architecture_experiments.md, "Training
    through the chroma stage").
    """
    from facedenoise.runs import load_model

    if not 0.0 <= alpha <= 1.0:
        raise SystemExit(f"--alpha must lie in [0, 1], not {alpha}.")
    tuned, start = load_model(weights), load_model(init)
    tuned.set_weights([alpha * a + (1 - alpha) * b for a, b in
                       zip(tuned.get_weights(), start.get_weights(), strict=True)])
    run_dir = blend_folder(work)
    with atomic_path(run_dir / "best.keras") as temp_path:
        tuned.save(temp_path)
    atomic_write_bytes(run_dir / "config.json", (weights.parent / "config.json").read_bytes())
    atomic_write_text(run_dir / "blend.json", json.dumps(
        {"weights": str(weights), "init": str(init), "alpha": alpha}, indent=2) + "\n")
    return run_dir


def install(work: Path, run: Path | None) -> None:
    from facedenoise.runs import load_model

    run_dir = run or run_folder(work)
    # Without the optimizer state the file is a third of the size (package data).
    with atomic_path(WEIGHTS_DIR / "starter.keras") as temp_path:
        load_model(run_dir / "best.keras").save(temp_path)
    atomic_write_bytes(WEIGHTS_DIR / "config.json", (run_dir / "config.json").read_bytes())
    subprocess.run(
        [sys.executable, "-m", "facedenoise", "export", "--model",
         str(WEIGHTS_DIR / "starter.keras"), "--format", "onnx", "--out",
         str(WEIGHTS_DIR / "starter.onnx"), "--force"],
        check=True,
    )
    print(f"installed into {WEIGHTS_DIR}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("data", "train", "polish", "blend", "install"))
    parser.add_argument("--photos", type=Path, help="training photos (data stage)")
    parser.add_argument("--work", type=Path, default=Path("build/starter"))
    parser.add_argument("--epochs", type=int, default=48,
                        help=f"planned epochs of {STEPS_PER_EPOCH} steps (the cosine's length)")
    parser.add_argument("--hours", type=float, default=None,
                        help="wall-clock budget of a new run (default: none; stop it any time)")
    parser.add_argument("--run", type=Path, default=None,
                        help="install: the run folder whose best.keras to install (default: "
                             "the main run, WORK/runs/starter)")
    parser.add_argument("--init", type=Path, default=None,
                        help="polish: the weights to start from (default: the main run's "
                             "best.keras); blend: the weights --weights started from")
    parser.add_argument("--minutes", type=float, default=60.0,
                        help="polish: wall-clock budget (the learning rate decays within it)")
    parser.add_argument("--lr", type=float, default=POLISH_LR,
                        help=f"polish: the starting learning rate (default {POLISH_LR})")
    parser.add_argument("--weights", type=Path, default=None,
                        help="blend: the tuned weights (a run's best.keras or last.keras)")
    parser.add_argument("--alpha", type=float, default=0.5,
                        help="blend: the share of --weights (the rest is --init's)")
    parser.add_argument("--loss-after-chroma", action="store_true",
                        help="polish: the loss after the chroma stage (TrainConfig)")
    parser.add_argument("--width", type=int, default=None,
                        help="polish: grow --init to this width first, its output unchanged "
                             "(scripts/widen_model.py; default: --init's own width)")
    parser.add_argument("--level-modulation", action="store_true",
                        help="polish: give --init the level in every block first (FiLM, "
                             "ModelConfig.level_modulation), its output unchanged "
                             "(scripts/widen_model.py)")
    parser.add_argument("--level-weight-power", type=float,
                        default=TrainConfig.level_weight_power,
                        help="polish: each image's loss weighs 1/level^POWER (TrainConfig; "
                             f"default {TrainConfig.level_weight_power:g})")
    args = parser.parse_args()
    if args.stage == "data":
        if args.photos is None:
            parser.error("data needs --photos")
        build_data(args.photos, args.work)
    elif args.stage == "train":
        print(f"run: {train_or_resume(args.work, args.epochs, args.hours)}")
    elif args.stage == "polish":
        run_dir = polish_or_resume(args.work, args.minutes, args.init, args.lr,
                                   args.loss_after_chroma, args.level_weight_power,
                                   args.width, args.level_modulation)
        print(f"run: {run_dir}")
    elif args.stage == "blend":
        if args.weights is None or args.init is None:
            parser.error("blend needs --weights and --init")
        print(f"run: {blend(args.work, args.weights, args.init, args.alpha)}")
    else:
        install(args.work, args.run)


if __name__ == "__main__":
    main()
