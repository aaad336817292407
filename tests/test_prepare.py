"""prepare(): selection, splits, image handling, archives, noise, resume, --force, the CLI.

Every test builds a small FFHQ-shaped tree from the bundled faces (nested 00000/-style folders)
with the awkward files a real download or a user folder holds: corrupt, empty, grey, RGBA,
16-bit, 1024x1024, non-square, EXIF-rotated, too small, and a byte-identical duplicate.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from facedenoise import __version__
from facedenoise.cli import app
from facedenoise.config import PrepareConfig
from facedenoise.dataset import clean_files, split_pairs
from facedenoise.errors import FaceDenoiseError
from facedenoise.noise import noisy_uint8
from facedenoise.prepare import JOURNAL_NAME, prepare, split_of
from facedenoise.prepare.journal import Journal
from facedenoise.prepare.run import exclusive

ALL = PrepareConfig(count=None)
UNUSABLE = {"00000/corrupt.png", "01000/empty.png", "01000/notes.jpg", "02000/small.png"}
cli = CliRunner()


def read_rgb(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[:, :, ::-1]


def write_png(path: Path, stored: np.ndarray) -> None:
    """Write a stored array (RGB, RGBA or grey; 8 or 16-bit) as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if stored.ndim == 3:
        stored = cv2.cvtColor(
            stored, cv2.COLOR_RGB2BGR if stored.shape[2] == 3 else cv2.COLOR_RGBA2BGRA
        )
    assert cv2.imwrite(str(path), stored)


def build_tree(root: Path, faces: list[Path]) -> dict[str, np.ndarray]:
    """An FFHQ-shaped folder; returns the face each special file should come out as."""
    plain = [read_rgb(path) for path in faces]
    for index, path in enumerate(faces):
        target = root / f"{index // 5 * 1000:05d}" / f"{index:05d}.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    face = plain[0]
    special = root / "03000"
    grey = cv2.cvtColor(face, cv2.COLOR_RGB2GRAY)
    write_png(special / "grey.png", grey)
    Image.fromarray(np.dstack([grey, 255 - grey]), mode="LA").save(special / "grey-alpha.png")
    write_png(special / "rgba.png", np.dstack([face, np.full(face.shape[:2], 128, np.uint8)]))
    write_png(special / "deep16.png", face.astype(np.uint16) * 257)
    write_png(
        special / "large1024.png", cv2.resize(plain[1], (1024, 1024), interpolation=cv2.INTER_CUBIC)
    )
    wide = np.zeros((128, 160, 3), np.uint8)
    wide[:, 16:144] = plain[2]
    write_png(special / "wide.png", wide)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(np.rot90(plain[3])).save(special / "rotated.jpg", exif=exif, quality=95)
    write_png(special / "plain.png", face[::-1])  # upside down: a distinct, plain RGB PNG
    write_png(root / "02000" / "small.png", face[:64, :64])
    (root / "00000" / "corrupt.png").write_bytes(faces[4].read_bytes()[:300])
    (root / "01000" / "empty.png").write_bytes(b"")
    (root / "01000" / "notes.jpg").write_text("not an image")
    shutil.copyfile(faces[5], root / "03000" / "copy-of-00005.png")
    return {
        "03000/grey.png": grey,
        "03000/grey-alpha.png": grey,
        "03000/rgba.png": face,
        "03000/deep16.png": face,
        "03000/large1024.png": plain[1],
        "03000/wide.png": plain[2],
        "03000/plain.png": face[::-1],
        "03000/rotated.jpg": plain[3],
    }


@pytest.fixture(scope="module")
def tree(tmp_path_factory, sample_faces) -> tuple[Path, dict[str, np.ndarray]]:
    root = tmp_path_factory.mktemp("ffhq") / "thumbnails128x128"
    return root, build_tree(root, sample_faces)


@pytest.fixture(scope="module")
def prepared(tree, tmp_path_factory):
    """The whole tree prepared once (in-process), shared by the read-only checks."""
    out = tmp_path_factory.mktemp("prepared") / "data"
    return out, prepare(tree[0], out, ALL, workers=1, show_progress=False)


def expected_counts(selected: int, config: PrepareConfig) -> dict[str, int]:
    test = int(selected * config.test_fraction + 0.5)
    val = int((selected - test) * config.val_fraction + 0.5)
    return {"train": selected - test - val, "val": val, "test": test}


def by_source(manifest) -> dict[str, dict]:
    return {image["source"]: image for image in manifest.images}


def test_split_of_gives_the_protocol_counts():
    splits = [split_of(position, 0.2, 0.2) for position in range(10_000)]
    assert [splits.count(split) for split in ("train", "val", "test")] == [6400, 1600, 2000]
    # Any prefix is split in the same proportions (what lets prepare stream).
    prefix = splits[:5000]
    assert [prefix.count(split) for split in ("train", "val", "test")] == [3200, 800, 1000]


def test_counts_layout_and_skips(prepared, tree, sample_faces):
    out, manifest = prepared
    usable = len(sample_faces) + len(tree[1])
    assert len(manifest.images) == usable
    assert manifest.counts == expected_counts(usable, ALL)
    reasons = {entry["source"]: entry["reason"] for entry in manifest.skipped}
    duplicates = {"01000/00005.png", "03000/copy-of-00005.png"}
    assert set(reasons) - UNUSABLE < duplicates  # one of the two copies is kept
    assert (duplicates - set(reasons)) < set(by_source(manifest))
    assert reasons[(duplicates & set(reasons)).pop()].startswith("duplicate of")
    assert "empty" in reasons["01000/empty.png"] and "smaller" in reasons["02000/small.png"]
    kinds = {entry["source"]: entry["kind"] for entry in manifest.skipped}
    assert {source: kinds[source] for source in UNUSABLE} == {
        "00000/corrupt.png": "unreadable",
        "01000/empty.png": "empty",
        "01000/notes.jpg": "unreadable",
        "02000/small.png": "too_small",
    }
    assert kinds[(duplicates & set(kinds)).pop()] == "duplicate"
    for split, count in manifest.counts.items():
        files = clean_files(out, split)
        assert len(files) == count
        assert all(read_rgb(path).shape == (128, 128, 3) for path in files)
    assert sorted((out / "noisy").iterdir()) == [out / "noisy" / "test", out / "noisy" / "val"]
    data = json.loads(manifest.path.read_text())
    assert data["version"] == __version__ and data["params"]["count"] is None
    assert data["skipped"] == manifest.skipped


def test_splits_do_not_overlap(prepared):
    out, manifest = prepared
    ids = [image["id"] for image in manifest.images]
    sources = [image["source"] for image in manifest.images]
    assert len(set(ids)) == len(ids) and len(set(sources)) == len(sources)
    hashes = [image["source_sha256"] for image in manifest.images]
    assert len(set(hashes)) == len(hashes)  # byte-identical files count once
    stems = [{path.stem for path in clean_files(out, split)} for split in ("train", "val", "test")]
    assert not (stems[0] & stems[1] or stems[0] & stems[2] or stems[1] & stems[2])


def test_manifest_hashes_match_the_files(prepared, tree):
    out, manifest = prepared
    for image in manifest.images:
        clean = out / "clean" / image["split"] / f"{image['id']}.png"
        assert hashlib.sha256(clean.read_bytes()).hexdigest() == image["sha256"]
        source = (tree[0] / image["source"]).read_bytes()
        assert hashlib.sha256(source).hexdigest() == image["source_sha256"]
        if image["split"] != "train":
            noisy = out / "noisy" / image["split"] / f"{image['id']}.png"
            assert hashlib.sha256(noisy.read_bytes()).hexdigest() == image["noisy_sha256"]


def test_awkward_images_are_normalised(prepared, tree):
    out, manifest = prepared
    images = by_source(manifest)

    def output(source: str) -> np.ndarray:
        image = images[source]
        return read_rgb(out / "clean" / image["split"] / f"{image['id']}.png").astype(int)

    plain = images["03000/plain.png"]
    assert plain["sha256"] == plain["source_sha256"]  # already clean: kept byte for byte
    assert images["03000/wide.png"]["sha256"] != images["03000/wide.png"]["source_sha256"]
    for name in ("03000/rgba.png", "03000/deep16.png", "03000/wide.png", "03000/plain.png"):
        np.testing.assert_array_equal(output(name), tree[1][name], err_msg=name)
    for name in ("03000/grey.png", "03000/grey-alpha.png"):
        np.testing.assert_array_equal(output(name), np.dstack([tree[1][name]] * 3), err_msg=name)
    assert np.abs(output("03000/large1024.png") - tree[1]["03000/large1024.png"]).mean() < 3
    rotated = output("03000/rotated.jpg")  # upright again thanks to EXIF orientation
    face = tree[1]["03000/rotated.jpg"].astype(int)
    assert np.abs(rotated - face).mean() < np.abs(rotated - np.rot90(face)).mean() / 4


def test_count_takes_a_seeded_subset(tree, tmp_path):
    config = PrepareConfig(count=10)
    manifest = prepare(tree[0], tmp_path / "a", config, workers=1, show_progress=False)
    assert manifest.counts == {"train": 6, "val": 2, "test": 2}
    assert manifest.shortfall is None


def test_fewer_images_than_count_uses_all_and_says_so(tree, tmp_path, sample_faces):
    manifest = prepare(
        tree[0], tmp_path / "a", PrepareConfig(count=10_000), workers=1, show_progress=False
    )
    assert len(manifest.images) == len(sample_faces) + len(tree[1])
    assert "only" in manifest.shortfall and "10,000" in manifest.shortfall


def test_progress_is_reported_per_finished_image(tree, tmp_path):
    calls = []
    config = PrepareConfig(count=10)
    prepare(tree[0], tmp_path / "a", config, workers=1, on_progress=lambda *c: calls.append(c))
    assert calls == [(done, 10) for done in range(1, 11)]
    calls.clear()
    prepare(tree[0], tmp_path / "a", config, workers=2, on_progress=lambda *c: calls.append(c))
    assert calls == [(done, 10) for done in range(1, 11)]  # a rerun verifies: still counted


def test_same_seed_gives_a_byte_identical_manifest_whatever_the_workers(tree, tmp_path):
    first = prepare(tree[0], tmp_path / "a", ALL, workers=1, show_progress=False)
    second = prepare(tree[0], tmp_path / "b", ALL, workers=2, show_progress=False)
    assert first.path.read_bytes() == second.path.read_bytes()


def test_other_seed_gives_another_split(prepared, tree, tmp_path):
    other = prepare(
        tree[0], tmp_path / "a", PrepareConfig(count=None, seed=7), workers=1, show_progress=False
    )
    assert other.counts == prepared[1].counts
    splits = {image["source"]: image["split"] for image in prepared[1].images}
    assert {image["source"]: image["split"] for image in other.images} != splits


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
def test_archive_gives_the_same_entries_as_the_folder(prepared, tree, tmp_path, kind):
    archive = tmp_path / f"faces.{kind}"
    files = sorted(path for path in tree[0].rglob("*") if path.is_file())
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as handle:
            for path in files:
                handle.write(path, path.relative_to(tree[0]).as_posix())
    else:
        with tarfile.open(archive, "w:gz" if kind == "tar.gz" else "w") as handle:
            for path in files:
                handle.add(path, path.relative_to(tree[0]).as_posix())
    manifest = prepare(archive, tmp_path / "out", ALL, workers=1, show_progress=False)
    assert manifest.images == prepared[1].images
    assert manifest.skipped == prepared[1].skipped
    assert manifest.data["source"] == str(archive.resolve())


def test_archive_member_names_never_become_paths(sample_faces, tmp_path):
    archive = tmp_path / "hostile.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for index, name in enumerate(["../../evil.png", "/abs/evil.png", "a/../../up.png"]):
            handle.writestr(name, sample_faces[index].read_bytes())
    before = {path for path in tmp_path.parent.rglob("*")}
    out = tmp_path / "out"
    manifest = prepare(archive, out, ALL, workers=1, show_progress=False)
    assert {image["source"] for image in manifest.images} == {
        "../../evil.png",
        "/abs/evil.png",
        "a/../../up.png",
    }
    created = {path for path in tmp_path.parent.rglob("*")} - before
    assert created and all(path == out or out in path.parents for path in created)
    assert not Path("/abs/evil.png").exists()


def test_damaged_archive_member_is_skipped(sample_faces, tmp_path):
    archive = tmp_path / "damaged.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as handle:
        for path in sample_faces[:3]:
            handle.write(path, path.name)
    data = bytearray(archive.read_bytes())
    member = sample_faces[1].read_bytes()
    data[data.find(member) + len(member) // 2] ^= 0xFF  # the stored CRC no longer matches
    archive.write_bytes(bytes(data))
    manifest = prepare(archive, tmp_path / "out", ALL, workers=1, show_progress=False)
    assert len(manifest.images) == 2
    assert manifest.skipped[0]["source"] == sample_faces[1].name
    assert "unreadable" in manifest.skipped[0]["reason"]


def test_noise_is_gaussian_with_the_factor_and_regenerates(prepared):
    out, manifest = prepared
    differences = []
    for split in ("val", "test"):
        for noisy_file, clean_file in split_pairs(out, split):
            clean, noisy = read_rgb(clean_file), read_rgb(noisy_file)
            regenerated = noisy_uint8(clean, 0.3, 42, clean_file.stem)
            np.testing.assert_array_equal(noisy, regenerated)  # (seed, id) is all it takes
            middle = (clean >= 77) & (clean <= 178)  # 0.3..0.7: >= 1 std from the clip
            differences.append((noisy.astype(float) - clean)[middle] / 255)
    difference = np.concatenate(differences)
    # Clipping only cuts the tails beyond 1 std here, so the median absolute deviation (which
    # looks at the central 50%) still estimates the std: 1.4826 * MAD. Its standard error is
    # about 1.17 * 0.3 / sqrt(n): < 0.0016 for n >= 50,000 (a 12-face sample gives ~150,000),
    # and 8-bit rounding moves it by ~0.001; 0.01 is over 5 standard errors.
    assert difference.size > 50_000
    assert abs(1.4826 * np.median(np.abs(difference)) - 0.3) < 0.01
    assert abs(np.median(difference)) < 0.005


def test_rerun_verifies_and_repairs(tree, tmp_path):
    out = tmp_path / "data"
    first = prepare(tree[0], out, ALL, workers=1, show_progress=False)
    manifest_bytes = first.path.read_bytes()
    again = prepare(tree[0], out, ALL, workers=1, show_progress=False)
    assert again.reused == len(first.images) and again.path.read_bytes() == manifest_bytes
    damaged = split_pairs(out, "test")[0][0]
    damaged.write_bytes(b"\x89PNG broken")
    repaired = prepare(tree[0], out, ALL, workers=1, show_progress=False)
    assert repaired.reused == len(first.images) - 1
    assert repaired.path.read_bytes() == manifest_bytes
    assert hashlib.sha256(damaged.read_bytes()).hexdigest() in manifest_bytes.decode()


def test_interrupted_run_resumes(tree, tmp_path, monkeypatch):
    reference = prepare(tree[0], tmp_path / "reference", ALL, workers=1, show_progress=False)
    out = tmp_path / "data"
    original_append = Journal.append
    calls = []

    def interrupt_after_four(journal, record):
        calls.append(record)
        if len(calls) == 5:
            raise KeyboardInterrupt
        original_append(journal, record)

    monkeypatch.setattr(Journal, "append", interrupt_after_four)
    with pytest.raises(KeyboardInterrupt):
        prepare(tree[0], out, ALL, workers=1, show_progress=False)
    monkeypatch.undo()
    assert not (out / "manifest.json").exists() and (out / JOURNAL_NAME).exists()
    # A kill could also leave a damaged file and a half-written staged one behind.
    first = calls[0]
    (out / "clean" / first["split"] / f"{first['id']}.png").write_bytes(b"")
    (out / ".prepare-staging").mkdir()
    (out / ".prepare-staging" / "3.png").write_bytes(b"half")
    with open(out / JOURNAL_NAME, "a") as journal:
        journal.write('{"id": "000')  # a line the kill cut short
    resumed = prepare(tree[0], out, ALL, workers=1, show_progress=False)
    assert resumed.reused == 3
    reference_manifest = json.loads(reference.path.read_text())
    assert resumed.data["images"] == reference_manifest["images"]
    assert not (out / JOURNAL_NAME).exists()
    assert sorted(path.name for path in out.iterdir()) == ["clean", "manifest.json", "noisy"]


def test_other_settings_are_refused_without_force(tree, tmp_path):
    out = tmp_path / "data"
    prepare(tree[0], out, ALL, workers=1, show_progress=False)
    (out / "README.md").write_text("my notes")
    (out / "clean" / "train" / "mine.png").write_bytes(b"user file")
    with pytest.raises(FaceDenoiseError, match="--force"):
        prepare(tree[0], out, PrepareConfig(count=5), workers=1, show_progress=False)
    smaller = prepare(
        tree[0], out, PrepareConfig(count=5), workers=1, show_progress=False, force=True
    )
    written = {path for path in out.rglob("*.png")} - {out / "clean" / "train" / "mine.png"}
    assert len(written) == 5 + smaller.counts["val"] + smaller.counts["test"]
    assert (out / "README.md").read_text() == "my notes"
    assert (out / "clean" / "train" / "mine.png").exists()


def test_interrupted_run_with_other_settings_is_refused(tree, tmp_path, monkeypatch):
    out = tmp_path / "data"

    def interrupt(journal, record):
        raise KeyboardInterrupt

    monkeypatch.setattr(Journal, "append", interrupt)
    with pytest.raises(KeyboardInterrupt):
        prepare(tree[0], out, PrepareConfig(count=None, seed=1), workers=1, show_progress=False)
    monkeypatch.undo()
    with pytest.raises(FaceDenoiseError, match="seed 1 -> 42"):
        prepare(tree[0], out, ALL, workers=1, show_progress=False)


def test_two_runs_into_one_folder_are_refused(tree, tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    with exclusive(out), pytest.raises(FaceDenoiseError, match="Another"):
        prepare(tree[0], out, ALL, workers=1, show_progress=False)


def test_folder_not_written_by_prepare_is_refused(tree, tmp_path):
    out = tmp_path / "data"
    (out / "clean").mkdir(parents=True)
    with pytest.raises(FaceDenoiseError, match="not record"):
        prepare(tree[0], out, ALL, workers=1, show_progress=False)


def test_source_without_usable_images(tmp_path):
    source = tmp_path / "broken"
    source.mkdir()
    (source / "a.png").write_bytes(b"")
    (source / "b.jpg").write_bytes(b"\xff\xd8 cut short")
    with pytest.raises(FaceDenoiseError, match="No usable image"):
        prepare(source, tmp_path / "data", ALL, workers=1, show_progress=False)
    assert not (tmp_path / "data").exists()


@pytest.mark.parametrize(
    "source, message",
    [
        ("missing-folder", "does not exist"),
        ("empty", "holds no images"),
        ("file.txt", "neither a folder"),
        ("cut.zip", "named like an archive but is not a readable one"),  # half downloaded
        ("cut.tar.gz", "named like an archive but is not a readable one"),
    ],
)
def test_bad_sources(tmp_path, source, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file.txt").write_text("hello")
    (tmp_path / "cut.zip").write_bytes(b"PK\x03\x04 then nothing")
    (tmp_path / "cut.tar.gz").write_bytes(b"\x1f\x8b then nothing")
    with pytest.raises(FaceDenoiseError, match=message):
        prepare(tmp_path / source, tmp_path / "data", ALL, workers=1, show_progress=False)


@pytest.mark.parametrize(
    "out, source, message",
    [
        ("faces", "faces", "inside --source"),  # a rerun would read its own output
        ("faces/data", "faces", "inside --source"),
        ("data", "data/clean/train", "inside --out"),  # --force could delete the source
    ],
)
def test_overlapping_source_and_out_are_refused(tree, tmp_path, out, source, message):
    shutil.copytree(tree[0], tmp_path / source)
    before = sorted(path for path in tmp_path.rglob("*"))
    with pytest.raises(FaceDenoiseError, match=message):
        prepare(tmp_path / source, tmp_path / out, ALL, workers=1, show_progress=False)
    assert sorted(path for path in tmp_path.rglob("*")) == before  # nothing written


def test_archive_may_sit_in_out_but_not_among_its_outputs(sample_faces, tmp_path):
    archive = tmp_path / "data" / "faces.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as handle:
        for path in sample_faces[:3]:
            handle.write(path, path.name)
    manifest = prepare(archive, tmp_path / "data", ALL, workers=1, show_progress=False)
    assert len(manifest.images) == 3 and archive.exists()
    hidden = tmp_path / "other" / "clean" / "faces.zip"
    hidden.parent.mkdir(parents=True)
    shutil.copyfile(archive, hidden)
    with pytest.raises(FaceDenoiseError, match="inside --out"):
        prepare(hidden, tmp_path / "other", ALL, workers=1, show_progress=False)


def test_cli_prepares_the_bundled_sample(tmp_path, sample_faces):
    result = cli.invoke(app, ["prepare", "--out", str(tmp_path / "data"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "train" in result.output and "FFHQ" in result.output
    assert len(clean_files(tmp_path / "data", "train")) > 0


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--count", "lots"], "--count must be a whole number"),
        (["--count", "0"], "--count must be at least 1"),
        (["--source", "no/such/folder"], "does not exist"),
    ],
)
def test_cli_errors_are_one_red_line(tmp_path, arguments, message):
    result = cli.invoke(app, ["prepare", "--out", str(tmp_path / "data"), *arguments])
    assert result.exit_code == 1
    assert message in result.output and "Traceback" not in result.output
    assert result.output.strip().startswith("error:")


def test_cli_groups_skipped_files_by_kind(tree, tmp_path):
    result = cli.invoke(
        app,
        ["prepare", "--source", str(tree[0]), "--out", str(tmp_path / "data"), "--workers", "1"],
    )
    assert result.exit_code == 0, result.output
    summary = " ".join(result.output.split())
    assert "Skipped 5 (2 unreadable;" in summary  # most common first
    assert all(part in summary for part in ("; 1 empty", "; 1 too small", "; 1 duplicates"))


def test_cli_prints_paths_as_they_are(tree, tmp_path):
    """Paths are data, not rich markup: [/bold] used to crash after writing the dataset."""
    source = tmp_path / "holiday [draft]"
    shutil.copytree(tree[0] / "00000", source)
    out = tmp_path / "out [/bold] [red]x"
    result = cli.invoke(
        app, ["prepare", "--source", str(source), "--out", str(out), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    squeezed = "".join(result.output.split())  # rich wraps long lines, even inside a path
    assert f"Prepared{out}".replace(" ", "") in squeezed
    assert (out / "manifest.json").exists()
    missing = cli.invoke(app, ["prepare", "--source", str(tmp_path / "gone [/bold]")])
    assert missing.exit_code == 1 and "gone [/bold] does not exist" in missing.output


@pytest.mark.parametrize("value", ["inf", "nan", "-0.1", "1.5", "0"])
def test_noise_factor_outside_zero_one_is_refused(tmp_path, value):
    result = cli.invoke(app, ["prepare", "--out", str(tmp_path / "data"), "--noise-factor", value])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert not (tmp_path / "data").exists()
    with pytest.raises(FaceDenoiseError, match="noise_factor"):
        prepare(None, tmp_path / "data", PrepareConfig(noise_factor=float(value)), workers=1)


def test_max_pixels_skips_larger_images(tree, tmp_path):
    result = cli.invoke(
        app,
        ["prepare", "--source", str(tree[0]), "--out", str(tmp_path / "data"), "--workers", "1"]
        + ["--max-pixels", "200000"],  # 128x160 passes, 1024x1024 does not
    )
    assert result.exit_code == 0, result.output
    skipped = json.loads((tmp_path / "data" / "manifest.json").read_text())["skipped"]
    large = [entry for entry in skipped if entry["source"] == "03000/large1024.png"]
    assert large[0]["kind"] == "too_large" and "200,000-pixel limit" in large[0]["reason"]
    assert "1 too large" in " ".join(result.output.split())
    refused = cli.invoke(app, ["prepare", "--out", str(tmp_path / "x"), "--max-pixels", "10" * 5])
    assert refused.exit_code == 1 and "the most Pillow reads" in refused.output  # 1e9 > 1.8e8


@pytest.mark.parametrize("where", ["manifest", "worker"])
def test_full_disk_is_one_red_line(tree, tmp_path, monkeypatch, where):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    target = "manifest.atomic_write_text" if where == "manifest" else "worker._write_scratch"
    monkeypatch.setattr(f"facedenoise.prepare.{target}", full)
    out = tmp_path / "data"
    result = cli.invoke(
        app, ["prepare", "--source", str(tree[0]), "--out", str(out), "--workers", "1"]
    )
    assert result.exit_code == 1, result.output
    assert result.output.strip().startswith("error:") and "Traceback" not in result.output
    assert "No space left on device" in result.output and len(result.output.splitlines()) <= 3


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_out_is_one_red_line(tree, tmp_path):
    out = tmp_path / "data"
    out.mkdir()
    out.chmod(0o555)
    try:
        result = cli.invoke(
            app, ["prepare", "--source", str(tree[0]), "--out", str(out), "--workers", "1"]
        )
    finally:
        out.chmod(0o755)
    assert result.exit_code == 1 and "Permission denied" in result.output
    assert "Traceback" not in result.output


def test_outputs_follow_the_umask_and_stale_temporary_files_go(tree, tmp_path):
    out = tmp_path / "data"
    saved = os.umask(0o022)
    try:
        prepare(tree[0], out, PrepareConfig(count=5), workers=1)
        stale = out / ".manifest.json.k3j4h5g6.json"  # what a kill during a write leaves
        stale.write_text("{")
        os.utime(stale, (1, 1))
        prepare(tree[0], out, PrepareConfig(count=5), workers=1)
    finally:
        os.umask(saved)
    written = [out / "manifest.json", *out.rglob("*.png")]
    assert {stat.S_IMODE(path.stat().st_mode) for path in written} == {0o644}
    assert sorted(path.name for path in out.iterdir()) == ["clean", "manifest.json", "noisy"]


def test_cli_help_names_units_and_hides_flag_types():
    result = cli.invoke(app, ["prepare", "--help"], env={"COLUMNS": "200"})
    assert "output images, in pixels" in result.output
    assert re.search(r"--max-pixels +PIXELS", result.output)
    assert re.search(r"--force +--no-force +Overwrite", result.output)  # no <bool> between
    assert "<bool>" not in result.output


def test_cli_usage_errors_exit_2():
    assert cli.invoke(app, ["prepare", "--size", "big"]).exit_code == 2
    assert cli.invoke(app, ["prepare", "--test-fraction", "1.5"]).exit_code == 2


def test_cli_help():
    result = cli.invoke(app, ["prepare", "--help"])
    assert result.exit_code == 0 and "--allow-upscale" in result.output
