"""fileio: atomic writes give files the mode `cp` would, and stale temporary files go away."""

from __future__ import annotations

import os
import stat
import time

import pytest

from facedenoise.fileio import atomic_path, atomic_write_text, remove_stale_temps


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    saved = os.umask(0o022)
    yield os.umask
    os.umask(saved)


def mode_of(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_follow_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    atomic_write_text(tmp_path / "a.json", "{}")
    assert mode_of(tmp_path / "a.json") == expected


def test_replacing_a_file_keeps_its_mode(tmp_path, umask):
    target = tmp_path / "report.txt"
    target.write_text("old")
    target.chmod(0o640)
    atomic_write_text(target, "new")
    assert target.read_text() == "new" and mode_of(target) == 0o640


def test_failed_write_leaves_the_target_and_no_temporary_file(tmp_path):
    target = tmp_path / "keep.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as temp_path:
        temp_path.write_text("half")
        raise RuntimeError("writer failed")
    assert target.read_text() == "old"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["keep.txt"]


def test_stale_temporary_files_of_named_targets_are_removed(tmp_path):
    old = time.time() - 3600
    stale = [".manifest.json.k3j4h5g6.json", ".manifest.json.abcd_123.json"]  # mkstemp-made too
    kept = [
        ".manifest.json.notes",  # not our pattern
        ".other.json.abcdefgh.json",  # not a target we named
        ".manifest.json.abcdefgh.txt",  # another suffix than the target's
        "manifest.json",
    ]
    for name in stale + kept:
        (tmp_path / name).write_text("x")
        os.utime(tmp_path / name, (old, old))
    (tmp_path / ".manifest.json.newer123.json").write_text("a write in progress")
    (tmp_path / ".manifest.json.folder12.json").mkdir()
    os.utime(tmp_path / ".manifest.json.folder12.json", (old, old))

    removed = remove_stale_temps(tmp_path, ["manifest.json"], older_than=time.time() - 60)
    assert removed == len(stale)
    left = sorted(path.name for path in tmp_path.iterdir())
    assert left == sorted(kept + [".manifest.json.newer123.json", ".manifest.json.folder12.json"])


def test_temporary_names_match_the_stale_pattern(tmp_path):
    with atomic_path(tmp_path / "manifest.json") as temp_path:
        os.utime(temp_path, (0, 0))
        assert remove_stale_temps(tmp_path, ["manifest.json"], older_than=time.time()) == 1
        temp_path.write_text("{}")  # the writer may recreate it; the rename still works
    assert (tmp_path / "manifest.json").read_text() == "{}"
