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
    ],
)
def test_user_mistakes_are_one_red_line(tmp_path, sample_faces, arguments, message):
    values = {"face": tmp_path / "face.png", "tmp": tmp_path}
    _faces(tmp_path, sample_faces, ["face.png"])
    result = _denoise(*[argument.format(**values) for argument in arguments])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output


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
