"""`facedenoise export`: write a model as ONNX, TensorFlow SavedModel or TFLite, checked."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from facedenoise.cli.common import console, user_errors
from facedenoise.cli.denoise_command import ModelOption, RunsOption
from facedenoise.config import RUNS_DIR

FORMAT_HELP = (
    "onnx (runs with onnxruntime, as 'facedenoise denoise --model FILE.onnx' does), "
    "savedmodel (a TensorFlow SavedModel folder) or tflite (TFLite / LiteRT)."
)


def export(
    out: Annotated[
        Path, typer.Option(metavar="PATH", help="Where to write the model (a folder for "
                           "savedmodel).", show_default=False)
    ],
    format: Annotated[
        str, typer.Option("--format", metavar="onnx|savedmodel|tflite", help=FORMAT_HELP)
    ] = "onnx",
    model: ModelOption = None,
    opset: Annotated[
        int, typer.Option(metavar="N", help="ONNX opset (13 to 18).")
    ] = 17,
    force: Annotated[
        bool, typer.Option("--force/--no-force", metavar="", help="Overwrite --out.")
    ] = False,
    runs: RunsOption = Path(RUNS_DIR),
) -> None:
    """Export a model to ONNX, SavedModel or TFLite, then check it.

    The file is loaded back in its own runtime and compared with the Keras model on a real
    noisy face (max difference 1e-3 on [0, 1]) before it is moved into place. Height and
    width stay variable; a noise-conditional model keeps its noise_level input.
    """
    with user_errors():
        from facedenoise.export import check_export_arguments, export_model

        check_export_arguments(model, format, out, force=force, opset=opset, runs_dir=runs)
        from facedenoise.runs import quiet_tensorflow

        quiet_tensorflow()
        with console.status("Exporting") as status:
            result = export_model(
                model, format=format, out=out, force=force, opset=opset, runs_dir=runs,
                on_step=lambda text: status.update(escape(text)),
            )
    inputs = "noisy, noise_level" if result.noise_input else "noisy"
    shapes = " and ".join("x".join(map(str, shape)) for shape in result.checked_shapes)
    console.print(
        escape(f"Exported {result.source} to {result.path} ({result.format}, inputs: {inputs})"),
        style="bold green", soft_wrap=True, highlight=False,
    )
    console.print(
        escape(f"Checked with {result.runtime} against Keras on a noisy face ({shapes}): max "
               f"difference {result.max_difference:.2g} (allowed 1e-3); {result.seconds:.1f} s."),
        soft_wrap=True, highlight=False,
    )
