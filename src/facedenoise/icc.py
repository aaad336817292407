"""Colour profiles (ICC) carried from an input file to its output.

Pixels are denoised as stored, so the output's colours mean what the input's meant only if the
output carries the same profile: a Display P3 or Adobe RGB photo written without its profile
is shown as sRGB, less saturated. OpenCV reads and writes pixels only, so the profile is read
with Pillow (from the file's header) and written into OpenCV's encoded bytes: a PNG `iCCP`
chunk after `IHDR`, JPEG `APP2 ICC_PROFILE` segments after `APP0`. Other output formats are
written without one.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_ICC_TAG = b"ICC_PROFILE\x00"
_JPEG_SEGMENT_DATA = 65_535 - 2 - len(_JPEG_ICC_TAG) - 2  # length field, tag, index, count
FORMATS_WITH_PROFILES = (".png", ".jpg", ".jpeg")


def read_icc_profile(path: Path) -> bytes | None:
    """The ICC profile embedded in an image file, or None (none, or unreadable: the pixels'
    reader reports a broken file). Reads the header only."""
    from facedenoise.imageio import _pil

    try:
        with _pil().open(path) as image:
            profile = image.info.get("icc_profile")
    except Exception:  # noqa: BLE001 - Pillow raises many types for odd files
        return None
    return bytes(profile) if profile else None


def embed_icc_profile(encoded: bytes, extension: str, profile: bytes | None) -> bytes:
    """`encoded` (a PNG or JPEG as OpenCV writes them) with `profile` embedded; other formats,
    and a None profile, come back unchanged."""
    if not profile:
        return encoded
    extension = extension.lower()
    if extension == ".png" and encoded.startswith(_PNG_SIGNATURE) and encoded[12:16] == b"IHDR":
        return _png_with_profile(encoded, profile)
    if extension in (".jpg", ".jpeg") and encoded.startswith(b"\xff\xd8"):
        return _jpeg_with_profile(encoded, profile)
    return encoded


def _png_with_profile(encoded: bytes, profile: bytes) -> bytes:
    ihdr_end = 8 + 8 + struct.unpack(">I", encoded[8:12])[0] + 4  # length, type, data, CRC
    body = b"icc\x00\x00" + zlib.compress(profile)  # name, separator, method 0 (zlib)
    chunk = (struct.pack(">I", len(body)) + b"iCCP" + body
             + struct.pack(">I", zlib.crc32(b"iCCP" + body)))
    return encoded[:ihdr_end] + chunk + encoded[ihdr_end:]


def _jpeg_with_profile(encoded: bytes, profile: bytes) -> bytes:
    position = 2
    # After SOI and a JFIF APP0 segment, which must come first.
    if encoded[position : position + 2] == b"\xff\xe0":
        position += 2 + struct.unpack(">H", encoded[position + 2 : position + 4])[0]
    pieces = [profile[start : start + _JPEG_SEGMENT_DATA]
              for start in range(0, len(profile), _JPEG_SEGMENT_DATA)]
    if len(pieces) > 255:
        return encoded  # over 16 MB: no JPEG can hold it
    segments = b"".join(
        b"\xff\xe2" + struct.pack(">H", 2 + len(_JPEG_ICC_TAG) + 2 + len(piece))
        + _JPEG_ICC_TAG + bytes([index, len(pieces)]) + piece
        for index, piece in enumerate(pieces, start=1)
    )
    return encoded[:position] + segments + encoded[position:]
