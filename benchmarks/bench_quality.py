"""Equal-budget quality: train candidates on the same data for the same CPU time, then score
them at every noise level on the same held-out images.

    python benchmarks/bench_quality.py --data build/starter/natural \\
        --extra-train build/starter/extra --cpu-minutes 12 \\
        --candidates unet,resunet-w24,resunet-w32,nafunet-w32 [--out bench_out/quality]
    python benchmarks/bench_quality.py --time-limit 4 --candidates original,unet-0.3
    python benchmarks/bench_quality.py --steps 4000 --candidates resunet-w8-fade,resunet-w8-0.3

Budgets: `--cpu-minutes` counts this process's CPU seconds (fair when other jobs share the
machine; on an idle 2-core machine it is about half as many wall-clock minutes),
`--time-limit` wall-clock minutes, or `--steps` training steps (batches: the same training
compute for candidates of one architecture and batch size whatever the machine's load,
validation excluded, where a generalist validates at three more levels). Without --data the
bundled sample is prepared into --out.
Each candidate trains with its own recipe (CANDIDATES); the `-0.3` candidates train at
one level only (the specialist to compare a generalist with). Scores: PSNR and SSIM on the
validation split's clean images with seeded noise at each --levels value (the model is given
the true level: an oracle), after the chroma stage for models with a noise input, as
`denoise` runs them (`--no-chroma-filter`: the network alone; results.json keeps both). Prints
a table and writes results.json and results.md to --out.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import _common  # noqa: F401  (quiets TensorFlow before it loads)
from rich.console import Console
from rich.table import Table

from facedenoise.fileio import atomic_write_text

GENERALIST = {"noise_range": (0.0, 0.5), "clean_fraction": 0.05}
SPECIALIST = {"noise_factor": 0.3}
# name -> (ModelConfig fields, TrainConfig fields)
CANDIDATES = {
    "original": ({"arch": "original"}, {"lr": 1e-4, "batch_size": 8, **SPECIALIST}),
    "unet-0.3": ({"arch": "unet", "noise_input": False}, SPECIALIST),
    "unet": ({"arch": "unet"}, GENERALIST),
    "resunet-w24": ({"arch": "resunet", "width": 24, "blocks_per_level": 2,
                     "middle_blocks": 2}, GENERALIST),
    "resunet-w24-0.3": ({"arch": "resunet", "width": 24, "blocks_per_level": 2,
                         "middle_blocks": 2}, SPECIALIST),
    "resunet-w32": ({"arch": "resunet", "width": 32, "blocks_per_level": 1,
                     "middle_blocks": 2}, GENERALIST),
    "resunet-w24-m4": ({"arch": "resunet", "width": 24, "blocks_per_level": 1,
                        "middle_blocks": 4}, GENERALIST),
    "nafunet-w32": ({"arch": "nafunet", "width": 32, "blocks_per_level": 2,
                     "middle_blocks": 4}, GENERALIST),
    # Small enough to come close to convergence in a CPU budget: the cost of generality.
    "resunet-w8": ({"arch": "resunet", "width": 8, "blocks_per_level": 2,
                    "middle_blocks": 2}, {**GENERALIST, "clean_fraction": 0.0}),
    "resunet-w8-0.3": ({"arch": "resunet", "width": 8, "blocks_per_level": 2,
                        "middle_blocks": 2}, SPECIALIST),
    # The noise predicted in units of the level (level_fade None) against predicted as is.
    "resunet-w8-per-level": ({"arch": "resunet", "width": 8, "blocks_per_level": 2,
                              "middle_blocks": 2, "level_fade": None},
                             {**GENERALIST, "clean_fraction": 0.0}),
    "resunet-w8-fade": ({"arch": "resunet", "width": 8, "blocks_per_level": 2,
                         "middle_blocks": 2, "level_fade": 0.02},
                        {**GENERALIST, "clean_fraction": 0.0}),
    "resunet-w8-fade-w1": ({"arch": "resunet", "width": 8, "blocks_per_level": 2,
                            "middle_blocks": 2, "level_fade": 0.02},
                           {**GENERALIST, "clean_fraction": 0.0, "level_weight_power": 1.0}),
    # Every block modulated by the level (FiLM), not only the input.
    "resunet-w8-film": ({"arch": "resunet", "width": 8, "blocks_per_level": 2,
                         "middle_blocks": 2, "level_fade": 0.02, "level_modulation": True},
                        {**GENERALIST, "clean_fraction": 0.0}),
    "resunet-w8-film-w1": ({"arch": "resunet", "width": 8, "blocks_per_level": 2,
                            "middle_blocks": 2, "level_fade": 0.02, "level_modulation": True},
                           {**GENERALIST, "clean_fraction": 0.0, "level_weight_power": 1.0}),
    # FiLM on both convolutions of every block: the level also scales what each block adds.
    "resunet-w8-film2-w1": ({"arch": "resunet", "width": 8, "blocks_per_level": 2,
                             "middle_blocks": 2, "level_fade": 0.02, "level_modulation": True,
                             "residual_modulation": True},
                            {**GENERALIST, "clean_fraction": 0.0, "level_weight_power": 1.0}),
    # Gentler still: 1 / sqrt(level), more of the gradient to the strong levels.
    "resunet-w8-film-w05": ({"arch": "resunet", "width": 8, "blocks_per_level": 2,
                             "middle_blocks": 2, "level_fade": 0.02, "level_modulation": True},
                            {**GENERALIST, "clean_fraction": 0.0, "level_weight_power": 0.5}),
    # Minus each image's PSNR as the loss (NAFNet's), in place of the per-level weights.
    "resunet-w8-fade-psnr": ({"arch": "resunet", "width": 8, "blocks_per_level": 2,
                              "middle_blocks": 2, "level_fade": 0.02},
                             {**GENERALIST, "clean_fraction": 0.0, "loss": "psnr"}),
}
LEVELS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5)
STEPS_PER_EPOCH = 50


def train_candidate(name: str, data_dir: Path, runs_dir: Path, args) -> Path:
    """The run folder of candidate `name` trained to the budget in `args`: a new run, or its
    run in `runs_dir` resumed (to its budget, or only loaded when it is complete)."""
    from facedenoise.config import ModelConfig, TrainConfig, load_run_config
    from facedenoise.train import train

    run_dir = runs_dir / name
    if (run_dir / "state.json").is_file():
        # Trained before (a run stopped, or scoring that failed): continue it, or only score.
        finished = json.loads((run_dir / "state.json").read_text())["epoch"] >= (
            load_run_config(run_dir / "config.json").train.epochs)
        return run_dir if finished else train(None, runs_dir, resume=run_dir)
    model_fields, train_fields = CANDIDATES[name]
    if args.steps:
        # The cosine schedule runs over exactly these steps, with no clock to stop it.
        epochs, budget = -(-args.steps // args.steps_per_epoch), None
    else:
        epochs, budget = 10_000, args.cpu_minutes if args.cpu_minutes else args.time_limit
    config = TrainConfig(
        epochs=epochs, patience=10_000, steps_per_epoch=args.steps_per_epoch, seed=args.seed,
        time_limit_minutes=budget, time_limit_clock="cpu" if args.cpu_minutes else "wall",
        patch_size=args.patch_size, rotate=True,
        extra_train=str(args.extra_train) if args.extra_train else None,
    )
    config = replace(config, **train_fields)
    return train(data_dir, runs_dir, ModelConfig(**model_fields), config, run_name=name)


def score_levels(run_dir: Path, data_dir: Path, levels, limit: int, seed: int):
    """Mean PSNR/SSIM per level on the first `limit` validation images, oracle level: a pair
    of dicts, after the chroma stage (as `denoise` runs a model that takes a level; for one
    that does not, the same scores) and of the network alone, from one prediction."""
    import numpy as np

    from facedenoise.data import clean_images
    from facedenoise.inference.chroma import smooth_chroma_batch
    from facedenoise.models import takes_noise_level
    from facedenoise.noise import add_gaussian_noise, noise_rng
    from facedenoise.runs import load_model

    model = load_model(run_dir / "best.keras")
    clean = np.stack(clean_images(data_dir, "val", limit))
    with_stage, network_alone = {}, {}
    for level in levels:
        noisy = np.stack([add_gaussian_noise(image, level, noise_rng(seed, f"{index}@{level}"))
                          for index, image in enumerate(clean)])
        inputs = noisy
        if takes_noise_level(model):
            inputs = [noisy, np.full((len(noisy), 1), level, np.float32)]
        restored = np.clip(model.predict(inputs, batch_size=16, verbose=0), 0, 1)
        network_alone[f"{level:g}"] = _mean_scores(clean, restored)
        if takes_noise_level(model):
            restored = smooth_chroma_batch(restored.astype(np.float32), [level] * len(restored))
        with_stage[f"{level:g}"] = _mean_scores(clean, restored)
    return with_stage, network_alone


def _mean_scores(clean, restored) -> dict:
    import numpy as np

    from facedenoise.metrics import psnr_ssim

    psnr, ssim = psnr_ssim(clean, restored)
    return {"psnr": float(np.mean(np.minimum(psnr, 100.0))), "ssim": float(np.mean(ssim))}


def speed(run_dir: Path) -> float:
    """Inference images/s at 128x128, batch 16 (median of 5 calls)."""
    import numpy as np
    import tensorflow as tf
    from _common import median_rate

    from facedenoise.models import takes_noise_level
    from facedenoise.runs import load_model

    model = load_model(run_dir / "best.keras")
    images = np.random.default_rng(0).random((16, 128, 128, 3), dtype=np.float32)
    inputs = [images, np.full((16, 1), 0.3, np.float32)] if takes_noise_level(model) else images
    call = tf.function(lambda x: model(x, training=False))
    return median_rate(lambda: np.asarray(call(inputs)), 16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--cpu-minutes", type=float, default=None, help="CPU minutes each")
    budget.add_argument("--time-limit", type=float, default=None, help="wall minutes each")
    budget.add_argument("--steps", type=int, default=None,
                        help="training steps each (rounded up to whole epochs)")
    parser.add_argument("--steps-per-epoch", type=int, default=STEPS_PER_EPOCH,
                        help="steps between validations: fewer validations, the same training")
    parser.add_argument("--data", type=Path, default=None, help="prepared dataset")
    parser.add_argument("--extra-train", type=Path, default=None)
    parser.add_argument("--patch-size", type=int, default=96)
    parser.add_argument("--out", type=Path, default=Path("bench_out/quality"))
    parser.add_argument("--candidates", default="unet,resunet-w24,resunet-w32,nafunet-w32")
    parser.add_argument("--levels", default=",".join(f"{level:g}" for level in LEVELS))
    parser.add_argument("--limit", type=int, default=150, help="validation images scored")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-chroma-filter", dest="chroma_filter", action="store_false",
                        help="score the network alone (the table; results.json keeps both)")
    args = parser.parse_args()
    if not (args.cpu_minutes or args.time_limit or args.steps):
        args.cpu_minutes = 10.0
    levels = [float(level) for level in args.levels.split(",")]

    data_dir = args.data
    if data_dir is None:
        from facedenoise.config import PrepareConfig
        from facedenoise.prepare import prepare

        data_dir = args.out / "data"
        prepare("sample", data_dir, PrepareConfig())
    results = _load(args.out)
    for name in args.candidates.split(","):
        if name in results:
            continue  # already measured: rerunning the command completes a table (and
            # resumes a candidate's run that was stopped)
        run_dir = train_candidate(name, data_dir, args.out / "runs", args)
        results[name] = {"budget": _budget(args), **_measure(run_dir, data_dir, levels, args)}
        _save(args.out, results)
    _print(results, levels, args)


def _measure(run_dir, data_dir, levels, args) -> dict:
    from facedenoise.callbacks import read_history
    from facedenoise.config import load_run_config
    from facedenoise.models import count_macs
    from facedenoise.runs import load_model

    model = load_model(run_dir / "best.keras")
    history = read_history(run_dir / "history.csv")
    state = json.loads((run_dir / "state.json").read_text())
    with_stage, network_alone = score_levels(run_dir, data_dir, levels, args.limit, args.seed)
    return {
        "parameters": int(model.count_params()),
        "gmacs": count_macs(model, 128) / 1e9,
        "images_per_second": speed(run_dir),
        "steps": len(history) * load_run_config(run_dir / "config.json").train.steps_per_epoch,
        # On the run's own clock (CPU or wall, as budgeted), over every session of it.
        "training_minutes": state["elapsed_seconds"] / 60,
        "levels": with_stage,
        "levels_network_alone": network_alone,
    }


def _load(out: Path) -> dict:
    path = out / "results.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _save(out: Path, results: dict) -> None:
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")


def _budget(args) -> str:
    if args.steps:
        return f"{args.steps:,} steps"
    return (f"{args.cpu_minutes:g} CPU min" if args.cpu_minutes
            else f"{args.time_limit:g} wall min")


def _print(results: dict, levels, args) -> None:
    stage = "with the chroma stage" if args.chroma_filter else "network alone"
    table = Table(title=f"Equal budget; PSNR dB / SSIM on validation, given the true level, "
                  f"{stage}")
    for column in ("candidate", "budget", "params", "GMACs", "img/s", "steps",
                   *[f"{level:g}" for level in levels]):
        table.add_column(column, justify="left" if column == "candidate" else "right")
    lines = ["| " + " | ".join(column.header for column in table.columns) + " |",
             "|" + "---|" * len(table.columns)]
    for name, result in results.items():
        # Results stored before the budget was recorded show "-".
        cells = [name, result.get("budget", "-"), f"{result['parameters']:,}",
                 f"{result['gmacs']:.2f}", f"{result['images_per_second']:.1f}",
                 str(result["steps"])]
        for level in levels:
            # Results measured before the stage existed hold only "levels", the network alone.
            scores = result["levels"] if args.chroma_filter else result.get(
                "levels_network_alone", result["levels"])
            score = scores.get(f"{level:g}")
            cells.append("-" if score is None else f"{score['psnr']:.2f} / {score['ssim']:.3f}")
        table.add_row(*cells)
        lines.append("| " + " | ".join(cells) + " |")
    Console(width=200).print(table)
    atomic_write_text(args.out / "results.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
