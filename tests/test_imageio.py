"""imageio: every format and bit depth round-trips with the right dtype, shape and alpha."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from facedenoise.errors import FaceDenoiseError
from facedenoise.imageio import (
    array_from_image,
    decode_image,
    decode_stored,
    encode_image,
    find_images,
    image_from_array,
    read_image,
    write_image,
)

LOSSLESS = (".png", ".tif", ".tiff", ".bmp")
# Largest error allowed per format on a face at quality 95, in [0, 1] units.
TOLERANCE = {".png": 0.0, ".tif": 0.0, ".tiff": 0.0, ".bmp": 0.0, ".jpg": 0.08, ".webp": 0.08}


@pytest.fixture(scope="module")
def face(sample_faces) -> np.ndarray:
    """A real face, float32 RGB in [0, 1], cropped to an odd size."""
    return read_image(sample_faces[0]).pixels[:37, :45]


def _alpha_ramp(height: int, width: int, dtype: str) -> np.ndarray:
    top = 65535 if dtype == "uint16" else 255
    return np.linspace(0, top, height * width).reshape(height, width).astype(dtype)


@pytest.mark.parametrize("extension", [".png", ".jpg", ".webp", ".tif", ".bmp"])
@pytest.mark.parametrize("layout", ["rgb", "grey", "rgba"])
def test_eight_bit_round_trip(tmp_path, face, extension, layout):
    alpha = _alpha_ramp(*face.shape[:2], "uint8") if layout == "rgba" else None
    stored = array_from_image(face, dtype="uint8", grey=layout == "grey", alpha=alpha)
    path = tmp_path / f"image{extension}"
    image = image_from_array(stored)
    write_image(path, image.pixels, dtype="uint8", grey=image.grey, alpha=image.alpha)

    loaded = read_image(path)
    assert loaded.dtype == "uint8"
    assert loaded.pixels.shape == face.shape and loaded.pixels.dtype == np.float32
    # WebP has no grey mode: grey comes back as RGB with equal channels.
    assert loaded.grey == (layout == "grey" and extension != ".webp")
    if layout == "grey":
        assert np.abs(loaded.pixels - loaded.pixels[:, :, :1]).max() <= 1 / 255
    if layout == "rgba" and extension != ".jpg":
        np.testing.assert_array_equal(loaded.alpha, alpha)
    else:
        assert loaded.alpha is None
    error = np.abs(loaded.pixels - image.pixels).max()
    assert error <= TOLERANCE[extension] + 1e-6


@pytest.mark.parametrize("extension", [".png", ".tif"])
@pytest.mark.parametrize("layout", ["rgb", "grey", "rgba"])
def test_sixteen_bit_round_trip_is_exact(tmp_path, face, extension, layout):
    # Values that are not multiples of 257 would be lost by any 8-bit step on the way.
    rng = np.random.default_rng(0)
    colour = np.clip(face + rng.uniform(0, 1 / 255, face.shape).astype(np.float32), 0, 1)
    alpha = _alpha_ramp(*face.shape[:2], "uint16") if layout == "rgba" else None
    stored = array_from_image(colour, dtype="uint16", grey=layout == "grey", alpha=alpha)
    path = tmp_path / f"image{extension}"
    image = image_from_array(stored)
    write_image(path, image.pixels, dtype=image.dtype, grey=image.grey, alpha=image.alpha)

    assert image.dtype == "uint16"
    reread = decode_stored(path.read_bytes())
    np.testing.assert_array_equal(reread, stored)


def test_float_tiff_stays_float(tmp_path, face):
    path = tmp_path / "float.tif"
    write_image(path, face, dtype="float32")
    loaded = read_image(path)
    assert loaded.dtype == "float32"
    np.testing.assert_allclose(loaded.pixels, face, atol=1e-7)


def test_sixteen_bit_falls_back_to_eight_bit_in_jpeg(tmp_path, face):
    path = tmp_path / "out.jpg"
    write_image(path, face, dtype="uint16")
    assert read_image(path).dtype == "uint8"


def test_grey_with_alpha_keeps_grey_and_alpha(tmp_path, face):
    grey = (face[:, :, 1] * 255).astype(np.uint8)
    alpha = _alpha_ramp(*grey.shape, "uint8")
    Image.fromarray(np.dstack([grey, alpha]), "LA").save(tmp_path / "la.png")

    loaded = read_image(tmp_path / "la.png")
    assert loaded.grey
    np.testing.assert_array_equal(loaded.alpha, alpha)
    np.testing.assert_allclose(loaded.pixels[:, :, 0], grey / 255, atol=1e-6)

    write_image(tmp_path / "out.png", loaded.pixels, grey=True, alpha=loaded.alpha)
    written = read_image(tmp_path / "out.png")  # RGBA with equal channels: OpenCV has no LA
    np.testing.assert_array_equal(written.alpha, alpha)
    np.testing.assert_allclose(written.pixels[:, :, 2], grey / 255, atol=1e-6)


def _marked_image() -> np.ndarray:
    """20x30 black RGB with a white block in the top-left corner."""
    image = np.zeros((20, 30, 3), np.uint8)
    image[:5, :5] = 255
    return image


@pytest.mark.parametrize("extension", ["jpeg", "png", "webp"])
def test_exif_orientation_is_applied(extension):
    image = Image.fromarray(_marked_image())
    exif = image.getexif()
    exif[0x0112] = 6  # stored rotated: display turns it 90 degrees clockwise
    buffer = io.BytesIO()
    image.save(buffer, extension.upper(), exif=exif.tobytes(), quality=95)

    upright = decode_image(buffer.getvalue()).pixels
    assert upright.shape == (30, 20, 3)
    assert upright[:3, -3:].mean() > 0.9  # the block moved to the top-right corner
    assert upright[:3, :3].mean() < 0.1


def test_tiff_orientation_is_applied_once():
    tifffile = pytest.importorskip("tifffile")
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, _marked_image(), photometric="rgb", extratags=[(274, "H", 1, 6)])
    upright = decode_image(buffer.getvalue()).pixels
    assert upright.shape == (30, 20, 3)
    assert upright[:3, -3:].mean() > 0.9


def test_cmyk_tiff_is_colour_not_alpha(face):
    rgb = np.rint(face * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(buffer, "TIFF")
    loaded = decode_image(buffer.getvalue())
    assert loaded.alpha is None
    assert np.abs(loaded.pixels - face).max() <= 1 / 255 + 1e-6


@pytest.mark.parametrize(
    "data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n truncated"], ids=str
)
def test_unreadable_data_is_a_user_error(data):
    with pytest.raises(FaceDenoiseError, match="bad.png"):
        decode_image(data, "bad.png")


def test_truncated_file_is_a_user_error(tmp_path, sample_faces):
    path = tmp_path / "cut.png"
    path.write_bytes(sample_faces[0].read_bytes()[:100])
    with pytest.raises(FaceDenoiseError, match="cut.png"):
        read_image(path)


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(FaceDenoiseError, match="Cannot read"):
        read_image(tmp_path / "nope.png")


def test_unknown_output_extension_is_a_user_error(face):
    with pytest.raises(FaceDenoiseError, match=r"\.gif"):
        encode_image(face, ".gif")


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path, face):
    write_image(tmp_path / "sub" / "out.png", face)
    assert [path.name for path in (tmp_path / "sub").iterdir()] == ["out.png"]


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
@pytest.mark.parametrize("channels", [None, 1, 2, 3, 4])
def test_array_conversions_are_exact_inverses(dtype, channels):
    rng = np.random.default_rng(1)
    shape = (7, 9) if channels is None else (7, 9, channels)
    stored = rng.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)
    image = image_from_array(stored)
    back = array_from_image(image.pixels, dtype=image.dtype, grey=image.grey, alpha=image.alpha)
    np.testing.assert_array_equal(back.reshape(stored.shape), stored)


def test_float_arrays_outside_unit_range_are_refused_when_checked():
    scaled = np.full((4, 4, 3), 200.0)
    with pytest.raises(FaceDenoiseError, match=r"\[0, 1\]"):
        image_from_array(scaled, check_range=True)
    assert image_from_array(scaled).pixels.max() == 1.0  # files: clipped


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((4, 4, 3), np.int32),
        np.zeros((4, 4, 5), np.uint8),
        np.zeros((4,), np.uint8),
        np.full((4, 4), np.nan),
    ],
)
def test_unusable_arrays_are_user_errors(array):
    with pytest.raises(FaceDenoiseError):
        image_from_array(array)


def _touch_image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.zeros((4, 4, 3), np.uint8))


def test_find_images_in_folders_and_globs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("photos/a.png", "photos/b.jpg", "photos/.hidden.png", "photos/sub/c.png"):
        _touch_image(tmp_path / name)
    (tmp_path / "photos" / "notes.txt").write_text("not an image")

    flat = find_images(["photos"])
    assert [image.path.name for image in flat] == ["a.png", "b.jpg"]
    assert all(image.base.name == "photos" for image in flat)
    deep = find_images(["photos"], recursive=True)
    assert [image.path.name for image in deep] == ["a.png", "b.jpg", "c.png"]
    globbed = find_images(["photos/**/*.png", "photos/a.png"])
    assert [str(image.path) for image in globbed] == ["photos/a.png", "photos/sub/c.png"]
    assert globbed[0].base.name == "photos"  # the glob's fixed folder, kept on duplicates
    assert find_images(["photos/b.jpg"])[0].base is None


@pytest.mark.parametrize("argument", ["missing.png", "empty", "*.gif"])
def test_find_images_refuses_arguments_that_match_nothing(tmp_path, monkeypatch, argument):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FaceDenoiseError, match=argument.replace("*", r"\*")):
        find_images([argument])
