"""Polish the starter weights on a GPU machine that has JAX but no TensorFlow.

The GPU machines lent to this project carry JAX (and Keras' dependencies) but not
TensorFlow, so `facedenoise train` (tf.data) cannot run there. This script packs what a
polish needs on a machine with the project installed, and trains on the other with a plain
JAX loop around the Keras model (`Model.stateless_call`), the data on the device:

    # here: the training tiles as JPEG (quality 85, full-resolution colour: 26 MiB, so that
    # the pack, the checkout and the keras wheels travel within 64 MiB), the first 200
    # validation tiles as PNG; the weights to start from are the packaged ones (--init
    # packs others, 13 MiB more: more than the 64 MiB allow with the full pack)
    python scripts/polish_jax.py pack --work /work/starter --out gpu_pack
    # there (KERAS_BACKEND=jax; the keras wheels carried: MODEL_CARD.md)
    KERAS_BACKEND=jax python scripts/polish_jax.py train --pack gpu_pack --minutes 7 \\
        [--level-modulation --level-weight-power 1] --out $OUT/run
    # here again: measure it (benchmarks/bench_user.py --model RUN/best.keras), then install
    python scripts/train_starter.py install --run RUN

The recipe is `train_starter.py polish --loss-after-chroma` made for a large accelerator:
a level per image drawn uniformly from 0 to 0.5, fresh noise every step, flips and
90-degree rotations, each image's MSE after the chroma stage weighted by `level_weight`,
Adam with gradients clipped to a global norm of 2, and the runs' schedule
(`callbacks.CosineSchedule`: 100 warm-up steps, then a cosine to 1% of the peak over the
wall-clock budget, compiling excluded); larger batches (default 64) than on the CPU. The
budget ends early enough that the run finishes within `--deadline-seconds` of its start
(the device's commands stop at 10 minutes). Every `--eval-seconds` the model is scored on
the validation tiles at 0.02, 0.1, 0.3 and 0.5 (seeded noise, after the chroma stage),
best.keras keeps the best mean PSNR and history.csv is rewritten. The numbers are not those
of the CPU runs' history (float noise instead of the 8-bit 0.3 files): compare checkpoints
with the benchmarks. The training tiles are JPEG-coded (41.6 dB from the PNGs on average):
check the weakest levels (bench_user.py at 0.05) before installing.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # runs from a checkout

JPEG_QUALITY = 85
VAL_TILES = 200  # as the CPU runs' validation at extra levels (train.EXTRA_VALIDATION_IMAGES)
NOISE_RANGE = (0.0, 0.5)
VAL_LEVELS = (0.02, 0.1, 0.3, 0.5)
VAL_SEED = 2026
CLIP_NORM = 2.0  # as train_starter.CLIP_NORM
SYNC_STEPS = 4  # the loop waits for the device every this many steps
WARMUP_STEPS = 100  # as train._callbacks
FINISH_SECONDS = 30  # kept from the deadline for the last evaluation and saving
PROCESS_START = time.perf_counter()


# --- pack (on a machine with the project installed) ---

def _encoded_blob(paths: list[Path], repeats: list[int], extension: str) -> dict:
    """The files re-encoded (JPEG at JPEG_QUALITY without colour subsampling, or PNG) and
    concatenated: {"data": uint8, "offsets": int64, "repeats": int64, each file's weight}."""
    options = ([cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY, cv2.IMWRITE_JPEG_SAMPLING_FACTOR,
                cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444] if extension == ".jpg" else [])
    pieces = []
    for path in paths:
        ok, encoded = cv2.imencode(extension, cv2.imread(str(path), cv2.IMREAD_COLOR), options)
        if not ok:
            raise SystemExit(f"cannot encode {path}")
        pieces.append(encoded.ravel())
    offsets = np.cumsum([0] + [len(piece) for piece in pieces]).astype(np.int64)
    return {"data": np.concatenate(pieces), "offsets": offsets,
            "repeats": np.asarray(repeats, np.int64)}


def _unique_with_repeats(paths: list[Path]) -> tuple[list[Path], list[int]]:
    """`paths` with hard links to one file kept once (the extra faces are 16 links each),
    and how often each was listed."""
    seen: dict[tuple[int, int], int] = {}
    unique, repeats = [], []
    for path in paths:
        status = path.stat()
        key = (status.st_dev, status.st_ino)
        if key in seen:
            repeats[seen[key]] += 1
        else:
            seen[key] = len(unique)
            unique.append(path)
            repeats.append(1)
    return unique, repeats


def pack(work: Path, init: Path | None, out: Path, limit: int | None) -> None:
    """Write OUT/train.npz and OUT/val.npz from a `train_starter.py data` work folder, and
    with `init` OUT/init.keras (without optimizer state) and its config.json."""
    import keras

    from facedenoise.dataset import clean_files
    from facedenoise.imageio import list_images

    train = clean_files(work / "natural", "train") + list_images(work / "extra")
    val = clean_files(work / "natural", "val")[:VAL_TILES]
    if limit:
        train, val = train[:limit], val[: max(8, limit // 8)]
    train, repeats = _unique_with_repeats(train)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(out / "train.npz", **_encoded_blob(train, repeats, ".jpg"))
    np.savez(out / "val.npz", **_encoded_blob(val, [1] * len(val), ".png"))
    if init is not None:
        import facedenoise.models  # noqa: F401 - registers the custom layers

        keras.saving.load_model(init, compile=False).save(out / "init.keras")
        shutil.copyfile(init.parent / "config.json", out / "config.json")
    size = sum(path.stat().st_size for path in out.iterdir()) / 2**20
    print(f"packed {sum(repeats)} training tiles ({len(train)} files) and {len(val)} "
          f"validation tiles into {out} ({size:.1f} MiB)")


# --- train (on the accelerator) ---

def _decoded(blob_file: Path) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (N, H, W, 3) RGB images from a pack's .npz, and how often each counts."""
    blob = np.load(blob_file)
    data, offsets = blob["data"], blob["offsets"]
    images = [cv2.imdecode(data[start:stop], cv2.IMREAD_COLOR)
              for start, stop in zip(offsets[:-1], offsets[1:], strict=True)]
    return np.stack([cv2.cvtColor(image, cv2.COLOR_BGR2RGB) for image in images]), blob[
        "repeats"]


def _validation_set(val: np.ndarray):
    """(clean, noisy, levels) float32 arrays: every tile at every VAL_LEVELS level."""
    from facedenoise.noise import add_gaussian_noise

    rng = np.random.default_rng(VAL_SEED)
    clean = val.astype(np.float32) / 255
    noisy = [add_gaussian_noise(clean, level, rng) for level in VAL_LEVELS]
    levels = np.repeat(np.asarray(VAL_LEVELS, np.float32), len(val))
    return np.concatenate([clean] * len(VAL_LEVELS)), np.concatenate(noisy), levels


class Polish:
    """The model's variables, the optimizer and the jitted steps.

    tiles: uint8 (N, H, W, 3) on the device, passed to every step (a closure would compile
    them into the program as a constant); picks: int32 indices into tiles, one entry per
    time a tile counts (the extra faces count 16 times), so a uniform draw from picks
    weighs the tiles as the CPU runs do.
    """

    def __init__(self, model, lr: float, batch: int, level_weight_power: float):
        import jax
        import jax.numpy as jnp
        import optax

        from facedenoise.chroma_loss import smooth_chroma_differentiable
        from facedenoise.noise import level_weight

        self.model = model
        # Keras' Adam adds epsilon 1e-7; clipping by the global norm comes first, as there.
        self.optimizer = optax.chain(
            optax.clip_by_global_norm(CLIP_NORM),
            optax.inject_hyperparams(optax.adam)(learning_rate=lr, eps=1e-7),
        )
        self.trainable = [variable.value for variable in model.trainable_variables]
        self.non_trainable = [variable.value for variable in model.non_trainable_variables]
        self.state = self.optimizer.init(self.trainable)

        def forward(trainable, non_trainable, noisy, level, training):
            output, non_trainable = model.stateless_call(
                trainable, non_trainable, [noisy, level[:, None]], training=training)
            return smooth_chroma_differentiable(output, level), non_trainable

        def loss_of(trainable, non_trainable, clean, noisy, level):
            output, non_trainable = forward(trainable, non_trainable, noisy, level, True)
            errors = jnp.mean((output - clean) ** 2, axis=(1, 2, 3))
            return jnp.mean(errors * level_weight(level, level_weight_power)), non_trainable

        gradient_of = jax.value_and_grad(loss_of, has_aux=True)

        def step(trainable, non_trainable, state, tiles, picks, key, rate):
            keys = jax.random.split(key, 5)
            chosen = picks[jax.random.randint(keys[0], (batch,), 0, picks.shape[0])]
            clean = tiles[chosen].astype(jnp.float32) / 255
            flipped = jax.random.bernoulli(keys[1], 0.5, (batch,))
            clean = jnp.where(flipped[:, None, None, None], clean[:, :, ::-1], clean)
            turns = jax.random.randint(keys[2], (batch,), 0, 4)
            clean = jax.vmap(lambda image, k: jax.lax.switch(
                k, [lambda x, t=t: jnp.rot90(x, t) for t in range(4)], image))(clean, turns)
            low, high = NOISE_RANGE
            level = jax.random.uniform(keys[3], (batch,), minval=low, maxval=high)
            noise = jax.random.normal(keys[4], clean.shape)
            noisy = jnp.clip(clean + level[:, None, None, None] * noise, 0, 1)
            (loss, non_trainable), grads = gradient_of(trainable, non_trainable, clean, noisy,
                                                       level)
            state[1].hyperparams["learning_rate"] = rate
            updates, state = self.optimizer.update(grads, state, trainable)
            return optax.apply_updates(trainable, updates), non_trainable, state, loss

        def psnr(trainable, non_trainable, clean, noisy, level):
            with jax.default_matmul_precision("float32"):  # picks checkpoints at ~39 dB
                output, _ = forward(trainable, non_trainable, noisy, level, False)
            errors = jnp.mean((jnp.clip(output, 0, 1) - clean) ** 2, axis=(1, 2, 3))
            return jnp.minimum(10 * jnp.log10(1 / jnp.maximum(errors, 1e-10)), 100.0)

        self.step = jax.jit(step, donate_argnums=(0, 1, 2))
        self.psnr = jax.jit(psnr)

    def validate(self, clean, noisy, levels) -> dict[str, float]:
        """Mean PSNR (dB, after the chroma stage) per validation level, and their mean; the
        arrays on the device, one chunk per level (one compiled shape)."""
        result = {}
        for level in VAL_LEVELS:
            at = np.flatnonzero(levels == level)
            scores = self.psnr(self.trainable, self.non_trainable, clean[at[0]:at[-1] + 1],
                               noisy[at[0]:at[-1] + 1], levels[at[0]:at[-1] + 1])
            result[f"val_psnr_at_{level:g}"] = float(np.mean(np.asarray(scores)))
        result["val_psnr_mean"] = float(np.mean(list(result.values())))
        return result

    def save(self, path: Path) -> None:
        for variable, value in zip(self.model.trainable_variables, self.trainable, strict=True):
            variable.assign(value)
        for variable, value in zip(self.model.non_trainable_variables, self.non_trainable,
                                   strict=True):
            variable.assign(value)
        temp_path = path.with_name(f".{path.name}.partial.keras")
        self.model.save(temp_path)
        temp_path.replace(path)


def _write_history(rows: list[dict], path: Path) -> None:
    temp_path = path.with_name(f".{path.name}.partial")
    with temp_path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    temp_path.replace(path)


def train(pack_dir: Path, out: Path, minutes: float, lr: float, batch: int,
          eval_seconds: float, seed: int, level_weight_power: float,
          deadline_seconds: float, allow_cpu: bool, level_modulation: bool = False) -> None:
    import jax
    import keras

    import facedenoise.models  # noqa: F401 - registers the custom layers
    from facedenoise.callbacks import CosineSchedule

    print(f"devices: {jax.devices()}", flush=True)
    if jax.default_backend() == "cpu" and not allow_cpu:
        raise SystemExit("JAX found no accelerator (its CUDA plugin did not start?); "
                         "--allow-cpu runs on the CPU anyway.")
    (tiles, repeats), (val, _) = _decoded(pack_dir / "train.npz"), _decoded(pack_dir / "val.npz")
    clean, noisy, levels = (jax.device_put(array) for array in _validation_set(val))
    levels_here = np.asarray(levels)
    tiles_there = jax.device_put(tiles)
    picks = jax.device_put(np.repeat(np.arange(len(tiles), dtype=np.int32), repeats))
    init = pack_dir / "init.keras"
    if not init.is_file():  # the packaged weights
        init = Path(__file__).resolve().parents[1] / "src" / "facedenoise" / "weights" / (
            "starter.keras")
    model = keras.saving.load_model(init, compile=False)
    config = json.loads((init.parent / "config.json").read_text())
    if level_modulation and not config["model"].get("level_modulation", False):
        # Grown here rather than packed: a second set of weights would not fit the 64 MiB.
        from widen_model import checked_widen

        from facedenoise.config import load_run_config

        model_config = load_run_config(init.parent / "config.json").model
        model = checked_widen(model, model_config, model_config.width, level_modulation=True)
        config["model"]["level_modulation"] = True
    polish = Polish(model, lr, batch, level_weight_power)
    out.mkdir(parents=True, exist_ok=True)
    config["train"].update(
        lr=lr, batch_size=batch, time_limit_minutes=minutes, init_from=str(init),
        jit_compile=True, noise_range=list(NOISE_RANGE), clean_fraction=0.0,
        level_weighted_loss=True, level_weight_power=level_weight_power,
        loss_after_chroma=True, flip=True, rotate=True, color_jitter=False, seed=seed,
        clip_norm=CLIP_NORM, schedule="cosine")
    config["polish_jax"] = {"tiles": int(picks.shape[0]), "files": len(tiles),
                            "jpeg_quality": JPEG_QUALITY,
                            "devices": [str(device) for device in jax.devices()]}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    first = polish.validate(clean, noisy, levels_here)
    print(f"start: {first}", flush=True)
    polish.save(out / "best.keras")  # until a step does better (grown, when it was)
    best, rows = first["val_psnr_mean"], [{"step": 0, "seconds": 0.0, "images": 0, "lr": 0.0,
                                           "loss": math.nan, **first}]
    key = jax.random.PRNGKey(seed)
    steps, started, last_eval, loss = 0, None, 0.0, math.nan
    budget, schedule = minutes * 60, None
    while True:
        elapsed = 0.0 if started is None else time.perf_counter() - started
        if elapsed >= budget:
            break
        rate = lr / WARMUP_STEPS if schedule is None else schedule.learning_rate(steps, elapsed)
        key, step_key = jax.random.split(key)
        polish.trainable, polish.non_trainable, polish.state, loss = polish.step(
            polish.trainable, polish.non_trainable, polish.state, tiles_there, picks,
            step_key, rate)
        steps += 1
        if steps % SYNC_STEPS == 0 or started is None:
            # Steps are dispatched ahead of the device; unchecked, the loop would queue far
            # more of them than the clock allows, and the cosine would run ahead of them.
            loss.block_until_ready()
        if started is None:  # the first step compiles: the budget starts after it
            started = time.perf_counter()
            left = deadline_seconds - (started - PROCESS_START) - FINISH_SECONDS
            budget = max(0.0, min(budget, left))
            schedule = CosineSchedule(lr, total_steps=10**9, warmup_steps=WARMUP_STEPS,
                                      checkpoint=None, time_limit_seconds=max(budget, 1e-3))
            print(f"compiled in {started - PROCESS_START:.0f} s since the start; training "
                  f"for {budget:.0f} s", flush=True)
        elif elapsed - last_eval >= eval_seconds:
            last_eval = elapsed
            row = {"step": steps, "seconds": round(elapsed, 1), "images": steps * batch,
                   "lr": rate, "loss": float(loss),
                   **polish.validate(clean, noisy, levels_here)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            if row["val_psnr_mean"] > best:
                best = row["val_psnr_mean"]
                polish.save(out / "best.keras")
            _write_history(rows, out / "history.csv")
    final = {"step": steps, "seconds": round(budget, 1), "images": steps * batch,
             "lr": 0.0, "loss": float(loss), **polish.validate(clean, noisy, levels_here)}
    rows.append(final)
    print(json.dumps(final), flush=True)
    if final["val_psnr_mean"] > best:
        polish.save(out / "best.keras")
    _write_history(rows, out / "history.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("pack", "train"))
    parser.add_argument("--work", type=Path, help="pack: a train_starter.py data folder")
    parser.add_argument("--init", type=Path, help="pack: the weights to start from (a "
                        "run's best.keras, its config.json beside it); default: the packaged")
    parser.add_argument("--limit", type=int, default=None,
                        help="pack: at most this many training tiles (a trial pack)")
    parser.add_argument("--pack", type=Path, help="train: the packed folder")
    parser.add_argument("--out", type=Path, required=True,
                        help="pack: the folder to write; train: the run folder to write")
    parser.add_argument("--minutes", type=float, default=7.0,
                        help="train: wall-clock budget after compiling")
    parser.add_argument("--deadline-seconds", type=float, default=570.0,
                        help="train: finish within this long of the start, whatever "
                        "--minutes says (a device command stops at 600 s)")
    parser.add_argument("--allow-cpu", action="store_true",
                        help="train: run even where JAX finds no accelerator (tests)")
    parser.add_argument("--lr", type=float, default=1e-4, help="train: peak learning rate")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--eval-seconds", type=float, default=30.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--level-weight-power", type=float, default=2.0)
    parser.add_argument("--level-modulation", action="store_true",
                        help="train: grow the init into the network with the level in every "
                        "block first (FiLM; scripts/widen_model.py), its output unchanged")
    args = parser.parse_args()
    # Here, not at import: a test process that imports this module keeps its own backend.
    os.environ.setdefault("KERAS_BACKEND", "jax")
    if args.stage == "pack":
        if args.work is None:
            raise SystemExit("pack needs --work")
        pack(args.work, args.init, args.out, args.limit)
    else:
        if args.pack is None:
            raise SystemExit("train needs --pack")
        train(args.pack, args.out, args.minutes, args.lr, args.batch, args.eval_seconds,
              args.seed, args.level_weight_power, args.deadline_seconds, args.allow_cpu,
              args.level_modulation)


if __name__ == "__main__":
    main()
