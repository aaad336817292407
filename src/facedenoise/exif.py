"""EXIF (capture date, camera, exposure, GPS) carried from an input file to its output.

OpenCV writes pixels only, so a denoised camera photo would lose when and how it was taken,
and photo libraries would sort it by the file's date. The input's EXIF block (read with the
pixels, `imageio.read_stored_with_metadata`) goes into OpenCV's encoded bytes unchanged but
for one tag: the pixels were turned upright on reading, so the orientation is set to 1 (as
displayed). It is written as a PNG `eXIf` chunk after `IHDR` and as a JPEG `APP1 Exif`
segment after `APP0`; other output formats are written without it, as is a block too large
for one JPEG segment. The block is copied as it is: an embedded thumbnail still shows the
input, and sizes in it are the input's as stored.
"""

from __future__ import annotations

import struct

from facedenoise.embedding import (
    is_jpeg,
    is_png,
    jpeg_segment,
    jpeg_with_segments,
    png_with_chunk,
)

_JPEG_EXIF_TAG = b"Exif\x00\x00"
_JPEG_SEGMENT_DATA = 65_535 - 2 - len(_JPEG_EXIF_TAG)  # one APP1 segment, less its length
_ORIENTATION_TAG = 0x0112
_SHORT = 3  # the TIFF type of the orientation value
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


def upright(block: bytes) -> bytes:
    """`block` (`exif_block`) with every orientation entry of its first directory set to one
    SHORT 1 (as displayed), whatever type and count it had (readers accept LONG and signed
    types too); a block whose directory lies outside it is returned unchanged."""
    order = _BYTE_ORDERS[block[:2]]
    directory = struct.unpack(order + "I", block[4:8])[0]
    if directory + 2 > len(block):
        return block
    count = struct.unpack(order + "H", block[directory : directory + 2])[0]
    patched = bytearray(block)
    for start in range(directory + 2, min(directory + 2 + 12 * count, len(block) - 11), 12):
        if struct.unpack(order + "H", block[start : start + 2])[0] == _ORIENTATION_TAG:
            # type, count, value (a SHORT fills the first half of the 4-byte value field)
            patched[start + 2 : start + 12] = struct.pack(order + "HIH2x", _SHORT, 1, 1)
    return bytes(patched)


def embed_exif(encoded: bytes, extension: str, block: bytes | None) -> bytes:
    """`encoded` (a PNG or JPEG as OpenCV writes them) with the EXIF `block` (as `exif_block`
    takes it) embedded, its orientation set upright; other formats, a None block and one that
    is not TIFF-structured leave it as is."""
    block = exif_block(block)
    if block is None:
        return encoded
    if is_png(encoded, extension):
        return png_with_chunk(encoded, b"eXIf", upright(block))
    if is_jpeg(encoded, extension) and len(block) <= _JPEG_SEGMENT_DATA:  # one segment only
        return jpeg_with_segments(encoded, jpeg_segment(0xE1, _JPEG_EXIF_TAG + upright(block)))
    return encoded
