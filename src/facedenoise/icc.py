"""Colour profiles (ICC) carried from an input file to its output.

Pixels are denoised as stored, so the output's colours mean what the input's meant only if the
output carries the same profile: a Display P3 or Adobe RGB photo written without its profile
is shown as sRGB, less saturated. OpenCV writes pixels only, so the profile (read with the
pixels, `imageio.read_stored_with_metadata`) goes into OpenCV's encoded bytes: a PNG `iCCP`
chunk after `IHDR`, JPEG `APP2 ICC_PROFILE` segments after `APP0`. Only a profile of the
output's colour space is written (an RGB profile into a colour file, a grey one into a grey
file): a CMYK JPEG comes back RGB, and grey with alpha is written as RGBA. Other output
formats are written without one.
"""

from __future__ import annotations

import struct
import zlib

from facedenoise.embedding import (
    JPEG_SEGMENT_BODY,
    is_jpeg,
    is_png,
    jpeg_segment,
    jpeg_with_segments,
    png_with_chunk,
)

_PNG_GREY_TYPES = (0, 4)  # IHDR colour types: grey, grey + alpha (2 and 6 are colour)
_JPEG_ICC_TAG = b"ICC_PROFILE\x00"
_JPEG_SEGMENT_DATA = JPEG_SEGMENT_BODY - len(_JPEG_ICC_TAG) - 2  # tag, index, count
# Start-of-frame markers (C4, C8 and CC are other segments).
_JPEG_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def embed_icc_profile(encoded: bytes, extension: str, profile: bytes | None) -> bytes:
    """`encoded` (a PNG or JPEG as OpenCV writes them) with `profile` embedded when it is of
    the file's colour space (bytes 16-20 of the profile: 'RGB ' or 'GRAY'); other formats,
    other profiles and a None profile leave it unchanged."""
    if not profile or len(profile) < 20:
        return encoded
    space = profile[16:20]
    if is_png(encoded, extension):
        grey = encoded[25] in _PNG_GREY_TYPES
        if space == (b"GRAY" if grey else b"RGB "):
            # name, separator, compression method 0 (zlib)
            return png_with_chunk(encoded, b"iCCP", b"icc\x00\x00" + zlib.compress(profile))
    if is_jpeg(encoded, extension):
        components = _jpeg_components(encoded)
        if (space, components) in ((b"GRAY", 1), (b"RGB ", 3)):
            return _jpeg_with_profile(encoded, profile)
    return encoded


def _jpeg_components(encoded: bytes) -> int | None:
    """The number of colour components in a JPEG's frame header, or None if none is found
    before the image data."""
    position = 2
    while position + 4 <= len(encoded) and encoded[position] == 0xFF:
        marker = encoded[position + 1]
        if marker == 0xDA:  # start of scan: no frame header before it
            return None
        length = struct.unpack(">H", encoded[position + 2 : position + 4])[0]
        if marker in _JPEG_FRAMES and position + 10 <= len(encoded):
            return encoded[position + 9]  # length, precision, height, width, components
        position += 2 + length
    return None


def _jpeg_with_profile(encoded: bytes, profile: bytes) -> bytes:
    pieces = [profile[start : start + _JPEG_SEGMENT_DATA]
              for start in range(0, len(profile), _JPEG_SEGMENT_DATA)]
    if len(pieces) > 255:
        return encoded  # over 16 MB: no JPEG can hold it
    segments = b"".join(
        jpeg_segment(0xE2, _JPEG_ICC_TAG + bytes([index, len(pieces)]) + piece)
        for index, piece in enumerate(pieces, start=1)
    )
    return jpeg_with_segments(encoded, segments)
