"""`facedenoise export` and the ONNX Runtime path: every format loads in its own runtime and
agrees with Keras; denoising through ONNX behaves exactly like denoising through Keras."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from typer.testing import CliRunner

from facedenoise.cli import app
from facedenoise.config import DenoiseConfig, ModelConfig
from facedenoise.errors import FaceDenoiseError
from facedenoise.imageio import read_image, write_image

runner = CliRunner()
# Exports of the same float32 graph by another runtime: only summation order differs
# (measured up to 2e-6 on these models); the export's own check allows 1e-3 on [0, 1].
AGREE = 1e-4


def _random_model(tmp_path_factory, arch: str, noise_input: bool,
                  level_modulation: bool = False):
    """A small model with seeded random weights (freshly built models can output their input
    exactly, which would make any comparison pass), saved as a .keras file."""
    from facedenoise.models import build_model

    model = build_model(ModelConfig(arch=arch, width=4, depth=2, noise_input=noise_input,
                                    level_modulation=level_modulation))
    rng = np.random.default_rng(7)
    model.set_weights([rng.normal(0, 0.2, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    path = tmp_path_factory.mktemp(f"{arch}_{noise_input}_{level_modulation}") / "model.keras"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def plain_model(tmp_path_factory):
    return _random_model(tmp_path_factory, "unet", noise_input=False)


@pytest.fixture(scope="module")
def conditional_model(tmp_path_factory):
    return _random_model(tmp_path_factory, "resunet", noise_input=True)


@pytest.fixture(scope="module")
def film_model(tmp_path_factory):
    """The level in every block (FiLM), as the next packaged weights."""
    return _random_model(tmp_path_factory, "resunet", noise_input=True, level_modulation=True)


@pytest.fixture(scope="module")
def conditional_onnx(conditional_model, tmp_path_factory):
    from facedenoise.export import export_model

    out = tmp_path_factory.mktemp("onnx") / "conditional.onnx"
    export_model(conditional_model, format="onnx", out=out)
    return out


def _keras(path, batch, levels):
    from facedenoise.runs import load_model

    model = load_model(path)
    return np.asarray(model(batch if levels is None else [batch, levels]))


def _run_artefact(format, path, batch, levels):
    """Run an exported file in its own runtime, independently of facedenoise.export."""
    import tensorflow as tf

    arrays = [batch] if levels is None else [batch, levels]
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        names = [node.name for node in session.get_inputs()]
        assert names == ["noisy", "noise_level"][: len(arrays)]
        return session.run(None, dict(zip(names, arrays, strict=True)))[0]
    if format == "savedmodel":
        loaded = tf.saved_model.load(str(path))  # keep it alive while serve() runs
        return loaded.serve(arrays[0] if levels is None else arrays).numpy()
    interpreter = tf.lite.Interpreter(model_path=str(path))
    inputs = sorted(interpreter.get_input_details(), key=lambda detail: -len(detail["shape"]))
    for detail, array in zip(inputs, arrays, strict=True):
        interpreter.resize_tensor_input(detail["index"], array.shape)
    interpreter.allocate_tensors()
    for detail, array in zip(inputs, arrays, strict=True):
        interpreter.set_tensor(detail["index"], array)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.mark.parametrize(
    "format",
    ["onnx", pytest.param("savedmodel", marks=pytest.mark.slow),
     pytest.param("tflite", marks=pytest.mark.slow)],
)
@pytest.mark.parametrize("which", ["plain_model", "conditional_model", "film_model"])
def test_every_format_loads_in_its_runtime_and_agrees(format, which, request, tmp_path):
    from facedenoise.export import export_model

    source = request.getfixturevalue(which)
    out = tmp_path / f"model.{format}"
    result = export_model(source, format=format, out=out)
    assert out.exists() and result.max_difference <= 1e-3
    assert result.noise_input == (which != "plain_model")
    # Our own check at another odd size and batch, with two different levels.
    rng = np.random.default_rng(3)
    batch = rng.random((2, 67, 93, 3), dtype=np.float32)
    levels = None if which == "plain_model" else np.array([[0.05], [0.4]], np.float32)
    expected = _keras(source, batch, levels)
    actual = np.asarray(_run_artefact(format, out, batch, levels))
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() < AGREE
    if levels is not None:  # the level really reaches the exported graph
        other = np.asarray(_run_artefact(format, out, batch, levels[::-1].copy()))
        assert np.abs(other - actual).max() > 1e-3


def test_a_failed_check_writes_nothing(plain_model, tmp_path, monkeypatch):
    from facedenoise import export

    def fail(*arguments):
        raise FaceDenoiseError("differs by up to 0.5")

    monkeypatch.setattr(export, "_verify", fail)
    with pytest.raises(FaceDenoiseError, match="differs"):
        export.export_model(plain_model, format="onnx", out=tmp_path / "m.onnx")
    assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary


def _export(*arguments):
    return runner.invoke(app, ["export", *map(str, arguments)])


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--format", "keras", "--out", "{tmp}/m.onnx"], "choose one of: onnx, savedmodel, tflite"),
        (["--out", "{tmp}/m.onnx", "--opset", "7"], "--opset must be from 13 to 18"),
        (["--out", "{tmp}/existing.onnx"], "--force"),
        (["--out", "{tmp}/nowhere/m.onnx"], "does not exist"),
        (["--out", "{tmp}/folder", "--format", "savedmodel", "--force"], "not a SavedModel"),
        (["--out", "{tmp}/m.onnx", "--model", "{tmp}/existing.onnx"], "already onnx"),
        (["--out", "{tmp}/m.onnx", "--model", "{tmp}/missing.keras"], "does not exist"),
        # an ONNX file named .tflite would be run as neither by denoise --model
        (["--out", "{tmp}/m.tflite"], "should end in .onnx for --format onnx"),
        (["--out", "{tmp}/m.onnx", "--format", "tflite"], "should end in .tflite"),
        (["--out", "{tmp}/m.onnx", "--format", "savedmodel"], "a SavedModel is a folder"),
    ],
)
def test_export_mistakes_are_one_red_line(tmp_path, arguments, message, plain_model):
    (tmp_path / "existing.onnx").write_bytes(b"x")
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "keep.txt").write_text("mine")
    arguments = [argument.format(tmp=tmp_path) for argument in arguments]
    if "--model" not in arguments:
        arguments += ["--model", str(plain_model)]
    result = _export(*arguments)
    assert result.exit_code == 1, result.output
    assert message in result.output and "Traceback" not in result.output
    assert (tmp_path / "existing.onnx").read_bytes() == b"x"
    assert (tmp_path / "folder" / "keep.txt").read_text() == "mine"


def test_export_command_writes_and_overwrites_with_force(plain_model, tmp_path):
    out = tmp_path / "m.onnx"
    result = _export("--model", plain_model, "--out", out)
    assert result.exit_code == 0, result.output
    assert "max difference" in result.output and out.stat().st_size > 1000
    assert _export("--model", plain_model, "--out", out).exit_code == 1
    assert _export("--model", plain_model, "--out", out, "--force").exit_code == 0


# --- The ONNX Runtime path --------------------------------------------------------------------


@pytest.fixture(scope="module")
def mosaic(sample_faces) -> np.ndarray:
    """Four real faces in a 2x2 mosaic, cropped to an odd 203x250: float32 RGB in [0, 1]."""
    faces = [read_image(path).pixels for path in sample_faces[:4]]
    rows = [np.concatenate(faces[:2], axis=1), np.concatenate(faces[2:4], axis=1)]
    return np.ascontiguousarray(np.concatenate(rows, axis=0)[:203, :250])


@pytest.mark.parametrize("noise_level", [0.2, "auto"])
def test_onnx_and_keras_denoisers_agree_on_every_layout(
    conditional_model, conditional_onnx, mosaic, noise_level
):
    from facedenoise.inference import Denoiser

    config = DenoiseConfig(tile=96, tile_overlap=32, batch_size=3)
    keras_denoiser = Denoiser.load(conditional_model, config=config)
    onnx_denoiser = Denoiser.load(conditional_onnx, config=config)
    assert onnx_denoiser.runtime.name == "onnxruntime" and onnx_denoiser.takes_noise_level
    assert onnx_denoiser.multiple == keras_denoiser.multiple
    rgb8 = np.rint(mosaic * 255).astype(np.uint8)
    alpha = np.random.default_rng(1).integers(0, 256, mosaic.shape[:2], dtype=np.uint8)
    arrays = [
        rgb8,  # tiled (203x250 > 96)
        np.rint(mosaic * 65535).astype(np.uint16)[:60, :70],  # whole, 16-bit
        rgb8[:, :, 1],  # grey
        np.dstack([rgb8, alpha]),  # alpha
        mosaic[:5, :7],  # tiny float (too small to estimate a level from: given one)
    ]
    for array in arrays:
        level = 0.2 if array.shape[0] < 20 else noise_level
        expected = keras_denoiser.denoise(array, level)
        actual = onnx_denoiser.denoise(array, level)
        assert actual.shape == expected.shape and actual.dtype == expected.dtype
        scale = 65535 if array.dtype == np.uint16 else 255 if array.dtype == np.uint8 else 1
        # Within 1/255 (the bound); float32 sums differ by ~1e-6, one 8-bit step at most.
        difference = np.abs(actual.astype(np.float64) - expected) / scale
        assert difference.max() <= 1 / 255, array.shape


def test_onnx_files_through_the_command(conditional_onnx, sample_faces, tmp_path):
    for name, face in zip(["a.png", "b.jpg"], sample_faces, strict=False):
        write_image(tmp_path / "in" / name, read_image(face).pixels)
    result = runner.invoke(app, ["denoise", str(tmp_path / "in"), str(tmp_path / "out"),
                                 "--model", str(conditional_onnx), "--noise-level", "0.1",
                                 "--verbose"])
    assert result.exit_code == 0, result.output
    assert "onnxruntime" in result.output and result.output.count("noise level 0.100") == 2
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["a.png", "b.jpg"]


def test_a_foreign_onnx_file_is_refused(tmp_path, plain_model):
    from facedenoise.inference import Denoiser

    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf at all")
    with pytest.raises(FaceDenoiseError, match="not a usable ONNX model"):
        Denoiser.load(tmp_path / "junk.onnx")


def _run_cli_reporting_tensorflow(arguments, cwd):
    """Run the real console entry point in a fresh interpreter; print whether TensorFlow
    (or onnxruntime) was imported by the time it exits."""
    code = textwrap.dedent(f"""
        import atexit, sys
        atexit.register(lambda: print("IMPORTED", "tensorflow" in sys.modules,
                                      "onnxruntime" in sys.modules))
        sys.argv = ["facedenoise", *{arguments!r}]
        from facedenoise.cli import main
        main()
    """)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_denoise_with_the_packaged_starter_never_imports_tensorflow(sample_faces, tmp_path):
    from facedenoise.runs import packaged_onnx

    assert packaged_onnx() is not None, "the package ships starter.onnx"
    write_image(tmp_path / "face.png", read_image(sample_faces[0]).pixels)
    result = _run_cli_reporting_tensorflow(["denoise", "face.png", "out.png"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "IMPORTED False True" in result.stdout  # onnxruntime ran the model, TF never loaded
    assert (tmp_path / "out.png").is_file()


@pytest.mark.parametrize(
    "arguments",
    [["denoise", "missing.png", "out.png"], ["denoise", "x.png", "--noise-level", "9"],
     ["export", "--format", "keras", "--out", "m.onnx"], ["denoise", "--tile", "many", "x"]],
)
def test_mistakes_are_answered_before_anything_heavy_loads(arguments, tmp_path):
    result = _run_cli_reporting_tensorflow(arguments, tmp_path)
    assert result.returncode in (1, 2) and "error:" in result.stderr
    assert "IMPORTED False False" in result.stdout


def test_an_exported_onnx_file_keeps_the_training_range(conditional_model, tmp_path):
    # The clamp to the levels a model was trained on reads the run's config.json; an .onnx
    # file exported elsewhere carries the top of the range in its metadata instead.
    import shutil

    from facedenoise.config import ModelConfig, RunConfig, TrainConfig, save_run_config
    from facedenoise.export import export_model
    from facedenoise.inference import Denoiser

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(conditional_model, run / "best.keras")
    save_run_config(RunConfig(model=ModelConfig(arch="resunet", width=4, depth=2),
                              train=TrainConfig(noise_range=(0.0, 0.4))), run / "config.json")
    (tmp_path / "elsewhere").mkdir()
    out = tmp_path / "elsewhere" / "model.onnx"
    export_model(run / "best.keras", format="onnx", out=out)
    assert Denoiser.load(out).highest_level == 0.4
    assert Denoiser.load(run / "best.keras").highest_level == 0.4
    assert Denoiser.load(conditional_model).highest_level is None  # no config, no range
