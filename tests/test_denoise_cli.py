"""`facedenoise denoise`: paths like cp, refusals, per-file failures and exit codes."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from facedenoise import runs
from facedenoise.cli import app
from facedenoise.imageio import read_image, write_image

runner = CliRunner()


def _faces(folder, sample_faces, names):
    folder.mkdir(parents=True, exist_ok=True)
    for name, face in zip(names, sample_faces, strict=False):
        write_image(folder / name, read_image(face).pixels)


def _denoise(*arguments):
    return runner.invoke(app, ["denoise", *map(str, arguments)])


def test_noisy_png_to_clean_png(tmp_path, sample_faces, tiny_run):
    result = _denoise(sample_faces[0], tmp_path / "clean.png", "--model", tiny_run)
    assert result.exit_code == 0, result.output
    assert "Denoised 1 image" in result.output
    clean = read_image(tmp_path / "clean.png")
    assert clean.pixels.shape == read_image(sample_faces[0]).pixels.shape

    again = _denoise(sample_faces[0], tmp_path / "clean.png", "--model", tiny_run)
    assert again.exit_code == 1
    assert "already exists" in again.output and "--force" in again.output
    assert "Traceback" not in again.output


def test_one_path_writes_beside_with_the_default_model(
    tmp_path, sample_faces, tiny_run, monkeypatch
):
    monkeypatch.setattr(runs, "packaged_weights", lambda: None)
    _faces(tmp_path, sample_faces, ["photo.jpg"])
    result = _denoise(tmp_path / "photo.jpg", "--runs", tiny_run.parent, "--suffix", "-clean")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "photo-clean.jpg").is_file()
    assert tiny_run.name in result.output


def test_folder_with_a_corrupt_file(tmp_path, sample_faces, tiny_run):
    _faces(tmp_path / "in", sample_faces, ["a.png", "b.png", "c.png", "d.png"])
    (tmp_path / "in" / "c.png").write_bytes(b"")
    result = _denoise(tmp_path / "in", tmp_path / "out", "--model", tiny_run)
    assert result.exit_code == 1
    assert "Denoised 3" in result.output and "Failed 1" in result.output
    assert "c.png is empty" in result.output
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["a.png", "b.png", "d.png"]


def test_an_image_too_small_to_estimate_is_named_in_its_failure(tmp_path, sample_faces):
    _faces(tmp_path / "in", sample_faces, ["a.png"])
    write_image(tmp_path / "in" / "tiny.png", read_image(sample_faces[0]).pixels[:5, :5])
    result = _denoise(tmp_path / "in", tmp_path / "out", "--model", "starter")
    assert result.exit_code == 1
    output = " ".join(result.output.split())
    assert f"{tmp_path / 'in' / 'tiny.png'}: Noise estimation needs an image of at least" in (
        output)
    assert "Give the noise level instead" in output
    result = _denoise(tmp_path / "in", tmp_path / "given", "--model", "starter",
                      "--noise-level", "0.05")
    assert result.exit_code == 0, result.output  # with a level, any size works


def test_glob_and_recursive_inputs_keep_sub_folders(tmp_path, sample_faces, tiny_run, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _faces(tmp_path / "in", sample_faces, ["a.png"])
    _faces(tmp_path / "in" / "sub", sample_faces[1:], ["b.png", "c.jpg"])
    result = _denoise(
        "in", "out", "--recursive", "--model", tiny_run, "--tile", "64", "--tile-overlap", "16"
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "a.png").is_file()
    assert (tmp_path / "out" / "sub" / "b.png").is_file()

    result = _denoise("in/sub/*.jpg", "only-jpegs", "--model", tiny_run)
    assert result.exit_code == 0, result.output
    assert [path.name for path in (tmp_path / "only-jpegs").iterdir()] == ["c.jpg"]

    rerun = _denoise("in", "out", "--recursive", "--model", tiny_run)
    assert rerun.exit_code == 0 and "Skipped 3" in rerun.output


def test_alpha_survives_the_command(tmp_path, sample_faces, tiny_run):
    pixels = read_image(sample_faces[0]).pixels
    alpha = np.tile(np.arange(128, dtype=np.uint8) * 2, (128, 1))
    write_image(tmp_path / "logo.png", pixels, alpha=alpha)
    result = _denoise(tmp_path / "logo.png", tmp_path / "out.tif", "--model", tiny_run)
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(read_image(tmp_path / "out.tif").alpha, alpha)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["{face}", "{face}"], "never overwritten"),
        (["{tmp}/missing.png"], "does not exist"),
        (["{face}", "{tmp}/out", "--tile", "64", "--tile-overlap", "64"], "tile-overlap"),
        (["{face}", "{tmp}/out.png", "--model", "{tmp}/nothing.keras"], "does not exist"),
        # cp would refuse too: a folder named like an image is rarely what was meant
        (["{face}", "{face}", "{tmp}/result.png"], "looks like an image file"),
        # and one it can only read: not a folder named result.gif either
        (["{face}", "{face}", "{tmp}/result.gif"], "looks like an image file"),
        # an image format it reads but cannot write: say so, not "cannot tell the format"
        (["{face}", "{tmp}/result.gif"], "Cannot write '.gif' images"),
        (["{face}", "{tmp}/out"], "Cannot tell the format"),
    ],
)
def test_user_mistakes_are_one_red_line(tmp_path, sample_faces, arguments, message):
    values = {"face": tmp_path / "face.png", "tmp": tmp_path}
    _faces(tmp_path, sample_faces, ["face.png"])
    result = _denoise(*[argument.format(**values) for argument in arguments])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert not any((tmp_path / name).exists() for name in ("result.png", "result.gif", "out"))


def test_no_model_anywhere_says_how_to_get_one(tmp_path, sample_faces, monkeypatch):
    monkeypatch.setattr(runs, "packaged_weights", lambda: None)
    result = _denoise(sample_faces[0], tmp_path / "out.png", "--runs", tmp_path / "runs")
    assert result.exit_code == 1
    assert "facedenoise train" in result.output


def test_help_explains_paths_and_force():
    result = runner.invoke(app, ["denoise", "--help"])
    assert result.exit_code == 0
    for text in ("INPUT", "OUTPUT", "--force", "--tile-overlap", "--recursive", "skipped"):
        assert text in result.output


def _level_model(path):
    """A two-input stand-in whose output is `noisy + level` (see test_inference)."""
    import keras
    from keras import layers

    noisy = keras.Input(shape=(None, None, 3), name="noisy")
    level = keras.Input(shape=(1,), name="noise_level")
    shift = layers.Dense(3, kernel_initializer="ones", bias_initializer="zeros")(level)
    output = layers.Add()([noisy, layers.Reshape((1, 1, 3))(shift)])
    keras.Model([noisy, level], output).save(path)
    return path


def test_noise_level_option_and_verbose(tmp_path, sample_faces, monkeypatch):
    from facedenoise.inference import levels

    model = _level_model(tmp_path / "level.keras")
    _faces(tmp_path / "in", sample_faces, ["a.png", "b.png"])
    result = _denoise(tmp_path / "in", tmp_path / "out", "--model", model,
                      "--noise-level", "0.05", "--verbose", "--no-chroma-filter")
    assert result.exit_code == 0, result.output
    assert result.output.count("noise level 0.050 (given)") == 2
    assert "Noise level (given): min 0.050, median 0.050, max 0.050" in result.output
    face = read_image(tmp_path / "in" / "a.png").pixels
    out = read_image(tmp_path / "out" / "a.png").pixels  # 0.05: never topped up (see levels)
    assert np.abs(out - np.minimum(face + 0.05, 1)).max() <= 0.5 / 255 + 1e-6  # 8-bit rounding

    monkeypatch.setattr(levels, "_estimator", lambda: lambda pixels: 0.05)
    monkeypatch.setattr(levels, "_half_scale", lambda pixels, fine: fine)  # as white noise
    result = _denoise(tmp_path / "in", tmp_path / "auto", "--model", model)
    assert result.exit_code == 0, result.output
    assert "Noise level (estimated): min 0.050, median 0.050, max 0.050" in result.output


def test_verbose_says_when_noise_was_added_before_a_told_level(tmp_path, sample_faces,
                                                             monkeypatch):
    # Clean images told 0.3 get noise of 0.3 / 1.25 first (inference/levels.py), on the batch
    # path (a face) and the tiled one (a 300x260 image with 128-px tiles) alike; told 0.05
    # nothing is added and nothing said.
    from facedenoise.inference import levels

    monkeypatch.setattr(levels, "_estimator", lambda: lambda pixels: 0.0)
    model = _level_model(tmp_path / "level.keras")
    _faces(tmp_path / "in", sample_faces, ["a.png"])
    write_image(tmp_path / "in" / "large.png", np.full((300, 260, 3), 0.5, np.float32))
    result = _denoise(tmp_path / "in", tmp_path / "out", "--model", model, "--tile", "128",
                      "--noise-level", "0.3", "--verbose", "--no-chroma-filter")
    assert result.exit_code == 0, result.output
    assert result.output.count("noise level 0.300 (given); the image read as 0.000, so noise "
                               "of 0.240 was added first (to 0.240, the level / 1.25)") == 2
    result = _denoise(tmp_path / "in", tmp_path / "weak", "--model", model, "--tile", "128",
                      "--noise-level", "0.05", "--verbose", "--no-chroma-filter")
    assert result.exit_code == 0, result.output
    assert result.output.count("noise level 0.050 (given)") == 2
    assert "added first" not in result.output
    # --no-top-up: the image as it is reaches the model (which adds the level)
    result = _denoise(tmp_path / "in", tmp_path / "as_told", "--model", model, "--tile", "128",
                      "--noise-level", "0.3", "--verbose", "--no-chroma-filter", "--no-top-up")
    assert result.exit_code == 0, result.output
    assert "added first" not in result.output
    face = read_image(tmp_path / "in" / "a.png").pixels
    out = read_image(tmp_path / "as_told" / "a.png").pixels
    assert np.abs(out - np.minimum(face + 0.3, 1)).max() <= 0.5 / 255 + 1e-6  # 8-bit rounding


def test_a_level_above_the_training_range_runs_at_its_top_and_says_so(tmp_path, sample_faces):
    # The starter was trained on 0 to 0.5; told 1 it returned clean faces at 12-15 dB.
    _faces(tmp_path / "in", sample_faces, ["a.png"])
    result = _denoise(tmp_path / "in", tmp_path / "high", "--model", "starter",
                      "--noise-level", "0.9", "--verbose")
    assert result.exit_code == 0, result.output
    assert "noise level 0.500 (given 0.9: the top of the model's training range)" in (
        " ".join(result.output.split()))
    assert "--noise-level 0.9 is above the levels this model was trained on (up to 0.5)" in (
        " ".join(result.output.split()))
    assert "Noise level (given): min 0.500, median 0.500, max 0.500" in result.output
    result = _denoise(tmp_path / "in", tmp_path / "top", "--model", "starter",
                      "--noise-level", "0.5")
    assert "above the levels" not in result.output
    high = read_image(tmp_path / "high" / "a.png").pixels
    np.testing.assert_array_equal(high, read_image(tmp_path / "top" / "a.png").pixels)


@pytest.mark.parametrize("value", ["2", "-0.1", "nan", "loud"])
def test_bad_noise_levels_are_refused_before_loading(tmp_path, sample_faces, value):
    _faces(tmp_path, sample_faces, ["face.png"])
    result = _denoise(tmp_path / "face.png", "--noise-level", value, "--model", "nowhere.keras")
    assert result.exit_code == 1
    assert "noise level must be 'auto' or a number from 0 to 1" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_a_level_for_a_model_without_noise_input(tmp_path, sample_faces, tiny_run):
    result = _denoise(sample_faces[0], tmp_path / "out.png", "--model", tiny_run,
                      "--noise-level", "0.1")
    assert result.exit_code == 1 and "no noise-level input" in result.output
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize(
    "arguments",
    [["--tile", "abc", "x.png"], ["--bogus", "x.png"], ["x.png", "--tile", "8"]],
)
def test_usage_errors_are_one_red_line_with_status_2(arguments):
    result = runner.invoke(app, ["denoise", *arguments])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "facedenoise denoise --help" in lines[0] and "╭" not in result.output


def test_suffix_with_a_separator_is_refused(tmp_path, sample_faces):
    _faces(tmp_path, sample_faces, ["face.png"])
    result = _denoise(tmp_path / "face.png", "--suffix", "/x")
    assert result.exit_code == 1 and "--suffix" in result.output
    assert "Traceback" not in result.output
    assert sorted(path.name for path in tmp_path.iterdir()) == ["face.png"]


def test_help_shows_units_and_model_names_and_no_bool():
    result = runner.invoke(app, ["denoise", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "<bool>" not in result.output
    for text in ("PIXELS", "'starter'", "'latest'", "--noise-level", "--max-pixels", ".onnx"):
        assert text in result.output


def test_images_over_max_pixels_are_refused_per_file(tmp_path, sample_faces, tiny_run):
    # Issue 13.2: the limit is checked from the header, before decoding; the rest go on.
    _faces(tmp_path / "in", sample_faces, ["a.png"])
    write_image(tmp_path / "in" / "big.png", np.zeros((120, 300, 3), np.float32))
    result = _denoise(tmp_path / "in", tmp_path / "out", "--model", tiny_run,
                      "--max-pixels", "20000")
    assert result.exit_code == 1, result.output
    assert "Denoised 1" in result.output and "Failed 1" in result.output
    assert "300x120" in result.output and "--max-pixels" in result.output
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["a.png"]


def test_float_images_outside_zero_to_one_fail_with_the_reason(tmp_path, sample_faces):
    # Tools that write float TIFFs often keep 0-255 values; small ones were clipped to an
    # almost white output without a word (large, tiled ones were already refused).
    from PIL import Image

    face = read_image(sample_faces[0]).pixels.mean(axis=2) * 255
    for name, pixels in (("small.tif", face), ("large.tif", np.tile(face, (5, 5)))):
        Image.fromarray(pixels.astype(np.float32), "F").save(tmp_path / name)
        result = runner.invoke(app, ["denoise", str(tmp_path / name),
                                     str(tmp_path / f"{name}.png"), "--model", "starter"])
        assert result.exit_code == 1, result.output
        assert f"{name} holds floats in [" in result.output
        assert not (tmp_path / f"{name}.png").exists()


def test_inputs_with_several_frames_say_only_the_first_was_denoised(tmp_path, sample_faces,
                                                                    tiny_run):
    # An animated GIF, WebP or PNG or a multi-page TIFF decodes to its first frame; the output
    # holds one image, and the other frames were dropped without a word.
    from PIL import Image

    face = np.rint(read_image(sample_faces[0]).pixels * 255).astype(np.uint8)
    frames = [Image.fromarray(face), Image.fromarray(255 - face)]
    for name in ("anim.gif", "anim.png", "pages.tif", "anim.webp"):
        frames[0].save(tmp_path / name, save_all=True, append_images=frames[1:])
    Image.fromarray(face).save(tmp_path / "still.png")
    # a camera JPEG with a preview (MPF) opens in Pillow as a two-frame MPO: one photo still
    frames[0].save(tmp_path / "camera.jpg", format="MPO", save_all=True,
                   append_images=frames[1:])
    line = "Denoised only the first frame or page of inputs that hold several"
    for source, several in (("anim.gif", True), ("anim.png", True), ("pages.tif", True),
                            ("anim.webp", True), ("still.png", False), ("camera.jpg", False)):
        target = tmp_path / f"{source}.out.png"
        result = _denoise(tmp_path / source, target, "--model", tiny_run)
        assert result.exit_code == 0, result.output
        assert (line in result.output) == several, (source, result.output)
        assert not several or target.name in result.output.split(line)[1]
        assert read_image(target).pixels.shape == face.shape
    # named alone, a GIF is written beside it as PNG (GIF is read, not written)
    result = _denoise(tmp_path / "anim.gif", "--model", tiny_run)
    assert result.exit_code == 0, result.output
    assert read_image(tmp_path / "anim.denoised.gif.png").pixels.shape == face.shape
