"""EXIF: an input's capture date and camera reach its output, turned upright (PNG and JPEG)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms
from typer.testing import CliRunner

from facedenoise.cli import app
from facedenoise.exif import embed_exif, exif_block, upright
from facedenoise.imageio import decode_image, encode_image, icc_profile_of, read_image

runner = CliRunner()

ORIENTATION, MAKE, EXIF_IFD, TAKEN = 0x0112, 0x010F, 0x8769, 0x9003


def _exif(orientation: int = 6, byte_order: str = ">") -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[MAKE] = "Canon"
    exif.get_ifd(EXIF_IFD)[TAKEN] = "2024:05:06 07:08:09"
    exif.endian = byte_order
    return exif


def _read_back(data: bytes) -> Image.Exif:
    with Image.open(io.BytesIO(data)) as image:
        return image.getexif()


@pytest.mark.parametrize("byte_order", ["<", ">"])
def test_upright_sets_only_the_orientation(byte_order):
    block = exif_block(_exif(6, byte_order).tobytes())
    assert block[:2] == (b"II" if byte_order == "<" else b"MM")
    patched = upright(block)
    assert len(patched) == len(block)
    changed = [index for index in range(len(block)) if block[index] != patched[index]]
    assert len(changed) == 1  # the low byte of one SHORT: 6 -> 1
    exif = Image.Exif()
    exif.load(patched)
    assert (exif[ORIENTATION], exif[MAKE]) == (1, "Canon")
    assert exif.get_ifd(EXIF_IFD)[TAKEN] == "2024:05:06 07:08:09"


@pytest.mark.parametrize("kind, count, value", [
    (4, 1, b"\x00\x00\x00\x06"),  # LONG
    (9, 1, b"\x00\x00\x00\x06"),  # SLONG
    (3, 2, b"\x00\x06\x00\x00"),  # two SHORTs
])
@pytest.mark.filterwarnings("ignore:Metadata Warning")  # Pillow on the two SHORTs
def test_upright_sets_orientations_of_any_type(kind, count, value):
    # Pillow reads these as orientation 6 too, so the pixels were turned on reading: an
    # output left at 6 would be turned twice.
    import struct

    block = bytearray(exif_block(_exif(6, ">").tobytes()))
    entries = struct.unpack(">H", block[8:10])[0]
    for start in range(10, 10 + 12 * entries, 12):
        if struct.unpack(">H", block[start : start + 2])[0] == ORIENTATION:
            block[start + 2 : start + 12] = struct.pack(">HI", kind, count) + value
    exif = Image.Exif()
    exif.load(bytes(block))
    assert exif[ORIENTATION] in (6, (6, 0))  # as written
    exif.load(upright(bytes(block)))
    assert (exif[ORIENTATION], exif[MAKE]) == (1, "Canon")


@pytest.mark.parametrize("orientation, shown", [(6, (3000, 4000)), (8, (3000, 4000)),
                                                (3, (4000, 3000))])
def test_a_quarter_turn_swaps_the_recorded_pixel_size(orientation, shown):
    # The output is written upright, so a photo stored 4000x3000 on its side is 3000x4000.
    exif = _exif(orientation)
    exif.get_ifd(EXIF_IFD).update({0xA002: 4000, 0xA003: 3000})  # PixelX/YDimension
    patched = Image.Exif()
    patched.load(upright(exif_block(exif.tobytes())))
    directory = patched.get_ifd(EXIF_IFD)
    assert (directory[0xA002], directory[0xA003]) == shown
    assert (patched[ORIENTATION], directory[TAKEN]) == (1, "2024:05:06 07:08:09")


def test_text_chunks_named_like_metadata_are_not_metadata(tmp_path, sample_faces):
    # Pillow puts a PNG text chunk named 'exif' or 'icc_profile' into `info` as a str; that
    # crashed a whole denoise run with a traceback (nothing written).
    from PIL import PngImagePlugin

    text = PngImagePlugin.PngInfo()
    text.add_text("exif", "Exif text, not a block", zip=True)
    text.add_text("icc_profile", "not a profile")
    face = np.rint(read_image(sample_faces[0]).pixels * 255).astype(np.uint8)
    (tmp_path / "in").mkdir()
    Image.fromarray(face).save(tmp_path / "in" / "texts.png", pnginfo=text)
    Image.fromarray(face).save(tmp_path / "in" / "plain.png")
    data = (tmp_path / "in" / "texts.png").read_bytes()
    assert icc_profile_of(data) is None
    result = runner.invoke(app, ["denoise", str(tmp_path / "in"), str(tmp_path / "out"),
                                 "--model", "starter"])
    assert result.exit_code == 0, result.output
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["plain.png",
                                                                          "texts.png"]


def test_blocks_that_are_not_exif_are_left_out():
    assert exif_block(None) is None
    assert exif_block(b"Exif\x00\x00") is None
    assert exif_block(b"Exif\x00\x00not a tiff header") is None
    assert exif_block(b"Exif\x00\x00" * 2 + b"MM\x00*\x00\x00\x00\x08") is None
    assert exif_block("Exif text") is None
    jpeg = encode_image(np.full((8, 8, 3), 0.5, np.float32), ".jpg")
    assert embed_exif(jpeg, ".jpg", b"junk") == jpeg
    no_orientation = Image.Exif()
    no_orientation[MAKE] = "Canon"
    block = exif_block(no_orientation.tobytes())
    assert upright(block) == block
    cut = block[:4] + b"\xff\xff\xff\x00"  # the first directory beyond the block
    assert upright(cut) == cut


@pytest.mark.parametrize("extension", [".png", ".jpg"])
def test_embedded_exif_reads_back_upright(extension):
    encoded = encode_image(np.full((8, 8, 3), 0.5, np.float32), extension)
    with_exif = embed_exif(encoded, extension, exif_block(_exif().tobytes()))
    exif = _read_back(with_exif)
    assert (exif[ORIENTATION], exif[MAKE]) == (1, "Canon")
    assert exif.get_ifd(EXIF_IFD)[TAKEN] == "2024:05:06 07:08:09"
    np.testing.assert_array_equal(_decoded(with_exif), _decoded(encoded))


def _decoded(data: bytes) -> np.ndarray:
    return decode_image(data).pixels


def test_other_formats_and_oversized_blocks_are_written_without_exif():
    block = exif_block(_exif().tobytes())
    encoded = encode_image(np.full((8, 8, 3), 0.5, np.float32), ".webp")
    assert embed_exif(encoded, ".webp", block) == encoded
    jpeg = encode_image(np.full((8, 8, 3), 0.5, np.float32), ".jpg")
    assert embed_exif(jpeg, ".jpg", None) == jpeg
    huge = Image.Exif()
    huge[0x010E] = "x" * 70_000  # ImageDescription: more than one JPEG segment holds
    assert embed_exif(jpeg, ".jpg", exif_block(huge.tobytes())) == jpeg


def test_denoise_keeps_the_inputs_exif_and_profile_upright(tmp_path, sample_faces):
    # A camera JPEG stored on its side (orientation 6) with a colour profile; small (batched)
    # and large (tiled, written from the stored array), to JPEG and PNG outputs.
    face = np.rint(read_image(sample_faces[0]).pixels * 255).astype(np.uint8)
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    (tmp_path / "in").mkdir()
    for name, pixels in (("face", face[:, :100]), ("big", np.tile(face, (5, 5, 1))[:, :600])):
        stored = np.rot90(pixels, 1)  # orientation 6 turns it back 90 degrees clockwise
        Image.fromarray(np.ascontiguousarray(stored)).save(
            tmp_path / "in" / f"{name}.jpg", exif=_exif(6), icc_profile=profile, quality=95)
    result = runner.invoke(app, ["denoise", str(tmp_path / "in"), str(tmp_path / "out"),
                                 "--model", "starter"])
    assert result.exit_code == 0, result.output
    outputs = [tmp_path / "out" / "face.jpg", tmp_path / "out" / "big.jpg"]
    for name in ("face", "big"):
        result = runner.invoke(app, ["denoise", str(tmp_path / "in" / f"{name}.jpg"),
                                     str(tmp_path / f"{name}.png"), "--model", "starter"])
        assert result.exit_code == 0, result.output
        outputs.append(tmp_path / f"{name}.png")
    for path in outputs:
        data = path.read_bytes()
        exif = _read_back(data)
        assert (exif[ORIENTATION], exif[MAKE]) == (1, "Canon"), path
        assert exif.get_ifd(EXIF_IFD)[TAKEN] == "2024:05:06 07:08:09"
        assert icc_profile_of(data) == profile
        shown = (128, 100) if path.stem == "face" else (640, 600)
        assert read_image(path).pixels.shape[:2] == shown  # upright, and shown so
    result = runner.invoke(app, ["denoise", str(tmp_path / "in"), str(tmp_path / "stripped"),
                                 "--model", "starter", "--strip-exif"])
    assert result.exit_code == 0, result.output
    for name, shown in (("face", (128, 100)), ("big", (640, 600))):
        data = (tmp_path / "stripped" / f"{name}.jpg").read_bytes()
        assert (dict(_read_back(data)), icc_profile_of(data)) == ({}, profile)
        assert read_image(tmp_path / "stripped" / f"{name}.jpg").pixels.shape[:2] == shown


def test_denoise_says_which_outputs_lost_the_profile_or_exif(tmp_path, sample_faces):
    # WebP, TIFF and BMP outputs are written without either: the summary names them, small
    # (batched) and large (tiled) alike; PNG and JPEG outputs keep both and are not named.
    face = np.rint(read_image(sample_faces[0]).pixels * 255).astype(np.uint8)
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    small, big = tmp_path / "face.jpg", tmp_path / "big.jpg"
    Image.fromarray(face).save(small, exif=_exif(1), icc_profile=profile, quality=95)
    Image.fromarray(np.tile(face, (5, 5, 1))).save(big, exif=_exif(1), icc_profile=profile)
    for source, target, options, lost in (
        (small, "face.webp", [], "colour profile and EXIF"),
        (big, "big.tif", [], "colour profile and EXIF"),
        (small, "stripped.bmp", ["--strip-exif"], "colour profile"),
    ):
        result = runner.invoke(app, ["denoise", str(source), str(tmp_path / target),
                                     "--model", "starter", *options])
        assert result.exit_code == 0, result.output
        assert f"Written without the input's {lost} (1;" in result.output
        assert target in result.output.split("Written without")[1]
    result = runner.invoke(app, ["denoise", str(small), str(tmp_path / "kept.png"),
                                 "--model", "starter"])
    assert result.exit_code == 0 and "Written without" not in result.output, result.output
    huge = _exif(1)
    huge[0x010E] = "x" * 70_000  # ImageDescription: more than one JPEG segment holds
    Image.fromarray(face).save(tmp_path / "huge.png", exif=huge)
    result = runner.invoke(app, ["denoise", str(tmp_path / "huge.png"),
                                 str(tmp_path / "huge.jpg"), "--model", "starter"])
    assert "Written without the input's EXIF (1;" in result.output, result.output


def test_denoise_says_which_inputs_had_an_exif_block_it_could_not_read(tmp_path, sample_faces):
    # A damaged (not TIFF-structured) block cannot be carried; it was dropped silently.
    face = np.rint(read_image(sample_faces[0]).pixels * 255).astype(np.uint8)
    damaged = b"Exif\x00\x00not a tiff header"
    Image.fromarray(face).save(tmp_path / "damaged.jpg", exif=damaged, quality=95)
    Image.fromarray(np.tile(face, (5, 5, 1))).save(tmp_path / "big.png", exif=damaged)
    Image.fromarray(face).save(tmp_path / "empty.jpg", exif=b"Exif\x00\x00", quality=95)
    for source, target, says in (("damaged.jpg", "damaged_out.png", True),
                                 ("big.png", "big_out.png", True),  # tiled
                                 ("empty.jpg", "empty_out.jpg", False)):  # nothing to lose
        result = runner.invoke(app, ["denoise", str(tmp_path / source), str(tmp_path / target),
                                     "--model", "starter"])
        assert result.exit_code == 0, result.output
        line = "Written without the input's EXIF, which could not be read (1):"
        assert (line in result.output) == says, result.output
        assert not says or target in result.output.split(line)[1]
        assert dict(_read_back((tmp_path / target).read_bytes())) == {}
    result = runner.invoke(app, ["denoise", str(tmp_path / "damaged.jpg"),
                                 str(tmp_path / "stripped.png"), "--model", "starter",
                                 "--strip-exif"])  # asked to leave it out: nothing to say
    assert result.exit_code == 0 and "could not be read" not in result.output, result.output
