"""Keras callbacks that make a run folder resumable, time-bounded and observable.

Nothing here prints: progress leaves through `ProgressForwarder`'s plain callbacks, and the
command line draws it.
"""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

import keras
import numpy as np

from facedenoise.errors import FaceDenoiseError, check_choice
from facedenoise.fileio import atomic_path, atomic_write_text

STATE = "state.json"
HISTORY = "history.csv"
CURVES = "training_curves.png"
CLOCKS = {"wall": time.monotonic, "cpu": time.process_time}


def load_state(run_dir: Path) -> dict:
    """The progress a run saved after its last finished epoch ({} for a new run)."""
    path = Path(run_dir) / STATE
    if not path.is_file():
        return {}
    try:
        state = json.loads(path.read_text())
        if not isinstance(state, dict) or int(state.get("epoch", 0)) < 0:
            raise ValueError("not a progress record")
        return state
    except (OSError, ValueError, TypeError) as error:
        raise FaceDenoiseError(
            f"{path} is damaged ({error}); restore it or start a new run with --init "
            f"{Path(run_dir) / 'last.keras'}."
        ) from None


def read_history(path: Path) -> list[dict]:
    """The rows of a history.csv ([] when there is none); FaceDenoiseError when damaged."""
    if not Path(path).is_file():
        return []
    try:
        with Path(path).open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        for row in rows:
            row["epoch"] = int(row["epoch"])
        return rows
    except (OSError, ValueError, KeyError, TypeError, csv.Error) as error:
        raise FaceDenoiseError(
            f"{path} is damaged ({error}); delete it to start the history afresh."
        ) from None


# What picks the best epoch (RunCheckpoint `monitor`): the validation loss on the prepared
# noisy files, or for models trained on a range of levels the mean validation PSNR over
# those files and every LevelValidation level (logged as `val_psnr_mean`), so that no level
# can decay unseen while the protocol's level improves.
MONITORS = ("val_loss", "val_psnr_mean")


class RunCheckpoint(keras.callbacks.Callback):
    """After every epoch: save last.keras (with optimizer state), best.keras on a new best
    `monitor` (MONITORS), history.csv, training_curves.png and state.json; stop early after
    `patience` epochs without improvement, or when `time_limit_seconds` is spent.

    One callback instead of ModelCheckpoint + EarlyStopping + CSVLogger because those reset
    their best value and counters at every `fit`, which would break `--resume`.
    clock: "wall" or "cpu" (this process's CPU seconds), what the time limit counts.
    monitor: the monitor of a new run; a resumed run keeps the one in its state (runs saved
    before monitors existed: the validation loss).
    """

    def __init__(self, run_dir: Path, patience: int, time_limit_seconds: float | None,
                 state: dict, clock: str = "wall", monitor: str = "val_loss"):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.patience = patience
        self.time_limit_seconds = time_limit_seconds
        self.monitor = state.get("monitor", "val_loss" if state.get("epoch") else monitor)
        check_choice("monitor", self.monitor, MONITORS)
        # Stored as a loss (lower is better): minus the PSNR for val_psnr_mean.
        self.best = state.get("best_score", state.get("best_val_loss", math.inf))
        self.best_epoch = state.get("best_epoch", 0)
        self.wait = state.get("wait", 0)
        self.epochs_done = state.get("epoch", 0)
        self.elapsed_before = state.get("elapsed_seconds", 0.0)
        self.stop_reason = None
        self.clock = CLOCKS[clock]
        self.started = self.clock()

    def elapsed(self) -> float:
        return self.elapsed_before + self.clock() - self.started

    def on_train_batch_end(self, batch, logs=None):
        if self.time_limit_seconds is not None and self.elapsed() >= self.time_limit_seconds:
            self.stop_reason = "time limit"
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        if "val_loss" not in logs:
            raise FaceDenoiseError("Training produced no validation loss; is the val split empty?")
        score = -logs["val_psnr_mean"] if self.monitor == "val_psnr_mean" else logs["val_loss"]
        if score < self.best:
            self.best, self.best_epoch, self.wait = float(score), epoch + 1, 0
            _save_model(self.model, self.run_dir / "best.keras")
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.stop_reason = f"no validation gain for {self.patience} epochs"
                self.model.stop_training = True
        self.epochs_done = epoch + 1
        _save_model(self.model, self.run_dir / "last.keras")
        history = _append_history(self.run_dir / HISTORY, epoch + 1, logs, self.elapsed())
        plot_curves(history, self.run_dir / CURVES, self.best_epoch)
        self._save_state()

    def save_interrupted(self) -> None:
        """Save the weights and optimizer mid-epoch (Ctrl-C): `--resume` restarts that epoch
        from them, so even a run stopped in its first epoch loses nothing."""
        _save_model(self.model, self.run_dir / "last.keras")
        self._save_state()

    def _save_state(self) -> None:
        state = {
            "epoch": self.epochs_done,
            "monitor": self.monitor,
            "best_score": self.best,
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
    rows = [row for row in read_history(path) if row["epoch"] < epoch]
    row = {"epoch": epoch, "elapsed_seconds": round(elapsed, 1)}
    row.update({key: float(value) for key, value in sorted(logs.items())})
    rows.append(row)
    fields = list(dict.fromkeys(key for each in rows for key in each))
    with atomic_path(path) as temp_path, temp_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return rows


def _series(history: list[dict], key: str) -> tuple[list[int], list[float]]:
    pairs = [(int(row["epoch"]), float(row[key])) for row in history
             if row.get(key) not in (None, "")]
    return [epoch for epoch, _ in pairs], [value for _, value in pairs]


def plot_curves(history: list[dict], path: Path, best_epoch: int = 0) -> None:
    """Loss (train and validation, log scale when positive) and validation PSNR per epoch,
    side by side, with the best epoch marked; PSNR at extra noise levels when the history has
    them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import LogFormatterSciNotation, MaxNLocator

    figure, (loss_axis, psnr_axis) = plt.subplots(1, 2, figsize=(11, 4))
    losses = []
    for key, label in (("loss", "train"), ("val_loss", "validation")):
        epochs, values = _series(history, key)
        if values:
            loss_axis.plot(epochs, values, marker="o", markersize=3, label=label)
            losses += values
    loss_axis.set(xlabel="epoch", ylabel="loss", title="Loss")
    if losses and min(losses) > 0:  # not --loss psnr, which is minus a PSNR in dB
        loss_axis.set_yscale("log")
        loss_axis.yaxis.set_major_formatter(LogFormatterSciNotation(labelOnlyBase=False))
    psnr_keys = [("psnr", "train (fresh noise)"), ("val_psnr", "validation")]
    psnr_keys += [(key, f"validation, level {key.removeprefix('val_psnr_at_')}")
                  for key in (history[-1] if history else {}) if key.startswith("val_psnr_at_")]
    for key, label in psnr_keys:
        epochs, values = _series(history, key)
        if values:
            psnr_axis.plot(epochs, values, marker="o", markersize=3, label=label)
    psnr_axis.set(xlabel="epoch", ylabel="PSNR (dB)", title="PSNR")
    for axis in (loss_axis, psnr_axis):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        if best_epoch:
            axis.axvline(best_epoch, color="grey", linestyle="--", linewidth=1,
                         label=f"best epoch ({best_epoch})")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as temp_path:
        figure.savefig(temp_path, dpi=100)
    plt.close(figure)


class LevelValidation(keras.callbacks.Callback):
    """Validation PSNR at other noise levels than the prepared files', for models trained on
    a range: adds `val_psnr_at_<level>` to each epoch's logs (before RunCheckpoint writes
    them). The noise is drawn once, seeded, so every epoch sees the same noisy images.

    Also adds `val_psnr_mean`, the mean over these levels and the files' `val_psnr`.
    images: clean float32 HxWx3 [0, 1] validation images (all the same size).
    chroma_filter: score the output after the chroma stage (TrainConfig.loss_after_chroma).
    """

    def __init__(self, images: list[np.ndarray], levels: tuple[float, ...], seed: int,
                 chroma_filter: bool = False):
        super().__init__()
        self.chroma_filter = chroma_filter
        from facedenoise.noise import add_gaussian_noise

        self.clean = np.stack(images).astype(np.float32)
        rng = np.random.default_rng(seed)
        self.noisy = {level: add_gaussian_noise(self.clean, level, rng) for level in levels}

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        for level, noisy in self.noisy.items():
            levels = np.full((len(noisy), 1), level, np.float32)
            restored = self.model.predict([noisy, levels], batch_size=16, verbose=0)
            if self.chroma_filter:
                # Here, not at the top: only runs with the option need OpenCV's filter.
                from facedenoise.inference.chroma import smooth_chroma_batch

                restored = smooth_chroma_batch(np.asarray(restored, np.float32),
                                               [level] * len(restored))
            mse = np.mean((restored - self.clean) ** 2, axis=(1, 2, 3))
            psnr = 10 * np.log10(1 / np.maximum(mse, 1e-10))
            logs[f"val_psnr_at_{level:g}"] = float(np.mean(psnr))
        psnrs = [logs[f"val_psnr_at_{level:g}"] for level in self.noisy]
        if "val_psnr" in logs:
            psnrs.append(logs["val_psnr"])
        logs["val_psnr_mean"] = float(np.mean(psnrs))


class ProgressForwarder(keras.callbacks.Callback):
    """Hand training progress to plain functions: on_batch(epoch, step, logs) after each
    batch (epoch and step count from 1) and on_epoch(epoch, logs) after each epoch."""

    def __init__(self, on_batch=None, on_epoch=None):
        super().__init__()
        self.on_batch, self.on_epoch = on_batch, on_epoch
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if self.on_batch is not None:
            self.on_batch(self.epoch, batch + 1, _floats(logs))

    def on_epoch_end(self, epoch, logs=None):
        if self.on_epoch is not None:
            self.on_epoch(epoch + 1, _floats(logs))


def _floats(logs) -> dict:
    return {key: float(value) for key, value in (logs or {}).items()}


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
