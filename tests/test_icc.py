"""Colour profiles: an input's ICC profile reaches its output (PNG and JPEG)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms
from typer.testing import CliRunner

from facedenoise.cli import app
from facedenoise.icc import embed_icc_profile
from facedenoise.imageio import decode_image, encode_image, icc_profile_of, read_image

runner = CliRunner()


@pytest.fixture(scope="module")
def profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def read_icc_profile(path) -> bytes | None:
    return icc_profile_of(path.read_bytes())


def _fake_profile(space: bytes, size: int, seed: int) -> bytes:
    """Random bytes with an ICC header's colour space field (bytes 16-20) set."""
    data = bytearray(np.random.default_rng(seed).integers(0, 256, size, np.uint8).tobytes())
    data[16:20] = space
    return bytes(data)


def _with_profile(path, pixels, profile):
    Image.fromarray(np.rint(pixels * 255).astype(np.uint8)).save(path, icc_profile=profile)


@pytest.mark.parametrize("extension", [".png", ".jpg"])
@pytest.mark.parametrize("size", [600 * 1024 + 7, 3000])  # several JPEG segments; one
def test_an_embedded_profile_reads_back_and_leaves_the_pixels(sample_faces, extension, size):
    pixels = read_image(sample_faces[0]).pixels
    encoded = encode_image(pixels, extension, dtype="uint8")
    fake = _fake_profile(b"RGB ", size, seed=size)
    with_profile = embed_icc_profile(encoded, extension, fake)
    assert Image.open(io.BytesIO(with_profile)).info["icc_profile"] == fake
    np.testing.assert_array_equal(decode_image(with_profile).pixels, decode_image(encoded).pixels)


@pytest.mark.parametrize("extension", [".png", ".jpg"])
def test_only_a_profile_of_the_outputs_colour_space_is_written(sample_faces, extension):
    # A CMYK JPEG comes back as RGB; grey with alpha is written as RGBA: their profiles would
    # mislabel the output (libpng rejects a GRAY profile in an RGB PNG).
    colour = encode_image(read_image(sample_faces[0]).pixels, extension, dtype="uint8")
    grey = encode_image(read_image(sample_faces[0]).pixels, extension, dtype="uint8", grey=True)
    for encoded, space, kept in [(colour, b"RGB ", True), (colour, b"GRAY", False),
                                 (colour, b"CMYK", False), (grey, b"GRAY", True),
                                 (grey, b"RGB ", False)]:
        fake = _fake_profile(space, 3000, seed=1)
        with_profile = embed_icc_profile(encoded, extension, fake)
        assert (with_profile != encoded) == kept, space
        if kept:
            assert Image.open(io.BytesIO(with_profile)).info["icc_profile"] == fake


def test_formats_without_profiles_and_no_profile_are_left_alone(sample_faces, profile):
    encoded = encode_image(read_image(sample_faces[0]).pixels, ".webp", dtype="uint8")
    assert embed_icc_profile(encoded, ".webp", profile) == encoded
    assert embed_icc_profile(encoded, ".png", None) == encoded


def test_denoise_keeps_the_inputs_profile(tmp_path, sample_faces, profile):
    # Small files (batched) and a large one (tiled, written from the stored array).
    face = read_image(sample_faces[0]).pixels
    big = np.tile(face, (5, 5, 1))  # 640x640: above the 512-pixel tile
    (tmp_path / "in").mkdir()
    _with_profile(tmp_path / "in" / "face.png", face, profile)
    _with_profile(tmp_path / "in" / "face.jpg", face, profile)
    _with_profile(tmp_path / "in" / "big.png", big, profile)
    Image.fromarray(np.rint(face * 255).astype(np.uint8)).save(tmp_path / "in" / "plain.png")
    result = runner.invoke(app, ["denoise", str(tmp_path / "in"), str(tmp_path / "out"),
                                 "--model", "starter"])
    assert result.exit_code == 0, result.output
    for name in ("face.png", "face.jpg", "big.png"):
        assert read_icc_profile(tmp_path / "out" / name) == profile, name
    assert read_icc_profile(tmp_path / "out" / "plain.png") is None
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "face.png").pixels,
                                  read_image(tmp_path / "out" / "plain.png").pixels)
