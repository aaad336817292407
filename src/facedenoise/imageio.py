"""Read and write images of any common kind as float32 RGB in [0, 1].

This is the only module that converts between stored pixels (8/16-bit, grey, grey+alpha,
RGBA, BGR order in OpenCV) and the float [0, 1] RGB arrays used everywhere else, for files
(`read_image`, `write_image`) and for in-memory arrays (`image_from_array`, `array_from_image`),
and the only one that reads image headers (`read_header`).

Files are untrusted input. Every reader here refuses what is not a regular file (a pipe or a
device is never opened for reading), reads at most `max_bytes` (config.MAX_FILE_BYTES), checks
the declared width x height against `max_pixels` (config.MAX_PIXELS) before decoding, and turns
anything a decoder raises into an `ImageError` naming the file, with a `kind` a caller can
group by. What native decoders print (libpng, libjpeg) is kept off the terminal.
"""

from __future__ import annotations

import glob
import io
import itertools
import os
import re
import stat
import struct
import tempfile
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np

from facedenoise.config import MAX_FILE_BYTES, MAX_PIXELS
from facedenoise.embedding import tiff_with_alpha
from facedenoise.errors import FaceDenoiseError
from facedenoise.exif import embed_exif, exif_block, is_unreadable
from facedenoise.fileio import atomic_write_bytes
from facedenoise.icc import embed_icc_profile

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
# Image formats it does not write (GIF is read when named): a name ending in one is still
# an image file the user meant, never a folder to make.
UNWRITTEN_IMAGE_EXTENSIONS = (".gif", ".pbm", ".pgm", ".ppm", ".pnm", ".jp2", ".exr",
                              ".hdr", ".avif", ".heic", ".heif")
_EIGHT_BIT_ONLY = (".jpg", ".jpeg", ".webp", ".bmp")
_NO_ALPHA = (".jpg", ".jpeg")
_EXIF_ORIENTATION_TAG = 0x0112
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*")
_TIFF_BITS_PER_SAMPLE = 258
_EXIF_MARKERS = (b"Exif", b"eXIf", b"EXIF", b"Raw profile type exif")
# Float samples may overshoot [0, 1] by rounding; anything further is a scaling mistake.
_FLOAT_TOLERANCE = 1e-3
_READ_CHUNK = 1 << 20  # bytes per read() of a file or archive member

# Why a file is not used (ImageError.kind); prepare records these in its manifest.
UNREADABLE = "unreadable"
EMPTY = "empty"
TOO_LARGE = "too_large"
NOT_A_REGULAR_FILE = "not_a_regular_file"


class ImageError(FaceDenoiseError):
    """A file or buffer that cannot be used as an image; the message names it and says why.

    kind: UNREADABLE (corrupt, unsupported, an I/O error), EMPTY, TOO_LARGE (over max_pixels
    or max_bytes) or NOT_A_REGULAR_FILE (a folder, pipe, device or socket).
    """

    def __init__(self, message: str, kind: str = UNREADABLE):
        super().__init__(message)
        self.kind = kind


@dataclass
class LoadedImage:
    """A decoded image.

    pixels: float32 array HxWx3, RGB, in [0, 1] (grey images are repeated to three channels).
    alpha: the untouched alpha channel (HxW, stored dtype) or None.
    grey: the stored image had one colour channel (with or without alpha).
    dtype: the stored sample type, `uint8`, `uint16` or `float32`.
    """

    pixels: np.ndarray
    alpha: np.ndarray | None
    grey: bool
    dtype: str


@dataclass(frozen=True)
class ImageHeader:
    """What an image file declares before any pixel is decoded.

    width, height: as stored (before the EXIF orientation is applied).
    orientation: the EXIF orientation, 1-8 (1 when absent or unreadable).
    mode: PIL's mode name ("RGB", "LA", "CMYK", "I;16", ...).
    """

    width: int
    height: int
    orientation: int
    mode: str

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def upright_size(self) -> tuple[int, int]:
        """(height, width) as displayed, after the orientation turns it (5-8: by 90 degrees)."""
        if self.orientation in (5, 6, 7, 8):
            return self.width, self.height
        return self.height, self.width


def _scale_of(array: np.ndarray) -> float:
    if array.dtype == np.uint8:
        return 255.0
    if array.dtype == np.uint16:
        return 65535.0
    return 1.0


def to_float(stored: np.ndarray) -> np.ndarray:
    """Stored samples (uint8, uint16 or float) as a new float32 array of the same shape:
    integers scaled to [0, 1] (x / 255 or x / 65535), floats copied as they are."""
    values = stored.astype(np.float32)
    if stored.dtype in (np.uint8, np.uint16):
        values *= np.float32(1.0 / _scale_of(stored))
    return values


# --- Keeping native decoders quiet --------------------------------------------------------------

# libpng and libjpeg print their complaints about a corrupt file straight to file descriptor 2,
# past Python. While any decode runs, fd 2 points at a scratch file; what others wrote there
# meanwhile (a progress bar, a log line from another thread) is copied back, decoder noise is not.
_DECODER_NOISE = re.compile(
    rb"(libpng (error|warning)|Corrupt JPEG data|Premature end of JPEG|Invalid SOS|"
    rb"Inconsistent progression|Unsupported marker|Warning: unknown JFIF|Invalid JPEG)"
)


class _QuietStderr:
    """Reference-counted redirection of fd 2, safe to enter from several threads at once."""

    def __init__(self):
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: int | None = None  # the real fd 2 while redirected
        self._scratch: BinaryIO | None = None  # kept for the process: cheap to reuse
        self._replayed = 0  # bytes of the scratch file already copied back
        self._opencv_level = None

    def __enter__(self):
        with self._lock:
            if self._depth == 0:
                self._redirect()
            self._depth += 1

    def __exit__(self, *exc) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0:
                self._restore()
            elif self._saved is not None:
                self._replay()

    def _redirect(self) -> None:
        # OpenCV's own "[ERROR] ..." log lines for corrupt files: our exception says it better.
        self._opencv_level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
        if not hasattr(os, "pread"):  # Windows: leave fd 2 alone
            return
        try:
            if self._scratch is None:
                self._scratch = tempfile.TemporaryFile()
            self._saved = os.dup(2)
            os.dup2(self._scratch.fileno(), 2)
        except OSError:  # no fd 2 at all (a daemon): nothing to protect
            self._saved = None

    def _replay(self) -> None:
        """Copy what others wrote to fd 2 meanwhile to the real fd 2, without decoder noise."""
        scratch = self._scratch.fileno()
        written = os.pread(scratch, os.fstat(scratch).st_size - self._replayed, self._replayed)
        self._replayed += len(written)
        kept = b"".join(
            line for line in written.splitlines(keepends=True) if not _DECODER_NOISE.match(line)
        )
        while kept:
            kept = kept[os.write(self._saved, kept) :]

    def _restore(self) -> None:
        cv2.utils.logging.setLogLevel(self._opencv_level)
        if self._saved is None:
            return
        os.dup2(self._saved, 2)  # from here on, nothing more lands in the scratch file
        self._replay()
        os.close(self._saved)
        self._saved = None
        os.ftruncate(self._scratch.fileno(), 0)
        os.lseek(self._scratch.fileno(), 0, os.SEEK_SET)
        self._replayed = 0


_quiet_decoders = _QuietStderr()


def _pil():
    """PIL.Image, with the warnings it raises about hostile files silenced (sizes are checked
    here against max_pixels, and a file's problems are reported as ImageError)."""
    from PIL import Image

    warnings.filterwarnings("ignore", module=r"PIL(\.|$)")
    return Image


# --- Reading bytes ------------------------------------------------------------------------------


def read_limited(stream: BinaryIO, name: str, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """Everything `stream` holds, read in 1 MiB chunks; raises ImageError (TOO_LARGE) as soon as
    it passes `max_bytes`, so that an archive bomb is never held whole."""
    chunks, total = [], 0
    while chunk := stream.read(_READ_CHUNK):
        total += len(chunk)
        if total > max_bytes:
            raise _too_many_bytes(name, max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_many_bytes(name: str, max_bytes: int, size: int | None = None) -> ImageError:
    size_text = f" ({size:,} bytes)" if size is not None else ""
    return ImageError(
        f"{name} is larger{size_text} than the {max_bytes:,}-byte limit for one image.", TOO_LARGE
    )


def check_byte_size(size: int, name: str, max_bytes: int = MAX_FILE_BYTES) -> None:
    """Raise ImageError (TOO_LARGE) when a file or archive member declares over `max_bytes`."""
    if size > max_bytes:
        raise _too_many_bytes(name, max_bytes, size)


def check_regular_file(
    path: Path, max_bytes: int | None = MAX_FILE_BYTES, name: str | None = None
) -> os.stat_result:
    """Raise ImageError unless `path` (after symlinks) is a regular file of at most `max_bytes`
    (None: any size). Nothing is opened: a FIFO would block, a device could stream forever.
    name: how messages call the file (default: the path)."""
    name = name or str(path)
    try:
        info = os.stat(path)
    except OSError as error:
        raise ImageError(f"Cannot read {name}: {error.strerror or error}.") from error
    if not stat.S_ISREG(info.st_mode):
        raise ImageError(
            f"{name} is not a regular file (a folder, pipe, device or socket); only image "
            "files are read.",
            NOT_A_REGULAR_FILE,
        )
    if max_bytes is not None:
        check_byte_size(info.st_size, name or str(path), max_bytes)
    return info


def read_file_bytes(path: Path, max_bytes: int = MAX_FILE_BYTES, name: str | None = None) -> bytes:
    """The bytes of an image file, refusing (ImageError) anything but a regular file of at most
    `max_bytes`; opened non-blocking, so that a file swapped for a pipe cannot hang the read.
    name: how messages call the file (default: the path)."""
    name = name or str(path)
    check_regular_file(path, max_bytes, name)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        with os.fdopen(os.open(path, flags), "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise ImageError(f"{name} is not a regular file.", NOT_A_REGULAR_FILE)
            return read_limited(handle, name, max_bytes)
    except OSError as error:
        raise ImageError(f"Cannot read {name}: {error.strerror or error}.") from error


# --- Headers ------------------------------------------------------------------------------------


def _may_hold_exif(data: bytes) -> bool:
    """False when `data` surely has no EXIF block (JPEG APP1, PNG eXIf or raw-profile text,
    WebP EXIF chunk); a cheap byte search before asking PIL for the orientation."""
    return any(marker in data for marker in _EXIF_MARKERS)


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_MODES = {0: "L", 2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}  # by IHDR colour type


def png_ihdr(data: bytes) -> tuple[int, int, int, int, int] | None:
    """(width, height, bit depth, colour type, interlace) from a PNG's IHDR chunk, or None
    when `data` does not start like a PNG."""
    if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR" or len(data) < 29:
        return None
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    return width, height, depth, colour_type, interlace


def read_header(
    source: bytes | Path, name: str | None = None, *, max_pixels: int = MAX_PIXELS
) -> ImageHeader:
    """Read an image's size, mode and EXIF orientation without decoding its pixels.

    source: encoded bytes, or a path (only the header is read; it must be a regular file).
    max_pixels: larger images (width x height as declared) raise ImageError (TOO_LARGE)
        before anything else is read.
    Raises ImageError (UNREADABLE) for data no decoder recognises. A malformed EXIF block
    only loses the orientation (1): the pixels are still readable.
    """
    Image = _pil()
    if isinstance(source, bytes | bytearray | memoryview):
        name, opened, exif_possible = name or "image", io.BytesIO(source), _may_hold_exif(source)
        ihdr = png_ihdr(source)
        if ihdr is not None and not exif_possible:  # most PNGs: no need to ask Pillow
            width, height, _, colour_type, _ = ihdr
            if width * height > max_pixels:
                raise _too_many_pixels(name, width, height, max_pixels)
            return ImageHeader(width, height, 1, _PNG_MODES.get(colour_type, ""))
    else:
        check_regular_file(Path(source))
        name, opened, exif_possible = name or str(source), source, True
    try:
        with Image.open(opened) as image:
            width, height = image.size
            mode = image.mode
            if width * height > max_pixels:
                raise _too_many_pixels(name, width, height, max_pixels)
            orientation = _orientation(image) if exif_possible else 1
    except Image.DecompressionBombError as error:  # Pillow's own ceiling, above MAX_PIXELS
        declared = re.search(r"\((\d+) pixels\)", str(error))
        size = f" ({int(declared.group(1)):,} pixels)" if declared else ""
        limit = min(max_pixels, largest_max_pixels())
        raise ImageError(
            f"{name} is larger{size} than the {limit:,}-pixel limit (--max-pixels).", TOO_LARGE
        ) from None
    except ImageError:
        raise
    except Exception:  # noqa: BLE001 (a parser on hostile bytes can raise anything)
        return _tiff_header(source, name, max_pixels)
    return ImageHeader(width, height, orientation, mode)


def _tiff_header(source, name: str, max_pixels: int) -> ImageHeader:
    """The size of a TIFF that Pillow cannot open (float samples, say), read from its first
    directory; OpenCV decodes those and applies their orientation itself."""
    if not isinstance(source, bytes | bytearray | memoryview):
        with open(source, "rb") as handle:
            source = handle.read(1 << 16)  # where writers put the first directory
    try:
        width, height = _tiff_size(bytes(source))
    except (struct.error, ValueError, KeyError):
        raise _unreadable(name) from None
    if width * height > max_pixels:
        raise _too_many_pixels(name, width, height, max_pixels)
    return ImageHeader(width, height, 1, "")


def _tiff_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the first directory of a classic TIFF or a BigTIFF."""
    if data[:2] not in (b"II", b"MM"):
        raise ValueError("not a TIFF")
    order = "<" if data[:2] == b"II" else ">"
    (version,) = struct.unpack_from(order + "H", data, 2)
    if version == 42:  # offsets and counts of 4 bytes, 12-byte entries
        offset_format, count_format, entry_size = "I", "H", 12
        (directory,) = struct.unpack_from(order + "I", data, 4)
    elif version == 43:  # BigTIFF: 8-byte offsets, 20-byte entries
        offset_format, count_format, entry_size = "Q", "Q", 20
        (directory,) = struct.unpack_from(order + "Q", data, 8)
    else:
        raise ValueError("not a TIFF")
    (entries,) = struct.unpack_from(order + count_format, data, directory)
    first = directory + struct.calcsize(count_format)
    value_formats = {3: "H", 4: "I", 16: "Q"}  # SHORT, LONG, LONG8
    sizes = {}
    for index in range(min(entries, 4096)):
        start = first + index * entry_size
        tag, kind = struct.unpack_from(order + "HH", data, start)
        value_at = start + 4 + struct.calcsize(offset_format)
        if tag in (256, 257) and kind in value_formats:  # ImageWidth, ImageLength
            (sizes[tag],) = struct.unpack_from(order + value_formats[kind], data, value_at)
    return sizes[256], sizes[257]


def largest_max_pixels() -> int:
    """The largest useful max_pixels: Pillow, which reads the headers, refuses images over
    twice its MAX_IMAGE_PIXELS (178,956,970 pixels by default) as decompression bombs."""
    return 2 * _pil().MAX_IMAGE_PIXELS


def check_max_pixels(max_pixels: int, option: str = "--max-pixels") -> None:
    """Raise FaceDenoiseError unless `max_pixels` is a whole number in [1, largest_max_pixels()]."""
    largest = largest_max_pixels()
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, int):
        raise FaceDenoiseError(f"{option} must be a whole number of pixels, not {max_pixels!r}.")
    if not 1 <= max_pixels <= largest:
        raise FaceDenoiseError(
            f"{option} must be between 1 and {largest:,} (the most Pillow reads), not "
            f"{max_pixels:,}."
        )


def _orientation(image) -> int:
    try:
        orientation = int(image.getexif().get(_EXIF_ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 (malformed EXIF: shown as stored, like most viewers do)
        return 1
    return orientation if 1 <= orientation <= 8 else 1


def _too_many_pixels(name: str, width: int, height: int, max_pixels: int) -> ImageError:
    return ImageError(
        f"{name} is {width}x{height} ({width * height:,} pixels), above the {max_pixels:,}-pixel "
        "limit (--max-pixels).",
        TOO_LARGE,
    )


def _unreadable(name: str) -> ImageError:
    return ImageError(f"{name} is not a readable image (corrupt or unsupported format).")


# --- Decoding -----------------------------------------------------------------------------------


def apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Rotate/flip `array` (HxW[xC]) so that it displays upright for an EXIF orientation."""
    transforms = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1, :],
        5: lambda a: np.swapaxes(a, 0, 1),
        6: lambda a: np.swapaxes(a, 0, 1)[:, ::-1],
        7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],
        8: lambda a: np.swapaxes(a, 0, 1)[::-1, :],
    }
    transform = transforms.get(orientation)
    return np.ascontiguousarray(transform(array)) if transform else array


def _opencv_decode(data: bytes, name: str, flags: int) -> np.ndarray:
    try:
        with _quiet_decoders:
            stored = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except Exception:  # noqa: BLE001 (cv2.error, MemoryError: one unusable file)
        raise _unreadable(name) from None
    if stored is None or stored.size == 0:
        raise _unreadable(name)
    return stored


def _pillow_rgba_tiff(data: bytes) -> np.ndarray | None:
    """An 8-bit RGBA TIFF's samples as stored, upright, or None when Pillow cannot read it.

    OpenCV reads these through libtiff's RGBA interface, which multiplies the colour by an
    unassociated alpha (as Pillow, GIMP and Photoshop write it): semi-transparent pixels came
    back darker, up to 253 of 255 levels, and were written so."""
    try:
        with _pil().open(io.BytesIO(data)) as image:
            if set(image.tag_v2.get(_TIFF_BITS_PER_SAMPLE, ())) != {8}:
                return None  # Pillow reads 16-bit RGBA as 8-bit; OpenCV reads it as stored
            stored = np.asarray(image)
            # Pillow turns a TIFF upright as it loads and then drops the tag; what is left
            # of it (1 after that) still needs applying.
            orientation = _orientation(image)
    except Exception:  # noqa: BLE001 (Pillow raises many types; OpenCV is tried next)
        return None
    if stored.dtype != np.uint8 or stored.ndim != 3 or stored.shape[2] != 4:
        return None
    return np.ascontiguousarray(apply_orientation(stored, orientation))


def decode_stored(data: bytes, name: str = "image", *, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Decode encoded bytes to the stored array, upright, in RGB order.

    Returns HxW (grey), HxWx2 (grey + alpha), HxWx3 (RGB) or HxWx4 (RGBA), of dtype uint8,
    uint16 or float32. The declared size is checked against `max_pixels` before decoding.
    Raises ImageError (a FaceDenoiseError; see its `kind`) for empty, truncated, unsupported
    or oversized data, whatever the decoder raised.
    """
    if not data:
        raise ImageError(f"{name} is empty (0 bytes).", EMPTY)
    header = read_header(data, name, max_pixels=max_pixels)
    if data[:4] in _TIFF_MAGIC and header.mode == "RGBA":
        rgba = _pillow_rgba_tiff(data)
        if rgba is not None:
            return rgba
    stored = _opencv_decode(data, name, cv2.IMREAD_UNCHANGED)
    if stored.shape[0] * stored.shape[1] > max_pixels:  # the decoder disagreed with the header
        raise _too_many_pixels(name, stored.shape[1], stored.shape[0], max_pixels)
    if stored.dtype not in (np.uint8, np.uint16, np.float32):
        raise ImageError(f"{name} has unsupported sample type {stored.dtype}.")
    if header.mode == "CMYK" and stored.ndim == 3 and stored.shape[2] == 4:
        # Unchanged CMYK (print TIFFs) would pass for RGBA; let OpenCV convert it to colour.
        stored = _opencv_decode(data, name, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if stored.ndim == 3 and stored.shape[2] == 1:
        stored = stored[:, :, 0]
    if stored.ndim == 3 and stored.shape[2] == 3:
        stored = cv2.cvtColor(stored, cv2.COLOR_BGR2RGB)
    elif stored.ndim == 3 and stored.shape[2] == 4:
        # OpenCV expands grey + alpha to BGRA; keep it grey so it is written back as grey.
        rgba = cv2.COLOR_BGRA2RGBA
        stored = stored[:, :, [0, 3]] if header.mode == "LA" else cv2.cvtColor(stored, rgba)
    elif stored.ndim != 2:
        raise ImageError(f"{name} has {stored.shape[2]} channels; expected 1, 3 or 4.")
    if data[:4] in _TIFF_MAGIC:
        return np.ascontiguousarray(stored)  # OpenCV already applies a TIFF's orientation tag
    return apply_orientation(stored, header.orientation)


def image_from_array(stored: np.ndarray, name: str = "array", check_range: bool = False):
    """A LoadedImage from a stored-layout array (HxW, HxWx1, HxWx2, HxWx3 or HxWx4, RGB order).

    uint8 and uint16 are scaled to [0, 1]; float arrays are taken as [0, 1] and clipped. With
    `check_range`, float samples outside [0, 1] (beyond rounding) raise FaceDenoiseError
    instead, since they usually mean a 0-255 array passed as float.
    """
    stored = np.asarray(stored)
    if stored.ndim == 3 and stored.shape[2] == 1:
        stored = stored[:, :, 0]
    channels = 1 if stored.ndim == 2 else stored.shape[2] if stored.ndim == 3 else 0
    if channels not in (1, 2, 3, 4) or stored.shape[0] == 0 or stored.shape[1] == 0:
        raise FaceDenoiseError(
            f"{name} has shape {stored.shape}; expected HxW, HxWx1, HxWx2, HxWx3 or HxWx4."
        )
    if stored.dtype not in (np.uint8, np.uint16) and not np.issubdtype(stored.dtype, np.floating):
        raise FaceDenoiseError(
            f"{name} has sample type {stored.dtype}; pass uint8, uint16 or float in [0, 1]."
        )
    alpha = None
    if channels in (2, 4):
        alpha, stored = stored[:, :, -1].copy(), stored[:, :, :-1]
    grey = channels in (1, 2)
    colour = stored if stored.ndim == 2 else stored[:, :, 0] if grey else stored
    pixels = to_float(colour)  # always a copy: the caller's array is never changed
    if colour.dtype in (np.uint8, np.uint16):
        dtype = str(colour.dtype)
    else:
        _check_float_range(pixels, name, check_range)
        np.clip(pixels, 0.0, 1.0, out=pixels)
        dtype = "float32"
    if grey:
        pixels = np.repeat(pixels[:, :, None], 3, axis=2)
    return LoadedImage(pixels=pixels, alpha=alpha, grey=grey, dtype=dtype)


def _check_float_range(pixels: np.ndarray, name: str, strict: bool) -> None:
    if not np.isfinite(pixels).all():
        raise FaceDenoiseError(f"{name} contains NaN or infinite values.")
    if strict and (pixels.min() < -_FLOAT_TOLERANCE or pixels.max() > 1 + _FLOAT_TOLERANCE):
        raise FaceDenoiseError(
            f"{name} holds floats in [{pixels.min():.3g}, {pixels.max():.3g}]; float images must "
            "lie in [0, 1] (divide 8-bit values by 255, or store them as 8-bit)."
        )


def array_from_image(
    pixels: np.ndarray, *, dtype: str, grey: bool = False, alpha: np.ndarray | None = None
) -> np.ndarray:
    """Inverse of `image_from_array`: float [0, 1] RGB (HxWx3) to the stored layout.

    Returns HxW (grey), HxWx2 (grey + alpha), HxWx3 or HxWx4 in `dtype` (uint8, uint16 or
    float32). Grey is the luma of the RGB pixels; alpha is converted only when its sample type
    differs from `dtype`, otherwise it is kept bit for bit.
    """
    if grey:
        luma = cv2.cvtColor(np.ascontiguousarray(pixels, np.float32), cv2.COLOR_RGB2GRAY)
        stored = quantize(luma, dtype)
    else:
        stored = quantize(pixels, dtype)
    if alpha is None:
        return stored
    return np.dstack([stored, _match_depth(alpha, stored.dtype)])


def read_stored(
    path: Path, *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_FILE_BYTES
) -> np.ndarray:
    """Read an image file as its stored array (see `decode_stored`).

    Raises ImageError for anything but a regular file of at most `max_bytes` that decodes to
    at most `max_pixels` pixels (missing, a pipe or device, corrupt, oversized).
    """
    path = Path(path)
    return decode_stored(read_file_bytes(path, max_bytes), str(path), max_pixels=max_pixels)


@dataclass(frozen=True, eq=False)  # holds an array: no field-wise ==
class StoredFile:
    """A file's pixels as stored (`read_stored`) and what its output should carry: the ICC
    colour profile and the EXIF block (`facedenoise.icc`, `facedenoise.exif`), None without;
    `exif_unreadable` when the file holds an EXIF block that could not be read (it is left
    out, and `denoise` says so); `frames`, the frames or pages it holds (an animated GIF,
    WebP or PNG, a multi-page TIFF): only the first is decoded, and `denoise` says so."""

    stored: np.ndarray
    icc_profile: bytes | None = None
    exif: bytes | None = None
    exif_unreadable: bool = False
    frames: int = 1


def read_stored_with_metadata(
    path: Path, *, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_FILE_BYTES
) -> StoredFile:
    """`read_stored`, with the file's ICC profile and EXIF block, from one read of the file."""
    path = Path(path)
    data = read_file_bytes(path, max_bytes)
    stored = decode_stored(data, str(path), max_pixels=max_pixels)
    return StoredFile(stored, *_embedded_metadata(data))


def icc_profile_of(data: bytes) -> bytes | None:
    """The ICC profile embedded in encoded image bytes, or None (none, or one Pillow cannot
    read: the profile is optional, and `decode_stored` reports a broken file)."""
    return _embedded_metadata(data)[0]


def _embedded_metadata(data: bytes) -> tuple[bytes | None, bytes | None, bool, int]:
    """(ICC profile, EXIF block, whether an EXIF block was there but unreadable, frames) of
    encoded image bytes, profile and block None when absent or unreadable."""
    try:
        with _pil().open(io.BytesIO(data)) as image:
            profile = image.info.get("icc_profile")
            exif = image.info.get("exif") if _may_hold_exif(data) else None
            frames = _frame_count(image)
    except Exception:  # noqa: BLE001 - Pillow raises many types for odd headers
        return None, None, False, 1
    # A PNG text chunk named like them reaches `info` as a str: not a profile or a block.
    profile = bytes(profile) if isinstance(profile, bytes | bytearray) and profile else None
    return profile, exif_block(exif), is_unreadable(exif), frames


# Formats whose extra frames are images a user would miss. A camera JPEG with a preview in
# an MPF block opens in Pillow as MPO with two frames: still one photo.
_MULTI_FRAME_FORMATS = {"GIF", "PNG", "WEBP", "TIFF"}


def _frame_count(image) -> int:
    """The frames or pages an opened image holds, 1 when it cannot tell (a GIF is counted
    by walking its frames, which a truncated one may not survive)."""
    if image.format not in _MULTI_FRAME_FORMATS:
        return 1
    try:
        return max(1, int(getattr(image, "n_frames", 1)))
    except Exception:  # noqa: BLE001 - the first frame decodes all the same
        return 1


def decode_image(data: bytes, name: str = "image", *, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Decode encoded bytes into a LoadedImage (see its docstring for value ranges)."""
    return image_from_array(decode_stored(data, name, max_pixels=max_pixels), name)


def read_image(path: Path, *, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Read an image file (float32 RGB [0, 1] pixels); raises ImageError as `read_stored` does."""
    return image_from_array(read_stored(path, max_pixels=max_pixels), str(path))


def quantize(pixels: np.ndarray, dtype: str = "uint8") -> np.ndarray:
    """Float [0, 1] -> uint8 or uint16 with rounding (float32 passes through, clipped)."""
    scaled = np.clip(pixels, 0.0, 1.0).astype(np.float32, copy=False)
    if dtype == "float32":
        return scaled
    # In place on the one float copy: a 24-megapixel photo needs no further 288 MB buffers.
    scaled *= np.float32(65535.0 if dtype == "uint16" else 255.0)
    np.rint(scaled, out=scaled)
    return scaled.astype(dtype)


def encode_image(
    pixels: np.ndarray,
    extension: str,
    *,
    dtype: str = "uint8",
    grey: bool = False,
    alpha: np.ndarray | None = None,
    jpeg_quality: int = 95,
) -> bytes:
    """Encode float [0, 1] RGB pixels (HxWx3) for a file extension like `.png`.

    Formats that hold only 8 bits get 8-bit samples; float data becomes 16-bit in PNG and
    stays float in TIFF. Alpha is dropped for JPEG, which cannot store it. Grey + alpha is
    written as RGBA with equal colour channels (OpenCV writes no two-channel files).
    `jpeg_quality` (1-100) applies to JPEG and WebP.
    """
    extension = _checked_extension(extension)
    if extension in _NO_ALPHA:
        alpha = None
    stored = array_from_image(pixels, dtype=_dtype_for(extension, dtype), grey=grey, alpha=alpha)
    return _encode(stored, extension, jpeg_quality)


def encode_stored(stored: np.ndarray, extension: str, *, jpeg_quality: int = 95) -> bytes:
    """Encode a stored-layout array (see `image_from_array`) for a file extension: the same
    bytes as `encode_image` of its pixels and layout. 8- and 16-bit arrays that the format
    holds as they are skip the float round trip (a 12-megapixel PNG: a quarter of a second
    less); anything else (float, HxWx1, alpha for JPEG, 16 bits for an 8-bit format) takes
    the float path, with its checks."""
    extension = _checked_extension(extension)
    stored = np.asarray(stored)
    has_alpha = stored.ndim == 3 and stored.shape[2] in (2, 4)
    direct = (
        stored.dtype in (np.uint8, np.uint16)
        and _dtype_for(extension, stored.dtype.name) == stored.dtype.name
        and (stored.ndim == 2 or (stored.ndim == 3 and stored.shape[2] in (2, 3, 4)))
        and not (has_alpha and extension in _NO_ALPHA)
    )
    if not direct:
        image = image_from_array(stored)
        return encode_image(image.pixels, extension, dtype=image.dtype, grey=image.grey,
                            alpha=image.alpha, jpeg_quality=jpeg_quality)
    return _encode(stored, extension, jpeg_quality)


def _checked_extension(extension: str) -> str:
    extension = extension.lower()
    if extension not in IMAGE_EXTENSIONS:
        raise FaceDenoiseError(
            f"Cannot write '{extension}' images; use one of {', '.join(IMAGE_EXTENSIONS)}."
        )
    return extension


def _dtype_for(extension: str, dtype: str) -> str:
    """The sample type a file of `extension` stores for `dtype` data."""
    if extension in _EIGHT_BIT_ONLY:
        return "uint8"
    if dtype == "float32" and extension == ".png":
        return "uint16"
    return dtype


def _encode(stored: np.ndarray, extension: str, jpeg_quality: int) -> bytes:
    if stored.ndim == 3 and stored.shape[2] == 2:
        stored = stored[:, :, [0, 0, 0, 1]]
    if stored.ndim == 3:
        code = cv2.COLOR_RGB2BGR if stored.shape[2] == 3 else cv2.COLOR_RGBA2BGRA
        stored = cv2.cvtColor(stored, code)
    params = []
    if extension in (".jpg", ".jpeg"):
        params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)]
    elif extension == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, int(jpeg_quality)]
    try:
        ok, encoded = cv2.imencode(extension, stored, params)
    except cv2.error as error:
        raise FaceDenoiseError(f"OpenCV could not encode a {extension} image: {error}") from error
    if not ok:
        raise FaceDenoiseError(f"OpenCV could not encode a {extension} image.")
    if extension in (".tif", ".tiff") and stored.ndim == 3 and stored.shape[2] == 4:
        return tiff_with_alpha(encoded.tobytes())
    return encoded.tobytes()


def _match_depth(alpha: np.ndarray, dtype) -> np.ndarray:
    """Alpha in the sample type of the colour channels (alpha values are otherwise kept)."""
    if alpha.dtype == dtype:
        return alpha
    return quantize(alpha.astype(np.float32) / _scale_of(alpha), str(np.dtype(dtype)))


def write_image(path: Path, pixels: np.ndarray, *, icc_profile: bytes | None = None,
                exif: bytes | None = None, **options) -> None:
    """Encode `pixels` (float [0, 1] RGB) by the path's extension and write it atomically.

    Keyword options are those of `encode_image`; `icc_profile` and `exif` (an EXIF block,
    its orientation set upright) are embedded in PNG and JPEG files (`facedenoise.icc`,
    `facedenoise.exif`).
    """
    path = Path(path)
    encoded = encode_image(pixels, path.suffix, **options)
    atomic_write_bytes(path, _with_metadata(encoded, path.suffix, icc_profile, exif))


def write_stored(path: Path, stored: np.ndarray, *, jpeg_quality: int = 95,
                 icc_profile: bytes | None = None, exif: bytes | None = None) -> None:
    """Encode a stored-layout array (`encode_stored`) by the path's extension and write it
    atomically, with `icc_profile` and `exif` as `write_image`."""
    path = Path(path)
    encoded = encode_stored(stored, path.suffix, jpeg_quality=jpeg_quality)
    atomic_write_bytes(path, _with_metadata(encoded, path.suffix, icc_profile, exif))


def _with_metadata(encoded: bytes, extension: str, icc_profile, exif) -> bytes:
    # The profile first: both go after a JPEG's APP0, so EXIF's APP1 ends up before APP2.
    return embed_exif(embed_icc_profile(encoded, extension, icc_profile), extension, exif)


def is_image_path(path: Path) -> bool:
    """True when `path` has one of the supported image extensions."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: Path, recursive: bool = True) -> list[Path]:
    """Image files under `folder`, sorted, hidden files skipped (and anything that is not a
    regular file: a pipe or device named like an image is never read)."""
    pattern = "**/*" if recursive else "*"
    return sorted(
        path
        for path in Path(folder).glob(pattern)
        if path.is_file() and is_image_path(path) and not path.name.startswith(".")
    )


@dataclass(frozen=True)
class FoundImage:
    """An image file named by a command-line argument.

    base: the folder argument it was found in, or the fixed leading folder of the glob that
    matched it, so that outputs can mirror `path.relative_to(base)`; None for a file named
    directly.
    """

    path: Path
    base: Path | None


def _glob_base(pattern: str) -> Path:
    """The leading folders of a glob pattern that hold no wildcard."""
    parts = Path(pattern).parts[:-1]
    fixed = list(itertools.takewhile(lambda part: not glob.has_magic(part), parts))
    return Path(*fixed) if fixed else Path(".")


def _expand(argument: str, recursive: bool) -> list[FoundImage]:
    """The images one argument names; a path that exists is a path, even with [ or * in it."""
    path = Path(argument)
    if path.is_dir():
        return [FoundImage(p, path) for p in list_images(path, recursive=recursive)]
    if path.exists():
        check_regular_file(path, None)  # a pipe or device named x.png: refused, not opened
        return [FoundImage(path, None)]
    paths = sorted(Path(p) for p in glob.glob(argument, recursive=True))
    if not paths:
        pattern = " (nor matches any file as a pattern)" if glob.has_magic(argument) else ""
        raise FaceDenoiseError(f"{argument} does not exist{pattern}; check the path.")
    base = _glob_base(argument)
    return [FoundImage(p, base) for p in paths if p.is_file() and is_image_path(p)]


def find_images(arguments: list[str], recursive: bool = False) -> list[FoundImage]:
    """Expand files, folders and glob patterns to image files, in order, without duplicates.

    Folders list their images (sub-folders too with `recursive`); globs may use `**`. An
    argument that exists as a path is never read as a pattern (`holiday [draft].png`).
    Raises FaceDenoiseError when an argument matches nothing, or names a pipe or device.
    """
    found: dict[Path, FoundImage] = {}
    for argument in arguments:
        matches = _expand(argument, recursive)
        if not matches:
            raise FaceDenoiseError(f"{argument} holds no images ({', '.join(IMAGE_EXTENSIONS)}).")
        for match in matches:
            found.setdefault(match.path, match)
    return list(found.values())
