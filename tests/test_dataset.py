"""The dataset reading API on a dataset that prepare() wrote from the bundled faces."""

from __future__ import annotations

import hashlib
import json

import pytest

from facedenoise.config import PrepareConfig
from facedenoise.dataset import (
    MANIFEST_NAME,
    SPLITS,
    clean_files,
    load_manifest,
    manifest_sha256,
    noise_factor_of,
    split_pairs,
)
from facedenoise.errors import FaceDenoiseError
from facedenoise.prepare import prepare


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, sample_faces):
    out = tmp_path_factory.mktemp("dataset") / "data"
    prepare(None, out, PrepareConfig(count=None, noise_factor=0.25), workers=1, show_progress=False)
    return out


def test_missing_dataset_says_how_to_make_one(tmp_path):
    with pytest.raises(FaceDenoiseError, match=f"facedenoise prepare --out {tmp_path}"):
        load_manifest(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text("{ not json")
    with pytest.raises(FaceDenoiseError, match="unreadable"):
        clean_files(tmp_path, "train")


def test_manifest_hash_and_noise_factor(data_dir):
    expected = hashlib.sha256((data_dir / MANIFEST_NAME).read_bytes()).hexdigest()
    assert manifest_sha256(data_dir) == expected
    assert noise_factor_of(data_dir) == 0.25
    assert load_manifest(data_dir)["counts"]["train"] > 0


@pytest.mark.parametrize("split", SPLITS)
def test_clean_files_are_sorted_and_counted(data_dir, split):
    files = clean_files(data_dir, split)
    assert files == sorted(files) and all(path.is_file() for path in files)
    assert len(files) == load_manifest(data_dir)["counts"][split]
    assert all(path.parent == data_dir / "clean" / split for path in files)


@pytest.mark.parametrize("split", ["val", "test"])
def test_split_pairs_match_by_id(data_dir, split):
    pairs = split_pairs(data_dir, split)
    assert [clean for _, clean in pairs] == clean_files(data_dir, split)
    assert all(
        noisy.name == clean.name and noisy.parent == data_dir / "noisy" / split
        for noisy, clean in pairs
    )


def test_errors_name_what_to_do(data_dir):
    with pytest.raises(FaceDenoiseError, match="train, val, test"):
        clean_files(data_dir, "training")
    with pytest.raises(FaceDenoiseError, match="no fixed noisy files"):
        split_pairs(data_dir, "train")


def test_missing_files_and_empty_splits(data_dir, tmp_path):
    manifest = load_manifest(data_dir)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(FaceDenoiseError, match="missing"):
        split_pairs(tmp_path, "val")
    manifest["images"] = [image for image in manifest["images"] if image["split"] != "val"]
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(FaceDenoiseError, match="'val' split .* is empty"):
        clean_files(tmp_path, "val")


def test_ids_cannot_point_outside(data_dir, tmp_path):
    manifest = load_manifest(data_dir)
    manifest["images"][0]["id"] = "../../etc/passwd"
    (tmp_path / MANIFEST_NAME).write_text(json.dumps(manifest))
    with pytest.raises(FaceDenoiseError, match="invalid image id"):
        clean_files(tmp_path, manifest["images"][0]["split"])
