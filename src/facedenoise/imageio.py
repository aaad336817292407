"""Read and write images of any common kind as float32 RGB in [0, 1].

This is the only module that converts between stored pixels (8/16-bit, grey, RGBA, BGR order
in OpenCV) and the float [0, 1] RGB arrays used everywhere else.
"""

from __future__ import annotations

import glob
import io
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facedenoise.errors import FaceDenoiseError
from facedenoise.fileio import atomic_path

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
_EIGHT_BIT_ONLY = (".jpg", ".jpeg", ".webp", ".bmp")
_EXIF_ORIENTATION_TAG = 0x0112


@dataclass
class LoadedImage:
    """A decoded image.

    pixels: float32 array HxWx3, RGB, in [0, 1] (grey images are repeated to three channels).
    alpha: the untouched alpha channel (HxW, stored dtype) or None.
    grey: the stored image had one channel.
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


def _exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8) stored in `data`, 1 when there is none."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return int(image.getexif().get(_EXIF_ORIENTATION_TAG, 1))
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return 1


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


def decode_stored(data: bytes, name: str = "image") -> np.ndarray:
    """Decode encoded bytes to the stored array (HxW, HxWx3 RGB or HxWx4 RGBA), upright.

    Raises FaceDenoiseError for empty, truncated or unsupported data.
    """
    if not data:
        raise FaceDenoiseError(f"{name} is empty (0 bytes).")
    stored = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if stored is None or stored.size == 0:
        raise FaceDenoiseError(f"{name} is not a readable image (corrupt or unsupported format).")
    if stored.dtype not in (np.uint8, np.uint16, np.float32):
        raise FaceDenoiseError(f"{name} has unsupported sample type {stored.dtype}.")
    if stored.ndim == 3 and stored.shape[2] == 1:
        stored = stored[:, :, 0]
    if stored.ndim == 3 and stored.shape[2] == 3:
        stored = cv2.cvtColor(stored, cv2.COLOR_BGR2RGB)
    elif stored.ndim == 3 and stored.shape[2] == 4:
        stored = cv2.cvtColor(stored, cv2.COLOR_BGRA2RGBA)
    elif stored.ndim != 2:
        raise FaceDenoiseError(f"{name} has {stored.shape[2]} channels; expected 1, 3 or 4.")
    return apply_orientation(stored, _exif_orientation(data))


def decode_image(data: bytes, name: str = "image") -> LoadedImage:
    """Decode encoded bytes into a LoadedImage (see its docstring for value ranges)."""
    stored = decode_stored(data, name)
    scale = _scale_of(stored)
    alpha = None
    if stored.ndim == 3 and stored.shape[2] == 4:
        alpha, stored = stored[:, :, 3].copy(), stored[:, :, :3]
    grey = stored.ndim == 2
    if grey:
        stored = np.repeat(stored[:, :, None], 3, axis=2)
    pixels = np.clip(stored.astype(np.float32) / scale, 0.0, 1.0)
    return LoadedImage(pixels=pixels, alpha=alpha, grey=grey, dtype=str(stored.dtype))


def read_image(path: Path) -> LoadedImage:
    """Read an image file; raises FaceDenoiseError when it is missing or unreadable."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise FaceDenoiseError(f"Cannot read {path}: {error.strerror or error}.") from error
    return decode_image(data, str(path))


def quantize(pixels: np.ndarray, dtype: str = "uint8") -> np.ndarray:
    """Float [0, 1] -> uint8 or uint16 with rounding (float32 passes through, clipped)."""
    pixels = np.clip(pixels, 0.0, 1.0)
    if dtype == "float32":
        return pixels.astype(np.float32)
    scale = 65535.0 if dtype == "uint16" else 255.0
    return np.rint(pixels * scale).astype(dtype)


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

    16-bit and float output falls back to 8-bit for formats that only hold 8 bits; alpha is
    dropped for JPEG and BMP, which cannot store it.
    """
    extension = extension.lower()
    if extension not in IMAGE_EXTENSIONS:
        raise FaceDenoiseError(
            f"Cannot write '{extension}' images; use one of {', '.join(IMAGE_EXTENSIONS)}."
        )
    if extension in _EIGHT_BIT_ONLY or (dtype == "float32" and extension == ".png"):
        dtype = "uint8"
    stored = quantize(pixels, dtype)
    if grey:
        stored = quantize(cv2.cvtColor(pixels.astype(np.float32), cv2.COLOR_RGB2GRAY), dtype)
    elif alpha is not None and extension not in (".jpg", ".jpeg", ".bmp"):
        alpha = _match_depth(alpha, stored.dtype)
        stored = cv2.cvtColor(np.dstack([stored, alpha]), cv2.COLOR_RGBA2BGRA)
    else:
        stored = cv2.cvtColor(stored, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)] if extension in (".jpg", ".jpeg") else []
    if extension == ".webp":
        params = [cv2.IMWRITE_WEBP_QUALITY, int(jpeg_quality)]
    ok, encoded = cv2.imencode(extension, stored, params)
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


def expand_inputs(arguments: list[str], recursive: bool = False) -> list[Path]:
    """Expand files, folders and glob patterns to image files, in order, without duplicates.

    Raises FaceDenoiseError when an argument matches nothing.
    """
    found: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            matches = list_images(path, recursive=recursive)
        elif path.is_file():
            matches = [path]
        elif glob.has_magic(argument):
            matches = sorted(Path(p) for p in glob.glob(argument, recursive=True))
            matches = [p for p in matches if p.is_file() and is_image_path(p)]
        else:
            raise FaceDenoiseError(f"{argument} does not exist; check the path.")
        if not matches:
            raise FaceDenoiseError(f"{argument} holds no images ({', '.join(IMAGE_EXTENSIONS)}).")
        found.extend(matches)
    return list(dict.fromkeys(found))
