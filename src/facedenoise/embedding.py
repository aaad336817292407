"""Metadata put into PNG and JPEG bytes as OpenCV encodes them (`icc`, `exif`), and the
alpha tag that OpenCV leaves out of a four-channel TIFF."""

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


_TIFF_BYTE_ORDERS = {b"II": "<", b"MM": ">"}
_TIFF_SAMPLES_PER_PIXEL = 277
_TIFF_EXTRA_SAMPLES = 338
_UNASSOCIATED_ALPHA = 2


def tiff_with_alpha(encoded: bytes) -> bytes:
    """A four-sample TIFF `encoded` whose first directory also says that the fourth sample is
    unassociated alpha (ExtraSamples = 2, as the input's alpha is stored). OpenCV writes RGBA
    TIFFs without that tag, so readers that follow the specification (libtiff, GIMP) show
    the alpha as an unnamed fourth channel. The directory is rewritten at the end of the file
    and the header pointed at it; the pixels and every other byte stay where they were.
    Anything else (another TIFF, a BigTIFF, the tag already there) is returned unchanged."""
    order = _TIFF_BYTE_ORDERS.get(encoded[:2])
    if order is None or len(encoded) < 8 or struct.unpack(order + "H", encoded[2:4])[0] != 42:
        return encoded
    directory = struct.unpack(order + "I", encoded[4:8])[0]
    if directory + 2 > len(encoded):
        return encoded
    count = struct.unpack(order + "H", encoded[directory : directory + 2])[0]
    end = directory + 2 + 12 * count
    if end + 4 > len(encoded):
        return encoded
    entries = [encoded[start : start + 12] for start in range(directory + 2, end, 12)]
    tags = {struct.unpack(order + "H", entry[:2])[0]: entry for entry in entries}
    samples = tags.get(_TIFF_SAMPLES_PER_PIXEL)
    if _TIFF_EXTRA_SAMPLES in tags or samples is None or (
            struct.unpack(order + "H", samples[8:10])[0] != 4):
        return encoded
    tags[_TIFF_EXTRA_SAMPLES] = struct.pack(order + "HHIHH", _TIFF_EXTRA_SAMPLES, 3, 1,
                                            _UNASSOCIATED_ALPHA, 0)  # SHORT, one value
    padded = encoded + b"\0" * (len(encoded) % 2)  # directories start on a word boundary
    rewritten = (struct.pack(order + "H", len(tags)) + b"".join(tags[tag] for tag in sorted(tags))
                 + encoded[end : end + 4])  # the next directory, as before
    return padded[:4] + struct.pack(order + "I", len(padded)) + padded[8:] + rewritten
