"""Read a dataset written by `facedenoise prepare`: the one reading API for training and evaluation.

Layout under the data folder (see `facedenoise.prepare`):

    clean/{train,val,test}/<id>.png   8-bit RGB
    noisy/{val,test}/<id>.png         8-bit RGB, fixed noise seeded by (seed, id)
    manifest.json                     parameters, counts, per-image hashes

The manifest is the authority: files are listed from it, never by globbing, so stray files in
the folders are ignored.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from facedenoise.errors import FaceDenoiseError

MANIFEST_NAME = "manifest.json"
SPLITS = ("train", "val", "test")
NOISY_SPLITS = ("val", "test")

# Ids become file names; a manifest edited by hand must not turn them into paths elsewhere.
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EMPTY_SPLIT_HINTS = {
    "train": "a larger --count or smaller --test-fraction/--val-fraction",
    "val": "a larger --count or a non-zero --val-fraction",
    "test": "a larger --count or a non-zero --test-fraction",
}


def is_safe_id(image_id: object) -> bool:
    """True when `image_id` can be used as a file name stem inside the data folder."""
    return isinstance(image_id, str) and bool(_SAFE_ID.match(image_id))


def clean_path(data_dir: Path, split: str, image_id: str) -> Path:
    """Where the clean image `image_id` of `split` lives."""
    return Path(data_dir) / "clean" / split / f"{image_id}.png"


def noisy_path(data_dir: Path, split: str, image_id: str) -> Path:
    """Where the fixed noisy image `image_id` of `split` ("val" or "test") lives."""
    return Path(data_dir) / "noisy" / split / f"{image_id}.png"


def _missing(data_dir: Path, detail: str = "") -> FaceDenoiseError:
    return FaceDenoiseError(
        f"No prepared dataset in {data_dir}{detail}; "
        f"run 'facedenoise prepare --out {data_dir}' first."
    )


def load_manifest(data_dir: Path) -> dict:
    """The parsed `manifest.json` of `data_dir`.

    Raises FaceDenoiseError when it is missing, unreadable or not a prepare manifest.
    """
    data_dir = Path(data_dir)
    try:
        manifest = json.loads((data_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _missing(data_dir) from None
    except (OSError, ValueError) as error:
        raise _missing(data_dir, f" ({MANIFEST_NAME} is unreadable: {error})") from error
    if not isinstance(manifest, dict) or not isinstance(manifest.get("images"), list):
        raise _missing(data_dir, f" ({MANIFEST_NAME} is not a facedenoise manifest)")
    return manifest


def manifest_sha256(data_dir: Path) -> str:
    """The sha256 (hex) of the manifest file's bytes: identifies a prepared dataset exactly."""
    load_manifest(data_dir)  # the same error as everywhere else when there is none
    return hashlib.sha256((Path(data_dir) / MANIFEST_NAME).read_bytes()).hexdigest()


def noise_factor_of(data_dir: Path) -> float:
    """The noise factor the dataset's noisy files were made with (std on [0, 1])."""
    manifest = load_manifest(data_dir)
    try:
        return float(manifest["params"]["noise_factor"])
    except (KeyError, TypeError, ValueError):
        raise _missing(data_dir, f" ({MANIFEST_NAME} has no params.noise_factor)") from None


def _split_ids(data_dir: Path, split: str) -> list[str]:
    """Ids of `split`, sorted; raises for an unknown, empty or damaged split."""
    if split not in SPLITS:
        raise FaceDenoiseError(f"Unknown split '{split}'; use one of {', '.join(SPLITS)}.")
    manifest = load_manifest(data_dir)
    images = [image for image in manifest["images"] if isinstance(image, dict)]
    ids = [image.get("id") for image in images if image.get("split") == split]
    if not all(is_safe_id(image_id) for image_id in ids):
        raise _missing(data_dir, f" ({MANIFEST_NAME} holds an invalid image id)")
    if not ids:
        raise FaceDenoiseError(
            f"The '{split}' split of {data_dir} is empty; rerun 'facedenoise prepare' with "
            f"{_EMPTY_SPLIT_HINTS[split]}."
        )
    return sorted(ids)


def _check_exist(data_dir: Path, paths: list[Path]) -> None:
    missing = [path for path in paths if not path.is_file()]
    if missing:
        raise FaceDenoiseError(
            f"{len(missing)} file(s) listed in {Path(data_dir) / MANIFEST_NAME} are missing "
            f"(first: {missing[0]}); run 'facedenoise prepare --out {data_dir}' again to "
            "restore them."
        )


def clean_files(data_dir: Path, split: str) -> list[Path]:
    """The clean PNG files of `split` ("train", "val" or "test"), sorted by id.

    Raises FaceDenoiseError for an unknown split, an empty or unprepared one, or missing files.
    """
    ids = _split_ids(data_dir, split)
    paths = [clean_path(data_dir, split, image_id) for image_id in ids]
    _check_exist(data_dir, paths)
    return paths


def check_patch_size(data_dir: Path, patch_size: int | None) -> None:
    """Raise FaceDenoiseError when training crops of `patch_size` (None: whole images) do not
    fit the prepared training images (the first one's header is read)."""
    from facedenoise.imageio import read_header  # OpenCV: only when a patch size is checked

    if not patch_size:
        return
    first = read_header(clean_files(data_dir, "train")[0])
    smallest = min(first.width, first.height)
    if patch_size > smallest:
        raise FaceDenoiseError(
            f"--patch-size {patch_size} is larger than the training images "
            f"({smallest} pixels); choose at most {smallest}."
        )


def split_pairs(data_dir: Path, split: str) -> list[tuple[Path, Path]]:
    """(noisy, clean) PNG pairs of "val" or "test", sorted by id.

    The noisy files are fixed, so every model (and BM3D) is scored on the same inputs.
    "train" has no fixed noisy files (training draws fresh noise) and raises FaceDenoiseError,
    as do an unknown or empty split and missing files.
    """
    if split == "train":
        raise FaceDenoiseError(
            "The 'train' split has no fixed noisy files (training draws fresh noise); "
            f"use one of {', '.join(NOISY_SPLITS)}."
        )
    ids = _split_ids(data_dir, split)
    pairs = [(noisy_path(data_dir, split, i), clean_path(data_dir, split, i)) for i in ids]
    _check_exist(data_dir, [path for pair in pairs for path in pair])
    return pairs
