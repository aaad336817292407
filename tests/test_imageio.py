"""imageio: every format and bit depth round-trips with the right dtype, shape and alpha."""

from __future__ import annotations

import io
import os
import struct
import threading
import zlib

import cv2
import numpy as np
import pytest
from PIL import Image

from facedenoise.embedding import tiff_with_alpha
from facedenoise.errors import FaceDenoiseError
from facedenoise.imageio import (
    EMPTY,
    NOT_A_REGULAR_FILE,
    TOO_LARGE,
    UNREADABLE,
    ImageError,
    _quiet_decoders,
    apply_orientation,
    array_from_image,
    check_max_pixels,
    decode_image,
    decode_stored,
    encode_image,
    encode_stored,
    find_images,
    image_from_array,
    largest_max_pixels,
    list_images,
    read_file_bytes,
    read_header,
    read_image,
    read_limited,
    read_stored,
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


@pytest.mark.parametrize("orientation", [1, 6])
def test_rgba_tiffs_from_other_tools_keep_their_colour(orientation):
    # Pillow, tifffile, GIMP and Photoshop tag the fourth sample as unassociated alpha;
    # OpenCV's reader multiplied the colour by it (semi-transparent pixels up to 253 of 255
    # levels darker), and denoise wrote the darkened colour back.
    tifffile = pytest.importorskip("tifffile")
    rng = np.random.default_rng(0)
    stored = rng.integers(0, 256, (30, 20, 4), dtype=np.uint8)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, stored, photometric="rgb", extrasamples=[2],
                     extratags=[(274, "H", 1, orientation)])
    np.testing.assert_array_equal(decode_stored(buffer.getvalue()),
                                  apply_orientation(stored, orientation))
    buffer = io.BytesIO()
    Image.fromarray(stored, "RGBA").save(buffer, "TIFF", compression="tiff_lzw")
    np.testing.assert_array_equal(decode_stored(buffer.getvalue()), stored)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_rgba_tiffs_say_that_the_fourth_sample_is_alpha(face, dtype):
    # OpenCV wrote RGBA TIFFs without ExtraSamples: readers that follow the specification
    # show an unnamed fourth channel instead of transparency.
    tifffile = pytest.importorskip("tifffile")
    alpha = _alpha_ramp(*face.shape[:2], "uint8")
    data = encode_image(face, ".tif", dtype=dtype, alpha=alpha)
    with tifffile.TiffFile(io.BytesIO(data)) as tiff:  # tags only (LZW needs imagecodecs)
        assert [int(kind) for kind in tiff.pages[0].extrasamples] == [2]  # unassociated
    stored = array_from_image(face, dtype=dtype, alpha=alpha)
    np.testing.assert_array_equal(decode_stored(data), stored)  # lossless, not multiplied
    assert data == encode_image(face, ".tif", dtype=dtype, alpha=alpha)  # deterministic
    assert tiff_with_alpha(data) == data  # tagged once
    rgb = encode_image(face, ".tif", dtype=dtype)
    assert tiff_with_alpha(rgb) == rgb  # three samples: nothing to say


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


@pytest.mark.parametrize("extension", [".png", ".jpg", ".webp", ".tif", ".bmp"])
@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32", "float64"])
@pytest.mark.parametrize("channels", [None, 1, 2, 3, 4])
def test_stored_arrays_encode_to_the_bytes_of_their_pixels(extension, dtype, channels):
    # The shortcut for large photos must write exactly what the float path writes, also
    # where the format cannot hold the array (16-bit or float in JPEG, alpha in JPEG).
    rng = np.random.default_rng(2)
    shape = (6, 10) if channels is None else (6, 10, channels)
    if dtype.startswith("float"):
        stored = rng.random(shape).astype(dtype)
    else:
        stored = rng.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)
    image = image_from_array(stored)
    expected = encode_image(image.pixels, extension, dtype=image.dtype, grey=image.grey,
                            alpha=image.alpha)
    assert encode_stored(stored, extension) == expected


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


# --- Hostile input: every failure is an ImageError naming the file, sizes are checked first ----


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_declaring(width: int, height: int, colour_type: int = 2) -> bytes:
    """A PNG whose header declares `width`x`height` and whose pixel data is one empty row:
    enough for a decoder that trusts the header to allocate the whole image."""
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 16)
    return PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_malformed_exif_chunk_loses_only_the_orientation(sample_faces):
    """A 6-byte eXIf chunk made Pillow raise struct.error; the pixels are still readable."""
    data = sample_faces[0].read_bytes()
    with_exif = data[:33] + _chunk(b"eXIf", b"MM\x00*\x00\x00") + data[33:]  # after IHDR
    np.testing.assert_array_equal(decode_stored(with_exif), decode_stored(data))
    assert read_header(with_exif).orientation == 1


@pytest.mark.parametrize(
    "width, height, colour_type",
    [(30000, 30000, 0), (13500, 13500, 6), (20000, 6000, 2)],  # over Pillow's limit, and not
)
def test_oversized_images_are_refused_before_decoding(width, height, colour_type):
    with pytest.raises(ImageError, match="big.png is") as caught:
        decode_stored(_png_declaring(width, height, colour_type), "big.png")
    assert caught.value.kind == TOO_LARGE and f"{width * height:,} pixels" in str(caught.value)


def _bmp_declaring(width: int, height: int) -> bytes:
    """A 24-bit BMP header for `width`x`height` pixels, without the pixels."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 54 + 3 * width * height, 0, 0, 54) + info


@pytest.mark.parametrize("width, height", [(20000, 20000), (12000, 9000)])  # over Pillow's, ours
def test_oversized_images_read_by_pillow_are_refused_too(width, height):
    with pytest.raises(ImageError, match="big.bmp is") as caught:
        decode_stored(_bmp_declaring(width, height), "big.bmp")
    assert caught.value.kind == TOO_LARGE and f"{width * height:,} pixels" in str(caught.value)


def test_max_pixels_is_the_limit(sample_faces):
    data = sample_faces[0].read_bytes()  # 128x128
    assert decode_stored(data, max_pixels=128 * 128).shape[:2] == (128, 128)
    with pytest.raises(ImageError, match="16,384 pixels") as caught:
        decode_stored(data, max_pixels=128 * 128 - 1)
    assert caught.value.kind == TOO_LARGE


def _mutations(data: bytes, count: int, seed: int) -> list[bytes]:
    """Copies of `data` with a few bytes flipped, cut short or zeroed (seeded)."""
    rng = np.random.default_rng(seed)
    mutated = []
    for _ in range(count):
        copy = bytearray(data)
        for position in rng.integers(0, len(copy), rng.integers(1, 8)):
            copy[position] = int(rng.integers(0, 256))
        if rng.random() < 0.3:
            copy = copy[: int(rng.integers(8, len(copy)))]
        mutated.append(bytes(copy))
    return mutated


@pytest.mark.parametrize("extension", [".png", ".jpg", ".webp", ".tif", ".bmp"])
def test_damaged_files_only_ever_raise_image_errors(face, extension, capfd):
    """Whatever a decoder raises on damaged data (struct.error, cv2.error, SyntaxError...)
    becomes an ImageError, and nothing the native decoders print reaches the terminal."""
    data = encode_image(face, extension)
    for mutated in _mutations(data, 40, seed=len(extension)):
        try:
            decode_stored(mutated, "damaged")
        except ImageError as error:
            assert "damaged" in str(error) and error.kind in (UNREADABLE, TOO_LARGE)
    err = capfd.readouterr().err
    assert "libpng" not in err and "Corrupt JPEG" not in err and "[ERROR" not in err


def test_libpng_complaints_are_hidden_but_other_output_is_kept(sample_faces, capfd):
    data = bytearray(sample_faces[0].read_bytes())
    start = data.find(b"IDAT") + 20
    data[start : start + 200] = bytes(b ^ 0x55 for b in data[start : start + 200])
    with pytest.raises(ImageError, match="not a readable image"):
        decode_stored(bytes(data), "bad.png")
    with _quiet_decoders:  # what another thread writes meanwhile goes through
        os.write(2, b"progress 50%\n")
    err = capfd.readouterr().err
    assert "libpng" not in err and err == "progress 50%\n"


def test_symlink_to_a_device_is_refused_unread(tmp_path):
    link = tmp_path / "zero.png"
    link.symlink_to("/dev/zero")
    with pytest.raises(ImageError, match="not a regular file") as caught:
        read_image(link)
    assert caught.value.kind == NOT_A_REGULAR_FILE


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_named_pipe_is_refused_without_blocking(tmp_path):
    pipe = tmp_path / "pipe.png"
    os.mkfifo(pipe)
    outcome = []

    def read():
        try:
            read_stored(pipe)
        except ImageError as error:
            outcome.append(error.kind)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout=10)
    if reader.is_alive():  # blocked in open(): release it before failing
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a named pipe blocked")
    assert outcome == [NOT_A_REGULAR_FILE]


def test_files_over_max_bytes_are_refused(tmp_path, sample_faces):
    path = tmp_path / "face.png"
    path.write_bytes(sample_faces[0].read_bytes())
    assert read_file_bytes(path, max_bytes=path.stat().st_size) == path.read_bytes()
    with pytest.raises(ImageError, match="byte limit") as caught:
        read_file_bytes(path, max_bytes=1000)
    assert caught.value.kind == TOO_LARGE
    with pytest.raises(ImageError, match="byte limit"):
        read_limited(io.BytesIO(bytes(5000)), "stream", max_bytes=4999)  # grows past the limit


def test_header_gives_the_upright_size_without_decoding(tmp_path):
    image = Image.fromarray(_marked_image())  # 20 rows, 30 columns
    exif = image.getexif()
    exif[0x0112] = 6
    path = tmp_path / "turned.jpg"
    image.save(path, exif=exif.tobytes())
    header = read_header(path)
    assert (header.width, header.height, header.orientation) == (30, 20, 6)
    assert header.upright_size == (30, 20)  # displayed 90 degrees turned: 30 rows, 20 columns
    assert read_header(_png_declaring(9000, 9000), max_pixels=10**8).pixels == 81 * 10**6


def test_max_pixels_cannot_exceed_what_pillow_reads():
    check_max_pixels(largest_max_pixels())
    for bad in (0, largest_max_pixels() + 1, 1.5):
        with pytest.raises(FaceDenoiseError, match="--max-pixels"):
            check_max_pixels(bad)


def test_header_of_a_float_tiff_pillow_cannot_open(face):
    data = encode_image(face, ".tif", dtype="float32")
    header = read_header(data)
    assert (header.height, header.width) == face.shape[:2]
    with pytest.raises(ImageError) as caught:
        read_header(data, max_pixels=100)
    assert caught.value.kind == TOO_LARGE


def test_empty_data_has_its_own_kind():
    with pytest.raises(ImageError, match="empty") as caught:
        decode_stored(b"", "nothing.png")
    assert caught.value.kind == EMPTY


def test_find_images_takes_an_existing_path_literally(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("holiday [draft].png", "shot*.png", "a1.png"):
        _touch_image(tmp_path / name)
    assert [image.path.name for image in find_images(["holiday [draft].png"])] == [
        "holiday [draft].png"
    ]
    assert [image.path.name for image in find_images(["shot*.png"])] == ["shot*.png"]
    assert [image.path.name for image in find_images(["a[12].png"])] == ["a1.png"]  # a pattern
    with pytest.raises(FaceDenoiseError, match=r"missing\[2\].png does not exist"):
        find_images(["missing[2].png"])


def test_find_images_refuses_a_named_pipe(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("named pipes are POSIX")
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(ImageError, match="not a regular file"):
        find_images([str(tmp_path / "pipe.png")])
    assert list_images(tmp_path) == []
