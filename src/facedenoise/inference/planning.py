"""Pairing input images with output paths, like `cp`, before any work is done.

Every output path is checked: it stays inside the output folder (or beside its input), it
never overwrites an input, and no two inputs share one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from facedenoise.errors import FaceDenoiseError
from facedenoise.imageio import (
    IMAGE_EXTENSIONS,
    UNWRITTEN_IMAGE_EXTENSIONS,
    FoundImage,
    find_images,
    is_image_path,
)


@dataclass(frozen=True)
class Job:
    """One image to denoise: where it is read from and where its result goes."""

    source: Path
    target: Path


def check_suffix(suffix: str) -> None:
    """Raise FaceDenoiseError unless `suffix` can only extend a file name."""
    separators = {"/", "\\", os.sep, "\0"}
    if any(character in suffix for character in separators) or suffix in (".", ".."):
        raise FaceDenoiseError(
            f"--suffix {suffix!r} must be part of a file name (no '/', '\\' or NUL); "
            "to write into another folder, name the folder as the last path."
        )


def _split_paths(paths: list[str]) -> tuple[list[str], str | None]:
    """cp-style arguments: one path writes beside it; otherwise the last path is the output."""
    if not paths:
        raise FaceDenoiseError("Name at least one image, folder or glob to denoise.")
    if len(paths) == 1:
        return list(paths), None
    return list(paths[:-1]), paths[-1]


def _output_is_file(inputs: list[str], output: str) -> bool:
    output_path = Path(output)
    if len(inputs) != 1 or not Path(inputs[0]).is_file():
        if output_path.is_file():
            raise FaceDenoiseError(
                f"{output} is a file, but with several inputs (or a folder or glob) the last "
                "path must be a folder."
            )
        image_name = output_path.suffix.lower() in (*IMAGE_EXTENSIONS, *UNWRITTEN_IMAGE_EXTENSIONS)
        looks_like_a_file = image_name and not output.endswith(("/", "\\"))
        if looks_like_a_file and not output_path.is_dir():
            raise FaceDenoiseError(
                f"{output} looks like an image file, but with several inputs (or a folder or "
                "glob) the last path must be a folder; end it with '/' to make a folder of "
                "that name."
            )
        return False
    if output_path.is_dir() or output.endswith(("/", "\\")):
        return False
    if not is_image_path(output_path):
        problem = (f"Cannot write '{output_path.suffix}' images ({output}); use one of "
                   f"{', '.join(IMAGE_EXTENSIONS)}" if output_path.suffix else
                   f"Cannot tell the format of {output}: give it an image extension (.png, "
                   ".jpg, ...)")
        raise FaceDenoiseError(f"{problem}, or end it with '/' to write into a folder.")
    return True


def plan_jobs(paths: list[str], suffix: str, recursive: bool) -> list[Job]:
    """Pair every input image with its output path, like `cp` (see `denoise_paths`).

    Raises FaceDenoiseError for missing inputs, a suffix with a path separator, outputs that
    would leave the output folder, overwrite an input, or be shared by two inputs.
    """
    check_suffix(suffix)
    inputs, output = _split_paths(paths)
    found = find_images(inputs, recursive=recursive)
    if output is not None and _output_is_file(inputs, output):
        jobs = [Job(found[0].path, Path(output))]
    elif output is None:
        # Earlier outputs found in a folder are not inputs: re-running must not stack suffixes.
        jobs = [
            Job(image.path, _writable(image.path.with_name(image.path.stem + suffix
                                                           + image.path.suffix)))
            for image in found
            if not (image.base and suffix and image.path.stem.endswith(suffix))
        ]
    else:
        out_dir = Path(output)
        jobs = [
            Job(image.path, _writable(out_dir / _relative_name(image)))
            for image in found
            if not _is_earlier_output(image, _absolute(out_dir))
        ]
        _check_contained(jobs, out_dir)
    _check_targets(jobs)
    return jobs


def _writable(target: Path) -> Path:
    """`target`, as PNG when its input's format cannot be written (a GIF, or a file named
    without an extension, both read when given by name)."""
    return target if is_image_path(target) else target.with_name(target.name + ".png")


def _absolute(path: Path) -> Path:
    # Lexical (no file-system calls): cheap enough for every file of a large folder.
    return Path(os.path.abspath(path))


def _relative_name(image: FoundImage) -> Path:
    """Where an image goes under the output folder: its path below the folder or glob base
    it was found in (normalised, so '..' cannot climb out), else its file name."""
    if image.base is None:
        return Path(image.path.name)
    path, base = _absolute(image.path), _absolute(image.base)
    if not path.is_relative_to(base):
        raise FaceDenoiseError(
            f"{image.path} lies outside {image.base}, where it was found; its output would "
            "leave the output folder. Name files without '..' or denoise them separately."
        )
    return path.relative_to(base)


def _check_contained(jobs: list[Job], out_dir: Path) -> None:
    """Every target must resolve inside the output folder (symbolic links included)."""
    root = out_dir.resolve()
    for job in jobs:
        if not job.target.resolve().is_relative_to(root):
            raise FaceDenoiseError(
                f"The output for {job.source} would be written to {job.target.resolve()}, "
                f"outside {out_dir} (through a symbolic link?); refusing to write there."
            )


def _is_earlier_output(image: FoundImage, out_dir: Path) -> bool:
    """True for an image found in the (absolute) output folder nested in its searched folder."""
    if image.base is None or out_dir == _absolute(image.base):
        return False  # the same folder: _check_targets refuses to overwrite the inputs
    return _absolute(image.path).is_relative_to(out_dir)


def _file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file, None when there is none."""
    try:
        status = path.stat()
    except OSError:
        return None
    return status.st_dev, status.st_ino


def _check_targets(jobs: list[Job]) -> None:
    sources = {job.source.resolve(): job.source for job in jobs}
    # The same file under another name: BW.PNG for bw.png on a case-insensitive file system
    # (macOS, Windows), where the rename would replace the input; or a hard link.
    source_files = {_file_identity(job.source): job.source for job in jobs}
    source_files.pop(None, None)
    seen: dict[Path, Path] = {}
    for job in jobs:
        target = job.target.resolve()
        overwritten = sources.get(target) or source_files.get(_file_identity(job.target))
        if overwritten is not None:
            raise FaceDenoiseError(
                f"{job.source} would be written over the input {overwritten}; inputs are "
                "never overwritten, even with --force. Choose another output or --suffix."
            )
        if target in seen:
            raise FaceDenoiseError(
                f"{seen[target]} and {job.source} would both be written to {job.target}; "
                "denoise them into separate folders."
            )
        seen[target] = job.source
