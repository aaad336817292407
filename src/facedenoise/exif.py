"""EXIF (capture date, camera, exposure, GPS) carried from an input file to its output.

OpenCV writes pixels only, so a denoised camera photo would lose when and how it was taken,
and photo libraries would sort it by the file's date. The input's EXIF block (read with the
pixels, `imageio.read_stored_with_metadata`) goes into OpenCV's encoded bytes unchanged but
for the orientation: the pixels were turned upright on reading, so it is set to 1 (as
displayed), and a turn by 90 degrees swaps the recorded pixel width and height. It is
written as a PNG `eXIf` chunk after `IHDR` and as a JPEG `APP1 Exif` segment after `APP0`;
other output formats are written without it, as is a block too large for one JPEG segment.
The rest is copied as it is: an embedded thumbnail still shows the input.
"""

from __future__ import annotations

import struct

from facedenoise.embedding import (
    JPEG_SEGMENT_BODY,
    is_jpeg,
    is_png,
    jpeg_segment,
    jpeg_with_segments,
    png_with_chunk,
)

_JPEG_EXIF_TAG = b"Exif\x00\x00"
_JPEG_SEGMENT_DATA = JPEG_SEGMENT_BODY - len(_JPEG_EXIF_TAG)  # one APP1 segment
_ORIENTATION_TAG = 0x0112
_SHORT = 3  # the TIFF type of the orientation value
_INTEGER_CODES = {3: "H", 4: "I", 8: "h", 9: "i"}  # SHORT, LONG, SSHORT, SLONG
_EXIF_DIRECTORY_TAG = 0x8769
_PIXEL_DIMENSION_TAGS = (0xA002, 0xA003)  # PixelXDimension, PixelYDimension
_BYTE_ORDERS = {b"II": "<", b"MM": ">"}


def exif_block(data: bytes | None) -> bytes | None:
    """The TIFF-structured EXIF block in `data` (as Pillow gives it: with or without the
    'Exif\\0\\0' prefix of JPEG segments), or None when it is empty or not TIFF-structured."""
    if not isinstance(data, bytes | bytearray) or not data:
        return None  # a PNG text chunk named 'exif' reaches Pillow's info as a str
    block = bytes(data)
    if block.startswith(_JPEG_EXIF_TAG):
        block = block[len(_JPEG_EXIF_TAG):]
    if len(block) < 8 or block[:2] not in _BYTE_ORDERS:
        return None
    return block


def is_unreadable(data: bytes | None) -> bool:
    """Whether `data` (as Pillow gives it) holds an EXIF block that `exif_block` cannot use:
    bytes after the JPEG prefix that are not TIFF-structured (a damaged or foreign block)."""
    if not isinstance(data, bytes | bytearray):
        return False
    body = bytes(data).removeprefix(_JPEG_EXIF_TAG)
    return bool(body) and exif_block(data) is None


def _entries(block: bytes, order: str, directory: int) -> list[tuple[int, int, int]]:
    """(start, tag, type) of each 12-byte entry of the directory at `directory`, those that
    lie inside `block`."""
    if directory + 2 > len(block):
        return []
    count = struct.unpack(order + "H", block[directory : directory + 2])[0]
    last = min(directory + 2 + 12 * count, len(block) - 11)
    return [(start, *struct.unpack(order + "HH", block[start : start + 4]))
            for start in range(directory + 2, last, 12)]


def _first_value(block: bytes, order: str, start: int, kind: int) -> int | None:
    """The first value of an integer entry stored in its value field, else None."""
    code = _INTEGER_CODES.get(kind)
    if code is None:
        return None
    return struct.unpack(order + code, block[start + 8 : start + 8 + struct.calcsize(code)])[0]


def upright(block: bytes) -> bytes:
    """`block` (`exif_block`) with every orientation entry of its first directory set to one
    SHORT 1 (as displayed), whatever type and count it had (readers accept LONG and signed
    types too), and, when that turned the picture by 90 degrees (orientations 5-8), its
    pixel width and height (the Exif directory's PixelXDimension and PixelYDimension)
    swapped; entries outside the block are left alone."""
    order = _BYTE_ORDERS[block[:2]]
    patched = bytearray(block)
    turned, exif_directory = False, None
    for start, tag, kind in _entries(block, order, struct.unpack(order + "I", block[4:8])[0]):
        if tag == _ORIENTATION_TAG:
            turned = turned or _first_value(block, order, start, kind) in (5, 6, 7, 8)
            # type, count, value (a SHORT fills the first half of the 4-byte value field)
            patched[start + 2 : start + 12] = struct.pack(order + "HIH2x", _SHORT, 1, 1)
        elif tag == _EXIF_DIRECTORY_TAG:
            exif_directory = _first_value(block, order, start, kind)
    if turned and exif_directory is not None:
        sizes = {tag: start for start, tag, _ in _entries(block, order, exif_directory)
                 if tag in _PIXEL_DIMENSION_TAGS}
        if len(sizes) == 2:  # swap type, count and value, keeping each tag
            width, height = (sizes[tag] for tag in _PIXEL_DIMENSION_TAGS)
            patched[width + 2 : width + 12], patched[height + 2 : height + 12] = (
                block[height + 2 : height + 12], block[width + 2 : width + 12])
    return bytes(patched)


def fits_one_jpeg_segment(block: bytes) -> bool:
    """Whether an EXIF `block` fits the one APP1 segment a JPEG output gives it."""
    return len(block) <= _JPEG_SEGMENT_DATA


def embed_exif(encoded: bytes, extension: str, block: bytes | None) -> bytes:
    """`encoded` (a PNG or JPEG as OpenCV writes them) with the EXIF `block` (as `exif_block`
    takes it) embedded, its orientation set upright; other formats, a None block and one that
    is not TIFF-structured leave it as is."""
    block = exif_block(block)
    if block is None:
        return encoded
    if is_png(encoded, extension):
        return png_with_chunk(encoded, b"eXIf", upright(block))
    if is_jpeg(encoded, extension) and fits_one_jpeg_segment(block):
        return jpeg_with_segments(encoded, jpeg_segment(0xE1, _JPEG_EXIF_TAG + upright(block)))
    return encoded
