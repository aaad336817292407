"""Train `original` and `unet` on the same data for the same wall-clock budget, then score both.

    python benchmarks/bench_quality.py --time-limit 10 [--data DIR] [--out bench_out/quality]

Without --data the bundled sample is prepared into --out first. Both models train with their
own recipe (original: Adam 1e-4, batch 8, as the notebook; unet: the defaults) and the same
time limit, one after the other on this machine, and are evaluated on the fixed noisy
validation and test files. Prints PSNR/SSIM side by side with the noisy input's.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import _common  # noqa: F401  (quiets TensorFlow before it loads)
from rich.console import Console
from rich.table import Table

RECIPES = {
    "original": {"lr": 1e-4, "batch_size": 8},  # the notebook's
    "unet": {},  # the defaults of TrainConfig
}


def train_for(arch: str, data_dir: Path, runs_dir: Path, minutes: float, seed: int) -> Path:
    from facedenoise.config import ModelConfig, TrainConfig
    from facedenoise.train import train

    # 50 steps an epoch amortise validation and checkpoints on a small dataset like the sample.
    config = TrainConfig(epochs=10_000, patience=10_000, time_limit_minutes=minutes, seed=seed,
                         steps_per_epoch=50, **RECIPES[arch])
    return train(data_dir, runs_dir, ModelConfig(arch=arch), config)


def scores(run_dir: Path, data_dir: Path, split: str) -> dict:
    from facedenoise.evaluate import evaluate

    report = evaluate(model=run_dir, data_dir=data_dir, split=split,
                      out=run_dir / "eval" / split)
    return report.summary()["methods"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=10.0, help="minutes per model")
    parser.add_argument("--data", type=Path, default=None, help="prepared dataset")
    parser.add_argument("--out", type=Path, default=Path("bench_out/quality"))
    parser.add_argument("--archs", default="original,unet")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    data_dir = args.data
    if data_dir is None:
        from facedenoise.config import PrepareConfig
        from facedenoise.prepare import prepare

        data_dir = args.out / "data"
        prepare("sample", data_dir, PrepareConfig(), show_progress=False)

    table = Table(title=f"Same budget: {args.time_limit:g} min of training each, data {data_dir}")
    for column in ("method", "val PSNR", "val SSIM", "test PSNR", "test SSIM", "epochs",
                   "train min"):
        table.add_column(column, justify="left" if column == "method" else "right")
    input_row = None
    for arch in args.archs.split(","):
        started = time.monotonic()
        run_dir = train_for(arch, data_dir, args.out / "runs", args.time_limit, args.seed)
        minutes = (time.monotonic() - started) / 60
        epochs = len((run_dir / "history.csv").read_text().strip().splitlines()) - 1
        val, test = scores(run_dir, data_dir, "val"), scores(run_dir, data_dir, "test")
        input_row = ("noisy input", val["input"], test["input"], "", "")
        table.add_row(arch, *_cells(val["model"], test["model"]), str(epochs), f"{minutes:.1f}")
    if input_row:
        table.add_row(input_row[0], *_cells(input_row[1], input_row[2]), "", "")
    Console(width=150).print(table)


def _cells(val: dict, test: dict) -> list[str]:
    return [f"{val['psnr']['mean']:.2f}", f"{val['ssim']['mean']:.3f}",
            f"{test['psnr']['mean']:.2f}", f"{test['ssim']['mean']:.3f}"]


if __name__ == "__main__":
    main()
