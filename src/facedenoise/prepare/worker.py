"""The work done in the pool: examine one candidate (read, hash, decode, stage its clean PNG)
and write the fixed noisy copy of a selected image.

Everything here runs in a worker process (or in the calling process when workers=1) and
reaches the run's settings through the context set once per process.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facedenoise.config import MAX_FILE_BYTES, MAX_PIXELS
from facedenoise.dataset import NOISY_SPLITS, clean_path, noisy_path
from facedenoise.errors import FaceDenoiseError
from facedenoise.imageio import (
    UNREADABLE,
    ImageError,
    decode_stored,
    png_ihdr,
    quantize,
    to_float,
)
from facedenoise.prepare.sources import FILE_NAME, READ_ERRORS, Candidate, Source, read_candidate

STAGING_NAME = ".prepare-staging"  # images being written, and those awaiting an id
TOO_SMALL = "too_small"  # a skip kind of prepare's own (the others come from imageio)


@dataclass(frozen=True)
class Context:
    """What every worker needs; sent once when the worker starts."""

    source: Source
    out: str
    size: int
    allow_upscale: bool
    noise_factor: float
    seed: int
    max_pixels: int = MAX_PIXELS
    max_bytes: int = MAX_FILE_BYTES

    @property
    def staging(self) -> str:
        return os.path.join(self.out, STAGING_NAME)


@dataclass(frozen=True)
class Job:
    rank: int  # position in the seeded order
    candidate: Candidate
    previous: dict | None = None  # this candidate's record from an earlier run, to verify
    data: bytes | ImageError | None = None  # already read (tar-stream), or why it could not be


@dataclass(frozen=True)
class Examined:
    """A candidate after a worker looked at it."""

    rank: int
    name: str
    source_sha256: str | None = None
    kind: str | None = None  # why it is skipped, in a word (ImageError kinds, TOO_SMALL)
    reason: str | None = None  # ... and in a sentence; both None when usable
    staged_sha256: str | None = None  # sha256 of its clean PNG, staged as <rank>.png
    reused: dict | None = None  # the earlier record, its clean file verified (and staged)
    noisy_intact: bool = False  # the earlier record's noisy file is verified too


_context: Context | None = None  # set once per worker process


def set_context(context: Context) -> None:
    global _context
    _context = context


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def encode_png(rgb: np.ndarray, noisy: bool = False) -> bytes:
    """8-bit RGB HxWx3 -> PNG bytes (deterministic for a given OpenCV build).

    Encoding is the largest cost of prepare, so the settings are chosen per content: faces
    compress best with the Paeth filter at zlib level 1 (as small as level 3, twice as fast),
    noisy images barely compress at all and Huffman coding alone, unfiltered, gives the
    smallest files fastest (measured on the bundled faces).
    """
    if noisy:
        params = [
            cv2.IMWRITE_PNG_STRATEGY,
            cv2.IMWRITE_PNG_STRATEGY_HUFFMAN_ONLY,
            cv2.IMWRITE_PNG_FILTER,
            cv2.IMWRITE_PNG_FILTER_NONE,
        ]
    else:
        params = [
            cv2.IMWRITE_PNG_COMPRESSION,
            1,
            cv2.IMWRITE_PNG_FILTER,
            cv2.IMWRITE_PNG_FILTER_PAETH,
        ]
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise FaceDenoiseError("OpenCV could not encode a PNG image.")
    return encoded.tobytes()


def clean_image(
    data: bytes, size: int, allow_upscale: bool, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """Encoded image bytes -> uint8 RGB `size`x`size`: upright, centre-cropped, resized.

    Grey becomes RGB, alpha is dropped, 16-bit and float are rounded to 8-bit. Shrinking uses
    INTER_AREA. Raises ImageError for data that does not decode or declares over `max_pixels`
    pixels, and (kind TOO_SMALL) for images smaller than `size` unless `allow_upscale`.
    """
    stored = decode_stored(data, FILE_NAME, max_pixels=max_pixels)  # upright, RGB order
    if stored.ndim == 3:  # drop alpha
        stored = stored[:, :, 0] if stored.shape[2] == 2 else stored[:, :, :3]
    height, width = stored.shape[:2]
    side = min(height, width)
    if side < size and not allow_upscale:
        raise ImageError(
            f"{width}x{height} is smaller than --size {size} (--allow-upscale keeps it).",
            TOO_SMALL,
        )
    top, left = (height - side) // 2, (width - side) // 2
    square = stored[top : top + side, left : left + side]
    if square.dtype != np.uint8:  # resize first, round once
        square = to_float(square)
    if side != size:
        interpolation = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
        square = cv2.resize(square, (size, size), interpolation=interpolation)
    rgb = square if square.dtype == np.uint8 else quantize(square, "uint8")
    return cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB) if rgb.ndim == 2 else np.ascontiguousarray(rgb)


_NOT_PLAIN_MARKERS = (b"tRNS", b"eXIf", b"Exif", b"EXIF", b"exif")  # exif: ImageMagick's text


def _already_clean(data: bytes, size: int) -> bool:
    """True for a PNG that decodes to exactly the clean image: 8-bit RGB, `size` square.

    Read from the IHDR chunk: bit depth 8, colour type 2 (RGB), no interlacing. A tRNS chunk
    (a transparent colour, read back as alpha) or any EXIF block (which may rotate the image)
    rules it out; the byte search may rarely hit compressed data, which costs one re-encode.
    """
    return png_ihdr(data) == (size, size, 8, 2, 0) and not any(
        marker in data for marker in _NOT_PLAIN_MARKERS
    )


def _file_holds(path: Path, sha256: str | None) -> bool:
    try:
        return _sha256(path.read_bytes()) == sha256
    except OSError:
        return False


def _stage_earlier(rank: int, record: dict) -> bool:
    """Stage the clean file of an earlier record if it still holds what the record says.

    A hard link, not a copy: cheap, and it keeps the verified content even if the main process
    meanwhile renames another image onto the old name (ids can shift when the source changed).
    """
    earlier = clean_path(_context.out, record["split"], record["id"])
    staged = Path(_context.staging, f"{rank}.png")
    try:
        os.link(earlier, staged)
    except FileNotFoundError:
        return False
    except OSError:  # a file system without hard links
        try:
            shutil.copyfile(earlier, staged)
        except OSError:
            return False
    if _file_holds(staged, record["sha256"]):
        return True
    staged.unlink()
    return False


def _read(job: Job) -> bytes:
    if isinstance(job.data, ImageError):
        raise job.data
    if job.data is not None:
        return job.data
    return read_candidate(_context.source, job.candidate, _context.max_bytes)


def examine(job: Job) -> Examined:
    """Read, hash and (unless an earlier run already did) decode and stage one candidate."""
    context, name = _context, job.candidate.name
    try:
        data = _read(job)
    except ImageError as error:
        return Examined(job.rank, name, kind=error.kind, reason=str(error))
    except READ_ERRORS as error:
        return Examined(job.rank, name, kind=UNREADABLE, reason=f"unreadable ({error}).")
    found = Examined(job.rank, name, _sha256(data))
    previous = job.previous
    if previous is not None and previous["source_sha256"] == found.source_sha256:
        if _stage_earlier(job.rank, previous):
            noisy_intact = previous["split"] in NOISY_SPLITS and _file_holds(
                noisy_path(context.out, previous["split"], previous["id"]),
                previous["noisy_sha256"],
            )
            return dataclasses.replace(
                found, staged_sha256=previous["sha256"], reused=previous, noisy_intact=noisy_intact
            )
    try:
        rgb = clean_image(data, context.size, context.allow_upscale, context.max_pixels)
    except ImageError as error:
        return dataclasses.replace(found, kind=error.kind, reason=str(error))
    except (cv2.error, MemoryError) as error:
        reason = f"the file cannot be resized ({type(error).__name__})."
        return dataclasses.replace(found, kind=UNREADABLE, reason=reason)
    # An FFHQ thumbnail already is what we would write: keep its bytes instead of encoding
    # the same pixels again, a third of the work per image (it was decoded above, so it is
    # known to be readable).
    png = data if _already_clean(data, context.size) else encode_png(rgb)
    _write_scratch(os.path.join(context.staging, f"{job.rank}.png"), png)
    return dataclasses.replace(found, staged_sha256=_sha256(png))


def examine_batch(jobs: list[Job]) -> list[Examined]:
    return [examine(job) for job in jobs]


def write_noisy(split: str, image_id: str) -> str:
    """Write the fixed noisy copy of a clean image; returns the sha256 of the written PNG."""
    from facedenoise.noise import noisy_uint8

    out = _context.out
    clean = cv2.imread(str(clean_path(out, split, image_id)), cv2.IMREAD_COLOR)[:, :, ::-1]
    noisy = noisy_uint8(clean, _context.noise_factor, _context.seed, image_id)
    png = encode_png(noisy, noisy=True)
    staged = os.path.join(_context.staging, f"noisy-{image_id}.png")
    _write_scratch(staged, png)
    os.replace(staged, noisy_path(out, split, image_id))  # atomic: whole file or none
    return _sha256(png)


def _write_scratch(path: str, data: bytes) -> None:
    """Write a file in the staging folder. Not atomic, and needs not be: a staged file is used
    only after its writer reported it complete, and the folder is wiped when a run starts."""
    with open(path, "wb") as handle:
        handle.write(data)
