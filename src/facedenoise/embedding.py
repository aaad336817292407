"""Metadata put into PNG and JPEG bytes as OpenCV encodes them (`icc`, `exif`)."""

from __future__ import annotations

import struct
import zlib

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SEGMENT_BODY = 65_535 - 2  # bytes a marker segment holds after its length field
JPEG_EXTENSIONS = (".jpg", ".jpeg")
# The outputs that get a colour profile and EXIF block (WebP, TIFF and BMP do not).
METADATA_EXTENSIONS = (".png", *JPEG_EXTENSIONS)


def is_png(encoded: bytes, extension: str) -> bool:
    """True for PNG bytes (with their IHDR chunk first) written to a .png file."""
    return (extension.lower() == ".png" and encoded.startswith(PNG_SIGNATURE)
            and encoded[12:16] == b"IHDR")


def is_jpeg(encoded: bytes, extension: str) -> bool:
    """True for JPEG bytes written to a .jpg or .jpeg file."""
    return extension.lower() in JPEG_EXTENSIONS and encoded.startswith(b"\xff\xd8")


def png_with_chunk(encoded: bytes, kind: bytes, body: bytes) -> bytes:
    """PNG `encoded` with a chunk of type `kind` (4 bytes) holding `body` after IHDR."""
    ihdr_end = 8 + 8 + struct.unpack(">I", encoded[8:12])[0] + 4  # length, type, data, CRC
    chunk = (struct.pack(">I", len(body)) + kind + body
             + struct.pack(">I", zlib.crc32(kind + body)))
    return encoded[:ihdr_end] + chunk + encoded[ihdr_end:]


def jpeg_segment(marker: int, body: bytes) -> bytes:
    """One JPEG marker segment (`marker` 0xE1 for APP1, ...) holding `body`, at most
    JPEG_SEGMENT_BODY bytes (callers split or drop larger data)."""
    if len(body) > JPEG_SEGMENT_BODY:
        raise ValueError(f"a JPEG segment holds at most {JPEG_SEGMENT_BODY:,} bytes, "
                         f"not {len(body):,}")
    return b"\xff" + bytes([marker]) + struct.pack(">H", 2 + len(body)) + body


def jpeg_with_segments(encoded: bytes, segments: bytes) -> bytes:
    """JPEG `encoded` with `segments` after SOI and a JFIF APP0 segment (which must come
    first)."""
    position = 2
    if encoded[position : position + 2] == b"\xff\xe0":
        position += 2 + struct.unpack(">H", encoded[position + 2 : position + 4])[0]
    return encoded[:position] + segments + encoded[position:]
