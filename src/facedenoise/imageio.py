"""Read and write images of any common kind as float32 RGB in [0, 1].

This is the only module that converts between stored pixels (8/16-bit, grey, grey+alpha,
RGBA, BGR order in OpenCV) and the float [0, 1] RGB arrays used everywhere else, for files
(`read_image`, `write_image`) and for in-memory arrays (`image_from_array`, `array_from_image`).
"""

from __future__ import annotations

import contextlib
import glob
import io
import itertools
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facedenoise.errors import FaceDenoiseError
from facedenoise.fileio import atomic_path

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
_EIGHT_BIT_ONLY = (".jpg", ".jpeg", ".webp", ".bmp")
_NO_ALPHA = (".jpg", ".jpeg")
_EXIF_ORIENTATION_TAG = 0x0112
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*")
_EXIF_MARKERS = (b"Exif", b"eXIf", b"EXIF", b"Raw profile type exif")
# Float samples may overshoot [0, 1] by rounding; anything further is a scaling mistake.
_FLOAT_TOLERANCE = 1e-3


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


def _scale_of(array: np.ndarray) -> float:
    if array.dtype == np.uint8:
        return 255.0
    if array.dtype == np.uint16:
        return 65535.0
    return 1.0


def _header(data: bytes) -> tuple[int, str]:
    """The EXIF orientation (1-8, 1 when absent) and PIL's mode name of encoded `data`."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return int(image.getexif().get(_EXIF_ORIENTATION_TAG, 1)), image.mode
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return 1, ""


def _may_hold_exif(data: bytes) -> bool:
    """False when `data` surely has no EXIF block (JPEG APP1, PNG eXIf or raw-profile text,
    WebP EXIF chunk); a cheap byte search before asking PIL for the orientation."""
    return any(marker in data for marker in _EXIF_MARKERS)


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


@contextlib.contextmanager
def _quiet_opencv():
    # OpenCV logs its own "[ERROR] ..." lines for corrupt files; our exception says it better.
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def decode_stored(data: bytes, name: str = "image") -> np.ndarray:
    """Decode encoded bytes to the stored array, upright, in RGB order.

    Returns HxW (grey), HxWx2 (grey + alpha), HxWx3 (RGB) or HxWx4 (RGBA), of dtype uint8,
    uint16 or float32. Raises FaceDenoiseError for empty, truncated or unsupported data.
    """
    if not data:
        raise FaceDenoiseError(f"{name} is empty (0 bytes).")
    try:
        with _quiet_opencv():
            stored = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        stored = None
    if stored is None or stored.size == 0:
        raise FaceDenoiseError(f"{name} is not a readable image (corrupt or unsupported format).")
    if stored.dtype not in (np.uint8, np.uint16, np.float32):
        raise FaceDenoiseError(f"{name} has unsupported sample type {stored.dtype}.")
    # Parsing the header costs more than decoding a small PNG: only do it when it can matter.
    four_channels = stored.ndim == 3 and stored.shape[2] == 4
    orientation, mode = _header(data) if four_channels or _may_hold_exif(data) else (1, "")
    if mode == "CMYK" and stored.ndim == 3 and stored.shape[2] == 4:
        # Unchanged CMYK (print TIFFs) would pass for RGBA; let OpenCV convert it to colour.
        with _quiet_opencv():
            flags = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION  # applied below
            stored = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if stored.ndim == 3 and stored.shape[2] == 1:
        stored = stored[:, :, 0]
    if stored.ndim == 3 and stored.shape[2] == 3:
        stored = cv2.cvtColor(stored, cv2.COLOR_BGR2RGB)
    elif stored.ndim == 3 and stored.shape[2] == 4:
        # OpenCV expands grey + alpha to BGRA; keep it grey so it is written back as grey.
        stored = stored[:, :, [0, 3]] if mode == "LA" else cv2.cvtColor(stored, cv2.COLOR_BGRA2RGBA)
    elif stored.ndim != 2:
        raise FaceDenoiseError(f"{name} has {stored.shape[2]} channels; expected 1, 3 or 4.")
    if data[:4] in _TIFF_MAGIC:
        return np.ascontiguousarray(stored)  # OpenCV already applies a TIFF's orientation tag
    return apply_orientation(stored, orientation)


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
    pixels = colour.astype(np.float32)  # always a copy: the caller's array is never changed
    if colour.dtype in (np.uint8, np.uint16):
        pixels *= np.float32(1.0 / _scale_of(colour))
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
            "lie in [0, 1] (divide 8-bit values by 255, or pass the uint8 array itself)."
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


def read_stored(path: Path) -> np.ndarray:
    """Read an image file as its stored array (see `decode_stored`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise FaceDenoiseError(f"Cannot read {path}: {error.strerror or error}.") from error
    return decode_stored(data, str(path))


def decode_image(data: bytes, name: str = "image") -> LoadedImage:
    """Decode encoded bytes into a LoadedImage (see its docstring for value ranges)."""
    return image_from_array(decode_stored(data, name), name)


def read_image(path: Path) -> LoadedImage:
    """Read an image file; raises FaceDenoiseError when it is missing or unreadable."""
    return image_from_array(read_stored(path), str(path))


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
    extension = extension.lower()
    if extension not in IMAGE_EXTENSIONS:
        raise FaceDenoiseError(
            f"Cannot write '{extension}' images; use one of {', '.join(IMAGE_EXTENSIONS)}."
        )
    if extension in _EIGHT_BIT_ONLY:
        dtype = "uint8"
    elif dtype == "float32" and extension == ".png":
        dtype = "uint16"
    if extension in _NO_ALPHA:
        alpha = None
    stored = array_from_image(pixels, dtype=dtype, grey=grey, alpha=alpha)
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
    return encoded.tobytes()


def _match_depth(alpha: np.ndarray, dtype) -> np.ndarray:
    """Alpha in the sample type of the colour channels (alpha values are otherwise kept)."""
    if alpha.dtype == dtype:
        return alpha
    return quantize(alpha.astype(np.float32) / _scale_of(alpha), str(np.dtype(dtype)))


def write_image(path: Path, pixels: np.ndarray, **options) -> None:
    """Encode `pixels` (float [0, 1] RGB) by the path's extension and write it atomically.

    Keyword options are those of `encode_image`.
    """
    path = Path(path)
    data = encode_image(pixels, path.suffix, **options)
    with atomic_path(path) as temp_path:
        temp_path.write_bytes(data)


def is_image_path(path: Path) -> bool:
    """True when `path` has one of the supported image extensions."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: Path, recursive: bool = True) -> list[Path]:
    """Image files under `folder`, sorted, hidden files skipped."""
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


def find_images(arguments: list[str], recursive: bool = False) -> list[FoundImage]:
    """Expand files, folders and glob patterns to image files, in order, without duplicates.

    Folders list their images (sub-folders too with `recursive`); globs may use `**`.
    Raises FaceDenoiseError when an argument matches nothing.
    """
    found: dict[Path, FoundImage] = {}
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            matches = [FoundImage(p, path) for p in list_images(path, recursive=recursive)]
        elif path.is_file():
            matches = [FoundImage(path, None)]
        elif glob.has_magic(argument):
            base = _glob_base(argument)
            paths = sorted(Path(p) for p in glob.glob(argument, recursive=True))
            matches = [FoundImage(p, base) for p in paths if p.is_file() and is_image_path(p)]
        else:
            raise FaceDenoiseError(f"{argument} does not exist; check the path.")
        if not matches:
            raise FaceDenoiseError(f"{argument} holds no images ({', '.join(IMAGE_EXTENSIONS)}).")
        for match in matches:
            found.setdefault(match.path, match)
    return list(found.values())


def expand_inputs(arguments: list[str], recursive: bool = False) -> list[Path]:
    """Expand files, folders and glob patterns to image paths (see `find_images`)."""
    return [image.path for image in find_images(arguments, recursive=recursive)]
