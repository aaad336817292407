"""Side-by-side cost and speed of the architectures on this machine.

    python benchmarks/bench_models.py [--train-batch 8] [--infer-batch 16] [--repeats 5]

Prints parameters, GMACs per 128x128 image, training and inference images/s (medians), the
share of the CPU's FP32 peak each reaches, and the input pipeline's images/s next to the
default model's training speed.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from _common import measured_matmul_peak, median_rate, theoretical_fp32_peak
from rich.console import Console
from rich.table import Table

SIZE = 128


def model_speeds(arch: str, train_batch: int, infer_batch: int, repeats: int, jit: bool):
    import keras
    import tensorflow as tf

    from facedenoise.config import model_config
    from facedenoise.models import build_model, count_macs

    model = build_model(model_config(arch))
    macs = count_macs(model, SIZE)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), loss="mse", jit_compile=jit)
    rng = np.random.default_rng(0)
    train_x = _inputs(model, rng.random((train_batch, SIZE, SIZE, 3), dtype=np.float32))
    infer_x = _inputs(model, rng.random((infer_batch, SIZE, SIZE, 3), dtype=np.float32))
    train_y = train_x[0] if isinstance(train_x, list) else train_x
    train_rate = median_rate(lambda: model.train_on_batch(train_x, train_y), train_batch,
                             repeats=repeats)
    predict = tf.function(lambda x: model(x, training=False), jit_compile=jit)
    infer_rate = median_rate(lambda: predict(infer_x).numpy(), infer_batch, repeats=repeats)
    return model.count_params(), macs, train_rate, infer_rate


def _inputs(model, images):
    from facedenoise.models import takes_noise_level

    if not takes_noise_level(model):
        return images
    return [images, np.full((len(images), 1), 0.3, np.float32)]


def packaged_onnx_speed(batch: int, repeats: int) -> float | None:
    """Inference images/s of the packaged starter through ONNX Runtime (what `denoise`
    runs), batch of `batch` 128x128 images; None when this build ships no ONNX file."""
    from facedenoise.inference.runtimes import OnnxRuntime
    from facedenoise.runs import packaged_onnx

    path = packaged_onnx()
    if path is None:
        return None
    runtime = OnnxRuntime(path)
    images = np.random.default_rng(0).random((batch, SIZE, SIZE, 3), dtype=np.float32)
    levels = np.full((batch, 1), 0.3, np.float32) if runtime.takes_noise_level else None
    return median_rate(lambda: runtime(images, levels), batch, repeats=repeats)


def pipeline_speed(batch: int) -> float:
    """Images/s of the training input pipeline alone, on the bundled sample prepared in a
    temporary folder (decode once, cache, augment, a noise level per image, fresh noise,
    loss weights, batch)."""
    from facedenoise.config import PrepareConfig, TrainConfig
    from facedenoise.data import training_dataset
    from facedenoise.prepare import prepare

    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "data"
        prepare("sample", data_dir, PrepareConfig())
        config = TrainConfig(batch_size=batch, noise_range=(0.0, 0.5))  # as the starter
        dataset, _ = training_dataset(data_dir, config, 0.3, with_level=True)
        iterator = iter(dataset)
        steps = 200
        return median_rate(lambda: [next(iterator) for _ in range(steps)], steps * batch,
                           repeats=3, warmup=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-batch", type=int, default=8)
    parser.add_argument("--infer-batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--jit", action="store_true", help="compile with XLA")
    parser.add_argument("--archs", default="original,unet,nafunet,resunet")
    args = parser.parse_args()

    console = Console(width=150)
    peak, peak_how = theoretical_fp32_peak()
    matmul = measured_matmul_peak()
    xla = "on" if args.jit else "off"
    table = Table(title=f"Architectures on this CPU ({SIZE}x{SIZE} RGB, XLA {xla})")
    columns = ("arch", "params", "GMACs/img", f"train img/s (b{args.train_batch})",
               f"infer img/s (b{args.infer_batch})", "train % peak", "infer % peak",
               "infer % matmul")
    for column in columns:
        table.add_column(column, justify="left" if column == "arch" else "right")
    results = {}
    for arch in args.archs.split(","):
        params, macs, train_rate, infer_rate = model_speeds(
            arch, args.train_batch, args.infer_batch, args.repeats, args.jit
        )
        results[arch] = (macs, train_rate, infer_rate)
        # Training costs about 3x the forward pass (forward, input and weight gradients).
        train_flops, infer_flops = 3 * 2 * macs * train_rate, 2 * macs * infer_rate
        table.add_row(arch, f"{params:,}", f"{macs / 1e9:.2f}", f"{train_rate:.2f}",
                      f"{infer_rate:.2f}", f"{100 * train_flops / peak:.1f}%",
                      f"{100 * infer_flops / peak:.1f}%", f"{100 * infer_flops / matmul:.1f}%")
    console.print(table)
    console.print(f"FP32 peak: {peak / 1e9:.0f} GFLOP/s ({peak_how}); a 2048^2 matmul reaches "
                  f"{matmul / 1e9:.0f} GFLOP/s here.")
    default = "resunet"
    if "original" in results and default in results:
        macs_o, train_o, infer_o = results["original"]
        macs_d, train_d, infer_d = results[default]
        console.print(f"{default} (default) vs original: {macs_o / macs_d:.1f}x fewer MACs, "
                      f"{train_d / train_o:.1f}x training images/s, "
                      f"{infer_d / infer_o:.1f}x inference images/s")
    onnx = packaged_onnx_speed(args.infer_batch, args.repeats)
    if onnx is not None:
        console.print(f"Packaged starter through ONNX Runtime (what denoise runs): {onnx:.1f} "
                      f"images/s at batch {args.infer_batch}.")
    if default in results:
        pipeline = pipeline_speed(16)
        console.print(f"Input pipeline: {pipeline:.0f} images/s = "
                      f"{pipeline / results[default][1]:.0f}x the default model's training "
                      "speed.")


if __name__ == "__main__":
    main()
