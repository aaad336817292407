"""Keras callbacks that make a run folder resumable, time-bounded and pleasant to watch."""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

import keras
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from facedenoise.fileio import atomic_path, atomic_write_text

STATE = "state.json"
HISTORY = "history.csv"
CURVES = "training_curves.png"


def load_state(run_dir: Path) -> dict:
    """The progress a run saved after its last finished epoch ({} for a new run)."""
    path = Path(run_dir) / STATE
    return json.loads(path.read_text()) if path.is_file() else {}


class RunCheckpoint(keras.callbacks.Callback):
    """After every epoch: save last.keras (with optimizer state), best.keras on a new best
    validation loss, history.csv, training_curves.png and state.json; stop early after
    `patience` epochs without improvement, or when `time_limit_seconds` is spent.

    One callback instead of ModelCheckpoint + EarlyStopping + CSVLogger because those reset
    their best value and counters at every `fit`, which would break `--resume`.
    """

    def __init__(self, run_dir: Path, patience: int, time_limit_seconds: float | None,
                 state: dict):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.patience = patience
        self.time_limit_seconds = time_limit_seconds
        self.best = state.get("best_val_loss", math.inf)
        self.best_epoch = state.get("best_epoch", 0)
        self.wait = state.get("wait", 0)
        self.elapsed_before = state.get("elapsed_seconds", 0.0)
        self.stop_reason = None
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def on_train_batch_end(self, batch, logs=None):
        if self.time_limit_seconds is not None and self.elapsed() >= self.time_limit_seconds:
            self.stop_reason = "time limit"
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        val_loss = logs.get("val_loss", logs.get("loss", math.inf))
        improved = val_loss < self.best
        if improved:
            self.best, self.best_epoch, self.wait = float(val_loss), epoch + 1, 0
            _save_model(self.model, self.run_dir / "best.keras")
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stop_reason = f"no validation gain for {self.patience} epochs"
                self.model.stop_training = True
        _save_model(self.model, self.run_dir / "last.keras")
        history = _append_history(self.run_dir / HISTORY, epoch + 1, logs, self.elapsed())
        plot_curves(history, self.run_dir / CURVES)
        state = {
            "epoch": epoch + 1,
            "best_val_loss": self.best,
            "best_epoch": self.best_epoch,
            "wait": self.wait,
            "elapsed_seconds": self.elapsed(),
            "stop_reason": self.stop_reason,
        }
        atomic_write_text(self.run_dir / STATE, json.dumps(state, indent=2) + "\n")


def _save_model(model: keras.Model, path: Path) -> None:
    with atomic_path(path) as temp_path:
        model.save(temp_path)


def _append_history(path: Path, epoch: int, logs: dict, elapsed: float) -> list[dict]:
    """Rewrite history.csv with this epoch's row (dropping rows of epochs >= it, which a
    resumed run repeats); returns all rows."""
    rows = []
    if path.is_file():
        with path.open(newline="") as handle:
            rows = [row for row in csv.DictReader(handle) if int(row["epoch"]) < epoch]
    row = {"epoch": epoch, "elapsed_seconds": round(elapsed, 1)}
    row.update({key: float(value) for key, value in sorted(logs.items())})
    rows.append(row)
    fields = list(dict.fromkeys(key for each in rows for key in each))
    with atomic_path(path) as temp_path, temp_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def plot_curves(history: list[dict], path: Path) -> None:
    """Loss (train and validation) and validation PSNR per epoch, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [int(row["epoch"]) for row in history]
    figure, (loss_axis, psnr_axis) = plt.subplots(1, 2, figsize=(10, 3.8))
    for key, label in (("loss", "train"), ("val_loss", "validation")):
        values = [float(row[key]) for row in history if row.get(key) not in (None, "")]
        if len(values) == len(epochs):
            loss_axis.plot(epochs, values, marker="o", label=label)
    loss_axis.set(xlabel="epoch", ylabel="loss", title="Loss", yscale="log")
    loss_axis.legend()
    for key, label in (("psnr", "train (fresh noise)"), ("val_psnr", "validation")):
        values = [float(row[key]) for row in history if row.get(key) not in (None, "")]
        if len(values) == len(epochs):
            psnr_axis.plot(epochs, values, marker="o", label=label)
    psnr_axis.set(xlabel="epoch", ylabel="PSNR (dB)", title="PSNR")
    psnr_axis.legend()
    for axis in (loss_axis, psnr_axis):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    with atomic_path(path) as temp_path:
        figure.savefig(temp_path, dpi=100)
    plt.close(figure)


class CosineSchedule(keras.callbacks.Callback):
    """Linear warm-up, then cosine decay to `final_fraction` of the peak learning rate.

    Progress is the larger of steps done / planned steps and time spent / time limit, so a
    run cut short by `--time-limit` still finishes its decay instead of stopping at a high
    learning rate.
    """

    def __init__(self, peak_lr: float, total_steps: int, warmup_steps: int,
                 checkpoint: RunCheckpoint, time_limit_seconds: float | None,
                 final_fraction: float = 0.01):
        super().__init__()
        self.peak_lr = peak_lr
        self.total_steps = max(1, total_steps)
        self.warmup_steps = warmup_steps
        self.checkpoint = checkpoint
        self.time_limit_seconds = time_limit_seconds
        self.final_fraction = final_fraction

    def learning_rate(self, step: int, elapsed: float) -> float:
        if step < self.warmup_steps:
            return self.peak_lr * (step + 1) / self.warmup_steps
        progress = step / self.total_steps
        if self.time_limit_seconds:
            progress = max(progress, elapsed / self.time_limit_seconds)
        cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        return self.peak_lr * (self.final_fraction + (1 - self.final_fraction) * cosine)

    def on_train_batch_begin(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        self.model.optimizer.learning_rate.assign(
            self.learning_rate(step, self.checkpoint.elapsed())
        )


class RichProgress(keras.callbacks.Callback):
    """One rich progress bar per epoch: step, loss, last validation PSNR, images/s, ETA."""

    def __init__(self, epochs: int, steps_per_epoch: int, batch_size: int, console=None):
        super().__init__()
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.batch_size = batch_size
        self.val_psnr = "-"
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("val PSNR {task.fields[val_psnr]}"),
            TextColumn("{task.fields[speed]} img/s"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task = None
        self.epoch_start = 0.0

    def on_train_begin(self, logs=None):
        self.progress.start()

    def on_train_end(self, logs=None):
        self.progress.stop()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.monotonic()
        self.task = self.progress.add_task(
            "train", total=self.steps_per_epoch, epoch=epoch + 1, epochs=self.epochs,
            loss="-", val_psnr=self.val_psnr, speed="-",
        )

    def on_train_batch_end(self, batch, logs=None):
        seconds = max(1e-9, time.monotonic() - self.epoch_start)
        speed = (batch + 1) * self.batch_size / seconds
        loss = (logs or {}).get("loss")
        self.progress.update(
            self.task, completed=batch + 1, speed=f"{speed:.1f}",
            loss="-" if loss is None else f"{float(loss):.5f}",
        )

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get("val_psnr")
        if value is not None:
            self.val_psnr = f"{float(value):.2f} dB"
        self.progress.update(self.task, val_psnr=self.val_psnr)
