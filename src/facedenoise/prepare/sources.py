"""Where candidates come from: a folder, a .zip, a .tar(.gz) or the bundled sample.

Listing happens once, in the main process; reading happens in the workers (a folder, a zip or
a plain tar: random access) or, for a compressed tar, front to back in the main process. Every
read is bounded: members and files larger than `max_bytes` are refused from their declared size
and read in chunks, and only regular files are opened.
"""

from __future__ import annotations

import os
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from facedenoise.config import MAX_FILE_BYTES
from facedenoise.errors import FaceDenoiseError
from facedenoise.imageio import (
    IMAGE_EXTENSIONS,
    ImageError,
    check_byte_size,
    read_file_bytes,
    read_limited,
)

SAMPLE_SOURCE = "sample"
PREPARE_OUTPUTS = ("clean", "noisy", ".prepare-staging")  # what prepare writes into --out
FILE_NAME = "the file"  # how skip reasons call the candidate (its name is recorded beside)

# What reading one file or member can raise besides ImageError: a damaged member (bad CRC,
# truncated deflate stream), an encrypted or exotically compressed one, or plain I/O errors.
# Each skips one file.
READ_ERRORS = (
    OSError,
    EOFError,
    zlib.error,
    zipfile.BadZipFile,
    RuntimeError,
    NotImplementedError,
)
_LIST_ERRORS = (OSError, EOFError, zlib.error, zipfile.BadZipFile, tarfile.TarError)


@dataclass(frozen=True)
class Source:
    """Where candidates come from; picklable, so each worker can read them itself.

    kind: "folder", "zip", "tar" (uncompressed: random access by offset) or "tar-stream"
    (compressed: read front to back by the main process, bytes sent to the workers).
    label: what the manifest records as the source.
    """

    kind: str
    path: str
    label: str


@dataclass(frozen=True)
class Candidate:
    """One image file of the source.

    name: relative path or archive member name; recorded in the manifest and never used as an
    output path. locator: how to read it (member index, or (offset, size) in a plain tar).
    """

    name: str
    locator: object = None


def _is_candidate_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return not base.startswith(".") and base.lower().endswith(IMAGE_EXTENSIONS)


def sample_folder() -> Path:
    """The bundled sample faces."""
    return Path(str(resources.files("facedenoise") / "sample" / "faces"))


def open_source(source: str | Path | None, out: Path) -> tuple[Source, list[Candidate]]:
    """Identify `source` and list its candidate images, sorted by name.

    Raises FaceDenoiseError for a missing or image-less source, and for a source and an `out`
    that overlap (see `check_apart`).
    """
    if source is None or str(source) == SAMPLE_SOURCE:
        folder = sample_folder()
        if not folder.is_dir():
            raise FaceDenoiseError(
                f"The bundled sample faces are missing ({folder}); reinstall facedenoise or "
                "pass --source with a folder of faces."
            )
        spec = Source("folder", str(folder), SAMPLE_SOURCE)
    else:
        path = Path(source).expanduser()
        if not path.exists():
            raise FaceDenoiseError(
                f"{source} does not exist; pass a folder of images, a .zip or .tar(.gz) "
                "archive, or 'sample'."
            )
        spec = Source(_source_kind(path), str(path.resolve()), str(path.resolve()))
    check_apart(spec, Path(out))
    candidates = _list_candidates(spec)
    if not candidates:
        raise FaceDenoiseError(
            f"{spec.label} holds no images ({', '.join(IMAGE_EXTENSIONS)}); check --source."
        )
    return spec, candidates


def check_apart(spec: Source, out: Path) -> None:
    """Refuse an `out` that is the source folder or inside it (prepare would read its own
    output on the next run) and a source inside `out` (--force could delete source files).

    An archive is one file that prepare never writes: it may sit in `out`, just not among
    prepare's own outputs.
    """
    source, out = Path(spec.path), Path(out).resolve()
    if spec.kind == "folder" and (out == source or source in out.parents):
        raise FaceDenoiseError(
            f"--out {out} is inside --source {source}: prepare would read its own output; "
            "choose an --out outside the source."
        )
    inside = [out / name for name in PREPARE_OUTPUTS] if spec.kind != "folder" else [out]
    if any(folder == source or folder in source.parents for folder in inside):
        raise FaceDenoiseError(
            f"--source {source} is inside --out {out}: prepare could overwrite or delete it; "
            "move the source or choose another --out."
        )


_ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


def _source_kind(path: Path) -> str:
    if path.is_dir():
        return "folder"
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        try:
            with tarfile.open(path, "r:"):
                return "tar"
        except tarfile.ReadError:
            return "tar-stream"
    if path.name.lower().endswith(_ARCHIVE_SUFFIXES):
        raise FaceDenoiseError(
            f"{path} is named like an archive but is not a readable one (damaged, or an "
            "unfinished download?); check --source.")
    raise FaceDenoiseError(
        f"{path} is neither a folder nor a .zip/.tar(.gz) archive; check --source."
    )


def _list_candidates(spec: Source) -> list[Candidate]:
    try:
        if spec.kind == "folder":
            candidates = _list_folder(Path(spec.path))
        elif spec.kind == "zip":
            with zipfile.ZipFile(spec.path) as archive:
                members = [
                    (info.filename, index)
                    for index, info in enumerate(archive.infolist())
                    if not info.is_dir()
                ]
            candidates = _unique_members(members)
        else:
            candidates = _list_tar(spec)
    except _LIST_ERRORS as error:
        raise FaceDenoiseError(f"Cannot list {spec.label} ({error}); check --source.") from error
    return sorted(candidates, key=lambda candidate: candidate.name)


def _list_folder(root: Path) -> list[Candidate]:
    """Every file named like an image (pipes and devices too: they are refused, with a reason,
    when read, so that the user learns about them)."""
    candidates = []
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        relative = Path(folder).relative_to(root).as_posix()
        prefix = "" if relative == "." else relative + "/"
        candidates += [Candidate(prefix + name) for name in files if _is_candidate_name(name)]
    return candidates


# A compressed tar is read through a seekable decompressor ("r:*"), front to back only: the
# stream mode ("r|*") copies its whole buffer for each 10 KB it skips, minutes for a member of
# 1 GB of zeros.
_TAR_MODES = {"tar": "r:", "tar-stream": "r:*"}


def _list_tar(spec: Source) -> list[Candidate]:
    mode = _TAR_MODES[spec.kind]
    members = []
    with tarfile.open(spec.path, mode) as archive:
        for index, member in enumerate(archive):
            if member.isfile():
                locator = (member.offset_data, member.size) if spec.kind == "tar" else index
                members.append((member.name, locator))
    return _unique_members(members)


def _unique_members(members: list[tuple[str, object]]) -> list[Candidate]:
    """Image members; of several with one name, the last counts, as when extracting."""
    by_name = {name: locator for name, locator in members if _is_candidate_name(name)}
    return [Candidate(name, locator) for name, locator in by_name.items()]


_open_zips: dict[str, zipfile.ZipFile] = {}  # per worker process: open each archive once


def read_candidate(spec: Source, candidate: Candidate, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The stored bytes of `candidate` (not for "tar-stream", which is read in order).

    Raises ImageError for a file that is not regular or is over `max_bytes`, and one of
    READ_ERRORS for a damaged member or an I/O error.
    """
    if spec.kind == "folder":
        return read_file_bytes(Path(spec.path) / candidate.name, max_bytes, FILE_NAME)
    if spec.kind == "zip":
        if spec.path not in _open_zips:
            _open_zips[spec.path] = zipfile.ZipFile(spec.path)
        archive = _open_zips[spec.path]
        info = archive.infolist()[candidate.locator]
        check_byte_size(info.file_size, FILE_NAME, max_bytes)  # zipfile stops at this size
        with archive.open(info) as member:
            return read_limited(member, FILE_NAME, max_bytes)
    offset, size = candidate.locator
    check_byte_size(size, FILE_NAME, max_bytes)
    with open(spec.path, "rb") as handle:
        handle.seek(offset)
        return handle.read(size)


def stream_tar(
    spec: Source, wanted: dict[int, object], max_bytes: int = MAX_FILE_BYTES
) -> Iterator[tuple[object, bytes | ImageError]]:
    """(key, bytes) of the members whose index is in `wanted`, in archive order; an oversized
    member gives (key, ImageError) instead and is skipped over unread."""
    try:
        with tarfile.open(spec.path, _TAR_MODES[spec.kind]) as archive:
            for index, member in enumerate(archive):
                if index in wanted:
                    yield wanted[index], _read_member(archive, member, max_bytes)
    except _LIST_ERRORS as error:
        raise FaceDenoiseError(
            f"Cannot read {spec.label} ({error}); the archive is damaged, check --source."
        ) from error


def _read_member(archive: tarfile.TarFile, member: tarfile.TarInfo, max_bytes: int):
    try:
        check_byte_size(member.size, FILE_NAME, max_bytes)
        handle = archive.extractfile(member)
        return read_limited(handle, FILE_NAME, max_bytes) if handle else b""
    except ImageError as error:
        return error
